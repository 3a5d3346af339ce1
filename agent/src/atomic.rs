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

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use crate::secrets::SecretBytes;

/// The symlink that names the current data folder.
pub const DATA_LINK: &str = "..data";

/// One file of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// Relative path (validated: no `..`, no absolute, no `..`-prefixed segment).
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner, as a host user ID (`None`: leave as the writer).
    pub uid: Option<u32>,
    /// Group, as a host group ID.
    pub gid: Option<u32>,
    /// The content.
    pub bytes: SecretBytes,
}

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

/// Reads the files of the current data folder, keyed by path; empty when the volume has never
/// been written.
///
/// A writable volume's container can put anything here, so nothing is followed: `..data` must
/// be a link to a `..`-named folder beside it, folders are entered only when they are real
/// folders, and only regular files are read (opened without following a link and without
/// blocking, then checked with `fstat`). Anything else reads as [`Strange`]: the volume differs
/// and is rewritten.
pub fn read_current(dir: &Path) -> io::Result<BTreeMap<String, Current>> {
    let mut files = BTreeMap::new();
    let link = dir.join(DATA_LINK);
    let target = match fs::read_link(&link) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => return Err(strange(&link)),
        Err(e) => return Err(e),
    };
    let name = target.to_str().unwrap_or_default();
    if !name.starts_with("..") || name.contains('/') || name == ".." {
        return Err(strange(&link));
    }
    let data = dir.join(name);
    if !fs::symlink_metadata(&data)?.file_type().is_dir() {
        return Err(strange(&data));
    }
    collect(&data, "", &mut files)?;
    Ok(files)
}

/// The error for something ramlet did not put in a volume.
fn strange(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Strange(path.to_owned()))
}

/// Something in a volume that ramlet did not put there (a link, FIFO, device or a `..data`
/// pointing elsewhere): the volume is rewritten, and nothing behind it is read.
#[derive(Debug, thiserror::Error)]
#[error("{} is not what ramlet wrote", .0.display())]
pub struct Strange(pub PathBuf);

fn collect(dir: &Path, prefix: &str, files: &mut BTreeMap<String, Current>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // `file_type` does not follow links.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), &rel, files)?;
        } else if kind.is_file() {
            files.insert(rel, read_regular(&entry.path())?);
        } else {
            return Err(strange(&entry.path()));
        }
    }
    Ok(())
}

