//! `ddbx import`: what is specific to an import. Open the export and pick its tables, each
//! with its target; find where the import keeps its state ([`state`]); then, inside the
//! run's lifecycle (`run::lifecycle`), check (or create) each target ([`target`]) and hand
//! the tables to the engine, which writes them exactly.

pub mod state;
pub mod target;

use chrono::Utc;

use crate::aws::Aws;
use crate::bounds;
use crate::capacity::{self, Spike};
use crate::concurrent::for_each_limited;
use crate::engine::{
    Engine, EngineChoice, ImportTable, ImportWork, ReadyTable, SourceCheck, SourceChecked,
};
use crate::format::select;
use crate::format::source::{self, Selection, TableSource};
use crate::plan::{ImportStep, RunLayout, DEFAULT_WRITE_RATIO};
use crate::progress::RunProgress;
use crate::report::{RunSummary, TableReport};
use crate::run::lifecycle::{LeaseSpec, LockSpec, Outcome, Run};
use crate::run::lock::LockSettings;
use crate::run::status::Job;
use crate::stop::StopSignal;
use crate::store::Location;
use crate::table::settings::SettingsOutcome;
use crate::table::{KeyAttribute, TableSchema};
use crate::{Error, Result};
use target::Create;

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
    /// With `create_missing`: create tables with keys, indexes and billing only, none of
    /// the other settings `table.json` records.
    pub no_settings: bool,
    /// Write on-demand targets at the full rate from the first second (no ramp from what the
    /// table takes now).
    pub no_ramp: bool,
    /// Where the work runs, with the engine's own settings.
    pub engine: EngineChoice,
    /// Say what would happen, write nothing.
    pub dry_run: bool,
    /// Continue from the checkpoints of an earlier run.
    pub resume: bool,
    /// Skip the validation pass (faster; a bad line then fails the table mid-way).
    pub no_validate_first: bool,
    /// Raised to stop cleanly: no new batch starts, batches in hand finish, the checkpoint is written.
    pub stop: StopSignal,
    /// Raise each provisioned target's write capacity to this for its import.
    pub spike_write_units: Option<i64>,
    /// Where the import keeps its flags and checkpoints when the source is not a ddbx run
    /// it may write (see [`state`]).
    pub state_to: Option<String>,
}

impl ImportSettings {
    /// Check every numeric setting against its range (`crate::bounds`).
    pub fn validate(&self) -> Result<()> {
        bounds::RATIO.check_opt(self.write_ratio)?;
        bounds::UNITS.check_opt(self.max_write_units)?;
        self.engine.validate()
    }
}

/// What an import produced.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Per table, what was (or would be) done.
    pub steps: Vec<ImportStep>,
    /// The final summary.
    pub summary: RunSummary,
}

/// One table of the export, planned.
struct Planned {
    step: ImportStep,
    source: Result<TableSource>,
    key: Option<Vec<KeyAttribute>>,
    /// Replaying a chain: the windows over `source`, and the instant reached.
    changes: Vec<TableSource>,
    reached: Option<chrono::DateTime<chrono::Utc>>,
}

