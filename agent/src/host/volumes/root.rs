//! The volume root: mounted as RAM (a noswap tmpfs, or ramfs where the kernel has no
//! `noswap`) before the agent starts, by `ramlet mount-volume-root`, and given to the user of
//! a user-scope agent.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;

use super::io_err;
use super::mounts::{check_ram, kernel_release, medium_of, mount_point};
use super::ram::{label_new, mount_ram};
use crate::drivers::VolumeError;
use crate::host::labels;

/// What `ramlet mount-volume-root` found or did at the volume root, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootMount {
    /// It was a noswap tmpfs or a ramfs already (the fstab's, or an earlier start's).
    Found(String),
    /// A noswap tmpfs of this size was mounted.
    Tmpfs(String),
    /// A ramfs was mounted: the kernel refused tmpfs `noswap` (Linux before 6.4).
    Ramfs {
        /// The kernel's release.
        kernel: String,
    },
}

impl std::fmt::Display for RootMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Found(what) => write!(f, "already {what}"),
            Self::Tmpfs(size) => write!(f, "mounted a noswap tmpfs (size={size})"),
            Self::Ramfs { kernel } => write!(
                f,
                "mounted a ramfs: this kernel ({kernel}) has no tmpfs noswap (Linux 6.4 and later \
                 have it); a ramfs never swaps and has no size limit, ramlet bounds each volume \
                 by its sizeLimit"
            ),
        }
    }
}

/// Makes `root` a RAM volume root in this mount namespace (the host's, when systemd runs it
/// from `ramlet-volume-root.service`): a noswap tmpfs of `size` (tmpfs's own syntax, `256m`,
/// checked by the caller), or a ramfs on a kernel without `noswap`; never a swappable tmpfs. A RAM mount
/// already there is kept (a restart of ramlet must not hide the volumes of running
/// containers); any other mount there is refused.
pub fn mount_root(root: &Path, size: &str, owner: Option<Owner>) -> Result<RootMount, VolumeError> {
    let selinux = labels::Mode::of_host();
    create_with_parents_context(root, 0o700, selinux)?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if let Some(found) = mount_point(root, &mountinfo) {
        check_ram(root, &mountinfo)?;
        give(root, owner)?;
        return Ok(RootMount::Found(medium_of(&found)));
    }
    let mounted = match mount_ram(root, "tmpfs", Some(size)) {
        Ok(()) => RootMount::Tmpfs(size.to_owned()),
        // EINVAL: an option the kernel does not know, `noswap` before Linux 6.4.
        Err(nix::errno::Errno::EINVAL) => {
            mount_ram(root, "ramfs", None).map_err(|e| VolumeError::Io {
                what: "cannot mount a ramfs on",
                path: root.to_owned(),
                source: e.into(),
            })?;
            RootMount::Ramfs {
                kernel: kernel_release(),
            }
        }
        Err(e) => {
            return Err(VolumeError::Io {
                what: "cannot mount a noswap tmpfs on",
                path: root.to_owned(),
                source: e.into(),
            });
        }
    };
    // What ramlet creates below inherits the root's context: see `labels`.
    let label = labels::Label::of_container_files(selinux);
    label_new(root, label.as_ref())?;
    give(root, owner)?;
    Ok(mounted)
}

/// The user a volume root belongs to (`ramlet mount-volume-root --owner`), with their primary
/// group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The user's uid.
    pub uid: u32,
    /// Their primary group's gid.
    pub gid: u32,
}

/// Why a volume root's owner could not be found.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// No such user.
    #[error("no user {0:?} on this host")]
    NoSuchUser(String),
    /// The user database could not be read.
    #[error("cannot look up user {user:?}: {source}")]
    Lookup {
        /// The name or uid given.
        user: String,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

impl Owner {
    /// The user named `user`, or with uid `user`, from the host's user database.
    ///
    /// # Errors
    /// When there is no such user, or the database cannot be read.
    pub fn of_user(user: &str) -> Result<Self, UserError> {
        let found = match user.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
            Err(_) => nix::unistd::User::from_name(user),
        };
        match found {
            Ok(Some(found)) => Ok(Self {
                uid: found.uid.as_raw(),
                gid: found.gid.as_raw(),
            }),
            Ok(None) => Err(UserError::NoSuchUser(user.to_owned())),
            Err(source) => Err(UserError::Lookup {
                user: user.to_owned(),
                source,
            }),
        }
    }
}

/// Gives the volume root to its user, if it has one (a no-op when it is theirs already).
fn give(root: &Path, owner: Option<Owner>) -> Result<(), VolumeError> {
    let Some(Owner { uid, gid }) = owner else {
        return Ok(());
    };
    std::os::unix::fs::chown(root, Some(uid), Some(gid))
        .map_err(io_err("cannot give to its user", root))
}

/// Creates `dir` with `mode` and any missing folder above it with 0755 (a user's ramlet must
/// pass through `/run/ramlet/users` to its own root). With SELinux on, each gets the
/// context of the folder it is made in, as a folder made by hand would (`/run`'s for
/// `/run/ramlet`), not the creating service's private runtime type, which Podman may not even
/// search on its way to a volume.
pub(super) fn create_with_parents_context(
    dir: &Path,
    mode: u32,
    selinux: labels::Mode,
) -> Result<(), VolumeError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_with_parents_context(parent, 0o755, selinux)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        other => other.map_err(io_err("cannot create", dir))?,
    }
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let label = labels::Label::of_path(selinux, parent)
        .map_err(io_err("cannot read the SELinux context of", parent))?;
    label_new(dir, label.as_ref())
}
