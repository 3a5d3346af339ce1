//! The secret stores in use: one client per store (built once, rebuilt only when the store's
//! settings change), each store on its own refresh timer with jitter and its own backoff, and
//! the last good value of every secret in memory (zeroized when dropped).
//! (Over 450 lines: refreshes, events and status share one table of stores, their timers and
//! their held events; cut apart, each part would reach into the others' state.)
//!
//! A refresh asks each store only for what is due: every secret of a store whose timer fired,
//! and, in any store, the secrets a spec edit newly references. References are deduped by
//! (store, name, version) first, so 50 specs sharing a secret cost one call. Stores are
//! refreshed concurrently: a slow store costs at most its timeout, and afterwards waits out its
//! own backoff without delaying the others.
//!
//! A store with `events` also has a listener (see [`super::events`]): an event marks
//! the secrets it names due for the next refresh, and is held until that fetch answered. While
//! the listener cannot receive, the store is refreshed at least every `fallbackInterval`.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use ramlet_specs::model::{EventSource, Provider, SecretRef, SecretStore, SecretVersion};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::events::{self, Event, Notice, Sink};
use super::{
    Connector, ErrorKind, Fetched, Limits, MAX_SECRET_BYTES, ProviderError, Request, SecretProvider,
};
use crate::retry::ErrorPolicy;
use crate::secrets::{Secret, SecretId};

/// The shortest backoff after a failed refresh.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest backoff: a store that keeps failing is tried every 5 minutes at most.
pub const BACKOFF_MAX: Duration = Duration::from_mins(5);

/// Which stores a refresh must ask even if their timers have not fired; ordered by how much
/// each asks (merging wake-ups keeps the largest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Due {
    /// Only stores whose timer fired (and new references anywhere).
    Timers,
    /// Also every local store, `file`, `creds` and `age`: a file changed on disk that is in no
    /// `file` or `creds` store's folder (a spec, an `age` file), or the watcher lost track. A
    /// file in such a folder marks only its own secret due ([`Stores::files_changed`]).
    Files,
    /// Every store (`ramlet sync`, SIGHUP).
    All,
}

/// A secret at one version in one store.
type Key = (String, SecretVersion);

/// One secret's last good value and last error.
#[derive(Debug, Default)]
struct Entry {
    value: Option<Secret>,
    error: Option<ProviderError>,
}

/// One store: its client, timer, backoff and secrets.
struct Store {
    provider: Provider,
    /// What it can do: its client's word once it has one, its settings' before.
    can: super::Capabilities,
    interval: Duration,
    client: Result<Arc<dyn SecretProvider>, ProviderError>,
    next_due: Instant,
    /// Its error policy (see [`crate::retry`]).
    errors: ErrorPolicy,
    entries: BTreeMap<Key, Entry>,
    last_refresh: Option<String>,
    /// Answers so far, by result: `changed`, `unchanged` or an error kind.
    answers: BTreeMap<&'static str, u64>,
    /// Its change-event listener, when the store names an event source.
    listener: Option<Listener>,
    /// Secret names an event marked due, fetched by the next refresh whatever the timer says.
    marked: BTreeSet<String>,
}

/// A running listener and what it reported.
struct Listener {
    source: EventSource,
    fallback: Duration,
    task: tokio::task::JoinHandle<()>,
    /// Why it cannot receive; `None` while it receives (or has not said yet).
    error: Option<String>,
    /// Events that made ramlet fetch a secret.
    fetched: u64,
    /// Events for secrets no spec here uses.
    unused: u64,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

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
}

/// Every store in use.
pub struct Stores {
    connector: Connector,
    limits: Limits,
    by_name: BTreeMap<String, Store>,
    /// Where listeners send their events; without one (`ramlet plan`, tests) none is started.
    sink: Option<Sink>,
    /// Starts a listener.
    spawn: events::Spawn,
    /// Events waiting for the fetch they asked for.
    held: Vec<Event>,
}

