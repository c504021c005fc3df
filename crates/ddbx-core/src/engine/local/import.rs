//! The local engine's import of one table: its export checked once (`check`, before the
//! target was touched), then streamed in batches to a pool of writers at the chosen write
//! rate, with a checkpoint so that `--resume` continues where a run stopped, but only into
//! the very table the checkpoint was written for.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::batch::{write_batch, Batch};
use super::check::{check_source, checkpoint_name};
use super::tracker::Tracker;
use crate::checkpoint::{Checkpoints, ImportPosition};
use crate::engine::interface::{ImportWork, ReadyTable, SourceCheck};
use crate::format::reader::{ItemReader, WireRecord};
use crate::format::source::TableSource;
use crate::format::vouch::Lines;
use crate::plan::ImportStep;
use crate::progress::TableProgress;
use crate::rate::RateLimiter;
use crate::stop::StopSignal;
use crate::{Error, Result};

/// The write rate of one table: `units` a second, reached from `start` when that is lower
/// (a ramp, for an on-demand table that takes less for now).
#[derive(Debug, Clone, Copy)]
pub(super) struct Rate {
    pub units: f64,
    pub start: Option<f64>,
}

impl Rate {
    fn limiter(self, clock: Arc<dyn crate::clock::Clock>, stop: &StopSignal) -> RateLimiter {
        match self.start {
            Some(start) if start < self.units => {
                tracing::info!(start, target = self.units, "on-demand target: the write rate starts at what the table takes now and climbs as it scales");
                RateLimiter::ramping(start, self.units, clock)
            }
            _ => RateLimiter::new(self.units, clock),
        }
        .until_stopped(stop)
    }
}

/// What writing one table did.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// Records written, each counted once, earlier runs included.
    pub items: u64,
    /// What the table's report should say (a checkpoint not used, and why).
    pub notes: Vec<String>,
}

/// One table's writing: its export, then each window of a chain.
pub(super) struct TableWrite<'a> {
    pub work: &'a ImportWork<'a>,
    pub step: &'a ImportStep,
    pub ready: &'a ReadyTable,
    pub counters: &'a Arc<TableProgress>,
    pub units: Rate,
    pub writers: usize,
}

