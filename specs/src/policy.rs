//! A host's policy: limits an administrator sets in ramlet's own configuration, which no spec can
//! lift. A spec repository is root on the hosts it targets; the policy is how a host narrows that.
//!
//! - `storeDirectories`: a `file` or `creds` store's directory, and an `age` store's identity,
//!   must be one of these folders or below one (empty: any folder but the system ones the spec
//!   language refuses anyway). An `age` store's encrypted files are inside the spec directory.
//! - `identityDirectories`: an `age` store's identity (the host's key) must be in one of these
//!   (empty: where `storeDirectories` allows); no `file` or `creds` store may read in or above
//!   one. Whatever the policy, a `file` or `creds` store whose folder holds another store's
//!   identity is refused: no store delivers a file another uses as its key.
//! - `allowHostNetwork`: whether a spec may put its container on the host's network.
//! - `denyAddresses`: addresses no container may reach (the metadata service), enforced by
//!   systemd (`IPAddressDeny=` in each unit ramlet writes).
//! - `forbiddenKeys`: escape-hatch keys (`spec.quadlet`) a spec may not set, as `Key` (any
//!   section) or `Section.Key` (`AddCapability`, `AddDevice`, `Service.OnFailure`, ...).
//! - `allowKeys`: escape-hatch keys the host lets specs set beyond the [`baseline`] (which
//!   refuses what lets a spec act on the host beyond its own container), as `Key` or
//!   `Section.Key`.
//! - `endpoints`: endpoints besides the providers' own public ones that may receive this host's
//!   cloud credentials, as `scheme://host[:port]` ([`endpoints`] says which are the providers'
//!   own; empty: those alone). An `openbao` store's `address` has no public name: it must be
//!   listed here.
//! - An `openbao` store's credentials (a token, an `AppRole` secret ID, a certificate's key)
//!   must be files in `identityDirectories`; with none listed, no `openbao` store logs in.
//!
//! A document that breaks the policy is rejected like any invalid document, with an error of
//! kind `policy` at the offending field; the rest of the directory loads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

pub mod baseline;
pub mod endpoints;

use crate::error::ErrorKind;
use crate::model::{Container, EventSource, HostKey, OpenbaoAuth, Provider, SecretStore};
use crate::path::FieldPath;
use crate::validate::Findings;

/// What a host allows its specs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// Folders `file`, `creds` and `age` stores may read from on the host (with everything
    /// below them); empty: any.
    #[serde(default)]
    pub store_directories: Vec<PathBuf>,
    /// Folders `age` stores' identities (the host's long-term keys) may be in; empty: where
    /// `store_directories` allows. A `file` or `creds` store may read neither in nor above
    /// one of these.
    #[serde(default)]
    pub identity_directories: Vec<PathBuf>,
    /// Escape-hatch keys no spec may set: `Key` or `Section.Key`.
    #[serde(default)]
    pub forbidden_keys: BTreeSet<String>,
    /// Escape-hatch keys specs may set beyond the baseline: `Key` or `Section.Key`.
    #[serde(default)]
    pub allow_keys: BTreeSet<String>,
    /// Endpoints besides the providers' own that may receive the host's credentials:
    /// `scheme://host[:port]`.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Whether a spec may join the host's network namespace (`network: host`, `ns:PATH`) or
    /// reach the host's loopback through the user-mode network (`slirp4netns` with
    /// `allow_host_loopback`, `pasta` with options); default: no.
    #[serde(default)]
    pub allow_host_network: bool,
    /// The most secret bytes (the volumes' `sizeLimit`s) the specs this host runs may hold
    /// together, as `256Mi`; empty: [`crate::DEFAULT_HOST_BYTES`].
    #[serde(default)]
    pub max_secret_bytes: Option<String>,
    /// Addresses no container may reach (`169.254.169.254`, `fd00:ec2::254/128`: the cloud's
    /// metadata service, which hands out the host's credentials): each unit ramlet writes gets
    /// systemd's `IPAddressDeny=` with them. System scope only.
    #[serde(default)]
    pub deny_addresses: Vec<String>,
    /// This host's labels, when known (the agent's `hostLabels`, `validate --host-labels`): not
    /// part of the policy file, but what decides which containers' units a spec may name.
    /// `None`: every valid container counts as this host's.
    #[serde(skip)]
    pub host_labels: Option<BTreeMap<String, String>>,
}

