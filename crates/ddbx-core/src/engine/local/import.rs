//! The local engine's import of one table: every data file read once to validate it (so
//! a bad file means no write at all), then streamed in batches to a pool of writers at the
//! chosen write rate, with a checkpoint so that `--resume` continues where a run stopped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::batch::{write_batch, Batch};
use super::tracker::Tracker;
use crate::engine::interface::{ImportWork, ReadyTable};
use crate::format::reader::{ItemReader, WireRecord};
use crate::format::source::TableSource;
use crate::plan::ImportStep;
use crate::progress::TableProgress;
use crate::rate::RateLimiter;
use crate::run::checkpoint::{Checkpoints, ImportPosition};
use crate::run::stop::StopSignal;
use crate::{Error, Result};

/// The write rate of one table: `units` a second, reached from `start` when that is lower
/// (a ramp, for an on-demand table that takes less for now).
#[derive(Debug, Clone, Copy)]
pub(super) struct Rate {
    pub units: f64,
    pub start: Option<f64>,
}

impl Rate {
    fn limiter(self, clock: Arc<dyn crate::clock::Clock>) -> RateLimiter {
        match self.start {
            Some(start) if start < self.units => {
                tracing::info!(start, target = self.units, "on-demand target: the write rate starts at what the table takes now and climbs as it scales");
                RateLimiter::ramping(start, self.units, clock)
            }
            _ => RateLimiter::new(self.units, clock),
        }
    }
}

/// Write one table: its export, then (replaying a chain) each window's changes in order,
/// each from its own checkpoint. Returns the records written, earlier runs included.
pub(super) async fn write_chain(
    work: &ImportWork<'_>,
    step: &ImportStep,
    ready: &ReadyTable,
    counters: &Arc<TableProgress>,
    units: Rate,
    writers: usize,
) -> Result<u64> {
    let mut written = write_table(
        work,
        step,
        &ready.source,
        counters,
        units,
        writers,
        "checkpoint.json",
    )
    .await?;
    let window_step = ImportStep {
        expected_items: None,
        ..step.clone()
    };
    for (n, window) in ready.changes.iter().enumerate() {
        let name = format!("checkpoint-window-{:03}.json", n + 1);
        written += write_table(work, &window_step, window, counters, units, writers, &name).await?;
    }
    Ok(written)
}