impl Stores {
    /// No stores yet; clients are made by `connector` when first needed.
    #[must_use]
    pub fn new(connector: Connector, limits: Limits) -> Self {
        Self {
            connector,
            limits,
            by_name: BTreeMap::new(),
            sink: None,
            spawn: events::spawn,
            held: Vec::new(),
        }
    }

    /// From now on, starts a listener with `spawn` (the real one is [`events::spawn`]),
    /// sending to `sink`, for every store that names an event source.
    pub fn listen_with(&mut self, sink: Sink, spawn: events::Spawn) {
        self.sink = Some(sink);
        self.spawn = spawn;
    }

    /// Takes a listener's notice. An event for secrets in use marks them due and is held until
    /// they are fetched; one for secrets no spec uses is acknowledged at once. Returns whether
    /// a reconcile should follow.
    pub fn notice(&mut self, notice: Notice) -> bool {
        match notice {
            Notice::Health { store, error } => {
                let Some(store) = self.by_name.get_mut(&store) else {
                    return false;
                };
                let Some(listener) = store.listener.as_mut() else {
                    return false;
                };
                if error.is_some() {
                    // Polling takes over: the next refresh is at most `fallback` away.
                    let fallback = Instant::now() + jitter(listener.fallback);
                    store.next_due = store.next_due.min(fallback);
                }
                listener.error = error;
                true
            }
            Notice::Event(event) => self.event(event),
        }
    }

    fn event(&mut self, event: Event) -> bool {
        let Some(store) = self.by_name.get_mut(&event.store) else {
            event.ack.ack();
            return false;
        };
        let used: BTreeSet<String> = store
            .entries
            .keys()
            .map(|(name, _)| name)
            .filter(|name| event.names.contains(name))
            .cloned()
            .collect();
        if let Some(listener) = store.listener.as_mut() {
            let count = if used.is_empty() {
                &mut listener.unused
            } else {
                &mut listener.fetched
            };
            *count += 1;
        }
        if used.is_empty() {
            tracing::debug!(store = %event.store, secret = ?event.names, what = %event.what, "change event for a secret no spec here uses");
            event.ack.ack();
            return false;
        }
        tracing::info!(store = %event.store, secret = ?used, what = %event.what, "{}: change event {} for {used:?}", event.store, event.what);
        store.marked.extend(used);
        // A newer event for the same secret stands for the older ones.
        self.held
            .extract_if(.., |held| {
                held.store == event.store && held.names == event.names
            })
            .for_each(|older| older.ack.ack());
        self.held.push(event);
        true
    }

    /// Takes the paths a file event names: a path in a `file` or `creds` store's folder marks
    /// the secret stored there due (or, for any other path in that folder, such as a swapped
    /// `..data` link, every secret of that store), so that one rotated file costs one read, not
    /// a read of every local secret. Returns false when some path is in no such folder (a
    /// spec, an `age` file, an event without paths): then every local store must be read.
    pub fn files_changed(&mut self, paths: &[std::path::PathBuf]) -> bool {
        if paths.is_empty() {
            return false;
        }
        for path in paths {
            let Some((store, dir)) = self.by_name.values_mut().find_map(|store| {
                let dir = store.can.folder.clone()?;
                path.starts_with(&dir).then_some((store, dir))
            }) else {
                return false;
            };
            let relative = path
                .strip_prefix(&dir)
                .ok()
                .and_then(std::path::Path::to_str)
                .unwrap_or_default();
            let names = store.entries.keys().map(|(name, _)| name);
            if names.clone().any(|name| name == relative) {
                store.marked.insert(relative.to_owned());
            } else {
                store.marked.extend(names.cloned());
            }
        }
        true
    }

    /// Acknowledges the held events whose secrets were fetched since (or are no longer used);
    /// an event whose fetch failed stays held for the next try.
    pub fn ack_fetched(&mut self) {
        let by_name = &self.by_name;
        let done = |event: &mut Event| {
            by_name.get(&event.store).is_none_or(|store| {
                !store.entries.iter().any(|((name, _), entry)| {
                    event.names.contains(name)
                        && (store.marked.contains(name) || entry.error.is_some())
                })
            })
        };
        self.held
            .extract_if(.., done)
            .for_each(|event| event.ack.ack());
    }

