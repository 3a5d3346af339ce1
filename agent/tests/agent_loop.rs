//! The agent as it runs: the real [`Reconciler`] inside the real control loop
//! ([`ramlet::agent::control_loop`]), on the tests' fakes (`tests/fakes`) and tokio's paused
//! clock. What a user would see over minutes and hours of a host's life, in milliseconds:
//! - each store asked on its own timer with jitter; a failing store backing off (capped at its
//!   interval, or past it to 5 minutes when throttled) without moving another; back on its
//!   interval once it heals;
//! - change events: a burst is one fetch of that secret and one restart of its container, each
//!   event acknowledged only once its fetch answered; an event for a secret no spec uses costs
//!   nothing; a throttled store's backoff holds events back; a failing listener makes the store
//!   poll at its fallback interval.

mod fakes;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fakes::World;
use ramlet::agent::{Wake, control_loop};
use ramlet::providers::events::{Ack, Event, Notice, Sink};
use ramlet::providers::{ErrorKind, ProviderError};
use ramlet::reconcile::Reconciler;
use ramlet::status::Phase;
use ramlet_specs::model::EventSource;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

/// Stores `a` and `b` (`a` with the given store settings, `b` a file store refreshed every
/// `b` seconds), and container `c` using secret `x` of `a` and `y` of `b`.
fn specs(world: &World, a: &str, b: u64) {
    world.spec(
        "store",
        &format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: a}}\nspec:\n{a}---\n\
             apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: b}}\nspec:\n  refreshInterval: {b}s\n  file: {{directory: /fake/b}}\n"
        ),
    );
    world.spec(
        "c",
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: c}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: s\n      mountPath: /run/s\n      files:\n        - {path: x, secret: {store: a, name: x}}\n        - {path: y, secret: {store: b, name: y}}\n",
    );
    world.secret("x", Ok("one"));
    world.secret("y", Ok("one"));
}

/// Store `a` as a `file` store refreshed every `seconds`.
fn file_store(seconds: u64) -> String {
    format!("  refreshInterval: {seconds}s\n  file: {{directory: /fake/a}}\n")
}

/// Store `a` as an AWS store refreshed hourly, with change events from a queue (polled every
/// 20 s while the listener fails).
const EVENTS_STORE: &str = "  refreshInterval: 1h\n  aws:\n    region: eu-west-1\n    events: {queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ramlet', fallbackInterval: 20s}\n";

/// A listener that never sends anything by itself: the test speaks through the loop's channel.
fn idle_listener(_: &str, _: &EventSource, _: Sink) -> tokio::task::JoinHandle<()> {
    tokio::spawn(std::future::pending())
}

/// Runs the control loop around `reconciler` while `script` runs (it gets the loop's wake-up
/// channel); the loop stops when the script ends.
async fn run<F: Future<Output = ()>>(
    reconciler: &mut Reconciler,
    script: impl FnOnce(mpsc::UnboundedSender<Wake>) -> F,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, _) = tokio::sync::watch::channel(false);
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let agent = control_loop(
        reconciler,
        rx,
        async {
            let _ = finished.await;
        },
        &stop,
        Duration::from_millis(60),
        None,
        |_, _, _| {},
    );
    // The loop ends when every sender is gone; a script may drop its own.
    let script = script(tx.clone());
    let (result, ()) = tokio::join!(agent, async {
        script.await;
        let _ = done.send(());
    });
    result.unwrap();
    drop(tx);
}

/// The gaps between consecutive fetches of each secret, in seconds.
fn gaps(world: &World) -> BTreeMap<String, Vec<f64>> {
    let mut at: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for (name, when) in &world.host.lock().unwrap().asked_at {
        at.entry(name.clone()).or_default().push(*when);
    }
    at.into_iter()
        .map(|(name, times)| {
            let gaps = times
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64())
                .collect();
            (name, gaps)
        })
        .collect()
}

fn within(gap: f64, seconds: f64) -> bool {
    (seconds * 0.9 - 0.05..=seconds * 1.1 + 0.05).contains(&gap)
}

