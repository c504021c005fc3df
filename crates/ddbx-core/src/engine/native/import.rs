//! A native import: DynamoDB's ImportTable creates each target from its export's data
//! folder (no write capacity used), with the keys, billing, global indexes and encryption
//! of the export's `table.json`; then ddbx applies what ImportTable cannot (stream, table
//! class, deletion protection, time to live, tags, point-in-time recovery, resource
//! policy, auto scaling), waits for ACTIVE, and checks ImportTable's counts against the
//! export's manifests. A table with local secondary indexes is refused (ImportTable cannot
//! create them, and they cannot be added later): the local engine imports it.
//!
//! Each import is recorded (its attempt's ClientToken, then its ARN) before it is polled,
//! so that `import --resume` after a kill finds the import it started (from the record,
//! or ListImports on the table it created and the record's token), waits for it, checks
//! it and sets what it could not. A target that exists is otherwise refused; a new import
//! of the same source into the same name is the next attempt, with the next token.
//! Imports wait in line for the account's quotas (50 at once; the region's bytes in
//! flight; see `quota`), and one that could never fit is refused before it starts.

use aws_sdk_dynamodb::types as ddb;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use tokio::sync::Semaphore;

use super::job::{poll_until, Jobs, Polled};
use super::quota::{self, Quota};
use super::NativeEngine;
use crate::aws::Aws;
use crate::concurrent::for_each_limited;
use crate::engine::interface::{ImportTable, ImportWork, ReadyTable};
use crate::format::source::TableSource;
use crate::plan::DataFormat;
use crate::progress::Phase;
use crate::report::{TableReport, TableStatus};
use crate::store::Location;
use crate::table::settings::SettingsOutcome;
use crate::table::{self, TableSchema};
use crate::{Error, Result};

/// The record of an import (`<state>/_import/<target>/native-import.json`): written with
/// its attempt's token before ImportTable is called, then with the import's ARN.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportRecord {
    /// Which import of this source into this target, from 1 (none before ddbx 0.4: 1).
    #[serde(default = "first_attempt")]
    attempt: u32,
    client_token: String,
    /// Once ImportTable answered.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    import_arn: Option<String>,
    /// What became of the encryption asked for (said in the table's settings).
    #[serde(skip_serializing_if = "said_nothing", default)]
    encryption: SettingsOutcome,
}

fn first_attempt() -> u32 {
    1
}

fn said_nothing(o: &SettingsOutcome) -> bool {
    o.restored.is_empty() && o.not_restored.is_empty()
}

const RECORD: &str = "native-import.json";

/// What ImportTable can read: a full export in DynamoDB JSON or Ion, its data files in
/// one folder that holds nothing else, compressed alike.
pub(super) fn check_source(source: &TableSource) -> crate::Result<()> {
    let url = source.dir.url();
    if !matches!(source.format, DataFormat::DynamodbJson | DataFormat::Ion) {
        return Err(Error::Usage(format!(
            "{url}: DynamoDB's ImportTable reads DynamoDB JSON and Ion; import this {} export with the local engine",
            source.format.name()
        )));
    }
    if source.changes {
        return Err(Error::Usage(format!(
            "{url}: an incremental export holds changes, not items; ImportTable cannot read it (replay its chain with the local engine: --until or --at)"
        )));
    }
    data_prefix(source)?;
    compression(source)?;
    Ok(())
}

/// The one folder of a source's data files.
fn data_prefix(source: &TableSource) -> crate::Result<String> {
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
                return Err(Error::Usage(format!(
                    "{}: the data files are in more than one folder; ImportTable reads one",
                    source.dir.url()
                )))
            }
            _ => folder = Some(dir),
        }
    }
    folder.ok_or_else(|| Error::Usage(format!("{}: no data file to import", source.dir.url())))
}

fn compression(source: &TableSource) -> crate::Result<ddb::InputCompressionType> {
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
        return Err(Error::Usage(format!(
            "{}: the data files are compressed differently; ImportTable takes one compression",
            source.dir.url()
        )));
    }
    Ok(first)
}

/// A run's imports: their jobs' line for the account's quota, and the region's budget
/// of source bytes in flight (in MiB).
struct Imports<'a> {
    jobs: Jobs<'a>,
    work: &'a ImportWork<'a>,
    bytes: Semaphore,
}

