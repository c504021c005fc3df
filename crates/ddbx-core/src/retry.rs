//! Retry with jittered exponential backoff, an attempt cap and a time budget.
//!
//! Whether an error is worth retrying is decided elsewhere (`aws::error` for AWS calls);
//! this module only decides how long to wait and when to give up.

use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub max_attempts: u32,
    /// No new attempt starts once this much time has passed since the first.
    pub budget: Duration,
    /// The backoff before the second attempt (before jitter).
    pub base_delay: Duration,
    /// The longest single backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            budget: Duration::from_secs(300),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// The state of one retried operation: which attempt it is on and since when.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    attempts: u32,
    started: Instant,
    rng: StdRng,
}

impl Backoff {
    /// Start counting at `now`, with entropy for the jitter.
    pub fn new(policy: RetryPolicy, now: Instant) -> Self {
        Self::with_rng(policy, now, StdRng::from_entropy())
    }

    /// Start counting at `now`, with the given source of jitter (tests seed it).
    pub fn with_rng(policy: RetryPolicy, now: Instant, rng: StdRng) -> Self {
        Self {
            policy,
            attempts: 1,
            started: now,
            rng,
        }
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failed attempt: how long to wait before the next, or `None` to give up.
    ///
    /// "Equal jitter": half the exponential delay is fixed, half is random, so retries
    /// from many workers spread out but never come back immediately.
    pub fn next_delay(&mut self, now: Instant) -> Option<Duration> {
        if self.attempts >= self.policy.max_attempts {
            return None;
        }
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << self.attempts.saturating_sub(1).min(20))
            .min(self.policy.max_delay);
        let half = exp / 2;
        let delay = half + half.mul_f64(self.rng.gen::<f64>());
        if now.saturating_duration_since(self.started) + delay > self.policy.budget {
            return None;
        }
        self.attempts += 1;
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            budget: Duration::from_secs(10),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }

    #[test]
    fn delays_grow_with_jitter_and_stop_at_the_cap() {
        let t0 = Instant::now();
        let mut b = Backoff::with_rng(policy(), t0, StdRng::seed_from_u64(7));
        let delays: Vec<_> = std::iter::from_fn(|| b.next_delay(t0)).collect();
        assert_eq!(delays.len(), 4, "5 attempts means 4 waits");
        for (i, d) in delays.iter().enumerate() {
            let exp = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(1));
            assert!(*d >= exp / 2 && *d <= exp, "delay {i} = {d:?}");
        }
        assert_eq!(b.attempts(), 5);
    }

    #[test]
    fn time_budget_stops_retries() {
        let t0 = Instant::now();
        let mut b = Backoff::with_rng(
            RetryPolicy {
                max_attempts: 100,
                ..policy()
            },
            t0,
            StdRng::seed_from_u64(1),
        );
        assert!(b.next_delay(t0 + Duration::from_millis(9_990)).is_none());
    }

    #[test]
    fn same_seed_same_delays() {
        let t0 = Instant::now();
        let mut a = Backoff::with_rng(policy(), t0, StdRng::seed_from_u64(3));
        let mut b = Backoff::with_rng(policy(), t0, StdRng::seed_from_u64(3));
        for _ in 0..4 {
            assert_eq!(a.next_delay(t0), b.next_delay(t0));
        }
    }
}
