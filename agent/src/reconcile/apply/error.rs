//! Why an action failed, typed: what the status says (the message), what the metrics count
//! (the kind) and what the error policy keys on (whether it may pass by itself).

use crate::drivers::SystemdErrorKind;
use crate::retry::Transient;

/// Why an action failed, typed for the error policy and the metrics; the message is for people
/// (status, logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApplyError {
    /// What failed.
    pub kind: ApplyErrorKind,
    /// What happened, for people.
    pub message: String,
}

impl ApplyError {
    /// What failed, for logs, metrics and the error policy.
    #[must_use]
    pub fn kind(&self) -> ApplyErrorKind {
        self.kind
    }
}

/// What the loop does about a failed action: a volume, a unit file, the journal or a job may
/// all pass by themselves (a full tmpfs, a registry down while a container starts, a bus
/// that comes back), and are tried again with a doubling backoff; a job systemd refused
/// outright (no such unit: the generator made none) waits for the cap.
impl Transient for ApplyError {
    fn is_transient(&self) -> bool {
        !matches!(self.kind, ApplyErrorKind::Job(SystemdErrorKind::Bus))
    }
}

/// What kind of action failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyErrorKind {
    /// The owed-work journal could not be written, so nothing was changed.
    Journal,
    /// A volume could not be written or removed.
    Volume,
    /// A unit file could not be written or removed.
    UnitFile,
    /// The daemon-reload failed, so no job ran.
    DaemonReload,
    /// A job failed (how, as systemd's error kind says).
    Job(SystemdErrorKind),
}

impl ApplyErrorKind {
    /// One stable word: `journal`, `volume`, `unit-file`, `daemon-reload`, `job`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Journal => "journal",
            Self::Volume => "volume",
            Self::UnitFile => "unit-file",
            Self::DaemonReload => "daemon-reload",
            Self::Job(_) => "job",
        }
    }
}

pub(super) fn failure(kind: ApplyErrorKind, message: impl Into<String>) -> ApplyError {
    ApplyError {
        kind,
        message: message.into(),
    }
}
