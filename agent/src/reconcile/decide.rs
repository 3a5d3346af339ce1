//! Decide: the one place where a reconcile decides anything. A pure function from the
//! [`Facts`] to the [`Plan`]: which actions run and in what order, why each job runs, what each
//! spec's phase and reason are, which specs are left exactly as they run, what the plan owes
//! once it starts, and whether the loop should come back soon. No IO; tested from facts alone.
//!
//! Rules, in the order they apply to a selected spec:
//! 1. its unit name is someone else's (a unit systemd knows, a foreign file in ramlet's folder):
//!    `Failed`, `UnitNameTaken`; systemd did not say whether it is free: `Degraded`,
//!    `SystemdUnavailable`, tried again soon;
//! 2. its wants could not be worked out (a secret, a render): a spec that runs is left as it
//!    runs (`Degraded`, kept), a new one is not created (`Failed`);
//! 3. otherwise it is applied (`Progressing`): volumes and unit written where they differ, and
//!    the one job it needs (`job_for`: the job and its cause from one rule).
//!
//! Before these, the health gate ([`super::gate`]) has its say on health-checked specs with new
//! secret versions: held as they run, waiting on their check, or rolling back. After them, the
//! bookkeeping around it (`upkeep`): the `ramlet sync --retry` requests taken, the previous
//! files held, sealed or forgotten, the health checks started.
//!
//! A running spec whose file broke is kept (`Degraded`, `InvalidSpec`); one whose spec is gone
//! (or no longer selected) is stopped, unlinked and its volumes wiped. Only what changed is
//! touched, plus what an earlier reconcile still owes ([`super::owed`]).

use std::collections::BTreeSet;

use super::facts::{Facts, NameCheck, SpecFacts, Wants};
use super::gate::{self, Step};
use super::owed::{Owed, OwedJob};
use super::plan::{Action, Cause, OnRotation, Plan, Verdict};
use crate::drivers::Job;
use crate::retry::Requeue;
use crate::status::{Phase, Reason};

mod expiry;
mod upkeep;
pub use expiry::EXPIRY_MARGIN;
pub use upkeep::CHECK_POLL;

/// The plan for `facts`.
#[must_use]
pub fn decide(facts: &Facts) -> Plan {
    let gates = gate::gates(facts, &upkeep::lifted(facts));
    let mut plan = Plan::default();
    let mut applied: Vec<(&str, &Wants)> = Vec::new();
    let mut rollbacks: Vec<&str> = Vec::new();
    let mut expiring: Vec<&str> = Vec::new();
    for spec in &facts.specs {
        match gates.step(&spec.name) {
            Step::Hold(verdict) | Step::Wait(verdict) => {
                plan.keep.insert(spec.name.clone());
                plan.specs.insert(spec.name.clone(), verdict.clone());
                continue;
            }
            Step::Rollback(verdict) => {
                rollbacks.push(&spec.name);
                plan.specs.insert(spec.name.clone(), verdict.clone());
                continue;
            }
            Step::Usual | Step::Go => {}
        }
        let going = *gates.step(&spec.name) == Step::Go;
        if let Some(verdict) = expiry::expired(spec, facts) {
            expiring.push(&spec.name);
            plan.specs.insert(spec.name.clone(), verdict);
            continue;
        }
        let verdict = match verdict(spec, facts) {
            Ok(wants) => {
                applied.push((&spec.name, wants));
                Verdict {
                    phase: Phase::Progressing,
                    // A gated rotation going live is not Ready until its check passes.
                    reason: if going {
                        Reason::HealthChecking
                    } else {
                        Reason::Applied
                    },
                    message: if going {
                        "new versions going live; waiting for the health check to pass".into()
                    } else {
                        String::new()
                    },
                    versions: wants.versions.clone(),
                }
            }
            Err((verdict, keep)) => {
                if keep {
                    plan.keep.insert(spec.name.clone());
                }
                if verdict.reason == Reason::SystemdUnavailable {
                    // It may pass by itself.
                    plan.requeue = plan.requeue.and(Requeue::Backoff {
                        transient: true,
                        within: None,
                    });
                }
                verdict
            }
        };
        plan.specs.insert(spec.name.clone(), verdict);
    }
    keep_broken(facts, &mut plan);
    plan.actions = actions(
        facts,
        &applied,
        &rollbacks,
        &expiring,
        &plan.keep,
        &mut plan.causes,
    );
    if let Some(next) = expiry::next_end(facts) {
        plan.requeue = plan.requeue.and(Requeue::After(next));
    }
    plan.owed = owed_by(&plan, facts);
    plan.owed.rollouts = gates.rollouts;
    plan.owed.refused = gates.refused;
    plan.owed.proven = gates.proven;
    if let Some(recheck) = gates.recheck {
        plan.requeue = plan.requeue.and(Requeue::After(recheck));
    }
    upkeep::upkeep(facts, &mut plan);
    plan
}

