//! `ddbx import`: what is specific to an import. Open the export and pick its tables, each
//! with its target; find where the import keeps its state ([`state`]); then, inside the
//! run's lifecycle (`run::lifecycle`), check (or create) each target ([`target`]) and hand
//! the tables to the engine, which writes them exactly.

pub(crate) mod state;
pub(crate) mod target;

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
use crate::report::{Reports, RunSummary, TableReport};
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
#[derive(Debug)]
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
        .map(|sel| Planned::new(settings, &root, sel))
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
    let run = Run {
        flags: Some(Job::Restore),
        root: &state,
        // One import of a source at a time (a killed one's lock is taken over).
        lease: lease(aws, &root, is_run, &settings.source, &settings.stop)?,
        lock: Some(import_lock(&state, &aws.region, &root)),
        fresh: false,
        summarize: &summarize,
    };
    let steps: Vec<ImportStep> = planned.iter().map(|p| p.step.clone()).collect();
    let engine = settings.engine.engine();
    let replays: Vec<Replayed> = planned.iter().filter_map(Replayed::of).collect();
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
        annotate(&mut reports, &created, &replays);
        Ok(Outcome {
            reports: reports.into(),
            files: Vec::new(),
            extra: (),
        })
    };
    let (summary, ()) = run
        .execute(Reports::in_memory(), Vec::new(), async { Ok(()) }, work)
        .await?;
    Ok(ImportReport { steps, summary })
}

impl Planned {
    /// A selected table planned: its step (what is read, at what write ratio: the
    /// settings', else the restore plan's, else the default), its source and key.
    fn new(settings: &ImportSettings, root: &Location, sel: source::Selected) -> Self {
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
    }
}

/// The import's lock under its state: one import of a source at a time, a killed one's
/// taken over.
fn import_lock<'a>(state: &'a Location, region: &str, root: &Location) -> LockSpec<'a> {
    let owner = format!("import into {region} from {}", root.url());
    LockSpec {
        base: state,
        path: "_import/_LOCK".into(),
        owner: owner.clone(),
        settings: LockSettings {
            takeover_run: Some(owner),
            ..LockSettings::default()
        },
    }
}

/// A table replayed from a chain: the instant it reaches, over how many windows.
#[derive(Debug, Clone, PartialEq)]
struct Replayed {
    target: String,
    reached: chrono::DateTime<Utc>,
    windows: usize,
}

impl Replayed {
    fn of(p: &Planned) -> Option<Self> {
        Some(Replayed {
            target: p.step.target_table.clone(),
            reached: p.reached?,
            windows: p.changes.len(),
        })
    }

    /// What the table's report says of it.
    fn note(&self) -> String {
        format!(
            "replayed to {}: a full export and {} incremental window{}",
            self.reached,
            self.windows,
            if self.windows == 1 { "" } else { "s" }
        )
    }
}

/// What the engine's reports do not know: the settings of each table this import created,
/// and (first in its note) what each replayed table reached.
fn annotate(
    reports: &mut [TableReport],
    created: &[(String, SettingsOutcome)],
    replays: &[Replayed],
) {
    for r in reports {
        if let Some((_, outcome)) = created.iter().find(|(t, _)| *t == r.table) {
            r.settings = Some(outcome.clone());
        }
        if let Some(replayed) = replays.iter().find(|p| p.target == r.table) {
            let said = replayed.note();
            r.note = Some(match r.note.take() {
                Some(n) => format!("{said}; {n}"),
                None => said,
            });
        }
    }
}

/// The app's lock held shared while a ddbx run (or, replaying, the app's folder) is read,
/// so that no prune deletes it meanwhile.
fn lease<'a>(
    aws: &Aws,
    root: &Location,
    is_run: bool,
    source: &Selection,
    stop: &'a StopSignal,
) -> Result<Option<LeaseSpec<'a>>> {
    let mut app_dir = if is_run {
        crate::format::chain::app_dir_of_run(root)
    } else if source.at.is_some() {
        root.clone()
    } else {
        return Ok(None);
    };
    if source.recover_deleted {
        // Read past delete markers, written as it is now: prune sees the lease.
        app_dir = aws.storage.open_existing(&app_dir.url())?;
    }
    Ok(Some(LeaseSpec {
        app_dir,
        reads: root.url(),
        stop,
    }))
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
        check_readable(engine, &source, &p.changes)?;
        let name = step.target_table.as_str();
        if engine.creates_targets() {
            return made_by_engine(aws, settings, name, source, p.changes).await;
        }
        let create = create_mode(settings);
        let existing = target::describe(aws, name).await?;
        target::precheck(name, existing.as_ref(), p.key.as_deref(), create)?;
        let key = key_check(p.key.as_deref(), existing.as_ref());
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
        let schema = source.schema.as_ref();
        let ensured =
            target::ensure_table(aws, name, existing, schema, p.key.as_deref(), create).await?;
        if let Some(o) = ensured.settings {
            let mut created = created.lock().expect("not poisoned");
            created.push((step.target_table.clone(), o));
        }
        let spike = write_spike(aws, settings, &ensured.table).await?;
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

