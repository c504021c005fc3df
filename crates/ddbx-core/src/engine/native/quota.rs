//! DynamoDB's job quotas, as a native run lives with them. An account runs a bounded
//! number of exports and imports at once (imports: 50, and at most 15 TB of source in
//! flight in us-east-1, us-west-2 and eu-west-1, 1 TB elsewhere), and a job holds its
//! share for its whole life, minutes to hours. So a LimitExceededException on starting a
//! job is not a failure: the job waits in line (until one of this run's own jobs ends, or
//! a while passes, when the quota is held by someone else) and tries again, for as long as
//! `--max-wait` allows.

use std::time::Duration;

use tokio::sync::Notify;

use super::Poll;
use crate::aws::Aws;
use crate::progress::TableProgress;
use crate::retry::RetryPolicy;
use crate::stop::StopSignal;
use crate::{Error, Result};

/// Imports an account runs at once, at most (the ImportTable quota).
pub const MAX_IMPORT_JOBS: usize = 50;

/// Objects one ImportTable reads at most (every object under its prefix).
pub const MAX_IMPORT_OBJECTS: usize = 50_000;

/// The source bytes of the imports in flight at once in a region, at most.
pub fn import_bytes_quota(region: &str) -> u64 {
    const TB: u64 = 1_000_000_000_000;
    match region {
        "us-east-1" | "us-west-2" | "eu-west-1" => 15 * TB,
        _ => TB,
    }
}

/// The run's line for job starts: told when one of its jobs ends.
#[derive(Debug)]
pub struct Quota {
    ended: Notify,
    /// How long a job waits in line at most.
    pub max_wait: Duration,
    /// How often a job in line tries again when none of the run's own jobs ends.
    pub poll: Poll,
}

/// What a refused start is.
fn refused(e: &Error) -> bool {
    matches!(e, Error::Aws { code: Some(c), .. } if c == "LimitExceededException")
}

impl Quota {
    /// A line whose jobs wait `max_wait` at most, trying again at `poll`'s pace.
    pub fn new(max_wait: Duration, poll: Poll) -> Self {
        Self {
            ended: Notify::new(),
            max_wait,
            poll,
        }
    }

    /// One of the run's jobs ended: a job in line tries again now.
    pub fn job_ended(&self) {
        self.ended.notify_waiters();
    }

    /// The retries of one start call: transient faults a few times, quickly, so that a
    /// refusal for the quota comes back here rather than being retried for minutes.
    pub fn start_policy(aws: &Aws) -> RetryPolicy {
        RetryPolicy {
            max_attempts: aws.retry.max_attempts.min(6),
            budget: aws.retry.budget.min(Duration::from_secs(60)),
            ..aws.retry
        }
    }

    /// Run `start` (a job's start call) until it is not refused for the quota, waiting in
    /// line between refusals; `what` names the job for the display and the error.
    pub async fn start<T, F, Fut>(
        &self,
        aws: &Aws,
        stop: &StopSignal,
        counters: &TableProgress,
        what: &str,
        mut start: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut first_refusal = None;
        let mut wait = self.poll.first;
        loop {
            // Registered before the call, so that a job ending during it is not missed.
            let ended = self.ended.notified();
            let e = match start().await {
                Ok(v) => return Ok(v),
                Err(e) if refused(&e) => e,
                Err(e) => return Err(e),
            };
            let since = *first_refusal.get_or_insert_with(|| aws.clock.now());
            let waited = aws.clock.now().duration_since(since);
            if waited >= self.max_wait {
                return Err(Error::Failed(format!(
                    "{e} (LimitExceededException): the account's quota stayed full for {} (--max-wait {}); start it again later, or raise --max-wait",
                    minutes(waited),
                    minutes(self.max_wait)
                )));
            }
            counters.set_state(format!(
                "{what} waiting for the account's quota ({} so far)",
                minutes(waited)
            ));
            tracing::info!(%what, waited_s = waited.as_secs(), "LimitExceededException: waiting in line for the quota");
            tokio::select! {
                _ = ended => {}
                _ = aws.clock.sleep(wait.min(self.max_wait - waited)) => {}
                _ = stop.stopped() => return Err(Error::Interrupted),
            }
            wait = wait.mul_f64(1.5).min(self.poll.max);
        }
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn limit() -> Error {
        Error::Aws {
            context: "table T: ImportTable".into(),
            code: Some("LimitExceededException".into()),
            message: "too many imports".into(),
            class: crate::aws::ErrorClass::Throttled,
        }
    }

    fn quota(max_wait: Duration) -> Quota {
        Quota::new(
            max_wait,
            Poll {
                first: Duration::from_secs(10),
                max: Duration::from_secs(60),
            },
        )
    }

    #[tokio::test]
    async fn a_refused_start_waits_in_line_for_as_long_as_allowed() {
        let clock = ManualClock::default();
        let aws = Aws::for_tests("http://127.0.0.1:9", clock.clone());
        let q = quota(Duration::from_secs(3 * 3600));
        let calls = AtomicU32::new(0);
        let counters = TableProgress::new("T");
        // Refused for longer than the SDK's retries would last (300 s), then taken.
        let got = q
            .start(
                &aws,
                &StopSignal::default(),
                &counters,
                "import",
                || async {
                    match calls.fetch_add(1, Ordering::SeqCst) {
                        0..=20 => Err(limit()),
                        _ => Ok("arn"),
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(got, "arn");
        let slept: Duration = clock.sleeps().iter().sum();
        assert!(slept > Duration::from_secs(600), "{slept:?}");
        assert!(clock.sleeps().iter().all(|d| *d <= Duration::from_secs(60)));
        assert!(counters
            .state()
            .unwrap()
            .contains("waiting for the account's quota"));

        // Past --max-wait it fails, saying so; other errors are not waited for.
        let q = quota(Duration::from_secs(120));
        let err = q
            .start(
                &aws,
                &StopSignal::default(),
                &counters,
                "export",
                || async { Err::<(), _>(limit()) },
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LimitExceededException") && err.contains("--max-wait 2m00s"),
            "{err}"
        );
        let n = AtomicU32::new(0);
        let err = q
            .start(
                &aws,
                &StopSignal::default(),
                &counters,
                "export",
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(Error::Usage("no".into()))
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "no");
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_job_of_the_run_ending_lets_the_next_in_line_try_at_once() {
        // A real clock: the waiter must wake on the notice, not on its 10-minute poll.
        let aws = Aws::for_tests("http://127.0.0.1:9", ManualClock::default());
        let aws = Aws {
            clock: crate::clock::system(),
            ..aws
        };
        let q = std::sync::Arc::new(Quota::new(
            Duration::from_secs(3600),
            Poll {
                first: Duration::from_secs(600),
                max: Duration::from_secs(600),
            },
        ));
        let calls = std::sync::Arc::new(AtomicU32::new(0));
        let waiter = tokio::spawn({
            let (q, calls, aws) = (q.clone(), calls.clone(), aws.clone());
            async move {
                let counters = TableProgress::new("T");
                q.start(&aws, &StopSignal::default(), &counters, "export", || {
                    let calls = calls.clone();
                    async move {
                        match calls.fetch_add(1, Ordering::SeqCst) {
                            0 => Err(limit()),
                            _ => Ok(()),
                        }
                    }
                })
                .await
            }
        });
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Once it is in line (its notice registered before its call), a job ends.
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                q.job_ended();
                if waiter.is_finished() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("woken by the notice, not by its 10-minute wait");
        waiter.await.unwrap().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
