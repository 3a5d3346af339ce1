//! Validation of `Container` documents.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Check, ErrorKind};
use crate::model::{
    Container, Content, HealthCheck, HostSelector, LabelRequirement, Origin, Provider, Rotation,
    SecretRef, SecretVersion, Volume, VolumeFile,
};
use crate::name;
use crate::path::FieldPath;
use crate::quantity::{self, DEFAULT_VOLUME_BYTES};
use crate::raw::{self, Encoding, LabelOperator, Medium, RotationStrategy, SelinuxLabel};
use crate::{fspath, hatch, mode, ports, text};

use super::{Findings, labels, metadata};

/// What the container validation knows about a store name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoreStatus<'a> {
    /// A valid store with this provider.
    Valid(&'a Provider),
    /// Declared, but rejected (invalid or a duplicate name).
    Rejected,
}

/// Store names to what is known about them.
pub(crate) type Stores<'a> = BTreeMap<&'a str, StoreStatus<'a>>;

/// Signals a `reload` rotation may send.
pub const SIGNALS: &[&str] = &[
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT",
];

/// Validates one `Container` document against the known stores.
pub(crate) fn validate(
    doc: &raw::ContainerDocument,
    origin: Origin,
    stores: &Stores<'_>,
) -> Result<Container, Findings> {
    let mut f = Findings::default();
    let name = metadata(&mut f, &doc.metadata).and_then(|name| {
        f.check(
            &FieldPath::of(&["metadata", "name"]),
            name::container_unit(name.as_str()).map(|()| name),
        )
    });
    let spec = &doc.spec;
    let path = FieldPath::of(&["spec"]);

    let host_selector = spec
        .host_selector
        .as_ref()
        .map(|s| host_selector(&mut f, &path.key("hostSelector"), s))
        .unwrap_or_default();
    let image = f.check(
        &path.key("image"),
        option_safe_word(&spec.image, "an image reference"),
    );
    let entrypoint = f.optional(&path.key("entrypoint"), spec.entrypoint.as_deref(), |e| {
        text::single_line(e).map(str::to_owned)
    });
    let exec = each(&mut f, &path.key("exec"), &spec.exec, |a| {
        text::single_line(a)?;
        if a.is_empty() {
            // Quadlet 5.4 ends Exec= at an empty word, dropping every argument after it.
            return Err((ErrorKind::InvalidValue, "an empty argument cannot reach the container (Quadlet drops the rest of Exec= after it)".into()));
        }
        Ok(a.to_owned())
    });
    let mut environment = BTreeMap::new();
    for (key, value) in &spec.environment {
        let field = path.key("environment").key(key);
        if let Some(key) = f.check(&field, env_name(key))
            && let Some(value) = f.check(&field, text::single_line(value.as_str()))
        {
            environment.insert(key, value.to_owned());
        }
    }
    let publish_ports = each(
        &mut f,
        &path.key("publishPorts"),
        &spec.publish_ports,
        |p| text::single_line(p).and_then(ports::publish_port),
    );
    let network = f.optional(&path.key("network"), spec.network.as_deref(), |n| {
        option_safe_word(n, "a network name or mode")
    });
    let user = f.optional(&path.key("user"), spec.user.as_deref(), user);
    let volumes = volumes(&mut f, &path.key("volumes"), &spec.volumes, stores);
    let rotation = rotation(&mut f, &path.key("rotation"), spec.rotation.as_ref());
    let health_check = spec
        .rotation
        .as_ref()
        .and_then(|r| r.health_check.as_ref())
        .and_then(|h| {
            health_check(
                &mut f,
                &path.key("rotation").key("healthCheck"),
                h,
                &rotation,
            )
        });
    let quadlet = quadlet(&mut f, &path.key("quadlet"), &spec.quadlet);

    if !f.0.is_empty() {
        return Err(f);
    }
    match (name, image, entrypoint, network, user) {
        (Some(name), Some(image), Ok(entrypoint), Ok(network), Ok(user)) => Ok(Container {
            name,
            origin,
            labels: doc.metadata.labels.clone(),
            host_selector,
            image,
            entrypoint,
            exec,
            environment,
            publish_ports,
            network,
            user,
            volumes,
            rotation,
            health_check,
            on_expiry: spec
                .rotation
                .as_ref()
                .and_then(|r| r.on_expiry)
                .unwrap_or_default(),
            quadlet,
        }),
        _ => Err(f),
    }
}

