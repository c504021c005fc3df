//! `ddbx export`: what is specific to an export. Select and plan the tables (or load the
//! plan of a run being resumed), then hand the plan to the run's lifecycle
//! (`run::lifecycle`: lock, flags, plan files) and its engine, and end with the restore
//! plan.

mod plan;
mod resume;
pub(crate) mod select;

pub use resume::engine_of;

use chrono::{DateTime, Utc};

use crate::aws::Aws;
use crate::bounds;
use crate::engine::{EngineChoice, ExportWork};
use crate::format::writer::RollLimits;
use crate::plan::{Compression, DataFormat, ExportPlan, PlanSelection, RunLayout};
use crate::progress::RunProgress;
use crate::report::{RunSummary, TableReport};
use crate::run::lifecycle::{document, LockSpec, Outcome, Run};
use crate::run::lock::LockSettings;
use crate::run::status::Job;
use crate::stop::StopSignal;
use crate::store::retention::{self, LockRequest};
use crate::store::Location;
use crate::table::Schemas;
use crate::Result;

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
    /// Where the work runs, with the engine's own settings.
    pub engine: EngineChoice,
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
    /// Take a run time more than a day ahead of now (else refused: a typo of the year
    /// would make that run the newest for years, for `latest` and `prune`).
    pub allow_future_run_time: bool,
    /// Raise each provisioned table's read capacity to this for its export.
    pub spike_read_units: Option<i64>,
    /// Record each table's resource policy in `table.json` (GetResourcePolicy).
    pub resource_policy: bool,
    /// Write the run's backup objects retained with S3 Object Lock (`--object-lock`,
    /// `--retain`).
    pub object_lock: Option<LockRequest>,
}

/// The read ratio when none is given.
pub const DEFAULT_READ_RATIO: f64 = 0.5;

impl ExportSettings {
    /// The read ratio asked for, or the default.
    pub fn read_ratio(&self) -> f64 {
        self.read_ratio.unwrap_or(DEFAULT_READ_RATIO)
    }

    /// The compression asked for, or the default.
    pub fn compression(&self) -> Compression {
        self.compression.unwrap_or_default()
    }

    /// When data files of `format` roll: as asked, else the defaults (the connector's
    /// 100,000 items a file for its format, as its tools write).
    pub fn roll(&self, format: DataFormat) -> RollLimits {
        let default = RollLimits::default();
        let items = if format == DataFormat::Emr {
            100_000
        } else {
            default.max_items
        };
        RollLimits {
            max_items: self.file_items.unwrap_or(items),
            max_bytes: self.file_bytes.unwrap_or(default.max_bytes),
            ..default
        }
    }

    /// Check every numeric setting against its range (`crate::bounds`): nothing that would
    /// hang the run (a rate of 0) or empty it (no scan segment).
    pub fn validate(&self) -> Result<()> {
        bounds::RATIO.check_opt(self.read_ratio)?;
        bounds::UNITS.check_opt(self.max_read_units)?;
        bounds::SEGMENTS.check_opt(self.segments)?;
        bounds::FILE_ITEMS.check_opt(self.file_items)?;
        bounds::FILE_BYTES.check_opt(self.file_bytes)?;
        bounds::RETAIN_DAYS.check_opt(self.object_lock.map(|l| l.days))?;
        self.lock.validate()?;
        self.engine.validate()
    }

    /// What selected the tables, as the plan records it.
    pub fn selection(&self) -> PlanSelection {
        PlanSelection {
            tables: self.tables.clone(),
            table_names: self.table_names.clone(),
            excludes: self.excludes.clone(),
            exclude_file: self.exclude_file.clone(),
            excluded: Vec::new(),
        }
    }
}

/// What an export run produced.
#[derive(Debug)]
pub struct ExportReport {
    /// The resolved plan.
    pub plan: ExportPlan,
    /// The final summary.
    pub summary: RunSummary,
}

/// A run ready to go: where it is, its plan, and its tables described.
struct Prepared {
    /// The base location (the lock is under it).
    base: Location,
    layout: RunLayout,
    run_dir: Location,
    plan: ExportPlan,
    /// Each planned table's description, in the plan's order.
    schemas: Schemas,
    /// Tables that failed before any work (not described, spike not planned).
    failed_early: Vec<TableReport>,
}

