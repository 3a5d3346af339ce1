//! Owed work: the jobs a change requires, written to the state directory before the change
//! lands on the host and cleared as each job succeeds, so that no interruption (SIGKILL between
//! a volume swap and its restart, a failed or timed-out job, a failed daemon-reload, a lost bus)
//! ever loses a restart.
//!
//! Each owed job remembers the unit's invocation ID when it was owed: if the unit runs under
//! another invocation later (the job finished after ramlet died, or somebody restarted it), the
//! new process already sees the new content and the debt is settled without a second restart.
//! A reload has no such witness: after a crash at the wrong moment it may be sent twice.
//!
//! The journal also carries the health gate's state (see [`super::gate`]): the rotations
//! waiting on a health check, with their deadlines and the versions they replace, the versions
//! a health check refused, and the versions a canary passed. So a SIGKILL at any point (between
//! the rotation's restart and its check, or during the rollback) leaves the next ramlet knowing
//! what was under way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::drivers::{ActiveState, Job, UnitState};
use crate::secrets::SecretId;
use crate::status::SecretInUse;

/// The journal's file name in the state directory.
pub const OWED_FILE: &str = "owed.json";

/// One owed job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwedJob {
    /// What is owed: start, restart or reload.
    pub job: Job,
    /// The unit's invocation ID when the job became owed (empty: not running then).
    pub since: String,
}

impl OwedJob {
    /// Whether `state` shows the job done anyway: a start or restart is done once the unit
    /// is active under an invocation other than the one it was owed under. One still
    /// activating is not: a start that hangs (seen with two rootful Podman starts cut short
    /// together) would otherwise be taken for paid, and the container would never run.
    #[must_use]
    pub fn settled_by(&self, state: &UnitState) -> bool {
        self.job != Job::Reload
            && state.active_state == ActiveState::Active
            && !state.invocation_id.is_empty()
            && state.invocation_id != self.since
    }
}

/// Everything owed on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owed {
    /// A unit file was written or removed and systemd has not reloaded since.
    pub daemon_reload: bool,
    /// Jobs owed, by spec name.
    pub jobs: BTreeMap<String, OwedJob>,
    /// Rotations waiting on a health check (or rolling back), by spec name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rollouts: BTreeMap<String, Rollout>,
    /// Versions a health check refused, by secret (`store/name`): not tried again until a newer
    /// version comes, or `ramlet sync --retry SPEC`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<SecretId, Refusal>,
    /// The version of each secret (`store/name`) that a canary passed with: the other
    /// health-checked consumers take it without waiting.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proven: BTreeMap<SecretId, String>,
}

impl Owed {
    /// Whether nothing is owed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.daemon_reload && self.jobs.is_empty() && self.rollouts.is_empty()
    }
}

/// A rotation of one spec waiting on its health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// The versions it went to.
    pub versions: Vec<SecretInUse>,
    /// The versions it ran with before.
    pub previous: Vec<SecretInUse>,
    /// When the health check must have passed, in milliseconds since the epoch.
    #[serde(rename = "deadlineMs")]
    pub deadline: u64,
    /// The check failed: the previous files are going back (and a restart is owed).
    #[serde(default)]
    pub rolling_back: bool,
}

/// A version a health check refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// The version.
    pub version: String,
    /// The spec whose check failed.
    pub spec: String,
    /// What the check said.
    pub said: String,
}

/// The folder in the state directory where `ramlet sync --retry SPEC` leaves one empty file
/// per spec, for the agent to take at that sync: SPEC's refused versions may be tried again.
pub const RETRY_DIR: &str = "retry";

