//! Unit tests of `agent`.

use super::*;
use crate::retry::Requeue;

/// Records when each reconcile ran and with what; answers with scripted outcomes.
struct Fake {
    start: Instant,
    calls: Vec<(Duration, Due)>,
    outcome: Outcome,
    /// A reconcile that never ends (a hung apply).
    hang: bool,
}

impl Reconcile for Fake {
    async fn reconcile(&mut self, due: Due) -> Outcome {
        self.calls.push((self.start.elapsed(), due));
        if self.hang {
            std::future::pending::<()>().await;
        }
        self.outcome.clone()
    }

    /// Secrets named `used` need a fetch; anything else is acknowledged at once.
    fn notice(&mut self, notice: Notice) -> bool {
        match notice {
            Notice::Event(event) if event.names == ["used"] => true,
            Notice::Event(event) => {
                event.ack.ack();
                false
            }
            Notice::Health { .. } => true,
        }
    }

    /// A path named `now` settles at once, `pair` waits for its sibling, any other path (or
    /// none) is a burst.
    fn files_changed(&mut self, paths: &[std::path::PathBuf]) -> (Due, Settle) {
        let settle = match paths.last().and_then(|p| p.to_str()) {
            Some("now") => Settle::Now,
            Some("pair") => Settle::Siblings,
            _ => Settle::Burst,
        };
        (Due::Files, settle)
    }
}

fn event(name: &str) -> Wake {
    Wake::Store(Notice::Event(crate::providers::events::Event {
        store: "aws".into(),
        names: vec![name.into()],
        what: "PutSecretValue".into(),
        ack: crate::providers::events::Ack::new(|| {}),
    }))
}

#[tokio::test(start_paused = true)]
async fn change_events_reconcile_at_once_and_unused_ones_not_at_all() {
    let mut reconciler = fake(Outcome {
        requeue: Requeue::After(Duration::from_hours(1)),
        ..Outcome::default()
    });
    let wakes = vec![
        (1000, event("unused")),
        (2000, event("used")),
        (2010, event("used")),
        (2020, event("unused")),
        (2030, event("used")),
    ];
    run(&mut reconciler, wakes, Duration::from_secs(5)).await;
    assert_eq!(
        secs(&reconciler.calls),
        [0.0, 2.0, 2.01, 2.03],
        "the unused events woke nothing; each used one is fetched at once (it names one version of one secret)"
    );
}

fn fake(outcome: Outcome) -> Fake {
    Fake {
        start: Instant::now(),
        calls: Vec::new(),
        outcome,
        hang: false,
    }
}

/// Runs the loop until `until` of paused time, sending `wakes` at their times.
async fn run(reconciler: &mut Fake, wakes: Vec<(u64, Wake)>, until: Duration) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, _) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let start = Instant::now();
        for (ms, wake) in wakes {
            tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
            let _ = tx.send(wake);
        }
        std::future::pending::<()>().await;
    });
    let shutdown = tokio::time::sleep(until);
    control_loop(
        reconciler,
        rx,
        shutdown,
        &stop,
        Duration::from_millis(200),
        None,
        |_, _, _| {},
    )
    .await
    .unwrap();
}

