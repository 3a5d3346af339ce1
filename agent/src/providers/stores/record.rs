//! What a refresh's answers do to a store: new values replace old ones, errors keep the last
//! good value, and the store's next refresh is set by its interval or the error policy's
//! backoff (with jitter, so a fleet does not call a provider in lockstep).

use std::time::Duration;

use tokio::time::Instant;

use super::Store;
use crate::providers::{ErrorKind, Fetched, MAX_SECRET_BYTES, ProviderError, Request};

impl Store {
    /// Takes a refresh's answers: new values replace old ones, errors keep the last good
    /// value; then sets the store's next due time (its interval, or its backoff).
    pub(super) fn record(
        &mut self,
        name: &str,
        whole: bool,
        requests: Vec<Request>,
        answers: Vec<Result<Fetched, ProviderError>>,
        now: Instant,
        stamp: &str,
    ) {
        let mut throttled = false;
        let mut transient = false;
        let mut failed = false;
        for (request, answer) in requests.into_iter().zip(answers) {
            let entry = self
                .entries
                .entry((request.name.clone(), request.version.clone()))
                .or_default();
            let answer = answer.and_then(|fetched| checked(&request.name, fetched));
            let result = match &answer {
                Ok(Fetched::Unchanged | Fetched::Renewed(_)) => "unchanged",
                Ok(Fetched::New(_)) => "changed",
                Err(error) => error.kind().as_str(),
            };
            *self.answers.entry(result).or_default() += 1;
            match answer {
                Ok(Fetched::Unchanged) => entry.error = None,
                Ok(Fetched::Renewed(ends)) => {
                    if let Some(value) = &mut entry.value {
                        value.expires = Some(ends);
                    }
                    entry.error = None;
                }
                Ok(Fetched::New(secret)) => {
                    tracing::info!(store = %name, secret = %request.name, version = %secret.version, message_id = crate::message_ids::NEW_VERSION, "{name}/{}: new secret version {}", request.name, secret.version);
                    entry.value = Some(secret);
                    entry.error = None;
                    entry.seen = Some(now);
                }
                Err(error) => {
                    tracing::warn!(store = %name, secret = %request.name, kind = error.kind().as_str(), %error, "{name}/{}: secret fetch failed ({}): {error}", request.name, error.kind().as_str());
                    throttled |= error.kind() == ErrorKind::Throttled;
                    transient |= error.kind().is_transient();
                    failed = true;
                    entry.error = Some(error);
                }
            }
        }
        if failed {
            // The error policy's wait; then this store's own cap: throttling backs off past
            // the interval, every other error is tried again at least as often as the
            // interval, so a fixed permission is seen without anybody.
            let wait = self.errors.failed(transient);
            let wait = if throttled {
                wait
            } else {
                wait.min(self.interval)
            };
            self.next_due = now + jitter(wait);
        } else {
            self.last_refresh = Some(stamp.to_owned());
            if whole {
                self.errors.succeeded();
                self.next_due = now + jitter(self.interval);
            }
        }
    }
}

/// Refuses values over [`MAX_SECRET_BYTES`], whatever the provider let through.
fn checked(name: &str, fetched: Fetched) -> Result<Fetched, ProviderError> {
    if let Fetched::New(secret) = &fetched {
        let size = secret.bytes.expose().len() as u64;
        if size > MAX_SECRET_BYTES {
            return Err(ProviderError::too_large(name, size));
        }
    }
    Ok(fetched)
}

/// `wait` give or take 10%, so that a fleet of hosts does not call a provider in lockstep.
pub(super) fn jitter(wait: Duration) -> Duration {
    // A fraction in [0.9, 1.1).
    wait.mul_f64(0.9 + 0.2 * crate::util::random_unit())
}
