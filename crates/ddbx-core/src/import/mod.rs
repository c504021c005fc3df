//! `ddbx import`: put an export back into tables, exactly. For each table: check (or
//! create) the target, read every data file once to validate it (so a bad file means no
//! writes at all), then stream the items in batches to a pool of writers at the chosen
//! write rate, recording a checkpoint so that `--resume` continues where a run stopped.

pub mod batch;
pub mod state;
pub mod target;
pub mod tracker;

use crate::capacity;
use crate::engine::emr::{EmrRun, ImportJob as EmrImportJob};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::aws::Aws;
use crate::engine::local::{for_each_limited, LocalEngine};
use crate::export::{RunSummary, TableReport, TableStatus};
use crate::format::reader::ItemReader;
use crate::format::source::{self, Selection, TableSource};
use crate::item::validate::item_size;
use crate::plan::{DataFormat, RunLayout, DEFAULT_WRITE_RATIO};
use crate::progress::{Phase, RunProgress, TableProgress};
use crate::rate::RateLimiter;
use crate::run::checkpoint::{Checkpoints, ImportPosition};
use crate::run::flags::{Flags, Job};
use crate::run::stop::StopSignal;
use crate::store::Location;
use crate::table::KeyAttribute;
use crate::{Error, Result};

use batch::{write_batch, Batch};
use tracker::Tracker;

/// Everything an import is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ImportSettings {
    /// The export and its tables.
    pub source: Selection,
    /// Fraction of each target's write capacity (overrides the restore plan's).
    pub write_ratio: Option<f64>,
    /// Write units per second per table, overriding ratios.
    pub max_write_units: Option<f64>,
    /// Create missing tables from `table.json`.
    pub create_missing: bool,
    /// Concurrency: tables at once, and writers per table.
    pub engine: LocalEngine,
    /// Say what would happen, write nothing.
    pub dry_run: bool,
    /// Continue from the checkpoints of an earlier run.
    pub resume: bool,
    /// Skip the validation pass (faster; a bad line then fails the table mid-way).
    pub no_validate_first: bool,
    /// Raised to stop cleanly: no new batch starts, batches in hand finish, the checkpoint is written.
    pub stop: StopSignal,
    /// Run the tables on EMR clusters instead of in this process.
    pub emr: Option<EmrRun>,
    /// Raise each provisioned target's write capacity to this for its import.
    pub spike_write_units: Option<i64>,
    /// Where the import keeps its flags and checkpoints when the source is not a ddbx run
    /// it may write (see [`state`]).
    pub state_to: Option<String>,
}

/// What one table's import will do.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportStep {
    /// The exported table.
    pub source_table: String,
    /// The table written into.
    pub target_table: String,
    /// Where the data is.
    pub source: String,
    /// Its format.
    pub format: DataFormat,
    /// Data files.
    pub files: usize,
    /// Items the manifests promise, when they say.
    pub expected_items: Option<u64>,
    /// The fraction of write capacity.
    pub write_ratio: f64,
    /// The target rate, once the target is known.
    pub target_write_units: Option<f64>,
    /// Whether the target exists (dry run), or a problem found with it.
    pub target_state: String,
}

/// What an import produced.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Per table, what was (or would be) done.
    pub steps: Vec<ImportStep>,
    /// The final summary.
    pub summary: RunSummary,
}

struct Planned {
    step: ImportStep,
    source: std::result::Result<TableSource, String>,
    key: Option<Vec<KeyAttribute>>,
}

