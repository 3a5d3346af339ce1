//! Where a store may send the host's cloud credentials. A spec names its endpoints (`aws.endpoint`,
//! `aws.events.queue`, `gcp.endpoint`, `gcp.events.endpoint`); the host's credentials follow
//! them (a GCP bearer token, a `SigV4` signature with its session token), so a spec author who could
//! point one at their own server would get them. Allowed without a word from the host:
//!
//! - AWS: `https://secretsmanager[-fips].<region>.amazonaws.com[.cn]` and `.api.aws` (dual-stack);
//!   queues at `https://sqs[-fips].<region>.amazonaws.com[.cn]`, `.api.aws`, and the legacy
//!   `https://<region>.queue.amazonaws.com` / `https://queue.amazonaws.com`;
//! - GCP: `https://secretmanager.googleapis.com`, `https://secretmanager.<location>.rep.googleapis.com`,
//!   `https://pubsub.googleapis.com`, `https://<region>-pubsub.googleapis.com`,
//!   `https://pubsub.<location>.rep.googleapis.com`, and their `mtls` names.
//!
//! Anything else (a VPC endpoint, a proxy, a test peer) only when `policy.endpoints` in the host's
//! config names it as `scheme://host[:port]` (no port: any port). Plain `http://` is for
//! loopback hosts only (`localhost`, `127.0.0.0/8`, `[::1]`), in the policy and in specs.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Which service an endpoint is for: each has its own public names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// AWS Secrets Manager (`aws.endpoint`).
    AwsSecretsManager,
    /// Amazon SQS (`aws.events.queue`).
    AwsSqs,
    /// Google Cloud Secret Manager (`gcp.endpoint`).
    GcpSecretManager,
    /// Google Cloud Pub/Sub (`gcp.events.endpoint`).
    GcpPubSub,
    /// An OpenBao or Vault server (`openbao.address`): it has no public name, so the host's
    /// policy names every one.
    Openbao,
}

/// The parts of an endpoint URL that decide where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// The host, lowercase; an IPv6 address without its brackets.
    pub host: String,
    /// The port, if the URL names one.
    pub port: Option<u16>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => write!(f, "{}://{host}:{port}", self.scheme),
            None => write!(f, "{}://{host}", self.scheme),
        }
    }
}

impl Origin {
    /// Parses `scheme://host[:port][/path]`; refuses user information (`user@host`, which would
    /// make `https://secretsmanager.eu-west-1.amazonaws.com@evil.example` go to `evil.example`),
    /// schemes other than `http` and `https`, and hosts that are not DNS names or IP addresses.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("{url:?} is not an http:// or https:// URL"));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(format!(
                "{url:?} has user information before its host; name the host alone"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (address, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: an IPv6 host needs its closing `]`"))?;
            address
                .parse::<Ipv6Addr>()
                .map_err(|_| format!("{url:?}: {address:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').unwrap_or(after)),
            };
            (address.to_ascii_lowercase(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
                None => (authority.to_ascii_lowercase(), None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("{url:?}: {p:?} is not a port"))
            })
            .transpose()?;
        let dns = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !dns && host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{url:?} has no valid host"));
        }
        Ok(Self { scheme, host, port })
    }

    /// Whether the host is this machine itself.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
            || self
                .host
                .parse::<Ipv6Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether this origin, as a `policy.endpoints` entry, allows `endpoint`.
    fn allows(&self, endpoint: &Self) -> bool {
        self.scheme == endpoint.scheme
            && self.host == endpoint.host
            && self.port.is_none_or(|port| endpoint.port == Some(port))
    }
}

/// Checks one `policy.endpoints` entry: `scheme://host[:port]`, nothing after it, `http://`
/// only for loopback.
pub fn check_entry(entry: &str) -> Result<Origin, String> {
    let origin = Origin::parse(entry)?;
    let after = entry.split_once("://").map_or("", |(_, rest)| rest);
    if after.contains(['/', '?', '#']) {
        return Err(format!(
            "{entry:?}: name `scheme://host[:port]` only, without a path"
        ));
    }
    if origin.scheme == "http" && !origin.is_loopback() {
        return Err(format!(
            "{entry:?}: plain http:// is allowed for loopback hosts only (credentials would cross the network in clear)"
        ));
    }
    Ok(origin)
}

/// Why `url`, named by a spec for `service`, may not receive this host's credentials; `None`
/// when it may. `allowed` are the host's `policy.endpoints`.
#[must_use]
pub fn refusal(url: &str, service: Service, allowed: &[Origin]) -> Option<String> {
    let origin = match Origin::parse(url) {
        Ok(origin) => origin,
        Err(e) => return Some(e),
    };
    if origin.scheme == "http" && !origin.is_loopback() {
        return Some(format!(
            "{url} is plain http:// to another machine: the host's credentials would cross the network in clear; use https://"
        ));
    }
    let public = origin.scheme == "https"
        && origin.port.is_none_or(|port| port == 443)
        && is_public(&origin.host, service);
    if public || allowed.iter().any(|entry| entry.allows(&origin)) {
        return None;
    }
    let whose = match service {
        Service::Openbao => "an OpenBao server has no public name".to_owned(),
        _ => format!("it is not {}'s own", service.provider()),
    };
    Some(format!(
        "{origin} is not an endpoint this host sends its credentials to: {whose}, and the host's policy.endpoints does not name it (the host's admin can add {origin} there)"
    ))
}

impl Service {
    fn provider(self) -> &'static str {
        match self {
            Self::AwsSecretsManager | Self::AwsSqs => "AWS",
            Self::GcpSecretManager | Self::GcpPubSub => "Google Cloud",
            Self::Openbao => "OpenBao",
        }
    }
}