    /// Brings the secrets that `references` name up to date: builds missing or changed
    /// clients, then asks each store, concurrently, for what is due. Stores and secrets no
    /// longer referenced are forgotten (and their values wiped).
    pub async fn refresh<'a>(
        &mut self,
        stores: &BTreeMap<ramlet_specs::model::Name, SecretStore>,
        references: impl IntoIterator<Item = &'a SecretRef>,
        due: Due,
    ) {
        let now = Instant::now();
        let mut wanted: BTreeMap<String, (&SecretStore, BTreeSet<Key>)> = BTreeMap::new();
        for reference in references {
            if let Some(store) = stores.get(&reference.store) {
                wanted
                    .entry(reference.store.to_string())
                    .or_insert_with(|| (store, BTreeSet::new()))
                    .1
                    .insert((reference.name.clone(), reference.version.clone()));
            }
        }
        self.by_name.retain(|name, _| wanted.contains_key(name));
        self.connect(&wanted, now).await;
        self.listen(&wanted);
        let work = self.due(&wanted, due, now);
        tracing::debug!(
            ?due,
            requests = work.iter().map(|w| w.3.len()).sum::<usize>(),
            "asking the stores"
        );
        let limits = self.limits;
        let answers = futures_util::future::join_all(work.into_iter().map(
            |(name, whole, client, requests)| async move {
                let answers = match &client {
                    Ok(client) => client.fetch(&requests, limits).await,
                    Err(error) => requests.iter().map(|_| Err(error.clone())).collect(),
                };
                (name, whole, requests, answers)
            },
        ))
        .await;
        let stamp = crate::util::now_rfc3339();
        for (name, whole, requests, answers) in answers {
            if let Some(store) = self.by_name.get_mut(&name) {
                store.record(&name, whole, requests, answers, now, &stamp);
            }
        }
    }

    /// Builds a client for every store that is new, whose settings changed, or whose last
    /// attempt failed and is due again.
    async fn connect(
        &mut self,
        wanted: &BTreeMap<String, (&SecretStore, BTreeSet<Key>)>,
        now: Instant,
    ) {
        let mut connecting = Vec::new();
        for (name, (spec, _)) in wanted {
            let current = self.by_name.get(name);
            let rebuild = current.is_none_or(|s| s.provider != spec.provider);
            let retry = current.is_some_and(|s| s.client.is_err() && s.next_due <= now);
            if rebuild || retry {
                connecting.push((name.clone(), spec.provider.clone()));
            }
        }
        let limits = self.limits;
        let clients =
            futures_util::future::join_all(connecting.into_iter().map(|(name, provider)| {
                let connect = (self.connector)(&provider);
                async move {
                    let client = super::bounded(limits, connect).await;
                    (name, provider, client)
                }
            }))
            .await;
        for (name, provider, client) in clients {
            if let Err(error) = &client {
                tracing::warn!(store = %name, kind = error.kind().as_str(), %error, "cannot build the store's client");
            }
            let store = self.by_name.entry(name).or_insert_with(|| Store {
                can: super::capabilities(&provider),
                provider: provider.clone(),
                interval: Duration::ZERO,
                client: Err(ProviderError::unavailable("not connected yet")),
                next_due: now,
                errors: ErrorPolicy::new(BACKOFF_MIN, BACKOFF_MAX),
                entries: BTreeMap::new(),
                last_refresh: None,
                answers: BTreeMap::new(),
                listener: None,
                marked: BTreeSet::new(),
            });
            if store.provider != provider {
                // Other settings, maybe another account: what the old client read is not
                // this store's any more.
                store.entries.clear();
                store.next_due = now;
                store.provider = provider;
            }
            store.can = match &client {
                Ok(client) => client.capabilities(),
                Err(_) => super::capabilities(&store.provider),
            };
            store.client = client;
        }
    }

    /// Starts the listener of every store with an event source that has none (or one for
    /// another source), and stops those of stores without one.
    fn listen(&mut self, wanted: &BTreeMap<String, (&SecretStore, BTreeSet<Key>)>) {
        let Some(sink) = &self.sink else {
            return;
        };
        for (name, (spec, _)) in wanted {
            let Some(store) = self.by_name.get_mut(name) else {
                continue;
            };
            match &spec.events {
                None => store.listener = None,
                Some(wanted) => match &mut store.listener {
                    Some(listener) if listener.source == wanted.source => {
                        listener.fallback = wanted.fallback_interval;
                    }
                    _ => {
                        store.listener = Some(Listener {
                            source: wanted.source.clone(),
                            fallback: wanted.fallback_interval,
                            task: (self.spawn)(name, &wanted.source, sink.clone()),
                            error: None,
                            fetched: 0,
                            unused: 0,
                        });
                    }
                },
            }
        }
    }

    /// Per store, what to ask now: everything when its timer fired or `due` forces it, else
    /// the references it has never answered and those an event marked.
    fn due(
        &mut self,
        wanted: &BTreeMap<String, (&SecretStore, BTreeSet<Key>)>,
        due: Due,
        now: Instant,
    ) -> Vec<Work> {
        let mut work = Vec::new();
        for (name, (spec, keys)) in wanted {
            let Some(store) = self.by_name.get_mut(name) else {
                continue;
            };
            store.interval = match &store.listener {
                Some(l) if l.error.is_some() => spec.refresh_interval.min(l.fallback),
                _ => spec.refresh_interval,
            };
            store.entries.retain(|key, _| keys.contains(key));
            let local = store.can.local;
            let forced = match due {
                Due::Timers => false,
                Due::Files => local,
                Due::All => true,
            };
            let whole = forced || store.next_due <= now;
            // A store backing off after a failed refresh is asked again when its backoff ends,
            // events or not: a stream of events must not hammer a provider that throttles or
            // fails. Their secrets stay marked and the events held (unacknowledged) until then.
            // A local store reads this host's disk: a file that changed is read at once.
            let backing_off = store.errors.backing_off() && !whole && !local;
            let marked = if backing_off {
                BTreeSet::new()
            } else {
                std::mem::take(&mut store.marked)
            };
            let requests: Vec<Request> = keys
                .iter()
                .filter(|key| whole || marked.contains(&key.0) || !store.entries.contains_key(*key))
                .map(|key| Request {
                    name: key.0.clone(),
                    version: key.1.clone(),
                    known: store
                        .entries
                        .get(key)
                        .and_then(|e| e.value.as_ref())
                        .map(|v| v.version.clone()),
                })
                .collect();
            if !requests.is_empty() {
                work.push((name.clone(), whole, store.client.clone(), requests));
            }
        }
        work
    }

    /// The last good value of `version` of secret `id`, or why there is none or it may be
    /// stale.
    pub fn get(&self, id: &SecretId, version: &SecretVersion) -> Result<&Secret, ProviderError> {
        let store = self.by_name.get(&id.store).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Misconfigured,
                format!("store {} is not in use", id.store),
            )
        })?;
        let entry = store.entries.get(&(id.name.clone(), version.clone()));
        match entry {
            Some(Entry {
                error: Some(error), ..
            }) => Err(error.clone()),
            Some(Entry {
                value: Some(value), ..
            }) => Ok(value),
            _ => Err(ProviderError::unavailable("not fetched yet")),
        }
    }

    /// How long until the first store is due, if any store is in use.
    #[must_use]
    pub fn next_due(&self) -> Option<Duration> {
        let now = Instant::now();
        self.by_name
            .values()
            .map(|s| s.next_due.saturating_duration_since(now))
            .min()
    }

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
                };
                (name.clone(), status)
            })
            .collect()
    }
}

