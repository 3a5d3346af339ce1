//! The helper's side: `ramlet volume-helper serve ROOT`, inside Podman's ID mapping, answers
//! one request after another on its standard input and output until the input closes (ramlet
//! ended or let it go). It acts only on folders under `ROOT`, the volume root.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path};

use zeroize::Zeroizing;

use super::{Op, wire};
use crate::host::atomic;
use crate::host::labels;

/// `ramlet volume-helper serve ROOT`, if that is the command line: the helper's side. Not part
/// of ramlet's documented command line (no help, no man page): only ramlet starts it. `None` for
/// any other command line.
#[must_use]
pub fn helper_main(args: &[std::ffi::OsString]) -> Option<std::process::ExitCode> {
    let [_, command, serve, root] = args else {
        return None;
    };
    if command != "volume-helper" || serve != "serve" {
        return None;
    }
    Some(match run(Path::new(root)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ramlet volume-helper: {error}");
            std::process::ExitCode::FAILURE
        }
    })
}

/// Why the helper stopped serving (said on its standard error).
#[derive(Debug, thiserror::Error)]
enum HelperError {
    /// It runs outside a user namespace with the subordinate IDs.
    #[error(
        "only the user is mapped here (/proc/self/uid_map: {0}); rootless Podman needs newuidmap and newgidmap (Debian's package uidmap) and the user's ranges in /etc/subuid and /etc/subgid"
    )]
    NotMapped(String),
    /// A request could not be read or understood.
    #[error("cannot read the request: {0}")]
    Request(#[source] io::Error),
    /// An answer could not be written.
    #[error("cannot answer: {0}")]
    Answer(#[source] io::Error),
}

/// Serves requests for folders under `root` until the input closes.
fn run(root: &Path) -> Result<(), HelperError> {
    // The same second line of defence as the agent's: no core file, no ptrace by peers.
    let _ = nix::sys::prctl::set_dumpable(false);
    let mapped = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if mapped.lines().count() < 2 {
        return Err(HelperError::NotMapped(mapped.trim().to_owned()));
    }
    // Unbuffered, so that no copy of a secret stays in a standard stream's buffer.
    let stdio = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map(fs::File::from);
    let input = stdio(io::stdin().as_fd()).map_err(HelperError::Request)?;
    let mut output = stdio(io::stdout().as_fd()).map_err(HelperError::Answer)?;
    while let Some(request) = wire::read_frame(&input).map_err(HelperError::Request)? {
        let (op, dir, payload) = wire::parse_request(&request).map_err(HelperError::Request)?;
        let answer = match serve(root, op, Path::new(OsStr::from_bytes(dir)), payload) {
            Ok(body) => wire::answer(Ok(&body)),
            Err(why) => wire::answer(Err(&why)),
        };
        output.write_all(&answer).map_err(HelperError::Answer)?;
    }
    Ok(())
}

/// Does what one request asks (`op` on `dir` with `payload`): the answer's body, or why not
/// (a message that names the folder, never a file's contents).
fn serve(root: &Path, op: u8, dir: &Path, payload: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let under_root = dir.starts_with(root)
        && dir != root
        && dir
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !under_root {
        return Err(format!(
            "{} is not a volume folder under {}",
            dir.display(),
            root.display()
        ));
    }
    let at = |source: io::Error| format!("{}: {source}", dir.display());
    match Op::from_code(op).ok_or_else(|| format!("no such request: {op}"))? {
        Op::Write => {
            let (mount, data, files) = wire::parse_write(payload).map_err(|e| e.to_string())?;
            fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mount.0))
                .map_err(at)?;
            if mount.1 != (None, None) {
                std::os::unix::fs::chown(dir, mount.1.0, mount.1.1).map_err(at)?;
            }
            let name =
                atomic::write(dir, &files, data.0, data.1, labels::Mode::of_host()).map_err(at)?;
            Ok(Zeroizing::new(name.into_bytes()))
        }
        Op::Read => Ok(wire::encode_contents(
            atomic::read_trusted(dir).map_err(at)?.as_ref(),
        )),
        Op::Remove => match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(at(e)),
            _ => Ok(Zeroizing::new(Vec::new())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_under_the_root_are_served() {
        let root = Path::new("/run/ramlet/users/1000");
        for dir in [
            "/run/ramlet/users/1000",
            "/run/ramlet/users/1000/web/../../../../etc",
            "/etc",
            "/run/ramlet/users/10000/web/s",
            "run/ramlet/users/1000/web/s",
        ] {
            let refused = serve(root, 2, Path::new(dir), &[]).unwrap_err();
            assert!(
                refused.contains("is not a volume folder under"),
                "{dir}: {refused}"
            );
        }
        // Under the root: removing a folder that is not there is done.
        let removed = serve(
            root,
            2,
            Path::new("/run/ramlet/users/1000/web/nothing-here"),
            &[],
        );
        assert_eq!(removed.unwrap().len(), 0);
        assert!(serve(root, 9, Path::new("/run/ramlet/users/1000/web/s"), &[]).is_err());
    }
}
