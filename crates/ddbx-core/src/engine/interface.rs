//! The engine interface: what every engine is given ([`ExportWork`], [`ImportWork`]) and
//! gives back (one [`TableReport`] per table, progress through the same counters). The
//! run's lifecycle (`run::lifecycle`) and the jobs (`export`, `import`) know engines only
//! through [`Engine`].

use std::sync::Arc;

use crate::aws::Aws;
use crate::capacity::Spike;
use crate::format::source::TableSource;
use crate::format::writer::RollLimits;
use crate::item::key::KeySchema;
use crate::plan::{DataFormat, ExportPlan, ImportStep, PlannedTable};
use crate::progress::RunProgress;
use crate::progress::TableProgress;
use crate::report::{Reports, TableReport};
use crate::stop::StopSignal;
use crate::store::Location;
use crate::table::{Schemas, TableSchema};
use crate::Result;

/// Where the work of a run is done: in this process, on EMR clusters, ...
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// The engine's name, as plans record it (`local`, `emr`).
    fn name(&self) -> &'static str;

    /// The data format this engine writes when `asked` is (none: the engine's default);
    /// a format it cannot write is refused.
    fn export_format(&self, asked: Option<DataFormat>) -> Result<DataFormat>;

    /// Make a table's plan say what this engine will really do (the rate it can give, the
    /// segments it will use, when `segments` were not asked for).
    fn adjust_plan(&self, planned: &mut PlannedTable, schema: &TableSchema, segments: Option<u32>) {
        let _ = (planned, schema, segments);
    }

    /// What the plan should say of how this engine exports, beyond its fields.
    fn plan_note(&self) -> Option<String> {
        None
    }

    /// The settings of this engine that shape a run, recorded in its plan
    /// (`engineSettings`) for a resumed run to keep.
    fn plan_settings(&self) -> Option<serde_json::Value> {
        None
    }

    /// Whether `export --resume` can continue a run this engine made.
    fn resumes_exports(&self) -> bool {
        false
    }

    /// Checks made under the run's lock, before anything is written: a reason not to start
    /// is an error (EMR: an active cluster with one of the run's names).
    async fn check_export(&self, aws: &Aws, plan: &ExportPlan) -> Result<()> {
        let _ = (aws, plan);
        Ok(())
    }

    /// Whether this engine can import `source` (its format, its layout); why not, if not.
    /// Checked before the table's target is touched.
    fn check_import_source(&self, source: &TableSource) -> Result<()> {
        let _ = source;
        Ok(())
    }

    /// Whether this engine replays chains of native exports (applies incremental windows'
    /// puts and deletes over a full export).
    fn replays_changes(&self) -> bool {
        false
    }

    /// Whether this engine creates each import's target itself (the native engine's
    /// ImportTable): the import then does not create them, and the engine is given what
    /// to create (`import::target::to_create`), with the ARN of a table that exists.
    fn creates_targets(&self) -> bool {
        false
    }

    /// Read a table's export once before its target is created or written, writing
    /// nothing, so that a bad file fails the table without a trace (not even a new empty
    /// table). Engines whose service reads the files itself (EMR, ImportTable) check
    /// nothing here.
    async fn check_source(&self, check: SourceCheck<'_>) -> Result<SourceChecked> {
        let _ = check;
        Ok(SourceChecked::default())
    }

    /// Export the planned tables into the run root. A table's failure is in its report;
    /// an error is for the run as a whole.
    async fn export_tables(&self, work: ExportWork<'_>) -> Result<Reports>;

    /// Import the tables. A table's failure is in its report; an error is for the run.
    async fn import_tables(&self, work: ImportWork<'_>) -> Result<Vec<TableReport>>;
}

/// One export, as every engine gets it.
#[derive(Debug)]
pub struct ExportWork<'a> {
    /// The run's AWS clients.
    pub aws: &'a Aws,
    /// The run root.
    pub run_dir: &'a Location,
    /// The resolved plan: format, compression, rate, segments and spike of each table.
    pub plan: &'a ExportPlan,
    /// Each planned table's description, in the plan's order.
    pub schemas: &'a Schemas,
    /// Scan segments the user asked for (the plan's are ddbx's choice otherwise).
    pub segments: Option<u32>,
    /// When data files roll.
    pub roll: RollLimits,
    /// Whether this continues an earlier attempt of the run (from its checkpoints).
    pub resume: bool,
    /// Raised to stop cleanly.
    pub stop: &'a StopSignal,
    /// The counters the display shows.
    pub progress: &'a RunProgress,
}

