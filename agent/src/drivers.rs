//! The narrow traits the reconciler drives the host through, and the values they carry:
//! [`UnitManager`] (systemd: jobs and unit states), [`VolumeManager`] (RAM volumes),
//! [`UnitFiles`] (ramlet's folder of Quadlet units). `host/` holds the real implementations,
//! tested in `e2e/`; unit tests use in-memory fakes (agent/tests/fakes). Neither `reconcile/`
//! nor the fakes need anything of `host/`. (Over 450 lines: the three traits and every value
//! they carry, in one place, so that a fake and a real driver read the same contract.)

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ramlet_specs::model::Medium;

use crate::secrets::SecretBytes;
use crate::util::BoxFuture;

/// A job on a unit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Job {
    /// Start the unit (a no-op when it runs).
    Start,
    /// Restart it (starts it when it is not running).
    Restart,
    /// Reload it (`ExecReload=`, the spec's signal).
    Reload,
    /// Stop it.
    Stop,
}

impl Job {
    /// The verb, as `systemctl` spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Restart => "restart",
            Self::Reload => "reload",
            Self::Stop => "stop",
        }
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a systemd call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdError {
    /// D-Bus answered with an error (permission, unknown unit, bad arguments, ...).
    #[error("D-Bus: {0}")]
    Bus(String),
    /// The connection to the bus is gone (closed, reset, never made): the next call connects
    /// again.
    #[error("D-Bus connection lost: {0}")]
    Lost(String),
    /// The job finished with a result other than `done`.
    #[error("{job} {unit}: job {result}")]
    Job {
        /// What was asked.
        job: Job,
        /// The unit.
        unit: String,
        /// systemd's result.
        result: JobResult,
    },
    /// The job or call did not finish in time.
    #[error("{what}: no answer after {timeout:?}")]
    Timeout {
        /// What was asked (`restart web.service`, `daemon-reload`, ...).
        what: String,
        /// How long ramlet waited.
        timeout: Duration,
    },
}

impl SystemdError {
    /// What kind of failure it is, for logs, metrics and the error policy.
    #[must_use]
    pub fn kind(&self) -> SystemdErrorKind {
        match self {
            Self::Bus(_) => SystemdErrorKind::Bus,
            Self::Lost(_) => SystemdErrorKind::Lost,
            Self::Job { .. } => SystemdErrorKind::Job,
            Self::Timeout { .. } => SystemdErrorKind::Timeout,
        }
    }
}

impl crate::retry::Transient for SystemdError {
    fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }
}

/// The kind of a [`SystemdError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemdErrorKind {
    /// D-Bus answered with an error.
    Bus,
    /// The bus connection is gone.
    Lost,
    /// A job ended in another result than `done`.
    Job,
    /// No answer in time.
    Timeout,
}

impl SystemdErrorKind {
    /// Whether trying again later may work without anybody changing anything: a lost bus or
    /// a call or job that timed out may; systemd refusing a call, or a unit that failed its
    /// job, is retried too (a unit's start can fail for a passing reason: a registry down),
    /// but is not a failure of the host itself.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Lost | Self::Timeout)
    }

    /// One stable word: `bus`, `lost`, `job`, `timeout`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bus => "bus",
            Self::Lost => "lost",
            Self::Job => "job",
            Self::Timeout => "timeout",
        }
    }
}

/// How a job ended, as systemd's `JobRemoved` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// `done`: it did what was asked.
    Done,
    /// `failed`: the unit failed (for a start: its process exited, or never said READY).
    Failed,
    /// `timeout`, `canceled`, `dependency`, `skipped`, ...: anything else, as systemd spells it.
    Other(String),
}

impl From<&str> for JobResult {
    fn from(result: &str) -> Self {
        match result {
            "done" => Self::Done,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for JobResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Other(other) => other,
        })
    }
}

/// A unit's `ActiveState`, as systemd has it; [`ActiveState::NotLoaded`] when systemd has no
/// such unit at all. Written as systemd spells it (`active`, `not-loaded`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ActiveState {
    /// `active`: running (or exited with `RemainAfterExit=`).
    Active,
    /// `reloading`.
    Reloading,
    /// `inactive`: stopped.
    #[default]
    Inactive,
    /// `failed`: stopped, and it failed.
    Failed,
    /// `activating`: on its way up (or a job of somebody's is pending on it).
    Activating,
    /// `deactivating`.
    Deactivating,
    /// `maintenance`, `refreshing` and states of systemds newer than this code.
    Other(String),
    /// No such unit is loaded (its file does not exist, or was never read).
    NotLoaded,
}

