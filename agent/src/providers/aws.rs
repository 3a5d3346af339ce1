//! The `aws` store: AWS Secrets Manager through aws-sdk-secretsmanager.
//!
//! Credentials come from the SDK's standard chain (environment, shared profile, web identity,
//! ECS and EC2 instance metadata); the region and an optional endpoint come from the store.
//!
//! Change check: one `DescribeSecret` per secret each refresh tells which version ID holds the
//! stage asked for (`AWSCURRENT` for `latest`). Only a version ramlet does not hold is read:
//! several `AWSCURRENT` reads of one refresh go in `BatchGetSecretValue` calls of up to 20,
//! anything else (and a batch the policy does not allow, or that AWS throttles) in
//! `GetSecretValue` with the version ID always explicit, so the value read is the version that
//! was described.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::Blob;
use ramlet_specs::model::SecretVersion;

use super::{BoxFuture, ErrorKind, Fetched, Limits, ProviderError, Request, SecretProvider};
use crate::secrets::{Secret, SecretBytes};

/// The most secrets one `BatchGetSecretValue` call may name.
const BATCH: usize = 20;

/// A Secrets Manager client for one region (and endpoint).
#[derive(Debug, Clone)]
pub struct AwsProvider {
    client: Client,
}

/// What `DescribeSecret` said about one request.
enum Described {
    Unchanged,
    /// Read this version ID.
    Read(String),
}

impl AwsProvider {
    /// A client for `region`, at `endpoint` if given.
    pub async fn connect(region: &str, endpoint: Option<&str>) -> Result<Self, ProviderError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()));
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        Ok(Self {
            client: Client::new(&config),
        })
    }

    async fn describe(&self, request: &Request) -> Result<Described, ProviderError> {
        let name = &request.name;
        let out = self
            .client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| error(name, "DescribeSecret", &e))?;
        let stages = out.version_ids_to_stages().cloned().unwrap_or_default();
        let with_stage = |stage: &str| {
            stages
                .iter()
                .find(|(_, s)| s.iter().any(|s| s == stage))
                .map(|(id, _)| id.clone())
                .ok_or_else(|| {
                    ProviderError::new(
                        ErrorKind::NotFound,
                        format!("secret {name:?} has no version with the stage {stage}"),
                    )
                })
        };
        let id = match &request.version {
            SecretVersion::Stage(stage) => with_stage(stage)?,
            SecretVersion::VersionId(id) => id.clone(),
            // `latest`; validation admits no other shapes for an AWS store.
            _ => with_stage("AWSCURRENT")?,
        };
        Ok(if request.known.as_deref() == Some(id.as_str()) {
            Described::Unchanged
        } else {
            Described::Read(id)
        })
    }

    async fn get(&self, name: &str, version_id: &str) -> Result<Fetched, ProviderError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| error(name, "GetSecretValue", &e))?;
        value(
            name,
            out.version_id.unwrap_or_else(|| version_id.to_owned()),
            out.secret_string,
            out.secret_binary,
        )
    }

    /// Reads the current version of up to [`BATCH`] secrets in one call; `None` for a secret
    /// the answer does not cover (it is then read on its own).
    async fn batch(
        &self,
        names: &[&str],
    ) -> Result<Vec<Option<Result<Fetched, ProviderError>>>, ProviderError> {
        let out = self
            .client
            .batch_get_secret_value()
            .set_secret_id_list(Some(names.iter().map(|n| (*n).to_owned()).collect()))
            .send()
            .await
            .map_err(|e| error(&names.join(", "), "BatchGetSecretValue", &e))?;
        let mut found: BTreeMap<String, Result<Fetched, ProviderError>> = BTreeMap::new();
        for entry in out.secret_values.unwrap_or_default() {
            let keys: Vec<String> = entry.name.iter().chain(entry.arn.iter()).cloned().collect();
            let name = keys.first().cloned().unwrap_or_default();
            let result = value(
                &name,
                entry.version_id.unwrap_or_default(),
                entry.secret_string,
                entry.secret_binary,
            );
            for key in keys {
                found.insert(key, result.clone());
            }
        }
        for failure in out.errors.unwrap_or_default() {
            let id = failure.secret_id.unwrap_or_default();
            let code = failure.error_code.unwrap_or_default();
            let message = failure.message.unwrap_or_default();
            found.insert(
                id.clone(),
                Err(by_code(&id, "GetSecretValue", &code, &message)),
            );
        }
        Ok(names.iter().map(|n| found.remove(*n)).collect())
    }
}

/// What an `aws` store can do: versions by ID, change events through SQS.
pub const CAPABILITIES: super::Capabilities = super::Capabilities {
    versions: super::Versions::ById,
    folder: None,
    local: false,
    plain_at_rest: false,
    events: true,
};

