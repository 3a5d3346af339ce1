//! The validated specs: what the rest of the agent works with.
//!
//! Every value here has passed `validate`: names are DNS-1123 labels, strings are single
//! lines without control characters, paths are normalised and cannot escape, modes are at most
//! 0777, sizes and durations are in bounds, every secret's store exists, and escape-hatch keys
//! come from the allowed set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use crate::name::Name;
pub use crate::raw::{Encoding, LabelOperator, Medium, SelinuxLabel};

/// Where a document was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// The document's index in the file, from 0.
    pub document: usize,
}

/// A validated `SecretStore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretStore {
    /// `metadata.name`.
    pub name: Name,
    /// Where it was declared.
    pub origin: Origin,
    /// How often its secrets are checked for new versions.
    pub refresh_interval: Duration,
    /// The provider.
    pub provider: Provider,
    /// Where the provider's change events arrive, if anywhere.
    pub events: Option<Events>,
    /// How many health-checked consumers of a secret take a new version first.
    pub canary: u32,
    /// Which consumers may take a new version first (`rollout.canarySelector`); `None`: any
    /// consumer with a health check.
    pub canary_selector: Option<HostSelector>,
}

/// A store's change events: a listener that marks a secret due when a new version of it is
/// announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Events {
    /// Where they come from.
    pub source: EventSource,
    /// The refresh interval while the listener is failing (the shorter of it and the store's).
    pub fallback_interval: Duration,
}

/// Where a store's change events come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventSource {
    /// An SQS queue fed by an EventBridge rule (AWS).
    Sqs {
        /// The queue URL; its scheme and host are the SQS endpoint.
        queue: String,
        /// The region requests are signed for (the store's).
        region: String,
    },
    /// A Pub/Sub pull subscription (GCP).
    PubSub {
        /// `projects/<project>/subscriptions/<id>`.
        subscription: String,
        /// An endpoint override (`http(s)://...`).
        endpoint: Option<String>,
    },
}

impl EventSource {
    /// The source's short name: `sqs` or `pubsub`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqs { .. } => "sqs",
            Self::PubSub { .. } => "pubsub",
        }
    }
}

/// A secret provider and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Provider {
    /// AWS Secrets Manager.
    Aws {
        /// The region.
        region: String,
        /// An endpoint override (`http(s)://...`).
        endpoint: Option<String>,
    },
    /// Google Cloud Secret Manager.
    Gcp {
        /// The project ID or number.
        project: String,
        /// An endpoint override (`http(s)://...`).
        endpoint: Option<String>,
    },
    /// Credentials sealed with `systemd-creds`, one file per secret.
    Creds {
        /// The absolute directory.
        directory: PathBuf,
    },
    /// Files encrypted with age, beside the specs.
    Age {
        /// The folder, relative to the spec directory.
        directory: PathBuf,
        /// Where the host's identity is.
        identity: HostKey,
        /// The public keys new values are sealed to (`ramlet seal`).
        recipients: Vec<String>,
    },
    /// A local directory, one file per secret, in plain text.
    File {
        /// The absolute directory.
        directory: PathBuf,
    },
    /// An OpenBao or HashiCorp Vault server's KV version 2 engine, its PKI engine or its
    /// database engine.
    Openbao(Box<Openbao>),
}

/// An `openbao` store's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Openbao {
    /// `scheme://host[:port]` of the server (`http://` only on loopback).
    pub address: String,
    /// The engine's mount path, such as `secret` or `team/kv` (KV v2), or `pki`.
    pub mount: String,
    /// The namespace requests go to (`X-Vault-Namespace`), if any.
    pub namespace: Option<String>,
    /// A PEM bundle of the CAs the server's certificate must chain to, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// How ramlet logs in.
    pub auth: OpenbaoAuth,
    /// The certificates the mount's PKI engine issues, by name; `None`: the mount is not a PKI
    /// engine.
    pub pki: Option<BTreeMap<String, Certificate>>,
    /// The leased credentials the mount's database engine creates, by name; `None`: the mount
    /// is not a database engine. Never set with `pki`.
    pub database: Option<BTreeMap<String, DatabaseCredential>>,
}

