//! One error policy for everything that tries again: the agent's loop, each store's refreshes
//! and each change-event listener. Each keeps its own caps; the rule is the same everywhere
//! and keyed on one question, whether the error is transient (may pass by itself: a timeout,
//! throttling, a peer that is down, a lost bus):
//! - a transient error is tried again after a backoff: `min`, doubling to `max`;
//! - any other error (denied, not found, a bad setting) cannot get better by trying faster:
//!   it waits `max`, and the backoff starts again from `min` (a change that fixes it, a spec
//!   edited or an event, wakes the caller anyway);
//! - a success starts the backoff again from `min`.
//!
//! A reconcile says when the loop comes back as one [`Requeue`] (kube-runtime's `Action` is
//! the model): when something changes, after a while (a health check due, a store's refresh),
//! or after the backoff of an error, which [`error_policy`] derives from the error alone.

use std::time::Duration;

/// Whether an error may pass by itself (a timeout, throttling, a peer that is down, a lost
/// bus), so that trying again soon is worth it. Every error type the loop, the stores and the
/// listeners act on answers it; [`error_policy`] and [`ErrorPolicy`] key on nothing else.
pub trait Transient {
    /// True when trying again later may work without anybody changing anything.
    fn is_transient(&self) -> bool;
}

/// When the loop comes back after a reconcile. A change (a spec edited, a file, an event, a
/// `ramlet sync`) wakes it sooner whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Requeue {
    /// Nothing to come back for: only a change (or the loop's slow safety refresh).
    #[default]
    AwaitChange,
    /// Look again after this long (a health check due, a store's refresh).
    After(Duration),
    /// Something failed: come back after the error policy's backoff (doubling while the
    /// errors are `transient`, the cap otherwise), and `within` this long at the latest.
    Backoff {
        /// Whether the failure may pass by itself.
        transient: bool,
        /// A time the loop must look again by regardless (a health check's deadline).
        within: Option<Duration>,
    },
}

impl Requeue {
    /// What both ask for: an error's backoff wins over a plain wait, and the sooner of two
    /// times is kept.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        let sooner = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (self, other) {
            (Self::AwaitChange, x) | (x, Self::AwaitChange) => x,
            (Self::After(a), Self::After(b)) => Self::After(a.min(b)),
            (Self::Backoff { transient, within }, Self::After(d))
            | (Self::After(d), Self::Backoff { transient, within }) => Self::Backoff {
                transient,
                within: sooner(within, Some(d)),
            },
            (
                Self::Backoff {
                    transient: t1,
                    within: w1,
                },
                Self::Backoff {
                    transient: t2,
                    within: w2,
                },
            ) => Self::Backoff {
                transient: t1 || t2,
                within: sooner(w1, w2),
            },
        }
    }

    /// Whether it asks for a backoff (something failed).
    #[must_use]
    pub fn failed(self) -> bool {
        matches!(self, Self::Backoff { .. })
    }

    /// The time it asks the loop to look again by, if any (a backoff's own wait aside).
    #[must_use]
    pub fn by(self) -> Option<Duration> {
        match self {
            Self::AwaitChange => None,
            Self::After(d) => Some(d),
            Self::Backoff { within, .. } => within,
        }
    }

    /// How long to wait under `policy`, at most `cap` (the loop's safety refresh): a backoff
    /// counts against the policy, anything else resets it.
    pub fn wait(self, policy: &mut ErrorPolicy, cap: Duration) -> Duration {
        match self {
            Self::AwaitChange => {
                policy.succeeded();
                cap
            }
            Self::After(d) => {
                policy.succeeded();
                d.min(cap)
            }
            Self::Backoff { transient, within } => {
                policy.failed(transient).min(within.unwrap_or(cap)).min(cap)
            }
        }
    }
}

/// The one error policy: what an error asks of whoever tries again, from whether it is
/// transient (see the module's rule).
#[must_use]
pub fn error_policy(error: &dyn Transient) -> Requeue {
    Requeue::Backoff {
        transient: error.is_transient(),
        within: None,
    }
}

/// Capped exponential backoff for transient errors; see the module's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPolicy {
    min: Duration,
    max: Duration,
    /// The wait after the next transient error.
    next: Duration,
    /// Whether the last outcome was a transient error (its backoff is being waited out).
    backing_off: bool,
}

impl ErrorPolicy {
    /// A policy that waits `min` after a first transient error and at most `max`.
    #[must_use]
    pub const fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
            backing_off: false,
        }
    }

    /// How long to wait after `error` (see [`error_policy`]).
    pub fn after(&mut self, error: &dyn Transient) -> Duration {
        self.failed(error.is_transient())
    }

    /// How long to wait after an error, `transient` or not.
    pub fn failed(&mut self, transient: bool) -> Duration {
        if transient {
            let wait = self.next;
            self.next = (self.next * 2).min(self.max);
            self.backing_off = true;
            wait
        } else {
            self.next = self.min;
            self.backing_off = false;
            self.max
        }
    }

    /// A success: the next transient error waits `min` again.
    pub fn succeeded(&mut self) {
        self.next = self.min;
        self.backing_off = false;
    }

    /// Whether a transient error's backoff is being waited out: the caller should not try
    /// early for an event (a stream of events must not hammer a peer that throttles or fails).
    #[must_use]
    pub fn backing_off(&self) -> bool {
        self.backing_off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn transient_errors_back_off_doubling_to_the_cap_and_a_success_starts_again() {
        let mut policy = ErrorPolicy::new(S, 8 * S);
        let waits: Vec<Duration> = (0..6).map(|_| policy.failed(true)).collect();
        assert_eq!(waits, [S, 2 * S, 4 * S, 8 * S, 8 * S, 8 * S]);
        assert!(policy.backing_off());
        policy.succeeded();
        assert!(!policy.backing_off());
        assert_eq!(policy.failed(true), S);
    }

    #[test]
    fn requeues_combine_to_the_sooner_time_and_an_error_wins() {
        let after = |s| Requeue::After(Duration::from_secs(s));
        assert_eq!(Requeue::AwaitChange.and(after(5)), after(5));
        assert_eq!(after(5).and(after(2)), after(2));
        let backoff = Requeue::Backoff {
            transient: false,
            within: None,
        };
        assert_eq!(
            after(3).and(backoff).and(Requeue::Backoff {
                transient: true,
                within: Some(Duration::from_secs(9)),
            }),
            Requeue::Backoff {
                transient: true,
                within: Some(Duration::from_secs(3)),
            }
        );
        let mut policy = ErrorPolicy::new(S, 60 * S);
        let deadline = Requeue::Backoff {
            transient: false,
            within: Some(2 * S),
        };
        assert_eq!(
            deadline.wait(&mut policy, 300 * S),
            2 * S,
            "a health check's deadline is not waited past"
        );
        assert_eq!(after(7).wait(&mut policy, 5 * S), 5 * S);
    }

    #[test]
    fn an_error_that_cannot_pass_by_itself_waits_the_cap_and_holds_nothing_back() {
        let mut policy = ErrorPolicy::new(S, 60 * S);
        assert_eq!(policy.failed(false), 60 * S);
        assert!(
            !policy.backing_off(),
            "an event may still be acted on at once"
        );
        assert_eq!(
            policy.failed(true),
            S,
            "a transient error after it starts at min"
        );
    }
}