/// Run an import.
pub async fn run(
    aws: &Aws,
    settings: &ImportSettings,
    progress: &RunProgress,
) -> Result<ImportReport> {
    if let Some(r) = settings.write_ratio {
        if !(r > 0.0 && r <= 1.5) {
            return Err(Error::Invalid(format!(
                "--write-ratio {r} is out of range (0 < ratio <= 1.5)"
            )));
        }
    }
    let (root, plan, selected) = source::select(aws, &settings.source).await?;
    let mut planned = Vec::new();
    for sel in selected {
        let write_ratio = settings
            .write_ratio
            .or(sel.step.as_ref().map(|s| s.write_ratio))
            .unwrap_or(DEFAULT_WRITE_RATIO);
        let (src_url, format, files, expected) = match &sel.table {
            Ok(t) => (t.dir.url(), t.format, t.files.len(), t.expected_items),
            Err(_) => (
                root.url(),
                sel.step.as_ref().map(|s| s.format).unwrap_or_default(),
                0,
                None,
            ),
        };
        planned.push(Planned {
            step: ImportStep {
                source_table: sel.source_table,
                target_table: sel.target_table,
                source: src_url,
                format,
                files,
                expected_items: expected.or(sel.step.as_ref().map(|s| s.item_count)),
                write_ratio,
                target_write_units: None,
                target_state: String::new(),
            },
            source: sel.table.map_err(|e| e.to_string()),
            key: sel.key,
        });
    }
    let plan_is_run = plan.is_some();
    let layout = RunLayout {
        region: aws.region.clone(),
        app: plan.map(|p| p.app).unwrap_or_default(),
        started: Utc::now(),
    };

    if settings.dry_run {
        let mut steps = Vec::new();
        let mut reports = Vec::new();
        for mut p in planned {
            p.step.target_state = match aws.describe_table(&p.step.target_table).await {
                Ok(t) => {
                    let units = settings
                        .max_write_units
                        .unwrap_or_else(|| t.write_units(p.step.write_ratio));
                    p.step.target_write_units = Some(units);
                    match p
                        .key
                        .as_ref()
                        .and_then(|k| target::key_difference(&p.step.target_table, k, &t.key()))
                    {
                        Some(diff) => diff,
                        None => "exists, key matches".into(),
                    }
                }
                Err(Error::Aws { code: Some(c), .. }) if c == "ResourceNotFoundException" => {
                    if settings.create_missing {
                        "missing: would be created from table.json".into()
                    } else {
                        "missing (pass --create-missing)".into()
                    }
                }
                Err(e) => e.to_string(),
            };
            if let Err(e) = &p.source {
                p.step.target_state = format!("cannot read the export: {e}");
            }
            reports.push(TableReport {
                table: p.step.target_table.clone(),
                status: TableStatus::Planned,
                items: 0,
                bytes: 0,
                files: p.step.files as u64,
                read_units: 0.0,
                seconds: 0.0,
                error: None,
            });
            steps.push(p.step);
        }
        let summary = RunSummary::for_job("import", &layout, root.url(), reports, Some(Utc::now()));
        return Ok(ImportReport { steps, summary });
    }

    let state = state::locate(aws, &root, plan_is_run, settings.state_to.as_deref()).await?;
    let summarize = |reports: Vec<TableReport>, ended| {
        let mut summary = RunSummary::for_job("import", &layout, root.url(), reports, ended);
        summary.state_root = (state.url() != root.url()).then(|| state.url());
        summary
    };
    let flags = Flags::new(state.clone(), Job::Restore);
    flags.start(&summarize(Vec::new(), None)).await?;
    let steps: Vec<ImportStep> = planned.iter().map(|p| p.step.clone()).collect();
    if let Some(emr) = &settings.emr {
        let mut jobs = Vec::new();
        for p in planned {
            jobs.push(emr_job(aws, settings, p).await);
        }
        let mut reports = crate::engine::emr::import_tables(
            aws,
            emr,
            &state,
            &layout.app,
            jobs,
            &settings.stop,
            progress,
        )
        .await?;
        reports.sort_by(|a, b| a.table.cmp(&b.table));
        let summary = summarize(reports, Some(Utc::now()));
        flags.finish(summary.succeeded(), &summary).await?;
        return Ok(ImportReport { steps, summary });
    }
    let jobs: Vec<(Planned, Arc<TableProgress>)> = planned
        .into_iter()
        .map(|p| {
            let counters = progress.table(&p.step.target_table);
            (p, counters)
        })
        .collect();
    let state_ref = &state;
    let mut reports = for_each_limited(
        jobs,
        settings.engine.parallel_tables,
        |(p, counters)| async move {
            let started = Instant::now();
            counters.set_phase(Phase::Running);
            let target = p.step.target_table.clone();
            let result = match p.source {
                Ok(src) => {
                    import_table(
                        aws,
                        settings,
                        state_ref,
                        &p.step,
                        &src,
                        p.key.as_deref(),
                        &counters,
                    )
                    .await
                }
                Err(e) => Err(Error::Invalid(format!(
                    "cannot read the export of {}: {e}",
                    p.step.source_table
                ))),
            };
            let seconds = started.elapsed().as_secs_f64();
            match result {
                Ok(items) => {
                    counters.set_phase(Phase::Done);
                    TableReport {
                        table: target,
                        status: TableStatus::Succeeded,
                        items,
                        bytes: counters.bytes.load(Ordering::Relaxed),
                        files: p.step.files as u64,
                        read_units: counters.units(),
                        seconds,
                        error: None,
                    }
                }
                Err(e) => {
                    counters.set_phase(Phase::Failed);
                    tracing::error!(table = %target, error = %e, "table failed");
                    TableReport {
                        table: target,
                        status: TableStatus::Failed,
                        items: counters.items.load(Ordering::Relaxed),
                        bytes: counters.bytes.load(Ordering::Relaxed),
                        files: p.step.files as u64,
                        read_units: counters.units(),
                        seconds,
                        error: Some(e.to_string()),
                    }
                }
            }
        },
    )
    .await;
    reports.sort_by(|a, b| a.table.cmp(&b.table));
    let summary = summarize(reports, Some(Utc::now()));
    flags.finish(summary.succeeded(), &summary).await?;
    Ok(ImportReport { steps, summary })
}

