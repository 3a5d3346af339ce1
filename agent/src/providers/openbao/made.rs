//! What the PKI and database engines of an `openbao` store share: a request names one of the
//! things the store's settings list and asks for the latest, and what they make is kept across
//! restarts under the store's server, namespace and login.

use std::collections::BTreeMap;

use ramlet_specs::model::{Openbao, SecretVersion};

use crate::providers::{ErrorKind, ProviderError, Request};

/// The settings of what `request` names, or why it cannot be asked for: a name the settings do
/// not list (`this store's <unlisted>`), a version other than the latest (`pinned`).
pub(super) fn one_of<'a, T>(
    settings: &'a BTreeMap<String, T>,
    request: &Request,
    unlisted: &str,
    pinned: &str,
) -> Result<&'a T, ProviderError> {
    let name = &request.name;
    let Some(one) = settings.get(name) else {
        return Err(ProviderError::new(
            ErrorKind::NotFound,
            format!("{name}: this store's {unlisted}"),
        ));
    };
    if request.version != SecretVersion::Latest {
        return Err(ProviderError::new(
            ErrorKind::Misconfigured,
            format!("{name}: {pinned}"),
        ));
    }
    Ok(one)
}

/// What certificates and leases kept across restarts are kept under: the server, the namespace
/// and who logs in (a digest of the login's settings, which name files and IDs, no secret), so
/// another store's login never takes up what this one made.
pub(super) fn keep_scope(settings: &Openbao) -> String {
    use sha2::Digest as _;
    let login = serde_json::to_vec(&settings.auth).unwrap_or_default();
    let digest = sha2::Sha256::digest(login);
    let login: String = digest.iter().take(8).fold(String::new(), |mut hex, byte| {
        let _ = std::fmt::Write::write_fmt(&mut hex, format_args!("{byte:02x}"));
        hex
    });
    format!(
        "{}|{}|{login}",
        settings.address,
        settings.namespace.as_deref().unwrap_or_default()
    )
}
