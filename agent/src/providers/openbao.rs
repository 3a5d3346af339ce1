//! The `openbao` store: an OpenBao (or HashiCorp Vault) server's KV version 2 engine, its PKI
//! engine (`pki`: certificates issued, and issued again before they end) or its database engine
//! (`database`: credentials created under a lease, renewed, replaced before the lease's maximum
//! TTL, and revoked when the plan says so).
//!
//! Change check: `GET <mount>/metadata/<path>` gives the secret's `current_version`; the data
//! (`GET <mount>/data/<path>?version=N`, the version just seen, so a write in between is not
//! mistaken for it) is read only when that moved. A pinned version (`version: "3"`) is read
//! once: a KV version never changes. So an idle secret costs one small metadata read per
//! refresh, and health-gated rollbacks fetch the previous version by number
//! ([`super::Versions::ByNumber`]).
//!
//! A secret's value is its data as the JSON object KV keeps; `property` picks one key.
//! `session` logs in and keeps the token fresh; `http` is the wire. The server has no change
//! events (OpenBao has no `sys/events` endpoint; Vault's are Enterprise-only): the metadata poll
//! is the check.

mod http;
mod kv;
mod lease;
mod made;
mod pki;
mod session;

use std::sync::Arc;

use ramlet_specs::model::{Openbao, OpenbaoAuth};
use serde::Deserialize;

use super::{BoxFuture, ErrorKind, Fetched, Limits, ProviderError, Request, SecretProvider};
use http::Http;
use session::Session;

/// The largest CA bundle or client certificate read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// A client for one KV v2 mount of one server.
#[derive(Debug)]
pub struct OpenbaoProvider {
    http: Http,
    mount: String,
    /// The certificates to issue, when the mount is a PKI engine.
    pki: Option<pki::Issuer>,
    /// The credentials to lease, when the mount is a database engine.
    database: Option<lease::Leaser>,
    session: Arc<Session>,
    /// The task that renews the token; stopped with the client.
    renewal: tokio::task::AbortHandle,
}

impl Drop for OpenbaoProvider {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// What an `openbao` store can do: versions by number (what a PKI or database engine makes:
/// one, the last made), no events.
#[must_use]
pub fn capabilities(settings: &Openbao) -> super::Capabilities {
    capabilities_of(settings.made().is_some())
}

/// What an `openbao` store can do, on an engine that makes its values or a KV one.
fn capabilities_of(made: bool) -> super::Capabilities {
    super::Capabilities {
        versions: if made {
            super::Versions::One
        } else {
            super::Versions::ByNumber
        },
        folder: None,
        local: false,
        plain_at_rest: false,
        events: false,
    }
}

impl OpenbaoProvider {
    /// A client for `settings`: reads the CA bundle and, for certificate auth, the client's
    /// certificate and key now; logs in at the first fetch.
    pub fn connect(settings: &Openbao, issue: super::Issue) -> Result<Self, ProviderError> {
        let ca = settings
            .ca_file
            .as_deref()
            .map(|path| read_pem(path, "caFile"))
            .transpose()?;
        let identity = match &settings.auth {
            OpenbaoAuth::Cert {
                certificate, key, ..
            } => {
                let mut pem = zeroize::Zeroizing::new(read_pem(certificate, "cert.certificate")?);
                pem.push(b'\n');
                pem.extend_from_slice(&super::host_key::read(
                    key,
                    "the client certificate's key",
                    "openbao",
                )?);
                Some(pem)
            }
            _ => None,
        };
        let http = Http::new(
            &settings.address,
            settings.namespace.as_deref(),
            ca.as_deref(),
            identity.as_deref().map(Vec::as_slice),
        )?;
        let session = Session::new(http.clone(), settings.auth.clone());
        let renewal = Session::keep_fresh(&session);
        let scope = made::keep_scope(settings);
        let keep: Arc<dyn crate::host::keyring::Keep> = Arc::new(crate::host::keyring::Keyring);
        let makes = issue == super::Issue::Yes;
        Ok(Self {
            http,
            mount: settings.mount.clone(),
            pki: settings.pki.clone().map(|certificates| {
                pki::Issuer::new(
                    settings.mount.clone(),
                    certificates,
                    makes,
                    &scope,
                    Arc::clone(&keep),
                )
            }),
            database: settings.database.clone().map(|credentials| {
                lease::Leaser::new(
                    settings.mount.clone(),
                    credentials,
                    makes,
                    &scope,
                    Arc::clone(&keep),
                )
            }),
            session,
            renewal,
        })
    }

