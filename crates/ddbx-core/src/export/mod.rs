//! `ddbx export`: plan the run, take the app's lock, raise the flags, export every
//! selected table through the engine, then write the manifests, the restore plan and the
//! final flag.

pub mod checkpoint;
mod resume;
pub mod segment;

use checkpoint::{segment_name, CheckpointedSink, SegmentPosition, TablePosition};
use segment::{scan_segment, ScanJob};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::PutPayload;
use serde::{Deserialize, Serialize};

use crate::aws::Aws;
use crate::capacity;
use crate::engine::emr::EmrRun;
use crate::engine::local::{for_each_limited, LocalEngine, WorkerPool};
use crate::format::writer::{DataFileWriter, RollLimits};
use crate::format::{connector, native, DataFile, TableLayout};
use crate::plan::{
    default_segments, validate_app_name, Compression, DataFormat, ExportPlan, PlanSelection,
    PlannedTable, RestorePlan, RestoreStep, RunLayout, TableFilter, DEFAULT_WRITE_RATIO,
};
use crate::progress::{Phase, RunProgress, TableProgress};
use crate::rate::RateLimiter;
use crate::run::checkpoint::Checkpoints;
use crate::run::flags::{Flags, Job};
use crate::run::lock::{LockSettings, RunLock};
use crate::run::stop::StopSignal;
use crate::store::{self, Location};
use crate::table::TableSchema;
use crate::{Error, Result};

/// Everything an export is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ExportSettings {
    /// The app's friendly name (a folder of the layout).
    pub app: String,
    /// Table prefixes or globs.
    pub tables: Vec<String>,
    /// Tables named exactly (taken without listing the region's tables when there is no
    /// prefix or glob).
    pub table_names: Vec<String>,
    /// Table names (or globs) never exported.
    pub excludes: Vec<String>,
    /// Another excludes file (path or URL), besides `<to>/excludes`.
    pub exclude_file: Option<String>,
    /// The base location.
    pub to: String,
    /// Fraction of each table's read capacity to use (default [`DEFAULT_READ_RATIO`]).
    pub read_ratio: Option<f64>,
    /// Read units per second per table, overriding the ratio.
    pub max_read_units: Option<f64>,
    /// Scan segments per table (default: from size and rate).
    pub segments: Option<u32>,
    /// Data format (default: DynamoDB JSON).
    pub format: Option<DataFormat>,
    /// Compression of data files (default: gzip).
    pub compression: Option<Compression>,
    /// Items per data file at most (default: 1,000,000; 100,000 for the connector format).
    pub file_items: Option<u64>,
    /// Uncompressed bytes per data file at most (default: 1 GiB).
    pub file_bytes: Option<u64>,
    /// Concurrency.
    pub engine: LocalEngine,
    /// Print the plan, write nothing.
    pub dry_run: bool,
    /// Lock behaviour.
    pub lock: LockSettings,
    /// Raised to stop the run cleanly.
    pub stop: StopSignal,
    /// Continue the run at this run root (its plan, its checkpoints) instead of starting one.
    pub resume: Option<String>,
    /// The run's time, which names its folder (default: now).
    pub run_time: Option<DateTime<Utc>>,
    /// Run the tables on EMR clusters instead of in this process.
    pub emr: Option<EmrRun>,
    /// Raise each provisioned table's read capacity to this for its export.
    pub spike_read_units: Option<i64>,
}

/// The read ratio when none is given.
pub const DEFAULT_READ_RATIO: f64 = 0.5;

impl ExportSettings {
    /// The read ratio asked for, or the default.
    pub fn read_ratio(&self) -> f64 {
        self.read_ratio.unwrap_or(DEFAULT_READ_RATIO)
    }

    /// The data format asked for, or the default.
    pub fn format(&self) -> DataFormat {
        self.format.unwrap_or_default()
    }

    /// The compression asked for, or the default.
    pub fn compression(&self) -> Compression {
        self.compression.unwrap_or_default()
    }

