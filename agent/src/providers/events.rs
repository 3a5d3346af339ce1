//! Change events: a store that names an event source (`gcp.events`, `aws.events`) gets a
//! listener task that turns each announced change into an [`Event`] naming the secret. The
//! stores mark that secret due, the next reconcile fetches it (a burst of events for one secret
//! is one fetch), and the event is acknowledged only once that fetch answered, or at once when
//! no spec on this host uses the secret. Events carry no secret values.
//!
//! Layout: [`pubsub`] (Secret Manager's Pub/Sub notifications) and [`sqs`] (Secrets Manager's
//! EventBridge events on an SQS queue) read their wire formats and run the listeners; this
//! module has what both share: the [`Event`] and its [`Ack`], the [`Notice`]s a listener sends,
//! its [`Health`] reports and its backoff.

pub mod pubsub;
pub mod sqs;

use std::sync::Arc;
use std::time::Duration;

use ramlet_specs::model::EventSource;

use crate::retry::{ErrorPolicy, Transient};

/// The shortest wait before a failed listener tries again.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait: a listener that keeps failing tries every minute.
const BACKOFF_MAX: Duration = Duration::from_mins(1);

/// Settles an event with its source once ramlet is done with it.
pub struct Ack(Box<dyn FnOnce() + Send>);

impl Ack {
    /// An acknowledgement that runs `done`.
    pub fn new(done: impl FnOnce() + Send + 'static) -> Self {
        Self(Box::new(done))
    }

    /// Acknowledges: the source forgets the message.
    pub fn ack(self) {
        (self.0)();
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ack")
    }
}

/// One announced change of one secret.
#[derive(Debug)]
pub struct Event {
    /// The store whose listener received it.
    pub store: String,
    /// The names the secret may be referenced by in specs (an ARN and its name, a secret ID).
    pub names: Vec<String>,
    /// What happened, as the source says it (`SECRET_VERSION_ADD`, `PutSecretValue`).
    pub what: String,
    /// Settles it with the source.
    pub ack: Ack,
}

/// What a listener tells the agent.
#[derive(Debug)]
pub enum Notice {
    /// A change to fetch.
    Event(Event),
    /// The listener's state changed: `None` when it receives, else why it cannot.
    Health {
        /// The store.
        store: String,
        /// Why it cannot receive, if it cannot.
        error: Option<String>,
    },
}

/// Why a listener cannot receive: for people (what to do), and whether it may pass by itself
/// (a stream that broke, a peer that is down) or waits for somebody (a subscription or queue
/// that does not exist, a permission missing, credentials refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ListenError {
    /// What went wrong and what to do.
    pub message: String,
    /// Whether trying again soon may work.
    pub transient: bool,
}

impl ListenError {
    /// An error that may pass by itself.
    #[must_use]
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }

    /// An error that waits for somebody to change something.
    #[must_use]
    pub fn lasting(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }

    /// The same error with `prefix: ` before its message.
    #[must_use]
    pub fn at(self, prefix: &str) -> Self {
        Self {
            message: format!("{prefix}: {}", self.message),
            ..self
        }
    }
}

impl Transient for ListenError {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

/// Where listeners send their notices.
pub type Sink = Arc<dyn Fn(Notice) + Send + Sync>;

/// Starts a listener: [`spawn`], or a stand-in in tests.
pub type Spawn = fn(&str, &EventSource, Sink) -> tokio::task::JoinHandle<()>;

/// Starts the listener for `store`'s `source`; it runs until the handle is aborted.
#[must_use]
pub fn spawn(store: &str, source: &EventSource, sink: Sink) -> tokio::task::JoinHandle<()> {
    let health = Health::new(store, sink);
    match source.clone() {
        EventSource::PubSub {
            subscription,
            endpoint,
        } => tokio::spawn(pubsub::listen(subscription, endpoint, health)),
        EventSource::Sqs { queue, region } => tokio::spawn(sqs::listen(queue, region, health)),
    }
}

/// A listener's reports: its events, and its health whenever that changes (not on every
/// retry, so a listener that keeps failing does not keep waking the agent).
pub struct Health {
    store: String,
    sink: Sink,
    /// What it last reported: `Ok` while receiving, the error otherwise; `None` before the
    /// first report.
    last: Option<Result<(), ListenError>>,
    /// Its error policy (see [`crate::retry`]): a transient error is tried again after a
    /// doubling backoff, any other after the cap (the store is polled meanwhile).
    errors: ErrorPolicy,
}

impl Health {
    fn new(store: &str, sink: Sink) -> Self {
        Self {
            store: store.to_owned(),
            sink,
            last: None,
            errors: ErrorPolicy::new(BACKOFF_MIN, BACKOFF_MAX),
        }
    }

    /// Sends one received change.
    fn event(&self, names: Vec<String>, what: String, ack: Ack) {
        (self.sink)(Notice::Event(Event {
            store: self.store.clone(),
            names,
            what,
            ack,
        }));
    }

    /// The listener receives.
    fn ok(&mut self) {
        self.errors.succeeded();
        if self.last != Some(Ok(())) {
            tracing::info!(store = %self.store, "listening for secret change events");
            self.report(None);
        }
    }

    /// The listener cannot receive, for `error`.
    fn failed(&mut self, error: ListenError) {
        if self.last.as_ref() != Some(&Err(error.clone())) {
            tracing::warn!(store = %self.store, %error, transient = error.transient, "cannot receive secret change events; the store is polled until they are back");
            self.report(Some(error));
        }
    }

    fn report(&mut self, error: Option<ListenError>) {
        (self.sink)(Notice::Health {
            store: self.store.clone(),
            error: error.as_ref().map(ToString::to_string),
        });
        self.last = Some(error.map_or(Ok(()), Err));
    }

    /// Waits out the error policy's wait after the last failure.
    async fn back_off(&mut self) {
        let wait = match &self.last {
            Some(Err(error)) => self.errors.after(error),
            _ => self.errors.failed(true),
        };
        tokio::time::sleep(wait).await;
    }
}