/// Write one export's items (or changes) at `units` WCU/s, from its checkpoint `name`
/// (under the import's state) when resuming. Returns the records written, each counted
/// once, earlier runs included.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_table(
    work: &ImportWork<'_>,
    step: &ImportStep,
    src: &TableSource,
    counters: &Arc<TableProgress>,
    units: Rate,
    writers: usize,
    name: &str,
) -> Result<u64> {
    let aws = work.aws;
    let target = step.target_table.as_str();
    let checkpoints = Checkpoints::new(work.state, "_import", target);
    let base: ImportPosition = if work.resume {
        checkpoints.load(name).await?.unwrap_or_default()
    } else {
        ImportPosition::default()
    };
    if base.complete {
        tracing::info!(table = %target, "already imported by an earlier run");
        counters.add(base.items_written, 0, 0.0);
        return Ok(base.items_written);
    }
    if let Some(n) = step.expected_items.or(src.expected_items) {
        counters.expected_items.store(n, Ordering::Relaxed);
    }
    // A window is read once first in any case: a key with two records in it is written
    // once, as its later write left it (format::replay::superseded).
    let superseded = match src.changes {
        true => crate::format::replay::superseded(src).await?,
        false => Default::default(),
    };
    if !work.no_validate_first && !src.changes {
        // Read everything once, write nothing: a corrupt file fails the table untouched.
        // (Read as the writing pass reads it, so that it checks what that pass will take.)
        let mut scratch = Vec::new();
        for f in &src.files {
            let mut r = ItemReader::open(&src.dir, f, src.format)
                .await?
                .changes(src.changes);
            while r.check_next(&mut scratch).await? {
                if work.stop.is_stopped() {
                    return Err(Error::Interrupted);
                }
            }
        }
    }
    counters.add(base.items_written, 0, 0.0);

    let limiter = Arc::new(units.limiter(aws.clock.clone()));
    let tracker = Arc::new(Mutex::new(Tracker::new(base.clone())));
    let writers = writers.max(1);
    let (tx, rx) = mpsc::channel::<Batch>(writers * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<(usize, usize)>();
    // Raised by a writer that failed, so that the reader stops sending more.
    let failed = StopSignal::default();

    // Writers: take batches, write them, acknowledge them.
    let mut handles = Vec::new();
    for _ in 0..writers {
        let rx = rx.clone();
        let ack = ack_tx.clone();
        let aws = aws.clone();
        let limiter = limiter.clone();
        let counters = counters.clone();
        let target = target.to_string();
        let stop = work.stop.clone();
        let failed = failed.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(b) = next else {
                    return Ok::<(), Error>(());
                };
                if stop.is_stopped() {
                    // Interrupted: this batch is not written; the checkpoint stops before it.
                    return Ok(());
                }
                let (n, bytes) = (b.requests.len() as u64, b.bytes as u64);
                let consumed = match write_batch(&aws, &limiter, &target, b.requests, b.units).await
                {
                    Ok(c) => c,
                    Err(e) => {
                        failed.stop();
                        return Err(e);
                    }
                };
                counters.add(n, bytes, consumed);
                let _ = ack.send((b.file, b.seq));
            }
        }));
    }
    drop(ack_tx);

    // Checkpointer: folds acknowledgements into the position and records it each time a
    // data file is fully written (one further on than the position's first unfinished
    // file too: that position is then recorded again unchanged), and every two seconds in
    // between.
    let ckpt_task = {
        let tracker = tracker.clone();
        let checkpoints = checkpoints.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let mut last = Instant::now();
            let mut files_done = 0;
            while let Some((file, seq)) = ack_rx.recv().await {
                let pos = {
                    let mut t = tracker.lock().unwrap();
                    t.acked(file, seq);
                    let due =
                        t.complete_files() > files_done || last.elapsed() >= Duration::from_secs(2);
                    files_done = t.complete_files();
                    due.then(|| t.position())
                };
                if let Some(pos) = pos {
                    if let Err(e) = checkpoints.save(&name, &pos).await {
                        tracing::warn!(error = %e, "could not record the import checkpoint");
                    }
                    last = Instant::now();
                }
            }
        })
    };

    // Reader: files in order, skipping what an earlier run finished.
    let read_result = async {
        for (i, f) in src.files.iter().enumerate() {
            if base.files_done.contains(&f.url) {
                continue;
            }
            let skip_to = base
                .partial
                .as_ref()
                .filter(|p| p.file == f.url)
                .map(|p| p.lines_done)
                .unwrap_or(0);
            let file_idx = tracker.lock().unwrap().open_file(&f.url);
            let mut reader = ItemReader::open(&src.dir, f, src.format)
                .await?
                .changes(src.changes);
            let mut batch = Batch {
                file: file_idx,
                ..Batch::default()
            };
            let mut map = Vec::new();
            while let Some(record) = reader.next_wire(&mut map).await? {
                if work.stop.is_stopped() || failed.is_stopped() {
                    return Err(Error::Interrupted);
                }
                let WireRecord { line, delete, size } = record;
                if line <= skip_to || superseded.skips(i, line) {
                    map.clear();
                    continue;
                }
                if batch.is_full_for(size, map.len()) {
                    let full = std::mem::replace(
                        &mut batch,
                        Batch {
                            file: file_idx,
                            ..Batch::default()
                        },
                    );
                    send(&tracker, &tx, full).await?;
                }
                batch.push(delete, &map, size, line);
                map.clear();
            }
            if !batch.requests.is_empty() {
                send(&tracker, &tx, batch).await?;
            }
            tracker.lock().unwrap().read_to_end(file_idx);
        }
        Ok::<(), Error>(())
    }
    .await;
    drop(tx);
    let mut write_error = None;
    for h in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                write_error.get_or_insert(e);
            }
            Err(e) => {
                write_error.get_or_insert(Error::Invalid(format!("a writer task died: {e}")));
            }
        }
    }
    let _ = ckpt_task.await;
    limiter.drain().await;
    let mut pos = tracker.lock().unwrap().position();
    // Complete only when every file is recorded as written: writers that saw a stop leave
    // batches unwritten even though the reader sent them all.
    let all_written = src.files.iter().all(|f| pos.files_done.contains(&f.url));
    let stopped = work.stop.is_stopped();
    let outcome = match (read_result, write_error) {
        // A writer's error is the cause; the reader then only stopped.
        (_, Some(e)) => Err(e),
        (Err(_), None) if stopped => Err(Error::Interrupted),
        (Err(e), None) => Err(e),
        (Ok(()), None) if !all_written => Err(if stopped {
            Error::Interrupted
        } else {
            Error::Invalid(format!("table {target}: some batches were not written"))
        }),
        (Ok(()), None) => {
            pos.complete = true;
            Ok(pos.items_written)
        }
    };
    checkpoints.save(name, &pos).await?;
    match outcome {
        Ok(n) => {
            if let Some(expected) = step.expected_items {
                if expected != n {
                    return Err(Error::Invalid(format!(
                        "table {target}: wrote {n} items but the export holds {expected}"
                    )));
                }
            }
            Ok(n)
        }
        Err(e) => Err(Error::Invalid(format!(
            "{e} ({} items written, each once; rerun with --resume to continue from {})",
            pos.items_written,
            checkpoints.url()
        ))),
    }
}

async fn send(tracker: &Mutex<Tracker>, tx: &mpsc::Sender<Batch>, mut batch: Batch) -> Result<()> {
    batch.seq =
        tracker
            .lock()
            .unwrap()
            .sent(batch.file, batch.last_line, batch.requests.len() as u64);
    tx.send(batch)
        .await
        .map_err(|_| Error::Invalid("the writers stopped".into()))
}
