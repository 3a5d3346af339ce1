//! The narrow traits the reconciler drives the host through, and the values they carry:
//! [`UnitManager`] (systemd: jobs and unit states), [`VolumeManager`] (RAM volumes),
//! [`UnitFiles`] (ramlet's folder of Quadlet units). `host/` holds the real implementations,
//! tested in `e2e/`; unit tests use in-memory fakes (agent/tests/fakes). Neither `reconcile/`
//! nor the fakes need anything of `host/`. The values systemd's trait carries are in `systemd`,
//! the volumes' in `volume`; both are re-exported here, so a fake and a real driver read one
//! contract.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::BoxFuture;

mod systemd;
mod volume;

pub use systemd::{
    ActiveState, Job, JobResult, LoadState, SystemdError, SystemdErrorKind, UnitResult, UnitState,
    UnitStates,
};
pub use volume::{FileContent, OwnerError, PAGE, SelinuxMode, VolumeError, VolumeSpec, footprint};

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
    fn load_state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<LoadState, SystemdError>>;
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
    /// The data folder the volume holds now, when it is the one ramlet last wrote or read
    /// there and the mount is as `volume` asks (`None`: not known, moved under ramlet, another
    /// mount). While it stays the same, the volume holds what ramlet recorded, so files that
    /// `differs` found equal then are equal still.
    fn data_folder(&self, _volume: &VolumeSpec) -> Option<String> {
        None
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
    fn owner(&self, uid: u32, gid: u32) -> Result<(Option<u32>, Option<u32>), OwnerError> {
        Ok((Some(uid), Some(gid)))
    }
    /// Writes `files` atomically.
    fn write(&self, volume: &VolumeSpec, files: &[FileContent]) -> Result<(), VolumeError>;
    /// Unmounts and removes every volume of `spec`.
    fn remove_spec(&self, spec: &str) -> Result<(), VolumeError>;
    /// The specs that have volumes.
    fn specs(&self) -> Result<BTreeSet<String>, VolumeError>;
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
