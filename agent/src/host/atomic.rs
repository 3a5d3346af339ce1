//! Atomic multi-file updates of a volume, as the kubelet's `AtomicWriter` does them.
//!
//! A volume directory holds the real files in a timestamped folder, `..data` as a symlink to that
//! folder, and one symlink per top-level entry pointing into `..data`:
//!
//! ```text
//! tls.key -> ..data/tls.key
//! ..data  -> ..2026_11_28_13_50_01.123456789
//! ..2026_11_28_13_50_01.123456789/tls.key
//! ```
//!
//! An update writes a new timestamped folder, then swaps `..data` with one `rename(2)`: a
//! container sees either every old file or every new one, never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, symlinkat, unlinkat};

use crate::drivers::FileContent;
use crate::host::labels::{self, Label};
use crate::secrets::SecretBytes;

/// The symlink that names the current data folder.
pub const DATA_LINK: &str = "..data";

/// The link that is renamed over [`DATA_LINK`].
const DATA_LINK_TMP: &str = "..data_tmp";

/// One file as the volume holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The content.
    pub bytes: SecretBytes,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// What a volume holds now: the data folder `..data` names, and its files keyed by path.
#[derive(Debug, Default)]
pub struct Contents {
    /// The name of the current data folder (`None`: never written).
    pub data: Option<String>,
    /// Its files.
    pub files: BTreeMap<String, Current>,
}

impl Contents {
    /// Whether `wanted` differs from these files: content, mode, or an owner the spec sets.
    #[must_use]
    pub fn differs(&self, wanted: &[FileContent]) -> bool {
        self.data.is_none()
            || self.files.len() != wanted.len()
            || wanted.iter().any(|f| {
                self.files.get(&f.path).is_none_or(|c| {
                    c.bytes != f.bytes
                        || c.mode != f.mode
                        || f.uid.is_some_and(|u| u != c.uid)
                        || f.gid.is_some_and(|g| g != c.gid)
                })
            })
    }
}

/// Opens a folder without following a link at its last component.
fn open_dir<Fd: AsFd>(parent: Fd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// The name `..data` points at, if it is a link to a `..`-named folder beside it. `Ok(None)`:
/// there is no `..data`.
pub fn data_name(dir: &Path) -> io::Result<Option<String>> {
    let root = open_dir(nix::fcntl::AT_FDCWD, dir.as_os_str())?;
    read_data_link(&root, dir)
}

fn read_data_link(root: &OwnedFd, dir: &Path) -> io::Result<Option<String>> {
    let target = match readlinkat(root, DATA_LINK) {
        Ok(target) => target,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(nix::errno::Errno::EINVAL) => return Err(strange(&dir.join(DATA_LINK))),
        Err(e) => return Err(e.into()),
    };
    let name = target.to_str().unwrap_or_default();
    if !name.starts_with("..") || name.contains('/') || name == ".." || name == DATA_LINK {
        return Err(strange(&dir.join(DATA_LINK)));
    }
    Ok(Some(name.to_owned()))
}

/// Reads what the volume at `dir` holds now; empty when it has never been written.
///
/// A writable volume's container can put anything here, so nothing is followed: every step goes
/// through a descriptor of the folder above it, opened without following links. `..data` must
/// be a link to a `..`-named folder beside it, folders are entered only when they are real
/// folders, and only regular files are read (opened without following a link and without
/// blocking, then checked with `fstat`). Anything else reads as [`Strange`]: the volume differs
/// and is rewritten.
pub fn read_current(dir: &Path) -> io::Result<Contents> {
    let root = open_dir(nix::fcntl::AT_FDCWD, dir.as_os_str())?;
    let Some(name) = read_data_link(&root, dir)? else {
        return Ok(Contents::default());
    };
    let data_path = dir.join(&name);
    let data = open_dir(&root, OsStr::new(&name)).map_err(|e| not_followed(e, &data_path))?;
    let mut files = BTreeMap::new();
    collect(data, &data_path, "", &mut files)?;
    Ok(Contents {
        data: Some(name),
        files,
    })
}

/// The error for something ramlet did not put in a volume.
fn strange(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Strange(path.to_owned()))
}

/// Turns the errors an open without following gives for a link or a non-folder into [`Strange`].
fn not_followed(error: io::Error, path: &Path) -> io::Error {
    match error.raw_os_error() {
        Some(nix::libc::ELOOP | nix::libc::ENOTDIR) => strange(path),
        _ => error,
    }
}

