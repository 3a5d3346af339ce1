//! The secret stores in use: one client per store (built once, rebuilt only when the store's
//! settings change), each store on its own refresh timer with jitter and its own backoff, and
//! the last good value of every secret in memory (zeroized when dropped).
//!
//! Layout: this file keeps the table of stores and the refresh; `wake` what wakes a store
//! early (events, changed files), `record` what a refresh's answers do to a store,
//! `report` the status and metrics of each.
//!
//! A refresh asks each store only for what is due: every secret of a store whose timer fired,
//! and, in any store, the secrets a spec edit newly references. References are deduped by
//! (store, name, version) first, so 50 specs sharing a secret cost one call. Stores are
//! refreshed concurrently: a slow store costs at most its timeout, and afterwards waits out its
//! own backoff without delaying the others.
//!
//! A store that makes leased values (an `openbao` database engine) keeps its client past the
//! last reference, as a retired client, until the plan has revoked every lease it holds
//! ([`Stores::leases`], [`Stores::revoke`]).
//!
//! A store with `events` also has a listener (see [`super::events`]): an event marks
//! the secrets it names due for the next refresh, and is held until that fetch answered. While
//! the listener cannot receive, the store is refreshed at least every `fallbackInterval`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ramlet_specs::model::{Provider, SecretRef, SecretStore, SecretVersion};
use tokio::time::Instant;

use super::events::{self, Event, Sink};
use super::{Connector, ErrorKind, Limits, ProviderError, Request, SecretProvider};
use crate::retry::ErrorPolicy;
use wake::Listener;
pub use wake::Settle;

mod record;
mod report;
mod wake;

use crate::secrets::{Secret, SecretId};
pub use report::{EventsStatus, StoreStatus};

/// The shortest backoff after a failed refresh.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest backoff: a store that keeps failing is tried every 5 minutes at most.
pub const BACKOFF_MAX: Duration = Duration::from_mins(5);

/// Which stores a refresh must ask even if their timers have not fired; ordered by how much
/// each asks (merging wake-ups keeps the largest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Due {
    /// As `Timers`, for a wake-up that named secrets only (a file in a `file` or `creds`
    /// store's folder, a change event): the specs are taken as last loaded, not looked at.
    Secrets,
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
    /// When its value last changed (a new version arrived).
    seen: Option<Instant>,
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
    /// By store, the secrets some consumer reads beside another of that store
    /// ([`Stores::read_together`]).
    paired: BTreeMap<String, BTreeSet<String>>,
    /// Clients no store uses any more that still hold leases, by the store they served.
    retired: Vec<(String, Arc<dyn SecretProvider>)>,
}

