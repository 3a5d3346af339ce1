//! The spec documents exactly as written: serde types that mirror the YAML, with unknown fields
//! refused. Nothing here is trusted yet; `validate` turns these into [`crate::model`].
//!
//! The doc comments on these types are the user-facing field reference: they become the
//! descriptions in the JSON Schema under `specs/schema/`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scalar::{QuadletValue, Scalar};

/// The only `apiVersion` this release understands.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// `ramlet.dev/v1alpha1`
    #[serde(rename = "ramlet.dev/v1alpha1")]
    V1alpha1,
}

/// The `kind` of a `SecretStore` document.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum SecretStoreKind {
    /// `SecretStore`
    SecretStore,
}

/// The `kind` of a `Container` document.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum ContainerKind {
    /// `Container`
    Container,
}

/// One spec document: Kubernetes shape.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "{K}Document")]
pub struct Document<K, S> {
    /// Always `ramlet.dev/v1alpha1`.
    pub api_version: ApiVersion,
    /// What this document declares.
    pub kind: K,
    /// Name, labels and annotations.
    pub metadata: Metadata,
    /// The desired state.
    pub spec: S,
}

/// A `SecretStore` document.
pub type SecretStoreDocument = Document<SecretStoreKind, SecretStoreSpec>;
/// A `Container` document.
pub type ContainerDocument = Document<ContainerKind, ContainerSpec>;

/// Identifies a document.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// A DNS-1123 label (lowercase letters, digits and `-`, at most 63 characters), unique among
    /// documents of the same kind. For a `Container` it names the unit: `<name>.container`.
    pub name: String,
    /// Kubernetes-style labels; informational.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations; informational, never written to a unit file.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Where secrets come from. Exactly one of `aws`, `gcp`, `openbao`, `creds`, `age` or `file`
/// is set.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretStoreSpec {
    /// How often secrets from this store are checked for new versions: `30s`, `5m`, `1h`,
    /// `1h30m`. Between 10s and 24h; default `5m`.
    pub refresh_interval: Option<String>,
    /// AWS Secrets Manager.
    pub aws: Option<AwsStore>,
    /// Google Cloud Secret Manager.
    pub gcp: Option<GcpStore>,
    /// An OpenBao or HashiCorp Vault server's KV version 2 engine.
    pub openbao: Option<OpenbaoStore>,
    /// A local directory of credentials sealed with `systemd-creds encrypt` (to the host's key
    /// or its TPM2): nothing in plain text at rest.
    pub creds: Option<CredsStore>,
    /// Files encrypted with age, committed beside the specs.
    pub age: Option<AgeStore>,
    /// A local directory holding one file per secret, in plain text at rest.
    pub file: Option<FileStore>,
    /// How a new version reaches the containers that use it when they have a health check.
    pub rollout: Option<Rollout>,
}

/// How a new version of a secret reaches its consumers that have a health check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rollout {
    /// How many of them take a new version first (by name); the others follow only once
    /// these pass their health checks. Between 1 and 1000; default 1.
    pub canary: Option<u32>,
    /// Which consumers may be canaries: a label selector over their `metadata.labels`, so the
    /// store's owner chooses rather than the alphabet. Default: any consumer with a health
    /// check. A consumer whose check fails on the version it already runs is never a canary.
    pub canary_selector: Option<HostSelector>,
}

/// AWS Secrets Manager. Credentials come from the standard AWS chain (environment, profile,
/// instance role).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsStore {
    /// The region, such as `eu-west-1`.
    pub region: String,
    /// An `http://` or `https://` URL that replaces the regional endpoint (VPC endpoints, tests).
    pub endpoint: Option<String>,
    /// Where Secrets Manager's change events arrive (through an EventBridge rule): a new
    /// version is fetched when its event arrives instead of at the next refresh.
    pub events: Option<AwsEvents>,
}

