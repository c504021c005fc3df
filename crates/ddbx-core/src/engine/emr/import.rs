//! An import on EMR: a step per ready table, and after a Hive step, the items it set aside
//! (which the connector cannot write), written by ddbx.

use bytes::Bytes;
use object_store::PutPayload;

use super::steps::Step;
use super::{
    cluster_plans, connector_capacity, defined_names, failed, hive, put_text, report, run_steps,
    steps, write_steps_files, EmrEngine,
};
use crate::aws::Aws;
use crate::engine::interface::{Engine, ImportTable, ImportWork, ReadyTable};
use crate::engine::local::LocalEngine;
use crate::format::source::{parse_connector_manifest, SourceFile, TableSource};
use crate::format::{connector, hive as hive_layout};
use crate::report::{TableReport, TableStatus};
use crate::store::Location;
use crate::{Error, Result};

/// The folder holding all of an export's data files, and their names.
pub(super) fn data_folder(source: &TableSource) -> crate::Result<(String, Vec<String>)> {
    let mut folder: Option<String> = None;
    let mut names = Vec::new();
    for f in &source.files {
        let (dir, name) = f
            .url
            .rsplit_once('/')
            .ok_or_else(|| Error::Usage(format!("{}: not a file URL", f.url)))?;
        match &folder {
            Some(d) if d != dir => {
                return Err(Error::Usage(format!(
                    "{}: the data files are in more than one folder ({d}, {dir}); a Hive step reads one",
                    source.dir.url()
                )))
            }
            _ => folder = Some(dir.to_string()),
        }
        names.push(name.to_string());
    }
    Ok((folder.unwrap_or_else(|| source.dir.url()), names))
}

/// What an import step needs after it ended: where it set items aside, and the table.
struct Imported<'a> {
    table: &'a ImportTable,
    ready: &'a ReadyTable,
    units: f64,
    set_aside: Location,
    unreadable: Location,
}

/// Import on EMR: a step per ready table, split over the clusters; then, for Hive steps,
/// the items each step set aside, written by ddbx. The steps and scripts are kept under
/// the import's state (`_emr/`, `_import/importSteps_NN.json`).
pub(super) async fn import_tables(
    emr: &EmrEngine,
    work: ImportWork<'_>,
) -> Result<Vec<TableReport>> {
    let (aws, state) = (work.aws, work.state);
    if state.bucket.is_none() {
        return Err(Error::Usage(format!(
            "{}: an EMR import keeps its scripts and the items it sets aside in S3, where the cluster reaches them: pass --state-to s3://...",
            state.url()
        )));
    }
    let mut reports = Vec::new();
    let mut steps = Vec::new();
    let mut imported = Vec::new();
    let script = upload_script(emr, state).await?;
    for table in &work.tables {
        let target = &table.step.target_table;
        let ready = match &table.ready {
            Ok(r) => r,
            Err(e) => {
                reports.push(failed(work.progress, target, e, 0.0));
                continue;
            }
        };
        let units = emr_write_units(table, ready, work.max_write_units);
        let prepared = if let Some(script) = &script {
            hive_import_step(emr, aws, state, ready, target, units, script)
                .await
                .map(|(step, set_aside, unreadable)| {
                    imported.push(Imported {
                        table,
                        ready,
                        units,
                        set_aside,
                        unreadable,
                    });
                    step
                })
        } else {
            tools_import_step(emr, aws, state, ready, target, units).await
        };
        match prepared {
            Ok(step) => steps.push((step, ready.source.files.len() as u64)),
            Err(e) => reports.push(failed(work.progress, target, &e, 0.0)),
        }
    }
    if steps.is_empty() {
        return Ok(reports);
    }
    let clusters = cluster_plans(emr, steps);
    write_steps_files(
        &state.child("_import"),
        "import",
        &clusters.iter().map(|c| c.steps.clone()).collect::<Vec<_>>(),
    )
    .await?;
    let spikes = work
        .tables
        .iter()
        .filter_map(|t| {
            let spike = t.ready.as_ref().ok()?.spike.clone()?;
            Some((t.step.target_table.clone(), spike))
        })
        .collect();
    let (outcomes, seconds) = run_steps(
        emr,
        aws,
        clusters,
        state,
        work.app,
        spikes,
        work.stop,
        work.progress,
    )
    .await?;
    for o in outcomes {
        let result = match (
            o.failure(),
            imported
                .iter()
                .find(|i| i.table.step.target_table == o.table),
        ) {
            (Some(e), _) => Err(e),
            (None, Some(i)) => write_set_aside(&work, i).await,
            (None, None) => Ok((0, None)),
        };
        let files = work
            .tables
            .iter()
            .find(|t| t.step.target_table == o.table)
            .map_or(0, |t| t.step.files as u64);
        reports.push(report(
            work.progress,
            &o.table,
            result.map(|(_, note)| (files, note)),
            seconds,
        ));
    }
    Ok(reports)
}

