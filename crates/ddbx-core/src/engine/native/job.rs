//! One ExportTableToPointInTime: started once per attempt (a ClientToken derived from the
//! run, the table and the window, ending with the attempt's number, so a retried or
//! resumed request never starts a second export), its ARN recorded in the run before it is
//! polled (so `--resume` polls it rather than start another; one that FAILED is started
//! again as the next attempt, with the next token), polled with backoff, and its result
//! checked, not trusted: the manifests read back and every data file they list found with
//! the manifest's ETag (its MD5 read in full with `--deep`), and the instants DynamoDB
//! says it exported kept.

use aws_sdk_dynamodb::types::{
    ExportDescription, ExportFormat, ExportStatus, ExportType, ExportViewType,
    IncrementalExportSpecification, S3SseAlgorithm,
};
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::quota::Quota;
use super::{from_smithy, to_smithy, NativeEngine, Poll};
use crate::aws::Aws;
use crate::format::native::ManifestFile;
use crate::format::reader::ItemReader;
use crate::format::source::{parse_manifest_files, SourceFile};
use crate::plan::DataFormat;
use crate::progress::TableProgress;
use crate::stop::StopSignal;
use crate::store::{Encryption, Location};
use crate::{Error, Result};

/// What one export is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// The table.
    pub table: String,
    /// Its ARN.
    pub table_arn: String,
    /// A full export as of `to`, or the changes of `[from, to)`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<DateTime<Utc>>,
    /// The export time, or the window's end.
    pub to: DateTime<Utc>,
    /// Which start of this export it is, from 1 (records of ddbx before 0.4 have none: 1).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The idempotency token, ending with `-<attempt>`.
    pub client_token: String,
}

fn first_attempt() -> u32 {
    1
}

/// The record of a started export (`_export/<table>/native-NN.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// What was asked.
    #[serde(flatten)]
    pub spec: JobSpec,
    /// The export's ARN.
    pub export_arn: String,
    /// The attempts before this one that ended without an export, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub earlier: Vec<String>,
}

/// A completed export, checked.
#[derive(Debug, Clone)]
pub struct Done {
    /// Its ARN.
    pub export_arn: String,
    /// Its folder (`<table folder>/AWSDynamoDB/<export id>`).
    pub folder: Location,
    /// Items (or, incremental, changes) the manifests list.
    pub items: u64,
    /// Bytes DynamoDB billed for.
    pub billed_bytes: u64,
    /// Data files.
    pub files: u64,
    /// The window's start DynamoDB says it exported (incremental).
    pub from: Option<DateTime<Utc>>,
    /// The instant (or window's end) DynamoDB says it exported.
    pub to: DateTime<Utc>,
}

impl JobSpec {
    /// The first attempt's spec, whose token is derived from the run, the table and the
    /// window.
    pub fn new(
        run_root: &str,
        table: &str,
        table_arn: &str,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Self {
        let mut h = Md5::new();
        h.update(format!("ddbx|{run_root}|{table}|{from:?}|{to}").as_bytes());
        Self {
            table: table.to_string(),
            table_arn: table_arn.to_string(),
            from,
            to,
            attempt: 1,
            client_token: format!("ddbx-{}-1", hex::encode(h.finalize())),
        }
    }

    /// The same export asked again: the next attempt, with the next token.
    pub fn next_attempt(&self) -> Self {
        let base = self
            .client_token
            .strip_suffix(&format!("-{}", self.attempt))
            .unwrap_or(&self.client_token);
        Self {
            attempt: self.attempt + 1,
            client_token: format!("{base}-{}", self.attempt + 1),
            ..self.clone()
        }
    }

    /// Whether `other` asks for the same export (whatever the attempt).
    pub fn same_export(&self, other: &JobSpec) -> bool {
        (&self.table, &self.table_arn, self.from, self.to)
            == (&other.table, &other.table_arn, other.from, other.to)
    }
}

/// Where the job's export goes and how.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The table's folder of the run (the export's S3Prefix).
    pub folder: &'a Location,
    /// DynamoDB JSON or Ion.
    pub format: DataFormat,
    /// The bucket's owner, for another account's bucket.
    pub bucket_owner: Option<&'a str>,
}

/// What every job of a run shares: its clients, its settings, its stop and its line for
/// the account's quota.
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'a> {
    /// The run's clients.
    pub aws: &'a Aws,
    /// The engine's settings.
    pub engine: &'a NativeEngine,
    /// Raised to stop.
    pub stop: &'a StopSignal,
    /// Where a start refused for the quota waits.
    pub quota: &'a Quota,
}

