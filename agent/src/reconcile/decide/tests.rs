//! `decide` from facts alone: each phase, each cause, owed work, pending jobs, units systemd
//! has not loaded or said nothing about, names that are taken, files that broke.
//! (Over 450 lines: one table of cases, each a few lines of facts and the plan they give.)

use std::path::PathBuf;

use super::*;
use crate::drivers::{ActiveState, UnitState};
use crate::reconcile::facts::Problem;
use crate::status::SpecStatus;

use Action::{DaemonReload, RemoveUnit, RemoveVolumes, WriteUnit, WriteVolumes};

fn wants(text: &str, volumes_changed: bool, on_rotation: OnRotation) -> Wants {
    Wants {
        unit_text: text.into(),
        volumes_changed,
        remount: false,
        on_rotation,
        versions: Vec::new(),
        gate: None,
        templates: Vec::new(),
    }
}

fn spec(name: &str, wants: Wants) -> SpecFacts {
    SpecFacts {
        name: name.into(),
        file: PathBuf::from(format!("specs/{name}.yaml")),
        name_check: NameCheck::Ours,
        wants: Ok(wants),
        live: Vec::new(),
        digest: String::new(),
        stop_before_end: false,
    }
}

/// A new spec (no unit file yet, the name free).
fn new_spec(name: &str, wants: Wants) -> SpecFacts {
    SpecFacts {
        name_check: NameCheck::Free,
        ..spec(name, wants)
    }
}

fn state(active: ActiveState) -> UnitState {
    UnitState {
        active_state: active,
        sub_state: "running".into(),
        invocation_id: "ab".into(),
        ..UnitState::default()
    }
}

/// A host running ramlet's `units` (name, unit text), each active with volumes.
fn host(units: &[(&str, &str)]) -> Facts {
    Facts {
        units: units
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect(),
        states: units
            .iter()
            .map(|(n, _)| ((*n).to_owned(), state(ActiveState::Active)))
            .collect(),
        volume_specs: units.iter().map(|(n, _)| (*n).to_owned()).collect(),
        ..Facts::default()
    }
}

fn with(mut facts: Facts, specs: Vec<SpecFacts>) -> Facts {
    facts.specs = specs;
    facts
}

fn job(job: Job, name: &str) -> Action {
    Action::Job(job, name.into())
}

/// The job `plan` runs on `name`'s unit, with its cause.
fn job_of(plan: &Plan, name: &str) -> Option<(Job, Cause)> {
    plan.jobs_with_names()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, job, cause)| (job, cause))
}

/// A backoff for what may pass by itself.
const SOON: Requeue = Requeue::Backoff {
    transient: true,
    within: None,
};

fn owe(facts: &mut Facts, name: &str, job: Job, since: &str) {
    facts.owed.jobs.insert(
        name.into(),
        OwedJob {
            job,
            since: since.into(),
        },
    );
}

#[test]
fn a_new_spec_gets_volumes_then_unit_then_one_reload_then_start() {
    let mut facts = with(
        Facts::default(),
        vec![new_spec("web", wants("u1", true, OnRotation::Restart))],
    );
    facts
        .states
        .insert("web".into(), state(ActiveState::NotLoaded));
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [
            WriteVolumes("web".into()),
            WriteUnit("web".into()),
            DaemonReload,
            job(Job::Start, "web")
        ]
    );
    assert_eq!(plan.causes["web"], Cause::Spec);
    assert_eq!(plan.specs["web"].phase, Phase::Progressing);
    assert_eq!(plan.owed.jobs["web"].job, Job::Start);
    assert!(plan.owed.daemon_reload);
    assert_eq!(plan.requeue, Requeue::AwaitChange);
}

#[test]
fn nothing_changed_means_nothing_to_do() {
    let facts = with(
        host(&[("web", "u1")]),
        vec![spec("web", wants("u1", false, OnRotation::Restart))],
    );
    let plan = decide(&facts);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(plan.owed.is_empty());
}