impl ActiveState {
    /// As systemd spells it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Reloading => "reloading",
            Self::Inactive => "inactive",
            Self::Failed => "failed",
            Self::Activating => "activating",
            Self::Deactivating => "deactivating",
            Self::Other(other) => other,
            Self::NotLoaded => "not-loaded",
        }
    }
}

impl From<&str> for ActiveState {
    fn from(state: &str) -> Self {
        match state {
            "active" => Self::Active,
            "reloading" => Self::Reloading,
            "inactive" => Self::Inactive,
            "failed" => Self::Failed,
            "activating" => Self::Activating,
            "deactivating" => Self::Deactivating,
            "not-loaded" => Self::NotLoaded,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl From<String> for ActiveState {
    fn from(state: String) -> Self {
        Self::from(state.as_str())
    }
}

impl From<ActiveState> for String {
    fn from(state: ActiveState) -> Self {
        state.as_str().to_owned()
    }
}

impl std::fmt::Display for ActiveState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Units' states by unit name.
pub type UnitStates = std::collections::BTreeMap<String, UnitState>;

/// What systemd says about a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UnitState {
    /// `active`, `inactive`, `failed`, `activating`, ...; `not-loaded` when systemd has no such
    /// unit.
    pub active_state: ActiveState,
    /// `running`, `dead`, `exited`, ...
    pub sub_state: String,
    /// The invocation ID (changes on every start), in hex; empty when never started.
    pub invocation_id: String,
    /// The service's `Result` (`success`, `exit-code`, `signal`, `timeout`, `core-dump`,
    /// `start-limit-hit`, ...): why it last stopped or failed.
    pub result: String,
    /// The main process's last exit status (`ExecMainStatus`): an exit code, or a signal number
    /// when `result` is `signal`.
    pub exec_main_status: i32,
    /// A job is queued or running for the unit (somebody's, or one of ramlet's that outlived
    /// its wait): it is in transition, and a job issued now would replace it.
    #[serde(skip)]
    pub pending_job: bool,
}

impl UnitState {
    /// Whether the unit is running or on its way there.
    #[must_use]
    pub fn is_up(&self) -> bool {
        matches!(
            self.active_state,
            ActiveState::Active | ActiveState::Activating | ActiveState::Reloading
        )
    }
}

/// Drives systemd units.
pub trait UnitManager: Send + Sync {
    /// `daemon-reload`: regenerates Quadlet units.
    fn daemon_reload(&self) -> BoxFuture<'_, Result<(), SystemdError>>;
    /// Runs `job` on `unit` and waits for its result.
    fn job<'a>(&'a self, job: Job, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>>;
    /// The states of `units`: active and sub state only, in one call. An error when systemd
    /// does not answer the list at all (nothing is known then: a plan made without it would
    /// take every unit for down).
    fn states<'a>(&'a self, units: &'a [String])
    -> BoxFuture<'a, Result<UnitStates, SystemdError>>;
    /// [`Self::states`] with the details the list does not carry: the invocation ID, and for
    /// a failed unit its `Result` and exit status (a few calls per unit; a unit whose details
    /// systemd did not give is left out: unknown).
    fn details<'a>(
        &'a self,
        units: &'a [String],
    ) -> BoxFuture<'a, Result<UnitStates, SystemdError>>;
    /// Whether systemd has a unit file for `unit` anywhere (`LoadState` after `LoadUnit`):
    /// `loaded`, `masked`, ... or `not-found`.
    fn load_state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<String, SystemdError>>;
    /// Runs `command` once in the container `container` (`podman exec`), as a transient
    /// service of the manager, killed after `timeout`: a health check. True when it exited 0,
    /// false when it failed or was killed.
    fn check<'a>(
        &'a self,
        container: &'a str,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<bool, SystemdError>>;
    /// The folders the manager loads unit files from (its `UnitPath`), generators' included.
    fn unit_path(&self) -> BoxFuture<'_, Result<Vec<std::path::PathBuf>, SystemdError>>;
}

/// What a volume needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The spec (container) name.
    pub spec: String,
    /// The volume's name.
    pub volume: String,
    /// tmpfs or ramfs.
    pub medium: Medium,
    /// tmpfs size in bytes.
    pub size: u64,
}