/// An export started (or taken up).
#[derive(Debug, Clone)]
pub struct Started {
    /// Its ARN.
    pub arn: String,
    /// What it was asked, its attempt's token included.
    pub spec: JobSpec,
    /// Earlier attempts that ended without an export, each with why.
    pub earlier: Vec<String>,
}

/// Start the export (or take up the one an earlier attempt of the run recorded in
/// `records` at `name`, unless it ended without an export: it is then started again, as
/// the next attempt), recording its ARN before polling.
pub async fn start(
    jobs: &Jobs<'_>,
    spec: &JobSpec,
    target: &Target<'_>,
    records: &Location,
    name: &str,
    counters: &TableProgress,
) -> Result<Started> {
    let aws = jobs.aws;
    let mut spec = spec.clone();
    let mut earlier = Vec::new();
    if let Some(b) = records.get_optional(&records.join(name)).await? {
        let r: JobRecord = serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
            file: records.url_of(&records.join(name)),
            message: format!("not an export record: {e}"),
        })?;
        if r.spec.same_export(&spec) {
            match ended(aws, &r).await? {
                None => {
                    tracing::info!(table = %spec.table, arn = %r.export_arn, "taking up the export an earlier attempt started");
                    return Ok(Started {
                        arn: r.export_arn,
                        spec: r.spec,
                        earlier: r.earlier,
                    });
                }
                Some(why) => {
                    tracing::warn!(table = %spec.table, arn = %r.export_arn, %why, "the export of an earlier attempt ended without an export: starting it again");
                    earlier = r.earlier;
                    earlier.push(format!(
                        "attempt {} ({}): {why}",
                        r.spec.attempt, r.export_arn
                    ));
                    spec = r.spec.next_attempt();
                }
            }
        }
    }
    let req = request(aws, &spec, target)?;
    let policy = Quota::start_policy(aws);
    let quick = Aws {
        retry: policy,
        ..aws.clone()
    };
    // The token makes a repeated call the same export, so transient failures are retried.
    let out = jobs
        .quota
        .start(aws, jobs.stop, counters, "export", || {
            quick.call(
                || format!("table {}: ExportTableToPointInTime", spec.table),
                None,
                || req.clone().send(),
            )
        })
        .await?;
    let arn = out
        .export_description()
        .and_then(|d| d.export_arn())
        .ok_or_else(|| {
            Error::Failed(format!(
                "table {}: ExportTableToPointInTime returned no ARN",
                spec.table
            ))
        })?
        .to_string();
    records
        .put_json(
            name,
            &JobRecord {
                spec: spec.clone(),
                export_arn: arn.clone(),
                earlier: earlier.clone(),
            },
        )
        .await?;
    tracing::info!(table = %spec.table, %arn, from = ?spec.from, to = %spec.to, attempt = spec.attempt, "export started");
    Ok(Started { arn, spec, earlier })
}

/// Whether a recorded export ended without an export (FAILED, or unknown to DynamoDB),
/// and why; `None` while it runs or once it COMPLETED.
async fn ended(aws: &Aws, r: &JobRecord) -> Result<Option<String>> {
    let arn = &r.export_arn;
    match aws
        .call(
            || format!("table {}: DescribeExport {arn}", r.spec.table),
            None,
            || aws.dynamodb.describe_export().export_arn(arn).send(),
        )
        .await
    {
        Ok(out) => Ok(out
            .export_description()
            .and_then(|d| (d.export_status() == Some(&ExportStatus::Failed)).then(|| failure(d)))),
        Err(Error::Aws {
            code: Some(c),
            message,
            ..
        }) if c == "ExportNotFoundException" => Ok(Some(format!("{c}: {message}"))),
        Err(e) => Err(e),
    }
}

fn failure(d: &ExportDescription) -> String {
    format!(
        "FAILED: {}: {}",
        d.failure_code().unwrap_or("no code"),
        d.failure_message().unwrap_or("no message")
    )
}

type ExportRequest =
    aws_sdk_dynamodb::operation::export_table_to_point_in_time::builders::ExportTableToPointInTimeFluentBuilder;