impl SecretProvider for AwsProvider {
    fn capabilities(&self) -> super::Capabilities {
        CAPABILITIES
    }
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        limits: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        Box::pin(async move {
            let calls = requests.iter().map(|r| self.describe(r)).collect();
            let described = super::each_bounded(limits, calls).await;
            let mut results: Vec<Option<Result<Fetched, ProviderError>>> =
                vec![None; requests.len()];
            let mut current = Vec::new();
            let mut pinned = Vec::new();
            for (i, described) in described.into_iter().enumerate() {
                match described {
                    Ok(Described::Unchanged) => results[i] = Some(Ok(Fetched::Unchanged)),
                    Ok(Described::Read(id)) if requests[i].version == SecretVersion::Latest => {
                        current.push((i, id));
                    }
                    Ok(Described::Read(id)) => pinned.push((i, id)),
                    Err(error) => results[i] = Some(Err(error)),
                }
            }
            // Several current versions: in batches. One alone costs the same either way.
            if current.len() > 1 {
                for chunk in current.chunks(BATCH) {
                    let names: Vec<&str> = chunk
                        .iter()
                        .map(|(i, _)| requests[*i].name.as_str())
                        .collect();
                    match super::bounded(limits, self.batch(&names)).await {
                        Ok(answers) => {
                            for ((i, _), answer) in chunk.iter().zip(answers) {
                                results[*i] = answer;
                            }
                        }
                        // No batch permission, or the batch's own quota spent (it is far
                        // smaller than GetSecretValue's): each one on its own, below.
                        Err(error)
                            if matches!(
                                error.kind(),
                                ErrorKind::PermissionDenied | ErrorKind::Throttled
                            ) =>
                        {
                            tracing::debug!(%error, "BatchGetSecretValue refused; reading one by one");
                        }
                        Err(error) => {
                            for (i, _) in chunk {
                                results[*i] = Some(Err(error.clone()));
                            }
                        }
                    }
                }
            }
            let singles: Vec<(usize, String)> = current
                .into_iter()
                .chain(pinned)
                .filter(|(i, _)| results[*i].is_none())
                .collect();
            let calls = singles
                .iter()
                .map(|(i, id)| self.get(&requests[*i].name, id))
                .collect();
            let read = super::each_bounded(limits, calls).await;
            for ((i, _), answer) in singles.iter().zip(read) {
                results[*i] = Some(answer);
            }
            results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(ProviderError::unavailable("no answer"))))
                .collect()
        })
    }
}

/// A secret's value from `SecretString` or `SecretBinary`, moved (not copied) into zeroizing
/// memory.
fn value(
    name: &str,
    version_id: String,
    string: Option<String>,
    binary: Option<Blob>,
) -> Result<Fetched, ProviderError> {
    let bytes = match (string, binary) {
        (Some(text), _) => text.into_bytes(),
        (None, Some(blob)) => blob.into_inner(),
        (None, None) => {
            return Err(ProviderError::not_found(&format!(
                "{name} (version {version_id} has no value)"
            )));
        }
    };
    // The size limit is checked once for every provider, in `stores`.
    Ok(Fetched::New(Secret {
        bytes: SecretBytes::new(bytes),
        version: version_id,
        expires: None,
    }))
}

/// What a failed call means, and what to do about it.
fn error<E, R>(name: &str, operation: &str, e: &SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            by_code(
                name,
                operation,
                err.code().unwrap_or_default(),
                err.message().unwrap_or_default(),
            )
        }
        SdkError::TimeoutError(_) => ProviderError::new(
            ErrorKind::Timeout,
            format!("{operation} {name:?}: timed out"),
        ),
        _ => {
            let text = DisplayErrorContext(e).to_string();
            if text.contains("credentials") {
                ProviderError::new(
                    ErrorKind::Unauthenticated,
                    format!(
                        "{operation} {name:?}: no AWS credentials ({text}); give the host an instance profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID for ramlet's service"
                    ),
                )
            } else {
                ProviderError::unavailable(format!("{operation} {name:?}: {text}"))
            }
        }
    }
}

/// The error for an AWS error code.
fn by_code(name: &str, operation: &str, code: &str, message: &str) -> ProviderError {
    let (kind, hint) = match code {
        "ResourceNotFoundException" => (
            ErrorKind::NotFound,
            "; check the secret's name and the store's region".to_owned(),
        ),
        "AccessDeniedException" => (
            ErrorKind::PermissionDenied,
            format!("; allow secretsmanager:{operation} on this secret for ramlet's role"),
        ),
        "DecryptionFailure" => (
            ErrorKind::PermissionDenied,
            "; allow kms:Decrypt on the secret's KMS key for ramlet's role".to_owned(),
        ),
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => (
            ErrorKind::Unauthenticated,
            "; the credentials were refused: check the host's role or keys".to_owned(),
        ),
        "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            (ErrorKind::Throttled, "; ramlet backs off".to_owned())
        }
        "InvalidRequestException" if message.contains("deletion") => {
            (ErrorKind::NotFound, String::new())
        }
        "InvalidParameterException" | "InvalidRequestException" => {
            (ErrorKind::Misconfigured, String::new())
        }
        _ => (ErrorKind::Unavailable, String::new()),
    };
    ProviderError::new(
        kind,
        format!("{operation} {name:?}: {code}: {message}{hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_say_what_to_do() {
        let denied = by_code("prod/db", "GetSecretValue", "AccessDeniedException", "no");
        assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
        assert!(denied.to_string().contains("secretsmanager:GetSecretValue"));
        let throttled = by_code("a", "DescribeSecret", "ThrottlingException", "slow down");
        assert!(crate::retry::Transient::is_transient(&throttled));
        assert_eq!(
            by_code("a", "DescribeSecret", "ResourceNotFoundException", "").kind(),
            ErrorKind::NotFound
        );
    }
}
