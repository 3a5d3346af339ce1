//! Files a rootless container sees with an owner other than its root.
//!
//! In user scope a container's root is the user, and its IDs 1, 2, ... are the user's subordinate
//! IDs (`/etc/subuid`, `/etc/subgid`) in order: Podman's default mapping. A secret that a
//! rootless nginx (uid 101) reads must belong, on the host, to the user's 101st subordinate ID,
//! and only a process inside such a mapping may give it that owner (`podman unshare chown` is
//! one). ramlet's own unit cannot: its sandbox maps the user alone (`PrivateUsers=`, which a user
//! manager implies for `ProtectSystem=` and the like), and `newuidmap` is set-user-ID, which
//! `NoNewPrivileges=` stops.
//!
//! So a volume whose files want such owners is written, read back and removed by a helper that
//! the user's manager starts as a transient unit, outside ramlet's sandbox
//! (`systemd-run --user --pipe ... podman unshare ramlet volume-helper OP DIR`): ramlet itself,
//! inside the mapping Podman gives the user's containers, running the same [`atomic`] code
//! ramlet runs in system scope. Secrets cross only the helper's standard input and output
//! (pipes), in the format of the `wire` module below; nothing of them is logged. Nothing changes
//! for a volume whose files all belong to the container's root: ramlet writes it itself.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::Path;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use crate::drivers::{FileContent, OwnerError};
use crate::host::atomic::{self, Contents};
use crate::host::labels;

/// What the helper does to a volume folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Fill it: the request on standard input, the new data folder's name on standard output.
    Write,
    /// Read it back: what it holds on standard output.
    Read,
    /// Remove it and everything in it.
    Remove,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Read => "read",
            Self::Remove => "remove",
        }
    }
}

/// How many IDs above root the user's rootless containers have: the user's subordinate IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subordinate {
    /// The user's name (or uid, when it has none), for messages.
    user: String,
    /// Container uids 1..=uids are mapped.
    uids: u32,
    /// Container gids 1..=gids are mapped.
    gids: u32,
}

impl Subordinate {
    /// The running user's, from `/etc/subuid` and `/etc/subgid` (none where they are missing).
    #[must_use]
    pub fn of_current_user() -> Self {
        let uid = nix::unistd::getuid();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |user| user.name);
        let table = |path: &str| fs::read_to_string(path).unwrap_or_default();
        Self {
            uids: count(&table("/etc/subuid"), &name, uid.as_raw()),
            gids: count(&table("/etc/subgid"), &name, uid.as_raw()),
            user: name,
        }
    }

    /// The owner to give a file that the container sees as `uid:gid`: `None` for the container's
    /// root (the user: ramlet writes it itself), the container's own IDs otherwise (the helper
    /// gives them, inside the mapping); an error naming the range for IDs outside it.
    pub fn owner(&self, uid: u32, gid: u32) -> Result<(Option<u32>, Option<u32>), OwnerError> {
        if uid == 0 && gid == 0 {
            return Ok((None, None));
        }
        if uid <= self.uids && gid <= self.gids {
            return Ok((Some(uid), Some(gid)));
        }
        let user = self.user.clone();
        Err(if self.uids == 0 || self.gids == 0 {
            OwnerError::NoSubordinateIds { uid, gid, user }
        } else {
            OwnerError::OutsideMapping {
                uid,
                gid,
                user,
                uids: self.uids,
                gids: self.gids,
            }
        })
    }
}

/// How many subordinate IDs `table` (`/etc/subuid` or `/etc/subgid`: `user:start:count` lines)
/// gives the user called `name` or numbered `uid`: every range counts, as Podman maps them all.
#[must_use]
pub fn count(table: &str, name: &str, uid: u32) -> u32 {
    let uid = uid.to_string();
    table
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            let _start: u32 = fields.next()?.parse().ok()?;
            let count: u32 = fields.next()?.parse().ok()?;
            (owner == name || owner == uid).then_some(count)
        })
        .fold(0u32, u32::saturating_add)
}

/// Fills `dir` inside the mapping: `mount` and `data` are the mode and owner of the volume folder
/// and of the data folder (see [`atomic::write`]). Returns the data folder's name.
pub fn write(
    dir: &Path,
    mount: (u32, (Option<u32>, Option<u32>)),
    data: (u32, (Option<u32>, Option<u32>)),
    files: &[FileContent],
) -> io::Result<String> {
    let request = wire::write_request(mount, data, files);
    let name = call(Op::Write, dir, &request)?;
    String::from_utf8(name.to_vec())
        .map_err(|_| io::Error::other("the volume helper's answer is not a folder name"))
}

