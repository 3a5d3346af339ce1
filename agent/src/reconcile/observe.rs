//! Observe: the facts a plan is made from, gathered in one step: ramlet's unit files (listed
//! by the caller), the units' states (one batched systemd call), the specs that have volumes,
//! and the work earlier reconciles still owe.
//!
//! A unit's details (its invocation ID, and why it failed) cost a few calls each, so they are
//! asked only where they can have changed or are needed exact: a unit whose active or sub state
//! moved since the last look, one never seen, one with owed work (its settlement compares
//! invocations), and, before the journal is written, every unit about to get a job. The others
//! keep the details seen last: an idle reconcile of N units is one systemd call.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{Action, Desired, Observed};
use super::{Reconciler, service};
use crate::drivers::{Job, SystemdError, UnitState};

impl Reconciler {
    /// What the host holds: ramlet's units, their states, the specs with volumes. An error
    /// when systemd does not answer for the units' states: no plan is made without them.
    pub(super) async fn observe(
        &self,
        units: BTreeMap<String, String>,
        desired: &[Desired],
    ) -> Result<Observed, SystemdError> {
        let mut observed = Observed {
            units,
            owed: self.owed.clone(),
            ..Observed::default()
        };
        observed.volume_specs = self.volumes.specs().unwrap_or_default();
        let names: BTreeSet<String> = desired
            .iter()
            .map(|d| d.name.clone())
            .chain(observed.units.keys().cloned())
            .collect();
        let services: Vec<String> = names.iter().map(|n| service(n)).collect();
        let listed = by_spec(self.units.states(&services).await?);
        let stale: Vec<String> = listed
            .iter()
            .filter(|(name, now)| {
                now.active_state != "not-loaded"
                    && (observed.owed.jobs.contains_key(*name)
                        || self.seen.get(*name).is_none_or(|seen| {
                            seen.active_state != now.active_state || seen.sub_state != now.sub_state
                        }))
            })
            .map(|(name, _)| service(name))
            .collect();
        let mut fresh = if stale.is_empty() {
            BTreeMap::new()
        } else {
            // Details that systemd does not give leave those units unknown, below.
            by_spec(self.units.details(&stale).await.unwrap_or_default())
        };
        observed.states = listed
            .into_iter()
            .filter_map(|(name, now)| {
                let state = if now.active_state == "not-loaded" {
                    now
                } else if let Some(fresh) = fresh.remove(&name) {
                    fresh
                } else if stale.contains(&service(&name)) {
                    // Asked, but systemd did not answer for it: unknown.
                    return None;
                } else {
                    self.seen.get(&name).cloned().unwrap_or(now)
                };
                Some((name, state))
            })
            .collect();
        Ok(observed)
    }

    /// Exact details for every unit `actions` run a start, restart or reload on, so that the
    /// journal records the invocation each one runs under now.
    pub(super) async fn exact_states(&self, actions: &[Action], observed: &mut Observed) {
        let units: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Job(Job::Start | Job::Restart | Job::Reload, name) => Some(service(name)),
                _ => None,
            })
            .collect();
        if units.is_empty() {
            return;
        }
        // Without an answer the journal records the invocations observe saw.
        for (name, state) in by_spec(self.units.details(&units).await.unwrap_or_default()) {
            observed.states.insert(name, state);
        }
    }
}

/// States keyed by spec name (the unit's name without `.service`).
pub(super) fn by_spec(states: BTreeMap<String, UnitState>) -> BTreeMap<String, UnitState> {
    states
        .into_iter()
        .filter_map(|(unit, state)| {
            unit.strip_suffix(".service")
                .map(|name| (name.to_owned(), state))
        })
        .collect()
}
