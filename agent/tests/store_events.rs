//! What `Stores` does with change events, on tokio's paused clock, with the tests' fake
//! provider (`tests/fakes`) and a stand-in listener: an event fetches just its secret whatever the timer says,
//! a burst is one fetch, an event for a secret no spec uses costs nothing and is acknowledged at
//! once, an event is acknowledged only after its fetch answered (held while it fails), and a
//! failing listener makes the store poll at its fallback interval.

mod fakes;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ramlet::providers::events::{Ack, Event, Notice, Sink};
use ramlet::providers::stores::{Due, Stores};
use ramlet::providers::{ErrorKind, Limits, ProviderError};
use ramlet_specs::model::EventSource;

/// Store `a` (AWS, refreshed hourly, events from a queue, fallback 20 s); one container uses
/// its secrets `x` and `y`.
fn catalog() -> ramlet_specs::Catalog {
    let text = "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: a}\nspec:\n  refreshInterval: 1h\n  aws:\n    region: eu-west-1\n    events: {queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ramlet', fallbackInterval: 20s}\n---\n\
        apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: c}\nspec:\n  image: localhost/busybox:latest\n  volumes:\n    - name: s\n      mountPath: /run/s\n      files:\n        - {path: x, secret: {store: a, name: x}}\n        - {path: y, secret: {store: a, name: y}}\n";
    let catalog =
        ramlet_specs::load_texts([(Path::new("/specs/all.yaml").to_owned(), text.into())]);
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    catalog
}

/// A listener that never sends anything by itself: the test sends its notices.
fn idle_listener(_: &str, _: &EventSource, _: Sink) -> tokio::task::JoinHandle<()> {
    tokio::spawn(std::future::pending())
}

struct Harness {
    /// The fake store's side (`tests/fakes`): its secrets and the requests it got.
    host: fakes::Shared,
    /// The events acknowledged, as `name#n`.
    acked: Arc<Mutex<Vec<String>>>,
    stores: Stores,
    catalog: ramlet_specs::Catalog,
}

impl Harness {
    async fn new() -> Self {
        let host = fakes::Shared::default();
        for name in ["x", "y"] {
            host.lock()
                .unwrap()
                .secrets
                .insert(name.into(), Ok("one".into()));
        }
        let mut stores = Stores::new(fakes::connector(host.clone()), Limits::default());
        stores.listen_with(Arc::new(|_| {}), idle_listener);
        let mut harness = Self {
            host,
            acked: Arc::default(),
            stores,
            catalog: catalog(),
        };
        harness.refresh().await;
        harness.asked();
        harness
    }

    async fn refresh(&mut self) {
        let references: Vec<_> = self
            .catalog
            .containers
            .values()
            .flat_map(|c| &c.volumes)
            .flat_map(|v| &v.files)
            .map(|f| &f.secret)
            .collect();
        self.stores
            .refresh(&self.catalog.stores, references, Due::Timers)
            .await;
        self.stores.settle();
    }

    /// Sets what secret `name` holds upstream, or makes it fail.
    fn upstream(&self, name: &str, value: Result<&str, ProviderError>) {
        self.host
            .lock()
            .unwrap()
            .secrets
            .insert(name.into(), value.map(str::to_owned));
    }

    /// Sends an event for `name`, numbered `n` (its ack records `name#n`).
    fn event(&mut self, name: &str, n: u32) -> bool {
        let acked = self.acked.clone();
        let tag = format!("{name}#{n}");
        self.stores.notice(Notice::Event(Event {
            store: "a".into(),
            names: vec![
                format!("arn:aws:secretsmanager:eu-west-1:1:secret:{name}-AbC123"),
                name.into(),
            ],
            what: "PutSecretValue".into(),
            ack: Ack::new(move || acked.lock().unwrap().push(tag)),
        }))
    }

    /// Requests since the last call, by secret name.
    fn asked(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for name in std::mem::take(&mut self.host.lock().unwrap().asked) {
            *counts.entry(name).or_default() += 1;
        }
        counts
    }

    fn acked(&self) -> Vec<String> {
        std::mem::take(&mut self.acked.lock().unwrap())
    }