/// Reads `dir` back inside the mapping (`None`: it holds something ramlet did not write).
pub fn read(dir: &Path) -> io::Result<Option<Contents>> {
    wire::contents(&call(Op::Read, dir, &[])?)
}

/// Removes `dir` inside the mapping.
pub fn remove(dir: &Path) -> io::Result<()> {
    call(Op::Remove, dir, &[]).map(drop)
}

/// Runs the helper on `dir` with `request` on its standard input; returns its standard output.
fn call(op: Op, dir: &Path, request: &[u8]) -> io::Result<Zeroizing<Vec<u8>>> {
    // The binary's path: after a package upgrade, until the agent restarts, the kernel names
    // the old one "(deleted)", and the new one is at the same path.
    let exe = std::env::current_exe()?;
    let exe = exe
        .to_str()
        .and_then(|path| path.strip_suffix(" (deleted)"))
        .map_or_else(|| exe.clone(), std::path::PathBuf::from);
    let mut child = Command::new("systemd-run")
        .args([
            "--user",
            "--pipe",
            "--wait",
            "--collect",
            "--quiet",
            "--service-type=exec",
            "--property=LimitCORE=0",
            "--property=UMask=0077",
            "--property=RuntimeMaxSec=60",
        ])
        .arg(format!(
            "--description=ramlet: {} a volume in rootless Podman's ID mapping",
            op.as_str()
        ))
        .args(["podman", "unshare"])
        .arg(exe)
        .args(["volume-helper", op.as_str()])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run systemd-run: {e}")))?;
    let mut stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stderr) = stderr.as_mut() {
            let _ = stderr.by_ref().take(16 * 1024).read_to_string(&mut text);
            // The rest is dropped, not left to fill the pipe and stop the helper.
            let _ = io::copy(stderr, &mut io::sink());
        }
        text
    });
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that failed before reading says why on its standard error.
        match stdin.write_all(request) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
    }
    let answer = match child.stdout.take() {
        Some(stdout) => wire::read_all(stdout)?,
        None => Zeroizing::new(Vec::new()),
    };
    let status = child.wait()?;
    let errors = errors.join().unwrap_or_default();
    if status.success() {
        Ok(answer)
    } else {
        Err(io::Error::other(format!(
            "the volume helper (systemd-run --user ... podman unshare ramlet volume-helper {}) failed, {status}: {}",
            op.as_str(),
            errors.trim()
        )))
    }
}

/// `ramlet volume-helper OP DIR`, if that is the command line: the helper's side, which
/// `call` runs inside the mapping. Not part of ramlet's documented command line (no help, no
/// man page): only ramlet starts it. `None` for any other command line.
#[must_use]
pub fn helper_main(args: &[std::ffi::OsString]) -> Option<std::process::ExitCode> {
    let [_, command, op, dir] = args else {
        return None;
    };
    if command != "volume-helper" {
        return None;
    }
    let op = [Op::Write, Op::Read, Op::Remove]
        .into_iter()
        .find(|o| op == o.as_str())?;
    Some(match serve(op, Path::new(dir)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ramlet volume-helper: {error}");
            std::process::ExitCode::FAILURE
        }
    })
}