/// The ExportTableToPointInTime call of `spec`.
fn request(aws: &Aws, spec: &JobSpec, target: &Target<'_>) -> Result<ExportRequest> {
    let bucket = target
        .folder
        .bucket
        .clone()
        .ok_or_else(|| Error::Usage("DynamoDB exports write to S3 only".into()))?;
    let prefix = target.folder.prefix.to_string();
    let mut req = aws
        .dynamodb
        .export_table_to_point_in_time()
        .table_arn(&spec.table_arn)
        .s3_bucket(bucket)
        .s3_prefix(prefix)
        .set_s3_bucket_owner(target.bucket_owner.map(str::to_string))
        .client_token(&spec.client_token)
        .export_format(match target.format {
            DataFormat::Ion => ExportFormat::Ion,
            _ => ExportFormat::DynamodbJson,
        });
    req = match &target.folder.encryption {
        Some(Encryption::S3) => req.s3_sse_algorithm(S3SseAlgorithm::Aes256),
        Some(Encryption::Kms(key)) => req
            .s3_sse_algorithm(S3SseAlgorithm::Kms)
            .set_s3_sse_kms_key_id(key.clone()),
        None => req,
    };
    req = match spec.from {
        None => req
            .export_type(ExportType::FullExport)
            .export_time(to_smithy(spec.to)),
        Some(from) => req
            .export_type(ExportType::IncrementalExport)
            .incremental_export_specification(
                IncrementalExportSpecification::builder()
                    .export_from_time(to_smithy(from))
                    .export_to_time(to_smithy(spec.to))
                    .export_view_type(ExportViewType::NewImage)
                    .build(),
            ),
    };
    Ok(req)
}

/// Poll the export until it ends. The outer error is a failure to learn how it is (it
/// may still run); the inner one, an export that ended FAILED.
pub async fn wait(
    jobs: &Jobs<'_>,
    spec: &JobSpec,
    arn: &str,
    counters: &TableProgress,
) -> Result<Result<ExportDescription>> {
    let aws = jobs.aws;
    poll_until(
        aws,
        jobs.engine.poll,
        jobs.stop,
        counters,
        "export",
        || async {
            let out = aws
                .call(
                    || format!("table {}: DescribeExport {arn}", spec.table),
                    None,
                    || aws.dynamodb.describe_export().export_arn(arn).send(),
                )
                .await?;
            let desc = out.export_description().cloned().ok_or_else(|| {
                Error::Failed(format!(
                    "table {}: DescribeExport returned nothing",
                    spec.table
                ))
            })?;
            Ok(match desc.export_status() {
                Some(ExportStatus::Completed) => Polled::Done(Ok(desc)),
                Some(ExportStatus::Failed) => Polled::Done(Err(Error::Failed(format!(
                    "table {}: the export {arn} {}",
                    spec.table,
                    failure(&desc)
                )))),
                other => Polled::Pending(other.map_or("?", |s| s.as_str()).to_string()),
            })
        },
    )
    .await
}

/// A COMPLETED export checked: its manifests read back, every data file found, and the
/// instants it was made for.
pub async fn check(
    jobs: &Jobs<'_>,
    spec: &JobSpec,
    desc: &ExportDescription,
    target: &Target<'_>,
    counters: &TableProgress,
) -> Result<Done> {
    let arn = desc.export_arn().unwrap_or_default();
    counters.set_state("checking the export".to_string());
    let summary_key = desc.export_manifest().ok_or_else(|| {
        Error::Failed(format!(
            "table {}: the completed export {arn} names no manifest",
            spec.table
        ))
    })?;
    let mut done = check_manifests(
        jobs.aws,
        spec,
        arn,
        target,
        summary_key,
        jobs.engine.deep_check,
        desc.billed_size_bytes(),
    )
    .await?;
    if let Some(n) = desc.item_count().filter(|n| *n as u64 != done.items) {
        return Err(Error::Failed(format!(
            "table {}: DescribeExport says the export {arn} holds {n} items, its manifests {}",
            spec.table, done.items
        )));
    }
    (done.from, done.to) = exported(spec, desc);
    if (done.from, done.to) != (spec.from, spec.to) {
        tracing::warn!(table = %spec.table, %arn, asked_from = ?spec.from, asked_to = %spec.to, from = ?done.from, to = %done.to, "DynamoDB exported other instants than were asked: the chain keeps DynamoDB's");
    }
    Ok(done)
}

/// The window (incremental) or instant (full) DynamoDB says it exported; what was asked
/// where it does not say.
fn exported(spec: &JobSpec, desc: &ExportDescription) -> (Option<DateTime<Utc>>, DateTime<Utc>) {
    let incremental = desc.incremental_export_specification();
    match spec.from {
        None => (
            None,
            desc.export_time().and_then(from_smithy).unwrap_or(spec.to),
        ),
        Some(asked) => (
            incremental
                .and_then(|i| i.export_from_time())
                .and_then(from_smithy)
                .or(Some(asked)),
            incremental
                .and_then(|i| i.export_to_time())
                .and_then(from_smithy)
                .unwrap_or(spec.to),
        ),
    }
}

/// What one look at a job says.
pub(super) enum Polled<T> {
    /// It ended well, with this.
    Done(T),
    /// Still going, in this state.
    Pending(String),
}

