//! The loop's debounce: how long a wake-up waits for others that belong with it before the
//! reconcile it asks for. The wait exists so that changes written one after the other (a
//! certificate and its key, an editor's or git's burst of spec files) are picked up by one
//! reconcile and restart a consumer once; it is paid only where such a change may follow
//! ([`Settle`], decided by the stores from what each consumer reads):
//!
//! - nothing (`Now`): a change event, `ramlet sync`, a local folder's `..data` swapped, or a
//!   finished write of a secret whose consumers read nothing else from its store;
//! - [`SIBLINGS_QUIET`] (10 ms) after a finished write of a secret some consumer reads beside
//!   another of the same store, or of a spec file (closed after a write, or moved in): scripts
//!   write such files well within it (`cp a b dir`: 0.2 ms apart; two `cp` or `install` one
//!   after the other: 1.4 ms, 2.3 ms at most on a busy 2-core host), and git's next file of a
//!   pull begins with its removal or creation, a burst of its own;
//! - [`BURST_QUIET`] (60 ms) after a write still under way (its close follows), a file removed
//!   or moved away (an editor's save, a file moved aside: a new one follows), or events lost.
//!
//! Each wake-up sets the wait after it (the last change decides: a `..data` swap ends the
//! writes before it); the whole wait never exceeds the agent's `debounce` (200 ms).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Reconcile, Wake, wake_due};
use crate::providers::stores::{Due, Settle};

/// How long after a paired secret's write the loop waits for its sibling.
pub(super) const SIBLINGS_QUIET: Duration = Duration::from_millis(10);
/// How long after a write not closed yet, or a file removed, the loop waits for the next.
pub(super) const BURST_QUIET: Duration = Duration::from_millis(60);

/// The wait after a wake-up that settles so.
#[must_use]
pub(super) fn quiet(settle: Settle) -> Duration {
    match settle {
        Settle::Now => Duration::ZERO,
        Settle::Siblings => SIBLINGS_QUIET,
        Settle::Burst => BURST_QUIET,
    }
}

/// Collects wake-ups after `first` until the last one's quiet time passes without another,
/// and at most `debounce` in all. Returns what the next reconcile must refresh; `None` when
/// the channel closed.
pub(super) async fn debounced<R: Reconcile>(
    reconciler: &mut R,
    rx: &mut mpsc::UnboundedReceiver<Wake>,
    first: (Due, Settle),
    debounce: Duration,
) -> Option<Due> {
    let (mut due, mut settle) = first;
    let started = Instant::now();
    loop {
        let wait = quiet(settle).min(debounce.saturating_sub(started.elapsed()));
        if wait.is_zero() {
            break;
        }
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(more)) => {
                if let Some((more_due, more_settle)) = wake_due(reconciler, more) {
                    due = due.max(more_due);
                    settle = more_settle;
                }
            }
            Ok(None) => return None,
            Err(_) => break,
        }
    }
    // What arrived meanwhile rides along.
    while let Ok(more) = rx.try_recv() {
        if let Some((more_due, _)) = wake_due(reconciler, more) {
            due = due.max(more_due);
        }
    }
    Some(due)
}
