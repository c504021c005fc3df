//! A native import: DynamoDB's ImportTable creates each target from its export's data
//! folder (no write capacity used), with the keys, billing and global indexes of the
//! export's `table.json`; then ddbx applies what ImportTable cannot (time to live, stream,
//! table class, deletion protection), waits for ACTIVE, and reports ImportTable's counts.
//! A table with local secondary indexes is refused (ImportTable cannot create them, and
//! they cannot be added later): the local engine imports it.

use aws_sdk_dynamodb::types as ddb;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::job::{poll_until, Polled};
use super::NativeEngine;
use crate::aws::Aws;
use crate::engine::interface::{ImportTable, ImportWork, ReadyTable};
use crate::engine::local::for_each_limited;
use crate::format::source::TableSource;
use crate::plan::DataFormat;
use crate::progress::Phase;
use crate::report::{TableReport, TableStatus};
use crate::store::Location;
use crate::table::settings::SettingsOutcome;
use crate::table::{self, TableSchema};
use crate::{Error, Result};

/// The record of a started import (`<state>/_import/<target>/native-import.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportRecord {
    import_arn: String,
    client_token: String,
}

/// What ImportTable can read: a full export in DynamoDB JSON or Ion, its data files in
/// one folder that holds nothing else, compressed alike.
pub(super) fn check_source(source: &TableSource) -> std::result::Result<(), String> {
    let url = source.dir.url();
    if !matches!(source.format, DataFormat::DynamodbJson | DataFormat::Ion) {
        return Err(format!(
            "{url}: DynamoDB's ImportTable reads DynamoDB JSON and Ion; import this {} export with the local engine",
            source.format.name()
        ));
    }
    if source.changes {
        return Err(format!(
            "{url}: an incremental export holds changes, not items; ImportTable cannot read it (replay its chain with the local engine: --until or --at)"
        ));
    }
    data_prefix(source)?;
    compression(source)?;
    Ok(())
}

/// The one folder of a source's data files.
fn data_prefix(source: &TableSource) -> std::result::Result<String, String> {
    let mut folder: Option<String> = None;
    for f in &source.files {
        let dir = f
            .path
            .as_ref()
            .rsplit_once('/')
            .map_or("", |(d, _)| d)
            .to_string();
        match &folder {
            Some(d) if *d != dir => {
                return Err(format!(
                    "{}: the data files are in more than one folder; ImportTable reads one",
                    source.dir.url()
                ))
            }
            _ => folder = Some(dir),
        }
    }
    folder.ok_or_else(|| format!("{}: no data file to import", source.dir.url()))
}

fn compression(source: &TableSource) -> std::result::Result<ddb::InputCompressionType, String> {
    let of = |name: &str| {
        if name.ends_with(".gz") {
            ddb::InputCompressionType::Gzip
        } else if name.ends_with(".zst") || name.ends_with(".zstd") {
            ddb::InputCompressionType::Zstd
        } else {
            ddb::InputCompressionType::None
        }
    };
    let mut kinds = source.files.iter().map(|f| of(&f.url));
    let first = kinds.next().unwrap_or(ddb::InputCompressionType::Gzip);
    if kinds.any(|k| k != first) {
        return Err(format!(
            "{}: the data files are compressed differently; ImportTable takes one compression",
            source.dir.url()
        ));
    }
    Ok(first)
}

