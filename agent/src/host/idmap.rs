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
//! (`systemd-run --user --pipe ... podman unshare ramlet volume-helper serve ROOT`): ramlet
//! itself, inside the mapping Podman gives the user's containers, running the same
//! [`atomic`](crate::host::atomic) code ramlet runs in system scope. It is started when a
//! volume first needs it and kept while ramlet runs (starting it costs about 170 ms, an
//! exchange well under one), and started again if it died. Secrets cross only the helper's standard input and output (pipes), in the frames
//! of the `wire` module below; nothing of them is logged. Nothing changes for a volume whose
//! files all belong to the container's root: ramlet writes it itself.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::drivers::{FileContent, OwnerError};
use crate::host::atomic::Contents;

pub use serve::helper_main;

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
    /// Its code on the wire.
    fn code(self) -> u8 {
        match self {
            Self::Write => 0,
            Self::Read => 1,
            Self::Remove => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        [Self::Write, Self::Read, Self::Remove]
            .into_iter()
            .find(|op| op.code() == code)
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

/// The helper as ramlet calls it: one process for every volume under the root, started on
/// first need and kept.
#[derive(Debug)]
pub struct Helper {
    /// The volume root: the helper acts on folders under it only.
    root: PathBuf,
    /// The running helper, if one was started and has not failed since.
    process: Mutex<Option<process::Process>>,
}

impl Helper {
    /// A helper for the volumes under `root` (nothing runs until the first call).
    #[must_use]
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            process: Mutex::new(None),
        }
    }

    /// Fills `dir` inside the mapping: `mount` and `data` are the mode and owner of the volume
    /// folder and of the data folder (see [`atomic::write`](crate::host::atomic::write)).
    /// Returns the data folder's name.
    pub fn write(
        &self,
        dir: &Path,
        mount: (u32, (Option<u32>, Option<u32>)),
        data: (u32, (Option<u32>, Option<u32>)),
        files: &[FileContent],
    ) -> io::Result<String> {
        let request = wire::write_request(mount, data, files);
        let name = self.call(Op::Write, dir, &request)?;
        String::from_utf8(name.to_vec())
            .map_err(|_| io::Error::other("the volume helper's answer is not a folder name"))
    }

    /// Reads `dir` back inside the mapping (`None`: it holds something ramlet did not write).
    pub fn read(&self, dir: &Path) -> io::Result<Option<Contents>> {
        wire::contents(&self.call(Op::Read, dir, &[])?)
    }

    /// Removes `dir` inside the mapping.
    pub fn remove(&self, dir: &Path) -> io::Result<()> {
        self.call(Op::Remove, dir, &[]).map(drop)
    }

    /// Asks the helper to do `op` on `dir` with `payload`; returns its answer. A helper that
    /// served before and has died since (killed, its manager restarted) is started again once;
    /// one just started that fails is the error.
    fn call(&self, op: Op, dir: &Path, payload: &[u8]) -> io::Result<Zeroizing<Vec<u8>>> {
        let request = wire::request(op.code(), dir.as_os_str().as_bytes(), payload);
        let mut held = crate::util::lock(&self.process);
        let mut fresh = false;
        loop {
            let mut process = if let Some(process) = held.take() {
                process
            } else {
                fresh = true;
                process::Process::start(&self.root)?
            };
            match process.exchange(&request) {
                Ok(answer) => {
                    *held = Some(process);
                    return wire::parse_answer(&answer);
                }
                Err(error) => {
                    let error = process.end(&error);
                    if fresh {
                        return Err(error);
                    }
                    tracing::info!("{error}; starting the volume helper again");
                }
            }
        }
    }
}

mod process;
mod serve;
mod wire;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::atomic;
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
    fn frames_are_read_whole_one_after_another() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = wire::request(Op::Write.code(), b"/run/v/web/s", &payload).to_vec();
        stream.extend_from_slice(&wire::answer(Err("/run/v/web/s: denied")));
        let mut reader = stream.as_slice();
        let first = wire::read_frame(&mut reader).unwrap().unwrap();
        let (op, dir, body) = wire::parse_request(&first).unwrap();
        assert_eq!(Op::from_code(op), Some(Op::Write));
        assert_eq!(dir, b"/run/v/web/s");
        assert_eq!(body, payload.as_slice());
        let second = wire::read_frame(&mut reader).unwrap().unwrap();
        let refused = wire::parse_answer(&second).unwrap_err().to_string();
        assert_eq!(refused, "/run/v/web/s: denied");
        assert!(wire::read_frame(&mut reader).unwrap().is_none());
        // A frame cut short is an error, not a short answer.
        let cut = &stream[..100];
        assert!(wire::read_frame(cut).is_err());
    }
}
