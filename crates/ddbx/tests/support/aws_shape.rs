//! What AWS's export and import services do that fakecloud does not, as a proxy in front
//! of fakecloud's DynamoDB (S3 stays fakecloud's own, which the proxy also writes to).
//! Written from AWS's API reference and output-format pages and the real AWS export pair
//! the native audit read (`docs/research/native-audit.md`), not from ddbx's code:
//!
//! - A job takes its time: DescribeExport and DescribeImport say IN_PROGRESS for the
//!   first polls of each job (and for as long as a test holds its table's jobs).
//! - ClientTokens are idempotent: the same token with the same parameters is the same
//!   job (the service is not asked again); with other parameters it is refused
//!   (ExportConflictException for exports, IdempotentParameterMismatchException for
//!   imports).
//! - Quotas: LimitExceededException for the next N starts, and while as many jobs as the
//!   quota allows are in flight.
//! - LatestRestorableDateTime trails the clock by five minutes, and a time after it is
//!   refused at the call (InvalidExportTimeException), as is a table without
//!   point-in-time recovery (PointInTimeRecoveryUnavailableException): fakecloud accepts
//!   both and fails (or not) later.
//! - Output as AWS writes it: several data files per export and an empty one (an empty
//!   partition), uploaded in parts (ETags `…-1`), `manifest-files.md5` and
//!   `manifest-summary.md5` (base64 MD5s), incremental data in the `AWSDynamoDB/data/`
//!   folder its prefix's incremental exports share, the incremental summary at version
//!   2023-08-01 without exportTime, the full one without exportType.
//! - And faults a test asks for: an export that FAILS, an ImportTable refusing a KMS key,
//!   an answer lost after the call took effect, a key with two records in one window.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use md5::{Digest, Md5};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::fault_proxy::{ddb_error, find, forward, read_message, response, with_body};

/// What the stand-in does; a test may change it while it runs ([`AwsShape::knobs`]).
#[derive(Debug, Clone)]
pub struct Knobs {
    /// DescribeExport and DescribeImport say IN_PROGRESS this many times for each job.
    pub polls_in_progress: u32,
    /// The jobs of these tables (an export's table, an import's target) say IN_PROGRESS
    /// while they are listed.
    pub hold: HashSet<String>,
    /// The next this many calls that start a job are refused with LimitExceededException.
    pub refuse_starts: u32,
    /// Exports in flight at once, at most (more are refused with LimitExceededException).
    pub max_exports: usize,
    /// Imports in flight at once, at most.
    pub max_imports: usize,
    /// How far LatestRestorableDateTime trails the service's clock.
    pub restorable_lag_seconds: f64,
    /// The next export of each of these tables FAILS (S3AccessDenied), this many times.
    pub fail_exports: HashMap<String, u32>,
    /// The next import into each of these tables FAILS, this many times (the table it
    /// made is left, as an import that failed part-way leaves it).
    pub fail_imports: HashMap<String, u32>,
    /// Data files an export's items are spread over (an empty one is added).
    pub data_files: usize,
    /// An incremental export gets, in its last data file, an older record (another image,
    /// an earlier WriteTimestampMicros) of its first record's key.
    pub duplicate_in_window: bool,
    /// ImportTable naming this KMS key is refused, as AWS refuses a key this account may
    /// not use.
    pub refuse_kms_key: Option<String>,
    /// ImportTable into these tables takes effect, and its answer never comes.
    pub lose_import_answer: HashSet<String>,
    /// The answer to the next ExportTableToPointInTime is lost after the call took effect.
    pub lose_next_export_answer: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            polls_in_progress: 2,
            hold: HashSet::new(),
            refuse_starts: 0,
            max_exports: 300,
            max_imports: 50,
            restorable_lag_seconds: 300.0,
            fail_exports: HashMap::new(),
            fail_imports: HashMap::new(),
            data_files: 3,
            duplicate_in_window: false,
            refuse_kms_key: None,
            lose_import_answer: HashSet::new(),
            lose_next_export_answer: false,
        }
    }
}