/// One import, as every engine gets it.
#[derive(Debug)]
pub struct ImportWork<'a> {
    /// The run's AWS clients.
    pub aws: &'a Aws,
    /// Where the import keeps its checkpoints and capacity records.
    pub state: &'a Location,
    /// The app (EMR names its clusters' tags after it).
    pub app: &'a str,
    /// The tables, each ready to write or already failed.
    pub tables: Vec<ImportTable>,
    /// Write units per second per table, overriding ratios.
    pub max_write_units: Option<f64>,
    /// Continue from the checkpoints of an earlier run.
    pub resume: bool,
    /// Skip the validation pass (a bad line then fails a table mid-way).
    pub no_validate_first: bool,
    /// Put back the settings of the tables an engine creates itself (not `--no-settings`).
    pub settings: bool,
    /// Start each on-demand target at what it takes now and climb as it scales (not
    /// `--no-ramp`).
    pub ramp: bool,
    /// Raised to stop cleanly.
    pub stop: &'a StopSignal,
    /// The counters the display shows.
    pub progress: &'a RunProgress,
}

/// One table of an import: what it will do, and its data and target once checked.
#[derive(Debug)]
pub struct ImportTable {
    /// The plan of the table.
    pub step: ImportStep,
    /// Ready to write, or why the table cannot be imported (it then fails alone).
    pub ready: Result<ReadyTable>,
}

/// One table's export to check before its target is touched ([`Engine::check_source`]).
#[derive(Debug)]
pub struct SourceCheck<'a> {
    /// Where the import keeps its checkpoints.
    pub state: &'a Location,
    /// The target table's name.
    pub target: &'a str,
    /// The target as it is now, when it exists.
    pub existing: Option<&'a TableSchema>,
    /// The export.
    pub source: &'a TableSource,
    /// Replaying a chain: the windows applied over it.
    pub changes: &'a [TableSource],
    /// The key every item must carry (the export's, else the existing target's).
    pub key: Option<&'a Arc<KeySchema>>,
    /// Continuing an earlier import from its checkpoints.
    pub resume: bool,
    /// Raised to stop.
    pub stop: &'a StopSignal,
    /// The table's counters.
    pub progress: &'a Arc<TableProgress>,
}

/// What checking a table's export found.
#[derive(Debug, Clone, Default)]
pub struct SourceChecked {
    /// Every file was read and every record checked (the writing pass need not again).
    pub validated: bool,
    /// Items whose key an earlier item of the export has (the table keeps the last).
    pub duplicate_keys: u64,
    /// Past how many items keys were not compared any more (memory stays bounded).
    pub duplicates_checked_up_to: Option<u64>,
    /// What the check saw of the export's lines, so that the writing pass need not check
    /// them again (`format::vouch`); `None` to check every line again.
    pub vouched: Option<std::sync::Arc<crate::format::vouch::Vouched>>,
}

/// A table whose export reads and whose target exists with the export's key.
#[derive(Debug)]
pub struct ReadyTable {
    /// The export of the table.
    pub source: TableSource,
    /// The target, as described once checked (or created).
    pub target: TableSchema,
    /// The target's write-capacity spike (`--spike-write-units`).
    pub spike: Option<Spike>,
    /// Replaying a chain: the incremental windows applied over `source`, in order.
    pub changes: Vec<TableSource>,
    /// The key every item must carry (the target's).
    pub key: Option<Arc<KeySchema>>,
    /// The target was created by this import (no earlier checkpoint can be its).
    pub created: bool,
    /// What checking the export found ([`Engine::check_source`]).
    pub checked: SourceChecked,
}

impl ImportTable {
    /// The rate to start writing at when it is below the target rate: an on-demand target's
    /// accepted writes a second (see [`RateLimiter::ramping`](crate::rate::RateLimiter::ramping)).
    pub fn write_start(&self) -> Option<f64> {
        self.ready.as_ref().ok()?.target.accepted_write_units()
    }

    /// The write units per second the table is written at: `max` when given, else the
    /// step's ratio of the capacity the target will have (spiked, or its own).
    pub fn write_units(&self, max: Option<f64>) -> f64 {
        let ratio = self.step.write_ratio;
        max.unwrap_or_else(|| match &self.ready {
            Ok(r) => r
                .spike
                .as_ref()
                .and_then(|s| s.units(ratio))
                .unwrap_or_else(|| r.target.write_units(ratio)),
            Err(_) => 0.0,
        })
    }
}
