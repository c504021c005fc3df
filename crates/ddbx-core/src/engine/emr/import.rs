//! An import on EMR: a step per ready table, and after a Hive step, the items it set aside
//! (which the connector cannot write), written by ddbx.

use bytes::Bytes;
use object_store::PutPayload;

use super::steps::Step;
use super::{
    cluster_plans, connector_capacity, defined_names, hive, put_text, report, run_steps, steps,
    write_steps_files, EmrEngine,
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
                reports.push(report(work.progress, target, Err(e.to_string()), 0.0));
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
            Err(e) => reports.push(report(work.progress, target, Err(e.to_string()), 0.0)),
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
            o.error,
            imported
                .iter()
                .find(|i| i.table.step.target_table == o.table),
        ) {
            (Some(e), _) => Err(e),
            (None, Some(i)) => write_set_aside(&work, i).await.map_err(|e| e.to_string()),
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
    let target = &i.table.step.target_table;
    let files = |dir: &Location| {
        let dir = dir.clone();
        async move {
            let listed = dir.list_folder().await?;
            Ok::<_, Error>(
                listed
                    .objects
                    .into_iter()
                    .filter(|o| {
                        o.size > 0 && o.location.filename().is_some_and(hive_layout::is_data_file)
                    })
                    .map(|o| SourceFile {
                        url: dir.url_of(&o.location),
                        path: o.location,
                        md5: None,
                        items: None,
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let unreadable = files(&i.unreadable).await?;
    if let Some(first) = unreadable.first() {
        let text = i
            .unreadable
            .get_optional(&first.path)
            .await?
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>()
            })
            .unwrap_or_default();
        return Err(Error::Corrupt {
            file: i.unreadable.url(),
            message: format!(
                "lines of the export that are not items were set aside by the EMR step, first: {text:?}; the rest of the table was written"
            ),
        });
    }
    let aside = files(&i.set_aside).await?;
    if aside.is_empty() {
        return Ok((0, None));
    }
    let mut step = i.table.step.clone();
    step.expected_items = None;
    step.files = aside.len();
    step.source = i.set_aside.url();
    let table = ImportTable {
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
    };
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
    let r = reports.into_iter().next().expect("one table");
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