/// Checks every item of a list, keeping the good ones (the caller rejects the document if any
/// item was bad).
fn each<T>(
    f: &mut Findings,
    path: &FieldPath,
    items: &[String],
    check: impl Fn(&str) -> Check<T>,
) -> Vec<T> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| f.check(&path.index(i), check(item)))
        .collect()
}

/// A single word that cannot be mistaken for a command-line option.
fn option_safe_word(value: &str, what: &str) -> Check<String> {
    text::word(value)?;
    if value.starts_with('-') {
        return Err((
            ErrorKind::InvalidValue,
            format!("{value:?} is not {what}: it starts with '-'"),
        ));
    }
    Ok(value.to_owned())
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn env_name(key: &str) -> Check<String> {
    text::single_line(key)?;
    let valid = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(key.to_owned())
    } else {
        Err((
            ErrorKind::InvalidName,
            format!("{key:?} is not an environment variable name (letters, digits and '_')"),
        ))
    }
}

/// `uid[:gid]` or `name[:group]`.
fn user(value: &str) -> Check<String> {
    text::word(value)?;
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('-')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    let valid = match value.split_once(':') {
        Some((u, g)) => part(u) && part(g),
        None => part(value),
    };
    if valid {
        Ok(value.to_owned())
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!("{value:?} is not `uid[:gid]` or `name[:group]`"),
        ))
    }
}

pub(crate) fn host_selector(
    f: &mut Findings,
    path: &FieldPath,
    raw: &raw::HostSelector,
) -> HostSelector {
    labels(f, &path.key("matchLabels"), &raw.match_labels);
    let mut match_expressions = Vec::new();
    for (i, r) in raw.match_expressions.iter().enumerate() {
        let path = path.key("matchExpressions").index(i);
        f.check(
            &path.key("key"),
            text::single_line(&r.key).and_then(|_| name::label_key(&r.key)),
        );
        for (j, v) in r.values.iter().enumerate() {
            f.check(
                &path.key("values").index(j),
                text::single_line(v).and_then(|_| name::label_value_check(v)),
            );
        }
        let needs_values = matches!(r.operator, LabelOperator::In | LabelOperator::NotIn);
        if needs_values == r.values.is_empty() {
            let message = if needs_values {
                "In and NotIn need at least one value"
            } else {
                "Exists and DoesNotExist take no values"
            };
            f.push(&path.key("values"), ErrorKind::InvalidValue, message);
        }
        match_expressions.push(LabelRequirement {
            key: r.key.clone(),
            operator: r.operator,
            values: r.values.clone(),
        });
    }
    HostSelector {
        match_labels: raw.match_labels.clone(),
        match_expressions,
    }
}

#[allow(clippy::too_many_lines)] // (one loop over the volumes, field by field)
fn volumes(
    f: &mut Findings,
    path: &FieldPath,
    raw: &[raw::Volume],
    stores: &Stores<'_>,
) -> Vec<Volume> {
    let mut names = BTreeMap::new();
    let mut mounts: Vec<(usize, String)> = Vec::new();
    let mut volumes = Vec::new();
    let mut total = 0u64;
    for (i, v) in raw.iter().enumerate() {
        let path = path.index(i);
        let name = f.check(&path.key("name"), name::name(&v.name));
        if let Some(name) = &name
            && let Some(first) = names.insert(name.clone(), i)
        {
            f.push(
                &path.key("name"),
                ErrorKind::DuplicateName,
                format!("volume {name:?} is also spec.volumes[{first}]"),
            );
        }
        let mount_path = f.check(
            &path.key("mountPath"),
            text::single_line(&v.mount_path).and_then(fspath::mount_path),
        );
        if let Some(mount) = &mount_path {
            if let Some((j, other)) = mounts
                .iter()
                .find(|(_, m)| fspath::is_within(mount, m) || fspath::is_within(m, mount))
            {
                let how = if other == mount {
                    "is the same as"
                } else {
                    "overlaps"
                };
                f.push(
                    &path.key("mountPath"),
                    ErrorKind::DuplicatePath,
                    format!("{mount:?} {how} spec.volumes[{j}].mountPath {other:?}"),
                );
            }
            mounts.push((i, mount.clone()));
        }
        let size_limit = f
            .optional(
                &path.key("sizeLimit"),
                v.size_limit.as_ref().map(crate::scalar::Scalar::as_str),
                quantity::volume_size,
            )
            .map(|s| s.unwrap_or(DEFAULT_VOLUME_BYTES));
        if let Ok(size) = size_limit {
            total += size;
            if total > quantity::MAX_SPEC_BYTES && total - size <= quantity::MAX_SPEC_BYTES {
                f.push(
                    &path.key("sizeLimit"),
                    ErrorKind::InvalidSize,
                    format!(
                        "the spec's volumes come to {} MiB with this one; a spec may hold at most {} MiB of secrets (ramlet keeps a copy of each in its own memory)",
                        total.div_ceil(1 << 20),
                        quantity::MAX_SPEC_BYTES >> 20
                    ),
                );
            }
        }
        if v.files.is_empty() {
            f.push(
                &path.key("files"),
                ErrorKind::MissingField,
                "a volume needs at least one file",
            );
        }
        let files = files(f, &path.key("files"), &v.files, stores);
        if let (Some(name), Some(mount_path), Ok(size_limit)) = (name, mount_path, size_limit) {
            volumes.push(Volume {
                name,
                mount_path,
                medium: v.medium.unwrap_or(Medium::Tmpfs),
                size_limit,
                selinux: v.selinux.unwrap_or(SelinuxLabel::Private),
                read_only: v.read_only.unwrap_or(true),
                files,
            });
        }
    }
    volumes
}

