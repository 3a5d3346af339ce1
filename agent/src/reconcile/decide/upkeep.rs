//! The plan's bookkeeping around the health gate, decided with the rest so that observe only
//! reads and apply only does: which `ramlet sync --retry` requests are taken (and the refusals
//! they lift), which files become a spec's previous files, which are sealed to the host or
//! forgotten, which health checks start, and which leases are revoked.

use std::collections::BTreeSet;
use std::time::Duration;

use super::super::facts::Facts;
use super::super::plan::{Action, Plan};
use crate::providers::stores::HeldLease;
use crate::retry::Requeue;
use crate::secrets::SecretId;

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
    let revoke = revocations(facts, plan);
    last.extend(revoke);
    first.append(&mut plan.actions);
    first.extend(last);
    plan.actions = first;
}

/// The leases to revoke: each that is not the value its store serves now, that no spec's
/// volumes hold or ask for (nor a running spec's whose file is gone or broken), and whose
/// secret no spec reads mid-rotation (a job or a health-gated rollout owed before or after
/// this plan, or volumes whose versions are not known): the rollout to its successor passed,
/// or its consumers are gone.
fn revocations(facts: &Facts, plan: &mut Plan) -> Vec<Action> {
    if facts.leases.is_empty() {
        return Vec::new();
    }
    let mut kept: BTreeSet<(&SecretId, &str)> = BTreeSet::new();
    let mut busy: BTreeSet<&SecretId> = BTreeSet::new();
    for spec in &facts.specs {
        let asks = spec
            .wants
            .as_ref()
            .map_or(&[][..], |w| w.versions.as_slice());
        let name = &spec.name;
        let mid = spec.live.is_empty()
            || facts.owed.jobs.contains_key(name)
            || facts.owed.rollouts.contains_key(name)
            || plan.owed.jobs.contains_key(name)
            || plan.owed.rollouts.contains_key(name);
        for used in spec.live.iter().chain(asks) {
            kept.insert((&used.id, &used.version));
            if mid {
                busy.insert(&used.id);
            }
        }
    }
    // A running spec whose file is gone (or broke) holds its versions until it is removed.
    let leaving: BTreeSet<(&SecretId, &str)> = facts
        .last
        .values()
        .flat_map(|s| &s.secrets)
        .map(|used| (&used.id, used.version.as_str()))
        .collect();
    let free = |l: &&HeldLease| !l.current && !kept.contains(&(&l.id, l.lease.as_str()));
    // A lease waiting on a rotation or a removal is looked at again soon after it ends, not a
    // refresh later: the old credentials are revoked within seconds.
    if facts
        .leases
        .iter()
        .filter(free)
        .any(|l| busy.contains(&l.id) || leaving.contains(&(&l.id, l.lease.as_str())))
    {
        plan.requeue = plan.requeue.and(Requeue::After(LEASE_POLL));
    }
    facts
        .leases
        .iter()
        .filter(free)
        .filter(|l| !busy.contains(&l.id) && !leaving.contains(&(&l.id, l.lease.as_str())))
        .map(|l| Action::Revoke(l.id.clone(), l.lease.clone()))
        .collect()
}

/// How soon the loop looks again while a lease no container will run with waits on a
/// rotation of a consumer (its restart, its health check).
const LEASE_POLL: Duration = Duration::from_secs(2);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::facts::{NameCheck, SpecFacts, Wants};
    use crate::reconcile::plan::OnRotation;
    use crate::status::SecretInUse;

    fn used(lease: &str) -> SecretInUse {
        SecretInUse {
            id: SecretId::new("db", "app"),
            version: lease.into(),
            expires: None,
        }
    }

    /// A consumer whose volumes hold `live` and that asks for `asks`.
    fn consumer(name: &str, live: &str, asks: &str) -> SpecFacts {
        SpecFacts {
            name: name.into(),
            file: format!("specs/{name}.yaml").into(),
            name_check: NameCheck::Ours,
            wants: Ok(Wants {
                unit_text: String::new(),
                volumes_changed: live != asks,
                remount: false,
                on_rotation: OnRotation::Restart,
                versions: vec![used(asks)],
                gate: None,
                templates: Vec::new(),
            }),
            live: vec![used(live)],
            digest: String::new(),
            stop_before_end: false,
        }
    }

    fn held(lease: &str, current: bool) -> HeldLease {
        HeldLease {
            id: SecretId::new("db", "app"),
            lease: lease.into(),
            current,
        }
    }

    fn revoked(facts: &Facts, plan: &Plan) -> Vec<String> {
        revocations(facts, &mut plan.clone())
            .into_iter()
            .map(|a| match a {
                Action::Revoke(_, lease) => lease,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// The old lease goes once no consumer holds it and none is mid-rotation: not while a
    /// consumer still runs it, has a restart owed, or waits on its health check; never the
    /// current one; a removed spec's lease once its unit is gone (and not while it runs).
    #[test]
    fn a_lease_is_revoked_once_no_container_runs_with_it_or_may_go_back_to_it() {
        let leases = vec![held("L1", false), held("L2", true)];
        let mut facts = Facts {
            leases: leases.clone(),
            specs: vec![consumer("a", "L2", "L2"), consumer("b", "L1", "L2")],
            ..Facts::default()
        };
        let plan = Plan::default();
        // b still runs L1.
        assert!(revoked(&facts, &plan).is_empty());
        // b took L2 but its restart is owed (this plan's or an earlier one's).
        facts.specs[1] = consumer("b", "L2", "L2");
        let mut owing = Plan::default();
        owing.owed.jobs.insert(
            "b".into(),
            crate::reconcile::owed::OwedJob {
                job: crate::drivers::Job::Restart,
                since: String::new(),
            },
        );
        assert!(revoked(&facts, &owing).is_empty());
        // ... and the loop comes back soon, not a refresh later.
        let mut soon = owing.clone();
        revocations(&facts, &mut soon);
        assert_eq!(soon.requeue, Requeue::After(LEASE_POLL));
        // b waits on its health check: a rollback would need L1 again.
        let mut waiting = facts.clone();
        waiting.owed.rollouts.insert(
            "b".into(),
            crate::reconcile::owed::Rollout {
                versions: vec![used("L2")],
                previous: vec![used("L1")],
                deadline: 0,
                rolling_back: false,
            },
        );
        assert!(revoked(&waiting, &plan).is_empty());
        // Both run L2, nothing owed: L1 goes, L2 stays.
        assert_eq!(revoked(&facts, &plan), ["L1"]);
        // Its spec removed: kept while its unit runs (the last status names it), then revoked,
        // current or not.
        let mut removed = Facts {
            leases: vec![held("L2", false)],
            ..Facts::default()
        };
        let last = crate::status::SpecStatus {
            secrets: vec![used("L2")],
            ..Default::default()
        };
        removed.last.insert("a".into(), last);
        assert!(revoked(&removed, &plan).is_empty());
        let mut soon = Plan::default();
        revocations(&removed, &mut soon);
        assert_eq!(soon.requeue, Requeue::After(LEASE_POLL));
        removed.last.clear();
        assert_eq!(revoked(&removed, &plan), ["L2"]);
    }
}
