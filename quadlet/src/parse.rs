//! Reads back a unit ramlet wrote: to adopt state after a restart, and to notice drift (a file
//! edited by hand, or written half).

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::file::{MANAGED_MARKER, content_hash};
use crate::keys::{self, Section};
use crate::value;

/// A parsed unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUnit {
    /// The spec named in the header, when the file is ramlet's.
    pub spec: Option<String>,
    /// Whether the body still matches the hash in the header.
    pub intact: bool,
    /// Every `Key=value` line, decoded, in file order.
    pub entries: Vec<(Section, Entry)>,
}

/// Parses `text`. Only sections and keys ramlet writes are accepted: any other line means the
/// file is not one ramlet wrote, or was edited.
pub fn parse(text: &str) -> Result<ParsedUnit> {
    let mut lines = text.lines().enumerate().peekable();
    let mut spec = None;
    let mut hash = None;
    let managed = text.starts_with(MANAGED_MARKER);
    let mut body_start = 0;
    if managed {
        while let Some((_, line)) = lines.next_if(|(_, l)| l.starts_with('#')) {
            if let Some(name) = line.strip_prefix("# ramlet-spec: ") {
                spec = Some(name.to_owned());
            } else if let Some(h) = line.strip_prefix("# ramlet-hash: ") {
                hash = Some(h.to_owned());
            }
            body_start += line.len() + 1;
        }
    }
    let body = text.get(body_start..).unwrap_or_default();
    let intact = hash.is_some_and(|h| h == content_hash(body));

    let mut section = None;
    let mut entries = Vec::new();
    for (n, line) in lines {
        let error = |why: String| Error::Parse { line: n + 1, why };
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(
                Section::from_name(name)
                    .ok_or_else(|| error(format!("unknown section [{name}]")))?,
            );
            continue;
        }
        let current = section.ok_or_else(|| error("a key before any section".into()))?;
        let (key, raw) = line
            .split_once('=')
            .ok_or_else(|| error(format!("{line:?} is not Key=value")))?;
        let known = keys::lookup(current, key).ok_or_else(|| Error::UnknownKey {
            section: current.name().into(),
            key: key.into(),
        })?;
        let value = value::decode(known.shape, raw).map_err(error)?;
        entries.push((
            current,
            Entry {
                key: key.to_owned(),
                value,
            },
        ));
    }
    Ok(ParsedUnit {
        spec,
        intact,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::UnitFile;
    use crate::version::PodmanVersion;

    #[test]
    fn notices_an_edited_body() {
        let mut unit = UnitFile {
            spec: "web".into(),
            ..UnitFile::default()
        };
        unit.container.image = "docker.io/library/nginx:1.27".into();
        let text = unit.render(PodmanVersion::V5_4).unwrap();
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.spec.as_deref(), Some("web"));
        assert!(parsed.intact);
        let edited = text.replace("nginx:1.27", "nginx:1.28");
        assert!(!parse(&edited).unwrap().intact);
    }

    #[test]
    fn refuses_keys_ramlet_does_not_write() {
        let err = parse("[Container]\nImage=x\nX-Evil=1\n").unwrap_err();
        assert_eq!(err.kind(), "unknown-key");
        let err = parse("[Container]\nImage=x\n[Bogus]\n").unwrap_err();
        assert_eq!(
            err,
            Error::Parse {
                line: 3,
                why: "unknown section [Bogus]".into()
            }
        );
    }
}
