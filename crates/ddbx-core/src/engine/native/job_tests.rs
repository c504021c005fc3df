//! Tests of `engine::native::job`: the export and import jobs against a canned DynamoDB
//! endpoint.

use super::*;
use crate::aws::canned::Canned;
use crate::clock::ManualClock;
use crate::progress::TableProgress;
use std::time::Duration;

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

/// What a test's jobs share: clients aimed at canned answers, an engine polling every
/// 2 s, its line for the quota, and records in a temporary folder.
struct Fixture {
    aws: Aws,
    engine: NativeEngine,
    quota: Quota,
    stop: StopSignal,
    records: Location,
    target_dir: Location,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(url: &str, clock: ManualClock) -> Self {
        let engine = NativeEngine {
            poll: Poll {
                first: Duration::from_secs(2),
                max: Duration::from_secs(60),
            },
            ..NativeEngine::default()
        };
        let dir = tempfile::tempdir().unwrap();
        Self {
            aws: Aws::for_tests(url, clock),
            quota: Quota::new(engine.max_wait, engine.poll),
            engine,
            stop: StopSignal::default(),
            records: crate::store::Storage::default()
                .open(dir.path().to_str().unwrap())
                .unwrap(),
            target_dir: folder(dir.path()),
            _dir: dir,
        }
    }

    fn jobs(&self) -> Jobs<'_> {
        Jobs {
            aws: &self.aws,
            engine: &self.engine,
            stop: &self.stop,
            quota: &self.quota,
        }
    }

    fn target(&self, format: DataFormat, bucket_owner: Option<&'static str>) -> Target<'_> {
        Target {
            folder: &self.target_dir,
            format,
            bucket_owner,
        }
    }
}

#[test]
fn tokens_follow_the_run_the_table_the_window_and_the_attempt() {
    let a = spec(None);
    assert_eq!(
        a.client_token,
        spec(None).client_token,
        "the same on every attempt"
    );
    assert!(a.client_token.ends_with("-1"), "{}", a.client_token);
    let w = spec(Some(a.to - chrono::Duration::hours(1)));
    assert_ne!(a.client_token, w.client_token);
    let other = JobSpec::new("s3://b/run2", "T", &a.table_arn, None, a.to);
    assert_ne!(a.client_token, other.client_token);
    let second = a.next_attempt();
    assert_eq!(second.attempt, 2);
    assert!(second.client_token.ends_with("-2"));
    assert_eq!(
        second.client_token.trim_end_matches("-2"),
        a.client_token.trim_end_matches("-1")
    );
    assert!(second.same_export(&a) && !w.same_export(&a));
    assert_eq!(second.next_attempt().next_attempt().attempt, 4);
    assert!(second.next_attempt().client_token.len() <= 64);
    // A record of ddbx before attempts were numbered is attempt 1.
    let old: JobRecord = serde_json::from_value(serde_json::json!({
        "table": "T", "tableArn": "a", "to": "2026-12-01T10:00:00Z",
        "clientToken": "ddbx-0123", "exportArn": "arn"
    }))
    .unwrap();
    assert_eq!(old.spec.attempt, 1);
    assert_eq!(old.spec.next_attempt().client_token, "ddbx-0123-2");
}

