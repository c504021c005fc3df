//! The capacity-unit rate limiter: one per table, shared by all of that table's workers.
//!
//! A worker reserves the units it expects a request to cost ([`RateLimiter::acquire`]),
//! sends the request, and then settles the reservation with the `ConsumedCapacity` that
//! DynamoDB reported ([`RateLimiter::settle`]). The balance may go negative (a page can
//! cost more than expected); later callers then wait until the debt is paid, so over any
//! window longer than a few requests the consumed rate equals the target. At most one
//! second of unused capacity is saved up, so an idle spell is not followed by a burst.
//!
//! The limiter is told about throttling ([`RateLimiter::throttled`]) and halves its rate,
//! then climbs back to the target as requests succeed. It never catches errors itself.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::Clock;

/// How many seconds of unused capacity may be saved up.
const BURST_SECONDS: f64 = 1.0;
/// The lowest fraction of the target that throttling can push the rate down to.
const MIN_FRACTION: f64 = 0.05;
/// After a throttle, each success recovers this fraction of the target.
const RECOVERY_STEP: f64 = 0.02;

/// A token bucket in capacity units per second.
#[derive(Debug)]
pub struct RateLimiter {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    target: f64,
    rate: f64,
    balance: f64,
    last: Instant,
    consumed: f64,
}

impl RateLimiter {
    /// A limiter that allows `units_per_second` on average.
    pub fn new(units_per_second: f64, clock: Arc<dyn Clock>) -> Self {
        let target = units_per_second.max(0.01);
        let last = clock.now();
        Self {
            clock,
            state: Mutex::new(State {
                target,
                rate: target,
                balance: 0.0,
                last,
                consumed: 0.0,
            }),
        }
    }

    /// The target rate in units per second.
    pub fn target(&self) -> f64 {
        self.state.lock().unwrap().target
    }

    /// The rate currently allowed (lower than the target after throttling).
    pub fn current_rate(&self) -> f64 {
        self.state.lock().unwrap().rate
    }

    /// Every unit settled so far.
    pub fn consumed(&self) -> f64 {
        self.state.lock().unwrap().consumed
    }

    /// Wait until the balance is not in debt, then reserve `estimate` units.
    pub async fn acquire(&self, estimate: f64) {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap();
                s.refill(self.clock.now());
                if s.balance >= 0.0 {
                    s.balance -= estimate.max(0.0);
                    return;
                }
                Duration::from_secs_f64((-s.balance / s.rate).min(60.0))
            };
            self.clock.sleep(wait).await;
        }
    }

    /// Wait until every unit consumed so far is paid for, so that a job that ends right
    /// after a large request has still not gone faster than its rate.
    pub async fn drain(&self) {
        self.acquire(0.0).await;
    }

    /// Replace a reservation of `estimate` units by what the request really cost.
    pub fn settle(&self, estimate: f64, actual: f64) {
        let mut s = self.state.lock().unwrap();
        s.refill(self.clock.now());
        s.balance += estimate.max(0.0) - actual.max(0.0);
        s.consumed += actual.max(0.0);
    }

    /// DynamoDB throttled a request: halve the rate (not below a floor).
    pub fn throttled(&self) {
        let mut s = self.state.lock().unwrap();
        s.refill(self.clock.now());
        s.rate = (s.rate / 2.0).max(s.target * MIN_FRACTION);
    }

    /// A request went through: climb back towards the target after a throttle.
    pub fn succeeded(&self) {
        let mut s = self.state.lock().unwrap();
        if s.rate < s.target {
            s.refill(self.clock.now());
            s.rate = (s.rate + s.target * RECOVERY_STEP).min(s.target);
        }
    }
}

impl State {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.balance = (self.balance + elapsed * self.rate).min(self.rate * BURST_SECONDS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// Run `requests` requests of `cost` units each and return the seconds they took.
    async fn run(limiter: &RateLimiter, clock: &ManualClock, requests: usize, cost: f64) -> f64 {
        let start = clock.now();
        for _ in 0..requests {
            limiter.acquire(cost).await;
            limiter.settle(cost, cost);
        }
        clock.now().duration_since(start).as_secs_f64()
    }

    #[tokio::test]
    async fn long_run_rate_equals_target() {
        let clock = ManualClock::default();
        let limiter = RateLimiter::new(100.0, Arc::new(clock.clone()));
        // 1,000 requests of 10 units = 10,000 units at 100/s: 100 s, less the first request.
        let secs = run(&limiter, &clock, 1000, 10.0).await;
        assert!((secs - 99.9).abs() < 0.5, "took {secs}");
        assert_eq!(limiter.consumed(), 10_000.0);
    }

    #[tokio::test]
    async fn underestimates_are_paid_back() {
        let clock = ManualClock::default();
        let limiter = RateLimiter::new(50.0, Arc::new(clock.clone()));
        let start = clock.now();
        for _ in 0..100 {
            limiter.acquire(1.0).await; // guesses 1 unit
            limiter.settle(1.0, 25.0); // but each costs 25
        }
        limiter.acquire(0.0).await;
        let secs = clock.now().duration_since(start).as_secs_f64();
        // 2,500 units at 50/s.
        assert!((secs - 50.0).abs() < 0.6, "took {secs}");
    }

    #[tokio::test]
    async fn drain_waits_for_the_debt() {
        let clock = ManualClock::default();
        let limiter = RateLimiter::new(10.0, Arc::new(clock.clone()));
        let start = clock.now();
        limiter.acquire(1.0).await;
        limiter.settle(1.0, 70.0); // one big page
        limiter.drain().await;
        let secs = clock.now().duration_since(start).as_secs_f64();
        assert!((secs - 7.0).abs() < 0.05, "took {secs}");
    }

    #[tokio::test]
    async fn idle_time_saves_at_most_one_second() {
        let clock = ManualClock::default();
        let limiter = RateLimiter::new(10.0, Arc::new(clock.clone()));
        clock.advance(Duration::from_secs(3600));
        // 30 units after an hour idle: 10 saved, then 20 more take 2 s, less the first.
        let secs = run(&limiter, &clock, 30, 1.0).await;
        assert!((secs - 1.9).abs() < 0.05, "took {secs}");
    }

    #[tokio::test]
    async fn throttling_halves_then_recovers() {
        let clock = ManualClock::default();
        let limiter = RateLimiter::new(100.0, Arc::new(clock.clone()));
        limiter.throttled();
        assert_eq!(limiter.current_rate(), 50.0);
        for _ in 0..10 {
            limiter.throttled();
        }
        assert_eq!(limiter.current_rate(), 5.0);
        for _ in 0..100 {
            limiter.succeeded();
        }
        assert_eq!(limiter.current_rate(), 100.0);
    }
}