fn files(
    f: &mut Findings,
    path: &FieldPath,
    raw: &[raw::VolumeFile],
    stores: &Stores<'_>,
) -> Vec<VolumeFile> {
    let mut seen: Vec<(usize, String)> = Vec::new();
    let mut files = Vec::new();
    for (i, file) in raw.iter().enumerate() {
        let path = path.index(i);
        let rel = f.check(
            &path.key("path"),
            text::single_line(&file.path).and_then(fspath::relative),
        );
        if let Some(rel) = &rel {
            if let Some((j, other)) = seen
                .iter()
                .find(|(_, o)| fspath::is_within(rel, o) || fspath::is_within(o, rel))
            {
                let how = if other == rel {
                    "is the same as"
                } else {
                    "is a file and a directory with"
                };
                f.push(
                    &path.key("path"),
                    ErrorKind::DuplicatePath,
                    format!("{rel:?} {how} files[{j}].path {other:?}"),
                );
            }
            seen.push((i, rel.clone()));
        }
        let mode = f
            .optional(
                &path.key("mode"),
                file.mode.as_ref().map(crate::scalar::Scalar::as_str),
                mode::parse,
            )
            .map(|m| m.unwrap_or(mode::DEFAULT_FILE_MODE));
        let content = content(f, &path, file, stores);
        if let (Some(path), Ok(mode), Some(content)) = (rel, mode, content) {
            files.push(VolumeFile {
                path,
                mode,
                uid: file.uid.unwrap_or(0),
                gid: file.gid.unwrap_or(0),
                content,
            });
        }
    }
    files
}

/// A file's content: exactly one of `secret` and `template`.
fn content(
    f: &mut Findings,
    path: &FieldPath,
    file: &raw::VolumeFile,
    stores: &Stores<'_>,
) -> Option<Content> {
    match (&file.secret, &file.template) {
        (Some(secret), None) => {
            secret_ref(f, &path.key("secret"), secret, stores).map(Content::Secret)
        }
        (None, Some(template)) => {
            super::template::template(f, &path.key("template"), template, stores)
                .map(Content::Template)
        }
        (Some(_), Some(_)) => {
            f.push(
                &path.key("template"),
                ErrorKind::InvalidValue,
                "a file is either secret: (one secret's value) or template: (a text rendered from secrets), not both",
            );
            None
        }
        (None, None) => {
            f.push(
                path,
                ErrorKind::MissingField,
                "a file needs secret: (one secret's value) or template: (a text rendered from secrets)",
            );
            None
        }
    }
}

