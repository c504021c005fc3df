//! One Scan segment of one table: pages in order from its start, each paid for with the
//! capacity DynamoDB reports, handed to a [`PageSink`] (the export's data-file writer, or
//! `verify`'s digests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, Select};

use crate::aws::Aws;
use crate::format::writer::DataFileWriter;
use crate::item::validate::item_size;
use crate::item::Item;
use crate::progress::TableProgress;
use crate::rate::RateLimiter;
use crate::stop::StopSignal;
use crate::wire;
use crate::wire::scan::WireSlot;
use crate::wire::WirePage;
use crate::{Error, Result};

/// Pages larger than this many items are never asked for (DynamoDB caps pages at 1 MB anyway).
const MAX_LIMIT: f64 = 10_000.0;

/// The most a Scan page can cost: DynamoDB stops a page at 1 MB read, and an eventually
/// consistent read costs half a unit per 4 KB. Reserving more for a page than this would
/// only make the other segments wait for units the page cannot use.
const MAX_PAGE_UNITS: f64 = 1024.0 * 1024.0 / 4096.0 * 0.5;

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
    /// Take one page's items (none for a count-only scan) and their sizes by DynamoDB's
    /// rules; `next` is where the scan continues after this page (`None` at the end of the
    /// segment).
    fn page(
        &mut self,
        items: &[Item],
        sizes: &[u64],
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
    async fn page(&mut self, items: &[Item], sizes: &[u64], _next: Option<&ScanKey>) -> Result<()> {
        for (item, size) in items.iter().zip(sizes) {
            self.push(item, *size).await?;
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
    let units = (items.min(MAX_LIMIT) * per_item).clamp(0.5, MAX_PAGE_UNITS);
    (limit, units)
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
///
/// The next page is asked for while the sink writes the current one (its key to continue
/// from is known as soon as the page arrives), so the server never waits on compression.
/// Only a page that fills the sink's open file is written before the next is asked for,
/// since the next page's size depends on the room a new file gives.
pub async fn scan_segment(
    job: &ScanJob,
    segment: u32,
    start: Option<ScanKey>,
    sink: &mut impl PageSink,
) -> Result<()> {
    let limiter = &job.limiter;
    // About a quarter second of this segment's share of the rate per page, so the rate
    // stays smooth even for slow tables with large pages: a page is then at most 2.5 % of
    // a 10-second window. (Fast tables reach DynamoDB's 1 MB page cap first.) Until a page
    // tells us the real cost of an item, use DynamoDB's average item size, or assume 1 KB.
    let share = (limiter.target() * PAGE_SECONDS / job.segments.min(job.concurrency).max(1) as f64)
        .max(0.5);
    let first_per_item = job.avg_item_bytes.unwrap_or(1024.0).max(1.0) / 4096.0 * 0.5;
    let (mut limit, mut estimate) = page_size(share, first_per_item);
    // Pages for a native-format file are read straight from the wire (see `wire`).
    let wire = sink.takes_lines().then(WireSlot::default);
    let reader = PageReader {
        job,
        segment,
        wire: wire.as_ref(),
    };
    let mut fetched = reader
        .read(start, bounded(limit, sink.room()), estimate)
        .await?;
    loop {
        let page = fetched;
        let next = page.next().cloned();
        let (count, bytes) = page.counts(job.count_only);
        // Endpoints that do not report capacity are charged by DynamoDB's rule for
        // eventually consistent reads: half a unit per started 4 KB of the page.
        let consumed = page
            .output
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .unwrap_or_else(|| (bytes as f64 / 4096.0).ceil().max(1.0) * 0.5);
        limiter.settle(page.reserved, consumed);
        if count > 0 {
            (limit, estimate) = page_size(share, consumed / count as f64);
        }
        let room = sink.room();
        let written = async {
            page.deliver(sink).await?;
            job.progress.add(count, bytes, consumed);
            Ok(())
        };
        fetched = match next {
            None => return written.await,
            Some(key) if room.is_none_or(|r| r > count) => {
                let after = room.map(|r| r - count);
                let read = reader.read(Some(key), bounded(limit, after), estimate);
                alongside(written, read).await?
            }
            Some(key) => {
                written.await?;
                reader
                    .read(Some(key), bounded(limit, sink.room()), estimate)
                    .await?
            }
        };
    }
}

/// Run `read` while `write` runs: `write`'s error wins (the read is then abandoned, since
/// nothing it holds is lost); a failed read is reported once `write` is done, so that the
/// page in hand is always written (and checkpointed) first.
async fn alongside<T>(
    write: impl std::future::Future<Output = Result<()>>,
    read: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::pin!(write, read);
    let mut got = None;
    loop {
        tokio::select! {
            // The read goes first, so that its request is on its way before the write
            // takes the thread.
            biased;
            r = &mut read, if got.is_none() => got = Some(r),
            r = &mut write => {
                r?;
                break;
            }
        }
    }
    match got {
        Some(r) => r,
        None => read.await,
    }
}

/// Sends one segment's Scans.
struct PageReader<'a> {
    job: &'a ScanJob,
    segment: u32,
    wire: Option<&'a WireSlot>,
}

/// One Scan page, with the units reserved for it.
struct Page {
    output: ScanOutput,
    /// Its native export lines, when it was read from the wire.
    lines: Option<WirePage>,
    /// Its items' sizes by DynamoDB's rules, when it was read by the SDK.
    sizes: Vec<u64>,
    reserved: f64,
}

impl PageReader<'_> {
    /// Pay for a page of `limit` items estimated at `estimate` units, and read it.
    async fn read(
        &self,
        start: Option<ScanKey>,
        limit: Option<i32>,
        estimate: f64,
    ) -> Result<Page> {
        let job = self.job;
        let (table, segment, total) = (job.table.as_str(), self.segment, job.segments);
        let limiter = &job.limiter;
        if job.cancelled.load(Ordering::Relaxed) || job.stop.is_stopped() {
            return Err(Error::Interrupted);
        }
        // (The limiter ends its wait when the run stops.)
        limiter.acquire(estimate).await?;
        let output = job
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
                        .set_limit(limit)
                        .set_select(job.count_only.then_some(Select::Count))
                        .return_consumed_capacity(ReturnConsumedCapacity::Total);
                    let wire = self.wire;
                    async move {
                        match wire {
                            Some(slot) => wire::scan::send(scan, slot).await,
                            None => scan.send().await,
                        }
                    }
                },
            )
            .await;
        match output {
            // (A page read from the wire has its lines, and no items in `output`.)
            Ok(output) => Ok(Page {
                sizes: output.items().iter().map(|i| item_size(i) as u64).collect(),
                output,
                lines: self.wire.and_then(WireSlot::take),
                reserved: estimate,
            }),
            Err(e) => {
                limiter.settle(estimate, 0.0);
                Err(e)
            }
        }
    }
}