/// An SQS queue fed by an EventBridge rule on `aws.secretsmanager` events.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsEvents {
    /// The queue's URL, such as `https://sqs.eu-west-1.amazonaws.com/123456789012/ramlet`.
    pub queue: String,
    /// How often the store is refreshed while its events cannot be received: `1m`, `5m`.
    /// Between 10s and 24h; default `5m`.
    pub fallback_interval: Option<String>,
}

/// Google Cloud Secret Manager. Credentials come from Application Default Credentials.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcpStore {
    /// The project ID (such as `my-project`) or project number.
    pub project: String,
    /// An `http://` or `https://` URL that replaces `https://secretmanager.googleapis.com`.
    pub endpoint: Option<String>,
    /// Where Secret Manager's change events arrive (a Pub/Sub topic set on the secrets): a new
    /// version is fetched when its message arrives instead of at the next refresh.
    pub events: Option<GcpEvents>,
}

/// A Pub/Sub pull subscription on the topic the secrets publish their events to.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcpEvents {
    /// The subscription: `projects/<project>/subscriptions/<id>`.
    pub subscription: String,
    /// An `http://` or `https://` URL that replaces `https://pubsub.googleapis.com`.
    pub endpoint: Option<String>,
    /// How often the store is refreshed while its events cannot be received: `1m`, `5m`.
    /// Between 10s and 24h; default `5m`.
    pub fallback_interval: Option<String>,
}

/// An OpenBao (or HashiCorp Vault) server's KV version 2 engine: the secret `app/db` is the
/// path `app/db` under `mount`; its JSON keys are selected with `property`. A version is
/// checked with one metadata read and fetched only when it moved.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenbaoStore {
    /// The server, `https://host[:port]` (`http://` only on loopback). The host's
    /// `policy.endpoints` must name it: the host's credentials go there.
    pub address: String,
    /// The engine's mount path: a KV version 2 engine (such as `secret`); with `pki`, a PKI
    /// engine (such as `pki`); with `database`, a database secrets engine (such as `database`).
    pub mount: String,
    /// The namespace (`X-Vault-Namespace`), such as `team-a`; none by default.
    pub namespace: Option<String>,
    /// A PEM file of the CAs the server's certificate must chain to, absolute; default: the
    /// system's roots.
    pub ca_file: Option<String>,
    /// How ramlet logs in: exactly one of `token`, `appRole` or `cert`.
    pub auth: OpenbaoAuth,
    /// The mount is a PKI engine: the certificates ramlet has it issue. A volume file reads
    /// one by its name (`secret: {store: ..., name: web, property: certificate}`).
    pub pki: Option<PkiEngine>,
    /// The mount is a database secrets engine: the leased credentials ramlet has it create. A
    /// volume file reads one by its name (`secret: {store: ..., name: app, property:
    /// password}`). Not with `pki`.
    pub database: Option<DatabaseEngine>,
}

/// The credentials an `openbao` store's database engine creates, by name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseEngine {
    /// At most 64, each named by letters, digits, `.`, `_` and `-`.
    pub credentials: BTreeMap<String, DatabaseCredential>,
}

/// One leased credential, a username and a password: created at the first reconcile that
/// needs it, its lease renewed at about two thirds of each grant, created anew before the
/// lease's maximum TTL, and revoked once no container runs with it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseCredential {
    /// The engine's role that creates it (`<mount>/creds/<role>`): the database, its grants
    /// and the lease's TTLs are the role's to say.
    pub role: String,
}

/// The certificates an `openbao` store's PKI engine issues, by name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PkiEngine {
    /// At most 64, each named by letters, digits, `.`, `_` and `-`.
    pub certificates: BTreeMap<String, PkiCertificate>,
}