    /// When data files roll: as asked, else the defaults (the connector's 100,000 items a
    /// file for its format, as its tools write).
    pub fn roll(&self) -> RollLimits {
        let default = RollLimits::default();
        let items = if self.format() == DataFormat::Emr {
            100_000
        } else {
            default.max_items
        };
        RollLimits {
            max_items: self.file_items.unwrap_or(items).max(1),
            max_bytes: self.file_bytes.unwrap_or(default.max_bytes).max(1),
            ..default
        }
    }

    /// What selected the tables, as the plan records it.
    pub fn selection(&self) -> PlanSelection {
        PlanSelection {
            tables: self.tables.clone(),
            table_names: self.table_names.clone(),
            excludes: self.excludes.clone(),
            exclude_file: self.exclude_file.clone(),
        }
    }
}

/// How one table ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableStatus {
    /// Every item is stored and described by the manifests.
    Succeeded,
    /// Something failed; see the error.
    Failed,
    /// Planned only (dry run).
    Planned,
}

/// The outcome of one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReport {
    /// Table name.
    pub table: String,
    /// How it ended.
    pub status: TableStatus,
    /// Items written.
    pub items: u64,
    /// Item bytes (DynamoDB's sizes).
    pub bytes: u64,
    /// Data files written.
    pub files: u64,
    /// Read units consumed.
    pub read_units: f64,
    /// Seconds spent.
    pub seconds: f64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of a run: what the flags and `--output json` carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// `export` or `import`.
    pub job: String,
    /// App name.
    pub app: String,
    /// Region.
    pub region: String,
    /// URL of the run root.
    pub run_root: String,
    /// `running`, `succeeded`, `failed` or `planned`.
    pub status: String,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, once ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Tables in the run.
    pub tables: usize,
    /// Tables that failed.
    pub tables_failed: usize,
    /// Items, all tables.
    pub items: u64,
    /// Bytes, all tables.
    pub bytes: u64,
    /// Where an import kept its flags and checkpoints, when not in the run root.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state_root: Option<String>,
    /// One line per failed table.
    pub errors: Vec<String>,
    /// Per table.
    pub table_reports: Vec<TableReport>,
}

impl RunSummary {
    /// Whether every table succeeded.
    pub fn succeeded(&self) -> bool {
        self.tables_failed == 0
    }

    /// A summary of `tables` for `job` (`export`, `import`); `ended` is `None` while running.
    pub fn for_job(
        job: &str,
        layout: &RunLayout,
        run_root: String,
        tables: Vec<TableReport>,
        ended: Option<DateTime<Utc>>,
    ) -> Self {
        let failed: Vec<&TableReport> = tables
            .iter()
            .filter(|t| t.status == TableStatus::Failed)
            .collect();
        let status = match (ended, failed.is_empty()) {
            (None, _) => "running",
            (Some(_), true) if tables.iter().all(|t| t.status == TableStatus::Planned) => "planned",
            (Some(_), true) => "succeeded",
            (Some(_), false) => "failed",
        };
        Self {
            job: job.into(),
            app: layout.app.clone(),
            region: layout.region.clone(),
            run_root,
            status: status.into(),
            started_at: layout.started,
            ended_at: ended,
            tables: tables.len(),
            tables_failed: failed.len(),
            items: tables.iter().map(|t| t.items).sum(),
            bytes: tables.iter().map(|t| t.bytes).sum(),
            state_root: None,
            errors: failed
                .iter()
                .map(|t| format!("{}: {}", t.table, t.error.as_deref().unwrap_or("failed")))
                .collect(),
            table_reports: tables,
        }
    }
}

/// What an export run produced.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The resolved plan.
    pub plan: ExportPlan,
    /// The final summary.
    pub summary: RunSummary,
}

/// The tables a run selects, described, with the layout of the run.
#[derive(Debug)]
pub struct Selection {
    /// The run's layout (region, app, start time).
    pub layout: RunLayout,
    /// The base location.
    pub base: Location,
    /// The selected tables, described, sorted by name; a table that could not be
    /// described carries its error.
    pub tables: Vec<(String, Result<TableSchema>)>,
}

