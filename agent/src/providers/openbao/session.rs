//! An `openbao` store's token: got by its login method, renewed (`renew-self`) at two thirds of
//! its TTL by a task of its own, and replaced by a new login when renewal fails, when it nears
//! its end unrenewable, or when the server no longer knows it (revoked behind ramlet's back).
//! The token lives in zeroized memory and is never in a message, a log line or status.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ramlet_specs::model::{HostKey, OpenbaoAuth};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::http::Http;
use super::parse;
use crate::providers::{ErrorKind, ProviderError};

/// How long after a failed renewal or login the task tries again.
const RETRY: Duration = Duration::from_secs(10);
/// How long a token that never expires (TTL 0, a root token) waits between looks.
const IDLE: Duration = Duration::from_hours(1);

/// One store's login and token.
#[derive(Debug)]
pub(super) struct Session {
    http: Http,
    auth: OpenbaoAuth,
    token: Mutex<Option<Token>>,
    /// Told when a login replaced the token, so the renewal task looks at its new TTL.
    new_token: tokio::sync::Notify,
}

#[derive(Debug)]
struct Token {
    value: Zeroizing<String>,
    renewable: bool,
    /// When it expires; `None`: never.
    expires: Option<Instant>,
    /// When it should be renewed (or replaced): two thirds into its TTL.
    due: Option<Instant>,
}

impl Token {
    fn new(value: Zeroizing<String>, ttl: u64, renewable: bool) -> Self {
        let now = Instant::now();
        let (expires, due) = if ttl == 0 {
            (None, None)
        } else {
            let ttl = Duration::from_secs(ttl);
            (Some(now + ttl), Some(now + ttl * 2 / 3))
        };
        Self {
            value,
            renewable,
            expires,
            due,
        }
    }

    fn usable(&self) -> bool {
        self.expires
            .is_none_or(|at| at > Instant::now() + Duration::from_secs(1))
    }
}

/// The `auth` block of a login or renewal answer.
#[derive(Deserialize)]
struct AuthAnswer {
    auth: Option<Auth>,
}

#[derive(Deserialize)]
struct Auth {
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

/// `lookup-self`'s answer: what a token read from a file is.
#[derive(Deserialize)]
struct Lookup {
    data: LookupData,
}

#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
}

impl Session {
    /// A session that logs in with `auth` at its first use.
    pub(super) fn new(http: Http, auth: OpenbaoAuth) -> Arc<Self> {
        Arc::new(Self {
            http,
            auth,
            token: Mutex::new(None),
            new_token: tokio::sync::Notify::new(),
        })
    }

    /// The current token, logging in first when there is none or it has (nearly) expired.
    pub(super) async fn token(&self) -> Result<Zeroizing<String>, ProviderError> {
        let mut held = self.token.lock().await;
        if let Some(token) = held.as_ref().filter(|t| t.usable()) {
            return Ok(token.value.clone());
        }
        let token = self.login().await?;
        let value = token.value.clone();
        *held = Some(token);
        self.new_token.notify_one();
        Ok(value)
    }

    /// After a call was refused (403) with `used`: whether the token itself is no longer good
    /// (revoked, expired early), in which case a new login replaced it and the call is worth
    /// one more try. A token the server still knows was refused by its policies: `false`.
    pub(super) async fn refused(&self, used: &str) -> Result<bool, ProviderError> {
        let mut held = self.token.lock().await;
        if held.as_ref().is_some_and(|t| *t.value != *used) {
            // Another call already replaced it.
            return Ok(true);
        }
        if self
            .http
            .get("auth/token/lookup-self", Some(used))
            .await
            .is_ok()
        {
            return Ok(false);
        }
        tracing::info!(
            address = %self.http.address,
            method = self.auth.method(),
            "the OpenBao token was refused (revoked or expired); logging in again"
        );
        *held = Some(self.login().await?);
        self.new_token.notify_one();
        Ok(true)
    }

