//! The one back-off schedule every retry in the machine follows (failing start and stop hooks,
//! HAProxy restarts, BGP applies): after the n-th failure in a row, wait `first × 2^(n−1)`,
//! but never longer than `max`. The wait counts from the moment the failure was seen.

use std::time::{Duration, Instant};

/// A failure count and the earliest time the next try may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backoff {
    /// Failures in a row since the last success (or reset).
    pub failures: u32,
    /// No retry before this; `None` when nothing is failing.
    pub retry_at: Option<Instant>,
}

impl Backoff {
    /// Counts one more failure seen at `now`; returns the wait before the next try.
    pub fn failed(&mut self, now: Instant, first: Duration, max: Duration) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = delay(self.failures, first, max);
        self.retry_at = Some(now + wait);
        wait
    }

    /// Forgets the failures: the next try may be made at once.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }

    /// Whether a try may be made at `now`.
    pub fn allows(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }

    /// The retry time, while it is still ahead of `now`.
    pub fn pending(&self, now: Instant) -> Option<Instant> {
        self.retry_at.filter(|t| *t > now)
    }
}

/// The wait after the `failures`-th failure in a row (see the module documentation).
pub fn delay(failures: u32, first: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    first.saturating_mul(1u32 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_wait_up_to_the_cap() {
        let waits: Vec<u64> = (1..=7)
            .map(|n| delay(n, Duration::from_secs(2), Duration::from_secs(30)).as_secs())
            .collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(
            delay(u32::MAX, Duration::from_secs(2), Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(
            delay(40, Duration::from_secs(3600), Duration::MAX),
            Duration::from_secs(3600).saturating_mul(1 << 31)
        );
    }

    #[test]
    fn a_failure_sets_the_retry_time_and_a_reset_clears_it() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.allows(t0));
        let wait = b.failed(t0, Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(wait, Duration::from_secs(1));
        assert!(!b.allows(t0));
        assert_eq!(b.pending(t0), Some(t0 + wait));
        assert!(b.allows(t0 + wait));
        assert_eq!(b.pending(t0 + wait), None);
        b.failed(t0 + wait, Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(b.failures, 2);
        assert_eq!(b.retry_at, Some(t0 + Duration::from_secs(3)));
        b.reset();
        assert_eq!(b, Backoff::default());
    }
}
