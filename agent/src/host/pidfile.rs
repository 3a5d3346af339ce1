//! The agent's pid file in its state directory: `flock`-ed for as long as the agent runs, so a
//! second agent on the same state directory refuses to start, and `ramlet sync` signals only a
//! process that holds the lock and is ramlet: never pid 1 or below (`kill -1` signals
//! everything), never a stranger that reused a stale pid.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use nix::fcntl::{Flock, FlockArg};

/// The pid file's name in the state directory.
pub const PID_FILE: &str = "ramlet.pid";

/// The running agent's claim on its state directory; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    _lock: Flock<File>,
}

impl PidFile {
    /// Locks the pid file in `state_dir` and writes this process's pid into it.
    ///
    /// # Errors
    /// When another agent holds it, or it cannot be written.
    pub fn claim(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join(PID_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            // Never through a link left in the state directory.
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let other = std::fs::read_to_string(&path).unwrap_or_default();
                bail!(
                    "another ramlet (pid {}) runs with the state directory {}; two agents would undo each other's work",
                    other.trim(),
                    state_dir.display()
                )
            }
            Err((_, error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", path.display()));
            }
        };
        lock.set_len(0)
            .and_then(|()| writeln!(&*lock, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { path, _lock: lock })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends SIGHUP to the agent running with `state_dir` (`ramlet sync`).
///
/// # Errors
/// When no agent holds the pid file, it holds no usable pid, or that process is not ramlet.
pub fn sync(state_dir: &Path) -> Result<()> {
    let path = state_dir.join(PID_FILE);
    let file = File::open(&path)
        .with_context(|| format!("no running ramlet: cannot read {}", path.display()))?;
    let text = std::io::read_to_string(&file)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} holds no pid", path.display()))?;
    if pid <= 1 {
        bail!("{} holds pid {pid}, which is no agent's", path.display());
    }
    // The agent holds an exclusive lock: if this shared one is granted, nobody runs.
    if Flock::lock(file, FlockArg::LockSharedNonblock).is_ok() {
        bail!(
            "no running ramlet: {} is left over from one that stopped",
            path.display()
        );
    }
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if name.trim() != "ramlet" {
        bail!(
            "pid {pid} in {} is {:?}, not ramlet; nothing was signalled",
            path.display(),
            name.trim()
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .with_context(|| format!("cannot signal ramlet (pid {pid})"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ramlet-pid-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_second_agent_on_one_state_directory_refuses_to_start() {
        let dir = state("twice");
        let first = PidFile::claim(&dir).unwrap();
        let error = PidFile::claim(&dir).unwrap_err().to_string();
        assert!(error.contains("another ramlet"), "{error}");
        drop(first);
        assert!(!dir.join(PID_FILE).exists());
        let _again = PidFile::claim(&dir).unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sync_signals_nobody_for_a_bad_stale_or_foreign_pid() {
        let dir = state("sync");
        for (text, says) in [
            ("-1\n", "no agent's"),
            ("1\n", "no agent's"),
            ("junk\n", "holds no pid"),
        ] {
            std::fs::write(dir.join(PID_FILE), text).unwrap();
            let error = sync(&dir).unwrap_err().to_string();
            assert!(error.contains(says), "{text:?}: {error}");
        }
        // A stale file naming a live stranger (this test process): nobody holds the lock.
        std::fs::write(dir.join(PID_FILE), format!("{}\n", std::process::id())).unwrap();
        let error = sync(&dir).unwrap_err().to_string();
        assert!(error.contains("left over"), "{error}");
        // Locked, but the pid is not ramlet's (the test binary's name differs).
        let claimed = PidFile::claim(&dir).unwrap();
        let error = sync(&dir).unwrap_err().to_string();
        assert!(error.contains("not ramlet"), "{error}");
        drop(claimed);
        let _ = std::fs::remove_dir_all(dir);
    }
}