impl Openbao {
    /// What the store makes rather than reads (a PKI engine's certificates, a database
    /// engine's credentials), if anything: a volume file names one of them, takes one of its
    /// parts, and has no version to pin.
    #[must_use]
    pub fn made(&self) -> Option<Made> {
        if let Some(certificates) = &self.pki {
            return Some(Made {
                what: "certificate",
                field: "pki.certificates",
                names: certificates.keys().cloned().collect(),
                parts: &CERTIFICATE_KEYS,
            });
        }
        self.database.as_ref().map(|credentials| Made {
            what: "credential",
            field: "database.credentials",
            names: credentials.keys().cloned().collect(),
            parts: &CREDENTIAL_KEYS,
        })
    }
}

/// The values an `openbao` store makes ([`Openbao::made`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// What one is called: `certificate`, `credential`.
    pub what: &'static str,
    /// The settings field that lists them: `pki.certificates`.
    pub field: &'static str,
    /// Their names.
    pub names: Vec<String>,
    /// The keys of each one's value, a JSON object: what `property` may pick.
    pub parts: &'static [&'static str],
}

/// A credential an `openbao` store's database engine creates (`<mount>/creds/<role>`), under
/// a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseCredential {
    /// The engine's role.
    pub role: String,
}

/// The keys of a leased credential's value, a JSON object: what `property` may pick.
pub const CREDENTIAL_KEYS: [&str; 2] = ["username", "password"];

/// A certificate an `openbao` store's PKI engine issues (`<mount>/issue/<role>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// The issuing role.
    pub role: String,
    /// The subject's common name.
    pub common_name: String,
    /// More DNS names.
    pub alt_names: Vec<String>,
    /// IP addresses.
    pub ip_sans: Vec<std::net::IpAddr>,
    /// How long it is valid.
    pub ttl: Duration,
}

/// The keys of a certificate's value, a JSON object: what `property` may pick.
pub const CERTIFICATE_KEYS: [&str; 5] = [
    "certificate",
    "private_key",
    "issuing_ca",
    "ca_chain",
    "serial_number",
];

/// How an `openbao` store logs in. Every secret it needs is a [`HostKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OpenbaoAuth {
    /// A token, read from the host (renewed while it is renewable, read again when it is not).
    Token(HostKey),
    /// `AppRole`: a role ID and a secret ID.
    AppRole {
        /// The auth method's mount (`approle`).
        mount: String,
        /// The role ID (not a secret on its own).
        role_id: String,
        /// The secret ID.
        secret_id: HostKey,
    },
    /// TLS certificate auth: the client certificate and its key.
    Cert {
        /// The auth method's mount (`cert`).
        mount: String,
        /// The certificate role to log in as, if not the one the certificate matches.
        role: Option<String>,
        /// The client certificate chain (PEM), not a secret.
        certificate: PathBuf,
        /// Its private key (PEM).
        key: HostKey,
    },
}

impl OpenbaoAuth {
    /// The method's name in errors and status: `token`, `appRole` or `cert`.
    #[must_use]
    pub fn method(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::AppRole { .. } => "appRole",
            Self::Cert { .. } => "cert",
        }
    }

    /// The host keys it reads, with the field each is named by under `auth`.
    #[must_use]
    pub fn keys(&self) -> Vec<(&'static [&'static str], &HostKey)> {
        match self {
            Self::Token(key) => vec![(&["token"], key)],
            Self::AppRole { secret_id, .. } => vec![(&["appRole", "secretId"], secret_id)],
            Self::Cert { key, .. } => vec![(&["cert", "key"], key)],
        }
    }
}

/// A secret of the host's own (an `age` store's identity, an `openbao` store's credentials):
/// a plain file readable by ramlet's user alone, or a file sealed with `systemd-creds encrypt`
/// whose embedded name is the file's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HostKey {
    /// A plain file, readable by ramlet's user alone.
    File(PathBuf),
    /// A file sealed with `systemd-creds encrypt`.
    Credential(PathBuf),
}

