//! What a store can do, declared once by the store's own module and asked through
//! [`super::capabilities`] (before a client exists) or [`super::SecretProvider::capabilities`] (of
//! one): whether it keeps versions and how one is asked for again, a folder of the host's to
//! watch, whether it reads this host's disk, whether its values lie there in plain text, and
//! whether it can announce changes. The reconciler and the store cache ask these questions and
//! never match on a store's kind, so a new store that declares them gets rollbacks after a
//! restart, file watching and event handling without a line elsewhere.

use std::path::PathBuf;

use ramlet_specs::model::SecretVersion;

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

/// A store that reads one value per file in `directory` on this host (`file`, `creds`): one
/// version, the folder watched, its values `plain_at_rest` or sealed, no events.
#[must_use]
pub(super) fn folder_store(directory: &std::path::Path, plain_at_rest: bool) -> Capabilities {
    Capabilities {
        versions: Versions::One,
        folder: Some(directory.to_owned()),
        local: true,
        plain_at_rest,
        events: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::capabilities;
    use ramlet_specs::model::Provider;

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
    fn each_local_client_says_what_the_reconciler_needs_of_it_and_what_its_settings_say() {
        let dir = PathBuf::from("/srv/secrets");
        let age_identity = ramlet_specs::model::HostKey::File("/etc/ramlet/age".into());
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
                    identity: age_identity.clone(),
                    recipients: Vec::new(),
                },
                Box::new(crate::providers::age::AgeProvider::new(
                    "/srv/specs".into(),
                    "sealed".into(),
                    age_identity,
                )),
            ),
        ];
        let said: Vec<Capabilities> = clients
            .iter()
            .map(|(settings, client)| {
                assert_eq!(
                    client.capabilities(),
                    capabilities(settings),
                    "{settings:?}"
                );
                client.capabilities()
            })
            .collect();
        // One value each: no previous version to pin; all read this host's disk.
        assert!(
            said.iter()
                .all(|c| c.versions == Versions::One && c.local && !c.events)
        );
        // Only the file store lies in plain text; file and creds watch their folder, age's
        // folder is in the spec directory (watched already).
        let plain: Vec<bool> = said.iter().map(|c| c.plain_at_rest).collect();
        assert_eq!(plain, [true, false, false]);
        let folders: Vec<Option<PathBuf>> = said.iter().map(|c| c.folder.clone()).collect();
        assert_eq!(folders, [Some(dir.clone()), Some(dir), None]);
        // The cloud stores keep versions and have events.
        for cloud in [
            crate::providers::aws::CAPABILITIES,
            crate::providers::gcp::CAPABILITIES,
        ] {
            assert!(cloud.versions != Versions::One && cloud.events && !cloud.local);
        }
    }
}
