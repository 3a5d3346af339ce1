//! ramlet's own folder of unit files (a subfolder of the Quadlet runtime directory). Only files
//! that carry ramlet's header are ramlet's: anything else there is listed as foreign and never
//! touched.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::PathBuf;

use ramlet_quadlet::MANAGED_MARKER;

/// The unit folder.
#[derive(Debug, Clone)]
pub struct UnitDir {
    dir: PathBuf,
}

/// What the folder holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// ramlet's units: spec name to file text.
    pub ours: BTreeMap<String, String>,
    /// Other `.container` files: spec-like names that ramlet must not use.
    pub foreign: BTreeSet<String>,
}

impl UnitDir {
    /// The folder `dir` (created on first write).
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The folder.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }

    /// Lists the folder.
    pub fn list(&self) -> io::Result<Listing> {
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
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
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

    /// Writes the unit of spec `name` (a temporary file, then a rename).
    pub fn write(&self, name: &str, text: &str) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{name}.container"));
        crate::statefile::replace(&path, text.as_bytes(), 0o644, true)
    }

    /// Removes the unit of spec `name`.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(format!("{name}.container"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_its_own_units_from_foreign_files() {
        let dir = std::env::temp_dir().join(format!("ramlet-unit-dir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let units = UnitDir::new(dir.clone());
        let mut unit = ramlet_quadlet::UnitFile {
            spec: "web".into(),
            ..Default::default()
        };
        unit.container.image = "localhost/x".into();
        units
            .write(
                "web",
                &unit.render(ramlet_quadlet::PodmanVersion::V5_4).unwrap(),
            )
            .unwrap();
        fs::write(dir.join("hand.container"), "[Container]\nImage=x\n").unwrap();
        let listing = units.list().unwrap();
        assert_eq!(listing.ours.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(listing.foreign.iter().collect::<Vec<_>>(), ["hand"]);
        units.remove("web").unwrap();
        units.remove("web").unwrap();
        assert!(units.list().unwrap().ours.is_empty());
        let _ = fs::remove_dir_all(dir);
    }
}