/// Check one table for an EMR import: the connector reads only its own format, and the
/// target must exist with the export's key (or be created, as the local engine does).
async fn emr_job(aws: &Aws, settings: &ImportSettings, p: Planned) -> EmrImportJob {
    let target = p.step.target_table.clone();
    let checked = async {
        let src = p.source.map_err(|e| {
            Error::Invalid(format!("cannot read the export of {}: {e}", p.step.source_table))
        })?;
        if src.format != DataFormat::Emr {
            return Err(Error::Invalid(format!(
                "{}: the connector imports only its own format (ddbx --format emr or EMR exports); use the local engine for this one",
                src.dir.url()
            )));
        }
        let described = target::ensure_table(
            aws,
            &target,
            src.schema.as_ref(),
            p.key.as_deref(),
            settings.create_missing,
        )
        .await?;
        Ok((src.files.len() as u64, write_spike(aws, settings, &described).await?))
    }
    .await;
    EmrImportJob {
        target,
        path: p.step.source.clone(),
        write_ratio: p.step.write_ratio,
        size: checked.as_ref().map_or(0, |c| c.0),
        error: checked.as_ref().err().map(|e| e.to_string()),
        spike: checked.ok().and_then(|c| c.1),
    }
}

/// Import one table; returns the items written (each counted once, earlier runs included).
/// Its checkpoints and capacity records go to `state`.
async fn import_table(
    aws: &Aws,
    settings: &ImportSettings,
    state: &Location,
    step: &ImportStep,
    src: &TableSource,
    key: Option<&[KeyAttribute]>,
    counters: &Arc<TableProgress>,
) -> Result<u64> {
    let target = step.target_table.as_str();
    let described = target::ensure_table(
        aws,
        target,
        src.schema.as_ref(),
        key,
        settings.create_missing,
    )
    .await?;
    let spike = write_spike(aws, settings, &described).await?;
    // The rate follows the capacity the table will have.
    let units = settings.max_write_units.unwrap_or_else(|| {
        spike
            .as_ref()
            .and_then(|s| s.units(step.write_ratio))
            .unwrap_or_else(|| described.write_units(step.write_ratio))
    });
    capacity::during(
        aws,
        state,
        spike.as_ref(),
        write_table(aws, settings, state, step, src, counters, units),
    )
    .await
}