pub(super) fn secret_ref(
    f: &mut Findings,
    path: &FieldPath,
    raw: &raw::SecretRef,
    stores: &Stores<'_>,
) -> Option<SecretRef> {
    let store = f.check(&path.key("store"), name::name(&raw.store))?;
    let provider = match stores.get(store.as_str()) {
        Some(StoreStatus::Valid(provider)) => Some(*provider),
        Some(StoreStatus::Rejected) => {
            f.push(
                &path.key("store"),
                ErrorKind::UnknownStore,
                format!(
                    "store {:?} is declared but invalid; fix its errors first",
                    store.as_str()
                ),
            );
            None
        }
        None => {
            let known: Vec<&str> = stores.keys().copied().collect();
            let hint = if known.is_empty() {
                "no SecretStore is declared".to_owned()
            } else {
                format!("declared stores: {}", known.join(", "))
            };
            f.push(
                &path.key("store"),
                ErrorKind::UnknownStore,
                format!("no SecretStore named {:?}; {hint}", store.as_str()),
            );
            None
        }
    };
    let name = f.check(
        &path.key("name"),
        text::single_line(&raw.name).and_then(|n| secret_name(provider, n)),
    );
    let version_text = raw
        .version
        .as_ref()
        .map_or("latest", crate::scalar::Scalar::as_str);
    let version = match &raw.version_stage {
        None => f.check(
            &path.key("version"),
            text::single_line(version_text).and_then(|v| version(provider, v)),
        ),
        Some(stage) => f.check(
            &path.key("versionStage"),
            text::single_line(stage)
                .and_then(|s| version_stage(provider, raw.version.is_some(), s)),
        ),
    };
    let property = f.optional(&path.key("property"), raw.property.as_deref(), |p| {
        text::single_line(p)?;
        if p.is_empty() {
            return Err((ErrorKind::InvalidValue, "property must not be empty".into()));
        }
        if let Some(Provider::Openbao(openbao)) = provider
            && let Some(made) = openbao.made()
            && !made.parts.contains(&p)
        {
            return Err((
                ErrorKind::InvalidValue,
                format!(
                    "{p:?} is not a part of a {}; take one of {}",
                    made.what,
                    made.parts.join(", ")
                ),
            ));
        }
        Ok(p.to_owned())
    });
    Some(SecretRef {
        store,
        name: name?,
        version: version?,
        property: property.ok()?,
        encoding: raw.encoding.unwrap_or(Encoding::Raw),
    })
}

/// Checks a secret's name by the rules of its store's provider, as a spec's reference is
/// checked (`ramlet seal` asks before it writes anything).
///
/// # Errors
/// What is wrong with it, in the words a spec's error would use.
pub fn check_secret_name(provider: &Provider, name: &str) -> Result<(), String> {
    secret_name(Some(provider), name)
        .map(|_| ())
        .map_err(|(_, why)| why)
}

/// A secret's name, by the rules of its store's provider.
fn secret_name(provider: Option<&Provider>, name: &str) -> Check<String> {
    let ok = match provider {
        // Checked again once the store is fixed.
        None => true,
        Some(Provider::Aws { .. }) if name.starts_with("arn:") => {
            name.len() <= 2048 && !name.contains(char::is_whitespace)
        }
        Some(Provider::Aws { .. }) => {
            (1..=512).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
        }
        Some(Provider::Gcp { .. }) => {
            (1..=255).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
        }
        Some(Provider::File { directory } | Provider::Creds { directory }) => {
            let name = fspath::relative(name)?;
            fspath::host_file(directory, &name)?;
            return Ok(name);
        }
        Some(Provider::Age { .. }) => {
            let name = fspath::relative(name)?;
            fspath::not_hidden(&name)?;
            return Ok(name);
        }
        Some(Provider::Openbao(openbao)) => match openbao.made() {
            None => return super::openbao::secret_path(name),
            Some(made) if made.names.iter().any(|n| n == name) => return Ok(name.to_owned()),
            Some(made) => {
                return Err((
                    ErrorKind::InvalidValue,
                    format!(
                        "{name:?} is not a {} of this store; its {} are {}",
                        made.what,
                        made.field,
                        made.names.join(", ")
                    ),
                ));
            }
        },
    };
    if ok {
        Ok(name.to_owned())
    } else {
        let rule = match provider {
            Some(Provider::Gcp { .. }) => "a GCP secret ID: 1 to 255 letters, digits, '_' and '-'",
            _ => "an AWS secret name (1 to 512 of letters, digits and /_+=.@-) or ARN",
        };
        Err((ErrorKind::InvalidValue, format!("{name:?} is not {rule}")))
    }
}