impl Page {
    /// Where the segment continues after this page (`None` at its end).
    fn next(&self) -> Option<&ScanKey> {
        self.output.last_evaluated_key().filter(|k| !k.is_empty())
    }

    /// Its items and their bytes by DynamoDB's rules.
    fn counts(&self, count_only: bool) -> (u64, u64) {
        match &self.lines {
            Some(lines) => (lines.items.len() as u64, lines.item_bytes()),
            None if count_only => (self.output.count().max(0) as u64, 0),
            None => (self.sizes.len() as u64, self.sizes.iter().sum()),
        }
    }

    /// Hand the page to `sink`.
    async fn deliver(self, sink: &mut impl PageSink) -> Result<()> {
        let next = self.next();
        match &self.lines {
            Some(lines) => sink.lines(lines, next).await,
            None => sink.page(self.output.items(), &self.sizes, next).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_reserves_what_it_can_cost_at_most() {
        // A fast table: a quarter second of the share is far more than one page can read.
        let (limit, units) = page_size(1250.0, 200.0 / 4096.0 * 0.5);
        assert_eq!(limit, None);
        assert_eq!(units, MAX_PAGE_UNITS);
        // A slow one: the share decides.
        let (limit, units) = page_size(3.0, 0.5);
        assert_eq!(limit, Some(6));
        assert_eq!(units, 3.0);
        // Never less than the half unit any read costs.
        assert_eq!(page_size(0.1, 0.5), (Some(1), 0.5));
    }

    #[tokio::test]
    async fn alongside_writes_the_page_in_hand_before_a_failed_read_is_reported() {
        let written = Arc::new(AtomicBool::new(false));
        let w = written.clone();
        let write = async move {
            tokio::task::yield_now().await;
            w.store(true, Ordering::SeqCst);
            Ok(())
        };
        let read = async { Err::<(), _>(Error::Interrupted) };
        assert!(matches!(
            alongside(write, read).await,
            Err(Error::Interrupted)
        ));
        assert!(written.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn alongside_reports_a_failed_write_without_waiting_for_the_read() {
        let write = async { Err(Error::Failed("disk full".into())) };
        // A read that never ends: the failed write must not wait for it.
        let read = std::future::pending::<Result<()>>();
        assert!(matches!(alongside(write, read).await, Err(Error::Failed(m)) if m == "disk full"));
    }

    #[tokio::test]
    async fn alongside_returns_the_read_once_both_are_done() {
        let write = async {
            tokio::task::yield_now().await;
            Ok(())
        };
        let read = async { Ok(7) };
        assert_eq!(alongside(write, read).await.unwrap(), 7);
        let write = async { Ok(()) };
        let read = async {
            tokio::task::yield_now().await;
            Ok(8)
        };
        assert_eq!(alongside(write, read).await.unwrap(), 8);
    }
}
