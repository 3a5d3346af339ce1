//! The pure half of a reconcile: from what should be and what is, the list of actions, in the
//! order they must run. No IO; `reconcile` gathers the inputs and applies the plan.
//!
//! Order: fill volumes, write unit files, stop and unlink units whose spec is gone, one
//! daemon-reload for the whole batch, start / restart / reload units, then unmount and wipe
//! the volumes of removed specs. Only what changed is touched, plus what an earlier reconcile
//! still owes ([`super::owed`]): a restart whose volume or unit was written but whose job
//! never succeeded is issued now.

use std::collections::{BTreeMap, BTreeSet};

use super::owed::Owed;
use crate::drivers::{Job, UnitState};

/// How a container takes a secret rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRotation {
    /// Restart the unit.
    Restart,
    /// Reload the unit (sends the spec's signal).
    Reload,
    /// Leave the unit alone.
    Nothing,
}

/// One container as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The spec's name; the unit is `<name>.container` / `<name>.service`.
    pub name: String,
    /// The rendered unit file.
    pub unit_text: String,
    /// Whether any of its volumes differs from what it should hold.
    pub volumes_changed: bool,
    /// Whether a volume gets a new mount (its medium or size changed): the container only sees
    /// it after a restart, whatever the rotation strategy.
    pub remount: bool,
    /// What a secret rotation does.
    pub on_rotation: OnRotation,
}

/// What the host holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// ramlet's unit files, by spec name: their text.
    pub units: BTreeMap<String, String>,
    /// Unit states, by spec name; a unit systemd could not be asked about is absent (unknown).
    pub states: BTreeMap<String, UnitState>,
    /// Specs that have volumes.
    pub volume_specs: BTreeSet<String>,
    /// What earlier reconciles left owed.
    pub owed: Owed,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Write the volumes of a spec.
    WriteVolumes(String),
    /// Write the unit file of a spec.
    WriteUnit(String),
    /// Delete a removed spec's unit file (after its unit stopped).
    RemoveUnit(String),
    /// One daemon-reload.
    DaemonReload,
    /// A job on a spec's unit: stop (removed spec), start, restart or reload.
    Job(Job, String),
    /// Unmount and wipe a removed spec's volumes.
    RemoveVolumes(String),
}

impl Action {
    /// What it does, as one word (`write-volumes`, `restart`, ...): logs and metrics.
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Self::WriteVolumes(_) => "write-volumes",
            Self::WriteUnit(_) => "write-unit",
            Self::RemoveUnit(_) => "remove-unit",
            Self::DaemonReload => "daemon-reload",
            Self::Job(Job::Start, _) => "start",
            Self::Job(Job::Restart, _) => "restart",
            Self::Job(Job::Reload, _) => "reload",
            Self::Job(Job::Stop, _) => "stop",
            Self::RemoveVolumes(_) => "remove-volumes",
        }
    }

    /// The spec it is about (none for the daemon-reload).
    #[must_use]
    pub fn spec(&self) -> Option<&str> {
        match self {
            Self::DaemonReload => None,
            Self::WriteVolumes(name)
            | Self::WriteUnit(name)
            | Self::RemoveUnit(name)
            | Self::Job(_, name)
            | Self::RemoveVolumes(name) => Some(name),
        }
    }
}

/// The stronger of two jobs: a restart also does what a reload or a start would.
fn stronger(a: Option<Job>, b: Option<Job>) -> Option<Job> {
    match (a, b) {
        (Some(Job::Restart), _) | (_, Some(Job::Restart)) => Some(Job::Restart),
        (Some(Job::Start), Some(Job::Reload)) | (Some(Job::Reload), Some(Job::Start)) => {
            Some(Job::Restart)
        }
        (a, b) => a.or(b),
    }
}

/// The job `d` needs, if any.
fn job_for(d: &Desired, observed: &Observed) -> Option<Job> {
    let state = observed.states.get(&d.name);
    let owed = observed
        .owed
        .jobs
        .get(&d.name)
        .filter(|o| !state.is_some_and(|s| o.settled_by(s)))
        .map(|o| o.job);
    let unit_changed = observed.units.get(&d.name) != Some(&d.unit_text);
    let change = if unit_changed || d.remount {
        Some(Job::Restart)
    } else if d.volumes_changed {
        match d.on_rotation {
            OnRotation::Restart => Some(Job::Restart),
            OnRotation::Reload => Some(Job::Reload),
            OnRotation::Nothing => None,
        }
    } else {
        None
    };
    match state {
        // Down: a start loads whatever is new.
        Some(state) if !state.is_up() => Some(Job::Start),
        // A job on its way (a slow start that outlived ramlet's wait): issuing what is owed
        // again would replace it, and a start slower than the wait would never finish. The
        // next reconcile sees where it landed; only a new change replaces it.
        Some(state) if state.pending_job => change,
        Some(_) => stronger(owed, change),
        // Unknown (systemd did not answer): what is owed or changed is done the safe way, a
        // restart starts a stopped unit too; a start of a running unit does nothing.
        None => match stronger(owed, change) {
            Some(Job::Reload) => Some(Job::Reload),
            Some(_) => Some(Job::Restart),
            None => Some(Job::Start),
        },
    }
}

