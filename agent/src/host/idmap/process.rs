//! The helper's process as ramlet holds it: a transient unit of the user's manager
//! (`systemd-run --user --pipe ... podman unshare ramlet volume-helper serve ROOT`), started on
//! first need and kept, its standard input and output the two ends of every exchange. Every
//! exchange has a deadline; a helper that misses it, or ended, is stopped, and says why.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use zeroize::Zeroizing;

use super::wire;

/// How long one exchange may take, start of the helper included: writing a volume is a few
/// milliseconds, starting the helper about 170.
const ANSWER_WITHIN: Duration = Duration::from_mins(1);

/// What the helper said on its standard error is read up to this much.
const ERRORS_KEPT: u64 = 16 * 1024;

/// The helper's units are named after the agent and a count, so that one can be stopped.
static STARTED: AtomicU32 = AtomicU32::new(0);

/// A running helper.
#[derive(Debug)]
pub(super) struct Process {
    /// Its transient unit, `ramlet-volume-helper-<agent pid>-<count>.service`.
    unit: String,
    /// `systemd-run`, which lives as long as the unit.
    child: Child,
    /// Requests go here.
    stdin: ChildStdin,
    /// Answers come from here.
    stdout: ChildStdout,
    /// What it said on its standard error, once that closes.
    errors: mpsc::Receiver<String>,
}

impl Process {
    /// Starts the helper for the volumes under `root` (it refuses any other folder).
    pub(super) fn start(root: &Path) -> io::Result<Self> {
        // The binary's path: after a package upgrade, until the agent restarts, the kernel names
        // the old one "(deleted)", and the new one is at the same path.
        let exe = std::env::current_exe()?;
        let exe = exe
            .to_str()
            .and_then(|path| path.strip_suffix(" (deleted)"))
            .map_or_else(|| exe.clone(), std::path::PathBuf::from);
        let unit = format!(
            "ramlet-volume-helper-{}-{}.service",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let mut child = Command::new("systemd-run")
            .args([
                "--user",
                "--pipe",
                "--collect",
                "--quiet",
                "--service-type=exec",
                "--property=LimitCORE=0",
                "--property=UMask=0077",
                "--description=ramlet: writes volumes in rootless Podman's ID mapping",
            ])
            .arg(format!("--unit={unit}"))
            .args(["podman", "unshare"])
            .arg(exe)
            .args(["volume-helper", "serve"])
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run systemd-run: {e}")))?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(
                "systemd-run was started without its pipes",
            ));
        };
        // Our ends wait in `poll`, with the deadline, never in a read or write.
        for fd in [stdin.as_fd(), stdout.as_fd()] {
            fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
        }
        let (said, errors) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.by_ref().take(ERRORS_KEPT).read_to_string(&mut text);
            // The rest is dropped, not left to fill the pipe and stop the helper.
            let _ = io::copy(&mut stderr, &mut io::sink());
            let _ = said.send(text);
        });
        Ok(Self {
            unit,
            child,
            stdin,
            stdout,
            errors,
        })
    }

    /// Sends `request` (a whole frame) and returns the answer's frame.
    pub(super) fn exchange(&mut self, request: &[u8]) -> io::Result<Zeroizing<Vec<u8>>> {
        let deadline = Instant::now() + ANSWER_WITHIN;
        Timed(self.stdin.as_fd(), deadline).write_all(request)?;
        wire::read_frame(Timed(self.stdout.as_fd(), deadline))?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "it ended before it answered")
        })
    }

    /// Stops the helper after `error` and says why it failed, with what it said.
    pub(super) fn end(mut self, error: &io::Error) -> io::Error {
        // A helper that hangs does not see its input close: its unit is stopped.
        let _ = Command::new("systemctl")
            .args(["--user", "stop", "--no-block", &self.unit])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let said = self
            .errors
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_default();
        io::Error::new(
            error.kind(),
            format!(
                "the volume helper (systemd-run --user ... podman unshare ramlet volume-helper, unit {}) failed: {error}{}{}",
                self.unit,
                if said.trim().is_empty() { "" } else { ": " },
                said.trim()
            ),
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Its input closes with ours (after this): the helper ends, and so does systemd-run.
        let _ = self.child.try_wait();
    }
}

/// One end of a pipe (non-blocking) read or written until `.1`.
struct Timed<'a>(BorrowedFd<'a>, Instant);

impl Timed<'_> {
    /// Waits until the pipe can be read or written (`flags`), or the deadline passes.
    fn ready(&self, flags: PollFlags) -> io::Result<()> {
        loop {
            let left = self.1.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {} s", ANSWER_WITHIN.as_secs()),
                ));
            }
            let timeout = i32::try_from(left.as_millis())
                .ok()
                .and_then(|ms| PollTimeout::try_from(ms).ok())
                .unwrap_or(PollTimeout::MAX);
            match poll(&mut [PollFd::new(self.0, flags)], timeout) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.ready(PollFlags::POLLIN)?;
            match nix::unistd::read(self.0, buf) {
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.ready(PollFlags::POLLOUT)?;
            match nix::unistd::write(self.0, buf) {
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
