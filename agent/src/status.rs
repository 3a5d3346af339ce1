//! What ramlet reports: per spec, its phase, why, when it was last reconciled, the secret
//! versions it runs with (never values, never hashes of values), the unit's state, and the same
//! as Kubernetes-style [`conditions`]. Written to `<state dir>/status.json` after every
//! reconcile, read by `ramlet status`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::drivers::UnitState;
pub use crate::providers::stores::StoreStatus;
pub use conditions::Condition;

pub mod conditions;

/// The status file's name in the state directory.
pub const STATUS_FILE: &str = "status.json";

/// The phase of one spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Applied, and the unit is running.
    Ready,
    /// Applied; the unit is starting.
    #[default]
    Progressing,
    /// Running with the last good state; the current spec or secrets have a problem.
    Degraded,
    /// Could not be applied.
    Failed,
}

/// One secret a container runs with, and the version it has (never the value). In the status
/// file: `{"store": ..., "name": ..., "version": ...}`, and for a certificate `"expires"`
/// (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "InUseFields", into = "InUseFields")]
pub struct SecretInUse {
    /// The secret.
    pub id: crate::secrets::SecretId,
    /// The provider's version identifier.
    pub version: String,
    /// When that version stops being valid (Unix seconds): a certificate's end.
    pub expires: Option<u64>,
}

/// [`SecretInUse`] as the status file spells it.
#[derive(Serialize, Deserialize)]
struct InUseFields {
    store: String,
    name: String,
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

impl From<InUseFields> for SecretInUse {
    fn from(fields: InUseFields) -> Self {
        Self {
            id: crate::secrets::SecretId::new(fields.store, fields.name),
            version: fields.version,
            expires: fields
                .expires
                .as_deref()
                .and_then(crate::util::parse_rfc3339),
        }
    }
}

impl From<SecretInUse> for InUseFields {
    fn from(secret: SecretInUse) -> Self {
        Self {
            store: secret.id.store,
            name: secret.id.name,
            version: secret.version,
            expires: secret.expires.map(crate::util::rfc3339),
        }
    }
}

/// Why a spec is in its phase: short, stable, for alerts and scripts (the message says the
/// rest, for people).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// Everything the spec asks for is in place.
    #[default]
    Applied,
    /// A volume, unit file or job failed this time (the message says which); owed jobs are
    /// retried.
    ApplyFailed,
    /// systemd reports the unit failed (its Result and exit status are in the message).
    UnitFailed,
    /// The spec's file has errors; the last applied version keeps running.
    InvalidSpec,
    /// Another unit on this host has the spec's name.
    UnitNameTaken,
    /// systemd did not answer whether the unit name is free; the spec waits.
    SystemdUnavailable,
    /// The unit could not be rendered.
    RenderFailed,
    /// A secret's value cannot become its file (no such property, not base64, over sizeLimit,
    /// an owner this host cannot give).
    SecretUnavailable,
    /// The store refused the credentials, or found none.
    Unauthenticated,
    /// The store denied access.
    PermissionDenied,
    /// No such secret, version or stage.
    SecretNotFound,
    /// The version is disabled (GCP).
    SecretVersionDisabled,
    /// The version is destroyed (GCP).
    SecretVersionDestroyed,
    /// The store throttles ramlet; it backs off.
    ProviderThrottled,
    /// The store did not answer in time.
    ProviderTimeout,
    /// The store cannot be reached or is failing.
    ProviderUnavailable,
    /// The secret is larger than any volume can hold.
    SecretTooLarge,
    /// The payload failed its checksum.
    SecretCorrupt,
    /// The store's settings are wrong.
    StoreMisconfigured,
    /// A sealed value this host cannot open (another host's key or TPM, another name, another
    /// age identity, a damaged file).
    SecretUndecryptable,
    /// A new version is live and its health check has not passed yet.
    HealthChecking,
    /// A new version waits until the canary that takes it first passes its health check.
    AwaitingCanary,
    /// A new version failed a health check and the previous one is back (the message names
    /// both); that version is not tried again.
    RolledBack,
    /// A new version failed another consumer's health check and is refused: this container
    /// never took it and keeps the version it runs (the message names both).
    VersionRefused,
    /// A secret it runs with (a certificate, a leased credential) ends within seconds and no
    /// renewed one came: the container is stopped until one does (`rotation.onExpiry: stop`).
    SecretExpiring,
    /// A reason this version of ramlet does not know (read from a newer status file).
    #[serde(other)]
    Unknown,
}

impl Reason {
    /// Its name, as the status file spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "Applied",
            Self::ApplyFailed => "ApplyFailed",
            Self::UnitFailed => "UnitFailed",
            Self::InvalidSpec => "InvalidSpec",
            Self::UnitNameTaken => "UnitNameTaken",
            Self::SystemdUnavailable => "SystemdUnavailable",
            Self::RenderFailed => "RenderFailed",
            Self::SecretUnavailable => "SecretUnavailable",
            Self::Unauthenticated => "Unauthenticated",
            Self::PermissionDenied => "PermissionDenied",
            Self::SecretNotFound => "SecretNotFound",
            Self::SecretVersionDisabled => "SecretVersionDisabled",
            Self::SecretVersionDestroyed => "SecretVersionDestroyed",
            Self::ProviderThrottled => "ProviderThrottled",
            Self::ProviderTimeout => "ProviderTimeout",
            Self::ProviderUnavailable => "ProviderUnavailable",
            Self::SecretTooLarge => "SecretTooLarge",
            Self::SecretCorrupt => "SecretCorrupt",
            Self::StoreMisconfigured => "StoreMisconfigured",
            Self::SecretUndecryptable => "SecretUndecryptable",
            Self::HealthChecking => "HealthChecking",
            Self::AwaitingCanary => "AwaitingCanary",
            Self::RolledBack => "RolledBack",
            Self::VersionRefused => "VersionRefused",
            Self::SecretExpiring => "SecretExpiring",
            Self::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that `ramlet status` can line it up in a column.
        f.pad(self.as_str())
    }
}

