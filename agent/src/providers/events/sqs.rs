//! AWS: Secrets Manager's events, routed by an EventBridge rule to an SQS queue, read with SQS
//! long polling (aws-sdk-sqs). The queue URL's scheme and host are the SQS endpoint; requests
//! are signed for the store's region with the standard credential chain.
//!
//! A message body is an EventBridge event (or that event inside an SNS notification). Its
//! secret comes from `detail.requestParameters.secretId` (API calls through CloudTrail:
//! `PutSecretValue`, `UpdateSecretVersionStage`, ...), `detail.responseElements.arn`, or
//! `detail.additionalEventData.SecretId` (service events: `RotationSucceeded`). An ARN is
//! also matched by the name inside it (`arn:...:secret:prod/db-AbCdEf` is `prod/db`).
//! Read-only calls and anything else are deleted without a fetch.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata as _, SdkError};
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use serde_json::Value;

use super::{Ack, Health, ListenError};

/// How long one `ReceiveMessage` waits for a message (the SQS maximum).
const WAIT: Duration = Duration::from_secs(20);
/// How long past [`WAIT`] a `ReceiveMessage` may take before the endpoint counts as down.
const ANSWER_MARGIN: Duration = Duration::from_secs(10);
/// How long a received message stays hidden from other receivers while ramlet fetches the
/// secret; a message ramlet could not settle comes back after it.
const VISIBILITY: Duration = Duration::from_mins(5);

/// The events that can change what a secret resolves to.
const CHANGES: &[&str] = &[
    "PutSecretValue",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "RotationSucceeded",
    "RestoreSecret",
    "DeleteSecret",
    "CancelRotateSecret",
];

/// What one message asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Fetch the secret known by these names.
    Secret {
        /// The event's name (`PutSecretValue`).
        what: String,
        /// The ARN and name, or the name, as the event gives them.
        names: Vec<String>,
    },
    /// Nothing to fetch; delete the message.
    Ignore(String),
}

/// Reads one message body.
#[must_use]
pub fn change(body: &str) -> Change {
    let Ok(mut event) = serde_json::from_str::<Value>(body) else {
        return Change::Ignore("not JSON".to_owned());
    };
    // Through SNS: the event is the notification's `Message`.
    if event.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(inner) = event.get("Message").and_then(Value::as_str)
    {
        match serde_json::from_str(inner) {
            Ok(inner) => event = inner,
            Err(_) => return Change::Ignore("an SNS notification without a JSON event".into()),
        }
    }
    if event.get("source").and_then(Value::as_str) != Some("aws.secretsmanager") {
        return Change::Ignore("not an aws.secretsmanager event".to_owned());
    }
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let what = detail
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !CHANGES.contains(&what.as_str()) {
        return Change::Ignore(format!("{what:?} does not change a secret"));
    }
    let mut names = Vec::new();
    for pointer in [
        "/requestParameters/secretId",
        "/responseElements/arn",
        "/additionalEventData/SecretId",
    ] {
        if let Some(id) = detail.pointer(pointer).and_then(Value::as_str) {
            add(&mut names, id);
        }
    }
    if names.is_empty() {
        return Change::Ignore(format!("{what} names no secret"));
    }
    Change::Secret { what, names }
}

/// Adds `id` and, for an ARN, the secret's name inside it.
fn add(names: &mut Vec<String>, id: &str) {
    let mut push = |name: &str| {
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    };
    push(id);
    if let Some((_, name)) = id
        .starts_with("arn:")
        .then(|| id.split_once(":secret:"))
        .flatten()
    {
        // Secrets Manager appends `-` and six random characters to the name in an ARN.
        let bytes = name.as_bytes();
        let suffixed = bytes.len() > 7
            && bytes[bytes.len() - 7] == b'-'
            && bytes[bytes.len() - 6..]
                .iter()
                .all(u8::is_ascii_alphanumeric);
        if suffixed {
            push(&name[..name.len() - 7]);
        }
    }
}