/// Computes the actions that take the host from `observed` to `desired`. Specs in `keep` are
/// left exactly as they are (their spec is broken or their secrets unreachable right now:
/// nothing already running is lost).
#[must_use]
pub fn plan(desired: &[Desired], observed: &Observed, keep: &BTreeSet<String>) -> Vec<Action> {
    let mut volumes = Vec::new();
    let mut writes = Vec::new();
    let mut runs = Vec::new();
    for d in desired {
        if d.volumes_changed {
            volumes.push(Action::WriteVolumes(d.name.clone()));
        }
        if observed.units.get(&d.name) != Some(&d.unit_text) {
            writes.push(Action::WriteUnit(d.name.clone()));
        }
        runs.extend(job_for(d, observed).map(|job| Action::Job(job, d.name.clone())));
    }
    let wanted: BTreeSet<&str> = desired
        .iter()
        .map(|d| d.name.as_str())
        .chain(keep.iter().map(String::as_str))
        .collect();
    let mut removals = Vec::new();
    let mut cleanups = Vec::new();
    for name in observed
        .units
        .keys()
        .filter(|n| !wanted.contains(n.as_str()))
    {
        removals.push(Action::Job(Job::Stop, name.clone()));
        removals.push(Action::RemoveUnit(name.clone()));
    }
    for name in observed
        .volume_specs
        .iter()
        .filter(|n| !wanted.contains(n.as_str()))
    {
        cleanups.push(Action::RemoveVolumes(name.clone()));
    }
    let reload = !writes.is_empty() || !removals.is_empty() || observed.owed.daemon_reload;
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

/// Why `job` runs on `name`'s unit, as one stable word (metrics, `ramlet plan`): `removed`
/// (a stop: the spec is gone), `owed` (an earlier reconcile did not finish it), `spec` (a new
/// spec, or its unit file changes), `down` (a start of a unit that is not running), `remount`
/// (a volume's medium or size changes), `rotation` (its secrets changed).
#[must_use]
pub fn cause(job: Job, name: &str, desired: &[Desired], observed: &Observed) -> &'static str {
    if job == Job::Stop {
        return "removed";
    }
    if observed.owed.jobs.contains_key(name) {
        return "owed";
    }
    let Some(d) = desired.iter().find(|d| d.name == name) else {
        return "owed";
    };
    let unit = observed.units.get(name);
    if unit.is_none() {
        "spec"
    } else if job == Job::Start && observed.states.get(name).is_some_and(|s| !s.is_up()) {
        "down"
    } else if d.remount {
        "remount"
    } else if unit != Some(&d.unit_text) {
        "spec"
    } else if d.volumes_changed {
        "rotation"
    } else {
        "down"
    }
}

