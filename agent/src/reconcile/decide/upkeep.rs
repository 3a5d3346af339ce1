//! The plan's bookkeeping around the health gate, decided with the rest so that observe only
//! reads and apply only does: which `ramlet sync --retry` requests are taken (and the refusals
//! they lift), which files become a spec's previous files, which are sealed to the host or
//! forgotten, and which health checks start.

use std::collections::BTreeSet;
use std::time::Duration;

use super::super::facts::Facts;
use super::super::plan::{Action, Plan};
use crate::retry::Requeue;

/// How soon the loop looks again after starting health checks: a check that answers this fast
/// is read by the next reconcile at once; a slower one when it ends (the gate comes back every
/// interval).
pub const CHECK_POLL: Duration = Duration::from_millis(250);

/// The secrets whose refused versions `ramlet sync --retry` lets be tried again: every secret
/// a named spec asks for.
pub(super) fn lifted(facts: &Facts) -> BTreeSet<crate::secrets::SecretId> {
    facts
        .specs
        .iter()
        .filter(|s| facts.retries.contains(&s.name))
        .filter_map(|s| s.wants.as_ref().ok())
        .flat_map(|w| w.versions.iter().map(|v| v.id.clone()))
        .collect()
}

/// Adds the bookkeeping to `plan`, whose rollouts and kept specs are decided: the `--retry`
/// requests taken and the previous files sealed go first (after the journal, before any
/// volume changes), the sealed files forgotten and the checks started go last.
pub(super) fn upkeep(facts: &Facts, plan: &mut Plan) {
    let rollouts = &plan.owed.rollouts;
    let mut first: Vec<Action> = facts
        .retries
        .iter()
        .map(|name| Action::ConsumeRetry(name.clone()))
        .collect();
    // Outside any rotation, what a spec runs is what its next rotation puts back. A spec held,
    // waiting on its check or rolling back keeps the files held before.
    plan.hold = facts
        .holdable
        .iter()
        .filter(|name| !plan.keep.contains(*name) && !rollouts.contains_key(*name))
        .cloned()
        .collect();
    // A rotation starting gets them sealed first, so that a ramlet killed before its check
    // passed can still roll it back.
    first.extend(
        rollouts
            .keys()
            .filter(|name| !facts.owed.rollouts.contains_key(*name))
            .filter(|name| facts.restorable.contains(*name))
            .map(|name| Action::SealPrevious(name.clone())),
    );
    let mut last: Vec<Action> = facts
        .sealed
        .iter()
        .filter(|name| !rollouts.contains_key(*name))
        .map(|name| Action::ForgetSealed(name.clone()))
        .collect();
    plan.checks = due_checks(facts, plan);
    let mut start = Vec::new();
    for name in plan
        .checks
        .iter()
        .filter(|n| !facts.checks_running.contains(*n))
    {
        // A check runs at most once per its interval: the next one when that has passed.
        let interval = facts.checked.get(name).map_or(0, |c| millis(c.interval));
        let since = facts
            .checks_started
            .get(name)
            .map_or(u64::MAX, |at| facts.now.saturating_sub(*at));
        if since >= interval {
            start.push(Action::Check(name.clone()));
        } else {
            let wait = Duration::from_millis(interval - since);
            plan.requeue = plan.requeue.and(Requeue::After(wait));
        }
    }
    if !start.is_empty() {
        plan.requeue = plan.requeue.and(Requeue::After(CHECK_POLL));
    }
    last.extend(start);
    first.append(&mut plan.actions);
    first.extend(last);
    plan.actions = first;
}

/// `d` in whole milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The specs whose health check is wanted now: each rollout under way before and after this
/// plan (not rolling back), and each health-checked spec with new versions waiting whose check
/// has not yet said anything of the versions it runs (its baseline, asked before a new
/// version comes).
fn due_checks(facts: &Facts, plan: &Plan) -> BTreeSet<String> {
    facts
        .specs
        .iter()
        .filter(|spec| facts.checked.contains_key(&spec.name))
        .filter(|spec| {
            let name = &spec.name;
            match (facts.owed.rollouts.get(name), plan.owed.rollouts.get(name)) {
                (Some(was), Some(rollout)) => !was.rolling_back && !rollout.rolling_back,
                // Starting now (checked from the next reconcile on, once it runs), or over.
                (_, Some(_)) | (Some(_), None) => false,
                (None, None) => {
                    !spec.live.is_empty()
                        && !facts.baseline.contains_key(name)
                        && spec
                            .wants
                            .as_ref()
                            .is_ok_and(|w| w.versions.iter().any(|v| !spec.live.contains(v)))
                }
            }
        })
        .map(|spec| spec.name.clone())
        .collect()
}
