//! `decide` with the health gate ([`crate::reconcile::gate`]): a canary first, the others after
//! it passes; a failed check rolls back and refuses the version; a newer version tries again.

use std::path::PathBuf;
use std::time::Duration;

use super::decide;
use crate::drivers::{ActiveState, Job, UnitState};
use crate::reconcile::facts::{Facts, Gate, Health, NameCheck, SpecFacts, Wants};
use crate::reconcile::owed::{OwedJob, Refusal, Rollout};
use crate::reconcile::plan::{Action, Cause, OnRotation};
use crate::retry::Requeue;
use crate::status::{Phase, Reason, SecretInUse};

const UNIT: &str = "[Container]\n";
const GATE: Gate = Gate {
    deadline: Duration::from_secs(30),
    interval: Duration::from_secs(2),
};

fn db() -> crate::secrets::SecretId {
    crate::secrets::SecretId::new("aws", "db")
}

fn version(v: &str) -> SecretInUse {
    SecretInUse {
        id: crate::secrets::SecretId::new("aws", "db"),
        version: v.into(),
        expires: None,
    }
}

/// A running, health-checked consumer of `aws/db` holding `live` and asked for `wanted`.
fn consumer(name: &str, live: &str, wanted: &str) -> SpecFacts {
    SpecFacts {
        name: name.into(),
        file: PathBuf::from(format!("specs/{name}.yaml")),
        name_check: NameCheck::Ours,
        wants: Ok(Wants {
            unit_text: UNIT.into(),
            volumes_changed: live != wanted,
            remount: false,
            on_rotation: OnRotation::Restart,
            versions: vec![version(wanted)],
            gate: Some(GATE),
            templates: Vec::new(),
        }),
        live: vec![version(live)],
        digest: String::new(),
        stop_before_end: false,
    }
}

/// A host where `specs` run (active, invocation `ab`), at time 1000 s, all restorable.
fn host(specs: Vec<SpecFacts>) -> Facts {
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    Facts {
        units: names.iter().map(|n| (n.clone(), UNIT.into())).collect(),
        states: names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    UnitState {
                        active_state: ActiveState::Active,
                        sub_state: "running".into(),
                        invocation_id: "ab".into(),
                        ..UnitState::default()
                    },
                )
            })
            .collect(),
        volume_specs: names.iter().cloned().collect(),
        restorable: names.iter().cloned().collect(),
        // Each check passed on the versions its spec runs.
        baseline: names.iter().map(|n| (n.clone(), Health::Healthy)).collect(),
        specs,
        now: 1_000_000,
        ..Facts::default()
    }
}

fn under_way(facts: &mut Facts, name: &str, deadline: u64) {
    facts.owed.rollouts.insert(
        name.into(),
        Rollout {
            versions: vec![version("v2")],
            previous: vec![version("v1")],
            deadline,
            rolling_back: false,
        },
    );
}

/// The plan's actions that change a spec (its bookkeeping left out).
fn changes(plan: &crate::reconcile::plan::Plan) -> Vec<Action> {
    plan.actions
        .iter()
        .filter(|a| !a.is_upkeep())
        .cloned()
        .collect()
}

fn restart(name: &str) -> Action {
    Action::Job(Job::Restart, name.into())
}

#[test]
fn a_new_version_goes_to_the_canary_alone_and_is_journaled_with_its_deadline() {
    let facts = host(vec![
        consumer("a", "v1", "v2"),
        consumer("b", "v1", "v2"),
        consumer("c", "v1", "v2"),
    ]);
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [
            Action::SealPrevious("a".into()),
            Action::WriteVolumes("a".into()),
            restart("a")
        ],
        "the files it runs now are sealed to the host before the new ones go in"
    );
    assert_eq!(plan.causes["a"], Cause::Rotation);
    assert_eq!(plan.specs["a"].reason, Reason::HealthChecking);
    assert_eq!(
        plan.requeue,
        Requeue::After(Duration::from_secs(2)),
        "the loop comes back to check it"
    );
    assert_eq!(plan.owed.rollouts["a"].deadline, 1_030_000);
    assert_eq!(plan.owed.rollouts["a"].previous, [version("v1")]);
    for other in ["b", "c"] {
        assert_eq!(plan.specs[other].reason, Reason::AwaitingCanary);
        assert!(plan.specs[other].message.contains("goes to a first"));
        assert_eq!(plan.specs[other].versions, [version("v1")]);
        assert!(plan.keep.contains(other));
    }
}

