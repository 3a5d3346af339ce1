//! `ramlet plan`: what a reconcile would do on this host now, and why, without doing any of it.
//! Made from the same facts and the same decision as a real reconcile (see
//! [`super::Reconciler::preview`]), so it cannot disagree with what the agent would do.
//! Secrets are fetched to compare versions; only store, name and version are ever shown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::facts::Facts;
use super::plan::{Action, Cause, Plan};
use crate::diff::diff;
use crate::status::{SecretInUse, Status};

/// What a reconcile would do.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// One entry per spec that would change, by name.
    pub changes: BTreeMap<String, Change>,
    /// Whether systemd would be reloaded (a unit file written or removed).
    pub daemon_reload: bool,
    /// What is wrong and left alone: spec errors, and specs that cannot be applied now.
    pub problems: Vec<String>,
}

/// What would happen to one spec.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// In order: `retry refused versions`, `write volumes`, `restore volumes`, `write unit`,
    /// `start`, `restart`, `reload`, `stop`, `remove unit`, `remove volumes`, `health check`.
    pub actions: Vec<String>,
    /// Why, in words.
    pub why: Vec<String>,
    /// The unit file's changes, `-` for lines that go and `+` for lines that come.
    pub diff: Option<String>,
}

impl Preview {
    pub(super) fn new(facts: &Facts, plan: &Plan, previous: &Status) -> Self {
        let mut preview = Self {
            daemon_reload: plan.actions.contains(&Action::DaemonReload),
            ..Self::default()
        };
        for action in &plan.actions {
            let Some(name) = action.spec() else { continue };
            let mut diff_of = None;
            let (what, why): (&str, Option<String>) = match action {
                Action::WriteVolumes(_) => ("write volumes", Some(rotated(name, plan, previous))),
                Action::WriteUnit(_) => {
                    let now = facts.units.get(name);
                    let planned = facts
                        .specs
                        .iter()
                        .find(|s| s.name == name)
                        .and_then(|s| s.wants.as_ref().ok())
                        .map_or("", |w| w.unit_text.as_str());
                    diff_of = Some(diff(now.map_or("", String::as_str), planned));
                    let why = if now.is_some() {
                        "the spec changed: its unit file changes"
                    } else {
                        "a new spec"
                    };
                    ("write unit", Some(why.to_owned()))
                }
                Action::RemoveUnit(_) => ("remove unit", None),
                Action::RemoveVolumes(_) => ("remove volumes", None),
                Action::RestoreVolumes(_) => (
                    "restore volumes",
                    Some(
                        "the new versions failed the health check: the previous files go back"
                            .into(),
                    ),
                ),
                Action::Job(job, _) => {
                    let cause = plan.causes.get(name).copied().unwrap_or(Cause::Owed);
                    (job.as_str(), Some(describe(cause, name, facts)))
                }
                Action::ConsumeRetry(_) => {
                    ("retry refused versions", Some(action.why(None).to_owned()))
                }
                Action::Check(_) => ("health check", Some(action.why(None).to_owned())),
                // Bookkeeping of ramlet's own, not a change to the spec.
                Action::SealPrevious(_)
                | Action::ForgetSealed(_)
                | Action::DaemonReload
                | Action::Revoke(..) => {
                    continue;
                }
            };
            let change = preview.changes.entry(name.to_owned()).or_default();
            if diff_of.is_some() {
                change.diff = diff_of;
            }
            change.actions.push(what.to_owned());
            if matches!(action, Action::WriteVolumes(_))
                && let Some(gated) = gated(name, facts, plan)
            {
                change.why.push(gated);
            }
            if let Some(why) = why
                && !change.why.contains(&why)
            {
                change.why.push(why);
            }
            if matches!(action, Action::WriteVolumes(_)) {
                change.why.extend(rendered(name, facts, plan, previous));
            }
        }
        preview.problems.clone_from(&facts.errors);
        for (name, verdict) in &plan.specs {
            if !verdict.message.is_empty() {
                preview.problems.push(format!(
                    "{name}: left as it is: {} ({:?})",
                    verdict.message, verdict.reason
                ));
            }
        }
        preview
    }

    /// Whether nothing would change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && !self.daemon_reload
    }

    /// For people.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (name, change) in &self.changes {
            let _ = writeln!(out, "{name}: {}", change.actions.join(", "));
            for why in &change.why {
                let _ = writeln!(out, "  why: {why}");
            }
            if let Some(diff) = &change.diff {
                for line in diff.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        if self.daemon_reload {
            out.push_str("systemd: daemon-reload\n");
        }
        for problem in &self.problems {
            let _ = writeln!(out, "note: {problem}");
        }
        if self.is_empty() {
            out.push_str("nothing would change\n");
        } else {
            let _ = writeln!(out, "{} spec(s) would change", self.changes.len());
        }
        out
    }
}