/// Why the helper could not do what it was asked (said on its standard error).
#[derive(Debug, thiserror::Error)]
enum HelperError {
    /// It runs outside a user namespace with the subordinate IDs.
    #[error(
        "only the user is mapped here (/proc/self/uid_map: {0}); rootless Podman needs newuidmap and newgidmap (Debian's package uidmap) and the user's ranges in /etc/subuid and /etc/subgid"
    )]
    NotMapped(String),
    /// The request could not be read or understood.
    #[error("cannot read the request: {0}")]
    Request(#[source] io::Error),
    /// The folder could not be written, read or removed.
    #[error("{}: {source}", .path.display())]
    Folder {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The answer could not be written.
    #[error("cannot answer: {0}")]
    Answer(#[source] io::Error),
}

/// The helper's side: does `op` on `dir` with the request on standard input.
fn serve(op: Op, dir: &Path) -> Result<(), HelperError> {
    // The same second line of defence as the agent's: no core file, no ptrace by peers.
    let _ = nix::sys::prctl::set_dumpable(false);
    let mapped = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if mapped.lines().count() < 2 {
        return Err(HelperError::NotMapped(mapped.trim().to_owned()));
    }
    // Unbuffered, so that no copy of a secret stays in a standard stream's buffer.
    let stdout = |bytes: &[u8]| -> Result<(), HelperError> {
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(HelperError::Answer)?;
        fs::File::from(fd)
            .write_all(bytes)
            .map_err(HelperError::Answer)
    };
    let at = |source: io::Error| HelperError::Folder {
        path: dir.to_owned(),
        source,
    };
    match op {
        Op::Write => {
            let fd = io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(HelperError::Request)?;
            let request = wire::read_all(fs::File::from(fd)).map_err(HelperError::Request)?;
            let (mount, data, files) = wire::parse_write(&request).map_err(HelperError::Request)?;
            fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mount.0))
                .map_err(at)?;
            if mount.1 != (None, None) {
                std::os::unix::fs::chown(dir, mount.1.0, mount.1.1).map_err(at)?;
            }
            let name =
                atomic::write(dir, &files, data.0, data.1, labels::Mode::of_host()).map_err(at)?;
            stdout(name.as_bytes())
        }
        Op::Read => stdout(&wire::encode_contents(
            atomic::read_trusted(dir).map_err(at)?.as_ref(),
        )),
        Op::Remove => match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(at(e)),
            _ => Ok(()),
        },
    }
}

mod wire;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretBytes;

    #[test]
    fn every_range_of_the_user_counts_by_name_or_uid() {
        let table = "alice:100000:65536\nbob:165536:65536\n# a comment\n1000:300000:10\nbad line\n";
        assert_eq!(count(table, "alice", 1000), 65546);
        assert_eq!(count(table, "bob", 1001), 65536);
        assert_eq!(count(table, "carol", 1002), 0);
    }

    #[test]
    fn owners_inside_the_mapping_are_the_containers_own_and_outside_are_errors() {
        let ids = Subordinate {
            user: "alice".into(),
            uids: 65536,
            gids: 65536,
        };
        assert_eq!(ids.owner(0, 0), Ok((None, None)));
        assert_eq!(ids.owner(101, 101), Ok((Some(101), Some(101))));
        assert_eq!(ids.owner(0, 70), Ok((Some(0), Some(70))));
        let outside = ids.owner(70000, 0).unwrap_err().to_string();
        assert!(outside.contains("uids 0 to 65536"), "{outside}");
        let none = Subordinate {
            uids: 0,
            gids: 0,
            ..ids
        };
        assert!(
            none.owner(101, 101)
                .unwrap_err()
                .to_string()
                .contains("has no subordinate IDs"),
        );
        assert_eq!(none.owner(0, 0), Ok((None, None)));
    }

    #[test]
    fn requests_and_answers_cross_the_pipe_whole() {
        let files = vec![FileContent {
            path: "tls/key".into(),
            mode: 0o400,
            uid: Some(101),
            gid: None,
            bytes: SecretBytes::new(b"s3cret\0\n".to_vec()),
        }];
        let request =
            wire::write_request((0o711, (None, None)), (0o700, (Some(101), Some(7))), &files);
        let (mount, data, back) = wire::parse_write(&request).unwrap();
        assert_eq!(mount, (0o711, (None, None)));
        assert_eq!(data, (0o700, (Some(101), Some(7))));
        assert_eq!(back, files);
        assert!(wire::parse_write(&request[..request.len() - 1]).is_err());

        let contents = Contents {
            data: Some("..2026_12_02".into()),
            files: [(
                "tls/key".to_owned(),
                atomic::Current {
                    bytes: SecretBytes::new(b"s3cret".to_vec()),
                    mode: 0o400,
                    uid: 101,
                    gid: 101,
                },
            )]
            .into(),
        };
        let answer = wire::contents(&wire::encode_contents(Some(&contents)))
            .unwrap()
            .unwrap();
        assert_eq!(answer.data, contents.data);
        assert_eq!(answer.files, contents.files);
        assert!(
            wire::contents(&wire::encode_contents(None))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn long_messages_are_read_whole() {
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(*wire::read_all(message.as_slice()).unwrap(), message);
    }
}
