//! Names: DNS-1123 labels for documents and volumes, and Kubernetes label keys and values.

use std::fmt;

use crate::error::{Check, ErrorKind};

/// A DNS-1123 label: 1 to 63 characters of lowercase letters, digits and `-`, starting and
/// ending with a letter or digit. Safe in unit names, file names and paths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Parses a DNS-1123 label.
    pub fn parse(value: &str) -> Result<Self, String> {
        dns_label(value).map(|()| Self(value.to_owned()))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn dns_label(value: &str) -> Result<(), String> {
    let valid = (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a DNS-1123 label: use 1 to 63 lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        ))
    }
}

/// Checks a name field.
pub(crate) fn name(value: &str) -> Check<Name> {
    Name::parse(value).map_err(|message| (ErrorKind::InvalidName, message))
}

/// Checks a Kubernetes label key: an optional DNS subdomain prefix and `/`, then a name of at
/// most 63 characters of letters, digits, `-`, `_` and `.`, starting and ending alphanumeric.
/// Name prefixes of the host's own units, which a container's unit (`<name>.service`) must not
/// take: ramlet's unit would shadow the vendor's (the generator's folder comes before
/// `/usr/lib/systemd`), or another spec could name it in `Wants=` to start it.
pub(crate) const RESERVED_PREFIXES: &[&str] = &[
    "systemd-",
    "ramlet",
    "dbus",
    "getty",
    "serial-getty",
    "container-getty",
    "podman",
];

/// Names of the host's own services that a container's unit must not take either.
pub(crate) const RESERVED_NAMES: &[&str] = &["cron", "emergency", "rescue", "ssh", "sshd", "user"];

/// Checks that a container's name leaves the host's own units alone ([`RESERVED_PREFIXES`],
/// [`RESERVED_NAMES`]). Any other unit the host has is found at run time (`UnitNameTaken`).
pub(crate) fn container_unit(name: &str) -> Check<()> {
    let like = RESERVED_PREFIXES
        .iter()
        .find(|p| name.starts_with(*p))
        .map(|p| format!("starts with {p:?}"))
        .or_else(|| {
            RESERVED_NAMES
                .contains(&name)
                .then(|| "is the name".to_owned())
        });
    match like {
        Some(how) => Err((
            ErrorKind::InvalidName,
            format!(
                "{name:?} {how} of the host's own units; a container's unit is `<name>.service`, so choose a name of the application's"
            ),
        )),
        None => Ok(()),
    }
}

pub(crate) fn label_key(key: &str) -> Check<()> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253 && !p.is_empty() && p.split('.').all(|part| dns_label(part).is_ok())
    });
    if prefix_ok && label_value(name) && !name.is_empty() {
        Ok(())
    } else {
        Err((
            ErrorKind::InvalidName,
            format!(
                "{key:?} is not a label key: use [prefix/]name, where name is 1 to 63 letters, \
                 digits, '-', '_' or '.', starting and ending with a letter or digit"
            ),
        ))
    }
}

/// Checks a Kubernetes label value (may be empty).
pub(crate) fn label_value_check(value: &str) -> Check<()> {
    if label_value(value) {
        Ok(())
    } else {
        Err((
            ErrorKind::InvalidName,
            format!(
                "{value:?} is not a label value: use at most 63 letters, digits, '-', '_' or \
                 '.', starting and ending with a letter or digit"
            ),
        ))
    }
}

fn label_value(value: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && alnum(value.chars().next())
            && alnum(value.chars().last()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for good in ["web", "a", "prod-aws", "x1", &"a".repeat(63)] {
            assert!(Name::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_dns_label() {
        for bad in [
            "",
            "Web",
            "-web",
            "web-",
            "we_b",
            "web.1",
            "../x",
            &"a".repeat(64),
            "wéb",
        ] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_label_keys_and_values() {
        assert!(label_key("app").is_ok());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("/name").is_err());
        assert!(label_key("Bad Key").is_err());
        assert!(label_value_check("").is_ok());
        assert!(label_value_check("v1.2_x").is_ok());
        assert!(label_value_check("-x").is_err());
    }
}

/// Parses host labels written `key=value,key2=value2` (as given to `--host-labels`).
pub fn parse_host_labels(text: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut labels = std::collections::BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value"))?;
        label_key(key)
            .and_then(|()| label_value_check(value))
            .map_err(|(_, message)| message)?;
        if labels.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(format!("label {key:?} is given twice"));
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod host_label_tests {
    use super::*;

    #[test]
    fn parses_host_labels() {
        let labels = parse_host_labels("role=edge, zone=eu-1,empty=").unwrap();
        assert_eq!(labels.len(), 3);
        assert_eq!(labels["zone"], "eu-1");
        assert!(parse_host_labels("role").is_err());
        assert!(parse_host_labels("a=1,a=2").is_err());
        assert!(parse_host_labels("bad key=1").is_err());
    }
}