#[test]
fn a_rotation_touches_only_the_containers_that_use_the_secret() {
    let facts = with(
        host(&[("a", "ua"), ("b", "ub"), ("c", "uc"), ("d", "ud")]),
        vec![
            spec("a", wants("ua", true, OnRotation::Restart)),
            spec("b", wants("ub", false, OnRotation::Restart)),
            spec("c", wants("uc", true, OnRotation::Reload)),
            spec("d", wants("ud", true, OnRotation::Nothing)),
        ],
    );
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [
            WriteVolumes("a".into()),
            WriteVolumes("c".into()),
            WriteVolumes("d".into()),
            job(Job::Restart, "a"),
            job(Job::Reload, "c")
        ]
    );
    assert_eq!(
        plan.jobs(),
        [
            (Job::Restart, Cause::Rotation),
            (Job::Reload, Cause::Rotation)
        ]
    );
}

#[test]
fn a_changed_unit_is_written_reloaded_once_and_restarted() {
    let facts = with(
        host(&[("a", "old"), ("b", "old")]),
        vec![
            spec("a", wants("new", false, OnRotation::Nothing)),
            spec("b", wants("new", false, OnRotation::Nothing)),
        ],
    );
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [
            WriteUnit("a".into()),
            WriteUnit("b".into()),
            DaemonReload,
            job(Job::Restart, "a"),
            job(Job::Restart, "b")
        ]
    );
    assert_eq!(plan.causes["a"], Cause::Spec);
}

#[test]
fn a_new_mount_restarts_whatever_the_rotation_strategy() {
    let mut remount = wants("u", true, OnRotation::Nothing);
    remount.remount = true;
    let plan = decide(&with(host(&[("a", "u")]), vec![spec("a", remount)]));
    assert_eq!(job_of(&plan, "a"), Some((Job::Restart, Cause::Remount)));
}

#[test]
fn a_removed_spec_is_stopped_unlinked_and_its_volumes_wiped() {
    let facts = with(
        host(&[("a", "ua"), ("gone", "ug")]),
        vec![spec("a", wants("ua", false, OnRotation::Restart))],
    );
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [
            job(Job::Stop, "gone"),
            RemoveUnit("gone".into()),
            DaemonReload,
            RemoveVolumes("gone".into())
        ]
    );
    assert_eq!(plan.causes["gone"], Cause::Removed);
    assert!(!plan.specs.contains_key("gone"));
}

#[test]
fn a_spec_this_host_no_longer_selects_is_removed_even_while_a_file_is_broken() {
    let mut facts = host(&[("elsewhere", "u")]);
    facts.unselected.insert("elsewhere".into());
    facts.broken_files.insert("specs/other.yaml".into());
    let plan = decide(&facts);
    assert_eq!(
        job_of(&plan, "elsewhere"),
        Some((Job::Stop, Cause::Removed))
    );
}

#[test]
fn a_running_spec_whose_file_broke_is_kept_as_it_runs() {
    let mut facts = host(&[("broken", "ub"), ("gone", "ug")]);
    let file = PathBuf::from("specs/broken.yaml");
    facts.broken_files.insert(file.clone());
    for (name, file) in [("broken", file), ("gone", "specs/gone.yaml".into())] {
        facts.last.insert(
            name.into(),
            SpecStatus {
                file,
                ..SpecStatus::default()
            },
        );
    }
    let plan = decide(&facts);
    assert_eq!(plan.keep.iter().collect::<Vec<_>>(), ["broken"]);
    assert_eq!(plan.specs["broken"].phase, Phase::Degraded);
    assert_eq!(plan.specs["broken"].reason, Reason::InvalidSpec);
    assert!(job_of(&plan, "broken").is_none());
    assert_eq!(job_of(&plan, "gone"), Some((Job::Stop, Cause::Removed)));
    assert_eq!(
        plan.requeue,
        Requeue::AwaitChange,
        "a broken file waits for an edit"
    );
}