    fn value_version(&self, name: &str) -> String {
        let reference = self.catalog.containers.values().next().unwrap().volumes[0]
            .files
            .iter()
            .find(|f| f.secret.name == name)
            .unwrap()
            .secret
            .clone();
        self.stores.get(&reference).unwrap().version.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_events_is_one_fetch_of_that_secret_acknowledged_after_it() {
    let mut h = Harness::new().await;
    h.upstream("x", Ok("two"));
    assert!(h.event("x", 1));
    assert!(h.event("x", 2));
    assert!(h.event("x", 3));
    assert_eq!(
        h.acked(),
        ["x#1", "x#2"],
        "a newer event stands for the older ones"
    );
    h.refresh().await;
    assert_eq!(
        h.asked(),
        BTreeMap::from([("x".into(), 1)]),
        "one fetch, of x only"
    );
    assert_eq!(h.value_version("x"), "v-two");
    assert_eq!(h.acked(), ["x#3"], "acknowledged once its fetch answered");
    assert_eq!(h.stores.status()["a"].events.as_ref().unwrap().fetched, 3);
}

#[tokio::test(start_paused = true)]
async fn an_event_for_a_secret_no_spec_uses_costs_nothing() {
    let mut h = Harness::new().await;
    assert!(!h.event("other", 1), "no reconcile for it");
    assert_eq!(h.acked(), ["other#1"], "acknowledged at once");
    h.refresh().await;
    assert!(h.asked().is_empty(), "nothing fetched: {:?}", h.asked());
    let events = h.stores.status()["a"].events.clone().unwrap();
    assert_eq!((events.fetched, events.unused), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn an_event_whose_fetch_fails_is_held_until_a_fetch_answers() {
    let mut h = Harness::new().await;
    h.upstream("y", Err(ProviderError::new(ErrorKind::Unavailable, "down")));
    assert!(h.event("y", 1));
    h.refresh().await;
    assert_eq!(h.asked(), BTreeMap::from([("y".into(), 1)]));
    assert!(
        h.acked().is_empty(),
        "not acknowledged while the fetch fails"
    );
    h.upstream("y", Ok("one"));
    // The failed store is retried after its backoff.
    tokio::time::sleep(h.stores.next_due().unwrap()).await;
    h.refresh().await;
    assert_eq!(h.acked(), ["y#1"]);
}

/// Issue 19: events went straight past the store's backoff, so a provider that throttled got a
/// fetch per event. While the store backs off, an event waits (held, its secret still marked);
/// when the backoff ends, one refresh answers it.
#[tokio::test(start_paused = true)]
async fn an_event_waits_out_the_backoff_of_a_throttled_store() {
    let mut h = Harness::new().await;
    h.upstream(
        "x",
        Err(ProviderError::new(ErrorKind::Throttled, "rate exceeded")),
    );
    // A whole refresh (its timer) that the provider throttles.
    tokio::time::sleep(h.stores.next_due().unwrap()).await;
    h.refresh().await;
    assert_eq!(h.asked().get("x"), Some(&1));
    let backoff = h.stores.next_due().unwrap();
    h.upstream("x", Ok("two"));
    h.upstream("y", Ok("two"));
    for n in 1..=5 {
        assert!(h.event("y", n));
        h.refresh().await;
    }
    assert!(h.asked().is_empty(), "the backoff holds events back too");
    assert_eq!(
        h.acked(),
        ["y#1", "y#2", "y#3", "y#4"],
        "the newest stands held"
    );
    tokio::time::sleep(backoff).await;
    h.refresh().await;
    assert_eq!(
        h.asked(),
        BTreeMap::from([("x".into(), 1), ("y".into(), 1)]),
        "one refresh when the backoff ends"
    );
    assert_eq!(h.acked(), ["y#5"]);
    assert_eq!(h.value_version("y"), "v-two");
}

#[tokio::test(start_paused = true)]
async fn a_failing_listener_makes_the_store_poll_at_its_fallback_interval() {
    let mut h = Harness::new().await;
    assert!(h.stores.next_due().unwrap() > Duration::from_mins(50));
    assert!(h.stores.notice(Notice::Health {
        store: "a".into(),
        error: Some("cannot reach the queue".into()),
    }));
    let events = h.stores.status()["a"].events.clone().unwrap();
    assert!(!events.listening);
    assert_eq!(events.error, "cannot reach the queue");
    let mut gaps = Vec::new();
    for _ in 0..3 {
        let wait = h.stores.next_due().unwrap();
        gaps.push(wait.as_secs_f64());
        tokio::time::sleep(wait).await;
        h.refresh().await;
    }
    assert!(
        gaps.iter().all(|g| (17.9..=22.1).contains(g)),
        "polled about every 20 s: {gaps:?}"
    );
    assert_eq!(h.asked().values().sum::<usize>(), 6, "x and y, three times");
    // Back: the next refresh moves to the hourly interval again.
    h.stores.notice(Notice::Health {
        store: "a".into(),
        error: None,
    });
    tokio::time::sleep(h.stores.next_due().unwrap()).await;
    h.refresh().await;
    assert!(h.stores.next_due().unwrap() > Duration::from_mins(50));
    assert!(h.stores.status()["a"].events.as_ref().unwrap().listening);
}