/// What `spec` wants, or its verdict when it cannot be applied, with whether it is kept as it
/// runs.
fn verdict<'a>(spec: &'a SpecFacts, facts: &Facts) -> Result<&'a Wants, (Verdict, bool)> {
    let name = &spec.name;
    let (phase, reason, message) = match &spec.name_check {
        NameCheck::Ours | NameCheck::Free => {
            return spec.wants.as_ref().map_err(|problem| {
                // A spec that runs already keeps running as it is; a new one is not created.
                let runs = facts.units.contains_key(name);
                let verdict = Verdict {
                    phase: if runs { Phase::Degraded } else { Phase::Failed },
                    reason: problem.reason,
                    message: problem.message.clone(),
                    // What it runs: the versions it ran before (a new one: what was known).
                    versions: if runs && !spec.live.is_empty() {
                        spec.live.clone()
                    } else {
                        problem.versions.clone()
                    },
                };
                (verdict, runs)
            });
        }
        NameCheck::TakenBySystemd(load) => (
            Phase::Failed,
            Reason::UnitNameTaken,
            format!(
                "{name}.service already exists on this host (LoadState={load}) and is not ramlet's; rename the spec"
            ),
        ),
        NameCheck::Shadows(file) => {
            // It runs already: kept as it runs (nothing running is lost), and said loudly.
            let verdict = Verdict {
                phase: Phase::Degraded,
                reason: Reason::UnitNameTaken,
                message: format!(
                    "{} also defines {name}.service, a unit of the host's that ramlet's unit of the same name hides (or is hidden by); the container is kept as it runs, without rotations: rename the spec",
                    file.display()
                ),
                versions: Vec::new(),
            };
            return Err((verdict, facts.units.contains_key(name)));
        }
        NameCheck::TakenInUnitDir(file) => (
            Phase::Failed,
            Reason::UnitNameTaken,
            format!(
                "{} exists and is not ramlet's; rename the spec",
                file.display()
            ),
        ),
        // Not refused: it waits for systemd to answer.
        NameCheck::Unknown(error) => (
            Phase::Degraded,
            Reason::SystemdUnavailable,
            format!(
                "cannot tell whether {name}.service is free on this host ({error}); the spec waits until systemd answers"
            ),
        ),
    };
    let verdict = Verdict {
        phase,
        reason,
        message,
        versions: Vec::new(),
    };
    Err((verdict, false))
}

/// Running specs that are gone from the catalog because their file is broken now are kept
/// as they run. With no record of where one came from, it is kept while any file is broken.
fn keep_broken(facts: &Facts, plan: &mut Plan) {
    for name in facts.units.keys() {
        if plan.specs.contains_key(name) || facts.unselected.contains(name) {
            continue;
        }
        let last = facts.last.get(name);
        let broken = match last {
            Some(spec) => facts.broken_files.contains(&spec.file),
            None => !facts.broken_files.is_empty(),
        };
        if broken {
            plan.keep.insert(name.clone());
            plan.specs.insert(
                name.clone(),
                Verdict {
                    phase: Phase::Degraded,
                    reason: Reason::InvalidSpec,
                    message: "its spec file has errors; the last applied version keeps running"
                        .into(),
                    versions: last.map(|s| s.secrets.clone()).unwrap_or_default(),
                },
            );
        }
    }
}

/// The actions, in order, that take the host to `applied`, stopping `expiring` and leaving
/// `keep` alone; each job's cause goes into `causes`.
fn actions(
    facts: &Facts,
    applied: &[(&str, &Wants)],
    rollbacks: &[&str],
    expiring: &[&str],
    keep: &BTreeSet<String>,
    causes: &mut std::collections::BTreeMap<String, Cause>,
) -> Vec<Action> {
    let mut volumes = Vec::new();
    let mut writes = Vec::new();
    let mut runs = Vec::new();
    for name in rollbacks {
        volumes.push(Action::RestoreVolumes((*name).to_owned()));
        causes.insert((*name).to_owned(), Cause::Rollback);
        runs.push(Action::Job(Job::Restart, (*name).to_owned()));
    }
    for (name, wants) in applied {
        if wants.volumes_changed {
            volumes.push(Action::WriteVolumes((*name).to_owned()));
        }
        if facts.units.get(*name) != Some(&wants.unit_text) {
            writes.push(Action::WriteUnit((*name).to_owned()));
        }
        if let Some((job, cause)) = job_for(name, wants, facts) {
            causes.insert((*name).to_owned(), cause);
            runs.push(Action::Job(job, (*name).to_owned()));
        }
    }
    for name in expiring {
        // Stopped while it runs (or systemd did not say); one already down stays down.
        if facts
            .states
            .get(*name)
            .is_none_or(crate::drivers::UnitState::is_up)
        {
            causes.insert((*name).to_owned(), Cause::Expiring);
            runs.push(Action::Job(Job::Stop, (*name).to_owned()));
        }
    }
    let wanted: BTreeSet<&str> = applied
        .iter()
        .map(|(name, _)| *name)
        .chain(rollbacks.iter().copied())
        .chain(expiring.iter().copied())
        .chain(keep.iter().map(String::as_str))
        .collect();
    let mut removals = Vec::new();
    for name in facts.units.keys().filter(|n| !wanted.contains(n.as_str())) {
        causes.insert(name.clone(), Cause::Removed);
        removals.push(Action::Job(Job::Stop, name.clone()));
        removals.push(Action::RemoveUnit(name.clone()));
    }
    let cleanups = facts
        .volume_specs
        .iter()
        .filter(|n| !wanted.contains(n.as_str()))
        .map(|n| Action::RemoveVolumes(n.clone()));
    let reload = !writes.is_empty() || !removals.is_empty() || facts.owed.daemon_reload;
    let mut actions = volumes;
    actions.extend(writes);
    actions.extend(removals);
    if reload {
        actions.push(Action::DaemonReload);
    }
    actions.extend(runs);
    actions.extend(cleanups);
    actions
}