/// The status of one spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecStatus {
    /// The phase.
    pub phase: Phase,
    /// Why it is in its phase.
    pub reason: Reason,
    /// What happened, for people.
    pub message: String,
    /// The spec file.
    pub file: PathBuf,
    /// When the spec was last reconciled (RFC 3339, UTC).
    pub last_reconcile: String,
    /// The secret versions the container runs with.
    pub secrets: Vec<SecretInUse>,
    /// The unit's state.
    pub unit: UnitState,
    /// The generation of the spec this status is of: 1 for the first seen, one more each time
    /// the spec's content changes.
    #[serde(default)]
    pub observed_generation: u64,
    /// A digest of the spec's content (not of any secret), to tell when it changes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spec_digest: String,
    /// `Ready`, `Progressing` and `Degraded`, as Kubernetes gives conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The whole status file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// When it was written (RFC 3339, UTC).
    pub updated: String,
    /// Per spec.
    pub specs: BTreeMap<String, SpecStatus>,
    /// Spec errors, one line each (`file:line:column: field: message [kind]`).
    pub errors: Vec<String>,
    /// Per secret store in use: healthy or why not.
    #[serde(default)]
    pub stores: BTreeMap<String, StoreStatus>,
    /// How SELinux runs on this host: `off`, `permissive` or `enforcing` (with either of the
    /// last two, what ramlet writes in a volume gets the volume's label).
    #[serde(default)]
    pub selinux: crate::drivers::SelinuxMode,
    /// What the volumes are on, and why when it is a ramfs: `a noswap tmpfs (size=256m) at
    /// /run/ramlet/volumes`, `a ramfs at /run/ramlet/volumes (this kernel, 6.1.0-28-amd64, has
    /// no tmpfs noswap)`, `a noswap tmpfs per volume`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub volumes: String,
}

impl Status {
    /// Whether `self` and `other` say the same thing, their timestamps aside.
    #[must_use]
    pub fn same_but_for_timestamps(&self, other: &Self) -> bool {
        fn plain(status: &Status) -> Status {
            let mut status = status.clone();
            status.updated.clear();
            for spec in status.specs.values_mut() {
                spec.last_reconcile.clear();
            }
            for store in status.stores.values_mut() {
                store.last_refresh.clear();
                store.next_refresh_secs = 0;
            }
            status
        }
        plain(self) == plain(other)
    }

    /// One line for `systemctl status` (`STATUS=`): `12 of 13 specs ready, 1 degraded`, with
    /// the stores failing and the spec errors when there are any.
    #[must_use]
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let count = |phase: Phase| self.specs.values().filter(|s| s.phase == phase).count();
        let mut line = format!(
            "{} of {} specs ready",
            count(Phase::Ready),
            self.specs.len()
        );
        for (phase, word) in [
            (Phase::Progressing, "progressing"),
            (Phase::Degraded, "degraded"),
            (Phase::Failed, "failed"),
        ] {
            let n = count(phase);
            if n > 0 {
                let _ = write!(line, ", {n} {word}");
            }
        }
        let unhealthy = self.stores.values().filter(|s| !s.healthy).count();
        if unhealthy > 0 {
            let _ = write!(line, ", {unhealthy} stores failing");
        }
        if !self.errors.is_empty() {
            let _ = write!(line, ", {} spec errors", self.errors.len());
        }
        line
    }

    /// Reads the status file from `state_dir`.
    pub fn read(state_dir: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(state_dir.join(STATUS_FILE))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Writes it atomically to `state_dir`.
    pub fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        // 0600: which secrets and stores a host uses is its owner's business.
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        crate::statefile::replace(&state_dir.join(STATUS_FILE), text.as_bytes(), 0o600, false)
    }
}

impl From<crate::providers::ErrorKind> for Reason {
    /// The status reason of a spec whose secret failed this way (`PermissionDenied`).
    fn from(kind: crate::providers::ErrorKind) -> Self {
        use crate::providers::ErrorKind;
        match kind {
            ErrorKind::Unauthenticated => Self::Unauthenticated,
            ErrorKind::PermissionDenied => Self::PermissionDenied,
            ErrorKind::NotFound => Self::SecretNotFound,
            ErrorKind::VersionDisabled => Self::SecretVersionDisabled,
            ErrorKind::VersionDestroyed => Self::SecretVersionDestroyed,
            ErrorKind::Throttled => Self::ProviderThrottled,
            ErrorKind::Timeout => Self::ProviderTimeout,
            ErrorKind::TooLarge => Self::SecretTooLarge,
            ErrorKind::Corrupt => Self::SecretCorrupt,
            ErrorKind::Unavailable => Self::ProviderUnavailable,
            ErrorKind::Misconfigured => Self::StoreMisconfigured,
            ErrorKind::Undecryptable => Self::SecretUndecryptable,
        }
    }
}
