//! ramlet's own folder of unit files (a subfolder of the Quadlet runtime directory). Only files
//! that carry ramlet's header are ramlet's: anything else there is listed as foreign and never
//! touched. A listing reads again only the files whose stamp (inode, size, change time) moved
//! since the last one, so a reconcile of N units costs N `lstat`s, not N reads and parses.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ramlet_quadlet::MANAGED_MARKER;

use crate::drivers::{Listing, UnitFiles};
use crate::util::BoxFuture;

/// The unit folder.
#[derive(Debug, Clone)]
pub struct UnitDir {
    dir: PathBuf,
    /// What each file was at the last listing, by file name.
    seen: Arc<Mutex<BTreeMap<String, Seen>>>,
}

/// A file as the last listing found it: its stamp, and its text when it is ramlet's.
#[derive(Debug)]
struct Seen {
    stamp: Stamp,
    ours: Option<String>,
}

/// What changes when a file is replaced or written to: inode, size, change time. A file whose
/// change time is within the last second may be written again within the clock's granularity
/// with the same stamp: it is read every time until it is older.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    size: u64,
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            ino: meta.ino(),
            size: meta.size(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether its change time is more than a second before `now` (seconds since the epoch).
    fn settled(self, now: i64) -> bool {
        self.ctime.0 < now - 1
    }
}

impl UnitDir {
    /// The folder `dir` (created on first write).
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            seen: Arc::default(),
        }
    }

    /// Lists the folder, on this thread.
    pub fn list_now(&self) -> io::Result<Listing> {
        let mut listing = Listing::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(e),
        };
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut now = BTreeMap::new();
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().cast_signed());
        for entry in entries {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".container") else {
                continue;
            };
            let stamp = entry.metadata().ok().map(|m| Stamp::of(&m));
            let known = seen
                .remove(&file)
                .filter(|known| stamp == Some(known.stamp) && known.stamp.settled(clock));
            let ours = known.map_or_else(
                || {
                    let text = read_unit(&entry.path()).unwrap_or_default();
                    let ours = text.starts_with(MANAGED_MARKER)
                        && ramlet_quadlet::parse(&text)
                            .is_ok_and(|p| p.spec.as_deref() == Some(name));
                    ours.then_some(text)
                },
                |known| known.ours,
            );
            if let Some(text) = &ours {
                listing.ours.insert(name.to_owned(), text.clone());
            } else {
                listing.foreign.insert(name.to_owned());
            }
            if let Some(stamp) = stamp {
                now.insert(file, Seen { stamp, ours });
            }
        }
        *seen = now;
        Ok(listing)
    }
}

impl UnitFiles for UnitDir {
    fn path(&self) -> &std::path::Path {
        &self.dir
    }

    /// Lists the folder on a blocking thread, off the runtime's (a folder on a hung network
    /// mount stalls this reconcile, never the signal handling or the watchdog).
    fn list(&self) -> BoxFuture<'_, io::Result<Listing>> {
        let dir = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || dir.list_now())
                .await
                .map_err(io::Error::other)?
        })
    }

    /// Writes the unit of spec `name` (a temporary file, then a rename).
    fn write(&self, name: &str, text: &str) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{name}.container"));
        crate::statefile::replace(&path, text.as_bytes(), 0o644, true)
    }

    /// Removes the unit of spec `name`.
    fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(format!("{name}.container"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The largest unit file ramlet reads back (its own are a few KiB).
const MAX_UNIT_BYTES: u64 = 1 << 20;

/// A unit file's text: opened without following a link and without blocking, read only when
/// `fstat` says it is a regular file, at most [`MAX_UNIT_BYTES`]. Anything else is not
/// ramlet's (`None`: listed as foreign, never touched).
fn read_unit(path: &std::path::Path) -> Option<String> {
    use io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_UNIT_BYTES).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh unit folder named after `test`, holding ramlet's own unit of spec `web`.
    fn with_web_unit(test: &str) -> (PathBuf, UnitDir) {
        let dir = std::env::temp_dir().join(format!("ramlet-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let units = UnitDir::new(dir.clone());
        let mut unit = ramlet_quadlet::UnitFile {
            spec: "web".into(),
            ..Default::default()
        };
        unit.container.image = "localhost/x".into();
        let text = unit.render(ramlet_quadlet::PodmanVersion::V5_4).unwrap();
        units.write("web", &text).unwrap();
        (dir, units)
    }

    #[test]
    fn tells_its_own_units_from_foreign_files() {
        let (dir, units) = with_web_unit("unit-dir");
        fs::write(dir.join("hand.container"), "[Container]\nImage=x\n").unwrap();
        let listing = units.list_now().unwrap();
        assert_eq!(listing.ours.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(listing.foreign.iter().collect::<Vec<_>>(), ["hand"]);
        units.remove("web").unwrap();
        units.remove("web").unwrap();
        assert!(units.list_now().unwrap().ours.is_empty());
        let _ = fs::remove_dir_all(dir);
    }

    /// A listing keeps what it read of a file until the file's stamp moves: ramlet's unit
    /// rewritten in place by hand (same inode) with a foreign text is foreign at once.
    #[test]
    fn a_file_is_read_again_when_its_stamp_moves() {
        let (dir, units) = with_web_unit("unit-dir-stamps");
        // Old enough for its stamp to be trusted.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            units.list_now().unwrap().ours.keys().collect::<Vec<_>>(),
            ["web"]
        );
        assert_eq!(
            units.list_now().unwrap().ours.keys().collect::<Vec<_>>(),
            ["web"]
        );
        let file = dir.join("web.container");
        let inode = fs::metadata(&file).unwrap().ino();
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .and_then(|mut f| io::Write::write_all(&mut f, b"[Container]\nImage=y\n"))
            .unwrap();
        assert_eq!(fs::metadata(&file).unwrap().ino(), inode, "edited in place");
        let listing = units.list_now().unwrap();
        assert!(listing.ours.is_empty());
        assert_eq!(listing.foreign.iter().collect::<Vec<_>>(), ["web"]);
        let _ = fs::remove_dir_all(dir);
    }

    /// A FIFO, a link to a unit file and a link to a FIFO are nobody's units to read: listed
    /// as foreign without blocking (a FIFO opened for reading waits for a writer) and without
    /// following the link.
    #[test]
    fn a_fifo_or_a_link_is_foreign_and_never_read() {
        let (dir, units) = with_web_unit("unit-fifo");
        nix::unistd::mkfifo(&dir.join("fifo.container"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink(dir.join("web.container"), dir.join("link.container")).unwrap();
        std::os::unix::fs::symlink(dir.join("fifo.container"), dir.join("to-fifo.container"))
            .unwrap();
        let listing = units.list_now().unwrap();
        assert_eq!(listing.ours.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(
            listing.foreign.iter().collect::<Vec<_>>(),
            ["fifo", "link", "to-fifo"]
        );
        let _ = fs::remove_dir_all(dir);
    }
}