pub(super) async fn import_tables(
    engine: &NativeEngine,
    work: ImportWork<'_>,
) -> Result<Vec<TableReport>> {
    let work = &work;
    let reports = for_each_limited(
        work.tables.iter().collect(),
        engine.max_jobs,
        |t: &ImportTable| async move {
            let target = t.step.target_table.clone();
            let counters = work.progress.table(&target);
            let started = work.aws.clock.now();
            let result = match &t.ready {
                Ok(ready) => import_table(engine, work, t, ready)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            let seconds = work.aws.clock.now().duration_since(started).as_secs_f64();
            match result {
                Ok(mut r) => {
                    counters.set_phase(Phase::Done);
                    r.seconds = seconds;
                    r
                }
                Err(e) => {
                    counters.fail(&e);
                    tracing::error!(table = %target, error = %e, "table failed");
                    TableReport {
                        seconds,
                        ..TableReport::failed(&target, e)
                    }
                }
            }
        },
    )
    .await;
    Ok(reports)
}

async fn import_table(
    engine: &NativeEngine,
    work: &ImportWork<'_>,
    t: &ImportTable,
    ready: &ReadyTable,
) -> Result<TableReport> {
    let aws = work.aws;
    let target = t.step.target_table.as_str();
    let s = &ready.target;
    if let Some(l) = s.local_secondary_indexes.first() {
        return Err(Error::Invalid(format!(
            "table {target}: the export's table has local secondary indexes ({}), which ImportTable cannot create and which cannot be added later: import it with the local engine (--create-missing creates them)",
            l.index_name
        )));
    }
    let counters = work.progress.table(target);
    counters.set_phase(Phase::Running);
    if let Some(n) = t.step.expected_items {
        counters
            .expected_items
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }
    let records = work.state.child(&format!("_import/{target}"));
    let arn = start(aws, work.state, &records, target, s, &ready.source).await?;
    let desc = wait(engine, aws, target, &arn, work, &counters).await?;
    let imported = desc.imported_item_count().max(0) as u64;
    let errors = desc.error_count().max(0);
    let processed = desc.processed_item_count().max(0) as u64;
    counters.add(
        imported,
        desc.processed_size_bytes().unwrap_or(0).max(0) as u64,
        0.0,
    );
    if errors > 0 {
        return Err(Error::Invalid(format!(
            "table {target}: ImportTable imported {imported} of {processed} items and reported {errors} errors (see the CloudWatch log group {}); the table was created with what it took",
            desc.cloud_watch_log_group_arn().unwrap_or("/aws-dynamodb/imports")
        )));
    }
    if let Some(expected) = t.step.expected_items {
        if expected != imported {
            return Err(Error::Invalid(format!(
                "table {target}: ImportTable imported {imported} items, but the export holds {expected}"
            )));
        }
    }
    aws.wait_active(target).await?;
    let settings = match work.settings {
        true => Some(finish_table(aws, target, s).await?),
        false => None,
    };
    Ok(TableReport {
        status: TableStatus::Succeeded,
        settings,
        items: imported,
        bytes: desc.processed_size_bytes().unwrap_or(0).max(0) as u64,
        files: ready.source.files.len() as u64,
        ..TableReport::planned(target)
    })
}

/// Start ImportTable (or take up the one an earlier attempt started), recording its ARN
/// before it is polled.
async fn start(
    aws: &Aws,
    state: &Location,
    records: &Location,
    target: &str,
    s: &TableSchema,
    source: &TableSource,
) -> Result<String> {
    let name = "native-import.json";
    if let Some(b) = records.get_optional(&records.join(name)).await? {
        let r: ImportRecord = serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
            file: records.url_of(&records.join(name)),
            message: format!("not an import record: {e}"),
        })?;
        tracing::info!(table = %target, arn = %r.import_arn, "taking up the import an earlier attempt started");
        return Ok(r.import_arn);
    }
    let bucket = source.dir.bucket.clone().ok_or_else(|| {
        Error::Invalid(format!(
            "{}: ImportTable reads from S3 only; import a local folder with the local engine",
            source.dir.url()
        ))
    })?;
    let prefix = data_prefix(source).map_err(Error::Invalid)?;
    let compression = compression(source).map_err(Error::Invalid)?;
    let mut h = Md5::new();
    h.update(format!("ddbx|{}|{target}|{prefix}", state.url()).as_bytes());
    let token = format!("ddbx-{}", hex::encode(h.finalize()));
    let req = aws
        .dynamodb
        .import_table()
        .client_token(&token)
        .s3_bucket_source(
            ddb::S3BucketSource::builder()
                .s3_bucket(bucket)
                .s3_key_prefix(format!("{prefix}/"))
                .set_s3_bucket_owner(aws.storage.expected_bucket_owner().map(str::to_string))
                .build()
                .expect("bucket is set"),
        )
        .input_format(match source.format {
            DataFormat::Ion => ddb::InputFormat::Ion,
            _ => ddb::InputFormat::DynamodbJson,
        })
        .input_compression_type(compression)
        .table_creation_parameters(creation_parameters(target, s));
    let out = aws
        .call(
            || format!("table {target}: ImportTable"),
            None,
            || req.clone().send(),
        )
        .await?;
    let arn = out
        .import_table_description()
        .and_then(|d| d.import_arn())
        .ok_or_else(|| Error::Invalid(format!("table {target}: ImportTable returned no ARN")))?
        .to_string();
    records
        .put_json(
            name,
            &ImportRecord {
                import_arn: arn.clone(),
                client_token: token,
            },
        )
        .await?;
    tracing::info!(table = %target, %arn, "import started");
    Ok(arn)
}

