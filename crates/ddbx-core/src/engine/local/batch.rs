//! BatchWriteItem with partial retry: at most 25 items and 16 MB a call, paid for with the
//! capacity DynamoDB reports, and `UnprocessedItems` resent (only they) with jittered
//! backoff until DynamoDB takes them or the retry budget runs out. Nothing is dropped.
//! The requests travel as wire JSON ([`wire::write`](crate::wire::write)).

use crate::aws::Aws;
use crate::rate::RateLimiter;
use crate::retry::Backoff;
use crate::wire::write::{self, Requests};
use crate::{Error, Result};

/// Items per BatchWriteItem call at most.
pub const MAX_BATCH_ITEMS: usize = 25;
/// Bytes per BatchWriteItem call at most: the items' sizes, and the request's JSON.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Items to write (or, replaying a chain, keys to delete) together, with where they came
/// from.
#[derive(Debug)]
pub struct Batch {
    /// The puts and deletes.
    pub requests: Requests,
    /// Their write units (1 per started KB each).
    pub units: f64,
    /// Their size.
    pub bytes: usize,
    /// Index of the data file.
    pub file: usize,
    /// Sequence number of the batch within its file.
    pub seq: usize,
    /// Line of the last item.
    pub last_line: u64,
}

/// The room a batch's requests are given at first: 25 items of 1 KB, with their JSON.
const FIRST_ROOM: usize = 32 * 1024;

impl Batch {
    /// No records yet, into `table`, from the data file of index `file`.
    pub fn new(table: &str, file: usize) -> Self {
        Batch {
            requests: Requests::with_capacity(table, FIRST_ROOM),
            units: 0.0,
            bytes: 0,
            file,
            seq: 0,
            last_line: 0,
        }
    }

    /// Whether a record of `size` bytes, `json` bytes of wire JSON, would not fit (with
    /// room for the call's own JSON around the requests).
    pub fn is_full_for(&self, size: usize, json: usize) -> bool {
        self.requests.len() >= MAX_BATCH_ITEMS
            || self.bytes + size > MAX_BATCH_BYTES
            || self.requests.json_len() + json + 64 * 1024 > MAX_BATCH_BYTES
    }

    /// Add a record (`map`, an item or with `delete` a key, in wire JSON) of `size` bytes
    /// read from `line`.
    pub fn push(&mut self, delete: bool, map: &[u8], size: usize, line: u64) {
        self.units += write_units(size);
        self.bytes += size;
        if delete {
            self.requests.delete(map);
        } else {
            self.requests.put(map);
        }
        self.last_line = line;
    }
}

/// DynamoDB's write cost of one item: one unit per started KB.
pub fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Write `batch` into `table`, returning the units consumed. On failure the error says how
/// many items of the batch were not written.
pub async fn write_batch(
    aws: &Aws,
    limiter: &RateLimiter,
    table: &str,
    batch: Requests,
    units: f64,
) -> Result<f64> {
    let total = batch.len();
    let mut pending = batch;
    let mut estimate = units;
    let mut consumed_total = 0.0;
    let mut backoff = Backoff::new(aws.retry, aws.clock.now());
    loop {
        // A stop ends the wait (the limiter's, or a backoff's): the batch is then not
        // written, and the checkpoint stops before it.
        limiter.acquire(estimate).await?;
        let sent = pending.len();
        let body = pending.into_body();
        let result = aws
            .call(
                || format!("table {table}: BatchWriteItem of {sent} items"),
                Some(limiter),
                || write::send(aws, table, body.clone()),
            )
            .await;
        let written = match result {
            Ok(written) => written,
            Err(e) => {
                limiter.settle(estimate, 0.0);
                return Err(not_written(table, sent, total, e.to_string()));
            }
        };
        let unprocessed = written.unprocessed;
        let share = if sent == 0 {
            0.0
        } else {
            (sent - unprocessed.len()) as f64 / sent as f64
        };
        let consumed = written.consumed.unwrap_or(estimate * share);
        limiter.settle(estimate, consumed);
        consumed_total += consumed;
        if unprocessed.is_empty() {
            return Ok(consumed_total);
        }
        // DynamoDB could not take everything: it is the same signal as a throttle.
        limiter.throttled();
        estimate = (estimate * (1.0 - share)).max(unprocessed.len() as f64);
        pending = unprocessed;
        match backoff.next_delay(aws.clock.now()) {
            Some(d) => {
                tracing::debug!(%table, unprocessed = pending.len(), delay_ms = d.as_millis() as u64, "resending unprocessed items");
                limiter.pause(d).await?;
            }
            None => {
                return Err(not_written(
                    table,
                    pending.len(),
                    total,
                    format!(
                        "DynamoDB left them unprocessed after {} attempts",
                        backoff.attempts()
                    ),
                ))
            }
        }
    }
}

fn not_written(table: &str, left: usize, total: usize, why: String) -> Error {
    Error::Failed(format!(
        "table {table}: {left} of {total} items of a batch were not written: {why}"
    ))
}