/// Look at a job (`look`) until it is done: first after `poll.first`, each wait half
/// longer than the last up to `poll.max`, the job's state on the table's display line.
pub(super) async fn poll_until<T, F, Fut>(
    aws: &Aws,
    poll: Poll,
    stop: &StopSignal,
    counters: &TableProgress,
    what: &str,
    mut look: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Polled<T>>>,
{
    let started = aws.clock.now();
    let mut wait = poll.first;
    loop {
        match look().await? {
            Polled::Done(v) => return Ok(v),
            Polled::Pending(state) => {
                let waited = aws.clock.now().duration_since(started).as_secs();
                counters.set_state(format!(
                    "{what} {state} for {}m{:02}s",
                    waited / 60,
                    waited % 60
                ));
            }
        }
        tokio::select! {
            _ = aws.clock.sleep(wait) => {}
            _ = stop.stopped() => return Err(Error::Interrupted),
        }
        wait = wait.mul_f64(1.5).min(poll.max);
    }
}

/// Read the export's manifests back and find every data file they list.
async fn check_manifests(
    aws: &Aws,
    spec: &JobSpec,
    arn: &str,
    target: &Target<'_>,
    summary_key: &str,
    deep: bool,
    billed: Option<i64>,
) -> Result<Done> {
    let bucket = aws.storage.open(&format!(
        "s3://{}",
        target.folder.bucket.as_deref().unwrap_or_default()
    ))?;
    let summary_path = object_store::path::Path::from(summary_key);
    let summary_url = bucket.url_of(&summary_path);
    let summary_bytes =
        bucket
            .get_optional(&summary_path)
            .await?
            .ok_or_else(|| Error::Corrupt {
                file: summary_url.clone(),
                message: format!(
                    "the export {arn} says it COMPLETED, but its manifest-summary.json is missing"
                ),
            })?;
    let summary: serde_json::Value =
        serde_json::from_slice(&summary_bytes).map_err(|e| Error::Corrupt {
            file: summary_url.clone(),
            message: format!("not a manifest summary: {e}"),
        })?;
    let files_key = summary["manifestFilesS3Key"]
        .as_str()
        .ok_or_else(|| Error::Corrupt {
            file: summary_url.clone(),
            message: "no manifestFilesS3Key".into(),
        })?;
    let files_path = object_store::path::Path::from(files_key);
    let files_url = bucket.url_of(&files_path);
    let files_bytes = bucket
        .get_optional(&files_path)
        .await?
        .ok_or_else(|| Error::Corrupt {
            file: files_url.clone(),
            message: "missing".into(),
        })?;
    let entries = parse_manifest_files(&files_url, &files_bytes)?;
    let mut items = 0;
    for (entry, _) in &entries {
        check_file(&bucket, entry, target.format, deep, spec.from.is_some()).await?;
        items += entry.item_count;
    }
    if let Some(n) = summary["itemCount"].as_u64() {
        if n != items {
            return Err(Error::Corrupt {
                file: summary_url,
                message: format!("says {n} items, but its data files' entries add up to {items}"),
            });
        }
    }
    let folder = match summary_key.rsplit_once('/') {
        Some((dir, _)) => bucket.child(dir),
        None => bucket.clone(),
    };
    Ok(Done {
        export_arn: arn.to_string(),
        folder,
        items,
        billed_bytes: billed.unwrap_or(0).max(0) as u64,
        files: entries.len() as u64,
        from: spec.from,
        to: spec.to,
    })
}

/// A data file the manifest lists: there, with the manifest's ETag; with `deep`, read in
/// full (its MD5 and item count against the manifest's).
async fn check_file(
    bucket: &Location,
    entry: &ManifestFile,
    format: DataFormat,
    deep: bool,
    changes: bool,
) -> Result<()> {
    let path = object_store::path::Path::from(entry.data_file_s3_key.as_str());
    let url = bucket.url_of(&path);
    let meta = bucket.store.head(&path).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => Error::Corrupt {
            file: url.clone(),
            message: "a data file the export's manifest lists is missing".into(),
        },
        e => Error::store(&url, e),
    })?;
    if let (Some(want), Some(got)) = (entry.etag.as_deref(), meta.e_tag.as_deref()) {
        if want.trim_matches('"') != got.trim_matches('"') {
            return Err(Error::Corrupt {
                file: url,
                message: format!("ETag {got} differs from the manifest's {want}"),
            });
        }
    }
    if deep {
        let file = SourceFile {
            path,
            url,
            md5: Some(entry.md5_checksum.clone()),
            items: Some(entry.item_count),
        };
        let mut r = ItemReader::open(bucket, &file, format)
            .await?
            .changes(changes);
        while r.next_record().await?.is_some() {}
    }
    Ok(())
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
