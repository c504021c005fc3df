//! Running a list of jobs a few at a time: the tables of a run (every engine and job), the
//! windows of an incremental chain. The local engine's worker pool, which segments and
//! writers share, is `engine::local::pool`.

use std::future::Future;

use futures::stream::{self, StreamExt};

/// Run `job` for each of `items`, at most `parallel` at a time, and return the results in
/// the order of `items`. A job that ends frees its place at once, whatever the jobs before
/// it are doing (a slow first table never holds the others back).
pub async fn for_each_limited<I, T, F, Fut>(items: Vec<I>, parallel: usize, job: F) -> Vec<T>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = T>,
{
    let job = &job;
    let mut results: Vec<(usize, T)> = each_limited(
        items.into_iter().enumerate(),
        parallel,
        |(i, item)| async move { (i, job(item).await) },
    )
    .collect()
    .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Run `job` for each of `items`, at most `parallel` at a time, and give each result as
/// its job ends (in that order): a fleet's results are kept as they come, never all held.
pub fn each_limited<I, T, F, Fut>(
    items: impl IntoIterator<Item = I>,
    parallel: usize,
    job: F,
) -> impl futures::Stream<Item = T>
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = T>,
{
    stream::iter(items)
        .map(job)
        .buffer_unordered(parallel.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn limits_parallelism_and_keeps_order() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let out = for_each_limited((0..20).collect(), 3, |i| {
            let running = running.clone();
            let peak = peak.clone();
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_slow_first_job_does_not_hold_back_the_rest() {
        // Job 0 ends only once every other job has: with two places, that is possible only
        // if each place is freed as its job ends, not in the order of the list.
        let done = Arc::new(AtomicUsize::new(0));
        let all_others = Arc::new(tokio::sync::Notify::new());
        let out = for_each_limited((0..6).collect(), 2, |i: usize| {
            let done = done.clone();
            let all_others = all_others.clone();
            async move {
                if i == 0 {
                    all_others.notified().await;
                } else if done.fetch_add(1, Ordering::SeqCst) + 1 == 5 {
                    all_others.notify_one();
                }
                i
            }
        })
        .await;
        assert_eq!(out, vec![0, 1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn no_place_still_runs_one_at_a_time() {
        assert_eq!(
            for_each_limited(vec![1, 2], 0, |i| async move { i }).await,
            [1, 2]
        );
    }
}