/// A version: `latest`, or what the store's provider can pin.
fn version(provider: Option<&Provider>, version: &str) -> Check<SecretVersion> {
    if version == "latest" {
        return Ok(SecretVersion::Latest);
    }
    let refuse = |rule: &str| {
        Err((
            ErrorKind::InvalidValue,
            format!("{version:?} is not {rule}"),
        ))
    };
    match provider {
        // The store is unknown (already reported); nothing more to say.
        None => Ok(SecretVersion::Latest),
        Some(Provider::Gcp { .. }) => {
            if let Some(number) = version_number(version) {
                Ok(SecretVersion::Number(number))
            } else if gcp_alias(version) {
                Ok(SecretVersion::Alias(version.to_owned()))
            } else {
                refuse(
                    "`latest`, a GCP version number such as `3` or a version alias (a lowercase letter, then up to 62 lowercase letters, digits, `-` and `_`)",
                )
            }
        }
        Some(Provider::Openbao(openbao)) if openbao.pki.is_some() => refuse(
            "`latest`: a certificate has one version, the one issued last (ramlet issues the next)",
        ),
        Some(Provider::Openbao(openbao)) if openbao.database.is_some() => refuse(
            "`latest`: a leased credential has one version, the one created last (ramlet creates the next)",
        ),
        Some(Provider::Openbao(_)) => version_number(version).map_or_else(
            || refuse("`latest` or a KV version number such as `3`"),
            |n| Ok(SecretVersion::Number(n)),
        ),
        Some(Provider::Aws { .. }) => {
            if aws_version_id(version) {
                Ok(SecretVersion::VersionId(version.to_owned()))
            } else if aws_stage(version) {
                Err((
                    ErrorKind::InvalidValue,
                    format!(
                        "{version:?} is not an AWS version ID (32 to 64 letters, digits and `-`); to read a staging label write `versionStage: {version}`"
                    ),
                ))
            } else {
                refuse("`latest` or an AWS version ID (32 to 64 letters, digits and `-`)")
            }
        }
        Some(
            provider @ (Provider::File { .. } | Provider::Creds { .. } | Provider::Age { .. }),
        ) => refuse(&format!(
            "`latest`: the {} store keeps one version",
            provider.kind()
        )),
    }
}

/// A version number: 1 or more, written without a sign or leading zeros.
fn version_number(version: &str) -> Option<u64> {
    version
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && !version.starts_with('0') && !version.starts_with('+'))
}

/// `versionStage`: AWS only, and never together with `version`.
fn version_stage(
    provider: Option<&Provider>,
    with_version: bool,
    stage: &str,
) -> Check<SecretVersion> {
    match provider {
        None => Ok(SecretVersion::Latest),
        Some(Provider::Aws { .. }) if with_version => Err((
            ErrorKind::InvalidValue,
            "set `version` or `versionStage`, not both".to_owned(),
        )),
        Some(Provider::Aws { .. }) if stage == "AWSCURRENT" => Ok(SecretVersion::Latest),
        Some(Provider::Aws { .. }) if aws_stage(stage) => {
            Ok(SecretVersion::Stage(stage.to_owned()))
        }
        Some(Provider::Aws { .. }) => Err((
            ErrorKind::InvalidValue,
            format!(
                "{stage:?} is not an AWS staging label (1 to 256 letters, digits and `_.-`, such as `AWSPREVIOUS`)"
            ),
        )),
        Some(other) => Err((
            ErrorKind::InvalidValue,
            format!(
                "versionStage is for AWS stores; this secret's store is a {} store (use `version`)",
                other.kind()
            ),
        )),
    }
}

/// A GCP version alias: a lowercase letter, then lowercase letters, digits, `-` and `_`.
fn gcp_alias(alias: &str) -> bool {
    (1..=63).contains(&alias.len())
        && alias.starts_with(|c: char| c.is_ascii_lowercase())
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
}