    /// Logs in by the store's method.
    async fn login(&self) -> Result<Token, ProviderError> {
        let (path, body) = match &self.auth {
            OpenbaoAuth::Token(key) => return self.token_from_file(key).await,
            OpenbaoAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let secret_id = read_key(secret_id, "the AppRole secret ID")?;
                let secret_id = std::str::from_utf8(&secret_id).map_err(|_| {
                    ProviderError::new(
                        ErrorKind::Unauthenticated,
                        "the AppRole secret ID is not text",
                    )
                })?;
                let body = serde_json::json!({"role_id": role_id, "secret_id": secret_id.trim()});
                (format!("auth/{mount}/login"), body)
            }
            OpenbaoAuth::Cert { mount, role, .. } => {
                let body = match role {
                    Some(role) => serde_json::json!({ "name": role }),
                    None => serde_json::json!({}),
                };
                (format!("auth/{mount}/login"), body)
            }
        };
        let body = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        let answer = self
            .http
            .post(&path, None, body)
            .await
            .map_err(|f| login_failed(self.auth.method(), &f.error))?;
        let auth = parse::<AuthAnswer>(&answer, &path)?.auth.ok_or_else(|| {
            ProviderError::unavailable(format!("{path}: the answer has no auth block"))
        })?;
        tracing::debug!(
            address = %self.http.address,
            method = self.auth.method(),
            ttl_s = auth.lease_duration,
            renewable = auth.renewable,
            "logged in to OpenBao"
        );
        Ok(Token::new(
            Zeroizing::new(auth.client_token),
            auth.lease_duration,
            auth.renewable,
        ))
    }

    /// A token read from its file, and what the server says of it.
    async fn token_from_file(&self, key: &HostKey) -> Result<Token, ProviderError> {
        let bytes = read_key(key, "the OpenBao token")?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            ProviderError::new(
                ErrorKind::Unauthenticated,
                format!("{} holds no token (not text)", key.path().display()),
            )
        })?;
        let value = Zeroizing::new(text.trim().to_owned());
        let answer = self
            .http
            .get("auth/token/lookup-self", Some(&value))
            .await
            .map_err(|f| match f.status {
                Some(403) => ProviderError::new(
                    ErrorKind::Unauthenticated,
                    format!(
                        "the token in {} was refused (expired, revoked or never valid); put a valid token there",
                        key.path().display()
                    ),
                ),
                _ => f.error,
            })?;
        let data = parse::<Lookup>(&answer, "auth/token/lookup-self")?.data;
        Ok(Token::new(value, data.ttl, data.renewable))
    }

    /// Renews the token (or logs in again when it cannot be renewed) when it is due; says how
    /// long to wait before the next look.
    async fn upkeep(&self) -> Duration {
        let mut held = self.token.lock().await;
        let Some(token) = held.as_ref() else {
            return IDLE;
        };
        let now = Instant::now();
        match token.due {
            None => return IDLE,
            Some(due) if due > now => return due - now,
            Some(_) => {}
        }
        if token.renewable {
            match self.renew(&token.value).await {
                Ok(renewed) => {
                    let wait = renewed.due.map_or(IDLE, |due| due - now);
                    *held = Some(renewed);
                    return wait;
                }
                Err(e) => tracing::warn!(
                    address = %self.http.address,
                    error = %e,
                    "cannot renew the OpenBao token; logging in again"
                ),
            }
        }
        match self.login().await {
            Ok(token) => {
                let wait = token
                    .due
                    .map_or(IDLE, |due| due.saturating_duration_since(now));
                *held = Some(token);
                wait
            }
            Err(e) => {
                tracing::warn!(
                    address = %self.http.address,
                    error = %e,
                    "cannot log in to OpenBao; trying again in {} s",
                    RETRY.as_secs()
                );
                RETRY
            }
        }
    }

    async fn renew(&self, token: &str) -> Result<Token, ProviderError> {
        let path = "auth/token/renew-self";
        let answer = self
            .http
            .post(path, Some(token), Zeroizing::new(b"{}".to_vec()))
            .await
            .map_err(|f| f.error)?;
        let auth = parse::<AuthAnswer>(&answer, path)?
            .auth
            .ok_or_else(|| ProviderError::unavailable(format!("{path}: no auth block")))?;
        tracing::debug!(
            address = %self.http.address,
            ttl_s = auth.lease_duration,
            "renewed the OpenBao token"
        );
        Ok(Token::new(
            Zeroizing::new(auth.client_token),
            auth.lease_duration,
            auth.renewable,
        ))
    }

    /// Keeps the token fresh: a task that lives until the session is dropped or the handle
    /// aborted (the client does so when it is dropped).
    pub(super) fn keep_fresh(session: &Arc<Self>) -> tokio::task::AbortHandle {
        let weak: Weak<Self> = Arc::downgrade(session);
        tokio::spawn(async move {
            loop {
                let Some(session) = weak.upgrade() else {
                    return;
                };
                let wait = session.upkeep().await.max(Duration::from_millis(100));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = session.new_token.notified() => {}
                }
            }
        })
        .abort_handle()
    }
}

/// Reads a credential of the host's.
fn read_key(key: &HostKey, what: &str) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    crate::providers::host_key::read(key, what, "openbao")
}

/// A login that failed: the server's reason with what to do.
fn login_failed(method: &str, error: &ProviderError) -> ProviderError {
    let kind = match error.kind() {
        ErrorKind::Misconfigured | ErrorKind::PermissionDenied | ErrorKind::NotFound => {
            ErrorKind::Unauthenticated
        }
        kind => kind,
    };
    let error = error.to_string();
    // (The 403 hint about read grants is for data paths, not for a login.)
    let said = error
        .split("; the token's policies")
        .next()
        .unwrap_or(&error);
    ProviderError::new(
        kind,
        format!(
            "cannot log in ({method}): {said}; check the store's auth settings and its credential"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_token_is_due_at_two_thirds_of_its_ttl_and_unusable_just_before_its_end() {
        let start = Instant::now();
        let token = Token::new(Zeroizing::new("t".into()), 30, true);
        assert_eq!(token.due, Some(start + Duration::from_secs(20)));
        assert_eq!(token.expires, Some(start + Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(28)).await;
        assert!(token.usable());
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(
            !token.usable(),
            "a token with under a second left is replaced"
        );
        // A root token (TTL 0) never expires and is never renewed.
        let root = Token::new(Zeroizing::new("r".into()), 0, false);
        assert_eq!((root.due, root.expires), (None, None));
        tokio::time::advance(Duration::from_hours(24)).await;
        assert!(root.usable());
    }
}
