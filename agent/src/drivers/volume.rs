//! The values [`super::VolumeManager`] carries: what a volume needs, its files, how tmpfs
//! charges them, how SELinux runs, and why a volume operation failed.

use std::io;
use std::path::PathBuf;

use ramlet_specs::model::Medium;

use crate::secrets::SecretBytes;

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

impl VolumeSpec {
    /// What volume `volume` of `container` needs.
    #[must_use]
    pub fn of(
        container: &ramlet_specs::model::Container,
        volume: &ramlet_specs::model::Volume,
    ) -> Self {
        Self {
            spec: container.name.to_string(),
            volume: volume.name.to_string(),
            medium: volume.medium,
            size: volume.size_limit,
        }
    }
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

/// Why a file cannot have the owner its spec asks for on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    /// The user of a rootless Podman has no subordinate IDs: its containers see only root.
    #[error(
        "owner {uid}:{gid}: user {user} has no subordinate IDs in /etc/subuid and /etc/subgid, so its rootless containers see only their root (0:0)"
    )]
    NoSubordinateIds {
        /// The owner asked for.
        uid: u32,
        /// The group asked for.
        gid: u32,
        /// The user.
        user: String,
    },
    /// The IDs are outside what the user's rootless containers see.
    #[error(
        "owner {uid}:{gid} is outside what user {user}'s rootless containers see: uids 0 to {uids}, gids 0 to {gids} (/etc/subuid, /etc/subgid)"
    )]
    OutsideMapping {
        /// The owner asked for.
        uid: u32,
        /// The group asked for.
        gid: u32,
        /// The user.
        user: String,
        /// The highest uid its containers see.
        uids: u32,
        /// The highest gid its containers see.
        gids: u32,
    },
    /// In user scope, a container that sets its own ID mapping can have only root's owner.
    #[error(
        "owner {uid}:{gid}: the container sets its own ID mapping ([Container] {key}=), and in user scope ramlet gives owners only through rootless Podman's default one; use 0:0 or drop {key}="
    )]
    OwnMapping {
        /// The owner asked for.
        uid: u32,
        /// The group asked for.
        gid: u32,
        /// The key that sets the mapping.
        key: &'static str,
    },
}
