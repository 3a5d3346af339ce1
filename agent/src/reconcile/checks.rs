//! The health checks running beside the reconciles, never in them: the apply starts one
//! ([`super::plan::Action::Check`]), the first observe after it ended reads what it said. One
//! that hangs delays no reconcile, and systemd kills it at its limit. Each is a transient
//! service of the manager running `podman exec` (ramlet's own sandbox may not run Podman).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::facts::{CheckCommand, Health, Unrun};
use crate::drivers::UnitManager;
use crate::status::SecretInUse;

/// The checks under way, by spec, each with the versions its container ran when it started.
#[derive(Default)]
pub(super) struct Checks {
    running: BTreeMap<String, (Vec<SecretInUse>, JoinHandle<Health>)>,
    /// When each spec's check last started (milliseconds since the epoch).
    started: BTreeMap<String, u64>,
}

impl Checks {
    /// Starts `name`'s check (through `units`), judging `versions`; one already under way is
    /// left to run.
    pub(super) fn start(
        &mut self,
        units: &Arc<dyn UnitManager>,
        name: &str,
        check: &CheckCommand,
        versions: Vec<SecretInUse>,
        now: u64,
    ) {
        if self.running.contains_key(name) {
            return;
        }
        self.started.insert(name.to_owned(), now);
        let units = Arc::clone(units);
        let (unit, command, timeout) = (
            format!("ramlet-{name}"),
            check.command.clone(),
            check.timeout,
        );
        let task = tokio::spawn(async move {
            match units.check(&unit, &command, timeout).await {
                Ok(true) => Health::Healthy,
                Ok(false) => Health::Unhealthy,
                Err(error) => Health::Unknown(error.into()),
            }
        });
        self.running.insert(name.to_owned(), (versions, task));
    }

    /// Forgets the checks of specs not `wanted`: a check of a rotation that ended is left to
    /// finish alone (systemd kills it at its limit); its answer is not wanted.
    pub(super) fn retain(&mut self, wanted: &BTreeSet<String>) {
        self.running.retain(|name, _| wanted.contains(name));
        self.started.retain(|name, _| wanted.contains(name));
    }

    /// When each spec's check last started.
    #[must_use]
    pub(super) fn started(&self) -> BTreeMap<String, u64> {
        self.started.clone()
    }

    /// The specs whose check is still running.
    #[must_use]
    pub(super) fn running(&self) -> BTreeSet<String> {
        self.running
            .iter()
            .filter(|(_, (_, task))| !task.is_finished())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Takes what the checks that ended said, each with the versions it judged.
    pub(super) fn ended(&mut self) -> BTreeMap<String, (Vec<SecretInUse>, Health)> {
        let done: Vec<String> = self
            .running
            .iter()
            .filter(|(_, (_, task))| task.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        let mut said = BTreeMap::new();
        for name in done {
            let Some((versions, task)) = self.running.remove(&name) else {
                continue;
            };
            // A finished task's result is there at once.
            let health = futures_util::FutureExt::now_or_never(task)
                .and_then(Result::ok)
                .unwrap_or(Health::Unknown(Unrun::Lost));
            if health == Health::Unhealthy {
                tracing::warn!(spec = %name, unit = %super::service(&name), health = ?health, message_id = crate::message_ids::CHECK_FAILED, "{name}: health check failed");
            } else {
                tracing::info!(spec = %name, health = ?health, "{name}: health check: {health:?}");
            }
            said.insert(name, (versions, health));
        }
        for name in self.running.keys() {
            tracing::debug!(spec = %name, "{name}: health check still running");
        }
        said
    }
}