/// The stronger of two jobs: a restart also does what a reload or a start would.
fn stronger(a: Job, b: Job) -> Job {
    match (a, b) {
        (Job::Restart, _)
        | (_, Job::Restart)
        | (Job::Start, Job::Reload)
        | (Job::Reload, Job::Start) => Job::Restart,
        (a, _) => a,
    }
}

/// The job `name`'s unit needs, and why: one rule for both, so the metrics, the logs and
/// `ramlet plan` say the same.
fn job_for(name: &str, wants: &Wants, facts: &Facts) -> Option<(Job, Cause)> {
    let state = facts.states.get(name);
    let owed = facts
        .owed
        .jobs
        .get(name)
        .filter(|o| !state.is_some_and(|s| o.settled_by(s)))
        .map(|o| o.job);
    let unit = facts.units.get(name);
    let change = if unit.is_none() {
        Some((Job::Restart, Cause::Spec))
    } else if wants.remount {
        Some((Job::Restart, Cause::Remount))
    } else if unit != Some(&wants.unit_text) {
        Some((Job::Restart, Cause::Spec))
    } else if wants.volumes_changed {
        match wants.on_rotation {
            OnRotation::Restart => Some((Job::Restart, Cause::Rotation)),
            OnRotation::Reload => Some((Job::Reload, Cause::Rotation)),
            OnRotation::Nothing => None,
        }
    } else {
        None
    };
    // What is owed and what changed, as one job: the change's cause when there is one.
    let both = match (owed, change) {
        (None, change) => change,
        (Some(owed), None) => Some((owed, Cause::Owed)),
        (Some(owed), Some((job, cause))) => Some((stronger(owed, job), cause)),
    };
    match state {
        // Down: a start loads whatever is new.
        Some(state) if !state.is_up() => Some((
            Job::Start,
            if unit.is_none() {
                Cause::Spec
            } else {
                Cause::Down
            },
        )),
        // A job on its way (a slow start that outlived ramlet's wait): issuing what is owed
        // again would replace it, and a start slower than the wait would never finish. The
        // next reconcile sees where it landed; only a new change replaces it.
        Some(state) if state.pending_job => change,
        Some(_) => both,
        // Unknown (systemd did not answer): what is owed or changed is done the safe way, a
        // restart starts a stopped unit too; a start of a running unit does nothing.
        None => Some(match both {
            Some((Job::Reload, cause)) => (Job::Reload, cause),
            Some((_, cause)) => (Job::Restart, cause),
            None => (Job::Start, Cause::Unknown),
        }),
    }
}

/// What `plan` owes once it starts: every start, restart and reload in it (with the
/// invocation each unit ran under when observed; the apply makes it exact before the journal
/// is written), the daemon-reload if any, and what specs left alone this time (kept, or with a
/// job of theirs on its way) still owe.
fn owed_by(plan: &Plan, facts: &Facts) -> Owed {
    let mut owed = Owed {
        daemon_reload: plan.actions.contains(&Action::DaemonReload),
        jobs: facts
            .owed
            .jobs
            .iter()
            .filter(|(name, _)| {
                plan.keep.contains(*name) || facts.states.get(*name).is_some_and(|s| s.pending_job)
            })
            .map(|(name, job)| (name.clone(), job.clone()))
            .collect(),
        ..Owed::default()
    };
    for action in &plan.actions {
        if let Action::Job(job @ (Job::Start | Job::Restart | Job::Reload), name) = action {
            let since = facts
                .states
                .get(name)
                .map(|s| s.invocation_id.clone())
                .unwrap_or_default();
            owed.jobs.insert(name.clone(), OwedJob { job: *job, since });
        }
    }
    owed
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod gated;
