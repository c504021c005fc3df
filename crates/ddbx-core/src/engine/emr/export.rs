//! An export on EMR: a step per table (HiveQL, or the connector's export tool), the steps
//! files in the seed's shape, and each table completed after its step.

use super::steps::Step;
use super::{
    cluster_plans, connector_capacity, defined_names, hive, put_text, report, run_steps, steps,
    write_steps_files, EmrEngine,
};
use crate::engine::interface::ExportWork;
use crate::format::source::parse_connector_manifest;
use crate::format::{connector, hive as hive_layout};
use crate::plan::{table_folder, Compression, DataFormat, PlannedTable, DEFAULT_WRITE_RATIO};
use crate::report::TableReport;
use crate::store::Location;
use crate::table::TableSchema;
use crate::{Error, Result};

/// Export the planned tables on EMR, then complete each table whose step completed.
pub(super) async fn export_tables(
    emr: &EmrEngine,
    work: &ExportWork<'_>,
) -> Result<Vec<TableReport>> {
    let (aws, run_dir, plan) = (work.aws, work.run_dir, work.plan);
    let schemas = work.schemas.all()?;
    let mut exports = Vec::new();
    let mut imports = Vec::new();
    if emr.hive() {
        put_text(
            run_dir,
            &format!("_emr/{}", hive::IMPORT_SCRIPT_NAME),
            hive::IMPORT_SCRIPT,
        )
        .await?;
    }
    let planned_tables = plan.tables.to_vec()?;
    for (schema, planned) in schemas.iter().zip(&planned_tables) {
        let (export, import) = table_steps(emr, work, schema, planned).await?;
        exports.push((export, schema.table_size_bytes.max(0) as u64));
        imports.push(import);
    }
    let clusters = cluster_plans(emr, exports);
    write_steps_files(
        run_dir,
        "export",
        &clusters.iter().map(|c| c.steps.clone()).collect::<Vec<_>>(),
    )
    .await?;
    let import_files: Vec<Vec<Step>> = clusters
        .iter()
        .map(|c| {
            c.steps
                .iter()
                .filter_map(|s| imports.iter().find(|i| i.table() == s.table()).cloned())
                .collect()
        })
        .collect();
    write_steps_files(run_dir, "import", &import_files).await?;

    let spikes = planned_tables
        .iter()
        .filter_map(|t| t.capacity_spike.clone().map(|s| (t.table.clone(), s)))
        .collect();
    let (outcomes, seconds) = run_steps(
        emr,
        aws,
        clusters,
        run_dir,
        &plan.app,
        spikes,
        work.stop,
        work.progress,
    )
    .await?;
    let mut reports = Vec::new();
    for o in outcomes {
        let schema = schemas
            .iter()
            .find(|s| s.table_name == o.table)
            .expect("a step per planned table");
        let result = match o.failure() {
            Some(e) => Err(e),
            None => complete_table(emr, run_dir, schema).await,
        };
        reports.push(finish(work, &o.table, result, seconds));
    }
    Ok(reports)
}

/// One table's export step, and the step that would restore it (informational, as the
/// seed's importSteps: `ddbx import` plans its own from restore-plan.json); for Hive, their
/// HiveQL written under `_emr/`.
async fn table_steps(
    emr: &EmrEngine,
    work: &ExportWork<'_>,
    schema: &TableSchema,
    planned: &PlannedTable,
) -> Result<(Step, Step)> {
    let (aws, run_dir, plan) = (work.aws, work.run_dir, work.plan);
    let table = &schema.table_name;
    let folder = run_dir.child(&table_folder(table));
    let keys = defined_names(schema);
    let steps = if emr.hive() {
        let q = hive::export_hql(&hive::HiveExport {
            table,
            region: &aws.region,
            key_names: keys.clone(),
            read_units: planned.target_read_units as u64,
            segments: work.segments,
            compression: plan.compression,
            location: &folder.child(hive_layout::DATA).url(),
            odd_names: &odd_names(run_dir, table).url(),
        })?;
        let url = put_text(run_dir, &format!("_emr/export-{table}.q"), &q).await?;
        // What restores it (informational, as the seed's importSteps: `ddbx import`
        // plans its own from restore-plan.json).
        let iq = hive::import_hql(&hive::HiveImport {
            target: table,
            region: &aws.region,
            key_names: keys,
            write_units: (connector_capacity(schema, None, false) * DEFAULT_WRITE_RATIO).floor()
                as u64,
            format: DataFormat::DataPipeline,
            location: &folder.child(hive_layout::DATA).url(),
            files: None,
            set_aside: &run_dir.child(&format!("_import/{table}/set-aside")).url(),
            unreadable: &run_dir.child(&format!("_import/{table}/unreadable")).url(),
            script: &run_dir
                .child(&format!("_emr/{}", hive::IMPORT_SCRIPT_NAME))
                .url(),
            null_key: emr.null_key(),
        })?;
        let iurl = put_text(run_dir, &format!("_emr/import-{table}.q"), &iq).await?;
        (
            steps::hive_step(steps::EXPORT_PREFIX, table, &url),
            steps::hive_step(steps::IMPORT_PREFIX, table, &iurl),
        )
    } else {
        let capacity = connector_capacity(schema, planned.capacity_spike.as_ref(), true);
        let mut hadoop = vec![
            "-Dmapreduce.map.speculative=false".to_string(),
            "-Dmapreduce.reduce.speculative=false".to_string(),
        ];
        if plan.compression == Compression::Gzip {
            hadoop.push("-Dmapreduce.output.fileoutputformat.compress=true".into());
            hadoop.push(
                "-Dmapreduce.output.fileoutputformat.compress.codec=org.apache.hadoop.io.compress.GzipCodec".into(),
            );
        }
        (
            steps::tools_export_step(
                &emr.config,
                &aws.region,
                table,
                &folder.url(),
                planned.target_read_units / capacity,
                work.segments,
                &hadoop,
            ),
            steps::tools_import_step(
                &emr.config,
                &aws.region,
                table,
                &folder.url(),
                DEFAULT_WRITE_RATIO,
            ),
        )
    };
    Ok(steps)
}