/// What `actions` will owe once they start: every start, restart and reload in them (with the
/// invocation each unit runs under now), the daemon-reload if any, and what specs left alone
/// this time (`keep`, or a job of theirs on its way) still owed.
#[must_use]
pub fn owed_by(actions: &[Action], observed: &Observed, keep: &BTreeSet<String>) -> Owed {
    let mut owed = Owed {
        daemon_reload: actions.contains(&Action::DaemonReload),
        jobs: observed
            .owed
            .jobs
            .iter()
            .filter(|(name, _)| {
                keep.contains(*name) || observed.states.get(*name).is_some_and(|s| s.pending_job)
            })
            .map(|(name, job)| (name.clone(), job.clone()))
            .collect(),
    };
    for action in actions {
        if let Action::Job(job @ (Job::Start | Job::Restart | Job::Reload), name) = action {
            let since = observed
                .states
                .get(name)
                .map(|s| s.invocation_id.clone())
                .unwrap_or_default();
            owed.jobs
                .insert(name.clone(), super::owed::OwedJob { job: *job, since });
        }
    }
    owed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(name: &str, text: &str, volumes_changed: bool, on_rotation: OnRotation) -> Desired {
        Desired {
            name: name.into(),
            unit_text: text.into(),
            volumes_changed,
            remount: false,
            on_rotation,
        }
    }

    fn running() -> UnitState {
        UnitState {
            active_state: "active".into(),
            sub_state: "running".into(),
            invocation_id: "ab".into(),
            ..UnitState::default()
        }
    }

    fn observed(units: &[(&str, &str)]) -> Observed {
        Observed {
            units: units
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
            states: units
                .iter()
                .map(|(n, _)| ((*n).to_owned(), running()))
                .collect(),
            volume_specs: units.iter().map(|(n, _)| (*n).to_owned()).collect(),
            owed: Owed::default(),
        }
    }

    use Action::{DaemonReload, RemoveUnit, RemoveVolumes, WriteUnit, WriteVolumes};

    fn job(job: Job, name: &str) -> Action {
        Action::Job(job, name.into())
    }

    #[test]
    fn a_new_spec_gets_volumes_then_unit_then_one_reload_then_start() {
        let mut new = Observed::default();
        new.states.insert(
            "web".into(),
            UnitState {
                active_state: "inactive".into(),
                ..UnitState::default()
            },
        );
        let plan = plan(
            &[desired("web", "u1", true, OnRotation::Restart)],
            &new,
            &BTreeSet::new(),
        );
        assert_eq!(
            plan,
            [
                WriteVolumes("web".into()),
                WriteUnit("web".into()),
                DaemonReload,
                job(Job::Start, "web")
            ]
        );
    }

    #[test]
    fn nothing_changed_means_nothing_to_do() {
        let plan = plan(
            &[desired("web", "u1", false, OnRotation::Restart)],
            &observed(&[("web", "u1")]),
            &BTreeSet::new(),
        );
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_rotation_touches_only_the_containers_that_use_the_secret() {
        let specs = [
            desired("a", "ua", true, OnRotation::Restart),
            desired("b", "ub", false, OnRotation::Restart),
            desired("c", "uc", true, OnRotation::Reload),
            desired("d", "ud", true, OnRotation::Nothing),
        ];
        let plan = plan(
            &specs,
            &observed(&[("a", "ua"), ("b", "ub"), ("c", "uc"), ("d", "ud")]),
            &BTreeSet::new(),
        );
        assert_eq!(
            plan,
            [
                WriteVolumes("a".into()),
                WriteVolumes("c".into()),
                WriteVolumes("d".into()),
                job(Job::Restart, "a"),
                job(Job::Reload, "c")
            ]
        );
    }

    #[test]
    fn a_changed_unit_is_written_reloaded_once_and_restarted() {
        let specs = [
            desired("a", "new", false, OnRotation::Nothing),
            desired("b", "new", false, OnRotation::Nothing),
        ];
        let plan = plan(
            &specs,
            &observed(&[("a", "old"), ("b", "old")]),
            &BTreeSet::new(),
        );
        assert_eq!(
            plan,
            [
                WriteUnit("a".into()),
                WriteUnit("b".into()),
                DaemonReload,
                job(Job::Restart, "a"),
                job(Job::Restart, "b")
            ]
        );
    }

    #[test]
    fn a_removed_spec_is_stopped_unlinked_and_its_volumes_wiped() {
        let plan = plan(
            &[desired("a", "ua", false, OnRotation::Restart)],
            &observed(&[("a", "ua"), ("gone", "ug")]),
            &BTreeSet::new(),
        );
        assert_eq!(
            plan,
            [
                job(Job::Stop, "gone"),
                RemoveUnit("gone".into()),
                DaemonReload,
                RemoveVolumes("gone".into())
            ]
        );
    }

    #[test]
    fn kept_specs_are_left_alone() {
        let keep: BTreeSet<String> = ["broken".to_owned()].into();
        let plan = plan(&[], &observed(&[("broken", "ub")]), &keep);
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_stopped_unit_is_started_again() {
        let mut seen = observed(&[("a", "ua")]);
        seen.states.get_mut("a").unwrap().active_state = "failed".into();
        let plan = plan(
            &[desired("a", "ua", false, OnRotation::Restart)],
            &seen,
            &BTreeSet::new(),
        );
        assert_eq!(plan, [job(Job::Start, "a")]);
    }

    #[test]
    fn adoption_after_a_restart_of_ramlet_restarts_nothing() {
        // ramlet restarted: it renders the same units and finds the same volume content.
        let specs = [
            desired("a", "ua", false, OnRotation::Restart),
            desired("b", "ub", false, OnRotation::Reload),
        ];
        assert!(
            plan(
                &specs,
                &observed(&[("a", "ua"), ("b", "ub")]),
                &BTreeSet::new()
            )
            .is_empty()
        );
    }

    fn owe(observed: &mut Observed, name: &str, job: Job, since: &str) {
        observed.owed.jobs.insert(
            name.into(),
            crate::reconcile::owed::OwedJob {
                job,
                since: since.into(),
            },
        );
    }

    #[test]
    fn owed_work_is_done_even_when_nothing_differs_any_more() {
        // The volume was swapped and the unit written; the restart and reload never happened.
        let mut seen = observed(&[("a", "ua"), ("b", "ub"), ("c", "uc")]);
        owe(&mut seen, "a", Job::Restart, "ab");
        owe(&mut seen, "b", Job::Reload, "ab");
        seen.owed.daemon_reload = true;
        let specs = [
            desired("a", "ua", false, OnRotation::Restart),
            desired("b", "ub", false, OnRotation::Reload),
            desired("c", "uc", false, OnRotation::Restart),
        ];
        assert_eq!(
            plan(&specs, &seen, &BTreeSet::new()),
            [DaemonReload, job(Job::Restart, "a"), job(Job::Reload, "b")]
        );
    }

    #[test]
    fn owed_work_already_done_by_a_new_invocation_is_not_done_twice() {
        let mut seen = observed(&[("a", "ua")]);
        owe(&mut seen, "a", Job::Restart, "an-older-invocation");
        let specs = [desired("a", "ua", false, OnRotation::Restart)];
        assert!(plan(&specs, &seen, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn an_owed_reload_and_a_changed_unit_make_one_restart() {
        let mut seen = observed(&[("a", "old")]);
        owe(&mut seen, "a", Job::Reload, "ab");
        let specs = [desired("a", "new", false, OnRotation::Reload)];
        assert_eq!(
            plan(&specs, &seen, &BTreeSet::new()),
            [WriteUnit("a".into()), DaemonReload, job(Job::Restart, "a")]
        );
    }

    #[test]
    fn an_unknown_state_never_loses_a_rotation_and_never_restarts_an_unchanged_unit() {
        let mut seen = observed(&[("a", "ua"), ("b", "ub")]);
        seen.states.clear();
        let specs = [
            desired("a", "ua", true, OnRotation::Restart),
            desired("b", "ub", false, OnRotation::Restart),
        ];
        assert_eq!(
            plan(&specs, &seen, &BTreeSet::new()),
            [
                WriteVolumes("a".into()),
                job(Job::Restart, "a"),
                job(Job::Start, "b")
            ]
        );
    }

    /// Issue 19: a restart owed while its slow start is still a pending job (it outlived
    /// ramlet's wait) was issued again at every reconcile, replacing the job each time, so a
    /// container slower to start than the wait never ran. A pending job is waited for, and the
    /// debt kept until it lands; a new change still replaces it.
    #[test]
    fn an_owed_job_is_not_issued_again_while_a_job_is_on_its_way() {
        let mut seen = observed(&[("a", "ua"), ("b", "ub")]);
        for name in ["a", "b"] {
            owe(&mut seen, name, Job::Restart, "ab");
            let state = seen.states.get_mut(name).unwrap();
            state.active_state = "activating".into();
            state.pending_job = true;
        }
        let specs = [
            desired("a", "ua", false, OnRotation::Restart),
            desired("b", "ub", true, OnRotation::Restart),
        ];
        let actions = plan(&specs, &seen, &BTreeSet::new());
        assert_eq!(actions, [WriteVolumes("b".into()), job(Job::Restart, "b")]);
        let owed = owed_by(&actions, &seen, &BTreeSet::new());
        assert_eq!(
            owed.jobs.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b"],
            "a's debt waits for its job"
        );
    }

    #[test]
    fn what_a_plan_owes_keeps_the_debts_of_specs_left_alone() {
        let mut seen = observed(&[("a", "ua"), ("kept", "uk"), ("gone", "ug")]);
        owe(&mut seen, "kept", Job::Restart, "ab");
        owe(&mut seen, "gone", Job::Restart, "ab");
        let keep: BTreeSet<String> = ["kept".to_owned()].into();
        let actions = [
            WriteVolumes("a".into()),
            DaemonReload,
            job(Job::Restart, "a"),
            job(Job::Stop, "gone"),
        ];
        let owed = owed_by(&actions, &seen, &keep);
        assert!(owed.daemon_reload);
        assert_eq!(
            owed.jobs.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "kept"]
        );
        assert_eq!(owed.jobs["a"].since, "ab");
    }
}