/// Reads a regular file without following a link or blocking on a FIFO swapped in.
fn read_regular(path: &Path) -> io::Result<Current> {
    use std::io::Read as _;
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                strange(path)
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(strange(path));
    }
    let mut bytes =
        zeroize::Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
    file.take(crate::providers::MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(Current {
        bytes: SecretBytes::new(std::mem::take(&mut *bytes)),
        mode: meta.permissions().mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

/// Whether `wanted` differs from what `dir` holds now: content, mode, or an owner the spec sets.
pub fn differs(dir: &Path, wanted: &[FileContent]) -> io::Result<bool> {
    let current = match read_current(dir) {
        Ok(current) => current,
        Err(e) if matches!(e.get_ref(), Some(inner) if inner.is::<Strange>()) => {
            tracing::warn!(dir = %dir.display(), error = %e, "a volume holds something ramlet did not write; rewriting it");
            return Ok(true);
        }
        Err(e) => return Err(e),
    };
    if current.len() != wanted.len() {
        return Ok(true);
    }
    Ok(wanted.iter().any(|f| {
        current.get(&f.path).is_none_or(|c| {
            c.bytes != f.bytes
                || c.mode != f.mode
                || f.uid.is_some_and(|u| u != c.uid)
                || f.gid.is_some_and(|g| g != c.gid)
        })
    }))
}

/// Writes `files` into `dir` atomically, as described above; `dir_mode`, `dir_owner`: for the
/// data folder and its subfolders.
pub fn write(
    dir: &Path,
    files: &[FileContent],
    dir_mode: u32,
    dir_owner: (Option<u32>, Option<u32>),
) -> io::Result<()> {
    let stamp = timestamp();
    let new_name = format!("..{stamp}");
    let new_dir = dir.join(&new_name);
    fs::DirBuilder::new().mode(0o700).create(&new_dir)?;
    let result = (|| {
        for file in files {
            let path = new_dir.join(&file.path);
            if let Some(parent) = path.parent().filter(|p| *p != new_dir) {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(dir_mode)
                    .create(parent)?;
                chown(parent, dir_owner)?;
            }
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            out.write_all(file.bytes.expose())?;
            chown(&path, (file.uid, file.gid))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))?;
        }
        chown(&new_dir, dir_owner)?;
        fs::set_permissions(&new_dir, fs::Permissions::from_mode(dir_mode))?;
        // Swap ..data in one rename.
        let tmp_link = dir.join("..data_tmp");
        let _ = fs::remove_file(&tmp_link);
        std::os::unix::fs::symlink(&new_name, &tmp_link)?;
        fs::rename(&tmp_link, dir.join(DATA_LINK))
    })();
    if let Err(error) = result {
        let _ = fs::remove_dir_all(&new_dir);
        return Err(error);
    }
    // Top-level links into ..data, then the leftovers of older versions.
    let wanted: std::collections::BTreeSet<&str> = files
        .iter()
        .map(|f| f.path.split('/').next().unwrap_or_default())
        .collect();
    for top in &wanted {
        let link = dir.join(top);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(PathBuf::from(DATA_LINK).join(top), &link)?;
        }
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == DATA_LINK || name == new_name {
            continue;
        }
        if name.starts_with("..") {
            fs::remove_dir_all(entry.path())?;
        } else if !wanted.contains(name.as_str()) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn chown(path: &Path, (uid, gid): (Option<u32>, Option<u32>)) -> io::Result<()> {
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::chown(path, uid, gid)
}

fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str, mode: u32) -> FileContent {
        FileContent {
            path: path.into(),
            mode,
            uid: None,
            gid: None,
            bytes: SecretBytes::new(content.as_bytes().to_vec()),
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ramlet-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn writes_swaps_and_cleans_up() {
        let dir = tempdir("swap");
        let v1 = [
            file("user", "app", 0o440),
            file("certs/tls.crt", "c1", 0o444),
        ];
        assert!(differs(&dir, &v1).unwrap());
        write(&dir, &v1, 0o711, (None, None)).unwrap();
        assert_eq!(fs::read_to_string(dir.join("user")).unwrap(), "app");
        assert_eq!(fs::read_to_string(dir.join("certs/tls.crt")).unwrap(), "c1");
        assert_eq!(
            fs::metadata(dir.join("user")).unwrap().permissions().mode() & 0o777,
            0o440
        );
        assert!(!differs(&dir, &v1).unwrap());

        let v2 = [file("user", "app2", 0o440)];
        assert!(differs(&dir, &v2).unwrap());
        write(&dir, &v2, 0o711, (None, None)).unwrap();
        assert_eq!(fs::read_to_string(dir.join("user")).unwrap(), "app2");
        assert!(
            fs::symlink_metadata(dir.join("certs")).is_err(),
            "a removed file's link must go"
        );
        let leftovers: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA_LINK)
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "only the current data folder stays: {leftovers:?}"
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn an_owner_change_is_a_change() {
        let dir = tempdir("owner");
        let me = fs::metadata(&dir).unwrap().uid();
        let mut f = file("a", "x", 0o400);
        f.uid = Some(me);
        write(&dir, std::slice::from_ref(&f), 0o700, (None, None)).unwrap();
        assert!(!differs(&dir, std::slice::from_ref(&f)).unwrap());
        f.uid = Some(me + 1);
        assert!(differs(&dir, &[f]).unwrap());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_mode_change_is_a_change() {
        let dir = tempdir("mode");
        write(&dir, &[file("a", "x", 0o400)], 0o700, (None, None)).unwrap();
        assert!(differs(&dir, &[file("a", "x", 0o440)]).unwrap());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn what_a_container_swaps_in_is_never_followed_nor_waited_on() {
        let dir = tempdir("strange");
        let files = [file("a", "x", 0o400)];
        write(&dir, &files, 0o700, (None, None)).unwrap();
        let data = fs::read_link(dir.join(DATA_LINK)).unwrap();
        // A FIFO in the data folder: answered at once, "differs".
        nix::unistd::mkfifo(&dir.join(&data).join("b"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(differs(&dir, &files).unwrap());
        fs::remove_file(dir.join(&data).join("b")).unwrap();
        // A file swapped for a link to the host's files.
        fs::remove_file(dir.join(&data).join("a")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join(&data).join("a")).unwrap();
        assert!(differs(&dir, &files).unwrap());
        // `..data` pointed at the host's root.
        fs::remove_file(dir.join(DATA_LINK)).unwrap();
        std::os::unix::fs::symlink("/", dir.join(DATA_LINK)).unwrap();
        assert!(differs(&dir, &files).unwrap());
        // A rewrite puts it right.
        write(&dir, &files, 0o700, (None, None)).unwrap();
        assert!(!differs(&dir, &files).unwrap());
        let _ = fs::remove_dir_all(dir);
    }
}