/// Run an export (or, with `resume`, continue one). Errors are for the run as a whole
/// (bad settings, lock held, nothing to export); a table's failure is in the report.
pub async fn run(
    aws: &Aws,
    settings: &ExportSettings,
    progress: &RunProgress,
) -> Result<ExportReport> {
    settings.validate()?;
    let (prepared, resumed) = match &settings.resume {
        Some(run_root) => {
            let p = resume::prepare(aws, settings, settings.engine.engine(), run_root).await?;
            let plan_url = p.run_dir.url_of(&p.run_dir.join("export-plan.json"));
            let engine = settings
                .engine
                .resumed(p.plan.engine_settings.as_ref(), &plan_url)?;
            (p, Some(engine))
        }
        None => (
            plan::prepare(aws, settings, settings.engine.engine()).await?,
            None,
        ),
    };
    let engine = resumed.as_ref().unwrap_or(&settings.engine).engine();
    let Prepared {
        base,
        layout,
        run_dir,
        plan,
        schemas,
        failed_early,
    } = prepared;
    let run_dir = retained_run(&base, run_dir, plan.object_lock.as_ref(), settings).await?;
    let summarize = |reports, ended| RunSummary {
        engine: Some(plan.engine.clone()),
        object_lock: plan.object_lock.clone(),
        excluded: plan
            .selection
            .as_ref()
            .map(|s| s.excluded.clone())
            .unwrap_or_default(),
        ..RunSummary::for_job("export", &layout, run_dir.url(), reports, ended)
    };
    let mut planned = plan::planned_reports(&plan)?;
    if settings.dry_run {
        planned.extend(failed_early)?;
        let summary = summarize(planned, Some(Utc::now()));
        return Ok(ExportReport { plan, summary });
    }
    let resuming = settings.resume.is_some();
    let owner = format!("export {}", run_dir.url());
    let run = Run {
        flags: Some(Job::Backup),
        root: &run_dir,
        lease: None,
        lock: Some(LockSpec {
            base: &base,
            path: layout.lock_path(),
            owner: owner.clone(),
            // A resumed run may take over its own lock.
            settings: LockSettings {
                takeover_run: resuming.then(|| owner.clone()),
                ..settings.lock.clone()
            },
        }),
        fresh: !resuming,
        summarize: &summarize,
    };
    let plan_files: Vec<_> = (!resuming)
        .then(|| document("export-plan.json", &plan))
        .transpose()?
        .into_iter()
        .collect();
    progress.plan_tables(plan.tables.len());
    let work = async {
        let mut reports = engine
            .export_tables(ExportWork {
                aws,
                run_dir: &run_dir,
                plan: &plan,
                schemas: &schemas,
                segments: settings.segments,
                roll: settings.roll(plan.format),
                resume: resuming,
                stop: &settings.stop,
                progress,
            })
            .await?;
        reports.extend(failed_early)?;
        reports.sort_by_table();
        let files = vec![plan::restore_plan(&layout, &plan, &reports)?];
        Ok(Outcome {
            reports,
            files,
            extra: (),
        })
    };
    let (summary, ()) = run
        .execute(planned, plan_files, engine.check_export(aws, &plan), work)
        .await?;
    Ok(ExportReport { plan, summary })
}

/// The run root writing its backup objects retained as `lock` says, once the bucket is
/// known to take it (checked before anything is written, dry runs included). A resumed
/// run keeps its plan's date, which must still be ahead.
async fn retained_run(
    base: &Location,
    run_dir: Location,
    lock: Option<&retention::ObjectLock>,
    settings: &ExportSettings,
) -> Result<Location> {
    let Some(lock) = lock else {
        return Ok(run_dir);
    };
    retention::check_bucket(base, lock.request()).await?;
    if settings.resume.is_some() && lock.retain_until <= Utc::now() + chrono::Duration::minutes(1) {
        return Err(crate::Error::Usage(format!(
            "{}: its plan retains it until {}, which has passed: S3 retains nothing until a past date; start a new run",
            run_dir.url(),
            lock.retain_until
        )));
    }
    run_dir.retained(lock)
}