/// Run an import.
pub async fn run(
    aws: &Aws,
    settings: &ImportSettings,
    progress: &RunProgress,
) -> Result<ImportReport> {
    settings.validate()?;
    let (root, plan, selected) = select::select(&aws.storage, &settings.source).await?;
    let planned: Vec<Planned> = selected
        .into_iter()
        .map(|sel| {
            let write_ratio = settings
                .write_ratio
                .or(sel.step.as_ref().map(|s| s.write_ratio))
                .unwrap_or(DEFAULT_WRITE_RATIO);
            let (src_url, format, files, expected) = match &sel.table {
                Ok(t) => (
                    t.dir.url(),
                    t.format,
                    t.files.len() + sel.changes.iter().map(|c| c.files.len()).sum::<usize>(),
                    t.expected_items,
                ),
                Err(_) => (
                    root.url(),
                    sel.step.as_ref().map(|s| s.format).unwrap_or_default(),
                    0,
                    None,
                ),
            };
            Planned {
                step: ImportStep {
                    source_table: sel.source_table,
                    target_table: sel.target_table,
                    source: src_url,
                    format,
                    files,
                    expected_items: expected.or(sel.step.as_ref().and_then(|s| s.item_count)),
                    write_ratio,
                    target_write_units: None,
                    target_state: String::new(),
                },
                source: sel.table,
                key: sel.key,
                changes: sel.changes,
                reached: sel.reached,
            }
        })
        .collect();
    let is_run = plan.is_some();
    let warnings: Vec<String> = if is_run {
        source::export_warning(&root).await?.into_iter().collect()
    } else {
        Vec::new()
    };
    let layout = RunLayout {
        region: aws.region.clone(),
        app: plan.map(|p| p.app).unwrap_or_default(),
        started: Utc::now(),
    };
    if settings.dry_run {
        return Ok(dry_run(aws, settings, &layout, &root.url(), planned).await);
    }

    let state = state::locate(aws, &root, is_run, settings.state_to.as_deref()).await?;
    let summarize = |reports, ended| {
        let mut summary = RunSummary::for_job("import", &layout, root.url(), reports, ended);
        summary.state_root = (state.url() != root.url()).then(|| state.url());
        summary.engine = Some(settings.engine.engine().name().to_string());
        summary.warnings = warnings.clone();
        summary
    };
    let owner = format!("import into {} from {}", aws.region, root.url());
    let run = Run {
        flags: Some(Job::Restore),
        root: &state,
        // One import of a source at a time (a killed one's lock is taken over).
        lease: lease(&root, is_run, &settings.source, &settings.stop),
        lock: Some(LockSpec {
            base: &state,
            path: "_import/_LOCK".into(),
            owner: owner.clone(),
            settings: LockSettings {
                takeover_run: Some(owner.clone()),
                ..LockSettings::default()
            },
        }),
        fresh: false,
        summarize: &summarize,
    };
    let steps: Vec<ImportStep> = planned.iter().map(|p| p.step.clone()).collect();
    let engine = settings.engine.engine();
    let replays: Vec<(String, chrono::DateTime<Utc>, usize)> = planned
        .iter()
        .filter_map(|p| Some((p.step.target_table.clone(), p.reached?, p.changes.len())))
        .collect();
    let work = async {
        let created = std::sync::Mutex::new(Vec::new());
        let tables = for_each_limited(planned, 8, |p| {
            ready(aws, settings, &state, engine, p, &created, progress)
        })
        .await;
        let mut reports = engine
            .import_tables(ImportWork {
                aws,
                state: &state,
                app: &layout.app,
                tables,
                max_write_units: settings.max_write_units,
                resume: settings.resume,
                no_validate_first: settings.no_validate_first,
                settings: !settings.no_settings,
                ramp: !settings.no_ramp,
                stop: &settings.stop,
                progress,
            })
            .await?;
        let created = created.into_inner().expect("not poisoned");
        for r in &mut reports {
            if let Some((_, outcome)) = created.iter().find(|(t, _)| *t == r.table) {
                r.settings = Some(outcome.clone());
            }
            if let Some((_, reached, windows)) = replays.iter().find(|(t, _, _)| *t == r.table) {
                let said = format!(
                    "replayed to {reached}: a full export and {windows} incremental window{}",
                    if *windows == 1 { "" } else { "s" }
                );
                r.note = Some(match r.note.take() {
                    Some(n) => format!("{said}; {n}"),
                    None => said,
                });
            }
        }
        Ok(Outcome {
            reports,
            files: Vec::new(),
            extra: (),
        })
    };
    let (summary, ()) = run
        .execute(Vec::new(), Vec::new(), async { Ok(()) }, work)
        .await?;
    Ok(ImportReport { steps, summary })
}

/// The app's lock held shared while a ddbx run (or, replaying, the app's folder) is read,
/// so that no prune deletes it meanwhile.
fn lease<'a>(
    root: &Location,
    is_run: bool,
    source: &Selection,
    stop: &'a StopSignal,
) -> Option<LeaseSpec<'a>> {
    let app_dir = if is_run {
        crate::format::chain::app_dir_of_run(root)
    } else if source.at.is_some() {
        root.clone()
    } else {
        return None;
    };
    Some(LeaseSpec {
        app_dir,
        reads: root.url(),
        stop,
    })
}

