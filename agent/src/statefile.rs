//! Replacing one of ramlet's own small files (the status file, the owed-work journal, a unit
//! file, the metrics file) in one rename, so a reader never sees half of it, without following
//! a link anyone left at the temporary name: the temporary file is created with `O_EXCL |
//! O_NOFOLLOW`, its mode set through its descriptor (not by path), then renamed over the file.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Removes `path` (a link itself, never what it points to); one that is not there is fine.
///
/// # Errors
/// When it is there and cannot be removed.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Replaces `path` with `bytes`, mode `mode` whatever the umask, through `.<name>.tmp` beside
/// it; `sync` flushes the data before the rename (for files that must survive a crash whole).
///
/// # Errors
/// When the folder is not writable, or the temporary name is taken by something that is not a
/// plain file ramlet can remove.
pub fn replace(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    // A leftover from a crash (or a link planted there) goes.
    remove(&tmp)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .mode(mode)
        .open(&tmp)?;
    // The umask may have taken bits away; set them on the descriptor, not the path.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, finding 6: a link left at the temporary name must not make ramlet write
    /// through it.
    #[test]
    fn a_link_at_the_temporary_name_is_replaced_not_followed() {
        let dir = std::env::temp_dir().join(format!("ramlet-statefile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(".status.json.tmp")).unwrap();
        replace(&dir.join("status.json"), b"{}\n", 0o600, false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(
            std::fs::read_to_string(dir.join("status.json")).unwrap(),
            "{}\n"
        );
        let mode = std::fs::metadata(dir.join("status.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(dir);
    }
}
