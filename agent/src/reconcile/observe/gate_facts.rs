//! What observe gathers for the health gate ([`super::super::gate`]): the previous files of
//! each health-checked spec (held, unsealed from an earlier ramlet's copy, or fetched again by
//! version ID), each store's canary count, the `ramlet sync --retry` requests waiting, the
//! time, and what each health check that ended said (checks run beside the reconciles, read by
//! the first reconcile after they ended). Nothing here changes the host.

use std::collections::BTreeMap;

use ramlet_specs::Catalog;
use ramlet_specs::model::{Container, VolumeFile};

use super::super::Reconciler;
use super::super::facts::{CheckCommand, Facts, Health};
use crate::status::SecretInUse;

impl Reconciler {
    /// What the health gate decides from: the specs whose previous files ramlet holds (and
    /// has sealed), each store's canary count, the `ramlet sync --retry` requests waiting, the
    /// time, the specs with a health check, and what each check that ended said (each runs
    /// beside the reconciles: see [`crate::reconcile::apply`]). Reads only; the requests stay
    /// until the apply takes them, and no check starts here.
    pub(super) fn gate_facts(
        &mut self,
        facts: &mut Facts,
        catalog: &Catalog,
        selected: &[&Container],
        intent: super::Intent,
    ) {
        // (The selected specs are those of `facts.specs`.)
        let names: std::collections::BTreeSet<&str> =
            selected.iter().map(|c| c.name.as_str()).collect();
        facts.restorable = self
            .memory
            .previous
            .keys()
            .filter(|name| names.contains(name.as_str()))
            .cloned()
            .collect();
        facts.sealed = self.sealed.list();
        facts.canary = catalog
            .stores
            .iter()
            .map(|(name, store)| (name.to_string(), store.canary))
            .collect();
        facts.canary_eligible = catalog
            .stores
            .iter()
            .filter_map(|(name, store)| {
                let selector = store.canary_selector.as_ref()?;
                let eligible = selected
                    .iter()
                    .filter(|c| selector.matches(&c.labels))
                    .map(|c| c.name.to_string())
                    .collect();
                Some((name.to_string(), eligible))
            })
            .collect();
        facts.retries = super::super::owed::retries_asked(&self.settings.state_dir);
        facts.now = self.clock.now_millis();
        facts.checked = selected
            .iter()
            .filter_map(|c| {
                let check = c.health_check.as_ref()?;
                Some((
                    c.name.to_string(),
                    CheckCommand {
                        command: check.command.clone(),
                        // Its limit: its interval or 10 s, whichever is longer.
                        timeout: check.interval.max(std::time::Duration::from_secs(10)),
                        interval: check.interval,
                    },
                ))
            })
            .collect();
        let said = self.checks.ended();
        self.sort_verdicts(facts, said);
        facts.checks_running = self.checks.running();
        facts.checks_started = self.checks.started();
        let memory = &mut self.memory;
        memory
            .baselines
            .retain(|name, _| names.contains(name.as_str()));
        for spec in &facts.specs {
            if let Some((versions, health)) = memory.baselines.get(&spec.name)
                && *versions == spec.live
            {
                facts.baseline.insert(spec.name.clone(), health.clone());
            } else if intent == super::Intent::Preview {
                // `ramlet plan` runs no check: it shows what happens if the check passes on
                // what the container runs now (the agent checks that first).
                facts.baseline.insert(spec.name.clone(), Health::Healthy);
            }
        }
    }

    /// The previous files of the rotations under way that this ramlet does not hold, from
    /// their sealed copies (see [`super::previous`]), where an earlier ramlet made them.
    pub(super) async fn unseal_previous(&mut self, selected: &[&Container]) {
        let missing: Vec<String> = selected
            .iter()
            .map(|c| c.name.to_string())
            .filter(|name| {
                self.memory.owed.rollouts.contains_key(name)
                    && !self.memory.previous.contains_key(name)
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        let sealed = self.sealed.clone();
        let found = tokio::task::spawn_blocking(move || {
            missing
                .into_iter()
                .filter_map(|name| Some((name.clone(), sealed.load(&name)?)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (name, files) in found {
            tracing::info!(spec = %name, "{name}: the previous files of the rotation under way, unsealed");
            self.memory.previous.insert(name, files);
        }
    }

    /// The rotations under way whose previous files this ramlet does not hold (an earlier one
    /// started them), each as its container pinned to the versions it ran before: fetched again
    /// where the store keeps versions ([`crate::providers::Versions`]), so that a failed check
    /// can still put them back.
    pub(super) fn pinned(&self, selected: &[&Container], catalog: &Catalog) -> Vec<Container> {
        selected
            .iter()
            .filter(|c| {
                c.health_check.is_some() && !self.memory.previous.contains_key(c.name.as_str())
            })
            .filter_map(|c| {
                let rollout = self.memory.owed.rollouts.get(c.name.as_str())?;
                pinned_to(c, &rollout.previous, catalog)
            })
            .collect()
    }
}

impl Reconciler {
    /// Files what the checks said: of a rollout's new versions (`facts.health`), or of the
    /// versions a spec runs before a new one comes (its baseline). A rollout that passed is
    /// also a baseline of the versions it brought.
    fn sort_verdicts(
        &mut self,
        facts: &mut Facts,
        said: BTreeMap<String, (Vec<SecretInUse>, Health)>,
    ) {
        for (name, (versions, health)) in said {
            match self.memory.owed.rollouts.get(&name) {
                // A check that started before the rollout's versions were in place judged
                // what ran before them: not this rollout's answer (the next check is).
                Some(rollout) if versions != rollout.versions => {}
                Some(_) => {
                    if health == Health::Healthy {
                        self.memory
                            .baselines
                            .insert(name.clone(), (versions, Health::Healthy));
                    }
                    facts.health.insert(name, health);
                }
                None => {
                    if !matches!(health, Health::Unknown(_)) {
                        self.memory.baselines.insert(name, (versions, health));
                    }
                }
            }
        }
    }
}

/// `container` reading `previous` (the versions a rotation replaced) instead of what it asks
/// for: `None` when one of them is in a store that keeps one version (its capabilities say).
fn pinned_to(
    container: &Container,
    previous: &[crate::status::SecretInUse],
    catalog: &Catalog,
) -> Option<Container> {
    let mut pinned = container.clone();
    for volume in &mut pinned.volumes {
        for reference in volume.files.iter_mut().flat_map(VolumeFile::references_mut) {
            let Some(was) = previous
                .iter()
                .find(|p| p.id == crate::secrets::SecretId::of(reference))
            else {
                continue;
            };
            let store = catalog.stores.get(&reference.store)?;
            reference.version = crate::providers::capabilities(&store.provider)
                .versions
                .pin(&was.version)?;
        }
    }
    Some(pinned)
}