fn secs(calls: &[(Duration, Due)]) -> Vec<f64> {
    calls.iter().map(|(at, _)| at.as_secs_f64()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_events_is_one_reconcile_after_the_debounce() {
    let mut reconciler = fake(Outcome {
        requeue: Requeue::After(Duration::from_hours(1)),
        ..Outcome::default()
    });
    let wakes = vec![
        (1000, Wake::Files(Vec::new())),
        (1050, Wake::Files(Vec::new())),
        (1100, Wake::Files(Vec::new())),
        (1150, Wake::Files(Vec::new())),
    ];
    run(&mut reconciler, wakes, Duration::from_secs(5)).await;
    assert_eq!(
        reconciler.calls,
        [
            (Duration::ZERO, Due::Timers),
            (Duration::from_millis(1200), Due::Files)
        ],
        "a burst that goes on is cut at the debounce's 200 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lone_event_is_picked_up_after_a_short_quiet_time() {
    let mut reconciler = fake(Outcome {
        requeue: Requeue::After(Duration::from_hours(1)),
        ..Outcome::default()
    });
    // A single write, then a burst far from it.
    let wakes = vec![
        (1000, Wake::Files(Vec::new())),
        (3000, Wake::Files(Vec::new())),
        (3040, Wake::Files(Vec::new())),
    ];
    run(&mut reconciler, wakes, Duration::from_secs(5)).await;
    assert_eq!(
        secs(&reconciler.calls),
        [0.0, 1.06, 3.1],
        "60 ms after a lone event; 60 ms after the last of a burst"
    );
}

fn files(path: &str) -> Wake {
    Wake::Files(vec![path.into()])
}

#[tokio::test(start_paused = true)]
async fn the_wait_is_paid_only_where_a_change_that_belongs_with_it_may_follow() {
    let mut reconciler = fake(Outcome {
        requeue: Requeue::After(Duration::from_hours(1)),
        ..Outcome::default()
    });
    let wakes = vec![
        // A finished write of a secret read alone: at once.
        (1000, files("now")),
        // A secret read beside another: 10 ms after the last of the pair.
        (2000, files("pair")),
        (2004, files("pair")),
        // A write still under way, then its close: at the close.
        (3000, Wake::Writing(vec!["now".into()])),
        (3002, files("now")),
        // A write never closed (a writer that keeps the file open): after the burst's 60 ms.
        (4000, Wake::Writing(vec!["now".into()])),
        // A change event: at once.
        (5000, event("used")),
        // `ramlet sync`: at once.
        (6000, Wake::Sync),
    ];
    run(&mut reconciler, wakes, Duration::from_secs(7)).await;
    assert_eq!(
        secs(&reconciler.calls),
        [0.0, 1.0, 2.014, 3.002, 4.06, 5.0, 6.0]
    );
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_doubling_to_a_minute_and_never_past_the_refresh() {
    let mut reconciler = fake(Outcome {
        failed: true,
        requeue: Requeue::Backoff {
            transient: true,
            within: Some(Duration::from_secs(45)),
        },
        ..Outcome::default()
    });
    run(&mut reconciler, Vec::new(), Duration::from_secs(200)).await;
    let at = secs(&reconciler.calls);
    let gaps: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps[..7], [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 45.0]);
    assert!(reconciler.calls.iter().all(|(_, due)| *due == Due::Timers));
}

#[tokio::test(start_paused = true)]
async fn a_unit_still_starting_is_looked_at_again_soon_then_less_often() {
    let mut reconciler = fake(Outcome {
        requeue: Requeue::Backoff {
            transient: true,
            within: Some(Duration::from_hours(1)),
        },
        ..Outcome::default()
    });
    run(&mut reconciler, Vec::new(), Duration::from_secs(200)).await;
    let at = secs(&reconciler.calls);
    let gaps: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps[..7], [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]);
}

#[tokio::test(start_paused = true)]
async fn an_error_that_cannot_pass_by_itself_waits_the_cap_at_once() {
    let mut reconciler = fake(Outcome {
        failed: true,
        requeue: Requeue::Backoff {
            transient: false,
            within: None,
        },
        ..Outcome::default()
    });
    run(&mut reconciler, Vec::new(), Duration::from_secs(200)).await;
    assert_eq!(secs(&reconciler.calls), [0.0, 60.0, 120.0, 180.0]);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_loop_sleeps_until_the_next_refresh() {
    let mut reconciler = fake(Outcome {
        requeue: Requeue::After(Duration::from_secs(30)),
        ..Outcome::default()
    });
    run(&mut reconciler, Vec::new(), Duration::from_secs(100)).await;
    assert_eq!(secs(&reconciler.calls), [0.0, 30.0, 60.0, 90.0]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_hung_reconcile_returns_within_five_seconds() {
    let mut reconciler = fake(Outcome::default());
    reconciler.hang = true;
    let start = Instant::now();
    run(&mut reconciler, Vec::new(), Duration::from_secs(1)).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(reconciler.calls.len(), 1);
}