/// Where a table's Hive step lists the items it left out (names the text cannot hold).
fn odd_names(run_dir: &Location, table: &str) -> Location {
    run_dir.child(&format!("_emr/names-{table}"))
}

/// After a Hive step: the items it left out because the Data Pipeline text cannot hold
/// their attribute names fail the table, naming the first such name (the backup would not
/// read back; the local engine's formats hold any name).
async fn refuse_odd_names(run_dir: &Location, table: &str) -> Result<()> {
    use base64::Engine as _;
    let dir = odd_names(run_dir, table);
    let mut items = 0u64;
    let mut first: Option<String> = None;
    for o in dir.list_folder().await?.objects {
        if o.size == 0 || !o.location.filename().is_some_and(hive_layout::is_data_file) {
            continue;
        }
        let Some(bytes) = dir.get_optional(&o.location).await? else {
            continue;
        };
        let text = if o.location.as_ref().ends_with(".gz") {
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut s,
            )
            .map_err(|e| Error::Corrupt {
                file: dir.url_of(&o.location),
                message: e.to_string(),
            })?;
            s
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        for line in text.lines().filter(|l| !l.is_empty()) {
            items += 1;
            if first.is_none() {
                let names = base64::engine::general_purpose::STANDARD
                    .decode(line.trim())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|_| line.to_string());
                first = names
                    .split('\u{1}')
                    .find(|n| n.contains(['\n', '\r', '\u{2}', '\u{3}']))
                    .map(str::to_string);
            }
        }
    }
    match first {
        None if items == 0 => Ok(()),
        name => Err(Error::Failed(format!(
            "{items} items of {table} have an attribute name holding a line end, \\x02 or \\x03 (first: {:?}), which the Hive (Data Pipeline) text cannot hold: they are not in the export, and the table is not backed up; export it with --engine local",
            name.unwrap_or_default()
        ))),
    }
}

/// After a completed step: `table.json` in the table's folder, and the listing of its data
/// files (Hive), or a check that the connector's manifest is there (tools). Returns the
/// number of data files.
async fn complete_table(emr: &EmrEngine, run_dir: &Location, schema: &TableSchema) -> Result<u64> {
    let dir = run_dir.child(&table_folder(&schema.table_name));
    let files = if emr.hive() {
        refuse_odd_names(run_dir, &schema.table_name).await?;
        hive_layout::write_listing(&dir).await?.files.len() as u64
    } else {
        let manifest = dir.join(connector::MANIFEST);
        let bytes = dir
            .get_optional(&manifest)
            .await?
            .ok_or_else(|| Error::Corrupt {
                file: dir.url_of(&manifest),
                message: "the EMR step completed but wrote no manifest".into(),
            })?;
        parse_connector_manifest(&dir.url_of(&manifest), &bytes)?.len() as u64
    };
    // What the cluster wrote is retained now, as the objects ddbx writes are when written.
    crate::store::retention::retain_written(&dir).await?;
    dir.put_json("table.json", schema).await?;
    Ok(files)
}

/// One table's end on EMR: its progress phase, the log, and its report. Items are not
/// counted on the cluster: the report says they are unknown.
fn finish(work: &ExportWork<'_>, table: &str, result: Result<u64>, seconds: f64) -> TableReport {
    report(
        work.progress,
        table,
        result.map(|files| (files, None)),
        seconds,
    )
}
