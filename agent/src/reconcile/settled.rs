//! Specs that are settled: their wants were worked out and asked for no volume to be written.
//! Each is kept with what its wants were made from: the catalog (the same one while no spec
//! file changed), the version of every secret it reads as the stores hold it, and the data
//! folder each of its volumes holds. While none of that moved, a reconcile takes its wants as
//! they were instead of shaping its secrets, rendering its unit and comparing its volumes
//! again: a rotation of one secret among N specs works out one spec, not N.
//!
//! Not kept: specs with a health check (each reconcile hands their files to the gate, what a
//! failed rotation puts back), and specs whose wants could not be worked out.

use std::collections::BTreeMap;
use std::sync::Arc;

use ramlet_specs::Catalog;
use ramlet_specs::model::Container;

use super::Reconciler;
use super::facts::Wants;
use crate::drivers::VolumeSpec;
use crate::secrets::SecretId;

/// The settled specs (kept in [`super::memory::Memory`]).
#[derive(Default)]
pub struct Settled {
    /// The catalog the specs below come from.
    catalog: Option<Arc<Catalog>>,
    specs: BTreeMap<String, Entry>,
}

/// One settled spec.
struct Entry {
    /// What its wants were made from.
    made_of: MadeOf,
    wants: Wants,
    /// Its spec's digest (see `desire::digest`).
    digest: String,
}

/// The version of each secret a spec reads (in the order its files name them; `None`: the
/// stores have none) and the data folder of each of its volumes.
#[derive(PartialEq, Eq)]
struct MadeOf {
    versions: Vec<Option<String>>,
    folders: Vec<Option<String>>,
}

impl Settled {
    /// From `catalog` on: every spec is forgotten when it is another catalog than before (a
    /// spec file changed).
    pub(super) fn of(&mut self, catalog: &Arc<Catalog>) {
        if !self
            .catalog
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, catalog))
        {
            self.specs.clear();
            self.catalog = Some(Arc::clone(catalog));
        }
    }

    /// The digest of settled spec `name` (`None`: not settled).
    pub(super) fn digest(&self, name: &str) -> Option<&str> {
        self.specs.get(name).map(|entry| entry.digest.as_str())
    }

    /// Keeps only the specs `keep` says yes to.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.specs.retain(|name, _| keep(name));
    }
}

impl Reconciler {
    /// `container`'s wants as they were, when it is settled and nothing it is made of moved
    /// (no volume changes then).
    pub(super) fn unmoved(&self, settled: &Settled, container: &Container) -> Option<Wants> {
        let entry = settled.specs.get(container.name.as_str())?;
        (entry.made_of == self.made_of(container)).then(|| entry.wants.clone())
    }

    /// Keeps `container` as settled with `wants` (and its spec's `digest`) when it asked for
    /// no volume to be written and has no health check; forgets it otherwise.
    pub(super) fn settle(
        &self,
        settled: &mut Settled,
        container: &Container,
        wants: &Wants,
        digest: impl FnOnce() -> String,
    ) {
        let name = container.name.to_string();
        if wants.volumes_changed || wants.remount || wants.gate.is_some() {
            settled.specs.remove(&name);
            return;
        }
        let made_of = self.made_of(container);
        if made_of.folders.iter().any(Option::is_none) {
            settled.specs.remove(&name);
            return;
        }
        settled.specs.insert(
            name,
            Entry {
                made_of,
                wants: wants.clone(),
                digest: digest(),
            },
        );
    }

    /// What `container`'s wants are made of now, beyond its spec.
    fn made_of(&self, container: &Container) -> MadeOf {
        let versions = container
            .volumes
            .iter()
            .flat_map(|v| &v.files)
            .flat_map(ramlet_specs::model::VolumeFile::references)
            .map(|reference| {
                self.stores
                    .get(&SecretId::of(reference), &reference.version)
                    .ok()
                    .map(|secret| secret.version.clone())
            })
            .collect();
        let folders = container
            .volumes
            .iter()
            .map(|volume| self.volumes.data_folder(&VolumeSpec::of(container, volume)))
            .collect();
        MadeOf { versions, folders }
    }
}