#[test]
fn the_stores_canary_count_sends_it_to_that_many_first() {
    let mut facts = host(vec![
        consumer("a", "v1", "v2"),
        consumer("b", "v1", "v2"),
        consumer("c", "v1", "v2"),
    ]);
    facts.canary.insert("aws".into(), 2);
    let plan = decide(&facts);
    assert_eq!(plan.owed.rollouts.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(plan.specs["c"].reason, Reason::AwaitingCanary);
}

#[test]
fn a_rollout_waits_on_its_check_until_the_deadline() {
    let mut facts = host(vec![consumer("a", "v2", "v2"), consumer("b", "v1", "v2")]);
    under_way(&mut facts, "a", 1_030_000);
    facts.health.insert("a".into(), Health::Unhealthy);
    let plan = decide(&facts);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(plan.specs["a"].reason, Reason::HealthChecking);
    assert!(plan.specs["a"].message.contains("30 s left"));
    assert_eq!(plan.requeue, Requeue::After(Duration::from_secs(2)));
    assert!(plan.owed.rollouts.contains_key("a"));
    assert_eq!(plan.specs["b"].reason, Reason::AwaitingCanary);
}

#[test]
fn a_canary_that_passes_proves_the_version_and_the_others_follow_at_once() {
    let mut facts = host(vec![
        consumer("a", "v2", "v2"),
        consumer("b", "v1", "v2"),
        consumer("c", "v1", "v2"),
    ]);
    under_way(&mut facts, "a", 1_030_000);
    facts.health.insert("a".into(), Health::Healthy);
    let plan = decide(&facts);
    assert_eq!(plan.owed.proven[&db()], "v2");
    assert!(!plan.owed.rollouts.contains_key("a"), "a's rollout is over");
    assert_eq!(
        plan.actions,
        [
            Action::SealPrevious("b".into()),
            Action::SealPrevious("c".into()),
            Action::WriteVolumes("b".into()),
            Action::WriteVolumes("c".into()),
            restart("b"),
            restart("c")
        ]
    );
    assert!(plan.owed.rollouts.contains_key("b") && plan.owed.rollouts.contains_key("c"));
}

#[test]
fn past_the_deadline_the_previous_files_go_back_and_the_version_is_refused() {
    let mut facts = host(vec![consumer("a", "v2", "v2"), consumer("b", "v1", "v2")]);
    under_way(&mut facts, "a", 1_000_000);
    facts.health.insert("a".into(), Health::Unhealthy);
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [Action::RestoreVolumes("a".into()), restart("a")]
    );
    assert_eq!(plan.causes["a"], Cause::Rollback);
    assert_eq!(plan.specs["a"].reason, Reason::RolledBack);
    assert_eq!(plan.specs["a"].versions, [version("v1")]);
    assert!(
        plan.specs["a"]
            .message
            .contains("version v2 of aws/db failed the health check of a"),
        "{}",
        plan.specs["a"].message
    );
    assert!(plan.owed.rollouts["a"].rolling_back);
    assert_eq!(plan.owed.refused[&db()].version, "v2");
    assert_eq!(plan.owed.jobs["a"].job, Job::Restart);
    // The other consumer never takes it, and is not said to have rolled back (issue 33).
    assert_eq!(plan.specs["b"].reason, Reason::VersionRefused);
    assert!(
        plan.specs["b"]
            .message
            .contains("this container never took it"),
        "{}",
        plan.specs["b"].message
    );
    assert!(plan.keep.contains("b"));
}

#[test]
fn a_container_that_stops_rolls_back_without_waiting_for_the_deadline() {
    let mut facts = host(vec![consumer("a", "v2", "v2")]);
    under_way(&mut facts, "a", 1_030_000);
    facts.states.get_mut("a").unwrap().active_state = ActiveState::Failed;
    let plan = decide(&facts);
    assert_eq!(plan.causes["a"], Cause::Rollback);
    assert!(
        plan.owed.refused[&db()]
            .said
            .contains("the container stopped"),
        "{:?}",
        plan.owed.refused
    );
}

#[test]
fn a_rollback_cut_short_is_finished_and_then_the_refused_version_is_left_alone() {
    let mut facts = host(vec![consumer("a", "v2", "v2")]);
    under_way(&mut facts, "a", 1_000_000);
    facts.owed.rollouts.get_mut("a").unwrap().rolling_back = true;
    facts.owed.refused.insert(
        db(),
        Refusal {
            version: "v2".into(),
            spec: "a".into(),
            said: "no check passed within 30 s".into(),
        },
    );
    // Killed before the restart landed: put back and restart again.
    facts.owed.jobs.insert(
        "a".into(),
        OwedJob {
            job: Job::Restart,
            since: "ab".into(),
        },
    );
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [Action::RestoreVolumes("a".into()), restart("a")]
    );
    // Restarted: the rollout is over; the store still says v2, which stays refused.
    facts.owed.jobs.clear();
    let mut rolled = host(vec![consumer("a", "v1", "v2")]);
    rolled.owed = facts.owed.clone();
    let plan = decide(&rolled);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(plan.owed.rollouts.is_empty());
    assert_eq!(plan.specs["a"].reason, Reason::RolledBack);
    assert_eq!(plan.specs["a"].phase, Phase::Degraded);
}