/// Something in a volume that ramlet did not put there (a link, FIFO, device or a `..data`
/// pointing elsewhere): the volume is rewritten, and nothing behind it is read.
#[derive(Debug, thiserror::Error)]
#[error("{} is not what ramlet wrote", .0.display())]
pub struct Strange(pub PathBuf);

fn collect(
    dir: OwnedFd,
    path: &Path,
    prefix: &str,
    files: &mut BTreeMap<String, Current>,
) -> io::Result<()> {
    let mut listing = Dir::from_fd(dir)?;
    let mut entries = Vec::new();
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            entries.push((name, entry.file_type()));
        }
    }
    let parent = listing.as_fd();
    for (name, kind) in entries {
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let here = path.join(&name);
        match kind {
            Some(Type::Directory) => {
                let child =
                    open_dir(parent, OsStr::new(&name)).map_err(|e| not_followed(e, &here))?;
                collect(child, &here, &rel, files)?;
            }
            Some(Type::File) => {
                files.insert(rel, read_regular(parent, &name, &here)?);
            }
            _ => return Err(strange(&here)),
        }
    }
    Ok(())
}

/// Reads a regular file without following a link or blocking on a FIFO swapped in.
fn read_regular(
    parent: std::os::fd::BorrowedFd<'_>,
    name: &str,
    path: &Path,
) -> io::Result<Current> {
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| not_followed(e.into(), path))?;
    let file = fs::File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(strange(path));
    }
    let mut bytes =
        zeroize::Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
    file.take(ramlet_specs::MAX_VOLUME_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(Current {
        bytes: SecretBytes::new(std::mem::take(&mut *bytes)),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

/// [`read_current`], with something ramlet did not write as `None` (logged): such a volume
/// differs from anything wanted, and is rewritten.
pub fn read_trusted(dir: &Path) -> io::Result<Option<Contents>> {
    match read_current(dir) {
        Ok(current) => Ok(Some(current)),
        Err(e) if is_strange(&e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "a volume holds something ramlet did not write; rewriting it");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Whether `error` is a [`Strange`].
#[must_use]
pub fn is_strange(error: &io::Error) -> bool {
    matches!(error.get_ref(), Some(inner) if inner.is::<Strange>())
}

/// Writes `files` into `dir` atomically, as described above; `dir_mode`, `dir_owner`: for the
/// data folder and its subfolders. Returns the new data folder's name.
///
/// Everything goes through descriptors: `dir` is opened once without following a link, the new
/// data folder is made in it (0700, ramlet's, so nobody else can enter it until it is published)
/// and opened without following, and each file is created inside it with `O_EXCL | O_NOFOLLOW`,
/// then given its owner and mode on its own descriptor. Nothing a container puts in `dir` can
/// redirect a write.
pub fn write(
    dir: &Path,
    files: &[FileContent],
    dir_mode: u32,
    dir_owner: (Option<u32>, Option<u32>),
    selinux: labels::Mode,
) -> io::Result<String> {
    let root = open_dir(nix::fcntl::AT_FDCWD, dir.as_os_str())?;
    // What Podman's `:Z` gave the volume folder, for everything made in it (see `labels`).
    let label = Label::of_folder(selinux, &root)?;
    let label_link = |name: &str| {
        label
            .as_ref()
            .map_or(Ok(()), |l| l.apply_to_path(&dir.join(name)))
    };
    let new_name = format!("..{}", timestamp());
    mkdirat(&root, new_name.as_str(), Mode::S_IRWXU)?;
    let result = (|| {
        let data = open_dir(&root, OsStr::new(&new_name))?;
        let made = fstat(&data)?;
        if made.st_uid != nix::unistd::geteuid().as_raw() || made.st_mode & 0o777 != 0o700 {
            return Err(strange(&dir.join(&new_name)));
        }
        if let Some(label) = &label {
            label.apply(&data)?;
        }
        for file in files {
            write_file(&data, file, dir_mode, dir_owner, label.as_ref())?;
        }
        set_owner_and_mode(&data, dir_owner, dir_mode)?;
        // Swap ..data in one rename (whatever sits at the temporary name goes first, even a
        // folder a container made there).
        match remove_entry(&root, dir, DATA_LINK_TMP) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        symlinkat(new_name.as_str(), &root, DATA_LINK_TMP)?;
        label_link(DATA_LINK_TMP)?;
        renameat(&root, DATA_LINK_TMP, &root, DATA_LINK)?;
        Ok(())
    })();
    if let Err(error) = result {
        let _ = remove_entry(&root, dir, &new_name);
        return Err(error);
    }
    // Top-level links into ..data, then the leftovers of older versions.
    let wanted: BTreeSet<&str> = files
        .iter()
        .map(|f| f.path.split('/').next().unwrap_or_default())
        .collect();
    for top in &wanted {
        let target = format!("{DATA_LINK}/{top}");
        match readlinkat(&root, *top) {
            Ok(existing) if existing == OsStr::new(&target) => {}
            Ok(_) | Err(nix::errno::Errno::EINVAL) => {
                // Something else sits there (a container's own file or link): replaced in one
                // rename, so the name never disappears.
                let tmp = format!("..link_tmp.{top}");
                let _ = remove_entry(&root, dir, &tmp);
                symlinkat(target.as_str(), &root, tmp.as_str())?;
                label_link(&tmp)?;
                if let Err(e) = renameat(&root, tmp.as_str(), &root, *top) {
                    // A folder of the same name: removed first.
                    remove_entry(&root, dir, top)?;
                    renameat(&root, tmp.as_str(), &root, *top).map_err(|_| io::Error::from(e))?;
                }
            }
            Err(nix::errno::Errno::ENOENT) => {
                symlinkat(target.as_str(), &root, *top)?;
                label_link(top)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut listing = Dir::openat(
        &root,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let names: Vec<String> = listing
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for name in names {
        if name == "." || name == ".." || name == DATA_LINK || name == new_name {
            continue;
        }
        if name.starts_with("..") || !wanted.contains(name.as_str()) {
            remove_entry(&root, dir, &name)?;
        }
    }
    Ok(new_name)
}

/// Creates one file (and the folders on its path) under the new data folder.
fn write_file(
    data: &OwnedFd,
    file: &FileContent,
    dir_mode: u32,
    dir_owner: (Option<u32>, Option<u32>),
    label: Option<&Label>,
) -> io::Result<()> {
    let mut segments: Vec<&str> = file.path.split('/').collect();
    let name = segments.pop().unwrap_or_default();
    let mut parent = data.try_clone()?;
    for segment in segments {
        match mkdirat(&parent, segment, Mode::S_IRWXU) {
            Ok(()) => {
                let child = open_dir(&parent, OsStr::new(segment))?;
                if let Some(label) = label {
                    label.apply(&child)?;
                }
                set_owner_and_mode(&child, dir_owner, dir_mode)?;
                parent = child;
            }
            Err(nix::errno::Errno::EEXIST) => parent = open_dir(&parent, OsStr::new(segment))?,
            Err(e) => return Err(e.into()),
        }
    }
    let fd = openat(
        &parent,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )?;
    let mut out = fs::File::from(fd);
    if let Some(label) = label {
        label.apply(&out)?;
    }
    out.write_all(file.bytes.expose())?;
    set_owner_and_mode(&out, (file.uid, file.gid), file.mode)
}

/// Owner first, then mode: `chown` clears set-id bits.
fn set_owner_and_mode<Fd: AsFd>(
    fd: Fd,
    (uid, gid): (Option<u32>, Option<u32>),
    mode: u32,
) -> io::Result<()> {
    if uid.is_some() || gid.is_some() {
        fchown(&fd, uid.map(Uid::from_raw), gid.map(Gid::from_raw))?;
    }
    fchmod(&fd, Mode::from_bits_truncate(mode))?;
    Ok(())
}

/// Removes `name` from the folder `root` (at `dir`): a folder with everything in it, anything
/// else unlinked. Nothing is followed.
fn remove_entry(root: &OwnedFd, dir: &Path, name: &str) -> io::Result<()> {
    let stat: FileStat = fstatat(root, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
        // std's remove_dir_all does not follow links, and `dir` itself is ramlet's.
        fs::remove_dir_all(dir.join(name))
    } else {
        Ok(unlinkat(root, name, UnlinkatFlags::NoRemoveDir)?)
    }
}

fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

#[cfg(test)]
mod tests;
