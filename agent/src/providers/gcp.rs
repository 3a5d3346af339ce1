//! The `gcp` store: Google Cloud Secret Manager through google-cloud-secretmanager-v1.
//!
//! Credentials are Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//! application-default login, the metadata server), except for a plain `http://` endpoint,
//! which gets none: a token is never sent in clear text (that is how tests reach a local fake).
//!
//! Change check: `AccessSecretVersion` of the version asked for, then its returned name
//! (`projects/<number>/secrets/<id>/versions/<n>`) compared with the one ramlet holds. Access
//! is the cheap call here (90,000 a minute per project against 600 for metadata reads). The
//! payload's CRC32C is verified before anything is written.

use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use ramlet_specs::model::SecretVersion;

use super::{BoxFuture, ErrorKind, Fetched, Limits, ProviderError, Request, SecretProvider};
use crate::secrets::{Secret, SecretBytes};

/// A Secret Manager client for one project.
#[derive(Debug, Clone)]
pub struct GcpProvider {
    project: String,
    client: SecretManagerService,
}

impl GcpProvider {
    /// A client for `project`, at `endpoint` if given (`https://...` with Application Default
    /// Credentials, `http://...` without credentials).
    pub async fn connect(project: &str, endpoint: Option<&str>) -> Result<Self, ProviderError> {
        let mut builder = SecretManagerService::builder().with_retry_policy(NeverRetry);
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
            if endpoint.starts_with("http://") {
                builder = builder.with_credentials(
                    google_cloud_auth::credentials::anonymous::Builder::new().build(),
                );
            }
        }
        let client = builder.build().await.map_err(|e| {
            ProviderError::new(
                ErrorKind::Unauthenticated,
                format!(
                    "cannot build the Secret Manager client: {e}; set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or run on a GCP host with a service account"
                ),
            )
        })?;
        Ok(Self {
            project: project.to_owned(),
            client,
        })
    }

    /// The resource name of `name` at `version`.
    fn resource(&self, name: &str, version: &SecretVersion) -> String {
        let version = match version {
            SecretVersion::Number(n) => n.to_string(),
            SecretVersion::Alias(alias) => alias.clone(),
            // Validation admits only the shapes above for a GCP store.
            _ => "latest".to_owned(),
        };
        format!(
            "projects/{}/secrets/{name}/versions/{version}",
            self.project
        )
    }

    async fn access(&self, request: &Request) -> Result<Fetched, ProviderError> {
        let resource = self.resource(&request.name, &request.version);
        let response = self
            .client
            .access_secret_version()
            .set_name(resource.clone())
            .send()
            .await
            .map_err(|e| error(&resource, &e))?;
        let number = response
            .name
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let Some(payload) = response.payload else {
            return Err(ProviderError::unavailable(format!(
                "{resource}: the answer has no payload"
            )));
        };
        let bytes = SecretBytes::new(payload.data.into());
        if request.known.as_deref() == Some(number.as_str()) {
            return Ok(Fetched::Unchanged);
        }
        if let Some(expected) = payload.data_crc32c {
            let actual = crc32c::crc32c(bytes.expose());
            if i64::from(actual) != expected {
                return Err(ProviderError::new(
                    ErrorKind::Corrupt,
                    format!(
                        "{}: the payload's CRC32C is {actual}, the server said {expected}; nothing was written",
                        response.name
                    ),
                ));
            }
        }
        // The size limit is checked once for every provider, in `stores`.
        Ok(Fetched::New(Secret {
            bytes,
            version: number,
            expires: None,
        }))
    }
}

/// What a `gcp` store can do: versions by number, change events through Pub/Sub.
pub const CAPABILITIES: super::Capabilities = super::Capabilities {
    versions: super::Versions::ByNumber,
    folder: None,
    local: false,
    plain_at_rest: false,
    events: true,
};

impl SecretProvider for GcpProvider {
    fn capabilities(&self) -> super::Capabilities {
        CAPABILITIES
    }
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        limits: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        let calls = requests.iter().map(|r| self.access(r)).collect();
        Box::pin(super::each_bounded(limits, calls))
    }
}

/// What a failed call means, and what to do about it.
fn error(resource: &str, e: &google_cloud_gax::error::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::new(ErrorKind::Timeout, format!("{resource}: {e}"));
    }
    if e.is_authentication() {
        return ProviderError::new(
            ErrorKind::Unauthenticated,
            format!(
                "{resource}: no usable credentials ({e}); check GOOGLE_APPLICATION_CREDENTIALS or the host's service account"
            ),
        );
    }
    let Some(status) = e.status() else {
        return ProviderError::unavailable(format!("{resource}: {e}"));
    };
    let message = &status.message;
    let (kind, hint) = match status.code {
        Code::NotFound => (ErrorKind::NotFound, String::new()),
        Code::PermissionDenied => (
            ErrorKind::PermissionDenied,
            "; grant roles/secretmanager.secretAccessor on the secret to ramlet's service account"
                .to_owned(),
        ),
        Code::Unauthenticated => (
            ErrorKind::Unauthenticated,
            "; the credentials were refused: renew the service account key".to_owned(),
        ),
        Code::ResourceExhausted => (
            ErrorKind::Throttled,
            "; the project's access quota is spent, ramlet backs off".to_owned(),
        ),
        Code::FailedPrecondition if message.contains("DESTROYED") => (
            ErrorKind::VersionDestroyed,
            "; a destroyed version is gone for good: add a new version or pin an enabled one"
                .to_owned(),
        ),
        Code::FailedPrecondition if message.contains("DISABLED") => (
            ErrorKind::VersionDisabled,
            "; enable the version again or pin another one".to_owned(),
        ),
        Code::DeadlineExceeded => (ErrorKind::Timeout, String::new()),
        Code::InvalidArgument => (ErrorKind::Misconfigured, String::new()),
        _ => (ErrorKind::Unavailable, String::new()),
    };
    ProviderError::new(kind, format!("{resource}: {message}{hint}"))
}