/// One certificate: issued at the first reconcile that needs it, issued again (a new key too)
/// at about two thirds of its life, or when these settings change.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PkiCertificate {
    /// The PKI role that issues it (`<mount>/issue/<role>`): what it may name is the role's to
    /// say.
    pub role: String,
    /// The subject's common name, such as `app.example.com`.
    pub common_name: String,
    /// More DNS names for the subject alternative names.
    pub alt_names: Option<Vec<String>>,
    /// IP addresses for the subject alternative names.
    pub ip_sans: Option<Vec<String>>,
    /// How long it is valid, such as `72h` or `2m`: at least three times the store's
    /// `refreshInterval` (each refresh checks whether two thirds of its life are gone).
    pub ttl: String,
}

/// How an `openbao` store logs in. Every credential is a file in the host's
/// `policy.identityDirectories`: plain (readable by ramlet's user alone) or sealed with
/// `systemd-creds encrypt`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenbaoAuth {
    /// A token; renewed at two thirds of its TTL while renewable, read again when not.
    pub token: Option<HostKeyFile>,
    /// `AppRole`: a role ID and a secret ID.
    pub app_role: Option<AppRoleAuth>,
    /// TLS certificate auth: a client certificate and its key.
    pub cert: Option<CertAuth>,
}

/// A file of the host's that holds a credential: set `file` or `credential`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostKeyFile {
    /// A plain file, absolute, readable by ramlet's user alone.
    pub file: Option<String>,
    /// A file sealed with `systemd-creds encrypt --name=<its file name>`, absolute.
    pub credential: Option<String>,
}

/// `AppRole` login.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppRoleAuth {
    /// The auth method's mount path; default `approle`.
    pub mount: Option<String>,
    /// The role ID (`bao read auth/approle/role/<role>/role-id`).
    pub role_id: String,
    /// The secret ID.
    pub secret_id: HostKeyFile,
}

/// TLS certificate login.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertAuth {
    /// The auth method's mount path; default `cert`.
    pub mount: Option<String>,
    /// The certificate role to log in as; default: the one the certificate matches.
    pub role: Option<String>,
    /// The client certificate (PEM), absolute.
    pub certificate: String,
    /// Its private key (PEM).
    pub key: HostKeyFile,
}

/// Secrets read from files in a local directory: the secret `prod/db` is the file
/// `<directory>/prod/db`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileStore {
    /// An absolute directory.
    pub directory: String,
}

/// Credentials sealed with `systemd-creds encrypt`, one file per secret: the secret `prod/db` is
/// the file `<directory>/prod/db`, and its embedded credential name must be `db` (the last part
/// of the secret's name; `ramlet seal` writes it so).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredsStore {
    /// An absolute directory, such as `/etc/credstore.encrypted`.
    pub directory: String,
}

/// Files encrypted with age (X25519 recipients, binary or armored), committed in the spec
/// repository: the secret `prod/db` is the file `<directory>/prod/db.age`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgeStore {
    /// A folder relative to the spec directory, such as `secrets`.
    pub directory: String,
    /// The host's age identity file (`AGE-SECRET-KEY-1...` lines), absolute; readable by
    /// ramlet's user alone. Set this or `identityCredential`.
    pub identity: Option<String>,
    /// The host's age identity sealed with `systemd-creds encrypt` (embedded name: the file's
    /// name), absolute: no plain key on the disk. Set this or `identity`.
    pub identity_credential: Option<String>,
    /// The public keys (`age1...`) `ramlet seal` encrypts new values to; ramlet itself never
    /// needs them.
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// A container that ramlet runs with Podman through a Quadlet unit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerSpec {
    /// Only hosts whose labels match run this container; absent means every host.
    pub host_selector: Option<HostSelector>,
    /// The image reference, such as `docker.io/library/nginx:1.27` (no whitespace).
    pub image: String,
    /// Overrides the image's entrypoint (Quadlet `Entrypoint=`).
    pub entrypoint: Option<String>,
    /// Arguments to the entrypoint (Quadlet `Exec=`); each item is one argument.
    #[serde(default)]
    pub exec: Vec<String>,
    /// Environment variables. Never put secrets here: Podman keeps the environment on disk.
    #[serde(default)]
    pub environment: BTreeMap<String, Scalar>,
    /// Published ports: `[[ip:][hostPort]:]containerPort[/tcp|udp|sctp]`, ranges allowed.
    #[serde(default)]
    pub publish_ports: Vec<String>,
    /// The network: `host`, `none`, `private`, `slirp4netns[:options]`, `pasta[:options]`, or the
    /// name of a Podman network.
    pub network: Option<String>,
    /// The user (and group) the process runs as inside the container: `uid[:gid]` or
    /// `name[:group]`.
    pub user: Option<String>,
    /// RAM volumes filled with secrets and mounted into the container.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// What happens when a secret of this container changes.
    pub rotation: Option<Rotation>,
    /// Escape hatch for Quadlet keys the spec does not model: section (`Unit`, `Container`,
    /// `Service`) to key to value (or list of values, for a key that repeats). Only keys from a
    /// known set are accepted, and none that ramlet owns (image, volumes, exec, ...).
    #[serde(default)]
    pub quadlet: BTreeMap<String, BTreeMap<String, QuadletValue>>,
}