/// Each way a spec cannot be applied, as its phase, reason, whether it is kept, and whether
/// the loop comes back soon.
#[test]
fn every_spec_problem_has_its_phase_and_only_systemd_silence_retries_soon() {
    let problem = |reason| Problem {
        reason,
        message: "why".into(),
        versions: Vec::new(),
    };
    let cases = [
        // (name check, problem, runs already, phase, reason, kept, retry)
        (
            NameCheck::TakenBySystemd("loaded".into()),
            None,
            false,
            Phase::Failed,
            Reason::UnitNameTaken,
            false,
            Requeue::AwaitChange,
        ),
        (
            NameCheck::TakenInUnitDir("units/a.container".into()),
            None,
            false,
            Phase::Failed,
            Reason::UnitNameTaken,
            false,
            Requeue::AwaitChange,
        ),
        (
            NameCheck::Unknown("no answer".into()),
            None,
            false,
            Phase::Degraded,
            Reason::SystemdUnavailable,
            false,
            SOON,
        ),
        (
            NameCheck::Free,
            Some(Reason::SecretNotFound),
            false,
            Phase::Failed,
            Reason::SecretNotFound,
            false,
            Requeue::AwaitChange,
        ),
        (
            NameCheck::Ours,
            Some(Reason::PermissionDenied),
            true,
            Phase::Degraded,
            Reason::PermissionDenied,
            true,
            Requeue::AwaitChange,
        ),
        (
            NameCheck::Ours,
            Some(Reason::RenderFailed),
            true,
            Phase::Degraded,
            Reason::RenderFailed,
            true,
            Requeue::AwaitChange,
        ),
    ];
    for (check, problem_reason, runs, phase, reason, kept, retry) in cases {
        let mut facts = if runs {
            host(&[("a", "ua")])
        } else {
            Facts::default()
        };
        let mut a = spec("a", wants("ua", true, OnRotation::Restart));
        a.name_check = check.clone();
        if let Some(r) = problem_reason {
            a.wants = Err(problem(r));
        }
        facts.specs = vec![a];
        let plan = decide(&facts);
        let case = format!("{check:?} {problem_reason:?}");
        assert_eq!(plan.specs["a"].phase, phase, "{case}");
        assert_eq!(plan.specs["a"].reason, reason, "{case}");
        assert_eq!(plan.keep.contains("a"), kept, "{case}");
        assert_eq!(plan.requeue, retry, "{case}");
        assert!(plan.actions.is_empty(), "{case}: {:?}", plan.actions);
    }
}

#[test]
fn a_stopped_unit_is_started_again() {
    for down in [ActiveState::Failed, ActiveState::Inactive] {
        let mut facts = with(
            host(&[("a", "ua")]),
            vec![spec("a", wants("ua", false, OnRotation::Restart))],
        );
        facts.states.get_mut("a").unwrap().active_state = down;
        assert_eq!(
            job_of(&decide(&facts), "a"),
            Some((Job::Start, Cause::Down))
        );
    }
}

#[test]
fn a_unit_systemd_has_not_loaded_is_started() {
    // ramlet's file is there but systemd never read it (a daemon-reload lost with a crash).
    let mut facts = with(
        host(&[("a", "ua")]),
        vec![spec("a", wants("ua", false, OnRotation::Restart))],
    );
    facts.states.get_mut("a").unwrap().active_state = ActiveState::NotLoaded;
    facts.owed.daemon_reload = true;
    let plan = decide(&facts);
    assert_eq!(plan.actions, [DaemonReload, job(Job::Start, "a")]);
}

#[test]
fn adoption_after_a_restart_of_ramlet_restarts_nothing() {
    let facts = with(
        host(&[("a", "ua"), ("b", "ub")]),
        vec![
            spec("a", wants("ua", false, OnRotation::Restart)),
            spec("b", wants("ub", false, OnRotation::Reload)),
        ],
    );
    assert!(decide(&facts).actions.is_empty());
}