/// A table made ready to write: its export readable (by this engine) and checked (every
/// record, against the key, by the local engine), its target there with the export's key
/// (or created, only once the export is known good), its capacity spike planned; else why
/// not.
async fn ready(
    aws: &Aws,
    settings: &ImportSettings,
    state: &Location,
    engine: &dyn Engine,
    p: Planned,
    created: &std::sync::Mutex<Vec<(String, SettingsOutcome)>>,
    progress: &RunProgress,
) -> ImportTable {
    let step = p.step;
    let ready = async {
        let source = p
            .source
            .map_err(|e| e.noted(format!("reading the export of {}", step.source_table)))?;
        engine.check_import_source(&source)?;
        if source.changes {
            return Err(Error::Usage(format!(
                "{}: an incremental export holds changes, not the table: replay its chain with --until TIME (from the run of its full export) or --at TIME (from the app's folder)",
                source.dir.url()
            )));
        }
        if !p.changes.is_empty() && !engine.replays_changes() {
            return Err(Error::Usage(format!(
                "replaying a chain of exports (--until/--at) is done by the local engine, not --engine {}",
                engine.name()
            )));
        }
        let create = match (settings.create_missing, settings.no_settings) {
            (false, _) => Create::No,
            (true, false) => Create::WithSettings,
            (true, true) => Create::Bare,
        };
        let name = step.target_table.as_str();
        if engine.creates_targets() {
            let target = target::to_create(aws, name, source.schema.as_ref())
                .await?;
            let spike = write_spike(aws, settings, &target)
                .await?;
            return Ok(ReadyTable {
                key: None,
                created: false,
                checked: SourceChecked::default(),
                spike,
                target,
                source,
                changes: p.changes,
            });
        }
        let existing = target::describe(aws, name).await?;
        target::precheck(name, existing.as_ref(), p.key.as_deref(), create)
            ?;
        // Every item must carry the export's key (which the target has), else the target's.
        let key = p
            .key
            .as_deref()
            .map(crate::table::key_check)
            .or_else(|| existing.as_ref().map(TableSchema::key_check))
            .filter(|k| !k.parts.is_empty())
            .map(std::sync::Arc::new);
        let checked = if settings.no_validate_first {
            SourceChecked::default()
        } else {
            engine
                .check_source(SourceCheck {
                    state,
                    target: name,
                    existing: existing.as_ref(),
                    source: &source,
                    changes: &p.changes,
                    key: key.as_ref(),
                    resume: settings.resume,
                    stop: &settings.stop,
                    progress: &progress.table(name),
                })
                .await?
        };
        let ensured = target::ensure_table(
            aws,
            name,
            existing,
            source.schema.as_ref(),
            p.key.as_deref(),
            create,
        )
        .await
        ?;
        if let Some(o) = ensured.settings {
            let mut created = created.lock().expect("not poisoned");
            created.push((step.target_table.clone(), o));
        }
        let spike = write_spike(aws, settings, &ensured.table)
            .await
            ?;
        Ok(ReadyTable {
            key: key.or_else(|| Some(std::sync::Arc::new(ensured.table.key_check()))),
            created: ensured.created,
            checked,
            source,
            target: ensured.table,
            spike,
            changes: p.changes,
        })
    }
    .await;
    ImportTable { step, ready }
}

/// The write-capacity spike `--spike-write-units` asks for on `target`, planned.
async fn write_spike(
    aws: &Aws,
    settings: &ImportSettings,
    target: &TableSchema,
) -> Result<Option<Spike>> {
    match settings.spike_write_units {
        Some(n) => Ok(Some(
            capacity::plan(aws, target, capacity::Dimension::Write, n).await?,
        )),
        None => Ok(None),
    }
}

/// What the import would do, table by table, with each target's state: nothing written.
async fn dry_run(
    aws: &Aws,
    settings: &ImportSettings,
    layout: &RunLayout,
    root: &str,
    planned: Vec<Planned>,
) -> ImportReport {
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
            files: p.step.files as u64,
            ..TableReport::planned(&p.step.target_table)
        });
        steps.push(p.step);
    }
    let summary = RunSummary::for_job(
        "import",
        layout,
        root.to_string(),
        reports,
        Some(Utc::now()),
    );
    ImportReport { steps, summary }
}