/// The TRANSFORM script of Hive steps, under the state's `_emr/` (refused, before anything
/// starts, when ADD FILE could not name it there); none for tools steps.
async fn upload_script(emr: &EmrEngine, state: &Location) -> Result<Option<String>> {
    if !emr.hive() {
        return Ok(None);
    }
    let rel = format!("_emr/{}", hive::IMPORT_SCRIPT_NAME);
    hive::hive_cli_path(
        "the import's state (where the import script goes)",
        &state.child(&rel).url(),
    )?;
    Ok(Some(put_text(state, &rel, hive::IMPORT_SCRIPT).await?))
}

/// A Hive import step for one table: its HiveQL (reading only the export's data files,
/// at `units` write units a second) under the state's `_emr/`, and where it sets items
/// aside.
async fn hive_import_step(
    emr: &EmrEngine,
    aws: &Aws,
    state: &Location,
    ready: &ReadyTable,
    target: &str,
    units: f64,
    script: &str,
) -> Result<(Step, Location, Location)> {
    let (location, files) = data_folder(&ready.source)?;
    let set_aside = state.child(&format!("_import/{target}/set-aside"));
    let unreadable = state.child(&format!("_import/{target}/unreadable"));
    let q = hive::import_hql(&hive::HiveImport {
        target,
        region: &aws.region,
        key_names: defined_names(&ready.target),
        write_units: units as u64,
        format: ready.source.format,
        location: &location,
        files: Some(files),
        set_aside: &set_aside.url(),
        unreadable: &unreadable.url(),
        script,
        null_key: emr.null_key(),
    })?;
    let url = put_text(state, &format!("_emr/import-{target}.q"), &q).await?;
    Ok((
        steps::hive_step(steps::IMPORT_PREFIX, target, &url),
        set_aside,
        unreadable,
    ))
}

/// A tools import step for one table. The connector reads its manifest's URLs as they were
/// written: for an export that was moved or copied since, a manifest with the files' URLs
/// as they are now goes under the state's `_import/<target>/`, and the step reads that.
async fn tools_import_step(
    emr: &EmrEngine,
    aws: &Aws,
    state: &Location,
    ready: &ReadyTable,
    target: &str,
    units: f64,
) -> Result<Step> {
    let src = &ready.source;
    let manifest = src.dir.join(connector::MANIFEST);
    let bytes = src
        .dir
        .get_optional(&manifest)
        .await?
        .ok_or_else(|| Error::Corrupt {
            file: src.dir.url_of(&manifest),
            message: "the connector's manifest is missing".into(),
        })?;
    let written: Vec<String> = parse_connector_manifest(&src.dir.url_of(&manifest), &bytes)?
        .into_iter()
        .map(|e| e.url)
        .collect();
    let now: Vec<String> = src
        .files
        .iter()
        .map(|f: &SourceFile| f.url.clone())
        .collect();
    let path = if written == now {
        src.dir.url()
    } else {
        let dir = state.child(&format!("_import/{target}"));
        let path = dir.join(connector::MANIFEST);
        dir.store
            .put(
                &path,
                PutPayload::from(Bytes::from(connector::manifest_bytes(&now))),
            )
            .await
            .map_err(|e| Error::store(dir.url_of(&path), e))?;
        tracing::info!(table = %target, manifest = %dir.url_of(&path), "the export was moved: the connector reads a manifest of its files as they are now");
        dir.url()
    };
    let capacity = connector_capacity(&ready.target, ready.spike.as_ref(), false);
    Ok(steps::tools_import_step(
        &emr.config,
        &aws.region,
        target,
        &path,
        units / capacity,
    ))
}

