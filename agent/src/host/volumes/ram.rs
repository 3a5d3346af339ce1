//! Mounting RAM: one tmpfs (noswap, sized) or ramfs per volume where the volume root is not
//! RAM itself, and each new folder labelled for containers.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;

use ramlet_specs::model::Medium;

use super::io_err;
use crate::drivers::{FileContent, PAGE, VolumeError, VolumeSpec};
use crate::host::labels;

/// The size a volume's tmpfs is mounted with: twice `sizeLimit` in whole pages, since a rotation
/// holds the old and the new files at once until the swap.
#[must_use]
pub fn mount_size(size_limit: u64) -> u64 {
    2 * size_limit.div_ceil(PAGE) * PAGE
}

/// Creates the folder `dir` (owner-only) if it is missing, with the container files' SELinux
/// context when there is one (see [`labels`]). An existing folder keeps its context: Podman's
/// `:Z` gave it the container's own categories.
pub(super) fn create_folder(dir: &Path, label: Option<&labels::Label>) -> Result<(), VolumeError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("cannot create", dir))?;
    label_new(dir, label)
}

/// Gives a folder ramlet just created or mounted the container files' SELinux context.
pub(super) fn label_new(dir: &Path, label: Option<&labels::Label>) -> Result<(), VolumeError> {
    match label {
        Some(label) => label.apply_to_path(dir).map_err(io_err(
            "cannot give the container files' SELinux context to",
            dir,
        )),
        None => Ok(()),
    }
}

/// The filesystem a volume is mounted with, and its size (tmpfs only).
pub(super) fn mount_kind(volume: &VolumeSpec, noswap: bool) -> (&'static str, Option<u64>) {
    match (volume.medium, noswap) {
        (Medium::Tmpfs, true) => ("tmpfs", Some(mount_size(volume.size))),
        // ramfs never swaps; it has no size limit (the secrets are small and ramlet bounds them).
        _ => ("ramfs", None),
    }
}

pub(super) fn mount(dir: &Path, volume: &VolumeSpec, noswap: bool) -> Result<(), VolumeError> {
    let (fstype, size) = mount_kind(volume, noswap);
    mount_ram(dir, fstype, size.map(|s| s.to_string()).as_deref()).map_err(|e| VolumeError::Io {
        what: "cannot mount a RAM volume on",
        path: dir.to_owned(),
        source: e.into(),
    })
}

/// Mounts a RAM filesystem on `dir`, owner-only, with no setuid, devices or executables: a
/// noswap tmpfs of `size` (tmpfs's syntax), or a ramfs (`size` `None`).
pub(super) fn mount_ram(dir: &Path, fstype: &str, size: Option<&str>) -> nix::Result<()> {
    use nix::mount::{MsFlags, mount};
    let options = match size {
        Some(size) => format!("noswap,size={size},mode=0700"),
        None => "mode=0700".to_owned(),
    };
    mount(
        Some("ramlet"),
        dir,
        Some(fstype),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(options.as_str()),
    )
}

/// The mode and owner of a volume's folders (mount point and data folder) for `files`.
///
/// One owner (uid and gid) for every file: the folders are that owner's, 0700, plus traverse
/// (`x`) for the group (a group other than root's) or for others when some file's mode lets
/// them read it, so that
/// `uid: 0, gid: 70, mode: 0440` is readable by group 70. Several owners: traverse for all
/// (0711), and each file's own mode decides who reads it.
pub(super) fn folder_access(files: &[FileContent]) -> (u32, (Option<u32>, Option<u32>)) {
    let uids: BTreeSet<Option<u32>> = files.iter().map(|f| f.uid).collect();
    let gids: BTreeSet<Option<u32>> = files.iter().map(|f| f.gid).collect();
    match (uids.len(), gids.len()) {
        (1, 1) => {
            // Root's group (the default) gets no way in: only a group the spec names does.
            let named_group = files[0].gid.is_some_and(|gid| gid != 0);
            let group = named_group && files.iter().any(|f| f.mode & 0o070 != 0);
            let others = files.iter().any(|f| f.mode & 0o007 != 0);
            let mode = 0o700 | (u32::from(group) << 3) | u32::from(others);
            (mode, (files[0].uid, files[0].gid))
        }
        _ => (0o711, (None, None)),
    }
}