#[test]
fn a_newer_version_after_a_refusal_goes_to_the_canary_again() {
    let mut facts = host(vec![consumer("a", "v1", "v3"), consumer("b", "v1", "v3")]);
    facts.owed.refused.insert(
        db(),
        Refusal {
            version: "v2".into(),
            spec: "a".into(),
            said: "the check failed".into(),
        },
    );
    let plan = decide(&facts);
    assert_eq!(
        changes(&plan),
        [Action::WriteVolumes("a".into()), restart("a")]
    );
    assert_eq!(plan.specs["b"].reason, Reason::AwaitingCanary);
}

#[test]
fn without_the_previous_files_a_failed_rotation_says_so_and_keeps_the_container() {
    let mut facts = host(vec![consumer("a", "v2", "v2")]);
    facts.restorable.clear();
    under_way(&mut facts, "a", 1_000_000);
    let plan = decide(&facts);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.specs["a"].reason, Reason::RolledBack);
    assert!(plan.specs["a"].message.contains("are gone"));
    assert!(plan.owed.rollouts.is_empty());
    assert_eq!(plan.owed.refused[&db()].version, "v2");
}

#[test]
fn specs_without_a_health_check_rotate_together_as_before() {
    let mut ungated = consumer("a", "v1", "v2");
    if let Ok(wants) = &mut ungated.wants {
        wants.gate = None;
    }
    let facts = host(vec![ungated, consumer("b", "v1", "v2")]);
    let plan = decide(&facts);
    // a is no canary (it has no check); b is the first checked consumer.
    assert_eq!(
        changes(&plan),
        [
            Action::WriteVolumes("a".into()),
            Action::WriteVolumes("b".into()),
            restart("a"),
            restart("b")
        ]
    );
    assert!(!plan.owed.rollouts.contains_key("a"));
    assert!(plan.owed.rollouts.contains_key("b"));
}

/// Issue 33, finding 7: `aaa` (whose check fails whatever the version) and `bbb` shared a
/// secret; `aaa` was the canary because it sorts first, its check refused the version, and
/// `bbb` never got it. A consumer whose check fails on the version it runs now is no canary
/// (and not gated: its check says nothing); the next one by name is.
#[test]
fn regression_33_a_check_that_fails_on_what_it_runs_makes_no_canary() {
    let mut facts = host(vec![
        consumer("aaa", "v1", "v2"),
        consumer("bbb", "v1", "v2"),
    ]);
    facts.baseline.insert("aaa".into(), Health::Unhealthy);
    let plan = decide(&facts);
    assert_eq!(
        changes(&plan),
        [Action::WriteVolumes("bbb".into()), restart("bbb")]
    );
    assert!(plan.owed.rollouts.contains_key("bbb"));
    assert_eq!(plan.specs["aaa"].reason, Reason::AwaitingCanary);
    assert!(
        plan.specs["aaa"].message.contains("goes to bbb first")
            && plan.specs["aaa"].message.contains("not gated"),
        "{}",
        plan.specs["aaa"].message
    );

    // bbb passes: aaa follows, ungated (no rollout of its own to refuse the version with).
    let mut facts = host(vec![
        consumer("aaa", "v1", "v2"),
        consumer("bbb", "v2", "v2"),
    ]);
    facts.baseline.insert("aaa".into(), Health::Unhealthy);
    under_way(&mut facts, "bbb", 1_030_000);
    facts.health.insert("bbb".into(), Health::Healthy);
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [Action::WriteVolumes("aaa".into()), restart("aaa")]
    );
    assert!(!plan.owed.rollouts.contains_key("aaa"));
}

/// The canary takes a new version only once its check has said what it thinks of the version
/// it runs now; until then it and the others wait, and the loop comes back.
#[test]
fn regression_33_the_canary_is_checked_on_what_it_runs_first() {
    let mut facts = host(vec![consumer("a", "v1", "v2"), consumer("b", "v1", "v2")]);
    facts.baseline.clear();
    let plan = decide(&facts);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(plan.specs["a"].reason, Reason::AwaitingCanary);
    assert!(
        plan.specs["a"]
            .message
            .contains("once its health check has passed"),
        "{}",
        plan.specs["a"].message
    );
    assert_eq!(plan.requeue, Requeue::After(Duration::from_secs(2)));
}

