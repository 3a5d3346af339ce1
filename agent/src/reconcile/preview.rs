//! `ramlet plan`: what a reconcile would do on this host now, and why, without doing any of it.
//! Made from the same gathered facts and the same plan as a real reconcile (see
//! [`super::Reconciler::preview`]), so it cannot disagree with what the agent would do.
//! Secrets are fetched to compare versions; only store, name and version are ever shown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::Gathered;
use super::plan::Action;
use crate::drivers::Job;
use crate::status::{SecretVersion, Status};

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
    /// In order: `write volumes`, `write unit`, `start`, `restart`, `reload`, `stop`,
    /// `remove unit`, `remove volumes`.
    pub actions: Vec<String>,
    /// Why, in words.
    pub why: Vec<String>,
    /// The unit file's changes, `-` for lines that go and `+` for lines that come.
    pub diff: Option<String>,
}

impl Preview {
    pub(super) fn new(gathered: &Gathered, previous: &Status) -> Self {
        let mut preview = Self {
            daemon_reload: gathered.actions.contains(&Action::DaemonReload),
            ..Self::default()
        };
        let desired: BTreeMap<&str, &super::plan::Desired> = gathered
            .desired
            .iter()
            .map(|d| (d.name.as_str(), d))
            .collect();
        let observed = &gathered.observed;
        for action in &gathered.actions {
            let Some(name) = action.spec() else { continue };
            let change = preview.changes.entry(name.to_owned()).or_default();
            let (what, why): (&str, Option<String>) = match action {
                Action::WriteVolumes(_) => (
                    "write volumes",
                    Some(rotated(name, &gathered.next, previous)),
                ),
                Action::WriteUnit(_) => {
                    let now = observed.units.get(name);
                    let planned = desired.get(name).map_or("", |d| d.unit_text.as_str());
                    change.diff = Some(diff(now.map_or("", String::as_str), planned));
                    let why = if now.is_some() {
                        "the spec changed: its unit file changes"
                    } else {
                        "a new spec"
                    };
                    ("write unit", Some(why.to_owned()))
                }
                Action::RemoveUnit(_) => ("remove unit", None),
                Action::RemoveVolumes(_) => ("remove volumes", None),
                Action::Job(job, _) => {
                    let why = match job {
                        Job::Stop => Some(
                            "the spec is gone (removed, or no longer selected by this host's labels)"
                                .to_owned(),
                        ),
                        _ => Some(describe(
                            super::plan::cause(*job, name, &gathered.desired, &gathered.observed),
                            name,
                            gathered,
                        )),
                    };
                    (job_name(*job), why)
                }
                Action::DaemonReload => continue,
            };
            change.actions.push(what.to_owned());
            if let Some(why) = why
                && !change.why.contains(&why)
            {
                change.why.push(why);
            }
        }
        preview.problems.clone_from(&gathered.next.errors);
        for (name, spec) in &gathered.next.specs {
            if !spec.message.is_empty() {
                preview.problems.push(format!(
                    "{name}: left as it is: {} ({:?})",
                    spec.message, spec.reason
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

fn job_name(job: Job) -> &'static str {
    match job {
        Job::Start => "start",
        Job::Restart => "restart",
        Job::Reload => "reload",
        Job::Stop => "stop",
    }
}

/// A job's cause (see [`super::plan::cause`]) in words.
fn describe(cause: &str, name: &str, gathered: &Gathered) -> String {
    match cause {
        "owed" => "an earlier reconcile did not finish this job".into(),
        "down" => {
            let state = gathered
                .observed
                .states
                .get(name)
                .map_or("unknown", |s| s.active_state.as_str());
            format!("the unit is not running ({state})")
        }
        "remount" => "a volume's medium or size changes: a new mount, seen after a restart".into(),
        "spec" => "its unit file changes".into(),
        "rotation" => "its secrets changed (rotation)".into(),
        other => other.to_owned(),
    }
}

/// Which secrets of `name` have another version than the running agent last reported.
fn rotated(name: &str, next: &Status, previous: &Status) -> String {
    let versions = |status: &Status| -> Vec<SecretVersion> {
        status
            .specs
            .get(name)
            .map(|s| s.secrets.clone())
            .unwrap_or_default()
    };
    let (now, before) = (versions(next), versions(previous));
    let moved: Vec<String> = now
        .iter()
        .filter(|v| !before.contains(v))
        .map(|v| {
            let old = before
                .iter()
                .find(|b| b.store == v.store && b.name == v.name)
                .map_or("none".to_owned(), |b| b.version.clone());
            format!("{}/{} {} -> {}", v.store, v.name, old, v.version)
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

/// The lines that go (`-`) and come (`+`) from `old` to `new`, with one line of context around
/// each change (longest common subsequence; unit files are short).
fn diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut lcs = vec![vec![0_usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near = |k: usize| {
        ops[k.saturating_sub(1)..(k + 2).min(ops.len())]
            .iter()
            .any(|(op, _)| *op != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if *op != ' ' || near(k) {
            if skipped && !out.is_empty() {
                out.push_str("  ...\n");
            }
            skipped = false;
            let _ = writeln!(out, "{op} {line}");
        } else {
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_shows_what_goes_and_comes_with_a_line_around() {
        let old = "[Container]\nImage=a\nExec=x\nLabel=1\nLabel=2\nLabel=3\nNetwork=none\n";
        let new = "[Container]\nImage=b\nExec=x\nLabel=1\nLabel=2\nLabel=3\nNetwork=host\n";
        assert_eq!(
            diff(old, new),
            "  [Container]\n- Image=a\n+ Image=b\n  Exec=x\n  ...\n  Label=3\n- Network=none\n+ Network=host\n"
        );
        assert_eq!(diff("", "A=1\n"), "+ A=1\n");
        assert_eq!(diff("same\n", "same\n"), "");
    }
}
