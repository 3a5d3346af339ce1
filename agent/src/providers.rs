//! Secret providers: where secret values come from. One implementation per store kind, behind
//! [`SecretProvider`] so the reconciler can be tested with an in-memory fake.
//!
//! Layout: [`file`](mod@file) reads a local directory. The AWS and GCP providers are not built yet: a store
//! of those kinds makes its containers fail with a clear status, and nothing else.

pub mod file;

use std::future::Future;
use std::pin::Pin;

use ramlet_specs::model::{Provider, SecretVersion};

use crate::secrets::Secret;

/// A boxed future, for object-safe async trait methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a secret could not be fetched. Messages never hold secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The secret (or that version of it) does not exist.
    #[error("secret {name:?} not found")]
    NotFound {
        /// The secret's name.
        name: String,
    },
    /// The secret is larger than ramlet accepts.
    #[error("secret {name:?} is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// The secret's name.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The provider is unreachable or failed; the last good value stays in place.
    #[error("{0}")]
    Unavailable(String),
    /// This build has no provider for the store's kind.
    #[error("the {0} provider is not available in this build of ramlet yet")]
    Unsupported(&'static str),
}

/// Fetches secret values from one store.
pub trait SecretProvider: Send + Sync {
    /// Fetches `name` at `version`.
    fn fetch<'a>(
        &'a self,
        name: &'a str,
        version: &'a SecretVersion,
    ) -> BoxFuture<'a, Result<Secret, ProviderError>>;
}

/// A provider that refuses every fetch: for store kinds this build cannot reach.
#[derive(Debug)]
pub struct Unsupported(pub &'static str);

impl SecretProvider for Unsupported {
    fn fetch<'a>(
        &'a self,
        _: &'a str,
        _: &'a SecretVersion,
    ) -> BoxFuture<'a, Result<Secret, ProviderError>> {
        Box::pin(async move { Err(ProviderError::Unsupported(self.0)) })
    }
}

/// The provider for a store's settings.
#[must_use]
pub fn for_store(provider: &Provider) -> Box<dyn SecretProvider> {
    match provider {
        Provider::File { directory } => Box::new(file::FileProvider::new(directory.clone())),
        Provider::Aws { .. } => Box::new(Unsupported("aws")),
        Provider::Gcp { .. } => Box::new(Unsupported("gcp")),
    }
}