impl Store {
    /// Takes a refresh's answers: new values replace old ones, errors keep the last good
    /// value; then sets the store's next due time (its interval, or its backoff).
    fn record(
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
                Ok(Fetched::Unchanged) => "unchanged",
                Ok(Fetched::New(_)) => "changed",
                Err(error) => error.kind().as_str(),
            };
            *self.answers.entry(result).or_default() += 1;
            match answer {
                Ok(Fetched::Unchanged) => entry.error = None,
                Ok(Fetched::New(secret)) => {
                    tracing::info!(store = %name, secret = %request.name, version = %secret.version, "{name}/{}: new secret version {}", request.name, secret.version);
                    entry.value = Some(secret);
                    entry.error = None;
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

/// One store's share of a refresh: its name, whether it is a whole refresh, its client and
/// what to ask.
type Work = (
    String,
    bool,
    Result<Arc<dyn SecretProvider>, ProviderError>,
    Vec<Request>,
);

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
fn jitter(wait: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // A fraction in [0.9, 1.1).
    #[allow(clippy::cast_precision_loss)] // 53 bits of randomness are plenty
    let factor = 0.9 + 0.2 * ((random >> 11) as f64 / (1u64 << 53) as f64);
    wait.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let base = Duration::from_secs(100);
        let samples: BTreeSet<u128> = (0..50).map(|_| jitter(base).as_millis()).collect();
        assert!(samples.iter().all(|ms| (90_000..110_000).contains(ms)));
        assert!(samples.len() > 10, "jitter does not vary: {samples:?}");
    }

    /// How many answers of `result` (`changed`, `unchanged`) the stores gave so far.
    fn answered(stores: &Stores, result: &str) -> u64 {
        stores
            .answers()
            .iter()
            .filter(|(_, _, r, _)| *r == result)
            .map(|(_, _, _, n)| n)
            .sum()
    }

    #[tokio::test]
    async fn a_changed_file_is_read_alone_and_an_unknown_path_reads_its_whole_store() {
        let root = std::env::temp_dir().join(format!("ramlet-files-due-{}", std::process::id()));
        let dir = root.join("secrets");
        std::fs::create_dir_all(dir.join("prod")).unwrap();
        for name in ["a", "b", "prod/c"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        let store = SecretStore {
            name: ramlet_specs::model::Name::parse("local").unwrap(),
            origin: ramlet_specs::model::Origin {
                file: root.join("store.yaml"),
                document: 0,
            },
            refresh_interval: Duration::from_hours(1),
            provider: Provider::File {
                directory: dir.clone(),
            },
            events: None,
            canary: 1,
            canary_selector: None,
        };
        let stores_by_name = BTreeMap::from([(store.name.clone(), store.clone())]);
        let references: Vec<SecretRef> = ["a", "b", "prod/c"]
            .iter()
            .map(|name| SecretRef {
                store: store.name.clone(),
                name: (*name).into(),
                version: SecretVersion::Latest,
                property: None,
                encoding: ramlet_specs::model::Encoding::Raw,
            })
            .collect();
        let mut stores = Stores::new(super::super::connector(root.clone()), Limits::default());
        stores
            .refresh(&stores_by_name, &references, Due::Timers)
            .await;
        assert_eq!(answered(&stores, "changed"), 3);

        // One rotated file: only it is read.
        std::fs::write(dir.join("prod/c"), "c2").unwrap();
        assert!(stores.files_changed(&[dir.join("prod/c")]));
        stores
            .refresh(&stores_by_name, &references, Due::Timers)
            .await;
        assert_eq!(
            (answered(&stores, "changed"), answered(&stores, "unchanged")),
            (4, 0)
        );
        assert_eq!(
            stores
                .get(&SecretId::of(&references[2]), &references[2].version)
                .unwrap()
                .bytes
                .expose(),
            b"c2"
        );

        // A path in the folder that is no secret (a swapped link, a temporary file): all of it.
        assert!(stores.files_changed(&[dir.join("..data")]));
        stores
            .refresh(&stores_by_name, &references, Due::Timers)
            .await;
        assert_eq!(
            (answered(&stores, "changed"), answered(&stores, "unchanged")),
            (4, 3)
        );

        // Outside every local store's folder, or no path at all: the caller reads them all.
        assert!(!stores.files_changed(&[root.join("specs/web.yaml")]));
        assert!(!stores.files_changed(&[]));
        let _ = std::fs::remove_dir_all(root);
    }
}