/// An AWS version ID: a UUID, or the client request token it was made with (32 to 64
/// characters).
fn aws_version_id(id: &str) -> bool {
    (32..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An AWS staging label.
fn aws_stage(stage: &str) -> bool {
    (1..=256).contains(&stage.len())
        && stage
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn rotation(f: &mut Findings, path: &FieldPath, raw: Option<&raw::Rotation>) -> Rotation {
    let strategy = raw
        .and_then(|r| r.strategy)
        .unwrap_or(RotationStrategy::Restart);
    let signal = raw.and_then(|r| r.signal.as_deref());
    match (strategy, signal) {
        (RotationStrategy::Reload, signal) => {
            let signal = f.check(
                &path.key("signal"),
                self::signal(signal.unwrap_or("SIGHUP")),
            );
            Rotation::Reload {
                signal: signal.unwrap_or_default(),
            }
        }
        (_, Some(_)) => {
            f.push(
                &path.key("signal"),
                ErrorKind::InvalidValue,
                "signal is only used with `strategy: reload`",
            );
            Rotation::None
        }
        (RotationStrategy::Restart, None) => Rotation::Restart,
        (RotationStrategy::None, None) => Rotation::None,
    }
}

/// The longest a health check's deadline may be.
const MAX_HEALTH_DEADLINE: Duration = Duration::from_hours(1);
/// A health check's deadline when the spec sets none.
const DEFAULT_HEALTH_DEADLINE: Duration = Duration::from_mins(1);
/// How often a health check runs when the spec does not say.
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// `rotation.healthCheck`: a command (each argument one line, the first not an option, since
/// it follows the container's name on `podman exec`), a deadline and an interval. It gates a
/// restart or a reload; with `strategy: none` nothing would be checked against.
fn health_check(
    f: &mut Findings,
    path: &FieldPath,
    raw: &raw::HealthCheck,
    rotation: &Rotation,
) -> Option<HealthCheck> {
    let before = f.0.len();
    if *rotation == Rotation::None {
        f.push(
            path,
            ErrorKind::InvalidValue,
            "a health check gates a restart or a reload; with `strategy: none` nothing restarts",
        );
    }
    if raw.command.is_empty() {
        f.push(
            &path.key("command"),
            ErrorKind::MissingField,
            "name the command to run in the container, such as [pg_isready, -U, app]",
        );
    }
    let command = each(f, &path.key("command"), &raw.command, |a| {
        text::single_line(a)?;
        if a.is_empty() {
            return Err((ErrorKind::InvalidValue, "an empty argument".into()));
        }
        Ok(a.to_owned())
    });
    if command.first().is_some_and(|c| c.starts_with('-')) {
        f.push(
            &path.key("command").index(0),
            ErrorKind::InvalidValue,
            "the command cannot start with `-` (it would be read as an option of `podman exec`)",
        );
    }
    let deadline = f
        .optional(&path.key("deadline"), raw.deadline.as_deref(), |t| {
            quantity::duration(t, Duration::from_secs(1), MAX_HEALTH_DEADLINE)
        })
        .ok()?
        .unwrap_or(DEFAULT_HEALTH_DEADLINE);
    let interval = f
        .optional(&path.key("interval"), raw.interval.as_deref(), |t| {
            quantity::duration(t, Duration::from_secs(1), deadline)
        })
        .ok()?
        .unwrap_or(DEFAULT_HEALTH_INTERVAL.min(deadline));
    (f.0.len() == before).then_some(HealthCheck {
        command,
        deadline,
        interval,
    })
}

/// A signal name, with or without `SIG`, normalised to `SIGHUP` form.
fn signal(value: &str) -> Check<String> {
    text::single_line(value)?;
    let upper = value.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if SIGNALS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!(
                "{value:?} is not a signal ramlet sends; use one of {}",
                SIGNALS.join(", ")
            ),
        ))
    }
}

fn quadlet(
    f: &mut Findings,
    path: &FieldPath,
    raw: &BTreeMap<String, BTreeMap<String, crate::scalar::QuadletValue>>,
) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections = BTreeMap::new();
    for (section, keys) in raw {
        let path = path.key(section);
        let Some(allowed) = f.check(&path, text::single_line(section).and_then(hatch::section))
        else {
            continue;
        };
        let mut out = BTreeMap::new();
        for (key, value) in keys {
            let path = path.key(key);
            if f.check(
                &path,
                text::single_line(key).and_then(|k| hatch::key(section, allowed, k)),
            )
            .is_none()
            {
                continue;
            }
            if value.0.is_empty() {
                f.push(
                    &path,
                    ErrorKind::InvalidValue,
                    "an empty list sets nothing; remove the key",
                );
            }
            let mut good = Vec::new();
            for (i, v) in value.0.iter().enumerate() {
                let item = if value.0.len() == 1 {
                    path.clone()
                } else {
                    path.index(i)
                };
                if let Some(v) =
                    f.check(&item, text::single_line(v.as_str()).and_then(hatch::value))
                {
                    good.push(v.to_owned());
                }
            }
            out.insert(key.clone(), good);
        }
        sections.insert(section.clone(), out);
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_normalise() {
        assert_eq!(signal("hup"), Ok("SIGHUP".into()));
        assert_eq!(signal("SIGUSR1"), Ok("SIGUSR1".into()));
        assert!(signal("SIGKILL").is_err());
        assert!(signal("9").is_err());
    }

    #[test]
    fn users_and_env_names() {
        assert!(user("1000:1000").is_ok());
        assert!(user("nginx").is_ok());
        assert!(user("-u").is_err());
        assert!(user("a:b:c").is_err());
        assert!(env_name("TZ").is_ok());
        assert!(env_name("_X1").is_ok());
        assert!(env_name("1X").is_err());
        assert!(env_name("A-B").is_err());
    }
}
