//! Podman versions: the target a unit is rendered for, and the version each Quadlet key needs.

use std::fmt;
use std::str::FromStr;

/// A Podman version, compared by major, minor and patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodmanVersion {
    /// Major.
    pub major: u16,
    /// Minor.
    pub minor: u16,
    /// Patch.
    pub patch: u16,
}

impl PodmanVersion {
    /// Quadlet's first release.
    pub const V4_4: Self = Self::new(4, 4);
    /// Debian trixie's Podman, the generator the tests run.
    pub const V5_4: Self = Self::new(5, 4);

    /// `major.minor.0`.
    #[must_use]
    pub const fn new(major: u16, minor: u16) -> Self {
        Self {
            major,
            minor,
            patch: 0,
        }
    }

    /// Reads the version from the output of `podman --version` (`podman version 4.3.1`) or
    /// `quadlet -version` (`5.4.2`).
    pub fn from_version_output(output: &str) -> Result<Self, ParseVersionError> {
        output
            .split_whitespace()
            .find_map(|word| word.parse().ok())
            .ok_or_else(|| ParseVersionError(output.trim().to_owned()))
    }
}

impl fmt::Display for PodmanVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Text that holds no Podman version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no Podman version (such as 5.4 or 5.4.2) in {0:?}")]
pub struct ParseVersionError(pub String);

impl FromStr for PodmanVersion {
    type Err = ParseVersionError;

    /// Parses `X.Y` or `X.Y.Z`, ignoring a suffix such as `-rc1` or `-dev`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ParseVersionError(text.to_owned());
        let core = text.split(['-', '+', '~']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let mut number = || -> Result<Option<u16>, ParseVersionError> {
            match parts.next() {
                None => Ok(None),
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().map(Some).map_err(|_| err())
                }
                Some(_) => Err(err()),
            }
        };
        let major = number()?.ok_or_else(err)?;
        let minor = number()?.ok_or_else(err)?;
        let patch = number()?.unwrap_or(0);
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Self {
            major,
            minor,
            patch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_outputs() {
        let v = PodmanVersion::from_version_output("podman version 4.3.1\n").unwrap();
        assert_eq!(
            v,
            PodmanVersion {
                major: 4,
                minor: 3,
                patch: 1
            }
        );
        assert_eq!(
            PodmanVersion::from_version_output("5.4.2\n")
                .unwrap()
                .to_string(),
            "5.4.2"
        );
        assert_eq!(
            "5.5".parse::<PodmanVersion>().unwrap(),
            PodmanVersion::new(5, 5)
        );
        assert_eq!(
            "5.6.0-rc1".parse::<PodmanVersion>().unwrap(),
            PodmanVersion::new(5, 6)
        );
        assert!(PodmanVersion::from_version_output("podman version unknown").is_err());
        assert!("5".parse::<PodmanVersion>().is_err());
        assert!("5.x".parse::<PodmanVersion>().is_err());
    }

    #[test]
    fn orders_versions() {
        assert!(PodmanVersion::new(4, 9) < PodmanVersion::new(5, 0));
        assert!(
            PodmanVersion {
                major: 5,
                minor: 4,
                patch: 2
            } > PodmanVersion::V5_4
        );
    }
}