/// The store's owner chooses the canaries (`rollout.canarySelector`), not the alphabet; and
/// when no consumer may be one, none waits forever: each goes on its own check.
#[test]
fn regression_33_the_store_chooses_its_canaries_and_none_waits_forever() {
    let mut facts = host(vec![consumer("a", "v1", "v2"), consumer("z", "v1", "v2")]);
    facts
        .canary_eligible
        .insert("aws".into(), ["z".to_owned()].into());
    let plan = decide(&facts);
    assert_eq!(
        changes(&plan),
        [Action::WriteVolumes("z".into()), restart("z")]
    );
    assert!(plan.specs["a"].message.contains("goes to z first"));

    facts.canary_eligible.insert("aws".into(), [].into());
    let plan = decide(&facts);
    assert_eq!(plan.owed.rollouts.keys().collect::<Vec<_>>(), ["a", "z"]);
}

/// Issue 33 ("also seen"): a newer version written while the canary was being checked on a bad
/// one waited for that check's whole deadline. It replaces the one under check at once; what a
/// failure puts back is still what ran before both, and the deadline starts again.
#[test]
fn regression_33_a_newer_version_cuts_a_check_short() {
    let mut facts = host(vec![consumer("a", "v2", "v3"), consumer("b", "v1", "v3")]);
    under_way(&mut facts, "a", 1_030_000);
    facts.now = 1_010_000;
    facts.health.insert("a".into(), Health::Unhealthy);
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [Action::WriteVolumes("a".into()), restart("a")]
    );
    let rollout = &plan.owed.rollouts["a"];
    assert_eq!(rollout.versions, [version("v3")]);
    assert_eq!(rollout.previous, [version("v1")], "what ran before both");
    assert_eq!(rollout.deadline, 1_040_000);
    assert!(
        plan.owed.refused.is_empty(),
        "v2 is not refused: it was replaced"
    );
    assert_eq!(plan.specs["b"].reason, Reason::AwaitingCanary);
}

#[test]
fn a_retry_request_lifts_the_refusal_and_is_taken_only_by_the_apply() {
    let mut facts = host(vec![consumer("a", "v1", "v2")]);
    facts.owed.refused.insert(
        db(),
        Refusal {
            version: "v2".into(),
            spec: "a".into(),
            said: "exit status 1".into(),
        },
    );
    let held = decide(&facts);
    assert_eq!(held.specs["a"].reason, Reason::RolledBack);
    facts.retries.insert("a".into());
    let plan = decide(&facts);
    assert!(
        plan.owed.refused.is_empty(),
        "the journal no longer refuses v2"
    );
    assert_eq!(
        plan.actions.first(),
        Some(&Action::ConsumeRetry("a".into())),
        "{:?}",
        plan.actions
    );
    assert!(
        plan.actions.contains(&Action::WriteVolumes("a".into())),
        "{:?}",
        plan.actions
    );
}

#[test]
fn checks_are_started_by_the_plan_for_rollouts_and_baselines_and_never_twice() {
    let check = crate::reconcile::facts::CheckCommand {
        command: vec!["true".into()],
        timeout: Duration::from_secs(10),
        interval: Duration::from_secs(2),
    };
    let mut facts = host(vec![consumer("a", "v2", "v2"), consumer("b", "v1", "v2")]);
    under_way(&mut facts, "a", 1_030_000);
    facts.baseline.clear();
    facts.checked = [("a".into(), check.clone()), ("b".into(), check)].into();
    let plan = decide(&facts);
    assert_eq!(
        plan.checks,
        ["a", "b"].map(String::from).into(),
        "a's rollout waits on its check; b's baseline is wanted first"
    );
    assert!(
        plan.actions
            .ends_with(&[Action::Check("a".into()), Action::Check("b".into())])
    );
    assert_eq!(plan.requeue, Requeue::After(super::CHECK_POLL));
    facts.checks_running = ["a".to_owned()].into();
    let plan = decide(&facts);
    assert!(
        !plan.actions.contains(&Action::Check("a".into())),
        "a's runs already"
    );
    assert!(plan.checks.contains("a"), "and is still wanted");
}

#[test]
fn the_previous_files_are_held_outside_rotations_and_sealed_ones_forgotten_after() {
    let mut facts = host(vec![consumer("a", "v1", "v1"), consumer("b", "v1", "v2")]);
    facts.holdable = ["a", "b"].map(String::from).into();
    facts.sealed = ["gone".to_owned()].into();
    let plan = decide(&facts);
    assert!(plan.hold.contains("a"), "a runs what it asks for");
    assert!(
        !plan.hold.contains("b"),
        "b's rotation starts: it keeps v1's files"
    );
    assert!(plan.actions.contains(&Action::SealPrevious("b".into())));
    assert_eq!(
        plan.actions.last(),
        Some(&Action::ForgetSealed("gone".into())),
        "{:?}",
        plan.actions
    );
}