impl Policy {
    /// Whether this policy limits anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.store_directories.is_empty()
            && self.identity_directories.is_empty()
            && self.forbidden_keys.is_empty()
            && self.allow_keys.is_empty()
            && self.endpoints.is_empty()
            && !self.allow_host_network
            && self.max_secret_bytes.is_none()
            && self.deny_addresses.is_empty()
    }

    /// The host's budget of secret bytes ([`Policy::max_secret_bytes`], or the default).
    #[must_use]
    pub fn host_bytes(&self) -> u64 {
        self.max_secret_bytes
            .as_deref()
            .and_then(|text| crate::quantity::bytes(text).ok())
            .unwrap_or(crate::quantity::DEFAULT_HOST_BYTES)
    }

    /// What is wrong with this policy itself, one line per problem, each naming its field: for the
    /// host's config loader, which refuses to start on any.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, keys) in [
            ("forbiddenKeys", &self.forbidden_keys),
            ("allowKeys", &self.allow_keys),
        ] {
            for key in keys {
                if !is_hatch_key(key) {
                    problems.push(format!(
                        "policy.{field}: {key:?} is not an escape-hatch key; write `Key` or `Section.Key` with a key of {} (the manual's chapter \"The Quadlet escape hatch\" lists them)",
                        crate::hatch::SECTIONS.join(", ")
                    ));
                }
            }
        }
        if let Some(text) = &self.max_secret_bytes
            && let Err((_, why)) = crate::quantity::bytes(text)
        {
            problems.push(format!("policy.maxSecretBytes: {why}"));
        }
        for (i, address) in self.deny_addresses.iter().enumerate() {
            if !is_address_prefix(address) {
                problems.push(format!(
                    "policy.denyAddresses[{i}]: {address:?} is not an IP address or prefix such as 169.254.169.254 or fd00:ec2::254/128"
                ));
            }
        }
        for identities in &self.identity_directories {
            for data in &self.store_directories {
                if below(identities, data) || below(data, identities) {
                    problems.push(format!(
                        "policy.identityDirectories: {} overlaps storeDirectories' {}; file and creds stores deliver what is there to containers, so keep the host's keys in a folder of their own",
                        identities.display(),
                        data.display()
                    ));
                }
            }
        }
        for (i, entry) in self.endpoints.iter().enumerate() {
            if let Err(e) = endpoints::check_entry(entry) {
                problems.push(format!("policy.endpoints[{i}]: {e}"));
            }
        }
        problems
    }

    /// The `endpoints` entries that parse (the config loader refused to start on the others).
    fn allowed_endpoints(&self) -> Vec<endpoints::Origin> {
        self.endpoints
            .iter()
            .filter_map(|e| endpoints::check_entry(e).ok())
            .collect()
    }

    /// What `store` does that this policy forbids.
    pub(crate) fn check_store(&self, store: &SecretStore) -> Findings {
        let mut findings = Findings::default();
        let host_path: Option<(&[&str], &Path)> = match &store.provider {
            Provider::File { directory } => Some((&["spec", "file", "directory"], directory)),
            Provider::Creds { directory } => Some((&["spec", "creds", "directory"], directory)),
            Provider::Age {
                identity: HostKey::File(path),
                ..
            } => Some((&["spec", "age", "identity"], path)),
            Provider::Age {
                identity: HostKey::Credential(path),
                ..
            } => Some((&["spec", "age", "identityCredential"], path)),
            Provider::Aws { .. } | Provider::Gcp { .. } | Provider::Openbao(_) => None,
        };
        let identity = matches!(store.provider, Provider::Age { .. });
        let (list, name) = if identity && !self.identity_directories.is_empty() {
            (&self.identity_directories, "identityDirectories")
        } else {
            (&self.store_directories, "storeDirectories")
        };
        if let Some((field, path)) = host_path
            && !list.is_empty()
            && !list.iter().any(|allowed| below(path, allowed))
        {
            let allowed: Vec<String> = list.iter().map(|d| d.display().to_string()).collect();
            findings.push(
                &FieldPath::of(field),
                ErrorKind::Policy,
                format!(
                    "{} is not allowed on this host: its policy ({name}) allows {} stores to read only in {}",
                    path.display(),
                    store.provider.kind(),
                    allowed.join(", ")
                ),
            );
        }
        if let Some((field, path)) = host_path
            && !identity
            && let Some(keys) = self
                .identity_directories
                .iter()
                .find(|keys| below(keys, path) || below(path, keys))
        {
            findings.push(
                &FieldPath::of(field),
                ErrorKind::Policy,
                format!(
                    "{} overlaps {}, where this host keeps its identities (policy.identityDirectories); a {} store would deliver them to containers",
                    path.display(),
                    keys.display(),
                    store.provider.kind()
                ),
            );
        }
        self.check_endpoints(store, &mut findings);
        if let Provider::Openbao(openbao) = &store.provider {
            self.check_openbao_keys(&openbao.auth, &mut findings);
        }
        findings
    }

    /// The endpoints `store` sends the host's credentials to.
    fn check_endpoints(&self, store: &SecretStore, findings: &mut Findings) {
        let allowed = self.allowed_endpoints();
        let mut check = |path: &[&str], url: &str, service| {
            if let Some(why) = endpoints::refusal(url, service, &allowed) {
                findings.push(&FieldPath::of(path), ErrorKind::Policy, why);
            }
        };
        match &store.provider {
            Provider::Aws {
                endpoint: Some(url),
                ..
            } => check(
                &["spec", "aws", "endpoint"],
                url,
                endpoints::Service::AwsSecretsManager,
            ),
            Provider::Gcp {
                endpoint: Some(url),
                ..
            } => check(
                &["spec", "gcp", "endpoint"],
                url,
                endpoints::Service::GcpSecretManager,
            ),
            _ => {}
        }
        if let Provider::Openbao(openbao) = &store.provider {
            check(
                &["spec", "openbao", "address"],
                &openbao.address,
                endpoints::Service::Openbao,
            );
        }
        match store.events.as_ref().map(|e| &e.source) {
            Some(EventSource::Sqs { queue, .. }) => check(
                &["spec", "aws", "events", "queue"],
                queue,
                endpoints::Service::AwsSqs,
            ),
            Some(EventSource::PubSub {
                endpoint: Some(url),
                ..
            }) => check(
                &["spec", "gcp", "events", "endpoint"],
                url,
                endpoints::Service::GcpPubSub,
            ),
            _ => {}
        }
    }

    /// An `openbao` store's credentials must be in `identityDirectories`: a spec author may not
    /// have the agent read any other file of the host's and send it to a server as a token.
    fn check_openbao_keys(&self, auth: &OpenbaoAuth, findings: &mut Findings) {
        for (field, key) in auth.keys() {
            let kind = match key {
                HostKey::File(_) => "file",
                HostKey::Credential(_) => "credential",
            };
            let mut path = vec!["spec", "openbao", "auth"];
            path.extend_from_slice(field);
            path.push(kind);
            let shown = key.path().display();
            if self.identity_directories.is_empty() {
                findings.push(
                    &FieldPath::of(&path),
                    ErrorKind::Policy,
                    format!(
                        "{shown} is not allowed on this host: an openbao store's credentials must be in a folder the host's policy.identityDirectories names, and it names none"
                    ),
                );
            } else if !self
                .identity_directories
                .iter()
                .any(|allowed| below(key.path(), allowed))
            {
                let allowed: Vec<String> = self
                    .identity_directories
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                findings.push(
                    &FieldPath::of(&path),
                    ErrorKind::Policy,
                    format!(
                        "{shown} is not allowed on this host: its policy (identityDirectories) keeps the host's keys only in {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    /// What `container` does that this policy forbids, or the [`baseline`] refuses and the
    /// policy does not allow. `managed` holds the unit names of the spec directory's containers.
    pub(crate) fn check_container(
        &self,
        container: &Container,
        managed: &BTreeSet<String>,
    ) -> Findings {
        let mut findings = Findings::default();
        if let Some(network) = &container.network
            && !self.allow_host_network
            && let Some(why) = host_network(network)
        {
            findings.push(
                &FieldPath::of(&["spec", "network"]),
                ErrorKind::Policy,
                format!(
                    "{network:?} {why}: the container would reach what the host reaches (its cloud metadata service and the credentials it hands out, services bound to loopback); a host's admin can allow it with `policy.allowHostNetwork: true`"
                ),
            );
        }
        for (section, keys) in &container.quadlet {
            for (key, values) in keys {
                let qualified = format!("{section}.{key}");
                let path = FieldPath::of(&["spec", "quadlet", section, key]);
                if self.forbidden_keys.contains(key) || self.forbidden_keys.contains(&qualified) {
                    findings.push(
                        &path,
                        ErrorKind::Policy,
                        format!("[{section}] {key} is forbidden by this host's policy"),
                    );
                    continue;
                }
                if self.allow_keys.contains(key) || self.allow_keys.contains(&qualified) {
                    continue;
                }
                for value in values {
                    if let Some(why) = baseline::refusal(section, key, value, managed) {
                        findings.push(&path, ErrorKind::Policy, why);
                    }
                }
            }
        }
        findings
    }
}

/// Whether `text` is an IP address, or one with a prefix length (`10.0.0.0/8`).
fn is_address_prefix(text: &str) -> bool {
    let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
    let max = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

/// Why `network` puts the container on the host's network, or `None`.
fn host_network(network: &str) -> Option<&'static str> {
    let (mode, options) = network.split_once(':').unwrap_or((network, ""));
    match mode {
        "host" => Some("joins the host's network namespace"),
        "ns" => Some("joins a network namespace by path (the host's, for one)"),
        "slirp4netns" if options.contains("allow_host_loopback") => {
            Some("lets the container reach the host's loopback")
        }
        "pasta" if !options.is_empty() => {
            Some("passes options to pasta, which can map the host's addresses and ports in")
        }
        _ => None,
    }
}

/// Whether `entry` names an escape-hatch key: `Key` of any section, or `Section.Key`.
fn is_hatch_key(entry: &str) -> bool {
    let lists = [
        ("Unit", crate::hatch::UNIT_KEYS),
        ("Container", crate::hatch::CONTAINER_KEYS),
        ("Service", crate::hatch::SERVICE_KEYS),
    ];
    match entry.split_once('.') {
        Some((section, key)) => lists
            .iter()
            .any(|(s, keys)| *s == section && keys.contains(&key)),
        None => lists.iter().any(|(_, keys)| keys.contains(&entry)),
    }
}

/// Whether `path` is `folder` or below it, comparing whole components after removing `.` (both
/// are absolute; `..` is refused by the spec language).
fn below(path: &Path, folder: &Path) -> bool {
    clean(path).starts_with(&clean(folder))
}

fn clean(path: &Path) -> Vec<Component<'_>> {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_compares_whole_components() {
        assert!(below(
            Path::new("/srv/secrets/app"),
            Path::new("/srv/secrets")
        ));
        assert!(below(Path::new("/srv/secrets"), Path::new("/srv/secrets/")));
        assert!(!below(
            Path::new("/srv/secrets-other"),
            Path::new("/srv/secrets")
        ));
        assert!(!below(Path::new("/etc"), Path::new("/srv/secrets")));
    }
}