/// Receives from `queue` until aborted: long polls, one event per change, failures reported
/// and backed off.
pub(super) async fn listen(queue: String, region: String, mut health: Health) {
    let endpoint = queue
        .split_once("://")
        .and_then(|(scheme, rest)| {
            rest.split_once('/')
                .map(|(host, _)| format!("{scheme}://{host}"))
        })
        .unwrap_or_else(|| queue.clone());
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .endpoint_url(endpoint)
        .load()
        .await;
    let client = Client::new(&config);
    loop {
        let receive = client
            .receive_message()
            .queue_url(&queue)
            .wait_time_seconds(secs(WAIT))
            .visibility_timeout(secs(VISIBILITY))
            .max_number_of_messages(10)
            .send();
        // A long poll answers within WAIT; an endpoint that does not is as good as down.
        let out = match tokio::time::timeout(WAIT + ANSWER_MARGIN, receive).await {
            Ok(Ok(out)) => out,
            failed => {
                let why = match failed {
                    Ok(Err(error)) => describe(&error),
                    _ => ListenError::transient(format!(
                        "no answer to a {} s long poll within {} s",
                        WAIT.as_secs(),
                        (WAIT + ANSWER_MARGIN).as_secs()
                    )),
                };
                health.failed(why.at(&queue));
                health.back_off().await;
                continue;
            }
        };
        health.ok();
        for message in out.messages.unwrap_or_default() {
            let Some(receipt) = message.receipt_handle else {
                continue;
            };
            let ack = {
                let (client, queue) = (client.clone(), queue.clone());
                Ack::new(move || {
                    tokio::spawn(async move {
                        let deleted = client
                            .delete_message()
                            .queue_url(&queue)
                            .receipt_handle(receipt)
                            .send()
                            .await;
                        if let Err(error) = deleted {
                            tracing::warn!(%queue, error = %DisplayErrorContext(&error), "cannot delete a handled event; it comes back once");
                        }
                    });
                })
            };
            match change(message.body.as_deref().unwrap_or_default()) {
                Change::Secret { what, names } => health.event(names, what, ack),
                Change::Ignore(why) => {
                    tracing::debug!(%queue, %why, "an event ramlet has nothing to do for");
                    ack.ack();
                }
            }
        }
    }
}

/// A failed `ReceiveMessage` in a line: the service's code and message with what to do, or,
/// when SQS was not reached, the innermost cause (`Connection refused (os error 111)`).
/// Transient unless somebody must act (a permission, the queue's name).
fn describe<R: std::fmt::Debug>(error: &SdkError<ReceiveMessageError, R>) -> ListenError {
    if let SdkError::ServiceError(service) = error {
        let err = service.err();
        let code = err.code().unwrap_or("unknown error");
        let hint = match code {
            "AccessDenied" | "AccessDeniedException" | "KMS.AccessDeniedException" => {
                "; allow sqs:ReceiveMessage and sqs:DeleteMessage on the queue (and kms:Decrypt on its key) for ramlet's role"
            }
            "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" => {
                "; check aws.events.queue and the store's region"
            }
            _ => "",
        };
        let message = format!("{code}: {}{hint}", err.message().unwrap_or_default());
        return if hint.is_empty() {
            ListenError::transient(message)
        } else {
            ListenError::lasting(message)
        };
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = DisplayErrorContext(error).to_string();
    if text.contains("credentials") {
        // An instance profile may still come (the metadata service slow at boot).
        return ListenError::transient(format!(
            "no AWS credentials ({cause}); give the host an instance profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID for ramlet's service"
        ));
    }
    ListenError::transient(format!("cannot reach SQS: {cause}"))
}

/// Whole seconds, as SQS takes them.
fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, detail: &str) -> String {
        format!(
            r#"{{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.secretsmanager","account":"123456789012","region":"eu-west-1","resources":[],"detail":{{"eventSource":"secretsmanager.amazonaws.com","eventName":"{name}",{detail}}}}}"#
        )
    }

    #[test]
    fn an_api_call_names_its_secret_by_arn_and_name() {
        let body = event(
            "PutSecretValue",
            r#""requestParameters":{"secretId":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbC123","clientRequestToken":"t"},"responseElements":{"arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbC123","versionId":"v2"}"#,
        );
        assert_eq!(
            change(&body),
            Change::Secret {
                what: "PutSecretValue".into(),
                names: vec![
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbC123".into(),
                    "prod/db".into()
                ],
            }
        );
        let by_name = event(
            "UpdateSecretVersionStage",
            r#""requestParameters":{"secretId":"app/signing","versionStage":"AWSCURRENT"}"#,
        );
        assert!(
            matches!(change(&by_name), Change::Secret { names, .. } if names == ["app/signing"])
        );
    }

    #[test]
    fn a_rotation_and_an_sns_wrapped_event_are_read() {
        let rotated = event(
            "RotationSucceeded",
            r#""additionalEventData":{"SecretId":"arn:aws:secretsmanager:eu-west-1:1:secret:db-xYz789"}"#,
        );
        let wrapped = serde_json::json!({"Type": "Notification", "Message": rotated}).to_string();
        assert!(
            matches!(change(&wrapped), Change::Secret { what, names } if what == "RotationSucceeded" && names[1] == "db")
        );
    }

    #[test]
    fn reads_and_strangers_are_ignored() {
        let read = event(
            "GetSecretValue",
            r#""requestParameters":{"secretId":"prod/db"}"#,
        );
        assert!(matches!(change(&read), Change::Ignore(_)));
        assert!(matches!(
            change(r#"{"source":"aws.s3","detail":{}}"#),
            Change::Ignore(_)
        ));
        assert!(matches!(change("hello"), Change::Ignore(_)));
        assert!(matches!(
            change(&event("PutSecretValue", r#""requestParameters":{}"#)),
            Change::Ignore(_)
        ));
    }
}
