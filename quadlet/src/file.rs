//! A whole `.container` file: the header, the four sections, and the one renderer.

use std::fmt::Write as _;

use crate::container::ContainerSection;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::install::InstallSection;
use crate::keys::{self, Section, Shape};
use crate::service::ServiceSection;
use crate::unit::UnitSection;
use crate::value::{self, Value};
use crate::version::PodmanVersion;

/// The first line of every file ramlet writes; a file without it is not ramlet's.
pub const MANAGED_MARKER: &str = "# Managed by ramlet: do not edit, ramlet rewrites this file.";

/// A `.container` unit as ramlet writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    /// The spec the unit comes from (`metadata.name`), named in the header.
    pub spec: String,
    /// `[Unit]`.
    pub unit: UnitSection,
    /// `[Container]`.
    pub container: ContainerSection,
    /// `[Service]`.
    pub service: ServiceSection,
    /// `[Install]`.
    pub install: InstallSection,
}

impl UnitFile {
    /// Every line of every section, in file order, with values as written in the model.
    #[must_use]
    pub fn entries(&self) -> Vec<(Section, Entry)> {
        let sections = [
            (Section::Unit, self.unit.entries()),
            (Section::Container, self.container.entries()),
            (Section::Service, self.service.entries()),
            (Section::Install, self.install.entries()),
        ];
        sections
            .into_iter()
            .flat_map(|(s, entries)| entries.into_iter().map(move |e| (s, e)))
            .collect()
    }

    /// Renders the file for a host whose Podman (and Quadlet) is `target`. Deterministic: the
    /// same model gives the same bytes. Refuses keys `target` does not know, and values that
    /// cannot reach systemd literally.
    pub fn render(&self, target: PodmanVersion) -> Result<String> {
        if target < PodmanVersion::V4_4 {
            return Err(Error::NoQuadlet { target });
        }
        if self.spec.chars().any(char::is_control) {
            return Err(Error::Unrepresentable {
                section: "header",
                key: "spec".into(),
                value: self.spec.clone(),
                why: "it holds a control character",
            });
        }
        let mut body = String::new();
        let entries = self.entries();
        for section in Section::ALL {
            let lines: Vec<&Entry> = entries
                .iter()
                .filter(|(s, _)| *s == section)
                .map(|(_, e)| e)
                .collect();
            if lines.is_empty() {
                continue;
            }
            if !body.is_empty() {
                body.push('\n');
            }
            let _ = writeln!(body, "[{}]", section.name());
            for entry in lines {
                let key = known(section, &entry.key)?;
                if key.since > target {
                    return Err(Error::UnsupportedKey {
                        section: section.name(),
                        key: entry.key.clone(),
                        since: key.since,
                        target,
                    });
                }
                let value = value::render(section, key.name, key.shape, &entry.value)?;
                let _ = writeln!(body, "{}={value}", key.name);
            }
        }
        Ok(format!(
            "{MANAGED_MARKER}\n# ramlet-spec: {}\n# ramlet-hash: {}\n{body}",
            self.spec,
            content_hash(&body)
        ))
    }
}

/// The key's table entry, or an error for a key ramlet does not know.
fn known(section: Section, key: &str) -> Result<&'static keys::Key> {
    keys::lookup(section, key).ok_or_else(|| Error::UnknownKey {
        section: section.name().into(),
        key: key.into(),
    })
}

/// An entry as it reads back: a single-value entry under a word-list key is a one-word list.
#[must_use]
pub fn normalize(section: Section, entry: &Entry) -> Entry {
    match (
        keys::lookup(section, &entry.key).map(|k| k.shape),
        &entry.value,
    ) {
        (Some(Shape::Words), Value::Raw(text)) => Entry::words(&entry.key, [text.clone()]),
        _ => entry.clone(),
    }
}

/// The hash in the header: FNV-1a (64 bit) of the body, in hex. It detects edits and partial
/// writes; it is not a security measure, and it never covers a secret (units hold none).
#[must_use]
pub fn content_hash(body: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{hash:016x}")
}
