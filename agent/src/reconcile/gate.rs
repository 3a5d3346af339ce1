//! The health gate: which rotations of health-checked specs go live now, which wait for a
//! canary, which wait on their check, which passed and which roll back. Pure, like
//! [`super::decide`], which asks it first and turns its [`Step`]s into actions.
//!
//! Rules for a spec with `rotation.healthCheck` whose running unit has new secret versions
//! (versions it asks for that its volumes do not hold yet):
//! 1. a version a health check refused is not taken again: the spec stays as it runs
//!    (`Degraded`, `RolledBack`) until a newer version comes or `ramlet sync --retry`;
//! 2. a version no canary has passed yet goes first to the `canary` consumers of that secret
//!    that have a health check (the first by name among those the store's
//!    `rollout.canarySelector` names; the store's `rollout.canary`, default 1), once a check
//!    on the version each runs now has passed (a consumer whose check fails on that is no
//!    canary, and not gated: it follows); the others wait (`Progressing`, `AwaitingCanary`).
//!    With no consumer fit to be a canary, each goes on its own check;
//! 3. otherwise it goes live (files written, restart or reload) and is journaled as a rollout
//!    with a deadline; each reconcile then runs the check once: passed, the rollout ends (and a
//!    canary's versions are proven for the others); the unit down, or the deadline past, the
//!    previous files go back and the unit restarts (`RolledBack`).
//!
//! Specs without a health check, first starts and spec changes are not gated: they are
//! decided as before.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::facts::{Facts, Health, SpecFacts, Wants};
use super::owed::{Refusal, Rollout};
use super::plan::Verdict;
use crate::drivers::UnitState;
use crate::secrets::SecretId;
use crate::status::{Phase, Reason, SecretInUse};

/// How soon after a rollback the loop comes back to end the rollout (its restart paid).
const AFTER_ROLLBACK: Duration = Duration::from_secs(1);

/// What the gate says of one spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Not a gated rotation: decided as usual.
    Usual,
    /// A gated rotation goes live now: decided as usual, and journaled as a rollout.
    Go,
    /// Left exactly as it runs, with this verdict.
    Hold(Verdict),
    /// Its rollout waits on the health check: left as it runs, checked again soon.
    Wait(Verdict),
    /// Its rollout failed: the previous files go back, and the unit restarts.
    Rollback(Verdict),
}

/// The gate's answer for one reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates {
    /// The step of each gated spec (a spec not named is [`Step::Usual`]).
    pub steps: BTreeMap<String, Step>,
    /// The rollouts the journal must hold once the plan starts.
    pub rollouts: BTreeMap<String, Rollout>,
    /// The refused versions, by secret.
    pub refused: BTreeMap<SecretId, Refusal>,
    /// The proven versions, by secret.
    pub proven: BTreeMap<SecretId, String>,
    /// How soon a waiting rollout's check must run again.
    pub recheck: Option<Duration>,
}

impl Gates {
    /// Comes back within `wait` at the latest.
    fn recheck_within(&mut self, wait: Duration) {
        self.recheck = Some(self.recheck.map_or(wait, |r| r.min(wait)));
    }

    /// The step of `name`.
    #[must_use]
    pub fn step(&self, name: &str) -> &Step {
        self.steps.get(name).unwrap_or(&Step::Usual)
    }
}

