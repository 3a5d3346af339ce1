//! When `Stores` asks each store, on tokio's paused clock: every store on its own timer with
//! jitter, a failing store backing off (capped at its interval, or past it up to 5 minutes when
//! throttled) without moving any other store's timer, and a recovered store back on its
//! interval. The loop mirrors the agent's: refresh what is due, sleep until the next store is.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ramlet::providers::stores::{Due, Stores};
use ramlet::providers::{
    Connector, ErrorKind, Fetched, Limits, ProviderError, Request, SecretProvider,
};
use ramlet::secrets::{Secret, SecretBytes};
use ramlet::util::BoxFuture;
use ramlet_specs::model::Provider as StoreKind;
use tokio::time::Instant;

/// Per store (its `file.directory`): the error it answers with, if any, and when it was asked.
#[derive(Default)]
struct Upstream {
    failing: BTreeMap<String, ErrorKind>,
    calls: BTreeMap<String, Vec<Instant>>,
}

type Shared = Arc<Mutex<Upstream>>;

struct Fake {
    store: String,
    upstream: Shared,
}

impl SecretProvider for Fake {
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        _: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        Box::pin(async move {
            let mut upstream = self.upstream.lock().unwrap();
            upstream
                .calls
                .entry(self.store.clone())
                .or_default()
                .push(Instant::now());
            let failing = upstream.failing.get(&self.store).copied();
            requests
                .iter()
                .map(|request| match failing {
                    Some(kind) => Err(ProviderError::new(kind, "upstream says no")),
                    None if request.known.as_deref() == Some("1") => Ok(Fetched::Unchanged),
                    None => Ok(Fetched::New(Secret {
                        bytes: SecretBytes::new(b"value".to_vec()),
                        version: "1".into(),
                    })),
                })
                .collect()
        })
    }
}

fn connector(upstream: Shared) -> Connector {
    Arc::new(move |provider| {
        let StoreKind::File { directory } = provider else {
            panic!("only file stores here")
        };
        let store = directory
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let client: Arc<dyn SecretProvider> = Arc::new(Fake {
            store,
            upstream: upstream.clone(),
        });
        Box::pin(async move { Ok(client) })
    })
}

/// Stores `a` and `b` with these refresh intervals (seconds), one container using one secret
/// of each.
fn catalog(a: u64, b: u64) -> ramlet_specs::Catalog {
    let text = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: a}}\nspec:\n  refreshInterval: {a}s\n  file: {{directory: /fake/a}}\n---\n\
         apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: b}}\nspec:\n  refreshInterval: {b}s\n  file: {{directory: /fake/b}}\n---\n\
         apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: c}}\nspec:\n  image: localhost/busybox:latest\n  volumes:\n    - name: s\n      mountPath: /run/s\n      files:\n{files}",
        files = "        - {path: a, secret: {store: a, name: x}}\n        - {path: b, secret: {store: b, name: y}}\n"
    );
    let catalog = ramlet_specs::load_texts([(Path::new("/specs/all.yaml").to_owned(), text)]);
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    catalog
}

/// Runs the agent's refresh loop for `horizon` of paused time; returns the gaps between
/// consecutive calls to each store, in seconds.
async fn run(
    upstream: &Shared,
    catalog: &ramlet_specs::Catalog,
    horizon: Duration,
    mut at: impl FnMut(Duration, &Shared),
) -> BTreeMap<String, Vec<f64>> {
    let mut stores = Stores::new(connector(upstream.clone()), Limits::default());
    let start = Instant::now();
    let references: Vec<_> = catalog
        .containers
        .values()
        .flat_map(|c| &c.volumes)
        .flat_map(|v| &v.files)
        .map(|f| &f.secret)
        .collect();
    while start.elapsed() < horizon {
        at(start.elapsed(), upstream);
        stores
            .refresh(&catalog.stores, references.iter().copied(), Due::Timers)
            .await;
        tokio::time::sleep(stores.next_due().unwrap()).await;
    }
    let upstream = upstream.lock().unwrap();
    upstream
        .calls
        .iter()
        .map(|(store, calls)| {
            let gaps = calls
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64())
                .collect();
            (store.clone(), gaps)
        })
        .collect()
}

fn within(gap: f64, seconds: f64) -> bool {
    (seconds * 0.9 - 0.01..=seconds * 1.1 + 0.01).contains(&gap)
}

#[tokio::test(start_paused = true)]
async fn each_store_keeps_its_own_interval_with_jitter() {
    let upstream = Shared::default();
    let gaps = run(
        &upstream,
        &catalog(10, 60),
        Duration::from_mins(10),
        |_, _| {},
    )
    .await;
    assert!(gaps["a"].len() >= 50, "{gaps:?}");
    assert!(gaps["a"].iter().all(|g| within(*g, 10.0)), "{gaps:?}");
    assert!(gaps["b"].iter().all(|g| within(*g, 60.0)), "{gaps:?}");
    assert!((8..=11).contains(&gaps["b"].len()), "{gaps:?}");
    // Jitter: the gaps are not all the same, so a fleet drifts apart.
    let first = gaps["a"][0];
    assert!(
        gaps["a"].iter().any(|g| (g - first).abs() > 0.05),
        "{gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_backs_off_up_to_its_interval_and_never_moves_another() {
    let upstream = Shared::default();
    upstream
        .lock()
        .unwrap()
        .failing
        .insert("a".into(), ErrorKind::Unavailable);
    let gaps = run(
        &upstream,
        &catalog(60, 10),
        Duration::from_mins(6),
        |_, _| {},
    )
    .await;
    let a = &gaps["a"];
    // 1, 2, 4, 8, 16, 32 s, then capped at the 60 s interval: a fixed fault is seen in time.
    for (gap, expected) in a.iter().zip([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]) {
        assert!(within(*gap, expected), "a: {a:?}");
    }
    assert!(a.len() >= 8, "a: {a:?}");
    assert!(gaps["b"].iter().all(|g| within(*g, 10.0)), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn throttling_backs_off_past_the_interval_to_five_minutes_then_recovers() {
    let upstream = Shared::default();
    upstream
        .lock()
        .unwrap()
        .failing
        .insert("a".into(), ErrorKind::Throttled);
    let heal_at = Duration::from_mins(19);
    let gaps = run(
        &upstream,
        &catalog(10, 10),
        Duration::from_mins(25),
        |elapsed, upstream| {
            if elapsed >= heal_at {
                upstream.lock().unwrap().failing.clear();
            }
        },
    )
    .await;
    let a = &gaps["a"];
    let expected = [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0,
    ];
    for (gap, expected) in a.iter().zip(expected) {
        assert!(within(*gap, expected), "a: {a:?}");
    }
    assert!(a.len() >= expected.len() + 5, "a: {a:?}");
    // Healed: back on its 10 s interval.
    let tail = &a[a.len() - 5..];
    assert!(tail.iter().all(|g| within(*g, 10.0)), "a: {a:?}");
    assert!(gaps["b"].iter().all(|g| within(*g, 10.0)), "{gaps:?}");
}