/// After a Hive import step: its unreadable lines fail the table (named); the items it set
/// aside are written by ddbx (the local engine's writer), counted and said.
async fn write_set_aside(work: &ImportWork<'_>, i: &Imported<'_>) -> Result<(u64, Option<String>)> {
    refuse_unreadable(&i.unreadable).await?;
    let aside = hive_data_files(&i.set_aside).await?;
    if aside.is_empty() {
        return Ok((0, None));
    }
    let table = set_aside_table(i, aside);
    let target = &i.table.step.target_table;
    let progress = crate::progress::RunProgress::default();
    let reports = LocalEngine {
        parallel_tables: 1,
        workers: 4,
    }
    .import_tables(ImportWork {
        aws: work.aws,
        state: &work
            .state
            .child(&format!("_import/{target}/set-aside-writes")),
        app: work.app,
        tables: vec![table],
        max_write_units: Some(i.units),
        resume: false,
        no_validate_first: false,
        settings: false,
        ramp: work.ramp,
        stop: work.stop,
        progress: &progress,
    })
    .await?;
    set_aside_written(reports.into_iter().next().expect("one table"))
}

/// The data files a Hive step wrote into `dir` (empty ones left out).
async fn hive_data_files(dir: &Location) -> Result<Vec<SourceFile>> {
    let listed = dir.list_folder().await?;
    Ok(listed
        .objects
        .into_iter()
        .filter(|o| o.size > 0 && o.location.filename().is_some_and(hive_layout::is_data_file))
        .map(|o| SourceFile {
            url: dir.url_of(&o.location),
            path: o.location,
            md5: None,
            items: None,
        })
        .collect())
}

/// Lines of the export that are not items, which the step set aside in `unreadable`, fail
/// the table, the first of them shown.
async fn refuse_unreadable(unreadable: &Location) -> Result<()> {
    let Some(first) = hive_data_files(unreadable).await?.into_iter().next() else {
        return Ok(());
    };
    let text = unreadable
        .get_optional(&first.path)
        .await?
        .map(|b| first_line(&b))
        .unwrap_or_default();
    Err(Error::Corrupt {
        file: unreadable.url(),
        message: format!(
            "lines of the export that are not items were set aside by the EMR step, first: {text:?}; the rest of the table was written"
        ),
    })
}

/// The first line of `bytes`, at most 200 characters of it.
fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// The set-aside items of `i` as a table for the local engine: the same target and key,
/// read from `aside` (nothing to create, check first or spike).
fn set_aside_table(i: &Imported<'_>, aside: Vec<SourceFile>) -> ImportTable {
    let mut step = i.table.step.clone();
    step.expected_items = None;
    step.files = aside.len();
    step.source = i.set_aside.url();
    ImportTable {
        step,
        ready: Ok(ReadyTable {
            source: TableSource {
                dir: i.set_aside.clone(),
                table: None,
                format: i.ready.source.format,
                files: aside,
                schema: None,
                expected_items: None,
                changes: false,
            },
            target: i.ready.target.clone(),
            spike: None,
            changes: Vec::new(),
            key: i.ready.key.clone(),
            created: false,
            checked: Default::default(),
        }),
    }
}

/// What writing the set-aside items came to: how many, and the note that says so; else
/// why not.
fn set_aside_written(r: TableReport) -> Result<(u64, Option<String>)> {
    match r.status {
        TableStatus::Succeeded => Ok((
            r.items,
            Some(format!(
                "{} items that the connector cannot write (an empty list or map, or a name Hive's text cannot hold) were set aside on the cluster and written by ddbx",
                r.items
            )),
        )),
        _ => Err(Error::Failed(format!(
            "writing the {} items the EMR step set aside: {}",
            r.items,
            r.error.unwrap_or_default()
        ))),
    }
}

/// What an on-demand table takes at first: AWS's initial throughput for a new on-demand
/// table (4,000 write request units a second), which it raises only after serving it.
const NEW_ON_DEMAND_WRITE_UNITS: f64 = 4_000.0;