/// What ImportTable creates: the export's keys, billing and global indexes.
fn creation_parameters(target: &str, s: &TableSchema) -> ddb::TableCreationParameters {
    let c = table::sdk_creation(s);
    ddb::TableCreationParameters::builder()
        .table_name(target)
        .set_key_schema(Some(table::sdk_key_schema(&s.key_schema)))
        .set_attribute_definitions(Some(table::sdk_attribute_definitions(s)))
        .billing_mode(c.billing)
        .set_provisioned_throughput(c.provisioned)
        .set_on_demand_throughput(c.on_demand)
        .set_global_secondary_indexes(c.gsis)
        .build()
        .expect("name, keys and attributes are set")
}

/// Poll DescribeImport until the import ends.
async fn wait(
    engine: &NativeEngine,
    aws: &Aws,
    target: &str,
    arn: &str,
    work: &ImportWork<'_>,
    counters: &crate::progress::TableProgress,
) -> Result<ddb::ImportTableDescription> {
    poll_until(aws, engine.poll, work.stop, counters, "import", || async {
        let out = aws
            .call(
                || format!("table {target}: DescribeImport {arn}"),
                None,
                || aws.dynamodb.describe_import().import_arn(arn).send(),
            )
            .await?;
        let desc = out.import_table_description().cloned().ok_or_else(|| {
            Error::Invalid(format!("table {target}: DescribeImport returned nothing"))
        })?;
        Ok(match desc.import_status() {
            Some(ddb::ImportStatus::Completed) => Polled::Done(desc),
            Some(s @ (ddb::ImportStatus::Failed | ddb::ImportStatus::Cancelled)) => {
                return Err(Error::Invalid(format!(
                    "table {target}: ImportTable {arn} {}: {}: {} ({} of {} items imported)",
                    s.as_str(),
                    desc.failure_code().unwrap_or("no code"),
                    desc.failure_message().unwrap_or("no message"),
                    desc.imported_item_count(),
                    desc.processed_item_count()
                )))
            }
            other => Polled::Pending(other.map_or("?", |s| s.as_str()).to_string()),
        })
    })
    .await
}

/// What ImportTable does not set: stream, table class, deletion protection (one
/// UpdateTable), then what any created table gets once ACTIVE (time to live, tags, ...).
async fn finish_table(aws: &Aws, target: &str, s: &TableSchema) -> Result<SettingsOutcome> {
    let mut outcome = SettingsOutcome::default();
    update_table(aws, target, s, &mut outcome).await?;
    aws.restore_settings(target, s, &mut outcome).await;
    Ok(outcome)
}

async fn update_table(
    aws: &Aws,
    target: &str,
    s: &TableSchema,
    outcome: &mut SettingsOutcome,
) -> Result<()> {
    let stream = s
        .stream_specification
        .as_ref()
        .filter(|st| st.stream_enabled);
    let class = s.table_class.as_deref().filter(|c| *c != "STANDARD");
    let protect = s.deletion_protection_enabled.filter(|p| *p);
    if stream.is_none() && class.is_none() && protect.is_none() {
        return Ok(());
    }
    let names = [
        stream.map(|_| "stream".to_string()),
        class.map(|c| format!("table class {c}")),
        protect.map(|_| "deletion protection".to_string()),
    ];
    let mut req = aws.dynamodb.update_table().table_name(target);
    if let Some(st) = stream {
        req = req.stream_specification(table::sdk_stream(st));
    }
    if let Some(c) = class {
        req = req.table_class(ddb::TableClass::from(c));
    }
    if protect.is_some() {
        req = req.deletion_protection_enabled(true);
    }
    aws.call(
        || format!("table {target}: UpdateTable (what ImportTable does not set)"),
        None,
        || req.clone().send(),
    )
    .await?;
    outcome.restored.extend(names.into_iter().flatten());
    aws.wait_active(target).await
}