/// Refuse an export that `engine` cannot import as it is: one it does not read, an
/// incremental export alone (changes, not a table), a chain to replay on an engine that
/// does not replay.
fn check_readable(
    engine: &dyn Engine,
    source: &TableSource,
    changes: &[TableSource],
) -> Result<()> {
    engine.check_import_source(source)?;
    if source.changes {
        return Err(Error::Usage(format!(
            "{}: an incremental export holds changes, not the table: replay its chain with --until TIME (from the run of its full export) or --at TIME (from the app's folder)",
            source.dir.url()
        )));
    }
    if !changes.is_empty() && !engine.replays_changes() {
        return Err(Error::Usage(format!(
            "replaying a chain of exports (--until/--at) is done by the local engine, not --engine {}",
            engine.name()
        )));
    }
    Ok(())
}

/// How a missing target is made, as the settings ask.
fn create_mode(settings: &ImportSettings) -> Create {
    match (settings.create_missing, settings.no_settings) {
        (false, _) => Create::No,
        (true, false) => Create::WithSettings,
        (true, true) => Create::Bare,
    }
}

/// The key every item must carry: the export's (which the target has), else the target's;
/// none when neither says.
fn key_check(
    export_key: Option<&[KeyAttribute]>,
    existing: Option<&TableSchema>,
) -> Option<std::sync::Arc<crate::item::key::KeySchema>> {
    export_key
        .map(crate::table::key_check)
        .or_else(|| existing.map(TableSchema::key_check))
        .filter(|k| !k.parts.is_empty())
        .map(std::sync::Arc::new)
}

