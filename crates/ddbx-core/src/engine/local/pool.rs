//! The local engine's concurrency: a shared pool of workers that every table's segments
//! (or writers) draw from, and tables run a few at a time (the seed's "one cluster for all
//! tables").

use std::future::Future;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Semaphore;

/// The shared pool of workers: a task holds a permit while it runs.
#[derive(Debug, Clone)]
pub struct WorkerPool {
    permits: Arc<Semaphore>,
}

impl WorkerPool {
    /// A pool of `workers` permits.
    pub fn new(workers: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(workers.max(1))),
        }
    }

    /// Run `task` on its own tokio task once a worker is free.
    pub fn spawn<T, F>(&self, task: F) -> tokio::task::JoinHandle<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let permits = self.permits.clone();
        tokio::spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the pool is never closed");
            task.await
        })
    }
}

/// Run `job` for each of `items`, at most `parallel` at a time, and return the results in
/// the order of `items`.
pub async fn for_each_limited<I, T, F, Fut>(items: Vec<I>, parallel: usize, job: F) -> Vec<T>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = T>,
{
    let parallel = parallel.max(1);
    let mut results: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
    let mut running = FuturesUnordered::new();
    let mut queue = items.into_iter().enumerate();
    loop {
        while running.len() < parallel {
            match queue.next() {
                Some((i, item)) => {
                    let fut = job(item);
                    running.push(async move { (i, fut.await) });
                }
                None => break,
            }
        }
        match running.next().await {
            Some((i, r)) => results[i] = Some(r),
            None => break,
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }

    #[tokio::test]
    async fn pool_bounds_spawned_tasks() {
        let pool = WorkerPool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let running = running.clone();
                let peak = peak.clone();
                pool.spawn(async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
    }
}
