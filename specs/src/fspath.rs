//! Paths in specs: file paths inside a volume (relative) and mount paths in the container
//! (absolute). Both are refused if they could escape where they belong or confuse a unit file.

use crate::error::{Check, ErrorKind};

const MAX_SEGMENT_BYTES: usize = 255;

/// Checks a path inside a volume: relative, normalised, no `.` or `..` segments, no segment
/// starting with `..` (that prefix is reserved for the atomic-update machinery, as in the
/// kubelet), no empty segments, each segment at most 255 bytes.
pub(crate) fn relative(value: &str) -> Check<String> {
    let fail = |why: &str| Err((ErrorKind::InvalidPath, format!("{value:?} {why}")));
    if value.is_empty() {
        return fail("is empty; give a relative path such as `tls.key`");
    }
    if value.starts_with('/') {
        return fail("is absolute; give a path relative to the volume, such as `tls.key`");
    }
    for segment in value.split('/') {
        match segment {
            "" => return fail("has an empty segment (`//` or a trailing `/`)"),
            "." | ".." => return fail("has a `.` or `..` segment; paths cannot leave the volume"),
            s if s.starts_with("..") => {
                return fail("has a segment starting with `..`, which ramlet reserves");
            }
            s if s.len() > MAX_SEGMENT_BYTES => return fail("has a segment over 255 bytes"),
            _ => {}
        }
    }
    Ok(value.to_owned())
}

/// Checks a mount path in the container: absolute, normalised, not `/`, not inside `/proc`,
/// `/sys` or `/dev`, and without `:` or `,`, which Quadlet's `Volume=` uses as separators.
pub(crate) fn mount_path(value: &str) -> Check<String> {
    let fail = |why: &str| Err((ErrorKind::InvalidPath, format!("{value:?} {why}")));
    let Some(rest) = value.strip_prefix('/') else {
        return fail("must be an absolute path, such as `/run/secrets/app`");
    };
    if rest.is_empty() {
        return fail("is the container's root; mount the volume in a directory of its own");
    }
    if value.contains([':', ',']) || value.chars().any(char::is_whitespace) {
        return fail("must not contain `:`, `,` or whitespace");
    }
    for segment in rest.split('/') {
        match segment {
            "" => return fail("has an empty segment (`//` or a trailing `/`)"),
            "." | ".." => return fail("has a `.` or `..` segment; write the path normalised"),
            s if s.len() > MAX_SEGMENT_BYTES => return fail("has a segment over 255 bytes"),
            _ => {}
        }
    }
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|top| is_within(value, top))
    {
        return fail("is inside /proc, /sys or /dev, which the container runtime owns");
    }
    Ok(value.to_owned())
}

/// Checks an absolute host directory (the `file` store's directory) and returns it normalised
/// (`//` and `.` segments removed, no trailing `/`), so `/etc/.` or `//etc` is seen as `/etc`
/// (issue 19). Refused: `..`; a system folder itself ([`SYSTEM_ROOTS`]); anything inside the
/// kernel's, the system's code or root's home ([`REFUSED_TREES`]); a hidden folder at any
/// depth (`~/.ssh`, `~/.aws`, `~/.config/gcloud`: where credentials live).
pub(crate) fn host_directory(value: &str) -> Check<String> {
    let fail = |why: &str| Err((ErrorKind::InvalidPath, format!("{value:?} {why}")));
    if !value.starts_with('/') {
        return fail("must be an absolute path, such as `/etc/ramlet/secrets`");
    }
    let segments: Vec<&str> = value
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segments.contains(&"..") {
        return fail("has a `..` segment; write the path normalised");
    }
    let path = format!("/{}", segments.join("/"));
    if SYSTEM_ROOTS.contains(&path.as_str()) {
        return fail(
            "is a system directory; give the store a folder of its own, such as `/etc/ramlet/secrets`",
        );
    }
    if let Some(tree) = REFUSED_TREES.iter().find(|t| is_within(&path, t)) {
        return Err((
            ErrorKind::InvalidPath,
            format!(
                "{value:?} is inside {tree}, which holds the kernel's, the system's or root's own files; give the store a folder of its own, such as `/etc/ramlet/secrets`"
            ),
        ));
    }
    if let Some(hidden) = segments.iter().find(|s| s.starts_with('.')) {
        return Err((
            ErrorKind::InvalidPath,
            format!(
                "{value:?} goes through the hidden folder {hidden:?}, where credentials and settings live; give the store a folder of its own, such as `/etc/ramlet/secrets`"
            ),
        ));
    }
    Ok(path)
}

/// Checks a secret's name in a `file` or `creds` store (already a clean relative path) where it
/// resolves to on the host, `directory/name`, by the same rules as a store's directory: no
/// hidden segment, nothing in the refused trees (issue 33: `file: {directory: /home/alice}`
/// with the secret `.ssh/id_ed25519` delivered the key).
pub(crate) fn host_file(directory: &std::path::Path, name: &str) -> Check<()> {
    not_hidden(name)?;
    let full = directory.join(name);
    let full = full.to_string_lossy();
    if let Some(tree) = REFUSED_TREES.iter().find(|t| is_within(&full, t)) {
        return Err((
            ErrorKind::InvalidPath,
            format!(
                "{name:?} resolves to {full}, inside {tree}, which holds the kernel's, the system's or root's own files"
            ),
        ));
    }
    Ok(())
}