/// The gate's steps for `facts`; the refusals of the secrets in `lifted` (`ramlet sync
/// --retry`) are gone.
#[must_use]
pub fn gates(facts: &Facts, lifted: &BTreeSet<SecretId>) -> Gates {
    let mut gates = Gates {
        refused: facts
            .owed
            .refused
            .iter()
            .filter(|(key, _)| !lifted.contains(*key))
            .map(|(key, refusal)| (key.clone(), refusal.clone()))
            .collect(),
        proven: facts.owed.proven.clone(),
        ..Gates::default()
    };
    // Rollouts under way first: one that passes proves its versions for the other consumers
    // in this same reconcile.
    for spec in &facts.specs {
        let Some(rollout) = facts.owed.rollouts.get(&spec.name) else {
            continue;
        };
        if let Some(step) = under_way(spec, rollout, facts, &mut gates) {
            gates.steps.insert(spec.name.clone(), step);
        }
    }
    for spec in &facts.specs {
        if gates.steps.contains_key(&spec.name) {
            continue;
        }
        let Ok(wants) = &spec.wants else {
            continue;
        };
        let step = fresh(spec, wants, facts, &mut gates);
        if step == Step::Go
            && let Some(gate) = wants.gate
        {
            // Checked from the next reconcile on, every interval.
            gates.recheck_within(gate.interval);
            gates.rollouts.insert(
                spec.name.clone(),
                Rollout {
                    versions: wants.versions.clone(),
                    previous: spec.live.clone(),
                    deadline: facts.now
                        + u64::try_from(gate.deadline.as_millis()).unwrap_or(u64::MAX),
                    rolling_back: false,
                },
            );
        }
        if step != Step::Usual {
            gates.steps.insert(spec.name.clone(), step);
        }
    }
    gates
}

/// A rollout the journal holds for `spec`: its step, or `None` when it is over (passed,
/// cancelled by a spec change, or rolled back and restarted), and the spec is decided afresh.
fn under_way(
    spec: &SpecFacts,
    rollout: &Rollout,
    facts: &Facts,
    gates: &mut Gates,
) -> Option<Step> {
    let name = &spec.name;
    if rollout.rolling_back {
        // The rollback's restart is owed until it succeeds: put the files back again (the same
        // files; a crash may have come before they were written) and restart.
        if !facts.owed.jobs.contains_key(name) {
            return None;
        }
        if facts.restorable.contains(name) {
            gates.rollouts.insert(name.clone(), rollout.clone());
            gates.recheck_within(AFTER_ROLLBACK);
            return Some(Step::Rollback(rolled_back(spec, rollout, gates)));
        }
        // Killed mid-rollback, and the previous files lived only in that ramlet's memory.
        return Some(gone(rollout, "a ramlet stopped during the rollback"));
    }
    let Ok(wants) = &spec.wants else {
        // Its secrets cannot be shaped now: kept as it runs, the rollout waits.
        gates.rollouts.insert(name.clone(), rollout.clone());
        return Some(Step::Wait(waiting(
            rollout,
            facts,
            "its secrets cannot be read now",
        )));
    };
    let Some(gate) = wants.gate else {
        // The health check was taken out of the spec: nothing to wait for.
        return None;
    };
    if facts.units.get(name) != Some(&wants.unit_text) || wants.remount {
        // A spec change restarts it anyway: decided as a change, not as this rotation.
        return None;
    }
    let newer: Vec<&SecretInUse> = new_in(&wants.versions, &rollout.versions).collect();
    if !newer.is_empty()
        && newer.iter().all(|v| {
            gates
                .refused
                .get(&v.id)
                .is_none_or(|r| r.version != v.version)
        })
    {
        // A newer version came while this one was being checked: it replaces it at once (its
        // check would judge a value already replaced), with the files from before both still
        // what a failure puts back, and a deadline of its own.
        gates.rollouts.insert(
            name.clone(),
            Rollout {
                versions: wants.versions.clone(),
                previous: rollout.previous.clone(),
                deadline: facts.now + u64::try_from(gate.deadline.as_millis()).unwrap_or(u64::MAX),
                rolling_back: false,
            },
        );
        gates.recheck_within(gate.interval);
        return Some(Step::Go);
    }
    let state = facts.states.get(name);
    let said = match (facts.health.get(name), state) {
        (_, Some(state)) if !state.is_up() => Some(format!(
            "the container stopped ({}/{})",
            state.active_state, state.sub_state
        )),
        (Some(Health::Healthy), _) => {
            for version in &rollout.versions {
                gates
                    .proven
                    .insert(version.id.clone(), version.version.clone());
            }
            return None;
        }
        _ if facts.now >= rollout.deadline => Some(format!(
            "no check passed within {} s",
            gate.deadline.as_secs()
        )),
        _ => None,
    };
    let Some(said) = said else {
        gates.rollouts.insert(name.clone(), rollout.clone());
        gates.recheck_within(gate.interval);
        let note = match facts.health.get(name) {
            Some(Health::Unhealthy) => "the last check failed".to_owned(),
            Some(Health::Unknown(why)) => format!("the check could not run: {why}"),
            _ => "not checked yet".to_owned(),
        };
        return Some(Step::Wait(waiting(rollout, facts, &note)));
    };
    for version in new_in(&rollout.versions, &rollout.previous) {
        gates.refused.insert(
            version.id.clone(),
            Refusal {
                version: version.version.clone(),
                spec: name.clone(),
                said: said.clone(),
            },
        );
    }
    if facts.restorable.contains(name) {
        let mut rollout = rollout.clone();
        rollout.rolling_back = true;
        let verdict = rolled_back(spec, &rollout, gates);
        gates.rollouts.insert(name.clone(), rollout);
        // Back soon to see the rollback's restart paid and end the rollout.
        gates.recheck_within(AFTER_ROLLBACK);
        Some(Step::Rollback(verdict))
    } else {
        // The files it ran with lived in the memory of an earlier ramlet: nothing to put back.
        Some(gone(
            rollout,
            &format!("the new versions failed the health check ({said})"),
        ))
    }
}

