//! One error policy for everything that tries again: the agent's loop, each store's refreshes
//! and each change-event listener. Each keeps its own caps; the rule is the same everywhere
//! and keyed on one question, whether the error is transient (may pass by itself: a timeout,
//! throttling, a peer that is down, a lost bus):
//! - a transient error is tried again after a backoff: `min`, doubling to `max`;
//! - any other error (denied, not found, a bad setting) cannot get better by trying faster:
//!   it waits `max`, and the backoff starts again from `min` (a change that fixes it, a spec
//!   edited or an event, wakes the caller anyway);
//! - a success starts the backoff again from `min`.

use std::time::Duration;

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