/// Refuses a relative path with a hidden segment (`.ssh/id_ed25519`, `.aws/credentials`): where
/// credentials and settings live, never a secret meant for a container.
pub(crate) fn not_hidden(name: &str) -> Check<()> {
    match name.split('/').find(|s| s.starts_with('.')) {
        Some(hidden) => Err((
            ErrorKind::InvalidPath,
            format!(
                "{name:?} goes through the hidden {hidden:?}, where credentials and settings live; name a file that is not hidden"
            ),
        )),
        None => Ok(()),
    }
}

/// Directories a `file` store may not be: each holds far more than secrets, and is watched
/// recursively and read by ramlet (often as root).
const SYSTEM_ROOTS: &[&str] = &[
    "/", "/bin", "/boot", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
    "/root", "/run", "/sbin", "/srv", "/tmp", "/usr", "/var",
];

/// Trees a `file` store may not be in at all, nor read a secret from: the kernel's
/// pseudo-filesystems, the system's own code and boot files, root's home, the folders of `/etc`
/// and `/var` that hold the host's own keys, credentials, backups, logs and container storage,
/// and the conventional folder for ramlet's own age identities.
const REFUSED_TREES: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/usr",
    "/root",
    "/etc/ssh",
    "/etc/ssl",
    "/etc/sudoers.d",
    "/etc/security",
    "/etc/credstore",
    "/etc/credstore.encrypted",
    "/etc/wireguard",
    "/etc/NetworkManager/system-connections",
    "/run/credentials",
    "/var/backups",
    "/var/log",
    "/var/lib/containers",
    "/var/lib/systemd",
];

/// Whether `path` is `dir` or below it, segment-wise.
pub(crate) fn is_within(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_directories_are_a_folder_of_their_own() {
        for good in [
            "/etc/ramlet/secrets",
            "/srv/secrets/",
            "/run/ramlet-secrets",
            "/var/lib/app",
        ] {
            assert!(host_directory(good).is_ok(), "{good}");
        }
        for bad in [
            "/",
            "/etc",
            "/etc/",
            "/root",
            "/proc/self",
            "/sys",
            "/dev/shm/x",
            "relative",
        ] {
            assert!(host_directory(bad).is_err(), "{bad}");
        }
    }

    /// Issue 19, finding 2: `/etc/.`, `//etc` and `/root/.ssh` passed, so with an empty policy a
    /// spec read `/etc/./shadow` as root. Directories are normalised before any check, and system
    /// trees and hidden folders are refused at any depth.
    #[test]
    fn regression_19_store_directories_are_normalised_and_system_trees_refused_at_any_depth() {
        assert_eq!(
            host_directory("//srv/./secrets//app/").unwrap(),
            "/srv/secrets/app"
        );
        for bad in [
            "/etc/.",
            "//etc",
            "/./etc/",
            "/root/.ssh",
            "/home/app/.aws",
            "/srv/app/.config/gcloud",
            "/etc/ssh/keys",
            "/usr/local/share/secrets",
            "/var/lib/systemd/credential.secret",
            "/srv/a/../../etc",
        ] {
            assert!(host_directory(bad).is_err(), "{bad} was allowed");
        }
    }

    /// Issue 33, finding 5: the refusals held for a store's folder but not for where a secret's
    /// name took it: `/home/alice` with `.ssh/id_ed25519`, or `/srv` with `../etc/x` (refused
    /// by `relative`), or a folder of the host's own backups, logs or container storage.
    #[test]
    fn regression_33_a_secret_name_resolves_only_to_where_a_store_may_read() {
        use std::path::Path;
        for (dir, name) in [
            ("/home/alice", ".ssh/id_ed25519"),
            ("/home/app", ".aws/credentials"),
            ("/srv/secrets", "team/.git/config"),
            ("/var/lib", "containers/storage/overlay/x"),
            ("/var/lib", "systemd/credential.secret"),
            ("/var", "backups/passwd.bak"),
            ("/var", "log/journal/x"),
            ("/etc/ramlet", "../wireguard/wg0.conf"),
        ] {
            let refused = relative(name).is_err() || host_file(Path::new(dir), name).is_err();
            assert!(refused, "{dir} + {name}");
        }
        for (dir, name) in [
            ("/etc/ramlet/secrets", "db/password"),
            ("/home/app/secrets", "tls.key"),
        ] {
            assert!(host_file(Path::new(dir), name).is_ok(), "{dir} + {name}");
        }
        for dir in [
            "/etc/wireguard",
            "/var/backups",
            "/var/log/app",
            "/var/lib/containers",
        ] {
            assert!(host_directory(dir).is_err(), "{dir}");
        }
    }

    #[test]
    fn relative_paths() {
        for good in ["tls.key", "certs/tls.crt", "a/b/c", ".hidden", "x..y"] {
            assert!(relative(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/x",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            "./a",
            "..data",
            "a/..b",
        ] {
            assert_eq!(
                relative(bad).unwrap_err().0,
                ErrorKind::InvalidPath,
                "{bad}"
            );
        }
    }

    #[test]
    fn mount_paths() {
        for good in ["/etc/nginx/tls", "/run/secrets", "/devices"] {
            assert!(mount_path(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/", "etc/x", "/etc/", "/a/../b", "/a:b", "/a,b", "/a b", "/proc/x", "/dev",
        ] {
            assert_eq!(
                mount_path(bad).unwrap_err().0,
                ErrorKind::InvalidPath,
                "{bad}"
            );
        }
    }

    #[test]
    fn within_is_segment_wise() {
        assert!(is_within("/etc/a/b", "/etc/a"));
        assert!(is_within("/etc/a", "/etc/a"));
        assert!(!is_within("/etc/ab", "/etc/a"));
    }
}
