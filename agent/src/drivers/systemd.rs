//! The values [`super::UnitManager`] carries: jobs, their results and errors, and the units'
//! states as systemd says them.

use std::time::Duration;

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
    /// The service's `Result`: why it last stopped or failed.
    pub result: UnitResult,
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

/// Why a service last stopped or failed, as its `Result=` says.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum UnitResult {
    /// Not known (never ran, or not asked).
    #[default]
    Unknown,
    /// `success`.
    Success,
    /// `exit-code`: the main process exited non-zero.
    ExitCode,
    /// `signal`: the main process was killed by a signal.
    Signal,
    /// `core-dump`: it dumped core.
    CoreDump,
    /// `timeout`: a start or stop took too long.
    Timeout,
    /// `protocol`: the service broke the start protocol (a lost `READY=1`).
    Protocol,
    /// Any other word systemd says (`watchdog`, `start-limit-hit`, `oom-kill`, ...).
    Other(String),
}

impl From<&str> for UnitResult {
    fn from(word: &str) -> Self {
        match word {
            "" => Self::Unknown,
            "success" => Self::Success,
            "exit-code" => Self::ExitCode,
            "signal" => Self::Signal,
            "core-dump" => Self::CoreDump,
            "timeout" => Self::Timeout,
            "protocol" => Self::Protocol,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl From<String> for UnitResult {
    fn from(word: String) -> Self {
        Self::from(word.as_str())
    }
}

impl From<UnitResult> for String {
    fn from(result: UnitResult) -> Self {
        result.to_string()
    }
}

impl std::fmt::Display for UnitResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unknown => "",
            Self::Success => "success",
            Self::ExitCode => "exit-code",
            Self::Signal => "signal",
            Self::CoreDump => "core-dump",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
            Self::Other(word) => word,
        })
    }
}

/// Whether systemd has a unit file for a unit, as its `LoadState=` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadState {
    /// `not-found`: no unit file anywhere; the name is free.
    NotFound,
    /// `loaded`.
    Loaded,
    /// `masked`.
    Masked,
    /// Any other word (`error`, `bad-setting`, `stub`, `merged`): a unit by that name exists.
    Other(String),
}

impl LoadState {
    /// Whether a unit by that name exists on the host.
    #[must_use]
    pub fn exists(&self) -> bool {
        *self != Self::NotFound
    }
}

impl From<&str> for LoadState {
    fn from(word: &str) -> Self {
        match word {
            "not-found" => Self::NotFound,
            "loaded" => Self::Loaded,
            "masked" => Self::Masked,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for LoadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not-found",
            Self::Loaded => "loaded",
            Self::Masked => "masked",
            Self::Other(word) => word,
        })
    }
}
