//! One Scan segment of one table: pages in order from its start, each paid for with the
//! capacity DynamoDB reports, handed to a [`PageSink`] (the export's data-file writer, or
//! `verify`'s digests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, Select};

use crate::aws::wire_scan::{self, WireSlot};
use crate::aws::Aws;
use crate::format::writer::DataFileWriter;
use crate::item::validate::item_size;
use crate::item::wire::WirePage;
use crate::item::Item;
use crate::progress::TableProgress;
use crate::rate::RateLimiter;
use crate::run::stop::StopSignal;
use crate::{Error, Result};

/// Pages larger than this many items are never asked for (DynamoDB caps pages at 1 MB anyway).
const MAX_LIMIT: f64 = 10_000.0;

/// Seconds of a segment's share of the read rate that one page is sized to cost.
const PAGE_SECONDS: f64 = 0.25;

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

/// A position in a scan: the key to continue after (DynamoDB's `LastEvaluatedKey`).
pub type ScanKey = HashMap<String, AttributeValue>;

/// Where a segment's pages go.
pub trait PageSink: Send {
    /// Take one page's items (for a count-only scan: none, and `count`); `next` is where
    /// the scan continues after this page (`None` at the end of the segment).
    fn page(
        &mut self,
        items: &[Item],
        count: u64,
        next: Option<&ScanKey>,
    ) -> impl std::future::Future<Output = Result<()>> + Send;

    /// The most items the next page may hold, when the sink needs pages to end somewhere.
    fn room(&self) -> Option<u64> {
        None
    }

    /// Whether the sink takes pages as native export lines read from the wire
    /// ([`PageSink::lines`]) rather than as items.
    fn takes_lines(&self) -> bool {
        false
    }

    /// Take one page as native export lines (only called when [`PageSink::takes_lines`]).
    fn lines(
        &mut self,
        page: &WirePage,
        next: Option<&ScanKey>,
    ) -> impl std::future::Future<Output = Result<()>> + Send {
        let _ = (page, next);
        async { unreachable!("lines given to a sink that takes items") }
    }
}

impl PageSink for DataFileWriter {
    async fn page(&mut self, items: &[Item], _count: u64, _next: Option<&ScanKey>) -> Result<()> {
        for item in items {
            self.push(item, item_size(item) as u64).await?;
        }
        self.end_page().await?;
        Ok(())
    }

    fn room(&self) -> Option<u64> {
        Some(DataFileWriter::room(self))
    }

    fn takes_lines(&self) -> bool {
        self.writes_native_lines()
    }

    async fn lines(&mut self, page: &WirePage, _next: Option<&ScanKey>) -> Result<()> {
        for (line, size) in page.lines() {
            self.push_line(line, size).await?;
        }
        self.end_page().await?;
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

/// A page Limit no larger than what the sink has room for.
fn bounded(limit: Option<i32>, room: Option<u64>) -> Option<i32> {
    match (limit, room) {
        (l, None) => l,
        (None, Some(r)) => Some(r.min(i32::MAX as u64) as i32),
        (Some(l), Some(r)) => Some((l as u64).min(r) as i32),
    }
}

/// Read segment `segment` of `job`'s table into `sink`, from its start or from `start`
/// (a checkpoint's key) to its end.
pub async fn scan_segment(
    job: &ScanJob,
    segment: u32,
    start: Option<ScanKey>,
    sink: &mut impl PageSink,
) -> Result<()> {
    let table = job.table.as_str();
    let total = job.segments;
    let limiter = &job.limiter;
    let mut start = start;
    // About a quarter second of this segment's share of the rate per page, so the rate
    // stays smooth even for slow tables with large pages: a page is then at most 2.5 % of
    // a 10-second window. (Fast tables reach DynamoDB's 1 MB page cap first.) Until a page
    // tells us the real cost of an item, use DynamoDB's average item size, or assume 1 KB.
    let share =
        (limiter.target() * PAGE_SECONDS / total.min(job.concurrency).max(1) as f64).max(0.5);
    let first_per_item = job.avg_item_bytes.unwrap_or(1024.0).max(1.0) / 4096.0 * 0.5;
    let (mut limit, mut estimate) = page_size(share, first_per_item);
    // Pages for a native-format file are read straight from the wire (see `item::wire`).
    let wire = sink.takes_lines().then(WireSlot::default);
    loop {
        if job.cancelled.load(Ordering::Relaxed) || job.stop.is_stopped() {
            return Err(Error::Interrupted);
        }
        tokio::select! {
            _ = limiter.acquire(estimate) => {}
            _ = job.stop.stopped() => return Err(Error::Interrupted),
        }
        let page_limit = bounded(limit, sink.room());
        let page = job
            .aws
            .call(
                || format!("table {table}: Scan segment {segment} of {total}"),
                Some(limiter),
                || {
                    let scan = job
                        .aws
                        .dynamodb
                        .scan()
                        .table_name(table)
                        .segment(segment as i32)
                        .total_segments(total as i32)
                        .set_exclusive_start_key(start.clone())
                        .set_limit(page_limit)
                        .set_select(job.count_only.then_some(Select::Count))
                        .return_consumed_capacity(ReturnConsumedCapacity::Total);
                    let wire = wire.clone();
                    async move {
                        match &wire {
                            Some(slot) => wire_scan::send(scan, slot).await,
                            None => scan.send().await,
                        }
                    }
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
        let next = page.last_evaluated_key().filter(|k| !k.is_empty());
        let (count, bytes) = match wire.as_ref().and_then(WireSlot::take) {
            Some(lines) => {
                sink.lines(&lines, next).await?;
                (lines.items.len() as u64, lines.item_bytes())
            }
            None => {
                let count = if job.count_only {
                    page.count().max(0) as u64
                } else {
                    page.items().len() as u64
                };
                sink.page(page.items(), count, next).await?;
                let bytes = page.items().iter().map(|i| item_size(i) as u64).sum();
                (count, bytes)
            }
        };
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
        match next {
            Some(k) => start = Some(k.clone()),
            None => return Ok(()),
        }
    }
}
