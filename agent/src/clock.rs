//! What time it is, behind a trait: the health gate's deadlines are wall-clock times (they are
//! journaled, and outlive a restart), and tests move the clock by hand instead of sleeping.

/// A source of the wall-clock time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        crate::util::unix_now_millis()
    }
}
