//! The capacity-unit rate limiter: one per table, shared by all of that table's workers.
//!
//! A worker reserves the units it expects a request to cost ([`RateLimiter::acquire`]),
//! sends the request, and then settles the reservation with the `ConsumedCapacity` that
//! DynamoDB reported ([`RateLimiter::settle`]). The balance may go negative (a page can
//! cost more than expected); later callers then wait until the debt is paid, so over any
//! window longer than a few requests the consumed rate equals the target. At most one
//! second of unused capacity is saved up, so an idle spell is not followed by a burst.
//!
//! A limiter made [`until_stopped`](RateLimiter::until_stopped) ends every wait as soon as
//! the run is asked to stop: however large the debt, a stopped run never waits on it.
//!
//! The limiter is told about throttling ([`RateLimiter::throttled`]) and halves its rate,
//! then climbs back to the target as requests succeed. It never catches errors itself.
//!
//! A ramping limiter ([`RateLimiter::ramping`]) is for a table that cannot take the target
//! yet (a new or idle on-demand table serves its warm throughput, about 4,000 writes a
//! second when new, and scales up as it is used): it starts at what the table accepts and
//! climbs by [`RAMP_PER_SECOND`] each second in which it was what held the callers back;
//! a throttle halves it (once per [`RAMP_HOLD`]) and holds it there for that long. So the
//! rate follows the table's capacity up, with a throttle now and then at each step rather
//! than a storm of them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::stop::StopSignal;
use crate::{Error, Result};

/// How many seconds of unused capacity may be saved up.
const BURST_SECONDS: f64 = 1.0;
/// The lowest fraction of the target that throttling can push the rate down to.
const MIN_FRACTION: f64 = 0.05;
/// After a throttle, each success recovers this fraction of the target.
const RECOVERY_STEP: f64 = 0.02;

/// How fast a ramping limiter climbs while the table keeps up: 5 % a second (twice as
/// fast in about 14 s).
pub const RAMP_PER_SECOND: f64 = 0.05;
/// After a throttle, a ramping limiter neither climbs nor halves again for this long.
pub const RAMP_HOLD: Duration = Duration::from_secs(5);

/// A token bucket in capacity units per second.
#[derive(Debug)]
pub struct RateLimiter {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Ends every wait when raised.
    stop: StopSignal,
}

#[derive(Debug)]
struct State {
    target: f64,
    rate: f64,
    balance: f64,
    last: Instant,
    consumed: f64,
    /// Throttling never takes the rate below this.
    floor: f64,
    /// Ramping: no climb (and no second halving) before this instant.
    ramp: Option<Ramp>,
}

#[derive(Debug, Clone, Copy)]
struct Ramp {
    hold_until: Instant,
    /// A caller waited since the last refill: the rate, not the table or the callers, is
    /// what bounds the work, so climbing is worth it.
    binding: bool,
}

impl RateLimiter {
    /// A limiter that allows `units_per_second` on average.
    pub fn new(units_per_second: f64, clock: Arc<dyn Clock>) -> Self {
        let target = units_per_second.max(0.01);
        let last = clock.now();
        Self {
            clock,
            stop: StopSignal::default(),
            state: Mutex::new(State {
                target,
                rate: target,
                balance: 0.0,
                last,
                consumed: 0.0,
                floor: target * MIN_FRACTION,
                ramp: None,
            }),
        }
    }

    /// A limiter that starts at `start` units per second (what the table accepts now) and
    /// climbs towards `units_per_second` as the table keeps up (see the module's notes).
    pub fn ramping(start: f64, units_per_second: f64, clock: Arc<dyn Clock>) -> Self {
        let limiter = Self::new(units_per_second, clock);
        {
            let mut s = limiter.state.lock().unwrap();
            s.rate = start.clamp(1.0, s.target);
            // A table that takes less than the usual floor: a quarter of what it took at first.
            s.floor = s.floor.min(s.rate / 4.0);
            s.ramp = Some(Ramp {
                hold_until: s.last,
                binding: false,
            });
        }
        limiter
    }