#[tokio::test]
async fn a_retried_start_sends_the_same_token_and_a_recorded_export_is_taken_up() {
    let canned = Canned::start(vec![
        (500, r#"{"__type":"InternalServerError","message":"injected"}"#.into()),
        (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#LimitExceededException","message":"too many exports"}"#.into()),
        (200, r#"{"ExportDescription":{"ExportArn":"arn:export/1","ExportStatus":"IN_PROGRESS"}}"#.into()),
        // Resumed: the record's export is looked at, and runs.
        (200, r#"{"ExportDescription":{"ExportArn":"arn:export/1","ExportStatus":"IN_PROGRESS"}}"#.into()),
    ])
    .await;
    let f = Fixture::new(&canned.url, ManualClock::default());
    let (jobs, records) = (f.jobs(), &f.records);
    let target = f.target(DataFormat::DynamodbJson, Some("111122223333"));
    let counters = TableProgress::new("T");
    let s = spec(None);
    let started = start(&jobs, &s, &target, records, "native-01.json", &counters)
        .await
        .unwrap();
    assert_eq!(started.arn, "arn:export/1");
    let reqs = canned.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3, "retried through a 500 and a limit");
    for (op, body) in &reqs {
        assert_eq!(op, "ExportTableToPointInTime");
        assert_eq!(body["ClientToken"], s.client_token.as_str());
        assert_eq!(body["S3BucketOwner"], "111122223333");
        assert_eq!(body["ExportType"], "FULL_EXPORT");
    }
    // Resumed: the recorded export is polled, not started again.
    let again = start(&jobs, &s, &target, records, "native-01.json", &counters)
        .await
        .unwrap();
    assert_eq!(again.arn, "arn:export/1");
    assert_eq!(
        canned.ops()[3..],
        ["DescribeExport"],
        "looked at, not started"
    );
    // An incremental window asks for its window, NEW_IMAGE.
    let w = spec(Some(s.to - chrono::Duration::minutes(30)));
    let _ = start(&jobs, &w, &target, records, "native-02.json", &counters).await;
    let (_, body) = canned.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(body["ExportType"], "INCREMENTAL_EXPORT");
    assert_eq!(
        body["IncrementalExportSpecification"]["ExportViewType"],
        "NEW_IMAGE"
    );
    assert!(body.get("ExportTime").is_none());
}

#[tokio::test]
async fn a_recorded_export_that_failed_is_started_again_with_the_next_token() {
    let canned = Canned::start(vec![
        (200, r#"{"ExportDescription":{"ExportArn":"arn:export/1","ExportStatus":"FAILED","FailureCode":"S3AccessDenied","FailureMessage":"Access Denied"}}"#.into()),
        (200, r#"{"ExportDescription":{"ExportArn":"arn:export/2","ExportStatus":"IN_PROGRESS"}}"#.into()),
        (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#ExportNotFoundException","message":"gone"}"#.into()),
        (200, r#"{"ExportDescription":{"ExportArn":"arn:export/3","ExportStatus":"IN_PROGRESS"}}"#.into()),
    ])
    .await;
    let f = Fixture::new(&canned.url, ManualClock::default());
    let (jobs, records) = (f.jobs(), &f.records);
    let counters = TableProgress::new("T");
    let s = spec(None);
    records
        .put_json(
            "native-01.json",
            &JobRecord {
                spec: s.clone(),
                export_arn: "arn:export/1".into(),
                earlier: Vec::new(),
            },
        )
        .await
        .unwrap();
    let target = f.target(DataFormat::DynamodbJson, None);
    let started = start(&jobs, &s, &target, records, "native-01.json", &counters)
        .await
        .unwrap();
    assert_eq!(started.arn, "arn:export/2");
    assert_eq!(started.spec.attempt, 2);
    assert!(started.earlier[0].contains("attempt 1 (arn:export/1): FAILED: S3AccessDenied"));
    let reqs = canned.requests.lock().unwrap().clone();
    assert_eq!(reqs[1].0, "ExportTableToPointInTime");
    assert_eq!(reqs[1].1["ClientToken"], started.spec.client_token.as_str());
    assert_ne!(started.spec.client_token, s.client_token);
    // The record now names the second attempt; one DynamoDB no longer knows is started
    // again too.
    let again = start(&jobs, &s, &target, records, "native-01.json", &counters)
        .await
        .unwrap();
    assert_eq!(
        (again.arn.as_str(), again.spec.attempt),
        ("arn:export/3", 3)
    );
    assert_eq!(again.earlier.len(), 2, "{:?}", again.earlier);
    let r: JobRecord = serde_json::from_slice(
        &records
            .get_optional(&records.join("native-01.json"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!((r.export_arn.as_str(), r.spec.attempt), ("arn:export/3", 3));
}

#[tokio::test]
async fn refusals_of_the_call_and_failed_exports_fail_with_aws_words() {
    // AWS refuses a table without point-in-time recovery at the call (fakecloud does not).
    let canned = Canned::start(vec![(
        400,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#PointInTimeRecoveryUnavailableException","message":"Point in time recovery is not enabled for table 'T'"}"#.into(),
    )])
    .await;
    let f = Fixture::new(&canned.url, ManualClock::default());
    let (jobs, records) = (f.jobs(), &f.records);
    let target = f.target(DataFormat::Ion, None);
    let counters = TableProgress::new("T");
    let err = start(&jobs, &spec(None), &target, records, "n.json", &counters)
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
    let f = Fixture::new(&canned.url, clock.clone());
    let counters = TableProgress::new("T");
    let err = wait(&f.jobs(), &spec(None), "a", &counters)
        .await
        .expect("it ended")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("FAILED: S3NoSuchBucket: The bucket does not exist"),
        "{err}"
    );
    assert_eq!(canned.ops(), vec!["DescribeExport"; 3]);
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(2), Duration::from_secs(3)],
        "the wait grows by half"
    );
    assert!(counters.state().unwrap().contains("IN_PROGRESS"));
}

#[test]
fn the_instants_dynamodb_says_it_exported_are_kept() {
    let s = spec(Some(
        DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    ));
    let at = |t: &str| {
        let t = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
    };
    let desc = ExportDescription::builder()
        .incremental_export_specification(
            IncrementalExportSpecification::builder()
                .export_from_time(at("2026-12-01T09:00:00.250Z"))
                .export_to_time(at("2026-12-01T10:00:00.250Z"))
                .build(),
        )
        .build();
    let (from, to) = exported(&s, &desc);
    assert_eq!(from.unwrap().timestamp_subsec_millis(), 250);
    assert_eq!(to.timestamp_subsec_millis(), 250);
    // Not said: what was asked.
    assert_eq!(
        exported(&s, &ExportDescription::builder().build()),
        (s.from, s.to)
    );
    let full = spec(None);
    let desc = ExportDescription::builder()
        .export_time(at("2026-12-01T09:59:59Z"))
        .build();
    assert_eq!(
        exported(&full, &desc).1,
        full.to - chrono::Duration::seconds(1)
    );
}
