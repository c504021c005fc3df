//! One Scan segment of one table: pages in order from its start, each paid for with the
//! capacity DynamoDB reports, handed to a [`PageSink`] (the export's data-file writer, or
//! `verify`'s digests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, Select};

use crate::aws::Aws;
use crate::format::writer::DataFileWriter;
use crate::item::validate::item_size;
use crate::item::Item;
use crate::progress::TableProgress;
use crate::rate::RateLimiter;
use crate::run::stop::StopSignal;
use crate::{Error, Result};

/// Pages larger than this many items are never asked for (DynamoDB caps pages at 1 MB anyway).
const MAX_LIMIT: f64 = 10_000.0;

/// Everything the segments of one table's scan share.
#[derive(Debug)]
pub struct ScanJob {
    /// The run's AWS clients.
    pub aws: Aws,
    /// The table.
    pub table: String,
    /// Its rate limiter (read units).
    pub limiter: RateLimiter,
    /// Scan segments.
    pub segments: u32,
    /// Segments that can run at once (the pool's size).
    pub concurrency: u32,
    /// Average item size, when DynamoDB knows it (sizes the first page).
    pub avg_item_bytes: Option<f64>,
    /// Only count items (Select=COUNT): the sink gets empty pages with their counts.
    pub count_only: bool,
    /// Its counters.
    pub progress: Arc<TableProgress>,
    /// Set when a segment failed: the others stop.
    pub cancelled: AtomicBool,
    /// The run's stop signal (Ctrl-C, SIGTERM).
    pub stop: StopSignal,
}

/// Where a segment's pages go.
pub trait PageSink: Send {
    /// Take one page's items (for a count-only scan: none, and `count`).
    fn page(
        &mut self,
        items: &[Item],
        count: u64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

impl PageSink for DataFileWriter {
    async fn page(&mut self, items: &[Item], _count: u64) -> Result<()> {
        for item in items {
            self.push(item, item_size(item) as u64).await?;
        }
        Ok(())
    }
}

/// The Limit of the next page and the units to reserve for it, for pages costing about
/// `share` units with items of `per_item` units.
fn page_size(share: f64, per_item: f64) -> (Option<i32>, f64) {
    let per_item = per_item.max(1e-6);
    let items = (share / per_item).floor().max(1.0);
    let limit = (items < MAX_LIMIT).then_some(items as i32);
    (limit, (items.min(MAX_LIMIT) * per_item).max(0.5))
}

/// Read segment `segment` of `job`'s table to the end into `sink`.
pub async fn scan_segment(job: &ScanJob, segment: u32, sink: &mut impl PageSink) -> Result<()> {
    let table = job.table.as_str();
    let total = job.segments;
    let limiter = &job.limiter;
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    // About one second of this segment's share of the rate per page, so the rate stays
    // smooth even for slow tables with large pages. Until a page tells us the real cost
    // of an item, use DynamoDB's average item size, or assume 1 KB items.
    let share = (limiter.target() / total.min(job.concurrency).max(1) as f64).max(0.5);
    let first_per_item = job.avg_item_bytes.unwrap_or(1024.0).max(1.0) / 4096.0 * 0.5;
    let (mut limit, mut estimate) = page_size(share, first_per_item);
    loop {
        if job.cancelled.load(Ordering::Relaxed) || job.stop.is_stopped() {
            return Err(Error::Interrupted);
        }
        tokio::select! {
            _ = limiter.acquire(estimate) => {}
            _ = job.stop.stopped() => return Err(Error::Interrupted),
        }
        let page = job
            .aws
            .call(
                || format!("table {table}: Scan segment {segment} of {total}"),
                Some(limiter),
                || {
                    job.aws
                        .dynamodb
                        .scan()
                        .table_name(table)
                        .segment(segment as i32)
                        .total_segments(total as i32)
                        .set_exclusive_start_key(start.clone())
                        .set_limit(limit)
                        .set_select(job.count_only.then_some(Select::Count))
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                },
            )
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                limiter.settle(estimate, 0.0);
                return Err(e);
            }
        };
        let bytes: u64 = page.items().iter().map(|i| item_size(i) as u64).sum();
        let count = if job.count_only {
            page.count().max(0) as u64
        } else {
            page.items().len() as u64
        };
        sink.page(page.items(), count).await?;
        // Endpoints that do not report capacity are charged by DynamoDB's rule for
        // eventually consistent reads: half a unit per started 4 KB of the page.
        let consumed = page
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .unwrap_or_else(|| (bytes as f64 / 4096.0).ceil().max(1.0) * 0.5);
        limiter.settle(estimate, consumed);
        job.progress.add(count, bytes, consumed);

        if count > 0 {
            (limit, estimate) = page_size(share, consumed / count as f64);
        }
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(()),
        }
    }
}