/// Why a volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The volume root is not RAM that cannot swap.
    #[error("refusing to write secrets to {path}: {why}")]
    NotRam {
        /// The path.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// An IO error.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Prepares, fills and removes RAM volumes.
pub trait VolumeManager: Send + Sync {
    /// Makes sure the volume exists and is RAM; returns its host path.
    fn prepare(&self, volume: &VolumeSpec) -> Result<PathBuf, VolumeError>;
    /// Whether `files` differ from what the volume holds.
    fn differs(&self, volume: &VolumeSpec, files: &[FileContent]) -> Result<bool, VolumeError>;
    /// Whether the volume is mounted with another medium or size than `volume` asks for: the
    /// next write mounts a new one, and the container must restart to see it.
    fn mount_differs(&self, _volume: &VolumeSpec) -> bool {
        false
    }
    /// How SELinux runs on this host, as far as volumes go (status shows it).
    fn selinux(&self) -> SelinuxMode {
        SelinuxMode::Off
    }
    /// What the volumes are on, for people (status shows it): `a noswap tmpfs (size=256m) at
    /// /run/ramlet/volumes`, `a ramfs per volume (this kernel, 6.1.0-28-amd64, has no tmpfs
    /// noswap)`, ...
    fn medium(&self) -> String {
        String::new()
    }
    /// The owner to give a file the container sees as `uid:gid` (see [`FileContent`]'s `uid`),
    /// or why it cannot have one here.
    fn owner(&self, uid: u32, gid: u32) -> Result<(Option<u32>, Option<u32>), String> {
        Ok((Some(uid), Some(gid)))
    }
    /// Writes `files` atomically.
    fn write(&self, volume: &VolumeSpec, files: &[FileContent]) -> Result<(), VolumeError>;
    /// Unmounts and removes every volume of `spec`.
    fn remove_spec(&self, spec: &str) -> Result<(), VolumeError>;
    /// The specs that have volumes.
    fn specs(&self) -> Result<BTreeSet<String>, VolumeError>;
}

/// One file of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// Relative path (validated: no `..`, no absolute, no `..`-prefixed segment).
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner (`None`: leave as the writer): in system scope a host user ID; in user scope the ID
    /// the container sees, given inside rootless Podman's mapping (see [`crate::host::idmap`]).
    pub uid: Option<u32>,
    /// Group, as `uid` is.
    pub gid: Option<u32>,
    /// The content.
    pub bytes: SecretBytes,
}

/// The size of a memory page, as tmpfs counts a file's size against its limit.
pub const PAGE: u64 = 4096;

/// The bytes tmpfs charges for `files`: whole pages per file (a 100-byte secret takes 4 KiB).
/// `sizeLimit` bounds this.
#[must_use]
pub fn footprint(files: &[FileContent]) -> u64 {
    files
        .iter()
        .map(|f| (f.bytes.expose().len() as u64).div_ceil(PAGE) * PAGE)
        .sum()
}

/// How SELinux runs on this host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelinuxMode {
    /// Not in the kernel, or disabled.
    #[default]
    Off,
    /// Policy loaded, denials only logged.
    Permissive,
    /// Policy loaded and enforced.
    Enforcing,
}

impl SelinuxMode {
    /// Whether files ramlet creates in volumes must be labelled. Permissive too: a host
    /// switched to enforcing later must not find mislabelled files.
    #[must_use]
    pub fn labels(self) -> bool {
        self != Self::Off
    }

    /// As shown in status.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Permissive => "permissive",
            Self::Enforcing => "enforcing",
        }
    }
}

/// ramlet's own folder of Quadlet units (`<name>.container`, one per spec).
pub trait UnitFiles: Send + Sync {
    /// The folder.
    fn path(&self) -> &Path;
    /// Its units: ramlet's own by spec name with their text, and the names of files there that
    /// are not ramlet's (a spec by that name may not take them over).
    fn list(&self) -> BoxFuture<'_, std::io::Result<Listing>>;
    /// Writes `<name>.container` with `text`.
    fn write(&self, name: &str, text: &str) -> std::io::Result<()>;
    /// Removes `<name>.container`.
    fn remove(&self, name: &str) -> std::io::Result<()>;
}

/// What ramlet's unit folder holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// ramlet's own units, by spec name: their text.
    pub ours: BTreeMap<String, String>,
    /// The spec names of `.container` files there that are not ramlet's.
    pub foreign: BTreeSet<String>,
}