    /// This limiter, ending its waits (with [`Error::Interrupted`]) once `stop` is raised.
    pub fn until_stopped(mut self, stop: &StopSignal) -> Self {
        self.stop = stop.clone();
        self
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

    /// Wait until the balance is not in debt, then reserve `estimate` units; or
    /// [`Error::Interrupted`] as soon as the run is stopped (nothing is reserved then).
    pub async fn acquire(&self, estimate: f64) -> Result<()> {
        loop {
            if self.stop.is_stopped() {
                return Err(Error::Interrupted);
            }
            let wait = {
                let mut s = self.state.lock().unwrap();
                s.refill(self.clock.now());
                if s.balance >= 0.0 {
                    s.balance -= estimate.max(0.0);
                    return Ok(());
                }
                if let Some(r) = s.ramp.as_mut() {
                    r.binding = true;
                }
                // At least a microsecond: a debt of a rounding error must still move time.
                Duration::from_secs_f64((-s.balance / s.rate).clamp(1e-6, 60.0))
            };
            tokio::select! {
                _ = self.clock.sleep(wait) => {}
                _ = self.stop.stopped() => return Err(Error::Interrupted),
            }
        }
    }

    /// Wait `d` on the limiter's clock (a backoff before resending what DynamoDB left
    /// unprocessed), or [`Error::Interrupted`] as soon as the run stops.
    pub async fn pause(&self, d: Duration) -> Result<()> {
        tokio::select! {
            _ = self.clock.sleep(d) => Ok(()),
            _ = self.stop.stopped() => Err(Error::Interrupted),
        }
    }

    /// Wait until every unit consumed so far is paid for, so that a job that ends right
    /// after a large request has still not gone faster than its rate (or the run stops).
    pub async fn drain(&self) -> Result<()> {
        self.acquire(0.0).await
    }

    /// Replace a reservation of `estimate` units by what the request really cost.
    pub fn settle(&self, estimate: f64, actual: f64) {
        let mut s = self.state.lock().unwrap();
        s.refill(self.clock.now());
        s.balance += estimate.max(0.0) - actual.max(0.0);
        s.consumed += actual.max(0.0);
    }

    /// DynamoDB throttled a request: halve the rate (not below a floor). Ramping: once per
    /// hold, the throttles of one burst counting as one.
    pub fn throttled(&self) {
        let mut s = self.state.lock().unwrap();
        let now = self.clock.now();
        s.refill(now);
        if let Some(r) = s.ramp {
            if now < r.hold_until {
                return;
            }
            s.ramp = Some(Ramp {
                hold_until: now + RAMP_HOLD,
                binding: false,
            });
        }
        s.rate = (s.rate / 2.0).max(s.floor);
    }

    /// A request went through: climb back towards the target after a throttle (a ramping
    /// limiter climbs with time instead).
    pub fn succeeded(&self) {
        let mut s = self.state.lock().unwrap();
        if s.rate < s.target && s.ramp.is_none() {
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
        if let Some(r) = self.ramp.as_mut() {
            if r.binding && now >= r.hold_until && self.rate < self.target {
                self.rate = (self.rate * (1.0 + RAMP_PER_SECOND).powf(elapsed)).min(self.target);
            }
            r.binding = false;
        }
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
            limiter.acquire(cost).await.unwrap();
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
            limiter.acquire(1.0).await.unwrap(); // guesses 1 unit
            limiter.settle(1.0, 25.0); // but each costs 25
        }
        limiter.acquire(0.0).await.unwrap();
        let secs = clock.now().duration_since(start).as_secs_f64();
        // 2,500 units at 50/s.
        assert!((secs - 50.0).abs() < 0.6, "took {secs}");
    }

    /// A clock whose sleeps never end: only a stop can end a wait.
    #[derive(Debug)]
    struct Frozen(Instant);

    impl Clock for Frozen {
        fn now(&self) -> Instant {
            self.0
        }
        fn sleep(&self, _: Duration) -> futures::future::BoxFuture<'static, ()> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn a_stop_ends_a_wait_on_any_debt() {
        let stop = StopSignal::default();
        let limiter = RateLimiter::new(1.0, Arc::new(Frozen(Instant::now()))).until_stopped(&stop);
        limiter.acquire(0.0).await.unwrap();
        // A batch of 400 KB items at one unit a second: hours of debt.
        limiter.settle(0.0, 10_000.0);
        let waiting = tokio::spawn(async move { limiter.acquire(1.0).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        stop.stop();
        assert!(matches!(waiting.await.unwrap(), Err(Error::Interrupted)));
        // Once stopped, nothing is reserved any more, even without debt.
        let limiter = RateLimiter::new(1.0, Arc::new(Frozen(Instant::now()))).until_stopped(&stop);
        assert!(matches!(
            limiter.acquire(0.0).await,
            Err(Error::Interrupted)
        ));
    }

    #[tokio::test]
    async fn drain_waits_for_the_debt() {
        let clock = ManualClock::default();
        let limiter = RateLimiter::new(10.0, Arc::new(clock.clone()));
        let start = clock.now();
        limiter.acquire(1.0).await.unwrap();
        limiter.settle(1.0, 70.0); // one big page
        limiter.drain().await.unwrap();
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

    /// A table that accepts `capacity(t)` units a second at time t: requests of `cost`
    /// for `seconds`; one that would take the last second's units past it is throttled,
    /// and its sender backs off 50 ms before the next. Returns the throttles and the units
    /// written.
    async fn against_a_table(
        limiter: &RateLimiter,
        clock: &ManualClock,
        seconds: f64,
        cost: f64,
        capacity: impl Fn(f64) -> f64,
    ) -> (usize, f64) {
        let start = clock.now();
        let (mut throttles, mut written) = (0, 0.0);
        let mut window = std::collections::VecDeque::new();
        let mut in_window = 0.0;
        loop {
            limiter.acquire(cost).await.unwrap();
            let t = clock.now().duration_since(start).as_secs_f64();
            if t >= seconds {
                return (throttles, written);
            }
            while window.front().is_some_and(|at: &f64| *at <= t - 1.0) {
                window.pop_front();
                in_window -= cost;
            }
            if in_window + cost > capacity(t) {
                throttles += 1;
                limiter.settle(cost, 0.0);
                limiter.throttled();
                clock.advance(Duration::from_millis(50));
            } else {
                window.push_back(t);
                in_window += cost;
                written += cost;
                limiter.settle(cost, cost);
                limiter.succeeded();
            }
        }
    }

    #[tokio::test]
    async fn a_ramp_follows_a_new_on_demand_table_up_without_a_storm() {
        // A table taking 400 units/s that doubles every 20 s up to 3,200; the target is
        // 32,000 (what 0.8 of on-demand's 40,000 would ask).
        let capacity = |t: f64| (400.0 * 2f64.powi((t / 20.0) as i32)).min(3200.0);
        let clock = ManualClock::default();
        let fixed = RateLimiter::new(32_000.0, Arc::new(clock.clone()));
        let (storm, _) = against_a_table(&fixed, &clock, 120.0, 25.0, capacity).await;
        let clock = ManualClock::default();
        let ramp = RateLimiter::ramping(400.0, 32_000.0, Arc::new(clock.clone()));
        let (throttles, written) = against_a_table(&ramp, &clock, 120.0, 25.0, capacity).await;
        let possible: f64 = (0..120).map(|s| capacity(s as f64)).sum();
        eprintln!(
            "fixed: {storm} throttles; ramp: {throttles} throttles, {written} of {possible} units"
        );
        // The fixed rate throttles on most requests; the ramp a few times a step.
        assert!(storm > 1000, "fixed rate: {storm} throttles");
        assert!(throttles < 40, "ramp: {throttles} throttles");
        // And the ramp writes at least 60 % of what the table could take in the time.
        assert!(written > 0.6 * possible, "{written} of {possible}");
    }

    #[tokio::test]
    async fn a_ramp_climbs_only_while_it_holds_the_callers_back() {
        let clock = ManualClock::default();
        let ramp = RateLimiter::ramping(100.0, 1000.0, Arc::new(clock.clone()));
        // Idle for a minute: nobody waited, so no climb.
        clock.advance(Duration::from_secs(60));
        ramp.acquire(0.0).await.unwrap();
        assert_eq!(ramp.current_rate(), 100.0);
        // Busy for 10 s: 5 % a second.
        run(&ramp, &clock, 1500, 1.0).await;
        assert!(ramp.current_rate() > 150.0, "{}", ramp.current_rate());
        // A burst of throttles halves it once.
        let before = ramp.current_rate();
        for _ in 0..20 {
            ramp.throttled();
        }
        assert_eq!(ramp.current_rate(), before / 2.0);
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