/// Whether `host` is one of the service's own public names (see the module's docs).
fn is_public(host: &str, service: Service) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    match service {
        Service::AwsSecretsManager => aws(&labels, &["secretsmanager", "secretsmanager-fips"]),
        Service::AwsSqs => {
            aws(&labels, &["sqs", "sqs-fips"])
                || host == "queue.amazonaws.com"
                || matches!(labels.as_slice(), [region, "queue", "amazonaws", "com"] if aws_region(region))
        }
        Service::GcpSecretManager => google(&labels, "secretmanager"),
        Service::Openbao => false,
        Service::GcpPubSub => {
            google(&labels, "pubsub")
                || matches!(labels.as_slice(), [name, "googleapis", "com"]
                    if name.strip_suffix("-pubsub").is_some_and(gcp_location))
        }
    }
}

/// `<service>.<region>.amazonaws.com`, `.amazonaws.com.cn` or `.api.aws`.
fn aws(labels: &[&str], services: &[&str]) -> bool {
    match labels {
        [service, region, "amazonaws", "com"]
        | [service, region, "amazonaws", "com", "cn"]
        | [service, region, "api", "aws"] => services.contains(service) && aws_region(region),
        _ => false,
    }
}

/// `<service>.googleapis.com`, `<service>.mtls.googleapis.com`,
/// `<service>.<location>.rep.googleapis.com`.
fn google(labels: &[&str], service: &str) -> bool {
    match labels {
        [name, "googleapis", "com"] | [name, "mtls", "googleapis", "com"] => *name == service,
        [name, location, "rep", "googleapis", "com"] => *name == service && gcp_location(location),
        _ => false,
    }
}

/// An AWS region name: `eu-west-1`, `us-gov-west-1`, `cn-north-1`.
fn aws_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    parts.len() >= 3
        && parts
            .last()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// A Google Cloud location: `europe-west1`, `us-central1`.
fn gcp_location(label: &str) -> bool {
    label.contains('-')
        && label.ends_with(|c: char| c.is_ascii_digit())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str, service: Service) -> bool {
        refusal(url, service, &[]).is_some()
    }

    #[test]
    fn the_providers_own_endpoints_need_no_policy() {
        for (url, service) in [
            (
                "https://secretsmanager.eu-west-1.amazonaws.com",
                Service::AwsSecretsManager,
            ),
            (
                "https://secretsmanager-fips.us-gov-west-1.amazonaws.com/",
                Service::AwsSecretsManager,
            ),
            (
                "https://secretsmanager.cn-north-1.amazonaws.com.cn",
                Service::AwsSecretsManager,
            ),
            (
                "https://secretsmanager.eu-west-1.api.aws",
                Service::AwsSecretsManager,
            ),
            (
                "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
                Service::AwsSqs,
            ),
            (
                "https://eu-west-1.queue.amazonaws.com/123456789012/q",
                Service::AwsSqs,
            ),
            (
                "https://secretmanager.googleapis.com",
                Service::GcpSecretManager,
            ),
            (
                "https://secretmanager.europe-west1.rep.googleapis.com",
                Service::GcpSecretManager,
            ),
            ("https://pubsub.googleapis.com:443", Service::GcpPubSub),
            (
                "https://europe-west1-pubsub.googleapis.com",
                Service::GcpPubSub,
            ),
        ] {
            assert_eq!(refusal(url, service, &[]), None, "{url}");
        }
    }

    #[test]
    fn anything_else_is_refused_unless_the_policy_names_it() {
        // Another service's name, another port, plain http, look-alikes, user information.
        for (url, service) in [
            (
                "https://sqs.eu-west-1.amazonaws.com",
                Service::AwsSecretsManager,
            ),
            (
                "https://secretsmanager.eu-west-1.amazonaws.com:8443",
                Service::AwsSecretsManager,
            ),
            (
                "http://secretsmanager.eu-west-1.amazonaws.com",
                Service::AwsSecretsManager,
            ),
            (
                "https://secretsmanager.eu-west-1.amazonaws.com.evil.example",
                Service::AwsSecretsManager,
            ),
            (
                "https://secretsmanager.eu-west-1.amazonaws.com@evil.example",
                Service::AwsSecretsManager,
            ),
            (
                "https://evil.example/secretmanager.googleapis.com",
                Service::GcpSecretManager,
            ),
            (
                "https://secretmanager.googleapis.com.evil.example",
                Service::GcpSecretManager,
            ),
            ("https://127.0.0.1:8443", Service::GcpSecretManager),
            ("http://127.0.0.1:8085", Service::GcpPubSub),
        ] {
            assert!(refused(url, service), "{url} was allowed");
        }
        let policy = [
            check_entry("https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com").unwrap(),
            check_entry("http://127.0.0.1").unwrap(),
        ];
        assert_eq!(
            refusal(
                "https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com",
                Service::AwsSecretsManager,
                &policy
            ),
            None
        );
        assert_eq!(
            refusal("http://127.0.0.1:8085", Service::GcpPubSub, &policy),
            None
        );
        assert!(refusal("https://127.0.0.1:8443", Service::GcpPubSub, &policy).is_some());
    }

    #[test]
    fn a_policy_entry_is_an_origin_and_plain_http_only_for_loopback() {
        assert_eq!(
            check_entry("https://proxy.corp:8443").unwrap().port,
            Some(8443)
        );
        assert!(check_entry("http://[::1]:9000").is_ok());
        assert!(check_entry("http://proxy.corp").is_err());
        assert!(check_entry("https://proxy.corp/path").is_err());
        assert!(check_entry("proxy.corp").is_err());
        assert!(check_entry("https://user@proxy.corp").is_err());
    }
}