impl HostKey {
    /// The file on the host.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::File(path) | Self::Credential(path) => path,
        }
    }
}

impl Provider {
    /// The provider's short name: `aws`, `gcp`, `creds`, `age`, `file` or `openbao`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Openbao(_) => "openbao",
            Self::Aws { .. } => "aws",
            Self::Gcp { .. } => "gcp",
            Self::Creds { .. } => "creds",
            Self::Age { .. } => "age",
            Self::File { .. } => "file",
        }
    }

    /// The host's own secrets this store reads: an `age` store's identity, an `openbao`
    /// store's credential. No `file` or `creds` store may deliver them.
    #[must_use]
    pub fn host_keys(&self) -> Vec<&HostKey> {
        match self {
            Self::Age { identity, .. } => vec![identity],
            Self::Openbao(openbao) => openbao.auth.keys().into_iter().map(|(_, k)| k).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the store keeps its secrets in plain text on the host's disk (`file`).
    #[must_use]
    pub fn plain_at_rest(&self) -> bool {
        matches!(self, Self::File { .. })
    }
}

/// A validated `Container`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// `metadata.name`; the unit is `<name>.container`.
    pub name: Name,
    /// Where it was declared.
    pub origin: Origin,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Which hosts run it.
    pub host_selector: HostSelector,
    /// The image reference.
    pub image: String,
    /// The entrypoint override.
    pub entrypoint: Option<String>,
    /// The arguments.
    pub exec: Vec<String>,
    /// Environment variables (never secrets).
    pub environment: BTreeMap<String, String>,
    /// Published ports, in Podman's syntax.
    pub publish_ports: Vec<String>,
    /// The network.
    pub network: Option<String>,
    /// The user (and group) inside the container.
    pub user: Option<String>,
    /// The RAM volumes.
    pub volumes: Vec<Volume>,
    /// What a secret rotation does.
    pub rotation: Rotation,
    /// The health check that gates a rotation, if any.
    pub health_check: Option<HealthCheck>,
    /// What happens when a secret it runs with is about to end without a renewed one.
    pub on_expiry: crate::raw::OnExpiry,
    /// Escape-hatch keys: section -> key -> values (one per repetition of the key).
    pub quadlet: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Container {
    /// Every secret this container reads, with the path of the file it fills.
    pub fn secrets(&self) -> impl Iterator<Item = (&Volume, &VolumeFile)> {
        self.volumes
            .iter()
            .flat_map(|v| v.files.iter().map(move |f| (v, f)))
    }
}

/// Selects hosts by label; the empty selector selects every host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostSelector {
    /// Exact label matches.
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    pub match_expressions: Vec<LabelRequirement>,
}

/// One set-based requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub operator: LabelOperator,
    /// The values, for `In` and `NotIn`.
    pub values: Vec<String>,
}

impl HostSelector {
    /// Whether a host with `labels` is selected.
    #[must_use]
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let exact = self
            .match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        exact
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator {
                    LabelOperator::In => value.is_some_and(|v| r.values.contains(v)),
                    LabelOperator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                    LabelOperator::Exists => value.is_some(),
                    LabelOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// A validated RAM volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Unique within the container.
    pub name: Name,
    /// Absolute, normalised path in the container.
    pub mount_path: String,
    /// tmpfs or ramfs.
    pub medium: Medium,
    /// The tmpfs size in bytes.
    pub size_limit: u64,
    /// `SELinux` relabelling.
    pub selinux: SelinuxLabel,
    /// Mounted read-only.
    pub read_only: bool,
    /// The files, in spec order.
    pub files: Vec<VolumeFile>,
}

/// A validated file in a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFile {
    /// Relative, normalised, cannot leave the volume.
    pub path: String,
    /// Permission bits, at most 0o777.
    pub mode: u32,
    /// Owner user ID.
    pub uid: u32,
    /// Owner group ID.
    pub gid: u32,
    /// Where the content comes from.
    pub content: Content,
}