/// For a rotation the health gate lets through: the gate, and which consumers take the new
/// versions first.
fn gated(name: &str, facts: &Facts, plan: &Plan) -> Option<String> {
    let rollout = plan.owed.rollouts.get(name)?;
    let gate = facts
        .specs
        .iter()
        .find(|s| s.name == name)?
        .wants
        .as_ref()
        .ok()?
        .gate?;
    let first: Vec<String> = rollout
        .versions
        .iter()
        .filter(|v| !rollout.previous.contains(v))
        .map(|v| {
            let key = &v.id;
            if plan.owed.proven.get(key) == Some(&v.version) {
                format!("{key} {} (passed on a canary)", v.version)
            } else {
                format!(
                    "{key} {} (first on {})",
                    v.version,
                    super::gate::canaries(v, facts).join(", ")
                )
            }
        })
        .collect();
    Some(format!(
        "health-gated: {}; its check must pass within {} s (run every {} s), or the previous versions come back",
        first.join("; "),
        gate.deadline.as_secs(),
        gate.interval.as_secs()
    ))
}

/// A job's cause in words, with what `ramlet plan` can add: the state of a unit that is down.
fn describe(cause: Cause, name: &str, facts: &Facts) -> String {
    match cause {
        Cause::Owed => "an earlier reconcile did not finish this job".into(),
        Cause::Down => {
            let state = facts
                .states
                .get(name)
                .map_or("unknown", |s| s.active_state.as_str());
            format!("the unit is not running ({state})")
        }
        Cause::Remount => {
            "a volume's medium or size changes: a new mount, seen after a restart".into()
        }
        Cause::Spec => "its unit file changes".into(),
        Cause::Rotation => "its secrets changed (rotation)".into(),
        Cause::Unknown => {
            "systemd did not say how the unit is; a start does nothing to a running unit".into()
        }
        Cause::Rollback => {
            "the new versions failed the health check; it restarts on the previous ones".into()
        }
        Cause::Removed => {
            "the spec is gone (removed, or no longer selected by this host's labels)".into()
        }
        Cause::Expiring => "a secret it runs with ends within seconds and was not renewed (rotation.onExpiry: stop)".into(),
    }
}

/// For each template file of `name`: the inputs that feed it, and which of them moved (what
/// makes it rendered again). Names and versions only.
fn rendered(name: &str, facts: &Facts, plan: &Plan, previous: &Status) -> Vec<String> {
    let Some(wants) = facts
        .specs
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.wants.as_ref().ok())
    else {
        return Vec::new();
    };
    let now = plan
        .specs
        .get(name)
        .map(|v| v.versions.as_slice())
        .unwrap_or_default();
    let before = previous.specs.get(name).map(|s| s.secrets.as_slice());
    wants
        .templates
        .iter()
        .map(|feed| {
            let inputs: Vec<String> = feed
                .inputs
                .iter()
                .map(|(input, id)| format!("{input} ({id})"))
                .collect();
            let moved: Vec<String> = feed
                .inputs
                .iter()
                .filter_map(|(input, id)| {
                    let new = now.iter().find(|v| v.id == *id)?;
                    let old = before?.iter().find(|v| v.id == *id)?;
                    (old.version != new.version)
                        .then(|| format!("{input} {} -> {}", old.version, new.version))
                })
                .collect();
            if moved.is_empty() {
                format!(
                    "template {}: rendered from {}",
                    feed.file,
                    inputs.join(", ")
                )
            } else {
                format!(
                    "template {}: rendered again, its input moved: {} (inputs: {})",
                    feed.file,
                    moved.join(", "),
                    inputs.join(", ")
                )
            }
        })
        .collect()
}

/// Which secrets of `name` have another version than the running agent last reported.
fn rotated(name: &str, plan: &Plan, previous: &Status) -> String {
    let now = plan
        .specs
        .get(name)
        .map(|v| v.versions.clone())
        .unwrap_or_default();
    let before: Vec<SecretInUse> = previous
        .specs
        .get(name)
        .map(|s| s.secrets.clone())
        .unwrap_or_default();
    let moved: Vec<String> = now
        .iter()
        .filter(|v| !before.contains(v))
        .map(|v| {
            let old = before
                .iter()
                .find(|b| b.id == v.id)
                .map_or("none".to_owned(), |b| b.version.clone());
            format!("{} {} -> {}", v.id, old, v.version)
        })
        .collect();
    if !previous.specs.contains_key(name) {
        "new volumes".into()
    } else if moved.is_empty() {
        "the volume differs from what the spec asks (a file, mode or owner changed)".into()
    } else {
        format!("secret rotated: {}", moved.join(", "))
    }
}
