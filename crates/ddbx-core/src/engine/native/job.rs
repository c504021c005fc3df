//! One ExportTableToPointInTime: started once (a ClientToken derived from the run, the
//! table and the window, so a retried or resumed request never starts a second export),
//! its ARN recorded in the run before it is polled (so `--resume` polls it rather than
//! start another), polled with backoff, and its result checked, not trusted: the manifests
//! read back and every data file they list found with the manifest's ETag (its MD5 read
//! in full with `--deep`).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    ExportFormat, ExportStatus, ExportType, ExportViewType, IncrementalExportSpecification,
    S3SseAlgorithm,
};
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::{to_smithy, NativeEngine};
use crate::aws::Aws;
use crate::format::native::ManifestFile;
use crate::format::reader::ItemReader;
use crate::format::source::{parse_manifest_files, SourceFile};
use crate::plan::DataFormat;
use crate::progress::TableProgress;
use crate::run::stop::StopSignal;
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
    /// The idempotency token.
    pub client_token: String,
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
}

impl JobSpec {
    /// A spec whose token is derived from the run, the table and the window.
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
            client_token: format!("ddbx-{}", hex::encode(h.finalize())),
        }
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

/// Polling: the first wait, growing by half each time up to the longest.
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

/// Start the export (or, with `record` from an earlier attempt, take it up), recording its
/// ARN in `records` at `name` before polling.
pub async fn start(
    aws: &Aws,
    spec: &JobSpec,
    target: &Target<'_>,
    records: &Location,
    name: &str,
) -> Result<String> {
    if let Some(b) = records.get_optional(&records.join(name)).await? {
        let r: JobRecord = serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
            file: records.url_of(&records.join(name)),
            message: format!("not an export record: {e}"),
        })?;
        if r.spec == *spec {
            tracing::info!(table = %spec.table, arn = %r.export_arn, "taking up the export an earlier attempt started");
            return Ok(r.export_arn);
        }
    }
    let bucket = target
        .folder
        .bucket
        .clone()
        .ok_or_else(|| Error::Invalid("DynamoDB exports write to S3 only".into()))?;
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
    // The token makes a repeated call the same export, so transient failures are retried.
    let out = aws
        .call(
            || format!("table {}: ExportTableToPointInTime", spec.table),
            None,
            || req.clone().send(),
        )
        .await?;
    let arn = out
        .export_description()
        .and_then(|d| d.export_arn())
        .ok_or_else(|| {
            Error::Invalid(format!(
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
            },
        )
        .await?;
    tracing::info!(table = %spec.table, %arn, from = ?spec.from, to = %spec.to, "export started");
    Ok(arn)
}

/// Poll the export until it ends; then check what it wrote.
pub async fn finish(
    aws: &Aws,
    spec: &JobSpec,
    arn: &str,
    target: &Target<'_>,
    engine: &NativeEngine,
    stop: &StopSignal,
    counters: &TableProgress,
) -> Result<Done> {
    let desc = poll_until(aws, engine.poll, stop, counters, "export", || async {
        let out = aws
            .call(
                || format!("table {}: DescribeExport {arn}", spec.table),
                None,
                || aws.dynamodb.describe_export().export_arn(arn).send(),
            )
            .await?;
        let desc = out.export_description().cloned().ok_or_else(|| {
            Error::Invalid(format!(
                "table {}: DescribeExport returned nothing",
                spec.table
            ))
        })?;
        Ok(match desc.export_status() {
            Some(ExportStatus::Completed) => Polled::Done(desc),
            Some(ExportStatus::Failed) => {
                return Err(Error::Invalid(format!(
                    "table {}: the export {arn} FAILED: {}: {}",
                    spec.table,
                    desc.failure_code().unwrap_or("no code"),
                    desc.failure_message().unwrap_or("no message")
                )))
            }
            other => Polled::Pending(other.map_or("?", |s| s.as_str()).to_string()),
        })
    })
    .await?;
    counters.set_state("checking the export".to_string());
    let summary_key = desc.export_manifest().ok_or_else(|| {
        Error::Invalid(format!(
            "table {}: the completed export {arn} names no manifest",
            spec.table
        ))
    })?;
    check(
        aws,
        spec,
        arn,
        target,
        summary_key,
        engine.deep_check,
        desc.billed_size_bytes(),
    )
    .await
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
async fn check(
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
mod tests {
    use super::*;
    use crate::aws::canned::Canned;
    use crate::clock::ManualClock;
    use crate::progress::TableProgress;

    fn spec(from: Option<DateTime<Utc>>) -> JobSpec {
        let to = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        JobSpec::new(
            "s3://b/run",
            "T",
            "arn:aws:dynamodb:us-east-1:1:table/T",
            from,
            to,
        )
    }

    fn folder(dir: &std::path::Path) -> Location {
        // The records live in a local folder; the export's target is an S3 folder by name.
        Location {
            bucket: Some("b".into()),
            ..crate::store::Storage::default()
                .open(dir.to_str().unwrap())
                .unwrap()
        }
    }

    #[test]
    fn tokens_follow_the_run_the_table_and_the_window() {
        let a = spec(None);
        assert_eq!(
            a.client_token,
            spec(None).client_token,
            "the same on every attempt"
        );
        let w = spec(Some(a.to - chrono::Duration::hours(1)));
        assert_ne!(a.client_token, w.client_token);
        let other = JobSpec::new("s3://b/run2", "T", &a.table_arn, None, a.to);
        assert_ne!(a.client_token, other.client_token);
        assert!(a.client_token.len() <= 64);
    }

    #[tokio::test]
    async fn a_retried_start_sends_the_same_token_and_a_recorded_export_is_taken_up() {
        let canned = Canned::start(vec![
            (500, r#"{"__type":"InternalServerError","message":"injected"}"#.into()),
            (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#LimitExceededException","message":"too many exports"}"#.into()),
            (200, r#"{"ExportDescription":{"ExportArn":"arn:export/1","ExportStatus":"IN_PROGRESS"}}"#.into()),
        ])
        .await;
        let aws = Aws::for_tests(&canned.url, ManualClock::default());
        let dir = tempfile::tempdir().unwrap();
        let records = crate::store::Storage::default()
            .open(dir.path().to_str().unwrap())
            .unwrap();
        let target_dir = folder(dir.path());
        let target = Target {
            folder: &target_dir,
            format: DataFormat::DynamodbJson,
            bucket_owner: Some("111122223333"),
        };
        let s = spec(None);
        let arn = start(&aws, &s, &target, &records, "native-01.json")
            .await
            .unwrap();
        assert_eq!(arn, "arn:export/1");
        let reqs = canned.requests.lock().unwrap().clone();
        assert_eq!(reqs.len(), 3, "retried through a 500 and a limit");
        for (op, body) in &reqs {
            assert_eq!(op, "ExportTableToPointInTime");
            assert_eq!(body["ClientToken"], s.client_token.as_str());
            assert_eq!(body["S3BucketOwner"], "111122223333");
            assert_eq!(body["ExportType"], "FULL_EXPORT");
        }
        // Resumed: the recorded export is polled, not started again.
        let again = start(&aws, &s, &target, &records, "native-01.json")
            .await
            .unwrap();
        assert_eq!(again, "arn:export/1");
        assert_eq!(canned.ops().len(), 3);
        // An incremental window asks for its window, NEW_IMAGE.
        let w = spec(Some(s.to - chrono::Duration::minutes(30)));
        let _ = start(&aws, &w, &target, &records, "native-02.json").await;
        let (_, body) = canned.requests.lock().unwrap().last().cloned().unwrap();
        assert_eq!(body["ExportType"], "INCREMENTAL_EXPORT");
        assert_eq!(
            body["IncrementalExportSpecification"]["ExportViewType"],
            "NEW_IMAGE"
        );
        assert!(body.get("ExportTime").is_none());
    }

    #[tokio::test]
    async fn refusals_of_the_call_and_failed_exports_fail_with_aws_words() {
        // AWS refuses a table without point-in-time recovery at the call (fakecloud does not).
        let canned = Canned::start(vec![(
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#PointInTimeRecoveryUnavailableException","message":"Point in time recovery is not enabled for table 'T'"}"#.into(),
        )])
        .await;
        let aws = Aws::for_tests(&canned.url, ManualClock::default());
        let dir = tempfile::tempdir().unwrap();
        let records = crate::store::Storage::default()
            .open(dir.path().to_str().unwrap())
            .unwrap();
        let target_dir = folder(dir.path());
        let target = Target {
            folder: &target_dir,
            format: DataFormat::Ion,
            bucket_owner: None,
        };
        let err = start(&aws, &spec(None), &target, &records, "n.json")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PointInTimeRecoveryUnavailableException") && err.contains("not enabled"),
            "{err}"
        );
        assert_eq!(canned.ops().len(), 1, "not retried");
        assert!(
            records
                .get_optional(&records.join("n.json"))
                .await
                .unwrap()
                .is_none(),
            "nothing recorded"
        );

        // Polled while IN_PROGRESS; a FAILED export names AWS's code and message.
        let canned = Canned::start(vec![
            (200, r#"{"ExportDescription":{"ExportArn":"a","ExportStatus":"IN_PROGRESS"}}"#.into()),
            (200, r#"{"ExportDescription":{"ExportArn":"a","ExportStatus":"IN_PROGRESS"}}"#.into()),
            (200, r#"{"ExportDescription":{"ExportArn":"a","ExportStatus":"FAILED","FailureCode":"S3NoSuchBucket","FailureMessage":"The bucket does not exist"}}"#.into()),
        ])
        .await;
        let clock = ManualClock::default();
        let aws = Aws::for_tests(&canned.url, clock.clone());
        let engine = NativeEngine {
            poll: Poll {
                first: std::time::Duration::from_secs(2),
                max: std::time::Duration::from_secs(60),
            },
            ..NativeEngine::default()
        };
        let counters = TableProgress::new("T");
        let err = finish(
            &aws,
            &spec(None),
            "a",
            &target,
            &engine,
            &StopSignal::default(),
            &counters,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("FAILED: S3NoSuchBucket: The bucket does not exist"),
            "{err}"
        );
        assert_eq!(canned.ops(), vec!["DescribeExport"; 3]);
        assert_eq!(
            clock.sleeps(),
            vec![
                std::time::Duration::from_secs(2),
                std::time::Duration::from_secs(3)
            ],
            "the wait grows by half"
        );
        assert!(counters.state().unwrap().contains("IN_PROGRESS"));
    }
}