/// A rollback with nothing to put back: the container keeps the new versions, and says so.
fn gone(rollout: &Rollout, what: &str) -> Step {
    Step::Hold(Verdict {
        phase: Phase::Degraded,
        reason: Reason::RolledBack,
        message: format!(
            "{what}, but the previous files were held only by the ramlet that started this rotation and are gone (this store keeps one version); the container keeps the new versions: rotate to a good version"
        ),
        versions: rollout.versions.clone(),
    })
}

/// A health-checked spec with no rollout under way: whether its new versions go live now.
fn fresh(spec: &SpecFacts, wants: &Wants, facts: &Facts, gates: &mut Gates) -> Step {
    let name = &spec.name;
    let rotation = wants.gate.is_some()
        && wants.volumes_changed
        && !wants.remount
        && !spec.live.is_empty()
        && facts.units.get(name) == Some(&wants.unit_text)
        && facts.states.get(name).is_some_and(UnitState::is_up);
    if !rotation {
        return Step::Usual;
    }
    let new: Vec<&SecretInUse> = new_in(&wants.versions, &spec.live).collect();
    if new.is_empty() {
        return Step::Usual;
    }
    if let Some(refusal) = new.iter().find_map(|v| {
        gates
            .refused
            .get(&v.id)
            .filter(|r| r.version == v.version)
            .map(|r| (v, r))
    }) {
        let (version, refusal) = refusal;
        // The spec whose check failed rolled back; the others never left what they run.
        let (reason, message) = if refusal.spec == *name {
            (Reason::RolledBack, refused_message(name, version, refusal))
        } else {
            (
                Reason::VersionRefused,
                format!(
                    "keeps what it runs: version {} of {} failed the health check of {} ({}) and is refused, and this container never took it; a newer version, or `ramlet sync --retry {}`, tries again",
                    version.version, version.id, refusal.spec, refusal.said, refusal.spec
                ),
            )
        };
        return Step::Hold(Verdict {
            phase: Phase::Degraded,
            reason,
            message,
            versions: spec.live.clone(),
        });
    }
    let baseline = facts.baseline.get(name);
    let unfit = baseline == Some(&Health::Unhealthy);
    let interval = wants.gate.map_or(AFTER_ROLLBACK, |g| g.interval);
    for version in new {
        let key = &version.id;
        if gates.proven.get(key) == Some(&version.version) {
            continue;
        }
        let canaries = canaries(version, facts);
        if canaries.iter().any(|c| c == name) {
            if baseline.is_none() {
                // First, what its check says of what it runs now: a check that fails on that
                // would say nothing of the new version.
                gates.recheck_within(interval);
                return Step::Hold(Verdict {
                    phase: Phase::Progressing,
                    reason: Reason::AwaitingCanary,
                    message: format!(
                        "version {} of {key} goes to this container first, once its health check has passed on the version it runs now",
                        version.version
                    ),
                    versions: spec.live.clone(),
                });
            }
            continue;
        }
        if canaries.is_empty() {
            // No consumer may be a canary (none the store's selector names, or each one's
            // check fails on what it runs): each goes on its own check, none waits forever.
            continue;
        }
        let why = if unfit {
            "; its own health check fails on the version it runs now, so it is not gated and follows"
        } else {
            ""
        };
        return Step::Hold(Verdict {
            phase: Phase::Progressing,
            reason: Reason::AwaitingCanary,
            message: format!(
                "version {} of {key} goes to {} first; this container follows once it passes its health check{why}",
                version.version,
                canaries.join(", ")
            ),
            versions: spec.live.clone(),
        });
    }
    if unfit {
        // Its check fails on the versions it ran before: it would refuse any version.
        return Step::Usual;
    }
    Step::Go
}

