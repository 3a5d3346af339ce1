//! What observe gathers for the health gate ([`super::super::gate`]): the previous files of
//! each health-checked spec (held, unsealed from an earlier ramlet's copy, or fetched again by
//! version ID), each store's canary count, the refusals `ramlet sync --retry` lifts, the time,
//! and what each waiting rotation's health check says (run once per reconcile, all at once).

use std::collections::{BTreeMap, BTreeSet};

use ramlet_specs::Catalog;
use ramlet_specs::model::{Container, Provider, SecretVersion};

use super::super::Reconciler;
use super::super::facts::{Facts, Health};
use crate::providers::stores::Due;

impl Reconciler {
    /// What the health gate decides from: the specs whose previous files ramlet holds, each
    /// store's canary count, the refusals `ramlet sync --retry` lifts, the time, and what the
    /// health check says of each rotation waiting on it.
    pub(super) async fn gate_facts(
        &mut self,
        facts: &mut Facts,
        catalog: &Catalog,
        selected: &[&Container],
        due: Due,
    ) {
        self.previous
            .retain(|name, _| selected.iter().any(|c| c.name.as_str() == name));
        facts.restorable = self.previous.keys().cloned().collect();
        facts.canary = catalog
            .stores
            .iter()
            .map(|(name, store)| (name.to_string(), store.canary))
            .collect();
        if due == Due::All {
            self.take_retries(facts);
        }
        facts.now = crate::util::unix_now_millis();
        facts.health = self.health(selected).await;
    }

    /// The previous files of the rotations under way that this ramlet does not hold, from
    /// their sealed copies (see [`super::previous`]), where an earlier ramlet made them.
    pub(super) async fn unseal_previous(&mut self, selected: &[&Container]) {
        let missing: Vec<String> = selected
            .iter()
            .map(|c| c.name.to_string())
            .filter(|name| {
                self.owed.rollouts.contains_key(name) && !self.previous.contains_key(name)
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
            self.previous.insert(name, files);
        }
    }

    /// The rotations under way whose previous files this ramlet does not hold (an earlier one
    /// started them), each as its container pinned to the versions it ran before: fetched again
    /// by their IDs where the store keeps versions (AWS, GCP), so that a failed check can still
    /// put them back.
    pub(super) fn pinned(&self, selected: &[&Container], catalog: &Catalog) -> Vec<Container> {
        selected
            .iter()
            .filter(|c| c.health_check.is_some() && !self.previous.contains_key(c.name.as_str()))
            .filter_map(|c| {
                let rollout = self.owed.rollouts.get(c.name.as_str())?;
                pinned_to(c, &rollout.previous, catalog)
            })
            .collect()
    }

    /// `ramlet sync --retry SPEC`: the versions SPEC's health check refused may be tried again.
    fn take_retries(&self, facts: &mut Facts) {
        for name in super::super::owed::take_retries(&self.settings.state_dir) {
            let Some(Ok(wants)) = facts
                .specs
                .iter()
                .find(|s| s.name == name)
                .map(|s| &s.wants)
            else {
                continue;
            };
            let keys: BTreeSet<String> = wants
                .versions
                .iter()
                .map(super::super::owed::secret_key)
                .collect();
            facts.owed.refused.retain(|key, refusal| {
                let retried = keys.contains(key);
                if retried {
                    tracing::info!(spec = %name, secret = %key, version = %refusal.version, "{name}: {key} version {} may be tried again (ramlet sync --retry)", refusal.version);
                }
                !retried
            });
        }
    }

    /// Runs the health check of every selected spec whose rotation waits on it, once, all at
    /// the same time: each a transient service of the manager running `podman exec` (ramlet's
    /// own sandbox may not run Podman), killed after its interval or 10 s, whichever is longer.
    async fn health(&self, selected: &[&Container]) -> BTreeMap<String, Health> {
        let checks = selected.iter().filter_map(|container| {
            let name = container.name.as_str();
            let check = container.health_check.as_ref()?;
            let rollout = self.owed.rollouts.get(name)?;
            if rollout.rolling_back {
                return None;
            }
            let timeout = check.interval.max(std::time::Duration::from_secs(10));
            Some(async move {
                let health = match self
                    .units
                    .check(&format!("ramlet-{name}"), &check.command, timeout)
                    .await
                {
                    Ok(true) => Health::Healthy,
                    Ok(false) => Health::Unhealthy,
                    Err(error) => Health::Unknown(error.to_string()),
                };
                tracing::info!(spec = name, health = ?health, "{name}: health check: {health:?}");
                (name.to_owned(), health)
            })
        });
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .collect()
    }
}

/// `container` reading `previous` (the versions a rotation replaced) instead of what it asks
/// for: `None` when one of them is in a store that keeps one version (`file`, `creds`, `age`).
fn pinned_to(
    container: &Container,
    previous: &[crate::status::SecretInUse],
    catalog: &Catalog,
) -> Option<Container> {
    let mut pinned = container.clone();
    for volume in &mut pinned.volumes {
        for file in &mut volume.files {
            let reference = &mut file.secret;
            let Some(was) = previous
                .iter()
                .find(|p| p.store == reference.store.as_str() && p.name == reference.name)
            else {
                continue;
            };
            reference.version = match catalog.stores.get(&reference.store).map(|s| &s.provider) {
                Some(Provider::Aws { .. }) => SecretVersion::VersionId(was.version.clone()),
                Some(Provider::Gcp { .. }) => SecretVersion::Number(was.version.parse().ok()?),
                _ => return None,
            };
        }
    }
    Some(pinned)
}
