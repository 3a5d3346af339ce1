//! RAM volumes: where secret files live on the host. Behind [`VolumeManager`], so the reconciler
//! can be tested with an in-memory fake; [`RamVolumes`] is the real one.
//! Layout: `RamVolumes` here; mounting RAM per volume in `ram`, the volume root in `root`,
//! reading mountinfo in `mounts`, the tests in `volumes/tests.rs`.
//!
//! Two ways to hold them:
//! - Folders: a folder per volume inside a volume root mounted as RAM (a noswap tmpfs or a
//!   ramfs: by [`mount_root`] before the agent starts, as `ramlet mount-volume-root` does from
//!   `dist/ramlet-volume-root.service` (system scope) and
//!   `dist/ramlet-user-volume-root@.service` (user scope), or by the admin). The agent mounts
//!   nothing, so it can run in a hardened unit with its own mount
//!   namespace: what it writes lands on that mount, which Podman sees too. User scope always
//!   works this way; system scope does when its root is such a mount.
//! - Mounts (system scope, volume root not itself RAM): one tmpfs per volume, mounted
//!   `noswap,size=,mode=` under the volume root; ramfs where the spec asks for it, or where the
//!   kernel is older than 6.4 and has no `noswap`. A mount made in a private mount namespace is
//!   invisible to Podman, so the agent checks that it shares systemd's (see `agent`).
//!
//! Either way every folder is checked to be RAM before each write, and ramlet refuses to write
//! secrets anywhere swappable or persistent.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::drivers::{FileContent, VolumeError, VolumeManager, VolumeSpec};
use crate::host::atomic;
use crate::host::idmap;
use crate::host::labels;
use crate::layout::Scope;
use mounts::{check_ram, kernel_has_noswap, kernel_release, medium_of, mount_point};

mod mounts;
mod ram;
mod root;

pub use ram::mount_size;
use ram::{create_folder, folder_access, label_new, mount, mount_kind};
pub use root::{Owner, RootMount, UserError, mount_root};

/// The file that marks a spec's folder under the volume root as ramlet's. Spec names are DNS
/// labels, so no volume can be called this.
pub const OWNED_MARKER: &str = ".ramlet-volumes";

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> VolumeError + 'a {
    move |source| VolumeError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The real volumes, under a volume root.
#[derive(Debug)]
pub struct RamVolumes {
    root: PathBuf,
    noswap: bool,
    /// One tmpfs per volume (else folders in an admin-mounted RAM root).
    mounts: bool,
    /// What ramlet last wrote (or found, once after a start) in each volume folder: a no-op
    /// reconcile compares against this instead of reading the files back.
    written: Mutex<HashMap<PathBuf, Written>>,
    /// The mounts ramlet made (or found, once after a start): medium and tmpfs size, by folder.
    mounted: Mutex<HashMap<PathBuf, (String, Option<u64>)>>,
    /// Whether what ramlet creates in a volume needs an SELinux label.
    selinux: labels::Mode,
    /// What the volumes are on, for people (see [`VolumeManager::medium`]).
    medium: String,
    /// User scope: the IDs the user's rootless containers have above their root. Files owned by
    /// those are written, read and removed inside Podman's mapping (see [`idmap`]).
    ids: Option<idmap::Subordinate>,
    /// User scope: the helper that writes those (started when a volume first needs it).
    helper: idmap::Helper,
}

/// What a volume folder holds, as ramlet last wrote or read it.
#[derive(Debug)]
struct Written {
    /// The data folder `..data` named then.
    data: String,
    /// The files in it.
    files: Vec<FileContent>,
}

