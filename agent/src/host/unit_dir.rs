//! ramlet's own folder of unit files (a subfolder of the Quadlet runtime directory). Only files
//! that carry ramlet's header are ramlet's: anything else there is listed as foreign and never
//! touched.

use std::fs;
use std::io;
use std::path::PathBuf;

use ramlet_quadlet::MANAGED_MARKER;

use crate::drivers::{Listing, UnitFiles};
use crate::util::BoxFuture;

/// The unit folder.
#[derive(Debug, Clone)]
pub struct UnitDir {
    dir: PathBuf,
}

impl UnitDir {
    /// The folder `dir` (created on first write).
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Lists the folder, on this thread.
    pub fn list_now(&self) -> io::Result<Listing> {
        let mut listing = Listing::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".container") else {
                continue;
            };
            let text = read_unit(&entry.path()).unwrap_or_default();
            let ours = text.starts_with(MANAGED_MARKER)
                && ramlet_quadlet::parse(&text).is_ok_and(|p| p.spec.as_deref() == Some(name));
            if ours {
                listing.ours.insert(name.to_owned(), text);
            } else {
                listing.foreign.insert(name.to_owned());
            }
        }
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
