//! The pure half of a reconcile: from what should be and what is, the list of actions, in the
//! order they must run. No IO; `reconcile` gathers the inputs and applies the plan.
//!
//! Order (DESIGN.md): fill volumes, write unit files, stop and unlink units whose spec is gone,
//! one daemon-reload for the whole batch, start / restart / reload units, then unmount and wipe
//! the volumes of removed specs. Only what changed is touched.

use std::collections::{BTreeMap, BTreeSet};

use crate::systemd::UnitState;

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
    /// Whether any of its volumes must be (re)written.
    pub volumes_changed: bool,
    /// What a secret rotation does.
    pub on_rotation: OnRotation,
}

/// What the host holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// ramlet's unit files, by spec name: their text.
    pub units: BTreeMap<String, String>,
    /// Unit states, by spec name.
    pub states: BTreeMap<String, UnitState>,
    /// Specs that have volumes.
    pub volume_specs: BTreeSet<String>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Write the volumes of a spec.
    WriteVolumes(String),
    /// Write the unit file of a spec.
    WriteUnit(String),
    /// Stop a removed spec's unit.
    Stop(String),
    /// Delete a removed spec's unit file.
    RemoveUnit(String),
    /// One daemon-reload.
    DaemonReload,
    /// Start a unit.
    Start(String),
    /// Restart a unit (changed unit, or rotation with `restart`).
    Restart(String),
    /// Reload a unit (rotation with `reload`).
    Reload(String),
    /// Unmount and wipe a removed spec's volumes.
    RemoveVolumes(String),
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
        let existing = observed.units.get(&d.name);
        let unit_changed = existing != Some(&d.unit_text);
        let up = observed.states.get(&d.name).is_some_and(UnitState::is_up);
        if d.volumes_changed {
            volumes.push(Action::WriteVolumes(d.name.clone()));
        }
        if unit_changed {
            writes.push(Action::WriteUnit(d.name.clone()));
        }
        let run = if !up {
            Some(Action::Start(d.name.clone()))
        } else if unit_changed {
            Some(Action::Restart(d.name.clone()))
        } else if d.volumes_changed {
            match d.on_rotation {
                OnRotation::Restart => Some(Action::Restart(d.name.clone())),
                OnRotation::Reload => Some(Action::Reload(d.name.clone())),
                OnRotation::Nothing => None,
            }
        } else {
            None
        };
        runs.extend(run);
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
        removals.push(Action::Stop(name.clone()));
        removals.push(Action::RemoveUnit(name.clone()));
    }
    for name in observed
        .volume_specs
        .iter()
        .filter(|n| !wanted.contains(n.as_str()))
    {
        cleanups.push(Action::RemoveVolumes(name.clone()));
    }
    let reload = !writes.is_empty() || !removals.is_empty();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(name: &str, text: &str, volumes_changed: bool, on_rotation: OnRotation) -> Desired {
        Desired {
            name: name.into(),
            unit_text: text.into(),
            volumes_changed,
            on_rotation,
        }
    }

    fn running() -> UnitState {
        UnitState {
            active_state: "active".into(),
            sub_state: "running".into(),
            invocation_id: "ab".into(),
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
        }
    }

    use Action::*;

    #[test]
    fn a_new_spec_gets_volumes_then_unit_then_one_reload_then_start() {
        let plan = plan(
            &[desired("web", "u1", true, OnRotation::Restart)],
            &Observed::default(),
            &BTreeSet::new(),
        );
        assert_eq!(
            plan,
            [
                WriteVolumes("web".into()),
                WriteUnit("web".into()),
                DaemonReload,
                Start("web".into())
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
                Restart("a".into()),
                Reload("c".into())
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
                Restart("a".into()),
                Restart("b".into())
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
                Stop("gone".into()),
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
        assert_eq!(plan, [Start("a".into())]);
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
}