/// One job the stand-in knows.
#[derive(Debug, Clone)]
struct Job {
    /// The start call's parameters, less its token.
    params: Value,
    /// The export's table, or the import's target.
    table: String,
    /// Its description as the start call answered.
    started: Value,
    polls: u32,
    ended: bool,
    fails: bool,
    /// Items, once its output was reshaped.
    items: Option<u64>,
}

/// What the stand-in keeps.
#[derive(Default)]
pub struct State {
    knobs: Mutex<Knobs>,
    /// Jobs by ARN, and their ARNs by ClientToken.
    jobs: Mutex<HashMap<String, Job>>,
    tokens: Mutex<HashMap<String, String>>,
    /// Every start call: (operation, table, ClientToken), in order.
    pub starts: Mutex<Vec<(String, String, String)>>,
    /// Start calls the service was asked (not answered by the stand-in).
    pub forwarded_starts: Mutex<Vec<(String, String)>>,
    /// LimitExceededException answers given.
    pub refusals: Mutex<u64>,
    /// Operations seen, in order.
    pub calls: Mutex<Vec<String>>,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    reshaping: tokio::sync::Mutex<()>,
    upstream: String,
    url: String,
}

/// A running stand-in.
pub struct AwsShape {
    /// `http://127.0.0.1:PORT`: DynamoDB for ddbx.
    pub url: String,
    /// What it keeps.
    pub state: Arc<State>,
}

impl AwsShape {
    /// Start one in front of fakecloud at `fakecloud` (`http://127.0.0.1:PORT`).
    pub async fn start(fakecloud: &str, knobs: Knobs) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            knobs: Mutex::new(knobs),
            upstream: fakecloud.trim_start_matches("http://").to_string(),
            url: fakecloud.to_string(),
            ..State::default()
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, &s).await;
                });
            }
        });
        Self { url, state }
    }

    /// Its knobs, to change.
    pub fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.state.knobs.lock().unwrap()
    }

    /// The ClientTokens of the start calls `op` (`ExportTableToPointInTime`, `ImportTable`)
    /// of `table`, in order.
    pub fn tokens(&self, op: &str, table: &str) -> Vec<String> {
        self.state
            .starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, t, _)| o == op && t == table)
            .map(|(_, _, token)| token.clone())
            .collect()
    }

    /// How many start calls `op` of `table` reached the service.
    pub fn forwarded(&self, op: &str, table: &str) -> usize {
        self.state
            .forwarded_starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, t)| o == op && t == table)
            .count()
    }

    /// How many calls of `op` it saw.
    pub fn count(&self, op: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|o| *o == op)
            .count()
    }

    /// LimitExceededException answers given.
    pub fn refusals(&self) -> u64 {
        *self.state.refusals.lock().unwrap()
    }
}

/// What the stand-in does with one call.
enum Reply {
    Send(Vec<u8>),
    /// The call took effect; the answer is lost (the connection closes).
    Lose,
    /// The call took effect; no answer ever comes (until the client goes away).
    Hang,
}

