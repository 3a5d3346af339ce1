//! Validation of `SecretStore` documents.

use std::path::PathBuf;

use crate::error::{Check, ErrorKind};
use crate::fspath;
use crate::model::{EventSource, Events, Origin, Provider, SecretStore};
use crate::path::FieldPath;
use crate::quantity::{self, DEFAULT_REFRESH, MAX_REFRESH, MIN_REFRESH};
use crate::raw;
use crate::text;

use super::{Findings, Rejected, endpoint, metadata};

/// The most consumers `rollout.canary` may send a new version to first.
const MAX_CANARY: u32 = 1000;

/// Validates one `SecretStore` document.
pub(crate) fn validate(
    doc: &raw::SecretStoreDocument,
    origin: Origin,
) -> Result<SecretStore, Findings> {
    let mut findings = Findings::default();
    let name = metadata(&mut findings, &doc.metadata);
    let spec = &doc.spec;
    let path = FieldPath::of(&["spec"]);

    let refresh_interval = findings
        .optional(
            &path.key("refreshInterval"),
            spec.refresh_interval.as_deref(),
            |t| quantity::duration(t, MIN_REFRESH, MAX_REFRESH),
        )
        .map(|d| d.unwrap_or(DEFAULT_REFRESH));

    let set: Vec<&str> = [
        ("aws", spec.aws.is_some()),
        ("gcp", spec.gcp.is_some()),
        ("openbao", spec.openbao.is_some()),
        ("creds", spec.creds.is_some()),
        ("age", spec.age.is_some()),
        ("file", spec.file.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let provider = match set.as_slice() {
        [] => {
            findings.push(
                &path,
                ErrorKind::MissingField,
                "set one provider: aws, gcp, openbao, creds, age or file",
            );
            None
        }
        [_] => provider(
            &mut findings,
            &path,
            spec,
            refresh_interval.as_ref().ok().copied(),
        ),
        [_, second, ..] => {
            findings.push(
                &path.key(second),
                ErrorKind::InvalidValue,
                format!(
                    "a store has exactly one provider; this one sets {}",
                    set.join(" and ")
                ),
            );
            None
        }
    };

    let events = events(&mut findings, &path, spec);
    let canary = spec
        .rollout
        .as_ref()
        .and_then(|r| r.canary)
        .map_or(Ok(1), |canary| {
            if (1..=MAX_CANARY).contains(&canary) {
                Ok(canary)
            } else {
                findings.push(
                    &path.key("rollout").key("canary"),
                    ErrorKind::InvalidValue,
                    format!("{canary} is not between 1 and {MAX_CANARY}"),
                );
                Err(Rejected)
            }
        });
    let canary_selector = spec
        .rollout
        .as_ref()
        .and_then(|r| r.canary_selector.as_ref())
        .map(|s| {
            super::container::host_selector(
                &mut findings,
                &path.key("rollout").key("canarySelector"),
                s,
            )
        });
    match (name, refresh_interval, provider, events, canary) {
        (Some(name), Ok(refresh_interval), Some(provider), Ok(events), Ok(canary))
            if findings.0.is_empty() =>
        {
            Ok(SecretStore {
                name,
                origin,
                refresh_interval,
                provider,
                events,
                canary,
                canary_selector,
            })
        }
        _ => Err(findings),
    }
}

fn provider(
    findings: &mut Findings,
    path: &FieldPath,
    spec: &raw::SecretStoreSpec,
    refresh: Option<std::time::Duration>,
) -> Option<Provider> {
    if let Some(aws) = &spec.aws {
        let path = path.key("aws");
        let region = findings.check(&path.key("region"), aws_region(&aws.region));
        let endpoint = findings.optional(&path.key("endpoint"), aws.endpoint.as_deref(), endpoint);
        return Some(Provider::Aws {
            region: region?,
            endpoint: endpoint.ok()?,
        });
    }
    if let Some(gcp) = &spec.gcp {
        let path = path.key("gcp");
        let project = findings.check(&path.key("project"), gcp_project(&gcp.project));
        let endpoint = findings.optional(&path.key("endpoint"), gcp.endpoint.as_deref(), endpoint);
        return Some(Provider::Gcp {
            project: project?,
            endpoint: endpoint.ok()?,
        });
    }
    if let Some(openbao) = &spec.openbao {
        return super::openbao::store(findings, &path.key("openbao"), openbao, refresh);
    }
    if let Some(creds) = &spec.creds {
        let directory = findings.check(
            &path.key("creds").key("directory"),
            text::single_line(&creds.directory).and_then(fspath::host_directory),
        )?;
        return Some(Provider::Creds {
            directory: PathBuf::from(directory),
        });
    }
    if let Some(age) = &spec.age {
        return age_store(findings, &path.key("age"), age);
    }
    let file = spec.file.as_ref()?;
    let directory = findings.check(
        &path.key("file").key("directory"),
        text::single_line(&file.directory).and_then(fspath::host_directory),
    )?;
    Some(Provider::File {
        directory: PathBuf::from(directory),
    })
}

/// An `age` store: a folder inside the spec directory, one identity on the host, and the
/// recipients `ramlet seal` encrypts to.
fn age_store(findings: &mut Findings, path: &FieldPath, age: &raw::AgeStore) -> Option<Provider> {
    let directory = findings.check(
        &path.key("directory"),
        text::single_line(&age.directory).and_then(fspath::relative),
    );
    let identity = super::openbao::host_key(
        findings,
        path,
        ("identity", age.identity.as_deref()),
        ("identityCredential", age.identity_credential.as_deref()),
        "set `identity` (an age identity file) or `identityCredential` (one sealed with systemd-creds)",
    );
    let mut recipients = Vec::new();
    for (i, recipient) in age.recipients.iter().enumerate() {
        if let Some(r) = findings.check(&path.key("recipients").index(i), age_recipient(recipient))
        {
            recipients.push(r);
        }
    }
    if recipients.len() != age.recipients.len() {
        return None;
    }
    Some(Provider::Age {
        directory: PathBuf::from(directory?),
        identity: identity?,
        recipients,
    })
}

/// An age X25519 recipient: `age1` and Bech32 characters (the agent parses it fully).
fn age_recipient(value: &str) -> Check<String> {
    const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let ok = value
        .strip_prefix("age1")
        .is_some_and(|rest| rest.len() == 58 && rest.chars().all(|c| BECH32.contains(c)));
    if ok {
        Ok(value.to_owned())
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!(
                "{value:?} is not an age recipient; give a public key such as `age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p` (`age-keygen -y` prints it)"
            ),
        ))
    }
}