impl RamVolumes {
    /// Volumes under `root`. In user scope, checks that `root` is a noswap tmpfs or a ramfs and
    /// refuses otherwise; in system scope, creates `root` (0700) and mounts one tmpfs per volume
    /// unless `root` is itself a noswap tmpfs or a ramfs (then it holds folders, as in user
    /// scope).
    pub fn new(root: PathBuf, scope: Scope) -> Result<Self, VolumeError> {
        let noswap = kernel_has_noswap();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if scope == Scope::System {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&root)
                .map_err(io_err("cannot create", &root))?;
        }
        let holder = match (scope, check_ram(&root, &mountinfo)) {
            (_, Ok(holder)) => Some(holder),
            (Scope::User, Err(error)) => return Err(error),
            (Scope::System, Err(_)) => None,
        };
        let mounts = holder.is_none();
        let (medium, ramfs) = match &holder {
            Some(h) => (
                format!("{} at {}", medium_of(h), h.mount_point),
                h.fstype == "ramfs",
            ),
            None if noswap => ("a noswap tmpfs per volume".to_owned(), false),
            None => ("a ramfs per volume".to_owned(), true),
        };
        let medium = if ramfs && !noswap {
            format!(
                "{medium} (this kernel, {}, has no tmpfs noswap)",
                kernel_release()
            )
        } else {
            medium
        };
        Ok(Self {
            helper: idmap::Helper::new(root.clone()),
            root,
            noswap,
            mounts,
            medium,
            written: Mutex::default(),
            mounted: Mutex::default(),
            selinux: labels::Mode::of_host(),
            ids: (scope == Scope::User).then(idmap::Subordinate::of_current_user),
        })
    }

    /// Whether ramlet mounts a tmpfs per volume (system scope, a root that is not RAM itself),
    /// rather than making folders in an admin-mounted RAM root.
    #[must_use]
    pub fn mounts_per_volume(&self) -> bool {
        self.mounts
    }

    /// Whether `files` want owners only Podman's ID mapping can give (user scope).
    fn in_mapping(&self, files: &[FileContent]) -> bool {
        self.ids.is_some() && files.iter().any(|f| f.uid.is_some() || f.gid.is_some())
    }

    /// In user scope, what a volume ramlet cannot enter as the user holds: files with owners
    /// from the mapping that an earlier version of the spec asked for. Worth a helper's look.
    fn locked_out(&self, error: &io::Error) -> bool {
        self.ids.is_some() && error.kind() == io::ErrorKind::PermissionDenied
    }

    /// Reads `dir` back, inside the mapping where ramlet cannot read it as itself.
    fn read_back(&self, dir: &Path, files: &[FileContent]) -> io::Result<Option<atomic::Contents>> {
        if self.in_mapping(files) {
            return self.helper.read(dir);
        }
        match atomic::read_trusted(dir) {
            Err(e) if self.locked_out(&e) => self.helper.read(dir),
            other => other,
        }
    }

    /// Fills `dir` as ramlet itself: the volume folder gets the data folder's access.
    fn fill(&self, dir: &Path, files: &[FileContent]) -> io::Result<String> {
        let (mode, owner) = folder_access(files);
        // The mount point itself must let the container reach the data folder.
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
        if owner != (None, None) {
            std::os::unix::fs::chown(dir, owner.0, owner.1)?;
        }
        atomic::write(dir, files, mode, owner, self.selinux)
    }

    /// Fills `dir` inside the mapping: the volume folder and the data folder get the files'
    /// owner and access, as in system scope (so a rootless uid 101 may list its volume).
    fn fill_in_mapping(&self, dir: &Path, files: &[FileContent]) -> io::Result<String> {
        let access = folder_access(files);
        self.helper.write(dir, access, access, files)
    }

    fn dir(&self, volume: &VolumeSpec) -> PathBuf {
        crate::layout::volume_path(&self.root, &volume.spec, &volume.volume)
    }

    /// Whether `files` differ from what ramlet recorded for `dir`, if `..data` still names the
    /// data folder it recorded (`None`: not known).
    fn known_differs(&self, dir: &Path, data: &str, files: &[FileContent]) -> Option<bool> {
        let written = self.written.lock().ok()?;
        let known = written.get(dir).filter(|w| w.data == data)?;
        Some(known.files.as_slice() != files)
    }

    /// The data folder ramlet last wrote or read in `dir`, if any.
    fn recorded(&self, dir: &Path) -> Option<String> {
        let written = self.written.lock().ok()?;
        written.get(dir).map(|w| w.data.clone())
    }

    fn record(&self, dir: PathBuf, data: String, files: &[FileContent]) {
        if let Ok(mut written) = self.written.lock() {
            written.insert(
                dir,
                Written {
                    data,
                    files: files.to_vec(),
                },
            );
        }
    }

    fn forget(&self, dir: &Path) {
        if let Ok(mut written) = self.written.lock() {
            written.remove(dir);
        }
        if let Ok(mut mounted) = self.mounted.lock() {
            mounted.remove(dir);
        }
    }
}