impl TableWrite<'_> {
    fn target(&self) -> &str {
        &self.step.target_table
    }

    fn checkpoints(&self) -> Checkpoints {
        Checkpoints::new(self.work.state, "_import", self.target())
    }

    /// Write the table: its export, then (replaying a chain) each window's changes in
    /// order, each from its own checkpoint.
    pub(super) async fn write_chain(&self) -> Result<Written> {
        let (work, ready) = (self.work, self.ready);
        if !ready.checked.validated && !work.no_validate_first {
            // Not checked before the target was made ready (items another engine set aside).
            check_source(SourceCheck {
                state: work.state,
                target: self.target(),
                existing: Some(&ready.target),
                source: &ready.source,
                changes: &ready.changes,
                key: ready.key.as_ref(),
                resume: false,
                stop: work.stop,
                progress: self.counters,
            })
            .await?;
        }
        let mut written = Written::default();
        let window_step = ImportStep {
            expected_items: None,
            ..self.step.clone()
        };
        let parts = std::iter::once((&ready.source, self.step))
            .chain(ready.changes.iter().map(|w| (w, &window_step)));
        for (n, (src, step)) in parts.enumerate() {
            let name = checkpoint_name(n);
            let base = self.start_from(&name, &mut written.notes).await?;
            written.items += if base.complete {
                tracing::info!(table = %self.target(), "already imported by an earlier run");
                self.counters.add(base.items_written, 0, 0.0);
                base.items_written
            } else {
                self.write_part(step, src, &name, base).await?
            };
        }
        Ok(written)
    }

    /// Where the part whose checkpoint is `name` starts: its checkpoint, with `--resume`,
    /// when it was written for this very table; else the beginning, said in `notes` when
    /// an earlier import's checkpoint is not used.
    async fn start_from(&self, name: &str, notes: &mut Vec<String>) -> Result<ImportPosition> {
        let checkpoints = self.checkpoints();
        let here = self.ready.target.identity();
        let fresh = ImportPosition {
            target: Some(here.clone()),
            ..ImportPosition::default()
        };
        let Some(earlier) = checkpoints.load::<ImportPosition>(name).await? else {
            return Ok(fresh);
        };
        let ours = earlier.target.as_ref().is_some_and(|t| t.same_table(&here));
        let url = checkpoints.url();
        let why = match (self.work.resume, ours) {
            (false, true) if !earlier.complete && earlier.items_written > 0 => format!(
                "an earlier import into this table stopped after {} items (checkpoint in {url}); this one started from the beginning (pass --resume to continue one)",
                earlier.items_written
            ),
            (false, _) => return Ok(fresh),
            (true, true) => return Ok(ImportPosition {
                target: Some(here),
                ..earlier
            }),
            (true, false) if self.ready.created => format!(
                "the checkpoint in {url} ({} items) is of an earlier import into another table of this name: this import created the table, so it started from the beginning",
                earlier.items_written
            ),
            (true, false) if earlier.target.is_none() => format!(
                "the checkpoint in {url} does not record the table it was written for (an older ddbx): started from the beginning"
            ),
            (true, false) => format!(
                "the checkpoint in {url} ({} items) was written for another table of this name (dropped and created again since): started from the beginning",
                earlier.items_written
            ),
        };
        tracing::warn!(table = %self.target(), "{why}");
        notes.push(why);
        Ok(fresh)
    }

    /// Write one export's items (or changes) at the table's rate, from `base`, recording
    /// checkpoint `name` under the import's state. Returns the records written, each
    /// counted once, earlier runs included.
    async fn write_part(
        &self,
        step: &ImportStep,
        src: &TableSource,
        name: &str,
        base: ImportPosition,
    ) -> Result<u64> {
        let work = self.work;
        if let Some(n) = step.expected_items.or(src.expected_items) {
            self.counters.expected_items.store(n, Ordering::Relaxed);
        }
        self.counters.add(base.items_written, 0, 0.0);
        // A window is read once first in any case: a key with two records in it is written
        // once, as its later write left it (format::replay::superseded).
        let superseded = match src.changes {
            true => crate::format::replay::superseded(src).await?,
            false => Default::default(),
        };
        let limiter = Arc::new(self.units.limiter(work.aws.clock.clone(), work.stop));
        let tracker = Arc::new(Mutex::new(Tracker::new(base.clone())));
        let writers = self.writers.max(1);
        let (tx, rx) = mpsc::channel::<Batch>(writers * 2);
        let (ack_tx, ack_rx) = mpsc::unbounded_channel::<(usize, usize)>();
        // Raised by a writer that failed, so that the reader stops sending more.
        let failed = StopSignal::default();
        let handles = self.spawn_writers(writers, rx, ack_tx, &limiter, &failed);
        let checkpointer = spawn_checkpointer(&tracker, self.checkpoints(), name, ack_rx);
        let read_result = self
            .read_into(src, &base, &superseded, &tracker, &tx, &failed)
            .await;
        drop(tx);
        let mut write_error = None;
        for h in handles {
            let result = h
                .await
                .unwrap_or_else(|e| Err(Error::Failed(format!("a writer task died: {e}"))));
            if let Err(e) = result {
                write_error.get_or_insert(e);
            }
        }
        let _ = checkpointer.await;
        // (A stop ends the wait; the outcome below says interrupted.)
        let _ = limiter.drain().await;
        let pos = tracker.lock().unwrap().position();
        self.finish(step, src, name, pos, read_result, write_error)
            .await
    }

    /// Writers: take batches, write them, acknowledge them.
    fn spawn_writers(
        &self,
        writers: usize,
        rx: mpsc::Receiver<Batch>,
        ack: mpsc::UnboundedSender<(usize, usize)>,
        limiter: &Arc<RateLimiter>,
        failed: &StopSignal,
    ) -> Vec<JoinHandle<Result<()>>> {
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        (0..writers)
            .map(|_| {
                let (rx, ack, limiter, failed) =
                    (rx.clone(), ack.clone(), limiter.clone(), failed.clone());
                let (aws, counters) = (self.work.aws.clone(), self.counters.clone());
                let (target, stop) = (self.target().to_string(), self.work.stop.clone());
                tokio::spawn(async move {
                    loop {
                        let next = rx.lock().await.recv().await;
                        let Some(b) = next else {
                            return Ok(());
                        };
                        if stop.is_stopped() {
                            // Interrupted: this batch is not written; the checkpoint stops before it.
                            return Ok(());
                        }
                        let (n, bytes) = (b.requests.len() as u64, b.bytes as u64);
                        let written =
                            write_batch(&aws, &limiter, &target, b.requests, b.units).await;
                        let consumed = written.inspect_err(|_| failed.stop())?;
                        counters.add(n, bytes, consumed);
                        let _ = ack.send((b.file, b.seq));
                    }
                })
            })
            .collect()
    }

    /// What the check saw of the lines of the file at `url` of `src`, when they were
    /// checked against the key the table's items must carry (`format::vouch`).
    fn vouched(&self, src: &TableSource, url: &str) -> Result<Option<Lines>> {
        let ready = self.ready;
        match &ready.checked.vouched {
            Some(v)
                if std::ptr::eq(src, &ready.source) && v.checked_against(ready.key.as_deref()) =>
            {
                v.lines(url)
            }
            _ => Ok(None),
        }
    }

    /// Reader: files in order, skipping what an earlier run finished, into batches.
    async fn read_into(
        &self,
        src: &TableSource,
        base: &ImportPosition,
        superseded: &crate::format::replay::Superseded,
        tracker: &Mutex<Tracker>,
        tx: &mpsc::Sender<Batch>,
        failed: &StopSignal,
    ) -> Result<()> {
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
                .changes(src.changes)
                .with_key(self.ready.key.clone())
                .vouched(self.vouched(src, &f.url)?);
            let new_batch = || Batch::new(self.target(), file_idx);
            let mut batch = new_batch();
            let mut map = Vec::new();
            while let Some(record) = reader.next_wire(&mut map).await? {
                if self.work.stop.is_stopped() || failed.is_stopped() {
                    return Err(Error::Interrupted);
                }
                let WireRecord { line, delete, size } = record;
                if line <= skip_to || superseded.skips(i, line) {
                    map.clear();
                    continue;
                }
                if batch.is_full_for(size, map.len()) {
                    send(tracker, tx, std::mem::replace(&mut batch, new_batch())).await?;
                }
                batch.push(delete, &map, size, line);
                map.clear();
            }
            if !batch.requests.is_empty() {
                send(tracker, tx, batch).await?;
            }
            tracker.lock().unwrap().read_to_end(file_idx);
        }
        Ok(())
    }

    /// The part's outcome from what the reader and the writers did; its checkpoint
    /// recorded either way.
    async fn finish(
        &self,
        step: &ImportStep,
        src: &TableSource,
        name: &str,
        mut pos: ImportPosition,
        read_result: Result<()>,
        write_error: Option<Error>,
    ) -> Result<u64> {
        let target = self.target();
        let checkpoints = self.checkpoints();
        // Complete only when every file is recorded as written: writers that saw a stop
        // leave batches unwritten even though the reader sent them all.
        let all_written = src.files.iter().all(|f| pos.files_done.contains(&f.url));
        let stopped = self.work.stop.is_stopped();
        let outcome = match (read_result, write_error) {
            // A writer's error is the cause; the reader then only stopped.
            (_, Some(e)) => Err(e),
            (Err(_), None) if stopped => Err(Error::Interrupted),
            (Err(e), None) => Err(e),
            (Ok(()), None) if !all_written => Err(if stopped {
                Error::Interrupted
            } else {
                Error::Failed(format!("table {target}: some batches were not written"))
            }),
            (Ok(()), None) => {
                pos.complete = true;
                Ok(pos.items_written)
            }
        };
        checkpoints.save(name, &pos).await?;
        match outcome {
            Ok(n) => match step.expected_items {
                Some(expected) if expected != n => Err(Error::Failed(format!(
                    "table {target}: wrote {n} items but the export holds {expected}"
                ))),
                _ => Ok(n),
            },
            Err(e) => Err(e.noted(format!(
                "{} items written, each once; rerun with --resume to continue from {}",
                pos.items_written,
                checkpoints.url()
            ))),
        }
    }
}

/// Checkpointer: folds acknowledgements into the position and records it each time a data
/// file is fully written (one further on than the position's first unfinished file too:
/// that position is then recorded again unchanged), and every two seconds in between.
fn spawn_checkpointer(
    tracker: &Arc<Mutex<Tracker>>,
    checkpoints: Checkpoints,
    name: &str,
    mut acks: mpsc::UnboundedReceiver<(usize, usize)>,
) -> JoinHandle<()> {
    let tracker = tracker.clone();
    let name = name.to_string();
    tokio::spawn(async move {
        let mut last = Instant::now();
        let mut files_done = 0;
        while let Some((file, seq)) = acks.recv().await {
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
}

async fn send(tracker: &Mutex<Tracker>, tx: &mpsc::Sender<Batch>, mut batch: Batch) -> Result<()> {
    batch.seq =
        tracker
            .lock()
            .unwrap()
            .sent(batch.file, batch.last_line, batch.requests.len() as u64);
    tx.send(batch)
        .await
        .map_err(|_| Error::Failed("the writers stopped".into()))
}
