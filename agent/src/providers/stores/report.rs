//! How the stores are doing, for the status file and the metrics.

use std::collections::BTreeMap;

use ramlet_specs::model::EventSource;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Stores;

/// How a store's change events are doing, for the status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsStatus {
    /// `pubsub` or `sqs`.
    pub source: String,
    /// The subscription or queue.
    pub from: String,
    /// Whether the listener receives; when not, the store is polled every `fallbackInterval`.
    pub listening: bool,
    /// Why it cannot receive, empty while it does.
    pub error: String,
    /// Events that made ramlet fetch a secret.
    pub fetched: u64,
    /// Events for secrets no spec on this host uses (no fetch).
    pub unused: u64,
}

/// How one store is doing, for the status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// `aws`, `gcp`, `creds`, `age` or `file`.
    pub kind: String,
    /// Whether its secrets lie on the host's disk in plain text (a `file` store).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain_text_at_rest: bool,
    /// Whether its last refresh answered every secret.
    pub healthy: bool,
    /// The error kind of its first failing secret (`permission-denied`), empty when healthy.
    pub error_kind: String,
    /// What went wrong and what to do, empty when healthy.
    pub message: String,
    /// How many secrets of it are in use.
    pub secrets: usize,
    /// When it last answered (RFC 3339, UTC).
    pub last_refresh: String,
    /// Seconds until it is asked again.
    pub next_refresh_secs: u64,
    /// Its change events, when it has an event source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsStatus>,
    /// `Ready`, `Progressing` and `Degraded`, as Kubernetes gives conditions (see
    /// `crate::status::conditions`).
    #[serde(default)]
    pub conditions: Vec<crate::condition::Condition>,
}

impl Stores {
    /// Each store's answers so far (for metrics): store, kind, result (`changed`,
    /// `unchanged` or an error kind), count.
    #[must_use]
    pub fn answers(&self) -> Vec<(String, &'static str, &'static str, u64)> {
        self.by_name
            .iter()
            .flat_map(|(name, store)| {
                store
                    .answers
                    .iter()
                    .map(move |(result, n)| (name.clone(), store.provider.kind(), *result, *n))
            })
            .collect()
    }

    /// The stores whose secrets are leased credentials (an `openbao` store on a database
    /// engine): their ends are leases', not certificates'.
    #[must_use]
    pub fn leasing(&self) -> std::collections::BTreeSet<String> {
        self.by_name
            .iter()
            .filter(|(_, store)| {
                matches!(&store.provider, ramlet_specs::model::Provider::Openbao(o) if o.database.is_some())
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Each store's health, for the status file.
    #[must_use]
    pub fn status(&self) -> BTreeMap<String, StoreStatus> {
        let now = Instant::now();
        self.by_name
            .iter()
            .map(|(name, store)| {
                let error = store
                    .client
                    .as_ref()
                    .err()
                    .or_else(|| store.entries.values().find_map(|e| e.error.as_ref()));
                let status = StoreStatus {
                    kind: store.provider.kind().to_owned(),
                    plain_text_at_rest: store.can.plain_at_rest,
                    healthy: error.is_none(),
                    error_kind: error
                        .map(|e| e.kind().as_str().to_owned())
                        .unwrap_or_default(),
                    message: error.map(ToString::to_string).unwrap_or_default(),
                    secrets: store.entries.len(),
                    last_refresh: store.last_refresh.clone().unwrap_or_default(),
                    next_refresh_secs: store.next_due.saturating_duration_since(now).as_secs(),
                    events: store.listener.as_ref().map(|l| EventsStatus {
                        source: l.source.kind().to_owned(),
                        from: match &l.source {
                            EventSource::PubSub { subscription, .. } => subscription.clone(),
                            EventSource::Sqs { queue, .. } => queue.clone(),
                        },
                        listening: l.error.is_none(),
                        error: l.error.clone().unwrap_or_default(),
                        fetched: l.fetched,
                        unused: l.unused,
                    }),
                    conditions: Vec::new(),
                };
                (name.clone(), status)
            })
            .collect()
    }
}