impl VolumeManager for RamVolumes {
    fn prepare(&self, volume: &VolumeSpec) -> Result<PathBuf, VolumeError> {
        let dir = self.dir(volume);
        let spec_dir = self.root.join(&volume.spec);
        let label = labels::Label::of_container_files(self.selinux);
        create_folder(&spec_dir, label.as_ref())?;
        // The marker goes in before any volume: only folders that carry it are ever removed.
        let marker = spec_dir.join(OWNED_MARKER);
        if !marker.exists() {
            fs::write(&marker, b"").map_err(io_err("cannot mark", &marker))?;
        }
        create_folder(&dir, label.as_ref())?;
        let read_mountinfo = || fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mountinfo = read_mountinfo();
        if self.mounts {
            if self.mount_differs(volume) {
                // Another medium or size: a new mount. The running container keeps the old one
                // until the restart the plan issues, so it never sees a half-filled volume.
                tracing::info!(dir = %dir.display(), "the volume's medium or size changed; mounting a new one");
                self.forget(&dir);
                nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
                    VolumeError::Io {
                        what: "cannot unmount",
                        path: dir.clone(),
                        source: e.into(),
                    }
                })?;
                mountinfo = read_mountinfo();
            }
            if mount_point(&dir, &mountinfo).is_none() {
                mount(&dir, volume, self.noswap)?;
                label_new(&dir, label.as_ref())?;
                mountinfo = read_mountinfo();
            }
            if let Some(current) = mount_point(&dir, &mountinfo)
                && let Ok(mut mounted) = self.mounted.lock()
            {
                mounted.insert(dir.clone(), current.kind());
            }
        }
        // Checked before every write, not only at start: if the RAM below the volume went away
        // (an unmount by hand), nothing is written to whatever is underneath.
        check_ram(&dir, &mountinfo)?;
        Ok(dir)
    }

    fn data_folder(&self, volume: &VolumeSpec) -> Option<String> {
        if self.mount_differs(volume) {
            return None;
        }
        let dir = self.dir(volume);
        let recorded = self.recorded(&dir)?;
        let now = match atomic::data_name(&dir) {
            Ok(data) => data?,
            // A subordinate owner's folder: what ramlet wrote there stands (see `differs`).
            Err(e) if self.locked_out(&e) => recorded.clone(),
            Err(_) => return None,
        };
        (now == recorded).then_some(now)
    }

    fn differs(&self, volume: &VolumeSpec, files: &[FileContent]) -> Result<bool, VolumeError> {
        let dir = self.dir(volume);
        if !dir.exists() {
            return Ok(true);
        }
        // Known: one readlink says the folder is still the one ramlet left; nothing is read.
        let data = match atomic::data_name(&dir) {
            Ok(data) => data,
            Err(e) if atomic::is_strange(&e) => None,
            // A folder given to a subordinate owner: only the mapping gets in. What ramlet
            // wrote there stands (the container mounts it read-only); after a start, a helper
            // reads it back once.
            Err(e) if self.locked_out(&e) => self.recorded(&dir),
            Err(e) => return Err(io_err("cannot read", &dir)(e)),
        };
        if let Some(differs) = data.and_then(|data| self.known_differs(&dir, &data, files)) {
            return Ok(differs);
        }
        // Not known (a start, or the folder was changed under ramlet): read back once, safely.
        match self
            .read_back(&dir, files)
            .map_err(io_err("cannot read", &dir))?
        {
            Some(current) if !current.differs(files) => {
                if let Some(data) = current.data {
                    self.record(dir, data, files);
                }
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    fn selinux(&self) -> labels::Mode {
        self.selinux
    }
    fn owner(
        &self,
        uid: u32,
        gid: u32,
    ) -> Result<(Option<u32>, Option<u32>), crate::drivers::OwnerError> {
        match &self.ids {
            Some(ids) => ids.owner(uid, gid),
            None => Ok((Some(uid), Some(gid))),
        }
    }
    fn medium(&self) -> String {
        self.medium.clone()
    }

    fn mount_differs(&self, volume: &VolumeSpec) -> bool {
        if !self.mounts {
            return false;
        }
        let dir = self.dir(volume);
        let Ok(mut mounted) = self.mounted.lock() else {
            return false;
        };
        let known = if let Some(known) = mounted.get(&dir) {
            known.clone()
        } else {
            // Once per volume after a start; not mounted yet is not a difference.
            let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let Some(current) = mount_point(&dir, &mountinfo) else {
                return false;
            };
            mounted.entry(dir).or_insert(current.kind()).clone()
        };
        let (fstype, size) = mount_kind(volume, self.noswap);
        known != (fstype.to_owned(), size)
    }

    fn write(&self, volume: &VolumeSpec, files: &[FileContent]) -> Result<(), VolumeError> {
        let dir = self.prepare(volume)?;
        self.forget(&dir);
        let data = if self.in_mapping(files) {
            self.fill_in_mapping(&dir, files)
        } else {
            match self.fill(&dir, files) {
                // Folders an earlier version left inside the mapping: only a helper removes them.
                Err(e) if self.locked_out(&e) => self.fill_in_mapping(&dir, files),
                other => other,
            }
        }
        .map_err(io_err("cannot write", &dir))?;
        self.record(dir, data, files);
        Ok(())
    }

    fn remove_spec(&self, spec: &str) -> Result<(), VolumeError> {
        let spec_dir = self.root.join(spec);
        if let Ok(mut written) = self.written.lock() {
            written.retain(|dir, _| !dir.starts_with(&spec_dir));
        }
        if let Ok(mut mounted) = self.mounted.lock() {
            mounted.retain(|dir, _| !dir.starts_with(&spec_dir));
        }
        if !spec_dir.join(OWNED_MARKER).is_file() {
            // Not ramlet's (or gone already): never touched.
            return Ok(());
        }
        let mut errors = Vec::new();
        for entry in fs::read_dir(&spec_dir)
            .map_err(io_err("cannot list", &spec_dir))?
            .flatten()
        {
            let dir = entry.path();
            if entry.file_name() == OWNED_MARKER {
                continue;
            }
            // Teardown keeps going: every volume is tried, every failure reported.
            if self.mounts
                && let Err(e) = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH)
                && e != nix::errno::Errno::EINVAL
            {
                errors.push(format!("cannot unmount {}: {e}", dir.display()));
            }
            let removed = match fs::remove_dir_all(&dir) {
                Err(e) if self.locked_out(&e) => self.helper.remove(&dir),
                other => other,
            };
            if let Err(e) = removed {
                errors.push(format!("cannot remove {}: {e}", dir.display()));
            }
        }
        if errors.is_empty()
            && let Err(e) = fs::remove_file(spec_dir.join(OWNED_MARKER))
        {
            errors.push(format!(
                "cannot remove the marker in {}: {e}",
                spec_dir.display()
            ));
        }
        if let Err(e) = fs::remove_dir(&spec_dir) {
            errors.push(format!("cannot remove {}: {e}", spec_dir.display()));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(VolumeError::Io {
                what: "cannot remove volumes of",
                path: spec_dir,
                source: io::Error::other(errors.join("; ")),
            })
        }
    }

    fn specs(&self) -> Result<BTreeSet<String>, VolumeError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(io_err("cannot list", &self.root)(e)),
        };
        // Only the folders ramlet made: a folder somebody else keeps under the root is not a
        // volume to collect.
        Ok(entries
            .flatten()
            .filter(|e| e.path().join(OWNED_MARKER).is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
}

#[cfg(test)]
mod tests;