/// A table whose target the engine creates itself (ImportTable): what to create, and
/// its capacity spike; nothing is checked before the engine.
async fn made_by_engine(
    aws: &Aws,
    settings: &ImportSettings,
    name: &str,
    source: TableSource,
    changes: Vec<TableSource>,
) -> Result<ReadyTable> {
    let target = target::to_create(aws, name, source.schema.as_ref()).await?;
    let spike = write_spike(aws, settings, &target).await?;
    Ok(ReadyTable {
        key: None,
        created: false,
        checked: SourceChecked::default(),
        spike,
        target,
        source,
        changes,
    })
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
        reports.into(),
        Some(Utc::now()),
    );
    ImportReport { steps, summary }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::LocalEngine;
    use crate::engine::native::NativeEngine;
    use crate::plan::DataFormat;
    use crate::store::Storage;

    fn folder(dir: &tempfile::TempDir) -> Location {
        Storage::default()
            .open(dir.path().to_str().unwrap())
            .unwrap()
    }

    fn source(dir: &Location, files: usize, changes: bool) -> TableSource {
        TableSource {
            dir: dir.clone(),
            table: Some("T".into()),
            format: DataFormat::DynamodbJson,
            files: (0..files)
                .map(|i| {
                    let path = dir.join(&format!("f{i}.json"));
                    source::SourceFile {
                        url: dir.url_of(&path),
                        path,
                        md5: None,
                        items: Some(1),
                    }
                })
                .collect(),
            schema: None,
            expected_items: Some(7),
            changes,
        }
    }

    fn selected(table: Result<TableSource>, changes: Vec<TableSource>) -> source::Selected {
        source::Selected {
            source_table: "S".into(),
            target_table: "T".into(),
            step: None,
            table,
            key: None,
            changes,
            reached: None,
        }
    }

    fn k(name: &str, kt: &str) -> KeyAttribute {
        KeyAttribute {
            attribute_name: name.into(),
            key_type: kt.into(),
            attribute_type: "S".into(),
        }
    }

    #[test]
    fn a_planned_step_counts_the_files_of_its_chain_and_takes_the_settings_ratio() {
        let tmp = tempfile::tempdir().unwrap();
        let root = folder(&tmp);
        let settings = ImportSettings::default();
        let chain = vec![source(&root, 2, true), source(&root, 1, true)];
        let p = Planned::new(
            &settings,
            &root,
            selected(Ok(source(&root, 3, false)), chain),
        );
        assert_eq!(p.step.files, 6);
        assert_eq!(p.step.expected_items, Some(7));
        assert_eq!(p.step.write_ratio, DEFAULT_WRITE_RATIO);
        assert_eq!(p.changes.len(), 2);

        let settings = ImportSettings {
            write_ratio: Some(0.25),
            ..ImportSettings::default()
        };
        let unreadable = Err(Error::Failed("gone".into()));
        let p = Planned::new(&settings, &root, selected(unreadable, Vec::new()));
        assert_eq!((p.step.files, p.step.expected_items), (0, None));
        assert_eq!(p.step.source, root.url());
        assert_eq!(p.step.write_ratio, 0.25);
        assert!(p.source.is_err());
    }

    #[test]
    fn reports_gain_the_created_tables_settings_and_what_a_replay_reached() {
        let reached = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut reports = vec![
            TableReport::planned("A"),
            TableReport {
                note: Some("resumed".into()),
                ..TableReport::planned("B")
            },
            TableReport::planned("C"),
        ];
        let outcome = SettingsOutcome {
            restored: vec!["stream".into()],
            not_restored: Vec::new(),
        };
        let replays = [
            Replayed {
                target: "B".into(),
                reached,
                windows: 1,
            },
            Replayed {
                target: "C".into(),
                reached,
                windows: 3,
            },
        ];
        annotate(&mut reports, &[("A".into(), outcome.clone())], &replays);
        assert_eq!(reports[0].settings.as_ref(), Some(&outcome));
        assert_eq!(reports[0].note, None);
        assert_eq!(
            reports[1].note.as_deref(),
            Some("replayed to 2023-11-14 22:13:20 UTC: a full export and 1 incremental window; resumed")
        );
        assert!(reports[2]
            .note
            .as_deref()
            .unwrap()
            .ends_with("3 incremental windows"));
        assert_eq!(reports[1].settings, None);
    }

    #[test]
    fn only_a_planned_replay_is_replayed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = folder(&tmp);
        let settings = ImportSettings::default();
        let mut sel = selected(Ok(source(&root, 1, false)), vec![source(&root, 1, true)]);
        assert_eq!(Replayed::of(&Planned::new(&settings, &root, sel)), None);
        sel = selected(Ok(source(&root, 1, false)), vec![source(&root, 1, true)]);
        let at = chrono::DateTime::from_timestamp(1, 0).unwrap();
        sel.reached = Some(at);
        let r = Replayed::of(&Planned::new(&settings, &root, sel)).unwrap();
        assert_eq!((r.target.as_str(), r.reached, r.windows), ("T", at, 1));
    }

    #[test]
    fn the_create_mode_follows_create_missing_and_no_settings() {
        let mode = |create_missing, no_settings| {
            create_mode(&ImportSettings {
                create_missing,
                no_settings,
                ..ImportSettings::default()
            })
        };
        assert_eq!(mode(false, false), Create::No);
        assert_eq!(mode(false, true), Create::No);
        assert_eq!(mode(true, false), Create::WithSettings);
        assert_eq!(mode(true, true), Create::Bare);
    }

    #[test]
    fn items_are_checked_against_the_exports_key_else_the_targets() {
        let export = [k("pk", "HASH"), k("sk", "RANGE")];
        let target: TableSchema = serde_json::from_value(serde_json::json!({
            "TableName": "T",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"
        }))
        .unwrap();
        let names =
            |k: Option<std::sync::Arc<crate::item::key::KeySchema>>| k.map(|k| k.parts.len());
        assert_eq!(names(key_check(Some(&export), Some(&target))), Some(2));
        assert_eq!(names(key_check(None, Some(&target))), Some(1));
        assert_eq!(names(key_check(None, None)), None);
        assert_eq!(
            names(key_check(Some(&[]), None)),
            None,
            "an empty key checks nothing"
        );
    }

    #[test]
    fn an_incremental_export_alone_or_a_chain_on_an_engine_that_cannot_replay_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = folder(&tmp);
        let local = LocalEngine::default();
        let full = source(&root, 1, false);
        let window = source(&root, 1, true);
        check_readable(&local, &full, std::slice::from_ref(&window)).unwrap();
        let err = check_readable(&local, &window, &[]).unwrap_err();
        assert!(
            err.to_string().contains("replay its chain with --until"),
            "{err}"
        );
        let native = NativeEngine::default();
        check_readable(&native, &full, &[]).unwrap();
        let err = check_readable(&native, &full, &[window]).unwrap_err();
        assert!(
            err.to_string()
                .contains("done by the local engine, not --engine native"),
            "{err}"
        );
    }

    #[test]
    fn the_import_lock_is_taken_over_from_a_killed_import_of_the_same_source() {
        let tmp = tempfile::tempdir().unwrap();
        let root = folder(&tmp);
        let lock = import_lock(&root, "eu-west-1", &root);
        assert_eq!(lock.path, "_import/_LOCK");
        assert_eq!(
            lock.owner,
            format!("import into eu-west-1 from {}", root.url())
        );
        assert_eq!(
            lock.settings.takeover_run.as_deref(),
            Some(lock.owner.as_str())
        );
    }
}