/// The health-checked consumers of `version` that take it first: the first `canary` by name
/// among those the store's `rollout.canarySelector` names (any, without one), leaving out each
/// whose check fails on the versions it runs now.
#[must_use]
pub fn canaries(version: &SecretInUse, facts: &Facts) -> Vec<String> {
    let count = facts.canary.get(&version.id.store).copied().unwrap_or(1);
    let eligible = facts.canary_eligible.get(&version.id.store);
    facts
        .specs
        .iter()
        .filter(|s| {
            s.wants
                .as_ref()
                .is_ok_and(|w| w.gate.is_some() && w.versions.contains(version))
        })
        .filter(|s| eligible.is_none_or(|e| e.contains(&s.name)))
        .filter(|s| facts.baseline.get(&s.name) != Some(&Health::Unhealthy))
        .map(|s| s.name.clone())
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .collect()
}

/// The versions of `wanted` that `live` does not hold.
fn new_in<'a>(
    wanted: &'a [SecretInUse],
    live: &'a [SecretInUse],
) -> impl Iterator<Item = &'a SecretInUse> + 'a {
    wanted.iter().filter(move |v| !live.contains(v))
}

/// The verdict of a spec whose rollout is rolling back.
fn rolled_back(spec: &SpecFacts, rollout: &Rollout, gates: &Gates) -> Verdict {
    let message = new_in(&rollout.versions, &rollout.previous)
        .find_map(|v| {
            gates
                .refused
                .get(&v.id)
                .map(|r| refused_message(&spec.name, v, r))
        })
        .unwrap_or_else(|| "the new versions failed the health check".into());
    Verdict {
        phase: Phase::Degraded,
        reason: Reason::RolledBack,
        message,
        versions: rollout.previous.clone(),
    }
}

/// What status says of a refused version.
fn refused_message(name: &str, version: &SecretInUse, refusal: &Refusal) -> String {
    format!(
        "version {} of {} failed the health check of {} ({}) and was rolled back; a newer version, or `ramlet sync --retry {name}`, tries again",
        version.version, version.id, refusal.spec, refusal.said
    )
}

/// The verdict of a spec whose rollout waits on its check.
fn waiting(rollout: &Rollout, facts: &Facts, note: &str) -> Verdict {
    Verdict {
        phase: Phase::Progressing,
        reason: Reason::HealthChecking,
        message: format!(
            "new versions live; waiting for the health check to pass ({note}; {} s left)",
            rollout.deadline.saturating_sub(facts.now).div_ceil(1000)
        ),
        versions: rollout.versions.clone(),
    }
}

// Tested through `decide` (`decide/gated.rs`).