/// Selects hosts by their labels (set with `--host-labels` or the agent's config). All terms must
/// match.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostSelector {
    /// Labels the host must have, with these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements, as in Kubernetes.
    #[serde(default)]
    pub match_expressions: Vec<LabelRequirement>,
}

/// One set-based label requirement.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// How the host's value relates to `values`.
    pub operator: LabelOperator,
    /// The values for `In` and `NotIn`; must be empty for `Exists` and `DoesNotExist`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// Operators of a label requirement.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
pub enum LabelOperator {
    /// The host has the label, with one of the values.
    In,
    /// The host lacks the label, or has it with none of the values.
    NotIn,
    /// The host has the label.
    Exists,
    /// The host lacks the label.
    DoesNotExist,
}

/// A RAM volume: a tmpfs (mounted `noswap`) or ramfs that ramlet fills with secret files and
/// bind-mounts into the container.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    /// A DNS-1123 label, unique within the container.
    pub name: String,
    /// Where the volume appears in the container: an absolute path, not `/`, unique.
    pub mount_path: String,
    /// `tmpfs` (default; mounted with `noswap`) or `ramfs` (for kernels older than 6.4).
    pub medium: Option<Medium>,
    /// The tmpfs size: bytes, or with `Ki` / `Mi` (such as `512Ki`). From 4Ki to 64Mi; default 1Mi.
    pub size_limit: Option<Scalar>,
    /// `SELinux` relabelling: `private` (default, `:Z`), `shared` (`:z`) or `none`.
    pub selinux: Option<SelinuxLabel>,
    /// Mount the volume read-only in the container (default true).
    pub read_only: Option<bool>,
    /// The files of the volume. Several files are updated together: a container never sees half
    /// a rotation.
    #[serde(default)]
    pub files: Vec<VolumeFile>,
}

/// The RAM filesystem behind a volume.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Medium {
    /// tmpfs mounted with `noswap` (Linux 6.4 and later).
    Tmpfs,
    /// ramfs: never swapped, but without a size limit.
    Ramfs,
}

/// `SELinux` relabelling of a volume.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum SelinuxLabel {
    /// `:Z`: private to this container.
    Private,
    /// `:z`: shared between containers.
    Shared,
    /// No relabelling.
    None,
}

/// One file in a volume, filled from a secret (`secret`) or rendered from several
/// (`template`): exactly one of the two.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeFile {
    /// The file's path inside the volume: relative, no `..`, no empty segments.
    pub path: String,
    /// Octal permissions, written `0400` (default), `0o400` or `"0400"`; at most `0777`.
    pub mode: Option<Scalar>,
    /// The owning user ID, as the container sees it (default 0).
    pub uid: Option<u32>,
    /// The owning group ID, as the container sees it (default 0).
    pub gid: Option<u32>,
    /// The secret whose value is the file's content.
    pub secret: Option<SecretRef>,
    /// A text rendered from several secrets (a `.env`, a configuration file).
    pub template: Option<Template>,
}

