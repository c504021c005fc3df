//! The local engine's shared pool of workers, which every table's segments (or writers)
//! draw from (the seed's "one cluster for all tables"). Tables run a few at a time with
//! `crate::concurrent::for_each_limited`.

use std::future::Future;
use std::sync::Arc;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