/// List and filter the region's tables (shared by every engine).
pub async fn select_tables(
    aws: &Aws,
    settings: &ExportSettings,
    started: DateTime<Utc>,
) -> Result<Selection> {
    validate_app_name(&settings.app)?;
    let ratio = settings.read_ratio();
    if !(ratio > 0.0 && ratio <= 1.5) {
        return Err(Error::Invalid(format!(
            "--read-ratio {ratio} is out of range (0 < ratio <= 1.5)"
        )));
    }
    let base = store::open(&settings.to, Some(aws)).await?;
    let mut filter = TableFilter::new(&settings.tables, &settings.excludes)?
        .with_names(&settings.table_names)?;
    // The seed's `<base>/excludes`, when present.
    let default_excludes = base.join("excludes");
    match base.store.get(&default_excludes).await {
        Ok(r) => {
            let bytes = r
                .bytes()
                .await
                .map_err(|e| Error::store(base.url_of(&default_excludes), e))?;
            filter.exclude_file(&base.url_of(&default_excludes), &bytes)?;
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(Error::store(base.url_of(&default_excludes), e)),
    }
    if let Some(file) = &settings.exclude_file {
        let bytes = read_anywhere(aws, file).await?;
        filter.exclude_file(file, &bytes)?;
    }
    let listed = if filter.needs_listing() {
        let all = aws
            .list_tables()
            .await
            .map_err(|e| Error::Plan(format!("cannot list tables: {e}")))?;
        Some(all)
    } else {
        None
    };
    let names = filter.select_with_names(listed.iter().flatten().map(String::as_str));
    if names.is_empty() {
        return Err(Error::Plan(match &listed {
            Some(all) => format!(
                "no table in {} matches {:?} (after excludes); {} tables seen",
                aws.region,
                settings.tables,
                all.len()
            ),
            None => format!("every table named ({:?}) is excluded", settings.table_names),
        }));
    }
    let described = for_each_limited(names, 8, |name| async move {
        let schema = aws.describe_table(&name).await;
        (name, schema)
    })
    .await;
    Ok(Selection {
        layout: RunLayout {
            region: aws.region.clone(),
            app: settings.app.clone(),
            started,
        },
        base,
        tables: described,
    })
}

/// Read a whole small file given as a local path or URL (excludes files).
pub async fn read_anywhere(aws: &Aws, path_or_url: &str) -> Result<Bytes> {
    if path_or_url.starts_with("s3://") || path_or_url.starts_with("file://") {
        let (dir, name) = path_or_url
            .rsplit_once('/')
            .ok_or_else(|| Error::Invalid(format!("{path_or_url}: not a file URL")))?;
        let loc = store::open(dir, Some(aws)).await?;
        let path = loc.join(name);
        let got = loc
            .store
            .get(&path)
            .await
            .map_err(|e| Error::store(path_or_url, e))?;
        got.bytes().await.map_err(|e| Error::store(path_or_url, e))
    } else {
        std::fs::read(path_or_url)
            .map(Bytes::from)
            .map_err(|e| Error::Invalid(format!("{path_or_url}: {e}")))
    }
}

fn read_units(settings: &ExportSettings, schema: &TableSchema) -> f64 {
    settings
        .max_read_units
        .unwrap_or_else(|| schema.read_units(settings.read_ratio()))
}

fn planned_table(
    settings: &ExportSettings,
    schema: &TableSchema,
    destination: String,
) -> PlannedTable {
    let units = read_units(settings, schema);
    PlannedTable {
        table: schema.table_name.clone(),
        key_schema: schema.key(),
        billing_mode: schema.billing_mode.clone(),
        read_capacity_units: schema
            .provisioned_throughput
            .as_ref()
            .map(|p| p.read_capacity_units),
        size_bytes: schema.table_size_bytes,
        item_count_estimate: schema.item_count,
        target_read_units: units,
        segments: settings
            .segments
            .unwrap_or_else(|| default_segments(schema.table_size_bytes, units)),
        destination,
        capacity_spike: None,
    }
}

/// Run an export. Errors are for the run as a whole (bad settings, lock held, nothing to
/// export); a table's failure is in the report.
pub async fn run(
    aws: &Aws,
    settings: &ExportSettings,
    progress: &RunProgress,
) -> Result<ExportReport> {
    if let Some(run_root) = &settings.resume {
        return resume(aws, settings, run_root, progress).await;
    }
    let started = settings.run_time.unwrap_or_else(Utc::now);
    let selection = select_tables(aws, settings, started).await?;
    let run_dir = selection.base.child(&selection.layout.run_dir());
    let mut plan = ExportPlan {
        ddbx_version: env!("CARGO_PKG_VERSION").into(),
        app: settings.app.clone(),
        region: aws.region.clone(),
        run_root: run_dir.url(),
        started_at: started,
        format: settings.format(),
        compression: settings.compression(),
        read_ratio: settings.read_ratio(),
        engine: if settings.emr.is_some() {
            "emr"
        } else {
            "local"
        }
        .into(),
        selection: Some(settings.selection()),
        tables: Vec::new(),
    };
    let mut failed_early = Vec::new();
    let mut schemas = Vec::new();
    for (name, described) in selection.tables {
        match described {
            Ok(schema) => {
                let mut planned = planned_table(settings, &schema, run_dir.child(&name).url());
                if let Some(to) = settings.spike_read_units {
                    match capacity::plan(aws, &schema, capacity::Dimension::Read, to).await {
                        Ok(spike) => {
                            // The rate follows the capacity the table will have.
                            if let Some(units) = spike.units(settings.read_ratio()) {
                                planned.target_read_units =
                                    settings.max_read_units.unwrap_or(units);
                                if settings.segments.is_none() {
                                    planned.segments = default_segments(
                                        schema.table_size_bytes,
                                        planned.target_read_units,
                                    );
                                }
                            }
                            if let Some(w) = &spike.warning {
                                tracing::warn!(table = %name, "{w}");
                            }
                            planned.capacity_spike = Some(spike);
                        }
                        Err(e) => {
                            failed_early
                                .push(failed(&name, &format!("planning the capacity spike: {e}")));
                            continue;
                        }
                    }
                }
                plan.tables.push(planned);
                schemas.push(schema);
            }
            Err(e) => failed_early.push(failed(&name, &e.to_string())),
        }
    }
    if settings.dry_run {
        let mut reports: Vec<TableReport> = plan
            .tables
            .iter()
            .map(|t| TableReport {
                status: TableStatus::Planned,
                ..failed(&t.table, "")
            })
            .map(|t| TableReport { error: None, ..t })
            .collect();
        reports.extend(failed_early);
        let summary = RunSummary::for_job(
            "export",
            &selection.layout,
            run_dir.url(),
            reports,
            Some(Utc::now()),
        );
        return Ok(ExportReport { plan, summary });
    }

    let summary = export_locked(
        aws,
        settings,
        progress,
        &selection.base,
        &selection.layout,
        &run_dir,
        &plan,
        schemas,
        failed_early,
    )
    .await?;
    Ok(ExportReport { plan, summary })
}

/// Continue a killed, interrupted or partly failed run from its plan and checkpoints:
/// finished tables and segments are kept, the rest continue from their checkpoints.
async fn resume(
    aws: &Aws,
    settings: &ExportSettings,
    run_root: &str,
    progress: &RunProgress,
) -> Result<ExportReport> {
    let run_dir = store::open(run_root, Some(aws)).await?;
    let plan_path = run_dir.join("export-plan.json");
    let bytes = crate::format::source::get_optional(&run_dir, &plan_path)
        .await?
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: no export-plan.json here: --resume takes the root of a ddbx export run",
                run_dir.url()
            ))
        })?;
    let plan: ExportPlan = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        file: run_dir.url_of(&plan_path),
        message: format!("not an export plan: {e}"),
    })?;
    if plan.engine != "local" {
        return Err(Error::Invalid(format!(
            "{}: this run was made by the {} engine; --resume continues local-engine runs (start a new run)",
            run_dir.url(),
            plan.engine
        )));
    }
    if plan.region != aws.region {
        return Err(Error::Invalid(format!(
            "{}: the run exports tables of {}; pass --region {}",
            run_dir.url(),
            plan.region,
            plan.region
        )));
    }
    let layout = RunLayout {
        region: plan.region.clone(),
        app: plan.app.clone(),
        started: plan.started_at,
    };
    // The base location is the run root less `<region>/<app>/YYYY/MM/DD/HH_MM.SS`.
    let rel = layout.run_dir();
    let trimmed = run_root.trim_end_matches('/');
    let base_str = trimmed
        .strip_suffix(&rel)
        .map(|b| b.trim_end_matches('/'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{run_root}: its plan says the run lives at <base>/{rel}: give that path"
            ))
        })?;
    let base = store::open(base_str, Some(aws)).await?;
    let given_base = match settings.to.as_str() {
        "" => None,
        to => Some(store::open(to, Some(aws)).await?.url()),
    };
    resume::check(
        settings,
        &plan,
        &run_dir.url_of(&plan_path),
        &base.url(),
        given_base.as_deref(),
    )?;
    let run_dir = base.child(&rel);
    let mut settings = settings.clone();
    settings.app = plan.app.clone();
    settings.format = Some(plan.format);
    settings.compression = Some(plan.compression);
    settings.read_ratio = Some(plan.read_ratio);
    let mut schemas = Vec::new();
    let mut failed_early = Vec::new();
    let mut tables = Vec::new();
    for t in &plan.tables {
        let table_json = run_dir.join(&format!("{}/table.json", t.table));
        let schema = match crate::format::source::get_optional(&run_dir, &table_json).await? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
                file: run_dir.url_of(&table_json),
                message: format!("not a table description: {e}"),
            }),
            None => aws.describe_table(&t.table).await,
        };
        match schema {
            Ok(s) => {
                schemas.push(s);
                tables.push(t.clone());
            }
            Err(e) => failed_early.push(failed(&t.table, &e.to_string())),
        }
    }
    let resumed_plan = ExportPlan {
        tables,
        ..plan.clone()
    };
    let summary = export_locked(
        aws,
        &settings,
        progress,
        &base,
        &layout,
        &run_dir,
        &resumed_plan,
        schemas,
        failed_early,
    )
    .await?;
    Ok(ExportReport { plan, summary })
}