pub(super) async fn import_tables(
    engine: &NativeEngine,
    work: ImportWork<'_>,
) -> Result<Vec<TableReport>> {
    let work = &work;
    let quota = Quota::new(engine.max_wait, engine.poll);
    let run = Imports {
        jobs: Jobs {
            aws: work.aws,
            engine,
            stop: work.stop,
            quota: &quota,
        },
        work,
        bytes: Semaphore::new(mib(quota::import_bytes_quota(&work.aws.region)) as usize),
    };
    let run = &run;
    let reports = for_each_limited(
        work.tables.iter().collect(),
        engine.max_jobs.min(quota::MAX_IMPORT_JOBS),
        |t: &ImportTable| async move {
            let target = t.step.target_table.clone();
            let counters = work.progress.table(&target);
            let started = work.aws.clock.now();
            let result = match &t.ready {
                Ok(ready) => run.import_table(t, ready).await.map_err(Some),
                Err(_) => Err(None),
            };
            let seconds = work.aws.clock.now().duration_since(started).as_secs_f64();
            match result {
                Ok(mut r) => {
                    counters.set_phase(Phase::Done);
                    r.seconds = seconds;
                    r
                }
                Err(e) => {
                    // (A table that was not made ready carries its own error.)
                    let e = e.as_ref().or(t.ready.as_ref().err()).expect("an error");
                    counters.fail(&e.to_string());
                    TableReport {
                        seconds,
                        ..TableReport::of_error(&target, e)
                    }
                }
            }
        },
    )
    .await;
    Ok(reports)
}

/// Bytes as whole MiB, rounded up (at least one).
fn mib(bytes: u64) -> u32 {
    bytes.div_ceil(1 << 20).clamp(1, u32::MAX as u64) as u32
}

