//! GCP: Secret Manager's notifications on a Pub/Sub topic, read from a pull subscription with
//! google-cloud-pubsub (StreamingPull; the library extends each message's lease while ramlet
//! holds it). A plain `http://` endpoint gets no credentials, as for the Secret Manager client.
//!
//! A message's attributes say what happened (`eventType`) to which secret (`secretId`:
//! `projects/<number>/secrets/<id>`); its data (the resource as JSON) is not read. Every event
//! type that can change what a version or alias resolves to is fetched; `SECRET_ROTATE` (a
//! reminder to rotate, nothing changed yet) and `TOPIC_CONFIGURED` are acknowledged at once.
//!
//! The library retries a stream that cannot be opened for ever, silently; so that status can
//! say when events do not arrive, the listener also checks every 10 s that the
//! endpoint accepts connections.

use std::collections::HashMap;
use std::time::Duration;

use google_cloud_pubsub::client::Subscriber;

use super::{Ack, Health, ListenError};

/// How often the listener checks that Pub/Sub can be reached.
const PROBE_EVERY: Duration = Duration::from_secs(10);
/// How long that check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The public endpoint.
const DEFAULT_ENDPOINT: &str = "https://pubsub.googleapis.com";

/// The event types that change nothing ramlet reads.
const NO_CHANGE: &[&str] = &["SECRET_ROTATE", "TOPIC_CONFIGURED"];

/// What one message asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Fetch the secret with this ID.
    Secret {
        /// The event type.
        what: String,
        /// The secret ID (the last part of `secretId`).
        id: String,
    },
    /// Nothing to fetch; acknowledge.
    Ignore(String),
}

/// Reads one message's attributes.
#[must_use]
pub fn change<S: std::hash::BuildHasher>(attributes: &HashMap<String, String, S>) -> Change {
    let what = attributes.get("eventType").cloned().unwrap_or_default();
    if what.is_empty() {
        return Change::Ignore("no eventType: not a Secret Manager notification".into());
    }
    if NO_CHANGE.contains(&what.as_str()) {
        return Change::Ignore(format!("{what} changes no version"));
    }
    let secret = attributes
        .get("secretId")
        .map(String::as_str)
        .unwrap_or_default();
    match secret.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", _, "secrets", id] if !id.is_empty() => Change::Secret {
            what,
            id: (*id).to_owned(),
        },
        _ => Change::Ignore(format!("{what} without a secretId")),
    }
}

/// Receives from `subscription` until aborted.
pub(super) async fn listen(subscription: String, endpoint: Option<String>, mut health: Health) {
    let address = endpoint
        .as_deref()
        .unwrap_or(DEFAULT_ENDPOINT)
        .trim_end_matches('/');
    loop {
        let mut builder = Subscriber::builder().with_endpoint(address);
        if address.starts_with("http://") {
            builder = builder.with_credentials(
                google_cloud_auth::credentials::anonymous::Builder::new().build(),
            );
        }
        let client = match builder.build().await {
            Ok(client) => client,
            Err(error) => {
                health.failed(ListenError::lasting(format!(
                    "cannot build the Pub/Sub client: {error}; set GOOGLE_APPLICATION_CREDENTIALS or run on a GCP host with a service account"
                )));
                health.back_off().await;
                continue;
            }
        };
        let mut stream = client
            .subscribe(subscription.clone())
            .set_max_lease(Duration::from_hours(1))
            .build();
        let mut probe = tokio::time::interval(PROBE_EVERY);
        let error = loop {
            tokio::select! {
                next = stream.next() => match next {
                    Some(Ok((message, handler))) => {
                        health.ok();
                        let ack = Ack::new(move || handler.ack());
                        match change(&message.attributes) {
                            Change::Secret { what, id } => health.event(vec![id], what, ack),
                            Change::Ignore(why) => {
                                tracing::debug!(%subscription, %why, "an event ramlet has nothing to do for");
                                ack.ack();
                            }
                        }
                    }
                    Some(Err(error)) => break describe(&error).at(&subscription),
                    None => break ListenError::transient(format!("{subscription}: the stream ended")),
                },
                _ = probe.tick() => match reachable(address).await {
                    Ok(()) => health.ok(),
                    Err(error) => health.failed(error.at(&subscription)),
                },
            }
        };
        health.failed(error);
        health.back_off().await;
    }
}

/// A stream's error in a line, with what to do; transient unless somebody must act.
fn describe(error: &google_cloud_pubsub::Error) -> ListenError {
    use google_cloud_gax::error::rpc::Code;
    let Some(status) = error.status() else {
        return ListenError::transient(error.to_string());
    };
    let hint = match status.code {
        Code::NotFound => "; check gcp.events.subscription (a pull subscription, one per host)",
        Code::PermissionDenied => {
            "; grant roles/pubsub.subscriber on the subscription to ramlet's service account"
        }
        Code::Unauthenticated => {
            "; the credentials were refused: check GOOGLE_APPLICATION_CREDENTIALS or the host's service account"
        }
        _ => "",
    };
    let message = format!("{}: {}{hint}", status.code.name(), status.message);
    if hint.is_empty() {
        ListenError::transient(message)
    } else {
        ListenError::lasting(message)
    }
}

/// Whether `endpoint` accepts a TCP connection.
async fn reachable(endpoint: &str) -> Result<(), ListenError> {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("https", endpoint));
    let host = rest.split('/').next().unwrap_or_default();
    let address = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:{}", if scheme == "http" { 80 } else { 443 })
    };
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(ListenError::transient(format!(
            "cannot reach {address}: {error}"
        ))),
        Err(_) => Err(ListenError::transient(format!(
            "cannot reach {address}: no answer in {} s",
            PROBE_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_version_event_names_its_secret_id() {
        let got = change(&attributes(&[
            ("eventType", "SECRET_VERSION_ADD"),
            ("secretId", "projects/424242424242/secrets/tls-key"),
            (
                "versionId",
                "projects/424242424242/secrets/tls-key/versions/3",
            ),
            ("dataFormat", "JSON_API_V1"),
        ]));
        assert_eq!(
            got,
            Change::Secret {
                what: "SECRET_VERSION_ADD".into(),
                id: "tls-key".into()
            }
        );
    }

    #[test]
    fn reminders_and_strangers_are_ignored() {
        for pairs in [
            &[
                ("eventType", "SECRET_ROTATE"),
                ("secretId", "projects/1/secrets/a"),
            ][..],
            &[("secretId", "projects/1/secrets/a")][..],
            &[("eventType", "SECRET_UPDATE"), ("secretId", "a")][..],
        ] {
            assert!(matches!(change(&attributes(pairs)), Change::Ignore(_)));
        }
    }
}
