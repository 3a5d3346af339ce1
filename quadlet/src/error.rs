//! Errors of rendering and parsing units.

use crate::version::PodmanVersion;

/// Why a unit cannot be rendered or read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The target Podman predates Quadlet.
    #[error(
        "Podman {target} has no Quadlet; ramlet needs Podman {} or later",
        PodmanVersion::V4_4
    )]
    NoQuadlet {
        /// The target version.
        target: PodmanVersion,
    },
    /// A key needs a newer Podman than the target: the generator would skip the whole unit.
    #[error("[{section}] {key}= needs Podman {since}; this host's Podman is {target}")]
    UnsupportedKey {
        /// The section.
        section: &'static str,
        /// The key.
        key: String,
        /// The version that introduced it.
        since: PodmanVersion,
        /// The target version.
        target: PodmanVersion,
    },
    /// A key that ramlet does not know in that section.
    #[error("[{section}] {key}= is not a key ramlet can write")]
    UnknownKey {
        /// The section.
        section: String,
        /// The key.
        key: String,
    },
    /// A value that cannot reach systemd literally.
    #[error("[{section}] {key}= value {value:?} cannot be written: {why}")]
    Unrepresentable {
        /// The section.
        section: &'static str,
        /// The key.
        key: String,
        /// The offending value.
        value: String,
        /// Why.
        why: &'static str,
    },
    /// A unit file that does not parse.
    #[error("line {line}: {why}")]
    Parse {
        /// The 1-based line.
        line: usize,
        /// Why.
        why: String,
    },
}

impl Error {
    /// A stable name for logs, status and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoQuadlet { .. } => "no-quadlet",
            Self::UnsupportedKey { .. } => "unsupported-key",
            Self::UnknownKey { .. } => "unknown-key",
            Self::Unrepresentable { .. } => "unrepresentable",
            Self::Parse { .. } => "parse",
        }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