    async fn fetch_one(&self, request: &Request) -> Result<Fetched, ProviderError> {
        let name = &request.name;
        if let Some(issuer) = &self.pki {
            let (path, body) = match issuer.ask(request)? {
                pki::Ask::Nothing => return Ok(Fetched::Unchanged),
                pki::Ask::Kept(kept) => return Ok(kept),
                pki::Ask::Issue(call) => call,
            };
            let answer = self.call(&path, name, Some(body)).await?;
            return issuer.issued(name, &answer, &path);
        }
        if let Some(leaser) = &self.database {
            return self.lease(leaser, request).await;
        }
        self.read_kv(request).await
    }

    /// Creates `request`'s credentials, or renews the lease held, as due; a lease the server
    /// no longer knows is replaced at once.
    async fn lease(
        &self,
        leaser: &lease::Leaser,
        request: &Request,
    ) -> Result<Fetched, ProviderError> {
        let name = &request.name;
        let (id, body, adopt) = match leaser.ask(request)? {
            lease::Ask::Nothing => return Ok(Fetched::Unchanged),
            lease::Ask::Create(path) => {
                let answer = self.call(&path, name, None).await?;
                return leaser.created(name, &answer, &path);
            }
            lease::Ask::Renew(id, body) => (id, body, false),
            lease::Ask::Adopt(id, body) => (id, body, true),
        };
        let path = match self.call(lease::RENEW, name, Some(body)).await {
            Ok(answer) if adopt => return leaser.adopted(&id, &answer),
            Ok(answer) => return leaser.renewed(&id, &answer),
            // 400: the server says the lease is gone (revoked, ended, unknown).
            Err(e) if e.kind() == ErrorKind::Misconfigured => {
                leaser.lost(&id);
                leaser.path_of(name).unwrap_or_default()
            }
            Err(e) => return Err(e),
        };
        let answer = self.call(&path, name, None).await?;
        leaser.created(name, &answer, &path)
    }

    /// `GET <path>` (or `POST` of `body`) with the session's token; when the server refuses a
    /// token it no longer knows, once more with a new one.
    async fn call(
        &self,
        path: &str,
        name: &str,
        body: Option<zeroize::Zeroizing<Vec<u8>>>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, ProviderError> {
        let send = |token: zeroize::Zeroizing<String>| {
            let body = body.clone();
            async move {
                match body {
                    Some(body) => self.http.post(path, Some(&token), body).await,
                    None => self.http.get(path, Some(&token)).await,
                }
            }
        };
        let token = self.session.token().await?;
        let failure = match send(token.clone()).await {
            Ok(answer) => return Ok(answer),
            Err(failure) => failure,
        };
        let failure = if failure.status == Some(403) && self.session.refused(&token).await? {
            match send(self.session.token().await?).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            }
        } else {
            failure
        };
        if self.database.is_some() {
            return Err(match failure.error.kind() {
                ErrorKind::PermissionDenied => ProviderError::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{path}: permission denied; the token's policy must grant `read` on `{mount}/creds/<role>` and `update` on `{renew}` and `{revoke}`",
                        mount = self.mount,
                        renew = lease::RENEW,
                        revoke = lease::REVOKE,
                    ),
                ),
                ErrorKind::NotFound => ProviderError::new(
                    ErrorKind::NotFound,
                    format!(
                        "{path}: no such role in the database engine at {} on {} (or no database engine there)",
                        self.mount, self.http.address
                    ),
                ),
                _ => failure.error,
            });
        }
        if self.pki.is_some() {
            return Err(match failure.error.kind() {
                ErrorKind::PermissionDenied => ProviderError::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{path}: permission denied; the token's policy must grant `update` on `{path}`"
                    ),
                ),
                ErrorKind::NotFound => ProviderError::new(
                    ErrorKind::NotFound,
                    format!(
                        "{path}: no such role in the PKI engine at {} on {} (or no PKI engine there)",
                        self.mount, self.http.address
                    ),
                ),
                _ => failure.error,
            });
        }
        Err(match failure.error.kind() {
            ErrorKind::PermissionDenied => ProviderError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{path}: permission denied; the token's policy must grant `read` on `{mount}/data/{name}` and `{mount}/metadata/{name}`",
                    mount = self.mount
                ),
            ),
            ErrorKind::NotFound => ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{name}: no such secret in the KV engine at {} on {} (or no KV v2 engine there)",
                    self.mount, self.http.address
                ),
            ),
            _ => failure.error,
        })
    }
}

