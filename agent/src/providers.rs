//! Secret providers: where secret values come from. One implementation per store kind, behind
//! [`SecretProvider`] so the reconciler can be tested with an in-memory fake.
//!
//! Layout: [`file`](mod@file) reads a local directory in plain text, [`creds`] one of
//! credentials sealed with `systemd-creds`, [`age`](mod@age) age files beside the specs,
//! [`aws`] talks to AWS Secrets Manager, [`gcp`] to Google Cloud Secret Manager, [`openbao`] to
//! an OpenBao or Vault server; [`host_key`] reads the host's own keys they log in or decrypt
//! with; [`stores`] keeps one client per store, decides what is due, and remembers the last good
//! value of every secret.
//!
//! A provider gets every request of its store at once, so it can be cheap: AWS checks versions
//! with `DescribeSecret` and reads only what changed (in batches), GCP compares the version name
//! it gets back, OpenBao reads a secret's metadata and its data only when the version moved.
//! Every call is bounded in time ([`Limits`]) and in concurrency.

pub mod age;
pub mod aws;
mod capabilities;
pub mod creds;
pub mod events;
pub mod file;
pub mod gcp;
pub mod host_key;
pub mod openbao;
pub mod stores;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use ramlet_specs::model::{Provider, SecretVersion};

use crate::secrets::Secret;

use crate::util::BoxFuture;
pub use capabilities::{Capabilities, Versions};

/// The largest secret ramlet accepts from any provider: the largest volume.
pub const MAX_SECRET_BYTES: u64 = ramlet_specs::MAX_VOLUME_BYTES;

/// What a provider is asked: one secret at one version, and the version ramlet already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The secret's name in the store.
    pub name: String,
    /// Which version.
    pub version: SecretVersion,
    /// The provider's version identifier of the value ramlet holds, if any: when the store
    /// still resolves `version` to it, the provider answers [`Fetched::Unchanged`].
    pub known: Option<String>,
}

/// A provider's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The version asked for is still the one ramlet holds.
    Unchanged,
    /// A value ramlet does not hold yet.
    New(Secret),
    /// The held version is still the one asked for, and now valid until then (Unix seconds):
    /// a lease renewed.
    Renewed(u64),
}

/// A lease a client holds on something it made (a database engine's credentials): it lives
/// until it ends or is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The secret's name in the store.
    pub name: String,
    /// The lease ID: the secret's version.
    pub id: String,
    /// When it ends (Unix seconds).
    pub ends: u64,
}

/// How long a call may take and how many run at once, per store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// How long one call may take.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            concurrency: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What went wrong, in words that stay stable for status, logs and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// No valid credentials (none found, expired, or refused as unknown).
    Unauthenticated,
    /// The credentials are valid but lack a permission.
    PermissionDenied,
    /// The secret or the version asked for does not exist.
    NotFound,
    /// The version exists but is disabled (GCP).
    VersionDisabled,
    /// The version was destroyed (GCP).
    VersionDestroyed,
    /// The provider asked ramlet to slow down.
    Throttled,
    /// A call took longer than the store's timeout.
    Timeout,
    /// The secret is larger than ramlet accepts.
    TooLarge,
    /// The payload failed its checksum; nothing was written.
    Corrupt,
    /// The provider could not be reached or failed on its side.
    Unavailable,
    /// The store's settings cannot work (a bad endpoint, a client that cannot be built).
    Misconfigured,
    /// A sealed value this host cannot open: sealed for another host or TPM, under another name,
    /// to another age identity, or damaged.
    Undecryptable,
}

impl ErrorKind {
    /// The kind's stable name (`permission-denied`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission-denied",
            Self::NotFound => "not-found",
            Self::VersionDisabled => "version-disabled",
            Self::VersionDestroyed => "version-destroyed",
            Self::Throttled => "throttled",
            Self::Timeout => "timeout",
            Self::TooLarge => "too-large",
            Self::Corrupt => "corrupt",
            Self::Unavailable => "unavailable",
            Self::Misconfigured => "misconfigured",
            Self::Undecryptable => "undecryptable",
        }
    }

    /// Whether trying again later may work without anybody changing anything.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Timeout | Self::Unavailable | Self::Corrupt
        )
    }
}

/// Why a secret could not be fetched. Messages never hold secret values; they say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    kind: ErrorKind,
    message: String,
}

impl ProviderError {
    /// An error of `kind`, described by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The secret `name` (or that version of it) does not exist.
    #[must_use]
    pub fn not_found(name: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("secret {name:?} not found"))
    }

    /// The secret `name` is `size` bytes, over [`MAX_SECRET_BYTES`].
    #[must_use]
    pub fn too_large(name: &str, size: u64) -> Self {
        Self::new(
            ErrorKind::TooLarge,
            format!("secret {name:?} is {size} bytes; the limit is {MAX_SECRET_BYTES}"),
        )
    }

    /// The provider is unreachable or failed.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Its kind.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl crate::retry::Transient for ProviderError {
    fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

/// Fetches secret values from one store.
pub trait SecretProvider: Send + Sync {
    /// What this store can do (see [`Capabilities`]).
    fn capabilities(&self) -> Capabilities;

    /// Answers every request, in order: one result per request. Implementations bound their
    /// calls by `limits`.
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        limits: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>>;

    /// When this client has something to do of its own (renew a lease, issue the next
    /// certificate), Unix seconds: its store is refreshed then, whatever its interval.
    fn next_step(&self) -> Option<u64> {
        None
    }

    /// The leases this client holds, if its store makes leased values.
    fn leases(&self) -> Vec<Lease> {
        Vec::new()
    }

