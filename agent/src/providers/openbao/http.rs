//! The wire to one OpenBao (or Vault) server: its HTTP API (`/v1/...`, JSON, `X-Vault-Token`,
//! `X-Vault-Namespace`) over reqwest with rustls, the client the cloud SDKs already bring.
//! Redirects are never followed (a standby's redirect would carry the token to another
//! address), answers are read into zeroized memory up to a bound, and every failure becomes a
//! [`Failure`] whose message names the call and never the token.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::providers::{ErrorKind, MAX_SECRET_BYTES, ProviderError};

/// The largest answer read: a secret at the limit, JSON-escaped, with its metadata.
#[allow(clippy::cast_possible_truncation)] // 2 * 64 MiB + 64 KiB fits any usize ramlet runs on
const MAX_ANSWER_BYTES: usize = 2 * MAX_SECRET_BYTES as usize + 64 * 1024;

/// The longest one request may take, login and renewal included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const TOKEN: HeaderName = HeaderName::from_static("x-vault-token");
const NAMESPACE: HeaderName = HeaderName::from_static("x-vault-namespace");

/// A client for one server.
#[derive(Debug, Clone)]
pub(super) struct Http {
    client: reqwest::Client,
    /// `scheme://host[:port]`, for URLs and messages.
    pub(super) address: String,
    namespace: Option<HeaderValue>,
}

/// What one call can end in besides an answer.
#[derive(Debug)]
pub(super) struct Failure {
    /// The HTTP status, when the server answered.
    pub(super) status: Option<u16>,
    /// What it means.
    pub(super) error: ProviderError,
}

/// The body of an error answer: `{"errors": [...]}`.
#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

impl Http {
    /// A client for `address`, trusting `ca` (PEM) instead of the system's roots when given, and
    /// presenting `identity` (a PEM certificate chain and key) when given.
    pub(super) fn new(
        address: &str,
        namespace: Option<&str>,
        ca: Option<&[u8]>,
        identity: Option<&[u8]>,
    ) -> Result<Self, ProviderError> {
        let misconfigured = |what: &str, e: &dyn std::fmt::Display| {
            ProviderError::new(ErrorKind::Misconfigured, format!("{what}: {e}"))
        };
        let https = address.starts_with("https://");
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            // A fetch is cut off by the store's limits; a login or renewal by this, so a server
            // that stops answering never holds the token's lock for good.
            .timeout(REQUEST_TIMEOUT)
            .https_only(https);
        if !https {
            // Plain HTTP (loopback only) checks no certificate: no CA store is loaded, so a host
            // without ca-certificates can still reach a local server.
            builder = builder.tls_certs_only(Vec::new());
        } else if let Some(ca) = ca {
            let roots = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| misconfigured("caFile holds no PEM certificate ramlet can use", &e))?;
            if roots.is_empty() {
                return Err(misconfigured("caFile", &"it holds no PEM certificate"));
            }
            builder = builder.tls_certs_only(roots);
        }
        if let Some(pem) = identity {
            let identity = reqwest::Identity::from_pem(pem).map_err(|_| {
                ProviderError::new(
                    ErrorKind::Misconfigured,
                    "the client certificate and key do not make a TLS identity (PEM certificate, then a PKCS#8, PKCS#1 or SEC1 key)",
                )
            })?;
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| {
            if https && ca.is_none() {
                misconfigured(
                    "cannot load this host's CA certificates to check the server with (install ca-certificates, or name the CA that signs the server's certificate in caFile)",
                    &chain(&e),
                )
            } else {
                misconfigured("cannot build the HTTP client", &chain(&e))
            }
        })?;
        let namespace = namespace
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|e| misconfigured("namespace", &e))?;
        Ok(Self {
            client,
            address: address.to_owned(),
            namespace,
        })
    }

    /// `GET /v1/<path>` with `token`.
    pub(super) async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, Failure> {
        self.send(self.client.get(self.url(path)), path, token)
            .await
    }

    /// `POST /v1/<path>` with `body` (JSON, zeroized after) and `token`.
    pub(super) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, Failure> {
        // reqwest keeps its own copy of a body it is given; this one is wiped when sent.
        let request = self
            .client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        self.send(request, path, token).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.address)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        token: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let mut headers = HeaderMap::new();
        if let Some(namespace) = &self.namespace {
            headers.insert(NAMESPACE, namespace.clone());
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token).map_err(|_| Failure {
                status: None,
                error: ProviderError::new(
                    ErrorKind::Unauthenticated,
                    "the token is not a valid HTTP header value (a stray newline or control character in its file?)",
                ),
            })?;
            value.set_sensitive(true);
            headers.insert(TOKEN, value);
        }
        let mut response = request
            .headers(headers)
            .send()
            .await
            .map_err(|e| self.unreachable(path, &e))?;
        let status = response.status().as_u16();
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.unreachable(path, &e))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Failure {
                    status: Some(status),
                    error: ProviderError::new(
                        ErrorKind::TooLarge,
                        format!("{path}: the answer is over {MAX_ANSWER_BYTES} bytes"),
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let said = serde_json::from_slice::<Errors>(&body)
            .map(|e| e.errors.join("; "))
            .unwrap_or_default();
        Err(Failure {
            status: Some(status),
            error: self.refused(path, status, &said),
        })
    }

    /// What an error answer means.
    fn refused(&self, path: &str, status: u16, said: &str) -> ProviderError {
        let said = if said.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {}", said.replace('\n', " "))
        };
        let (kind, hint) = match status {
            400 => (ErrorKind::Misconfigured, String::new()),
            403 => (
                ErrorKind::PermissionDenied,
                format!("; the token's policies must grant read on {path}"),
            ),
            404 => (ErrorKind::NotFound, String::new()),
            429 => (
                ErrorKind::Throttled,
                "; the server's rate limit is spent, ramlet backs off".to_owned(),
            ),
            503 if said.contains("sealed") => (
                ErrorKind::Unavailable,
                format!(
                    "; the server at {} is sealed: unseal it (`bao operator unseal`); containers keep their last good values",
                    self.address
                ),
            ),
            _ => (ErrorKind::Unavailable, String::new()),
        };
        ProviderError::new(kind, format!("{path}: {said}{hint}"))
    }

    /// What a call that got no answer means: a timeout, a refused connection, a TLS failure.
    fn unreachable(&self, path: &str, e: &reqwest::Error) -> Failure {
        let chain = chain(e);
        let tls = ["certificate", "tls", "TLS", "handshake", "UnknownIssuer"]
            .iter()
            .any(|w| chain.contains(w));
        let (kind, hint) = if e.is_timeout() {
            (ErrorKind::Timeout, "")
        } else if tls {
            (
                ErrorKind::Unavailable,
                "; the TLS handshake failed: check caFile (the CA that signs the server's certificate) and the server's name",
            )
        } else {
            (ErrorKind::Unavailable, "")
        };
        Failure {
            status: None,
            error: ProviderError::new(kind, format!("{path} at {}: {chain}{hint}", self.address)),
        }
    }
}

/// An error and its causes, `: `-separated (reqwest's own message alone says `builder error`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}