/// The store's `events`, under its `aws` or `gcp`.
fn events(
    findings: &mut Findings,
    path: &FieldPath,
    spec: &raw::SecretStoreSpec,
) -> Result<Option<Events>, Rejected> {
    let (path, source, fallback) =
        if let Some(events) = spec.aws.as_ref().and_then(|a| a.events.as_ref()) {
            let path = path.key("aws").key("events");
            let region = spec
                .aws
                .as_ref()
                .map(|a| a.region.clone())
                .unwrap_or_default();
            let queue = findings.check(&path.key("queue"), sqs_queue(&events.queue));
            let source = queue.map(|queue| EventSource::Sqs { queue, region });
            (path, source, events.fallback_interval.as_deref())
        } else if let Some(events) = spec.gcp.as_ref().and_then(|g| g.events.as_ref()) {
            let path = path.key("gcp").key("events");
            let subscription = findings.check(
                &path.key("subscription"),
                subscription(&events.subscription),
            );
            let endpoint =
                findings.optional(&path.key("endpoint"), events.endpoint.as_deref(), endpoint);
            let source = match (subscription, endpoint) {
                (Some(subscription), Ok(endpoint)) => Some(EventSource::PubSub {
                    subscription,
                    endpoint,
                }),
                _ => None,
            };
            (path, source, events.fallback_interval.as_deref())
        } else {
            return Ok(None);
        };
    let fallback = findings.optional(&path.key("fallbackInterval"), fallback, |t| {
        quantity::duration(t, MIN_REFRESH, MAX_REFRESH)
    })?;
    let source = source.ok_or(Rejected)?;
    Ok(Some(Events {
        source,
        fallback_interval: fallback.unwrap_or(DEFAULT_REFRESH),
    }))
}