/// A new run never writes into a run root that holds anything: an earlier run's files are
/// never overwritten or mixed with this one's. (Checked under the app's lock.)
async fn refuse_existing_run(run_dir: &Location) -> Result<()> {
    use futures::StreamExt;
    let mut listing = run_dir.store.list(Some(&run_dir.prefix));
    if let Some(first) = listing.next().await {
        let found = first.map_err(|e| Error::store(run_dir.url(), e))?;
        return Err(Error::Locked(format!(
            "{} already holds a run ({} exists); nothing was written. Continue it with --resume {}, or pick another --run-time",
            run_dir.url(),
            run_dir.url_of(&found.location),
            run_dir.url()
        )));
    }
    Ok(())
}

/// Take the app's lock (a resumed run may take over its own), export, release the lock.
#[allow(clippy::too_many_arguments)]
async fn export_locked(
    aws: &Aws,
    settings: &ExportSettings,
    progress: &RunProgress,
    base: &Location,
    layout: &RunLayout,
    run_dir: &Location,
    plan: &ExportPlan,
    schemas: Vec<TableSchema>,
    failed_early: Vec<TableReport>,
) -> Result<RunSummary> {
    let run_name = format!("export {}", run_dir.url());
    let lock_settings = LockSettings {
        takeover_run: settings.resume.is_some().then(|| run_name.clone()),
        ..settings.lock.clone()
    };
    let lock = RunLock::acquire(base, &layout.lock_path(), &run_name, lock_settings).await?;
    let result = export_run(
        aws,
        settings,
        progress,
        layout,
        run_dir,
        plan,
        schemas,
        failed_early,
    )
    .await;
    let released = lock.release().await;
    let summary = result?;
    released?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
async fn export_run(
    aws: &Aws,
    settings: &ExportSettings,
    progress: &RunProgress,
    layout: &RunLayout,
    run_dir: &Location,
    plan: &ExportPlan,
    schemas: Vec<TableSchema>,
    failed_early: Vec<TableReport>,
) -> Result<RunSummary> {
    if settings.resume.is_none() {
        refuse_existing_run(run_dir).await?;
    }
    if let Some(emr) = &settings.emr {
        emr.refuse_active_clusters(aws, plan.tables.len()).await?;
    }
    let flags = Flags::new(run_dir.clone(), Job::Backup);
    let pending: Vec<TableReport> = plan
        .tables
        .iter()
        .map(|t| TableReport {
            status: TableStatus::Planned,
            error: None,
            ..failed(&t.table, "")
        })
        .collect();
    flags
        .start(&RunSummary::for_job(
            "export",
            layout,
            run_dir.url(),
            pending,
            None,
        ))
        .await?;
    if settings.resume.is_none() {
        put_json(run_dir, "export-plan.json", plan).await?;
    }

    let mut reports = match &settings.emr {
        Some(emr) => {
            crate::engine::emr::export_tables(aws, emr, settings, run_dir, plan, &schemas, progress)
                .await?
        }
        None => local_tables(aws, settings, progress, run_dir, plan, schemas).await,
    };
    reports.extend(failed_early);
    reports.sort_by(|a, b| a.table.cmp(&b.table));

    let restore = RestorePlan {
        version: 1,
        app: layout.app.clone(),
        region: layout.region.clone(),
        exported_at: layout.started,
        tables: plan
            .tables
            .iter()
            .filter_map(|t| {
                let r = reports.iter().find(|r| r.table == t.table)?;
                (r.status == TableStatus::Succeeded).then(|| RestoreStep {
                    source_table: t.table.clone(),
                    target_table: t.table.clone(),
                    path: t.table.clone(),
                    format: settings.format(),
                    key_schema: t.key_schema.clone(),
                    write_ratio: DEFAULT_WRITE_RATIO,
                    item_count: r.items,
                })
            })
            .collect(),
    };
    put_json(run_dir, "restore-plan.json", &restore).await?;
    let summary = RunSummary::for_job("export", layout, run_dir.url(), reports, Some(Utc::now()));
    flags.finish(summary.succeeded(), &summary).await?;
    Ok(summary)
}

/// The local engine: every table's segments on this process's shared worker pool.
async fn local_tables(
    aws: &Aws,
    settings: &ExportSettings,
    progress: &RunProgress,
    run_dir: &Location,
    plan: &ExportPlan,
    schemas: Vec<TableSchema>,
) -> Vec<TableReport> {
    let pool = WorkerPool::new(settings.engine.workers);
    let jobs: Vec<(TableSchema, &PlannedTable)> =
        schemas.into_iter().zip(plan.tables.iter()).collect();
    let counters: Vec<Arc<TableProgress>> = jobs
        .iter()
        .map(|(s, _)| progress.table(&s.table_name))
        .collect();
    let work: Vec<_> = jobs.into_iter().zip(counters).collect();
    for_each_limited(
        work,
        settings.engine.parallel_tables,
        |((schema, planned), counters)| {
            let pool = pool.clone();
            async move {
                let table = schema.table_name.clone();
                let started = std::time::Instant::now();
                counters.set_phase(Phase::Running);
                counters.expected_items.store(
                    schema.item_count.max(0) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                counters.expected_bytes.store(
                    schema.table_size_bytes.max(0) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                let result = capacity::during(
                    aws,
                    run_dir,
                    planned.capacity_spike.as_ref(),
                    export_table(
                        aws,
                        settings,
                        run_dir,
                        schema,
                        planned,
                        counters.clone(),
                        &pool,
                    ),
                )
                .await;
                let seconds = started.elapsed().as_secs_f64();
                match result {
                    Ok((files, items, bytes)) => {
                        counters.set_phase(Phase::Done);
                        TableReport {
                            table,
                            status: TableStatus::Succeeded,
                            items,
                            bytes,
                            files,
                            read_units: counters.units(),
                            seconds,
                            error: None,
                        }
                    }
                    Err(e) => {
                        counters.set_phase(Phase::Failed);
                        *counters.error.lock().unwrap() = Some(e.to_string());
                        tracing::error!(%table, error = %e, "table failed");
                        TableReport {
                            seconds,
                            read_units: counters.units(),
                            ..failed(&table, &e.to_string())
                        }
                    }
                }
            }
        },
    )
    .await
}

fn failed(table: &str, error: &str) -> TableReport {
    TableReport {
        table: table.to_string(),
        status: TableStatus::Failed,
        items: 0,
        bytes: 0,
        files: 0,
        read_units: 0.0,
        seconds: 0.0,
        error: Some(error.to_string()),
    }
}

/// Write a JSON document (pretty, with a final newline) at `rel` under `dir`.
pub async fn put_json(dir: &Location, rel: &str, value: &impl Serialize) -> Result<()> {
    let path = dir.join(rel);
    let mut body = serde_json::to_vec_pretty(value).expect("plans serialize");
    body.push(b'\n');
    dir.store
        .put(&path, PutPayload::from(Bytes::from(body)))
        .await
        .map_err(|e| Error::store(dir.url_of(&path), e))?;
    Ok(())
}

/// Export one table: `table.json`, the segments (each from its checkpoint when
/// resuming), then the manifests. Returns (files, items, bytes).
async fn export_table(
    aws: &Aws,
    settings: &ExportSettings,
    run_dir: &Location,
    schema: TableSchema,
    planned: &PlannedTable,
    progress: Arc<TableProgress>,
    pool: &WorkerPool,
) -> Result<(u64, u64, u64)> {
    let table_dir = run_dir.child(&schema.table_name);
    let checkpoints = Checkpoints::new(run_dir, "_export", &schema.table_name);
    let prior: Option<TablePosition> = if settings.resume.is_some() {
        checkpoints.load("table.json").await?
    } else {
        None
    };
    if let Some(done) = prior.as_ref().filter(|p| p.complete) {
        tracing::info!(table = %schema.table_name, "already exported by an earlier attempt");
        progress.add(done.items, done.bytes, 0.0);
        return Ok((done.files, done.items, done.bytes));
    }
    let started = Utc::now();
    let (layout, segments) = match &prior {
        Some(p) => (
            TableLayout::with_id(
                settings.format(),
                settings.compression(),
                table_dir.clone(),
                p.export_id.clone(),
            ),
            p.segments,
        ),
        None => (
            TableLayout::new(
                settings.format(),
                settings.compression(),
                table_dir.clone(),
                started.timestamp_millis(),
            ),
            planned.segments,
        ),
    };
    let layout = Arc::new(layout);
    let mut position = TablePosition {
        export_id: layout.export_id.clone(),
        segments,
        complete: false,
        items: 0,
        bytes: 0,
        files: 0,
    };
    if prior.is_none() {
        put_json(&table_dir, "table.json", &schema).await?;
        checkpoints.save("table.json", &position).await?;
        if settings.format().is_native() {
            native::write_started(&layout).await?;
        }
    }
    let job = Arc::new(ScanJob {
        aws: aws.clone(),
        table: schema.table_name.clone(),
        limiter: RateLimiter::new(planned.target_read_units, aws.clock.clone()),
        segments,
        concurrency: settings.engine.workers.max(1) as u32,
        avg_item_bytes: (schema.item_count > 0)
            .then(|| schema.table_size_bytes as f64 / schema.item_count as f64),
        count_only: false,
        progress: progress.clone(),
        cancelled: AtomicBool::new(false),
        stop: settings.stop.clone(),
    });
    let mut handles = Vec::new();
    for segment in 0..segments {
        let name = segment_name(segment);
        let before: SegmentPosition = if prior.is_some() {
            checkpoints.load(&name).await?.unwrap_or_default()
        } else {
            SegmentPosition::default()
        };
        let done_items: u64 = before.files.iter().map(|f| f.items).sum();
        let done_bytes: u64 = before.files.iter().map(|f| f.item_bytes).sum();
        progress.add(done_items, done_bytes, 0.0);
        if before.done {
            handles.push(tokio::spawn(std::future::ready(Ok(before.files))));
            continue;
        }
        let start = before.start_key(&checkpoints.url())?;
        let job = job.clone();
        let mut sink = CheckpointedSink {
            writer: DataFileWriter::resume(layout.clone(), settings.roll(), before.files),
            checkpoints: checkpoints.clone(),
            segment,
        };
        handles.push(pool.spawn(async move {
            let r = match scan_segment(&job, segment, start, &mut sink).await {
                Ok(()) => sink.finish().await,
                Err(e) => {
                    sink.writer.abort().await;
                    Err(e)
                }
            };
            if r.is_err() {
                job.cancelled
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            r
        }));
    }
    let mut files: Vec<DataFile> = Vec::new();
    let mut first_error: Option<Error> = None;
    for h in handles {
        match h.await {
            Ok(Ok(f)) => files.extend(f),
            Ok(Err(e)) => {
                // Segments stopped because another failed say "interrupted": keep the cause.
                if first_error
                    .as_ref()
                    .is_none_or(|f| matches!(f, Error::Interrupted))
                {
                    first_error = Some(e);
                }
            }
            Err(join) => {
                first_error =
                    first_error.or(Some(Error::Invalid(format!("a segment task died: {join}"))))
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    job.limiter.drain().await;
    if prior.is_some() {
        remove_unlisted_data_files(&layout, &files).await?;
    }
    let ended = Utc::now();
    match settings.format() {
        DataFormat::Emr => connector::write_manifest(&layout, &files).await?,
        _ => {
            native::write_manifests(&layout, &schema, &aws.region, &files, started, ended).await?;
        }
    }
    position.items = files.iter().map(|f| f.items).sum();
    position.bytes = files.iter().map(|f| f.item_bytes).sum();
    position.files = files.len() as u64;
    position.complete = true;
    checkpoints.save("table.json", &position).await?;
    Ok((position.files, position.items, position.bytes))
}

/// After a crash: data files a killed attempt left behind (never listed in a checkpoint,
/// or an unfinished upload's staging file) are deleted, so that the folder holds exactly
/// what the manifests list.
async fn remove_unlisted_data_files(layout: &TableLayout, files: &[DataFile]) -> Result<()> {
    let listed: std::collections::HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let dir = match layout.format {
        DataFormat::Emr => layout.table_dir.clone(),
        _ => layout.native_dir().child("data"),
    };
    let listing = dir
        .store
        .list_with_delimiter(Some(&dir.prefix))
        .await
        .map_err(|e| Error::store(dir.url(), e))?;
    for object in listing.objects {
        let name = object.location.filename().unwrap_or_default();
        let is_data = match layout.format {
            DataFormat::Emr => name.len() >= 36 && uuid::Uuid::parse_str(&name[..36]).is_ok(),
            _ => true,
        };
        if is_data && !listed.contains(object.location.as_ref()) {
            tracing::info!(file = %dir.url_of(&object.location), "removing a data file left by an interrupted attempt");
            match dir.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::store(dir.url_of(&object.location), e)),
            }
        }
    }
    // A local folder: object_store stages each file as `<name>#<n>` and hides such files
    // from listings; a killed upload leaves one behind. (On S3 an unfinished multipart
    // upload is invisible and expires under the bucket's lifecycle rules.)
    if let Some(root) = dir.root_url.strip_prefix("file://") {
        let folder = std::path::Path::new(root).join(dir.prefix.as_ref());
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let staging = name
                    .rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if staging {
                    tracing::info!(file = %entry.path().display(), "removing an upload left unfinished by an interrupted attempt");
                    std::fs::remove_file(entry.path()).map_err(|e| {
                        Error::Invalid(format!("{}: cannot remove: {e}", entry.path().display()))
                    })?;
                }
            }
        }
    }
    Ok(())
}