    /// Revokes lease `id` (one of [`Self::leases`]), within `limits`' timeout; a lease the
    /// server no longer knows counts as revoked.
    fn revoke<'a>(
        &'a self,
        id: &'a str,
        limits: Limits,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        let _ = (id, limits);
        Box::pin(async { Ok(()) })
    }
}

/// Builds the client for a store's settings: once per store, again only when its settings
/// change.
pub type Connector = Arc<
    dyn Fn(&Provider) -> BoxFuture<'static, Result<Arc<dyn SecretProvider>, ProviderError>>
        + Send
        + Sync,
>;

/// The real clients: `file`, `creds`, `age` (whose folders are inside `spec_dir`), `aws`, `gcp`
/// and `openbao`.
#[must_use]
pub fn connector(spec_dir: std::path::PathBuf) -> Connector {
    connector_for(spec_dir, Issue::Yes)
}

/// Whether an `openbao` store on a PKI or database engine has certificates issued and
/// credentials created: the agent's clients do; `ramlet plan`'s, which must change nothing
/// anywhere, do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// Certificates are issued (`ramlet run`).
    Yes,
    /// None is: a certificate is an error that says so (`ramlet plan`).
    No,
}

/// The real clients, with certificates issued or not.
#[must_use]
pub fn connector_for(spec_dir: std::path::PathBuf, issue: Issue) -> Connector {
    Arc::new(move |provider: &Provider| {
        let provider = provider.clone();
        let spec_dir = spec_dir.clone();
        Box::pin(async move {
            let client: Arc<dyn SecretProvider> = match provider {
                Provider::File { directory } => Arc::new(file::FileProvider::new(directory)),
                Provider::Creds { directory } => Arc::new(creds::CredsProvider::new(directory)),
                Provider::Age {
                    directory,
                    identity,
                    ..
                } => Arc::new(age::AgeProvider::new(spec_dir, directory, identity)),
                Provider::Aws { region, endpoint } => {
                    Arc::new(aws::AwsProvider::connect(&region, endpoint.as_deref()).await?)
                }
                Provider::Gcp { project, endpoint } => {
                    Arc::new(gcp::GcpProvider::connect(&project, endpoint.as_deref()).await?)
                }
                Provider::Openbao(settings) => {
                    Arc::new(openbao::OpenbaoProvider::connect(&settings, issue)?)
                }
            };
            Ok(client)
        })
    })
}

/// What a store with these settings can do: the one place a store's kind is matched on
/// outside of building its client ([`connector`]).
#[must_use]
pub fn capabilities(provider: &Provider) -> Capabilities {
    match provider {
        Provider::File { directory } => file::capabilities(directory),
        Provider::Creds { directory } => creds::capabilities(directory),
        Provider::Age { .. } => age::CAPABILITIES,
        Provider::Aws { .. } => aws::CAPABILITIES,
        Provider::Gcp { .. } => gcp::CAPABILITIES,
        Provider::Openbao(settings) => openbao::capabilities(settings),
    }
}

/// Runs `calls`, at most `limits.concurrency` at once, each cut off after `limits.timeout`;
/// results come back in the calls' order. (A plain loop rather than stream combinators: their
/// closures trip rustc's higher-ranked lifetime check inside boxed `Send` futures.)
pub async fn each_bounded<R, Fut>(limits: Limits, calls: Vec<Fut>) -> Vec<Result<R, ProviderError>>
where
    Fut: Future<Output = Result<R, ProviderError>>,
{
    // Unordered, so that one slow call never holds back the start of the next.
    let mut waiting = calls.into_iter().enumerate();
    let mut running = futures_util::stream::FuturesUnordered::new();
    let start = |(i, call)| async move { (i, bounded(limits, call).await) };
    for call in waiting.by_ref().take(limits.concurrency.max(1)) {
        running.push(start(call));
    }
    let mut results = Vec::new();
    while let Some(result) = running.next().await {
        results.push(result);
        if let Some(call) = waiting.next() {
            running.push(start(call));
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Cuts one call off after `limits.timeout`.
pub async fn bounded<R>(
    limits: Limits,
    call: impl Future<Output = Result<R, ProviderError>>,
) -> Result<R, ProviderError> {
    tokio::time::timeout(limits.timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(ProviderError::new(
                ErrorKind::Timeout,
                format!("no answer within {} s", limits.timeout.as_secs()),
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts calls in flight; a call cut off by its timeout is dropped, and counted out too.
    struct InFlight<'a>(&'a AtomicUsize);
    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_bounded_in_time_and_number() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<u64> = (0..20).collect();
        let limits = Limits {
            concurrency: 3,
            timeout: Duration::from_secs(10),
        };
        let calls: Vec<_> = items
            .iter()
            .map(|i| {
                let (running, peak) = (&running, &peak);
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    let _guard = InFlight(running);
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Item 7 hangs longer than the timeout.
                    let wait = if *i == 7 { 60 } else { 1 };
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    Ok(*i * 2)
                }
            })
            .collect();
        let started = tokio::time::Instant::now();
        let results = each_bounded(limits, calls).await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(results[3], Ok(6));
        assert_eq!(results[7].as_ref().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 19);
        // 19 one-second calls three at a time (7 s), and item 7 (started at 2 s) cut off at 12 s, holding back nobody.
        assert!(
            started.elapsed() <= Duration::from_secs(12),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn transient_kinds_are_the_ones_that_heal_alone() {
        assert!(ErrorKind::Throttled.is_transient());
        assert!(ErrorKind::Unavailable.is_transient());
        assert!(!ErrorKind::PermissionDenied.is_transient());
        assert!(!ErrorKind::NotFound.is_transient());
        assert_eq!(ErrorKind::PermissionDenied.as_str(), "permission-denied");
    }
}