#[test]
fn owed_work_is_done_even_when_nothing_differs_any_more() {
    // The volume was swapped and the unit written; the restart and reload never happened.
    let mut facts = with(
        host(&[("a", "ua"), ("b", "ub"), ("c", "uc")]),
        vec![
            spec("a", wants("ua", false, OnRotation::Restart)),
            spec("b", wants("ub", false, OnRotation::Reload)),
            spec("c", wants("uc", false, OnRotation::Restart)),
        ],
    );
    owe(&mut facts, "a", Job::Restart, "ab");
    owe(&mut facts, "b", Job::Reload, "ab");
    facts.owed.daemon_reload = true;
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [DaemonReload, job(Job::Restart, "a"), job(Job::Reload, "b")]
    );
    assert_eq!(
        plan.jobs(),
        [(Job::Restart, Cause::Owed), (Job::Reload, Cause::Owed)]
    );
}

#[test]
fn owed_work_already_done_by_a_new_invocation_is_not_done_twice() {
    let mut facts = with(
        host(&[("a", "ua")]),
        vec![spec("a", wants("ua", false, OnRotation::Restart))],
    );
    owe(&mut facts, "a", Job::Restart, "an-older-invocation");
    let plan = decide(&facts);
    assert!(plan.actions.is_empty());
    assert!(plan.owed.is_empty(), "the debt is settled");
}

/// An owed reload and a changed unit make one restart, counted as what it is for: the spec's
/// change (issue 21: the metrics called it "owed").
#[test]
fn an_owed_reload_and_a_changed_unit_make_one_restart_for_the_change() {
    let mut facts = with(
        host(&[("a", "old")]),
        vec![spec("a", wants("new", false, OnRotation::Reload))],
    );
    owe(&mut facts, "a", Job::Reload, "ab");
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [WriteUnit("a".into()), DaemonReload, job(Job::Restart, "a")]
    );
    assert_eq!(plan.causes["a"], Cause::Spec);
}

#[test]
fn an_unknown_state_never_loses_a_rotation_and_never_restarts_an_unchanged_unit() {
    let mut facts = with(
        host(&[("a", "ua"), ("b", "ub"), ("c", "uc")]),
        vec![
            spec("a", wants("ua", true, OnRotation::Restart)),
            spec("b", wants("ub", false, OnRotation::Restart)),
            spec("c", wants("uc", true, OnRotation::Reload)),
        ],
    );
    facts.states.clear();
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [
            WriteVolumes("a".into()),
            WriteVolumes("c".into()),
            job(Job::Restart, "a"),
            job(Job::Start, "b"),
            job(Job::Reload, "c"),
        ]
    );
    assert_eq!(
        plan.jobs(),
        [
            (Job::Restart, Cause::Rotation),
            (Job::Start, Cause::Unknown),
            (Job::Reload, Cause::Rotation)
        ]
    );
}

/// Issue 19: a restart owed while its slow start is still a pending job (it outlived
/// ramlet's wait) was issued again at every reconcile, replacing the job each time, so a
/// container slower to start than the wait never ran. A pending job is waited for, and the
/// debt kept until it lands; a new change still replaces it.
#[test]
fn an_owed_job_is_not_issued_again_while_a_job_is_on_its_way() {
    let mut facts = with(
        host(&[("a", "ua"), ("b", "ub")]),
        vec![
            spec("a", wants("ua", false, OnRotation::Restart)),
            spec("b", wants("ub", true, OnRotation::Restart)),
        ],
    );
    for name in ["a", "b"] {
        owe(&mut facts, name, Job::Restart, "ab");
        let state = facts.states.get_mut(name).unwrap();
        state.active_state = ActiveState::Activating;
        state.pending_job = true;
    }
    let plan = decide(&facts);
    assert_eq!(
        plan.actions,
        [WriteVolumes("b".into()), job(Job::Restart, "b")]
    );
    assert_eq!(
        plan.owed
            .jobs
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["a", "b"],
        "a's debt waits for its job"
    );
}