impl Imports<'_> {
    async fn import_table(&self, t: &ImportTable, ready: &ReadyTable) -> Result<TableReport> {
        let (aws, work) = (self.jobs.aws, self.work);
        let target = t.step.target_table.as_str();
        let s = &ready.target;
        if let Some(l) = s.local_secondary_indexes.first() {
            return Err(Error::Usage(format!(
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
        let size = measure(&ready.source, &aws.region).await?;
        counters.set_state("waiting for the region's quota of import bytes in flight".to_string());
        let _bytes = tokio::select! {
            p = self.bytes.acquire_many(mib(size)) => p.expect("never closed"),
            _ = work.stop.stopped() => return Err(Error::Interrupted),
        };
        let records = work.state.child(&format!("_import/{target}"));
        let (arn, encryption) = match &s.table_arn {
            Some(existing) => self.take_up(target, existing, &records).await?,
            None => {
                self.start(target, s, &ready.source, &records, &counters)
                    .await?
            }
        };
        let desc = wait(&self.jobs, target, &arn, &counters).await;
        self.jobs.quota.job_ended();
        let desc = desc?;
        let imported = desc.imported_item_count().max(0) as u64;
        let errors = desc.error_count().max(0);
        let processed = desc.processed_item_count().max(0) as u64;
        counters.add(
            imported,
            desc.processed_size_bytes().unwrap_or(0).max(0) as u64,
            0.0,
        );
        if errors > 0 {
            return Err(Error::Failed(format!(
                "table {target}: ImportTable imported {imported} of {processed} items and reported {errors} errors (see the CloudWatch log group {}); the table was created with what it took",
                desc.cloud_watch_log_group_arn().unwrap_or("/aws-dynamodb/imports")
            )));
        }
        if let Some(expected) = t.step.expected_items {
            if expected != imported {
                return Err(Error::Failed(format!(
                    "table {target}: ImportTable imported {imported} items, but the export holds {expected}"
                )));
            }
        }
        aws.wait_active(target).await?;
        let settings = match work.settings {
            true => {
                let mut outcome = encryption;
                finish_table(aws, target, s, &mut outcome).await?;
                Some(outcome)
            }
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

    /// A target that exists: with `--resume`, the import this state recorded for it (by
    /// its ARN, or by its token among the table's imports when ImportTable's answer was
    /// lost), taken up; otherwise refused.
    async fn take_up(
        &self,
        target: &str,
        table_arn: &str,
        records: &Location,
    ) -> Result<(String, SettingsOutcome)> {
        let record = load(records).await?;
        let exists = || {
            format!(
                "table {target} exists: --engine native creates new tables only (DynamoDB's ImportTable); import into an existing table with the local engine"
            )
        };
        if !self.work.resume {
            return Err(Error::Usage(match &record {
                Some(_) => format!(
                    "{}; if it is the table an import of this source was creating when it stopped, pass --resume to take that import up",
                    exists()
                ),
                None => exists(),
            }));
        }
        let Some(record) = record else {
            return Err(Error::Usage(format!(
                "{} (no import of this source into it is recorded in {})",
                exists(),
                records.url()
            )));
        };
        let found = match &record.import_arn {
            Some(arn) => {
                let d = describe(self.jobs.aws, target, arn).await?;
                (d.table_arn() == Some(table_arn)).then(|| arn.clone())
            }
            None => find_by_token(self.jobs.aws, target, table_arn, &record.client_token).await?,
        };
        let arn = found.ok_or_else(|| {
            Error::Usage(format!(
                "{}, and it is not the table of the import recorded in {} (attempt {}, token {})",
                exists(),
                records.url_of(&records.join(RECORD)),
                record.attempt,
                record.client_token
            ))
        })?;
        if record.import_arn.is_none() {
            let record = ImportRecord {
                import_arn: Some(arn.clone()),
                ..record.clone()
            };
            records.put_json(RECORD, &record).await?;
        }
        tracing::info!(table = %target, %arn, "taking up the import an earlier run started");
        Ok((arn, record.encryption))
    }

    /// A new import of `source` into `target` (absent): the next attempt after the one
    /// recorded, if any, recorded before the call and again with its ARN. A customer
    /// managed KMS key ImportTable refuses is replaced by the AWS managed key, said so.
    async fn start(
        &self,
        target: &str,
        s: &TableSchema,
        source: &TableSource,
        records: &Location,
        counters: &crate::progress::TableProgress,
    ) -> Result<(String, SettingsOutcome)> {
        let aws = self.jobs.aws;
        let prefix = data_prefix(source)?;
        let attempt = load(records).await?.map_or(1, |r| r.attempt + 1);
        let sse = s.settings.sse.as_ref().filter(|_| self.work.settings);
        let mut key = sse.and_then(|e| e.kms_master_key_arn.clone());
        let mut encryption = SettingsOutcome::default();
        let mut record = ImportRecord {
            attempt,
            client_token: token(self.work.state, target, &prefix, attempt),
            import_arn: None,
            encryption: SettingsOutcome::default(),
        };
        loop {
            records.put_json(RECORD, &record).await?;
            let req =
                request(aws, source, &prefix, &record.client_token)?.table_creation_parameters(
                    creation_parameters(target, s, sse.map(|_| key.as_deref())),
                );
            let quick = Aws {
                retry: Quota::start_policy(aws),
                ..aws.clone()
            };
            let sent = self
                .jobs
                .quota
                .start(aws, self.jobs.stop, counters, "import", || {
                    quick.call(
                        || format!("table {target}: ImportTable"),
                        None,
                        || req.clone().send(),
                    )
                })
                .await;
            let out = match sent {
                Ok(out) => out,
                // A key this account may not use: the account's AWS managed key instead.
                Err(e) if key.is_some() && e.to_string().to_ascii_lowercase().contains("kms") => {
                    encryption.not_restored.push(format!(
                        "encryption with KMS key {}: {e}; the table is encrypted with this account's AWS managed key (aws/dynamodb) instead",
                        key.take().unwrap_or_default()
                    ));
                    record.attempt += 1;
                    record.client_token = token(self.work.state, target, &prefix, record.attempt);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match (sse, &key) {
                (Some(_), Some(k)) => encryption
                    .restored
                    .push(format!("encryption (KMS key {k})")),
                (Some(e), None) if e.kms_master_key_arn.is_none() => encryption
                    .restored
                    .push("encryption (KMS key aws/dynamodb)".into()),
                // The key was refused: said in what was not restored.
                _ => {}
            }
            let arn = out
                .import_table_description()
                .and_then(|d| d.import_arn())
                .ok_or_else(|| {
                    Error::Failed(format!("table {target}: ImportTable returned no ARN"))
                })?
                .to_string();
            record.import_arn = Some(arn.clone());
            record.encryption = encryption.clone();
            records.put_json(RECORD, &record).await?;
            tracing::info!(table = %target, %arn, attempt = record.attempt, "import started");
            return Ok((arn, encryption));
        }
    }
}

/// The ClientToken of an attempt at importing `prefix` into `target` for this state.
fn token(state: &Location, target: &str, prefix: &str, attempt: u32) -> String {
    let mut h = Md5::new();
    h.update(format!("ddbx|{}|{target}|{prefix}", state.url()).as_bytes());
    format!("ddbx-{}-{attempt}", hex::encode(h.finalize()))
}

async fn load(records: &Location) -> Result<Option<ImportRecord>> {
    match records.get_optional(&records.join(RECORD)).await? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                file: records.url_of(&records.join(RECORD)),
                message: format!("not an import record: {e}"),
            }),
    }
}

/// What ImportTable will read of `source`: every object under its data folder, which
/// must fit the quotas (50,000 objects; the region's bytes in flight); their bytes.
async fn measure(source: &TableSource, region: &str) -> Result<u64> {
    let prefix = data_prefix(source)?;
    let folder = Location {
        prefix: object_store::path::Path::from(prefix.as_str()),
        ..source.dir.clone()
    };
    let listed: Vec<object_store::ObjectMeta> = {
        use futures::TryStreamExt;
        folder
            .store
            .list(Some(&folder.prefix))
            .try_collect()
            .await
            .map_err(|e| Error::store(folder.url(), e))?
    };
    let bytes: u64 = listed.iter().map(|o| o.size).sum();
    fits(&folder.url(), listed.len(), bytes, region)?;
    Ok(bytes)
}

/// Whether ImportTable can take `objects` objects of `bytes` bytes in `region` at all.
fn fits(url: &str, objects: usize, bytes: u64, region: &str) -> Result<()> {
    if objects > quota::MAX_IMPORT_OBJECTS {
        return Err(Error::Usage(format!(
            "{url}: {objects} objects, and ImportTable reads {} at most (every object under the folder): import it with the local engine",
            quota::MAX_IMPORT_OBJECTS
        )));
    }
    let most = quota::import_bytes_quota(region);
    if bytes > most {
        return Err(Error::Usage(format!(
            "{url}: {bytes} bytes, more than the {most} bytes of source DynamoDB imports at once in {region}: import it with the local engine"
        )));
    }
    Ok(())
}

type ImportRequest = aws_sdk_dynamodb::operation::import_table::builders::ImportTableFluentBuilder;

/// The ImportTable call of `source` into `target`, but its table's parameters.
fn request(aws: &Aws, source: &TableSource, prefix: &str, token: &str) -> Result<ImportRequest> {
    let bucket = source.dir.bucket.clone().ok_or_else(|| {
        Error::Usage(format!(
            "{}: ImportTable reads from S3 only; import a local folder with the local engine",
            source.dir.url()
        ))
    })?;
    let compression = compression(source)?;
    Ok(aws
        .dynamodb
        .import_table()
        .client_token(token)
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
        .input_compression_type(compression))
}

/// What ImportTable creates: the export's keys, billing, global indexes, and (`sse`:
/// with the key, or `None` for the AWS managed key) its encryption.
fn creation_parameters(
    target: &str,
    s: &TableSchema,
    sse: Option<Option<&str>>,
) -> ddb::TableCreationParameters {
    let c = table::sdk_creation(s);
    ddb::TableCreationParameters::builder()
        .table_name(target)
        .set_key_schema(Some(table::sdk_key_schema(&s.key_schema)))
        .set_attribute_definitions(Some(table::sdk_attribute_definitions(s)))
        .billing_mode(c.billing)
        .set_provisioned_throughput(c.provisioned)
        .set_on_demand_throughput(c.on_demand)
        .set_global_secondary_indexes(c.gsis)
        .set_sse_specification(sse.map(|key| {
            ddb::SseSpecification::builder()
                .enabled(true)
                .sse_type(ddb::SseType::Kms)
                .set_kms_master_key_id(key.map(str::to_string))
                .build()
        }))
        .build()
        .expect("name, keys and attributes are set")
}

async fn describe(aws: &Aws, target: &str, arn: &str) -> Result<ddb::ImportTableDescription> {
    let out = aws
        .call(
            || format!("table {target}: DescribeImport {arn}"),
            None,
            || aws.dynamodb.describe_import().import_arn(arn).send(),
        )
        .await?;
    out.import_table_description()
        .cloned()
        .ok_or_else(|| Error::Failed(format!("table {target}: DescribeImport returned nothing")))
}

/// The import of `table_arn` whose ClientToken is `token` (ListImports, then each one's
/// DescribeImport), if any.
async fn find_by_token(
    aws: &Aws,
    target: &str,
    table_arn: &str,
    token: &str,
) -> Result<Option<String>> {
    let mut next: Option<String> = None;
    loop {
        let out = aws
            .call(
                || format!("table {target}: ListImports"),
                None,
                || {
                    aws.dynamodb
                        .list_imports()
                        .table_arn(table_arn)
                        .set_next_token(next.clone())
                        .send()
                },
            )
            .await?;
        for summary in out.import_summary_list() {
            let Some(arn) = summary.import_arn() else {
                continue;
            };
            if describe(aws, target, arn).await?.client_token() == Some(token) {
                return Ok(Some(arn.to_string()));
            }
        }
        match out.next_token() {
            Some(t) => next = Some(t.to_string()),
            None => return Ok(None),
        }
    }
}

/// Poll DescribeImport until the import ends.
async fn wait(
    jobs: &Jobs<'_>,
    target: &str,
    arn: &str,
    counters: &crate::progress::TableProgress,
) -> Result<ddb::ImportTableDescription> {
    let aws = jobs.aws;
    poll_until(aws, jobs.engine.poll, jobs.stop, counters, "import", || async {
        let desc = describe(aws, target, arn).await?;
        Ok(match desc.import_status() {
            Some(ddb::ImportStatus::Completed) => Polled::Done(desc),
            Some(s @ (ddb::ImportStatus::Failed | ddb::ImportStatus::Cancelled)) => {
                return Err(Error::Failed(format!(
                    "table {target}: ImportTable {arn} {}: {}: {} ({} of {} items imported); `import --resume` imports it again once the table is deleted",
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

/// What ImportTable does not set, as far as the table lacks it: stream, table class,
/// deletion protection (one UpdateTable), then what any created table gets once ACTIVE
/// (time to live, tags, point-in-time recovery, resource policy, auto scaling). A
/// setting the table has already (put by an earlier run, taken up) is not set twice.
async fn finish_table(
    aws: &Aws,
    target: &str,
    s: &TableSchema,
    outcome: &mut SettingsOutcome,
) -> Result<()> {
    let now = aws.describe_table(target).await?;
    update_table(aws, target, s, &now, outcome).await?;
    let ttl_set = now.time_to_live.as_ref().is_some_and(|t| {
        t.time_to_live_status.starts_with("ENABL")
            && t.attribute_name
                == s.time_to_live
                    .as_ref()
                    .and_then(|w| w.attribute_name.clone())
    });
    let rest = TableSchema {
        time_to_live: s.time_to_live.clone().filter(|_| !ttl_set),
        ..s.clone()
    };
    if ttl_set {
        outcome.restored.push(format!(
            "time to live ({})",
            now.time_to_live
                .as_ref()
                .and_then(|t| t.attribute_name.as_deref())
                .unwrap_or("?")
        ));
    }
    aws.restore_settings(target, &rest, outcome).await;
    Ok(())
}

async fn update_table(
    aws: &Aws,
    target: &str,
    s: &TableSchema,
    now: &TableSchema,
    outcome: &mut SettingsOutcome,
) -> Result<()> {
    let enabled = |t: &TableSchema| {
        t.stream_specification
            .as_ref()
            .filter(|st| st.stream_enabled)
            .cloned()
    };
    let class = |t: &TableSchema| t.table_class.clone().filter(|c| c != "STANDARD");
    let (stream, has_stream) = (enabled(s), enabled(now).is_some());
    let (wanted_class, has_class) = (class(s), class(now));
    let protect = s.deletion_protection_enabled == Some(true);
    let has_protect = now.deletion_protection_enabled == Some(true);
    let set_stream = stream.as_ref().filter(|_| !has_stream);
    let set_class = wanted_class
        .as_deref()
        .filter(|c| has_class.as_deref() != Some(*c));
    let set_protect = protect && !has_protect;
    let names = [
        stream.as_ref().map(|_| "stream".to_string()),
        wanted_class.as_ref().map(|c| format!("table class {c}")),
        protect.then(|| "deletion protection".to_string()),
    ];
    if set_stream.is_some() || set_class.is_some() || set_protect {
        let mut req = aws.dynamodb.update_table().table_name(target);
        if let Some(st) = set_stream {
            req = req.stream_specification(table::sdk_stream(st));
        }
        if let Some(c) = set_class {
            req = req.table_class(ddb::TableClass::from(c));
        }
        if set_protect {
            req = req.deletion_protection_enabled(true);
        }
        aws.call(
            || format!("table {target}: UpdateTable (what ImportTable does not set)"),
            None,
            || req.clone().send(),
        )
        .await?;
        aws.wait_active(target).await?;
    }
    outcome.restored.extend(names.into_iter().flatten());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> TableSchema {
        serde_json::from_value(serde_json::json!({
            "TableName": "orders",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": [{
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "OnDemandThroughput": {"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 50}
            }],
            "Settings": {"SSEDescription": {"SSEType": "KMS", "KMSMasterKeyArn": "arn:aws:kms:us-east-1:1:key/k"}}
        }))
        .unwrap()
    }

    #[test]
    fn import_table_creates_the_tables_encryption_and_its_indexes_maximums() {
        let s = schema();
        let with_key = creation_parameters("copy", &s, Some(Some("arn:aws:kms:us-east-1:1:key/k")));
        let sse = with_key.sse_specification().unwrap();
        assert_eq!(sse.sse_type(), Some(&ddb::SseType::Kms));
        assert_eq!(
            sse.kms_master_key_id(),
            Some("arn:aws:kms:us-east-1:1:key/k")
        );
        let gsi = &with_key.global_secondary_indexes()[0];
        let od = gsi.on_demand_throughput().unwrap();
        assert_eq!(
            (od.max_read_request_units(), od.max_write_request_units()),
            (Some(100), Some(50))
        );
        // The fallback: the AWS managed key; and none asked, none sent.
        let managed = creation_parameters("copy", &s, Some(None));
        assert_eq!(
            managed.sse_specification().unwrap().kms_master_key_id(),
            None
        );
        assert!(creation_parameters("copy", &s, None)
            .sse_specification()
            .is_none());
    }

    #[test]
    fn tokens_end_with_the_attempt_and_records_of_old_versions_are_the_first() {
        let state = crate::store::Storage::default().open("/tmp/state").unwrap();
        let one = token(&state, "t", "p/data", 1);
        let two = token(&state, "t", "p/data", 2);
        assert!(one.ends_with("-1") && two.ends_with("-2"), "{one} {two}");
        assert_eq!(one.trim_end_matches("-1"), two.trim_end_matches("-2"));
        assert_ne!(one, token(&state, "u", "p/data", 1));
        assert!(two.len() <= 64);
        let old: ImportRecord =
            serde_json::from_str(r#"{"importArn":"arn:i","clientToken":"ddbx-ab"}"#).unwrap();
        assert_eq!((old.attempt, old.import_arn.as_deref()), (1, Some("arn:i")));
    }

    #[test]
    fn an_import_the_quotas_can_never_take_is_refused_before_the_call() {
        fits("s3://b/x", 50_000, 1, "eu-central-1").unwrap();
        let err = fits("s3://b/x", 50_001, 1, "us-east-1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("50001 objects") && err.contains("local engine"),
            "{err}"
        );
        fits("s3://b/x", 1, 2_000_000_000_000, "us-east-1").unwrap();
        let err = fits("s3://b/x", 1, 2_000_000_000_000, "eu-central-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("eu-central-1"), "{err}");
        assert_eq!(mib(0), 1);
        assert_eq!(mib((1 << 20) + 1), 2);
    }
}