/// A file's text rendered from secrets: a Jinja template (minijinja) whose variables are its
/// inputs. An input whose value is a JSON object or array is read by key (`{{ db.user }}`);
/// any other value is a string. Filters for configuration files: `urlencode`, `base64`,
/// `b64decode`, `tojson`, `toyaml`, `indent` and Jinja's builtins; nothing reads a file, the
/// environment or the network.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Template {
    /// The secrets the text reads, by the name it gives them: letters, digits and `_`, not
    /// starting with a digit.
    pub inputs: BTreeMap<String, SecretRef>,
    /// The text, with `{{ name }}` where an input's value goes; at most 64 KiB.
    pub text: String,
}

/// A reference to one secret in a store.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    /// The `metadata.name` of a `SecretStore`.
    pub store: String,
    /// The secret's name in that store (AWS: name or ARN; GCP: secret ID; file: relative path).
    pub name: String,
    /// `latest` (default) or a pinned version: a GCP version number or alias, or an AWS
    /// version ID (32 to 64 letters, digits and `-`).
    pub version: Option<Scalar>,
    /// AWS only: the staging label to read (`AWSCURRENT`, `AWSPREVIOUS` or a custom label),
    /// instead of `version`.
    pub version_stage: Option<String>,
    /// Take this top-level key of a JSON object secret instead of the whole secret.
    pub property: Option<String>,
    /// How the secret's content is stored: `raw` (default, written as is; binary secrets too)
    /// or `base64` (decoded before writing).
    pub encoding: Option<Encoding>,
}

/// The encoding of a secret's content.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Encoding {
    /// Written as is.
    Raw,
    /// Base64 text, decoded before writing.
    Base64,
}

/// What happens when one of the container's secrets changes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rotation {
    /// `restart` (default), `reload` (send `signal`) or `none`.
    pub strategy: Option<RotationStrategy>,
    /// The signal for `reload`, such as `SIGHUP` (default) or `SIGUSR1`.
    pub signal: Option<String>,
    /// Gates a rotation on the container's health: after the restart or reload, the new
    /// version stays only if this check passes before its deadline; otherwise ramlet puts the
    /// previous version back and restarts the container again.
    pub health_check: Option<HealthCheck>,
    /// What happens when a secret it runs with is about to end (a certificate, a leased
    /// credential) and no renewed one came: `stop` (default) stops the container 10 s before
    /// the end, with a reason, and starts it again once a valid one comes; `keep` leaves it
    /// running on what it has.
    pub on_expiry: Option<OnExpiry>,
}

/// What happens to a container whose secret is about to end without a renewed one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Deserialize,
    Serialize,
    JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum OnExpiry {
    /// Stop it shortly before the end; start it again once a valid one comes.
    #[default]
    Stop,
    /// Leave it running.
    Keep,
}

/// A command run inside the container (`podman exec`) that exits 0 when it is healthy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    /// The command and its arguments, such as `[pg_isready, -U, app]`; no shell unless you
    /// name one (`[sh, -c, "..."]`).
    pub command: Vec<String>,
    /// How long after the rotation's restart (or reload) the container has to pass: `30s`,
    /// `2m`. Between 1s and 1h; default `60s`.
    pub deadline: Option<String>,
    /// How often the check runs until it passes: between 1s and the deadline; default `2s`.
    pub interval: Option<String>,
}

/// How a container picks up a rotated secret.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum RotationStrategy {
    /// Restart the unit.
    Restart,
    /// Send `signal` to the container's main process.
    Reload,
    /// Update the files only.
    None,
}