/// The write-capacity spike `--spike-write-units` asks for on `target`, planned.
async fn write_spike(
    aws: &Aws,
    settings: &ImportSettings,
    target: &crate::table::TableSchema,
) -> Result<Option<capacity::Spike>> {
    match settings.spike_write_units {
        Some(n) => Ok(Some(
            capacity::plan(aws, target, capacity::Dimension::Write, n).await?,
        )),
        None => Ok(None),
    }
}

/// Write one table's items at `units` WCU/s, from its checkpoint (under `state`) when
/// resuming.
async fn write_table(
    aws: &Aws,
    settings: &ImportSettings,
    state: &Location,
    step: &ImportStep,
    src: &TableSource,
    counters: &Arc<TableProgress>,
    units: f64,
) -> Result<u64> {
    let target = step.target_table.as_str();
    let checkpoints = Checkpoints::new(state, "_import", target);
    let base: ImportPosition = if settings.resume {
        checkpoints
            .load("checkpoint.json")
            .await?
            .unwrap_or_default()
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
    if !settings.no_validate_first {
        // Read everything once, write nothing: a corrupt file fails the table untouched.
        for f in &src.files {
            let mut r = ItemReader::open(&src.dir, f, src.format).await?;
            while r.next().await?.is_some() {
                if settings.stop.is_stopped() {
                    return Err(Error::Interrupted);
                }
            }
        }
    }
    counters.add(base.items_written, 0, 0.0);

    let limiter = Arc::new(RateLimiter::new(units, aws.clock.clone()));
    let base_files_done = base.files_done.len();
    let tracker = Arc::new(Mutex::new(Tracker::new(base.clone())));
    let writers = settings.engine.workers.max(1);
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
        let stop = settings.stop.clone();
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
                let (n, bytes) = (b.items.len() as u64, b.bytes as u64);
                let consumed = match write_batch(&aws, &limiter, &target, b.items, b.units).await {
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
    // data file is fully written, and every two seconds in between.
    let ckpt_task = {
        let tracker = tracker.clone();
        let checkpoints = checkpoints.clone();
        tokio::spawn(async move {
            let mut last = Instant::now();
            let mut files_done = base_files_done;
            while let Some((file, seq)) = ack_rx.recv().await {
                let pos = {
                    let mut t = tracker.lock().unwrap();
                    t.acked(file, seq);
                    t.position()
                };
                if pos.files_done.len() > files_done || last.elapsed() >= Duration::from_secs(2) {
                    files_done = pos.files_done.len();
                    if let Err(e) = checkpoints.save("checkpoint.json", &pos).await {
                        tracing::warn!(error = %e, "could not record the import checkpoint");
                    }
                    last = Instant::now();
                }
            }
        })
    };

    // Reader: files in order, skipping what an earlier run finished.
    let read_result = async {
        for f in &src.files {
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
            let mut reader = ItemReader::open(&src.dir, f, src.format).await?;
            let mut batch = Batch {
                file: file_idx,
                ..Batch::default()
            };
            while let Some((line, item)) = reader.next().await? {
                if settings.stop.is_stopped() || failed.is_stopped() {
                    return Err(Error::Interrupted);
                }
                if line <= skip_to {
                    continue;
                }
                let size = item_size(&item);
                if batch.is_full_for(size) {
                    let full = std::mem::replace(
                        &mut batch,
                        Batch {
                            file: file_idx,
                            ..Batch::default()
                        },
                    );
                    send(&tracker, &tx, full).await?;
                }
                batch.push(item, size, line);
            }
            if !batch.items.is_empty() {
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
    let stopped = settings.stop.is_stopped();
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
    checkpoints.save("checkpoint.json", &pos).await?;
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
    batch.seq = tracker
        .lock()
        .unwrap()
        .sent(batch.file, batch.last_line, batch.items.len() as u64);
    tx.send(batch)
        .await
        .map_err(|_| Error::Invalid("the writers stopped".into()))
}