/// Reads a PEM file that is no secret (a CA bundle, a client certificate): a regular file
/// reached through no link (a FIFO named here would hang the store), bounded.
fn read_pem(path: &std::path::Path, field: &str) -> Result<Vec<u8>, ProviderError> {
    use std::io::Read as _;
    let misconfigured =
        |why: String| ProviderError::new(ErrorKind::Misconfigured, format!("{field}: {why}"));
    let (file, meta) = super::file::open_regular(path, &path.display().to_string(), "openbao")
        .map_err(|e| misconfigured(e.to_string()))?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(misconfigured(format!(
            "{} is over {MAX_PEM_BYTES} bytes",
            path.display()
        )));
    }
    let mut pem = Vec::new();
    file.take(MAX_PEM_BYTES)
        .read_to_end(&mut pem)
        .map_err(|e| misconfigured(format!("cannot read {}: {e}", path.display())))?;
    Ok(pem)
}

/// Parses an answer, saying where it broke and never what it held.
fn parse<'a, T: Deserialize<'a>>(answer: &'a [u8], path: &str) -> Result<T, ProviderError> {
    serde_json::from_slice(answer).map_err(|e| {
        ProviderError::unavailable(format!(
            "{path}: the answer is not what OpenBao sends (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

impl SecretProvider for OpenbaoProvider {
    fn capabilities(&self) -> super::Capabilities {
        capabilities_of(self.pki.is_some() || self.database.is_some())
    }

    fn next_step(&self) -> Option<u64> {
        let certificates = self.pki.as_ref().and_then(pki::Issuer::next_step);
        let leases = self.database.as_ref().and_then(lease::Leaser::next_step);
        certificates.into_iter().chain(leases).min()
    }

    fn leases(&self) -> Vec<super::Lease> {
        self.database
            .as_ref()
            .map(lease::Leaser::leases)
            .unwrap_or_default()
    }

    fn revoke<'a>(
        &'a self,
        id: &'a str,
        limits: Limits,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let Some(leaser) = &self.database else {
                return Ok(());
            };
            let body = serde_json::json!({ "lease_id": id })
                .to_string()
                .into_bytes();
            let call = self.call(lease::REVOKE, id, Some(zeroize::Zeroizing::new(body)));
            match tokio::time::timeout(limits.timeout, call).await {
                // 400: the server does not know it (ended, revoked by someone else).
                Ok(Ok(_)) => {
                    leaser.revoked(id);
                    Ok(())
                }
                Ok(Err(e)) if e.kind() == ErrorKind::Misconfigured => {
                    leaser.revoked(id);
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ProviderError::new(
                    ErrorKind::Timeout,
                    format!(
                        "{}: no answer within {} s",
                        lease::REVOKE,
                        limits.timeout.as_secs()
                    ),
                )),
            }
        })
    }

    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        limits: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        let calls = requests.iter().map(|r| self.fetch_one(r)).collect();
        Box::pin(super::each_bounded(limits, calls))
    }
}