/// The write units a table's import step runs at: the import's rate, in whole units (the
/// connector floors them). An on-demand target with no maximum set, no spike and no
/// `--max-write-units` is written at most at 4,000 units: the connector cannot slow down
/// when throttled (it retries each call for ten minutes, then fails the task), and a new
/// on-demand table throttles above that.
fn emr_write_units(table: &ImportTable, ready: &ReadyTable, max: Option<f64>) -> f64 {
    let units = table.write_units(max);
    let unbounded = max.is_none()
        && ready.spike.is_none()
        && ready.target.is_on_demand()
        && ready
            .target
            .on_demand_throughput
            .as_ref()
            .and_then(|o| o.max_write_request_units)
            .is_none_or(|u| u <= 0);
    let units = if unbounded && units > NEW_ON_DEMAND_WRITE_UNITS {
        tracing::info!(
            table = %table.step.target_table,
            "an on-demand target is written at most at {NEW_ON_DEMAND_WRITE_UNITS} units a second on EMR (what a new on-demand table takes); --max-write-units sets another rate"
        );
        NEW_ON_DEMAND_WRITE_UNITS
    } else {
        units
    };
    units.floor().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DataFormat, ImportStep};
    use crate::store::Storage;
    use crate::table::TableSchema;

    fn folder(dir: &std::path::Path) -> Location {
        Storage::default().open(dir.to_str().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_hive_folders_data_files_leave_out_markers_and_empty_files() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("000000_0", "x\n"),
            ("000001_0", ""),
            ("_SUCCESS", "x"),
            (".000002_0.crc", "x"),
            ("000003_0", "y\n"),
        ] {
            std::fs::write(tmp.path().join(name), text).unwrap();
        }
        let mut names: Vec<String> = hive_data_files(&folder(tmp.path()))
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.path.filename().unwrap().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["000000_0", "000003_0"]);
    }

    #[tokio::test]
    async fn lines_set_aside_as_unreadable_fail_the_table_showing_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = folder(tmp.path());
        refuse_unreadable(&dir).await.unwrap();
        std::fs::write(tmp.path().join("000000_0"), "not an item\nnor this\n").unwrap();
        let err = refuse_unreadable(&dir).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }));
        assert!(
            err.to_string().contains(r#"first: "not an item";"#),
            "{err}"
        );
    }

    #[test]
    fn the_first_line_shown_is_cut_at_200_characters() {
        assert_eq!(first_line(b"one\ntwo"), "one");
        assert_eq!(first_line(b""), "");
        assert_eq!(first_line("é".repeat(300).as_bytes()).chars().count(), 200);
    }

    #[test]
    fn written_set_aside_items_are_said_and_a_failure_is_named() {
        let ok = TableReport {
            status: TableStatus::Succeeded,
            items: 7,
            ..TableReport::planned("T")
        };
        let (n, note) = set_aside_written(ok).unwrap();
        assert_eq!(n, 7);
        assert!(note
            .unwrap()
            .starts_with("7 items that the connector cannot write"));
        let failed = TableReport {
            items: 3,
            ..TableReport::failed("T", "throttled")
        };
        let err = set_aside_written(failed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "writing the 3 items the EMR step set aside: throttled"
        );
    }

    #[test]
    fn the_set_aside_table_writes_the_same_target_from_the_set_aside_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (export, aside) = (folder(&tmp.path().join("e")), folder(&tmp.path().join("a")));
        let target: TableSchema = serde_json::from_value(serde_json::json!({
            "TableName": "T", "KeySchema": [], "AttributeDefinitions": [],
            "BillingMode": "PAY_PER_REQUEST"
        }))
        .unwrap();
        let ready = ReadyTable {
            source: TableSource {
                dir: export.clone(),
                table: Some("S".into()),
                format: DataFormat::DynamodbJson,
                files: Vec::new(),
                schema: None,
                expected_items: Some(100),
                changes: false,
            },
            target,
            spike: None,
            changes: Vec::new(),
            key: None,
            created: true,
            checked: Default::default(),
        };
        let table = ImportTable {
            step: ImportStep {
                source_table: "S".into(),
                target_table: "T".into(),
                source: export.url(),
                format: DataFormat::DynamodbJson,
                files: 9,
                expected_items: Some(100),
                write_ratio: 0.5,
                target_write_units: None,
                target_state: String::new(),
            },
            ready: Err(Error::Failed("unused".into())),
        };
        let imported = Imported {
            table: &table,
            ready: &ready,
            units: 10.0,
            set_aside: aside.clone(),
            unreadable: export.clone(),
        };
        let path = aside.join("000000_0");
        let file = SourceFile {
            url: aside.url_of(&path),
            path,
            md5: None,
            items: None,
        };
        let t = set_aside_table(&imported, vec![file]);
        assert_eq!((t.step.files, t.step.expected_items), (1, None));
        assert_eq!(t.step.source, aside.url());
        assert_eq!(t.step.target_table, "T");
        let r = t.ready.unwrap();
        assert_eq!(r.source.dir.url(), aside.url());
        assert_eq!(r.source.format, DataFormat::DynamodbJson);
        assert!(!r.created, "the target is there already");
        assert_eq!(r.target.table_name, "T");
    }
}
