//! What observe gathers for the health gate ([`super::super::gate`]): the previous files of
//! each health-checked spec (held, unsealed from an earlier ramlet's copy, or fetched again by
//! version ID), each store's canary count, the refusals `ramlet sync --retry` lifts, the time,
//! and what each waiting rotation's health check says (each run beside the reconciles, read by
//! the first reconcile after it ended).

use std::collections::{BTreeMap, BTreeSet};

use ramlet_specs::Catalog;
use ramlet_specs::model::{Container, Provider, SecretVersion};

use super::super::Reconciler;
use super::super::facts::{Facts, Health};
use crate::providers::stores::Due;
use crate::status::SecretInUse;

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
        intent: super::Intent,
    ) {
        self.previous
            .retain(|name, _| selected.iter().any(|c| c.name.as_str() == name));
        facts.restorable = self.previous.keys().cloned().collect();
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
        if due == Due::All {
            self.take_retries(facts, intent);
        }
        facts.now = crate::util::unix_now_millis();
        // `ramlet plan` starts no check: it shows what the last one said, or that one is due.
        if intent == super::Intent::Apply {
            let mut pending = pending_rotations(facts, selected);
            pending.retain(|name| {
                let live = facts
                    .specs
                    .iter()
                    .find(|s| &s.name == name)
                    .map(|s| &s.live);
                !self
                    .baselines
                    .get(name)
                    .is_some_and(|(versions, _)| Some(versions) == live)
            });
            let said = self.health(selected, &pending, facts).await;
            self.sort_verdicts(facts, said);
        }
        self.baselines
            .retain(|name, _| facts.specs.iter().any(|s| &s.name == name));
        for spec in &facts.specs {
            if let Some((versions, health)) = self.baselines.get(&spec.name)
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
    /// (`ramlet plan` leaves the requests in place for the agent, and shows them as taken.)
    fn take_retries(&self, facts: &mut Facts, intent: super::Intent) {
        let requests = match intent {
            super::Intent::Apply => super::super::owed::take_retries(&self.settings.state_dir),
            super::Intent::Preview => super::super::owed::peek_retries(&self.settings.state_dir),
        };
        for name in requests {
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

    /// What the health check of each selected spec whose rotation waits on it says. Checks run
    /// beside the reconciles, never in them: a check is started when none of that spec is
    /// running, and read by the first reconcile after it ended. A quick one ends within
    /// [`QUICK_CHECK`] and is read by the reconcile that started it; one that hangs delays no
    /// other spec, and systemd kills it at its limit (its interval or 10 s, whichever is
    /// longer). Each is a transient service of the manager running `podman exec` (ramlet's own
    /// sandbox may not run Podman).
    async fn health(
        &mut self,
        selected: &[&Container],
        pending: &BTreeSet<String>,
        facts: &Facts,
    ) -> BTreeMap<String, (Vec<SecretInUse>, Health)> {
        let due: Vec<(String, Vec<String>, std::time::Duration)> = selected
            .iter()
            .filter_map(|container| {
                let name = container.name.as_str();
                let check = container.health_check.as_ref()?;
                match self.owed.rollouts.get(name) {
                    Some(rollout) if rollout.rolling_back => return None,
                    Some(_) => {}
                    // No rotation under way: checked only to learn what its check says of
                    // the versions it runs, before a new one comes (once per versions).
                    None if pending.contains(name) => {}
                    None => return None,
                }
                let timeout = check.interval.max(std::time::Duration::from_secs(10));
                Some((name.to_owned(), check.command.clone(), timeout))
            })
            .collect();
        // A check of a rotation that ended is left to finish alone (systemd kills it at its
        // limit); its answer is not wanted.
        self.checks
            .retain(|name, _| due.iter().any(|(due, _, _)| due == name));
        let mut started = Vec::new();
        for (name, command, timeout) in due {
            if !self.checks.contains_key(&name) {
                started.push(name.clone());
            }
            // What it checks: the versions its container runs now.
            let running = facts
                .specs
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.live.clone())
                .unwrap_or_default();
            self.checks.entry(name.clone()).or_insert_with(|| {
                let units = std::sync::Arc::clone(&self.units);
                let task = tokio::spawn(async move {
                    match units
                        .check(&format!("ramlet-{name}"), &command, timeout)
                        .await
                    {
                        Ok(true) => Health::Healthy,
                        Ok(false) => Health::Unhealthy,
                        Err(error) => Health::Unknown(error.to_string()),
                    }
                });
                (running, task)
            });
        }
        // Only the checks this reconcile started are waited for (briefly): one that was
        // running already is read when it ends, and costs this reconcile nothing.
        let since = tokio::time::Instant::now();
        while started
            .iter()
            .any(|name| self.checks.get(name).is_some_and(|(_, c)| !c.is_finished()))
            && since.elapsed() < QUICK_CHECK
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let done: Vec<String> = self
            .checks
            .iter()
            .filter(|(_, (_, check))| check.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        let mut said = BTreeMap::new();
        for name in done {
            let Some((versions, check)) = self.checks.remove(&name) else {
                continue;
            };
            let health = check
                .await
                .unwrap_or_else(|e| Health::Unknown(format!("the check's task ended: {e}")));
            tracing::info!(spec = %name, health = ?health, "{name}: health check: {health:?}");
            said.insert(name, (versions, health));
        }
        for name in self.checks.keys() {
            tracing::debug!(spec = %name, "{name}: health check still running");
        }
        said
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
            match self.owed.rollouts.get(&name) {
                // A check that started before the rollout's versions were in place judged
                // what ran before them: not this rollout's answer (the next check is).
                Some(rollout) if versions != rollout.versions => {}
                Some(_) => {
                    if health == Health::Healthy {
                        self.baselines
                            .insert(name.clone(), (versions, Health::Healthy));
                    }
                    facts.health.insert(name, health);
                }
                None => {
                    if !matches!(health, Health::Unknown(_)) {
                        self.baselines.insert(name, (versions, health));
                    }
                }
            }
        }
    }
}

/// The health-checked specs with new versions waiting and no rotation under way, whose check
/// has not yet said anything of the versions they run: their baseline is wanted.
fn pending_rotations(facts: &Facts, selected: &[&Container]) -> BTreeSet<String> {
    let checked: BTreeSet<&str> = selected
        .iter()
        .filter(|c| c.health_check.is_some())
        .map(|c| c.name.as_str())
        .collect();
    facts
        .specs
        .iter()
        .filter(|spec| {
            checked.contains(spec.name.as_str())
                && !spec.live.is_empty()
                && !facts.owed.rollouts.contains_key(&spec.name)
                && spec
                    .wants
                    .as_ref()
                    .is_ok_and(|w| w.versions.iter().any(|v| !spec.live.contains(v)))
        })
        .map(|spec| spec.name.clone())
        .collect()
}

/// How long a reconcile waits for the checks it started: a check that answers this fast is
/// read at once; a slower one by a later reconcile (the gate comes back every interval).
const QUICK_CHECK: std::time::Duration = std::time::Duration::from_millis(300);

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
