//! What a store can do, declared once by the store's own module and asked through
//! [`capabilities`] (before a client exists) or [`super::SecretProvider::capabilities`] (of
//! one): whether it keeps versions and how one is asked for again, a folder of the host's to
//! watch, whether it reads this host's disk, whether its values lie there in plain text, and
//! whether it can announce changes. The reconciler and the store cache ask these questions and
//! never match on a store's kind, so a new store that declares them gets rollbacks after a
//! restart, file watching and event handling without a line elsewhere.

use std::path::PathBuf;

use ramlet_specs::model::{Provider, SecretVersion};

/// Whether a store keeps older versions of a secret, and how one it reported is asked for
/// again (a health-gated rollback after an agent restart fetches the previous version so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// One value per secret (`file`, `creds`, `age`): the previous one is gone.
    One,
    /// Versions by an opaque ID (AWS' `VersionId`).
    ById,
    /// Versions by number (GCP's `versions/N`).
    ByNumber,
}

impl Versions {
    /// The version the store reported as `version`, pinned: `None` when it keeps one, or the
    /// text is no version of it.
    #[must_use]
    pub fn pin(self, version: &str) -> Option<SecretVersion> {
        match self {
            Self::One => None,
            Self::ById => Some(SecretVersion::VersionId(version.to_owned())),
            Self::ByNumber => version.parse().ok().map(SecretVersion::Number),
        }
    }
}

/// What one store can do (see the module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether it keeps versions, and how one is pinned.
    pub versions: Versions,
    /// The folder of the host's its values are read from, one file per secret: watched, and
    /// a file that changes there marks just its secret due.
    pub folder: Option<PathBuf>,
    /// It reads this host's disk: asked again whenever a file changes (`Due::Files`), and
    /// never held back by a backoff.
    pub local: bool,
    /// Its values lie on the host's disk in plain text (status says so, `validate` warns).
    pub plain_at_rest: bool,
    /// It can announce changes: a store of it may name an event source.
    pub events: bool,
}

/// What a store with these settings can do: the one place a store's kind is matched on
/// outside of building its client ([`super::connector`]).
#[must_use]
pub fn capabilities(provider: &Provider) -> Capabilities {
    match provider {
        Provider::File { directory } => super::file::capabilities(directory),
        Provider::Creds { directory } => super::creds::capabilities(directory),
        Provider::Age { .. } => super::age::CAPABILITIES,
        Provider::Aws { .. } => super::aws::CAPABILITIES,
        Provider::Gcp { .. } => super::gcp::CAPABILITIES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_pinned_the_way_its_store_names_it() {
        assert_eq!(Versions::One.pin("v1"), None);
        assert_eq!(
            Versions::ById.pin("a1b2"),
            Some(SecretVersion::VersionId("a1b2".into()))
        );
        assert_eq!(Versions::ByNumber.pin("7"), Some(SecretVersion::Number(7)));
        assert_eq!(Versions::ByNumber.pin("latest"), None);
    }

    #[test]
    fn a_client_says_what_its_settings_say() {
        let dir = PathBuf::from("/srv/secrets");
        let clients: [(Provider, Box<dyn crate::providers::SecretProvider>); 3] = [
            (
                Provider::File {
                    directory: dir.clone(),
                },
                Box::new(crate::providers::file::FileProvider::new(dir.clone())),
            ),
            (
                Provider::Creds {
                    directory: dir.clone(),
                },
                Box::new(crate::providers::creds::CredsProvider::new(dir.clone())),
            ),
            (
                Provider::Age {
                    directory: "sealed".into(),
                    identity: ramlet_specs::model::AgeIdentity::File("/etc/ramlet/age".into()),
                    recipients: Vec::new(),
                },
                Box::new(crate::providers::age::AgeProvider::new(
                    "/srv/specs".into(),
                    "sealed".into(),
                    ramlet_specs::model::AgeIdentity::File("/etc/ramlet/age".into()),
                )),
            ),
        ];
        for (settings, client) in clients {
            assert_eq!(
                client.capabilities(),
                capabilities(&settings),
                "{settings:?}"
            );
        }
        assert!(capabilities(&Provider::File { directory: dir }).plain_at_rest);
    }
}