/// Why `ramlet sync --retry` could not leave its request.
#[derive(Debug, thiserror::Error)]
pub enum RetryRequestError {
    /// A name that is no spec's name.
    #[error("--retry {spec:?}: {why}")]
    BadName {
        /// The name given.
        spec: String,
        /// Why it is no spec name.
        why: String,
    },
    /// The state directory could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Asks the agent to let `specs` try their refused versions again (see [`RETRY_DIR`]); the
/// caller then signals it.
///
/// # Errors
/// When a name is not a spec name, or the state directory cannot be written.
pub fn ask_retry(state_dir: &Path, specs: &[String]) -> Result<(), RetryRequestError> {
    if specs.is_empty() {
        return Ok(());
    }
    let dir = state_dir.join(RETRY_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| RetryRequestError::Write {
        path: dir.clone(),
        source,
    })?;
    for spec in specs {
        let name =
            ramlet_specs::model::Name::parse(spec).map_err(|why| RetryRequestError::BadName {
                spec: spec.clone(),
                why,
            })?;
        let path = dir.join(name.as_str());
        std::fs::write(&path, b"").map_err(|source| RetryRequestError::Write { path, source })?;
    }
    Ok(())
}

/// The specs `ramlet sync --retry` named whose requests no reconcile has taken yet (read
/// only: the apply takes each with [`consume_retry`], after the journal that lifts its
/// refusals is written).
#[must_use]
pub fn retries_asked(state_dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(state_dir.join(RETRY_DIR)) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            ramlet_specs::model::Name::parse(&name).ok().map(|_| name)
        })
        .collect()
}

/// Takes `spec`'s `ramlet sync --retry` request: its file goes.
///
/// # Errors
/// When the file is there and cannot be removed.
pub fn consume_retry(state_dir: &Path, spec: &str) -> std::io::Result<()> {
    crate::statefile::remove(&state_dir.join(RETRY_DIR).join(spec))
}

/// The journal file of a state directory.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal in `state_dir`.
    #[must_use]
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(OWED_FILE),
        }
    }

    /// What the journal holds; nothing when it is missing. One that cannot be read (it is
    /// only ever replaced by a rename, so this takes a hand) is reported and read as empty:
    /// restarting every container on a guess would be worse than the debt it may hold.
    #[must_use]
    pub fn read(&self) -> Owed {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Owed::default(),
            Err(error) => {
                tracing::warn!(file = %self.path.display(), %error, "cannot read the owed-work journal; reading it as empty");
                return Owed::default();
            }
        };
        serde_json::from_str(&text).unwrap_or_else(|error| {
            tracing::warn!(file = %self.path.display(), %error, "the owed-work journal is unreadable; reading it as empty");
            Owed::default()
        })
    }

    /// Replaces the journal atomically (a new file renamed over the old one).
    ///
    /// # Errors
    /// When the state directory cannot be written: the caller must not change the host then.
    pub fn write(&self, owed: &Owed) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(owed).map_err(std::io::Error::other)? + "\n";
        crate::statefile::replace(&self.path, text.as_bytes(), 0o600, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(invocation: &str) -> UnitState {
        UnitState {
            active_state: "active".into(),
            invocation_id: invocation.into(),
            ..UnitState::default()
        }
    }

    #[test]
    fn a_restart_is_settled_by_a_new_invocation_only() {
        let owed = OwedJob {
            job: Job::Restart,
            since: "aa".into(),
        };
        assert!(!owed.settled_by(&up("aa")));
        assert!(owed.settled_by(&up("bb")));
        let mut failed = up("bb");
        failed.active_state = "failed".into();
        assert!(!owed.settled_by(&failed), "a unit that is down still owes");
        let mut starting = up("bb");
        starting.active_state = "activating".into();
        assert!(
            !owed.settled_by(&starting),
            "a start under way is not paid yet"
        );
        let reload = OwedJob {
            job: Job::Reload,
            since: "aa".into(),
        };
        assert!(!reload.settled_by(&up("bb")));
    }

    #[test]
    fn the_journal_survives_a_round_trip_and_starts_empty() {
        let dir = std::env::temp_dir().join(format!("ramlet-owed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let journal = Journal::new(&dir);
        assert_eq!(journal.read(), Owed::default());
        let mut owed = Owed {
            daemon_reload: true,
            ..Owed::default()
        };
        owed.jobs.insert(
            "web".into(),
            OwedJob {
                job: Job::Restart,
                since: "aa".into(),
            },
        );
        journal.write(&owed).unwrap();
        assert_eq!(journal.read(), owed);
        std::fs::write(dir.join(OWED_FILE), "{").unwrap();
        assert_eq!(journal.read(), Owed::default());
        let _ = std::fs::remove_dir_all(dir);
    }
}