#[tokio::test(start_paused = true)]
async fn each_store_keeps_its_own_interval_with_jitter() {
    let world = World::new("loop-intervals");
    specs(&world, &file_store(10), 60);
    let mut reconciler = world.reconciler();
    run(&mut reconciler, |_| sleep(Duration::from_mins(10))).await;
    let gaps = gaps(&world);
    assert!(gaps["x"].len() >= 50, "{gaps:?}");
    assert!(gaps["x"].iter().all(|g| within(*g, 10.0)), "{gaps:?}");
    assert!(gaps["y"].iter().all(|g| within(*g, 60.0)), "{gaps:?}");
    assert!((8..=11).contains(&gaps["y"].len()), "{gaps:?}");
    // Jitter: the gaps are not all the same, so a fleet drifts apart.
    let first = gaps["x"][0];
    assert!(
        gaps["x"].iter().any(|g| (g - first).abs() > 0.05),
        "{gaps:?}"
    );
    assert_eq!(reconciler.status().specs["c"].phase, Phase::Ready);
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_backs_off_up_to_its_interval_and_never_moves_another() {
    let world = World::new("loop-backoff");
    specs(&world, &file_store(60), 10);
    world.secret("x", Err(ProviderError::unavailable("connection refused")));
    let mut reconciler = world.reconciler();
    run(&mut reconciler, |_| sleep(Duration::from_mins(6))).await;
    let gaps = gaps(&world);
    let x = &gaps["x"];
    // 1, 2, 4, 8, 16, 32 s, then capped at the 60 s interval: a fixed fault is seen in time.
    for (gap, expected) in x.iter().zip([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]) {
        assert!(within(*gap, expected), "x: {x:?}");
    }
    assert!(x.len() >= 8, "x: {x:?}");
    assert!(gaps["y"].iter().all(|g| within(*g, 10.0)), "{gaps:?}");
    // The spec was never created; the host was not put on backoff for it.
    let c = &reconciler.status().specs["c"];
    assert_eq!(c.reason.as_str(), "ProviderUnavailable");
    assert!(!world.unit_file("c").exists());
}

#[tokio::test(start_paused = true)]
async fn throttling_backs_off_past_the_interval_to_five_minutes_then_recovers() {
    let world = World::new("loop-throttle");
    specs(&world, &file_store(10), 10);
    world.secret(
        "x",
        Err(ProviderError::new(ErrorKind::Throttled, "rate exceeded")),
    );
    let mut reconciler = world.reconciler();
    run(&mut reconciler, |_| async {
        sleep(Duration::from_mins(19)).await;
        world.secret("x", Ok("one"));
        // The heal is seen at the next throttled try, up to 330 s later (300 s + 10% jitter);
        // then at least five 10 s gaps.
        sleep(Duration::from_mins(8)).await;
    })
    .await;
    let gaps = gaps(&world);
    let x = &gaps["x"];
    let expected = [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0,
    ];
    for (gap, expected) in x.iter().zip(expected) {
        assert!(within(*gap, expected), "x: {x:?}");
    }
    assert!(x.len() >= expected.len() + 5, "x: {x:?}");
    // Healed: back on its 10 s interval, and the container runs with it.
    let tail = &x[x.len() - 5..];
    assert!(tail.iter().all(|g| within(*g, 10.0)), "x: {x:?}");
    assert!(gaps["y"].iter().all(|g| within(*g, 10.0)), "{gaps:?}");
    assert!(world.unit_file("c").exists());
}

/// Sends, through the loop's channel, an event of store `a` for secret `name`, numbered `n`;
/// its acknowledgement records `name#n` in `acked`.
fn event(tx: &mpsc::UnboundedSender<Wake>, acked: &Arc<Mutex<Vec<String>>>, name: &str, n: u32) {
    let acked = acked.clone();
    let tag = format!("{name}#{n}");
    tx.send(Wake::Store(Notice::Event(Event {
        store: "a".into(),
        names: vec![
            format!("arn:aws:secretsmanager:eu-west-1:1:secret:{name}-AbC123"),
            name.into(),
        ],
        what: "PutSecretValue".into(),
        ack: Ack::new(move || acked.lock().unwrap().push(tag)),
    })))
    .unwrap();
}

/// A world with the events store `a`, container `c` using its secrets `x` and `y`, and its
/// reconciler listening through `idle_listener`.
fn with_events(name: &str) -> (World, Reconciler) {
    let world = World::new(name);
    specs(&world, EVENTS_STORE, 3600);
    world.spec(
        "c",
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: c}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: s\n      mountPath: /run/s\n      files:\n        - {path: x, secret: {store: a, name: x}}\n        - {path: y, secret: {store: a, name: y}}\n",
    );
    let reconciler = world
        .reconciler()
        .with_listeners(Arc::new(|_| {}), idle_listener);
    (world, reconciler)
}

/// What the fake provider was asked since the last call, by secret.
fn asked(world: &World) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in std::mem::take(&mut world.host.lock().unwrap().asked) {
        *counts.entry(name).or_default() += 1;
    }
    counts
}