async fn serve(mut conn: TcpStream, s: &State) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_message(&mut conn, &mut buf).await? {
        let op = req
            .head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("x-amz-target")
                    .then(|| v.trim().rsplit('.').next().unwrap_or("").to_string())
            })
            .unwrap_or_default();
        s.calls.lock().unwrap().push(op.clone());
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let reply = match op.as_str() {
            "ExportTableToPointInTime" => start_export(s, &req.head, &body).await?,
            "ImportTable" => start_import(s, &req.head, &body).await?,
            "DescribeExport" => describe(s, &req.head, &req.body, &body, "Export").await?,
            "DescribeImport" => describe(s, &req.head, &req.body, &body, "Import").await?,
            "DescribeContinuousBackups" | "UpdateContinuousBackups" => {
                let resp = forward(&s.upstream, &with_body(&req.head, &req.body)).await?;
                Reply::Send(lagged(s, resp))
            }
            _ => Reply::Send(forward(&s.upstream, &with_body(&req.head, &req.body)).await?),
        };
        match reply {
            Reply::Send(bytes) => conn.write_all(&bytes).await?,
            Reply::Lose => return Ok(()),
            Reply::Hang => {
                let mut byte = [0u8; 1];
                let _ = conn.read(&mut byte).await;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A response's head and JSON body.
fn split(resp: &[u8]) -> (String, Value) {
    let end = find(resp, b"\r\n\r\n").unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    let body = serde_json::from_slice(resp.get(end + 4..).unwrap_or_default()).unwrap_or_default();
    (head, body)
}

fn ok(body: &Value) -> Vec<u8> {
    response("200 OK", &body.to_string())
}

fn bad(code: &str, message: &str) -> Reply {
    Reply::Send(ddb_error("400 Bad Request", code, message))
}

/// The same request, as another operation with another body (fakecloud checks no
/// signature).
fn call_as(head: &str, op: &str, body: &Value) -> Vec<u8> {
    let head: Vec<String> = head
        .lines()
        .map(|l| match l.split_once(':') {
            Some((k, _)) if k.trim().eq_ignore_ascii_case("x-amz-target") => {
                format!("{k}: DynamoDB_20120810.{op}")
            }
            _ => l.to_string(),
        })
        .collect();
    with_body(&head.join("\r\n"), body.to_string().as_bytes())
}

/// DescribeContinuousBackups's answer with LatestRestorableDateTime behind the clock.
fn lagged(s: &State, resp: Vec<u8>) -> Vec<u8> {
    let (head, mut body) = split(&resp);
    let lag = s.knobs.lock().unwrap().restorable_lag_seconds;
    let d = &mut body["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"];
    match d["LatestRestorableDateTime"].as_f64() {
        Some(t) if head.contains(" 200 ") => {
            d["LatestRestorableDateTime"] = json!(t - lag);
            with_body(&head, body.to_string().as_bytes())
        }
        _ => resp,
    }
}

/// A start the quota refuses, if any (counted).
fn over_quota(s: &State, kind: &str) -> Option<Reply> {
    let mut k = s.knobs.lock().unwrap();
    let in_flight = s
        .jobs
        .lock()
        .unwrap()
        .values()
        .filter(|j| !j.ended && j.params.get(kind).is_some())
        .count();
    let most = if kind == "TableArn" {
        k.max_exports
    } else {
        k.max_imports
    };
    let refuse = if k.refuse_starts > 0 {
        k.refuse_starts -= 1;
        true
    } else {
        in_flight >= most
    };
    refuse.then(|| {
        *s.refusals.lock().unwrap() += 1;
        bad(
            "LimitExceededException",
            "There is a limit on the number of concurrent export or import jobs in the account (stand-in)",
        )
    })
}

/// A start call with a token seen before: the same job, or a conflict.
fn seen_token(s: &State, token: &str, params: &Value, conflict: &str, what: &str) -> Option<Reply> {
    let arn = s.tokens.lock().unwrap().get(token).cloned()?;
    let jobs = s.jobs.lock().unwrap();
    let job = jobs.get(&arn)?;
    Some(if job.params == *params {
        Reply::Send(ok(&json!({ what: job.started })))
    } else {
        bad(
            conflict,
            "The same client token was used with different parameters (stand-in)",
        )
    })
}

/// Whether a job of `table` is one of those asked to fail (counted down).
fn take_one(counts: &mut HashMap<String, u32>, table: &str) -> bool {
    match counts.get_mut(table) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

fn params_of(body: &Value) -> Value {
    let mut p = body.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("ClientToken");
    }
    p
}

async fn start_export(s: &State, head: &str, body: &Value) -> std::io::Result<Reply> {
    let token = body["ClientToken"].as_str().unwrap_or_default().to_string();
    let arn = body["TableArn"].as_str().unwrap_or_default().to_string();
    let table = arn.rsplit('/').next().unwrap_or_default().to_string();
    s.starts.lock().unwrap().push((
        "ExportTableToPointInTime".into(),
        table.clone(),
        token.clone(),
    ));
    let params = params_of(body);
    if let Some(r) = seen_token(
        s,
        &token,
        &params,
        "ExportConflictException",
        "ExportDescription",
    ) {
        return Ok(r);
    }
    if let Some(r) = over_quota(s, "TableArn") {
        return Ok(r);
    }
    // AWS refuses these at the call; fakecloud fails the export later, or not at all.
    let resp = forward(
        &s.upstream,
        &call_as(
            head,
            "DescribeContinuousBackups",
            &json!({ "TableName": table }),
        ),
    )
    .await?;
    let (_, pitr) = split(&lagged(s, resp));
    let d = &pitr["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"];
    if d["PointInTimeRecoveryStatus"] != "ENABLED" {
        return Ok(bad(
            "PointInTimeRecoveryUnavailableException",
            &format!("Point in time recovery is not enabled for table '{table}'"),
        ));
    }
    let latest = d["LatestRestorableDateTime"].as_f64().unwrap_or(0.0);
    let asked = body["ExportTime"]
        .as_f64()
        .or(body["IncrementalExportSpecification"]["ExportToTime"].as_f64());
    if asked.is_some_and(|t| t > latest + 0.001) {
        return Ok(bad(
            "InvalidExportTimeException",
            "The specified ExportTime is outside of the point in time recovery window",
        ));
    }
    let lose = std::mem::take(&mut s.knobs.lock().unwrap().lose_next_export_answer);
    let resp = forward(&s.upstream, &with_body(head, body.to_string().as_bytes())).await?;
    let (h, out) = split(&resp);
    if let (true, Some(arn)) = (
        h.contains(" 200 "),
        out["ExportDescription"]["ExportArn"].as_str(),
    ) {
        let fails = take_one(&mut s.knobs.lock().unwrap().fail_exports, &table);
        s.forwarded_starts
            .lock()
            .unwrap()
            .push(("ExportTableToPointInTime".into(), table.clone()));
        s.tokens.lock().unwrap().insert(token, arn.to_string());
        s.jobs.lock().unwrap().insert(
            arn.to_string(),
            Job {
                params,
                table,
                started: out["ExportDescription"].clone(),
                polls: 0,
                ended: false,
                fails,
                items: None,
            },
        );
    }
    Ok(if lose { Reply::Lose } else { Reply::Send(resp) })
}

async fn start_import(s: &State, head: &str, body: &Value) -> std::io::Result<Reply> {
    let token = body["ClientToken"].as_str().unwrap_or_default().to_string();
    let params = body
        .get("TableCreationParameters")
        .cloned()
        .unwrap_or_default();
    let table = params["TableName"].as_str().unwrap_or_default().to_string();
    s.starts
        .lock()
        .unwrap()
        .push(("ImportTable".into(), table.clone(), token.clone()));
    let all = params_of(body);
    if let Some(r) = seen_token(
        s,
        &token,
        &all,
        "IdempotentParameterMismatchException",
        "ImportTableDescription",
    ) {
        return Ok(r);
    }
    let refused_key = s.knobs.lock().unwrap().refuse_kms_key.clone();
    if let Some(key) = refused_key {
        if params["SSESpecification"]["KMSMasterKeyId"] == key.as_str() {
            return Ok(bad(
                "ValidationException",
                &format!("KMS key {key} is not accessible to this account: kms:DescribeKey denied (stand-in)"),
            ));
        }
    }
    if let Some(r) = over_quota(s, "S3BucketSource") {
        return Ok(r);
    }
    let lose = s.knobs.lock().unwrap().lose_import_answer.contains(&table);
    let resp = forward(&s.upstream, &with_body(head, body.to_string().as_bytes())).await?;
    let (h, out) = split(&resp);
    if let (true, Some(arn)) = (
        h.contains(" 200 "),
        out["ImportTableDescription"]["ImportArn"].as_str(),
    ) {
        let fails = take_one(&mut s.knobs.lock().unwrap().fail_imports, &table);
        s.forwarded_starts
            .lock()
            .unwrap()
            .push(("ImportTable".into(), table.clone()));
        s.tokens.lock().unwrap().insert(token, arn.to_string());
        s.jobs.lock().unwrap().insert(
            arn.to_string(),
            Job {
                params: all,
                table,
                started: out["ImportTableDescription"].clone(),
                polls: 0,
                ended: false,
                fails,
                items: None,
            },
        );
    }
    Ok(if lose { Reply::Hang } else { Reply::Send(resp) })
}

/// DescribeExport or DescribeImport (`kind`): IN_PROGRESS while the job takes its time
/// or is held; FAILED when asked; else the service's answer, an export's output first
/// made AWS's shape.
async fn describe(
    s: &State,
    head: &str,
    raw: &[u8],
    body: &Value,
    kind: &str,
) -> std::io::Result<Reply> {
    let arn = body[format!("{kind}Arn")]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let what = if kind == "Export" {
        "ExportDescription"
    } else {
        "ImportTableDescription"
    };
    let status = format!("{kind}Status");
    let pending = {
        let knobs = s.knobs.lock().unwrap();
        let mut jobs = s.jobs.lock().unwrap();
        match jobs.get_mut(&arn) {
            None => None,
            Some(job) if knobs.hold.contains(&job.table) => Some(job.started.clone()),
            Some(job) if !job.ended && job.polls < knobs.polls_in_progress => {
                job.polls += 1;
                Some(job.started.clone())
            }
            Some(job) if job.fails => {
                job.ended = true;
                let mut d = job.started.clone();
                d[&status] = json!("FAILED");
                d["FailureCode"] = json!("S3AccessDenied");
                d["FailureMessage"] = json!("Access Denied (stand-in)");
                return Ok(Reply::Send(ok(&json!({ what: d }))));
            }
            Some(_) => Some(Value::Null),
        }
    };
    match pending {
        Some(Value::Null) | None => {}
        Some(mut d) => {
            d[&status] = json!("IN_PROGRESS");
            return Ok(Reply::Send(ok(&json!({ what: d }))));
        }
    }
    let resp = forward(&s.upstream, &with_body(head, raw)).await?;
    let (h, mut out) = split(&resp);
    let state = out[what][&status].as_str().unwrap_or_default().to_string();
    if !h.contains(" 200 ") || state == "IN_PROGRESS" || pending.is_none() {
        return Ok(Reply::Send(resp));
    }
    if kind == "Export" && state == "COMPLETED" {
        let _one = s.reshaping.lock().await;
        let done = s.jobs.lock().unwrap().get(&arn).and_then(|j| j.items);
        let items = match done {
            Some(n) => n,
            None => match reshape(s, &out[what]).await {
                Ok(n) => n,
                Err(e) => panic!("the stand-in could not reshape {arn}: {e}"),
            },
        };
        out[what]["ItemCount"] = json!(items);
        if let Some(job) = s.jobs.lock().unwrap().get_mut(&arn) {
            job.items = Some(items);
        }
    }
    if let Some(job) = s.jobs.lock().unwrap().get_mut(&arn) {
        job.ended = true;
    }
    Ok(Reply::Send(with_body(&h, out.to_string().as_bytes())))
}

fn store(s: &State, bucket: &str) -> Arc<dyn ObjectStore> {
    s.stores
        .lock()
        .unwrap()
        .entry(bucket.to_string())
        .or_insert_with(|| {
            Arc::new(
                AmazonS3Builder::new()
                    .with_endpoint(&s.url)
                    .with_allow_http(true)
                    .with_bucket_name(bucket)
                    .with_region("us-east-1")
                    .with_access_key_id("test")
                    .with_secret_access_key("test")
                    .build()
                    .unwrap(),
            )
        })
        .clone()
}

fn b64_md5(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

fn gzip(lines: &[String]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in lines {
        e.write_all(l.as_bytes()).unwrap();
        e.write_all(b"\n").unwrap();
    }
    e.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// An earlier write of the key of `line` (a DynamoDB JSON change): another image, a
/// WriteTimestampMicros a millisecond before.
fn older(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    let micros: u64 = v["Metadata"]["WriteTimestampMicros"]["N"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .expect("fakecloud stamps its change records");
    v["Metadata"]["WriteTimestampMicros"]["N"] = json!((micros - 1000).to_string());
    let mut image = v
        .get("NewImage")
        .cloned()
        .unwrap_or_else(|| v["Keys"].clone());
    image["stale"] = json!({"S": "an earlier write, in the same window"});
    v["NewImage"] = image;
    v.to_string()
}

async fn put_parts(store: &dyn ObjectStore, key: &str, bytes: Vec<u8>) -> Result<String, String> {
    let mut up = store
        .put_multipart(&Path::from(key))
        .await
        .map_err(|e| e.to_string())?;
    up.put_part(PutPayload::from(bytes))
        .await
        .map_err(|e| e.to_string())?;
    let done = up.complete().await.map_err(|e| e.to_string())?;
    Ok(done.e_tag.unwrap_or_default().trim_matches('"').to_string())
}

/// Rewrite a completed export's output in AWS's shape; its item count.
async fn reshape(s: &State, desc: &Value) -> Result<u64, String> {
    let (files, duplicate) = {
        let k = s.knobs.lock().unwrap();
        (k.data_files.max(1), k.duplicate_in_window)
    };
    let bucket = desc["S3Bucket"].as_str().ok_or("no bucket")?;
    let summary_key = desc["ExportManifest"].as_str().ok_or("no manifest")?;
    let prefix = desc["S3Prefix"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/');
    let export_dir = summary_key.rsplit_once('/').ok_or("summary key")?.0;
    let store = store(s, bucket);
    let get = |key: String| {
        let store = store.clone();
        async move {
            let got = store
                .get(&Path::from(key.as_str()))
                .await
                .map_err(|e| format!("{key}: {e}"))?;
            got.bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        }
    };
    let mut summary: Value =
        serde_json::from_slice(&get(summary_key.to_string()).await?).map_err(|e| e.to_string())?;
    let files_key = summary["manifestFilesS3Key"]
        .as_str()
        .ok_or("manifestFilesS3Key")?
        .to_string();
    let incremental = summary["exportType"] == "INCREMENTAL_EXPORT";
    let ion = summary["outputFormat"] == "ION";
    let mut lines = Vec::new();
    let mut old_keys = Vec::new();
    for entry in String::from_utf8_lossy(&get(files_key.clone()).await?).lines() {
        let e: Value = serde_json::from_str(entry).map_err(|e| e.to_string())?;
        let key = e["dataFileS3Key"]
            .as_str()
            .ok_or("dataFileS3Key")?
            .to_string();
        lines.extend(gunzip(&get(key.clone()).await?));
        old_keys.push(key);
    }
    let mut groups: Vec<Vec<String>> = vec![Vec::new(); files];
    for (i, l) in lines.iter().enumerate() {
        groups[i % files].push(l.clone());
    }
    if duplicate && incremental && !ion && !lines.is_empty() {
        groups[files - 1].push(older(&lines[0]));
    }
    groups.push(Vec::new());
    let data_dir = if incremental {
        format!("{prefix}/AWSDynamoDB/data")
    } else {
        format!("{export_dir}/data")
    };
    let mut manifest = String::new();
    let mut total = 0u64;
    for g in &groups {
        let bytes = gzip(g);
        let name = uuid::Uuid::new_v4().simple().to_string()[..26].to_string();
        let key = format!("{data_dir}/{name}.{}.gz", if ion { "ion" } else { "json" });
        let md5 = b64_md5(&bytes);
        let etag = put_parts(store.as_ref(), &key, bytes).await?;
        manifest.push_str(
            &json!({"itemCount": g.len(), "md5Checksum": md5, "etag": etag, "dataFileS3Key": key})
                .to_string(),
        );
        manifest.push('\n');
        total += g.len() as u64;
    }
    for key in old_keys {
        store
            .delete(&Path::from(key.as_str()))
            .await
            .map_err(|e| e.to_string())?;
    }
    let put = |key: String, bytes: Vec<u8>| {
        let store = store.clone();
        async move {
            store
                .put(&Path::from(key.as_str()), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    put(files_key, manifest.clone().into_bytes()).await?;
    put(
        format!("{export_dir}/manifest-files.md5"),
        b64_md5(manifest.as_bytes()).into_bytes(),
    )
    .await?;
    summary["itemCount"] = json!(total);
    let o = summary.as_object_mut().ok_or("summary")?;
    if incremental {
        o.insert("version".into(), json!("2023-08-01"));
        o.remove("exportTime");
    } else {
        o.remove("exportType");
    }
    let bytes = serde_json::to_vec(&summary).map_err(|e| e.to_string())?;
    put(
        format!("{export_dir}/manifest-summary.md5"),
        b64_md5(&bytes).into_bytes(),
    )
    .await?;
    put(summary_key.to_string(), bytes).await?;
    Ok(total)
}