/// An SQS queue URL: `http(s)://host/<account>/<queue>`.
fn sqs_queue(url: &str) -> Check<String> {
    let url = endpoint(url)?;
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        [account, queue]
            if !account.is_empty()
                && account.bytes().all(|b| b.is_ascii_digit())
                && (1..=80).contains(&queue.len())
                && queue
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') =>
        {
            Ok(url)
        }
        _ => Err((
            ErrorKind::InvalidValue,
            format!(
                "{url:?} is not an SQS queue URL such as `https://sqs.eu-west-1.amazonaws.com/123456789012/ramlet`"
            ),
        )),
    }
}

/// A Pub/Sub subscription name: `projects/<project>/subscriptions/<id>`, the ID 3 to 255
/// letters, digits and `-_.~+%`, starting with a letter.
fn subscription(name: &str) -> Check<String> {
    let parts: Vec<&str> = name.split('/').collect();
    let valid = match parts.as_slice() {
        ["projects", project, "subscriptions", id] => {
            gcp_project(project).is_ok()
                && (3..=255).contains(&id.len())
                && id.starts_with(|c: char| c.is_ascii_alphabetic())
                && !id.starts_with("goog")
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b))
        }
        _ => false,
    };
    if valid {
        Ok(name.to_owned())
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!(
                "{name:?} is not a Pub/Sub subscription such as `projects/my-project/subscriptions/ramlet`"
            ),
        ))
    }
}

/// An AWS region: `eu-west-1`, `us-gov-west-1`, `cn-north-1`.
fn aws_region(region: &str) -> Check<String> {
    let parts: Vec<&str> = region.split('-').collect();
    let valid = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(region.to_owned())
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!("{region:?} is not an AWS region such as `eu-west-1`"),
        ))
    }
}

/// A GCP project ID (6 to 30 lowercase letters, digits and `-`, starting with a letter) or a
/// project number.
fn gcp_project(project: &str) -> Check<String> {
    let number =
        !project.is_empty() && project.len() <= 20 && project.bytes().all(|b| b.is_ascii_digit());
    let id = (6..=30).contains(&project.len())
        && project.starts_with(|c: char| c.is_ascii_lowercase())
        && !project.ends_with('-')
        && project
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if number || id {
        Ok(project.to_owned())
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!("{project:?} is not a GCP project ID (such as `my-project`) or project number"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_projects() {
        for good in ["eu-west-1", "us-gov-west-1", "ap-southeast-2"] {
            assert!(aws_region(good).is_ok(), "{good}");
        }
        for bad in ["eu-west", "EU-west-1", "euwest1", "eu--1", ""] {
            assert!(aws_region(bad).is_err(), "{bad}");
        }
        for good in ["my-project", "prod-123456", "123456789012"] {
            assert!(gcp_project(good).is_ok(), "{good}");
        }
        for bad in ["My-Project", "short", "1abcdef", "proj-", "a b cdef", ""] {
            assert!(gcp_project(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queues_and_subscriptions() {
        for good in [
            "https://sqs.eu-west-1.amazonaws.com/123456789012/ramlet",
            "http://127.0.0.1:4566/000000000000/secret-events.fifo",
        ] {
            assert!(sqs_queue(good).is_ok(), "{good}");
        }
        for bad in [
            "sqs.eu-west-1.amazonaws.com/123456789012/ramlet",
            "https://sqs.eu-west-1.amazonaws.com/ramlet",
            "https://sqs.eu-west-1.amazonaws.com/12345/a/b",
            "https://sqs.eu-west-1.amazonaws.com/acct/ramlet",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/bad queue",
        ] {
            assert!(sqs_queue(bad).is_err(), "{bad}");
        }
        for good in [
            "projects/my-project/subscriptions/ramlet",
            "projects/123456789012/subscriptions/secret-events.host_1",
        ] {
            assert!(subscription(good).is_ok(), "{good}");
        }
        for bad in [
            "projects/my-project/topics/ramlet",
            "projects/my-project/subscriptions/1abc",
            "projects/my-project/subscriptions/goog-x",
            "projects/My/subscriptions/ramlet",
            "subscriptions/ramlet",
            "projects/my-project/subscriptions/a\nb",
        ] {
            assert!(subscription(bad).is_err(), "{bad}");
        }
    }
}