fn take(acked: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut acked.lock().unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_events_is_one_fetch_and_one_restart_acknowledged_after_it() {
    let (world, mut reconciler) = with_events("loop-burst");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let world = &world;
    run(&mut reconciler, |tx| async move {
        sleep(Duration::from_secs(1)).await;
        assert_eq!(
            asked(world),
            BTreeMap::from([("x".into(), 1), ("y".into(), 1)])
        );
        world.take_log();
        world.secret("x", Ok("two"));
        for n in 1..=3 {
            event(&tx, &acked, "x", n);
        }
        sleep(Duration::from_secs(1)).await;
        assert_eq!(
            asked(world),
            BTreeMap::from([("x".into(), 1)]),
            "one fetch, of x only"
        );
        assert_eq!(
            take(&acked),
            ["x#1", "x#2", "x#3"],
            "x#3 once its fetch answered"
        );
        assert_eq!(
            world.take_log(),
            ["write c/s", "restart c.service"],
            "one rotation, one restart"
        );
    })
    .await;
    assert_eq!(
        reconciler.status().stores["a"]
            .events
            .as_ref()
            .unwrap()
            .fetched,
        3
    );
}

#[tokio::test(start_paused = true)]
async fn an_event_for_a_secret_no_spec_uses_costs_nothing() {
    let (world, mut reconciler) = with_events("loop-unused");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let world = &world;
    run(&mut reconciler, |tx| async move {
        sleep(Duration::from_secs(1)).await;
        asked(world);
        event(&tx, &acked, "other", 1);
        sleep(Duration::from_secs(1)).await;
        assert_eq!(take(&acked), ["other#1"], "acknowledged at once");
        assert!(asked(world).is_empty(), "nothing fetched");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_event_whose_fetch_fails_is_held_until_a_fetch_answers() {
    let (world, mut reconciler) = with_events("loop-held");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let world = &world;
    run(&mut reconciler, |tx| async move {
        sleep(Duration::from_secs(1)).await;
        asked(world);
        world.secret("x", Err(ProviderError::new(ErrorKind::Unavailable, "down")));
        event(&tx, &acked, "x", 1);
        sleep(Duration::from_millis(500)).await;
        assert_eq!(asked(world), BTreeMap::from([("x".into(), 1)]));
        assert!(
            take(&acked).is_empty(),
            "not acknowledged while the fetch fails"
        );
        world.secret("x", Ok("two"));
        // The store tries again after its backoff (1 s, with jitter).
        sleep(Duration::from_secs(2)).await;
        assert_eq!(take(&acked), ["x#1"]);
    })
    .await;
}

/// Issue 19: while a store backs off from throttling, an event waits (held, its secret still
/// marked); when the backoff ends, one refresh answers it.
#[tokio::test(start_paused = true)]
async fn an_event_waits_out_the_backoff_of_a_throttled_store() {
    let (world, mut reconciler) = with_events("loop-throttled-events");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let world = &world;
    run(&mut reconciler, |tx| async move {
        sleep(Duration::from_secs(1)).await;
        asked(world);
        world.secret(
            "x",
            Err(ProviderError::new(ErrorKind::Throttled, "rate exceeded")),
        );
        event(&tx, &acked, "x", 1);
        sleep(Duration::from_millis(500)).await;
        assert_eq!(asked(world), BTreeMap::from([("x".into(), 1)]), "throttled");
        world.secret("x", Ok("two"));
        world.secret("y", Ok("two"));
        for n in 1..=5 {
            event(&tx, &acked, "y", n);
        }
        sleep(Duration::from_millis(100)).await;
        assert!(asked(world).is_empty(), "the backoff holds events back too");
        assert_eq!(
            take(&acked),
            ["y#1", "y#2", "y#3", "y#4"],
            "the newest stands held"
        );
        sleep(Duration::from_secs(2)).await;
        assert_eq!(
            asked(world),
            BTreeMap::from([("x".into(), 1), ("y".into(), 1)]),
            "one refresh when the backoff ends"
        );
        let mut last = take(&acked);
        last.sort();
        assert_eq!(last, ["x#1", "y#5"]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_listener_makes_the_store_poll_at_its_fallback_interval() {
    let (world, mut reconciler) = with_events("loop-fallback");
    let world = &world;
    run(&mut reconciler, |tx| async move {
        sleep(Duration::from_secs(1)).await;
        asked(world);
        world.host.lock().unwrap().asked_at.clear();
        tx.send(Wake::Store(Notice::Health {
            store: "a".into(),
            error: Some("cannot reach the queue".into()),
        }))
        .unwrap();
        sleep(Duration::from_secs(65)).await;
        let x = gaps(world).remove("x").unwrap_or_default();
        assert!(
            x.len() >= 2 && x.iter().all(|g| (17.9..=22.1).contains(g)),
            "polled about every 20 s: {x:?}"
        );
        // Back: the store goes back to its hourly interval.
        tx.send(Wake::Store(Notice::Health {
            store: "a".into(),
            error: None,
        }))
        .unwrap();
        sleep(Duration::from_secs(30)).await;
        asked(world);
        sleep(Duration::from_mins(30)).await;
        assert!(
            !asked(world).contains_key("x"),
            "no polling while events flow"
        );
    })
    .await;
    let events = reconciler.status().stores["a"].events.clone().unwrap();
    assert!(events.listening);
}