impl VolumeFile {
    /// The file's secret, when it is one secret's value (not a template).
    #[must_use]
    pub fn secret(&self) -> Option<&SecretRef> {
        match &self.content {
            Content::Secret(reference) => Some(reference),
            Content::Template(_) => None,
        }
    }

    /// Every secret the file is made from: its secret, or its template's inputs.
    pub fn references(&self) -> impl Iterator<Item = &SecretRef> {
        let (one, many) = match &self.content {
            Content::Secret(reference) => (Some(reference), None),
            Content::Template(template) => (None, Some(template.inputs.values())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// [`Self::references`], to change (a rollback pins their versions).
    pub fn references_mut(&mut self) -> impl Iterator<Item = &mut SecretRef> {
        let (one, many) = match &mut self.content {
            Content::Secret(reference) => (Some(reference), None),
            Content::Template(template) => (None, Some(template.inputs.values_mut())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// Where a file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Content {
    /// One secret's value.
    Secret(SecretRef),
    /// A text rendered from several secrets.
    Template(Template),
}

/// A validated template: its text parses, reads only its inputs and reads every one (see
/// [`crate::template::check`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// The secrets the text reads, by the name the text gives them.
    pub inputs: BTreeMap<String, SecretRef>,
    /// The template's text.
    pub text: String,
}

/// A validated reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The store; it exists.
    pub store: Name,
    /// The secret's name in the store.
    pub name: String,
    /// Which version.
    pub version: SecretVersion,
    /// A top-level key of a JSON object secret.
    pub property: Option<String>,
    /// How the content is encoded.
    pub encoding: Encoding,
}

/// Which version of a secret to read. Each store kind accepts its own shapes (`ramlet
/// validate` refuses the others), so a provider never has to guess what a string means.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretVersion {
    /// The newest enabled version: GCP `latest`, the AWS stage `AWSCURRENT`, the file store's
    /// only version.
    Latest,
    /// GCP and OpenBao: a version number (`3`).
    Number(u64),
    /// GCP: a version alias (`prod`).
    Alias(String),
    /// AWS: a version ID (`VersionId`).
    VersionId(String),
    /// AWS: a staging label (`AWSPREVIOUS` or a custom label), from `versionStage`.
    Stage(String),
}

impl std::fmt::Display for SecretVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Alias(a) => f.write_str(a),
            Self::VersionId(id) => write!(f, "id {id}"),
            Self::Stage(stage) => write!(f, "stage {stage}"),
        }
    }
}

/// A command run inside the container after a rotation: it must exit 0 before the deadline,
/// or the previous version goes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// How long after the restart (or reload) the container has to pass.
    pub deadline: Duration,
    /// How often the check runs until it passes.
    pub interval: Duration,
}

/// What a secret rotation does to the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Rotation {
    /// Restart the unit.
    Restart,
    /// Send this signal (such as `SIGHUP`) to the container.
    Reload {
        /// The signal's name, with the `SIG` prefix.
        signal: String,
    },
    /// Only update the files.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let selector = HostSelector {
            match_labels: labels(&[("role", "edge")]),
            match_expressions: vec![
                LabelRequirement {
                    key: "zone".into(),
                    operator: LabelOperator::In,
                    values: vec!["a".into(), "b".into()],
                },
                LabelRequirement {
                    key: "drain".into(),
                    operator: LabelOperator::DoesNotExist,
                    values: vec![],
                },
            ],
        };
        assert!(selector.matches(&labels(&[("role", "edge"), ("zone", "a")])));
        assert!(!selector.matches(&labels(&[("role", "edge"), ("zone", "c")])));
        assert!(!selector.matches(&labels(&[("role", "edge"), ("zone", "a"), ("drain", "")])));
        assert!(!selector.matches(&labels(&[("zone", "a")])));
        assert!(HostSelector::default().matches(&labels(&[])));
    }
}