/// A lease a store's client holds, as a decision sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldLease {
    /// The secret it is a version of.
    pub id: SecretId,
    /// The lease ID (the version).
    pub lease: String,
    /// Whether it is the value the store serves now (not retired, not replaced).
    pub current: bool,
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
            paired: BTreeMap::new(),
            retired: Vec::new(),
        }
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
        let unwanted: Vec<String> = self
            .by_name
            .keys()
            .filter(|name| !wanted.contains_key(*name))
            .cloned()
            .collect();
        for name in unwanted {
            if let Some(store) = self.by_name.remove(&name) {
                self.retire(name, store.client);
            }
        }
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
                // A lease to renew or a certificate to issue is on time, whatever the interval.
                // A step already overdue (its call just failed) waits for the backoff instead.
                let step = store.client.as_ref().ok().and_then(|c| c.next_step());
                if let Some(wait) = step.and_then(|at| at.checked_sub(crate::util::unix_now())) {
                    store.next_due = store.next_due.min(now + Duration::from_secs(wait.max(1)));
                }
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
            let store = self.by_name.entry(name.clone()).or_insert_with(|| Store {
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
                // this store's any more (its leases are revoked once nothing runs with them).
                if let Ok(old) = &store.client {
                    let old = Arc::clone(old);
                    if !old.leases().is_empty() {
                        self.retired.push((name.clone(), old));
                    }
                }
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
                Due::Secrets | Due::Timers => false,
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

    /// Keeps a client no store uses any more while it holds leases.
    fn retire(&mut self, store: String, client: Result<Arc<dyn SecretProvider>, ProviderError>) {
        if let Ok(client) = client
            && !client.leases().is_empty()
        {
            self.retired.push((store, client));
        }
    }

    /// Every lease the clients hold, current (the value a store serves now) or not.
    #[must_use]
    pub fn leases(&self) -> Vec<HeldLease> {
        let mut leases = Vec::new();
        for (name, store) in &self.by_name {
            let Ok(client) = &store.client else {
                continue;
            };
            for lease in client.leases() {
                let current = store
                    .entries
                    .get(&(lease.name.clone(), SecretVersion::Latest))
                    .and_then(|e| e.value.as_ref())
                    .is_some_and(|v| v.version == lease.id);
                leases.push(HeldLease {
                    id: SecretId::new(name.clone(), lease.name),
                    lease: lease.id,
                    current,
                });
            }
        }
        for (name, client) in &self.retired {
            leases.extend(client.leases().into_iter().map(|lease| HeldLease {
                id: SecretId::new(name.clone(), lease.name),
                lease: lease.id,
                current: false,
            }));
        }
        leases.sort();
        leases
    }

    /// Revokes `lease` of secret `id`, held by the store's client or a retired one; a retired
    /// client that holds nothing any more is dropped.
    ///
    /// # Errors
    /// The provider's, when it did not revoke it (it is tried again by the next plan).
    pub async fn revoke(&mut self, id: &SecretId, lease: &str) -> Result<(), ProviderError> {
        let holder = self
            .by_name
            .get(&id.store)
            .and_then(|s| s.client.as_ref().ok())
            .into_iter()
            .chain(
                self.retired
                    .iter()
                    .filter(|(store, _)| *store == id.store)
                    .map(|(_, client)| client),
            )
            .find(|client| client.leases().iter().any(|l| l.id == lease))
            .cloned();
        let result = match holder {
            Some(client) => client.revoke(lease, self.limits).await,
            None => Ok(()),
        };
        self.retired
            .retain(|(_, client)| !client.leases().is_empty());
        result
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

    /// When the last new version of secret `id` arrived (any version asked of it), if one did
    /// since ramlet started.
    #[must_use]
    pub fn seen(&self, id: &SecretId) -> Option<Instant> {
        self.by_name
            .get(&id.store)?
            .entries
            .iter()
            .filter(|((name, _), _)| *name == id.name)
            .filter_map(|(_, entry)| entry.seen)
            .max()
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
}

/// One store's share of a refresh: its name, whether it is a whole refresh, its client and
/// what to ask.
type Work = (
    String,
    bool,
    Result<Arc<dyn SecretProvider>, ProviderError>,
    Vec<Request>,
);

#[cfg(test)]
mod tests {
    use super::record::jitter;
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

    /// A client with a step of its own at a set time, whose fetches fail or not.
    #[derive(Debug)]
    struct Stepping {
        step: u64,
        fails: bool,
    }

    impl SecretProvider for Stepping {
        fn capabilities(&self) -> super::super::Capabilities {
            super::super::capabilities(&Provider::File {
                directory: "/".into(),
            })
        }

        fn fetch<'a>(
            &'a self,
            requests: &'a [Request],
            _: Limits,
        ) -> crate::util::BoxFuture<'a, Vec<Result<super::super::Fetched, ProviderError>>> {
            let answer = if self.fails {
                Err(ProviderError::unavailable("down"))
            } else {
                Ok(super::super::Fetched::Unchanged)
            };
            Box::pin(async move { requests.iter().map(|_| answer.clone()).collect() })
        }

        fn next_step(&self) -> Option<u64> {
            Some(self.step)
        }
    }

    /// A client's own step (a renewal due in 5 s) brings its store's refresh forward, whatever
    /// the interval; an overdue step whose call just failed does not make the store refresh at
    /// once again (that would hammer a server that is down): the backoff holds.
    #[tokio::test]
    async fn a_clients_own_step_brings_its_refresh_forward_but_never_past_the_backoff() {
        let store = SecretStore {
            name: ramlet_specs::model::Name::parse("bao").unwrap(),
            origin: ramlet_specs::model::Origin {
                file: "/specs/bao.yaml".into(),
                document: 0,
            },
            refresh_interval: Duration::from_hours(1),
            provider: Provider::File {
                directory: "/nonexistent".into(),
            },
            events: None,
            canary: 1,
            canary_selector: None,
        };
        let by_name = BTreeMap::from([(store.name.clone(), store.clone())]);
        let reference = SecretRef {
            store: store.name.clone(),
            name: "app".into(),
            version: SecretVersion::Latest,
            property: None,
            encoding: ramlet_specs::model::Encoding::Raw,
        };
        for (fails, step, within) in [
            (false, 5, Duration::from_secs(1)..Duration::from_secs(6)),
            (true, 0, Duration::from_millis(800)..Duration::from_secs(2)),
        ] {
            let step = crate::util::unix_now() + step;
            let connector: Connector = Arc::new(move |_: &Provider| {
                let client: Arc<dyn SecretProvider> = Arc::new(Stepping {
                    step: if fails { step - 10 } else { step },
                    fails,
                });
                Box::pin(async move { Ok(client) })
            });
            let mut stores = Stores::new(connector, Limits::default());
            stores
                .refresh(&by_name, std::iter::once(&reference), Due::Timers)
                .await;
            let next = stores.next_due().unwrap();
            assert!(
                within.contains(&next),
                "fails {fails}: next refresh in {next:?}"
            );
        }
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

        // One rotated file: only it is read, at once (no consumer reads it beside another).
        std::fs::write(dir.join("prod/c"), "c2").unwrap();
        assert_eq!(
            stores.files_changed(&[dir.join("prod/c")]),
            Some(Settle::Now)
        );
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

        // A path in the folder that is no secret (a swapped link, a temporary file): all of it;
        // `..data` at once (every file swapped together), anything else after its rename.
        assert_eq!(
            stores.files_changed(&[dir.join(".c.tmp")]),
            Some(Settle::Siblings)
        );
        assert_eq!(
            stores.files_changed(&[dir.join("..data")]),
            Some(Settle::Now)
        );
        stores
            .refresh(&stores_by_name, &references, Due::Timers)
            .await;
        assert_eq!(
            (answered(&stores, "changed"), answered(&stores, "unchanged")),
            (4, 3)
        );

        // Outside every local store's folder, or no path at all: the caller reads them all.
        assert_eq!(stores.files_changed(&[root.join("specs/web.yaml")]), None);
        assert_eq!(stores.files_changed(&[]), None);

        // A consumer that reads `a` and `b` (a certificate and its key): a change to either
        // waits for the other; `prod/c`, read alone, still goes at once.
        stores.read_together([vec![&references[0], &references[1]], vec![&references[2]]]);
        assert_eq!(
            stores.files_changed(&[dir.join("a")]),
            Some(Settle::Siblings)
        );
        assert_eq!(
            stores.files_changed(&[dir.join("prod/c")]),
            Some(Settle::Now)
        );
        let _ = std::fs::remove_dir_all(root);
    }
}