#[test]
fn what_a_plan_owes_keeps_the_debts_of_specs_left_alone() {
    let mut facts = with(
        host(&[("a", "ua"), ("kept", "uk"), ("gone", "ug")]),
        vec![
            spec("a", wants("ua", true, OnRotation::Restart)),
            SpecFacts {
                wants: Err(Problem {
                    reason: Reason::ProviderUnavailable,
                    message: "down".into(),
                    versions: Vec::new(),
                }),
                ..spec("kept", wants("uk", false, OnRotation::Restart))
            },
        ],
    );
    owe(&mut facts, "kept", Job::Restart, "ab");
    owe(&mut facts, "gone", Job::Restart, "ab");
    let plan = decide(&facts);
    assert!(plan.owed.daemon_reload);
    assert_eq!(
        plan.owed
            .jobs
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["a", "kept"]
    );
    assert_eq!(plan.owed.jobs["a"].since, "ab");
    assert_eq!(job_of(&plan, "gone"), Some((Job::Stop, Cause::Removed)));
}

/// Issue 39, never past the end: a container whose secret ends within the margin unrenewed is
/// stopped with its reason (one already down stays down, nothing else happens to it); a renewed
/// end starts it again; `onExpiry: keep` leaves it running; the loop comes back when the next
/// end nears.
#[test]
fn a_container_is_stopped_before_a_secret_it_runs_with_ends_unrenewed() {
    let now_s = 1_800_000_000_u64;
    let lease = |expires: u64| crate::status::SecretInUse {
        id: crate::secrets::SecretId::new("db", "app"),
        version: "db/creds/app/L1".into(),
        expires: Some(expires),
    };
    let with_end = |expires: u64, stop: bool| {
        let mut w = wants("ua", false, OnRotation::Restart);
        w.versions = vec![lease(expires)];
        let mut facts = with(host(&[("a", "ua")]), vec![spec("a", w)]);
        facts.specs[0].live = vec![lease(expires)];
        facts.specs[0].stop_before_end = stop;
        facts.now = now_s * 1000;
        facts
    };
    let ending = with_end(now_s + 5, true);
    let plan = decide(&ending);
    assert_eq!(job_of(&plan, "a"), Some((Job::Stop, Cause::Expiring)));
    assert!(!plan.actions.contains(&RemoveUnit("a".into())));
    let verdict = &plan.specs["a"];
    assert_eq!(
        (verdict.phase, verdict.reason),
        (Phase::Degraded, Reason::SecretExpiring)
    );
    assert!(verdict.message.contains("db/app"), "{}", verdict.message);
    // Already down: it stays down.
    let mut down = ending.clone();
    down.states.get_mut("a").unwrap().active_state = ActiveState::Inactive;
    assert_eq!(job_of(&decide(&down), "a"), None);
    // Renewed: a later end starts it again.
    let mut renewed = with_end(now_s + 3600, true);
    renewed.states.get_mut("a").unwrap().active_state = ActiveState::Inactive;
    let plan = decide(&renewed);
    assert_eq!(job_of(&plan, "a"), Some((Job::Start, Cause::Down)));
    // The loop comes back 10 s before that end.
    assert_eq!(
        plan.requeue,
        Requeue::After(std::time::Duration::from_secs(3590))
    );
    // `onExpiry: keep`: left running.
    assert_eq!(job_of(&decide(&with_end(now_s + 5, false)), "a"), None);
    // Its store failing (kept as it runs otherwise): what it runs is what ends, so it stops.
    let mut failing = with_end(now_s + 5, true);
    failing.specs[0].wants = Err(Problem {
        reason: Reason::ProviderTimeout,
        message: "db: timed out".into(),
        versions: Vec::new(),
    });
    let plan = decide(&failing);
    assert_eq!(job_of(&plan, "a"), Some((Job::Stop, Cause::Expiring)));
    assert!(!plan.keep.contains("a"));
}
