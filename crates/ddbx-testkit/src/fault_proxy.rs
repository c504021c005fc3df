//! A fault-injecting HTTP proxy between ddbx and the DynamoDB emulator (which never
//! throttles and never leaves items unprocessed). It forwards requests on 127.0.0.1 and,
//! on a deterministic schedule, answers BatchWriteItem calls with throttling or forwards
//! only part of the batch and returns the rest as `UnprocessedItems`, as DynamoDB does
//! under load. In front of S3 it answers 503 SlowDown, fails multipart parts, and checks
//! the expected-bucket-owner header. It records which actions it saw, for the IAM test.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to inject, as "every Nth call" (0 = never).
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Every Nth BatchWriteItem leaves half its items unprocessed.
    pub unprocessed_every: u64,
    /// Every Nth BatchWriteItem is refused with ProvisionedThroughputExceededException.
    pub throttle_every: u64,
    /// Every Nth Scan is refused with a throttle, alternating the three throttling codes.
    pub scan_throttle_every: u64,
    /// Every Nth Scan gets a 500 InternalServerError.
    pub scan_error_every: u64,
    /// Every Nth Scan or BatchWriteItem: the connection is closed without an answer,
    /// alternately before forwarding and after (the call took effect, its answer is lost).
    pub drop_every: u64,
    /// Every Nth Scan or BatchWriteItem: forwarded, then half the answer sent and the
    /// connection closed.
    pub truncate_every: u64,
    /// Scans of this table are refused with AccessDeniedException.
    pub deny_scan_of: Option<&'static str>,
    /// Every Nth S3 PUT (object or multipart part) is answered 503 SlowDown.
    pub s3_slowdown_every: u64,
    /// Every Nth multipart part upload fails: alternately a 500 and a connection closed
    /// after the part was stored.
    pub s3_part_fault_every: u64,
    /// Every multipart part upload is refused (403), so no multipart upload can finish.
    pub s3_refuse_parts: bool,
    /// The bucket's owner: a request naming another in `x-amz-expected-bucket-owner` is
    /// refused 403, as S3 does; requests without the header are counted.
    pub bucket_owner: Option<&'static str>,
    /// Each DynamoDB call (of any operation) meets this fault with this probability.
    pub random: Option<RandomFaults>,
    /// UpdateTable calls after the first N are refused with LimitExceededException (as
    /// DynamoDB refuses decreases past its daily allowance).
    pub refuse_update_table_after: Option<u64>,
    /// `bucket/prefix` that these credentials may only read: any other request under it
    /// is refused 403 AccessDenied, as S3 refuses it under a read-only policy.
    pub s3_read_only: Option<&'static str>,
    /// A batch delete (DeleteObjects) naming a key that starts with this deletes nothing:
    /// S3 answers each key with an AccessDenied error inside its 200 answer, as under a
    /// policy denying s3:DeleteObject there (a prune deletes one run per batch, so this
    /// denies one run).
    pub s3_deny_delete_under: Option<&'static str>,
    /// PUTs under `bucket/prefix` after the first N are held unanswered (a copy or an
    /// upload that hangs there, for a test to kill it at a known point); counted in
    /// `Stats::s3_stalled`.
    pub s3_stall_puts_under: Option<(&'static str, u64)>,
    /// An IAM policy (JSON) the S3 requests are judged by (`super::s3_policy`): what it
    /// does not allow is refused 403 AccessDenied (a DeleteObjects batch naming a denied
    /// key deletes nothing, each key answered AccessDenied), and recorded in
    /// `Stats::s3_denied`.
    pub s3_policy: Option<&'static str>,
    /// DescribeExport always answers IN_PROGRESS (an export that takes its time), without
    /// asking the service.
    pub exports_in_progress: bool,
    /// BatchWriteItem meets a simulated on-demand table's capacity: a request that would
    /// take it past its write units of the last second is throttled; it scales up as used.
    pub on_demand: Option<OnDemandTable>,
    /// CreateTable naming this KMS key is refused, as AWS refuses a key the caller may not
    /// use (another account's).
    pub refuse_kms_key: Option<&'static str>,
    /// The bucket lives in this region, not the one the requests go to: every S3 request
    /// is answered as S3's regional endpoint answers a path-style request for a bucket of
    /// another region (301 PermanentRedirect, `x-amz-bucket-region`, the endpoint to use
    /// in the body; no Location header).
    pub s3_bucket_region: Option<&'static str>,
    /// Every S3 request that passes is answered this much later (S3's round trip, which
    /// the local store does not have).
    pub s3_latency: Option<Duration>,
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ProvisionedThroughputExceededException (400).
    Throttle,
    /// InternalServerError (500).
    ServerError,
    /// The connection closes before the call is forwarded.
    DropBefore,
    /// The call takes effect, then the connection closes unanswered.
    DropAfter,
    /// The call takes effect, and half its answer arrives.
    Truncate,
    /// The answer comes this late.
    Delay(Duration),
}

/// Faults drawn at random (from a seeded generator, so a failure can be replayed).
#[derive(Debug, Clone, Copy)]
pub struct RandomFaults {
    /// What happens to an unlucky call.
    pub kind: Kind,
    /// The share of calls that are unlucky (0.1 = 10%).
    pub rate: f64,
    /// The generator's seed.
    pub seed: u64,
}

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct Stats {
    /// BatchWriteItem calls seen.
    pub batch_calls: AtomicU64,
    /// Items returned as unprocessed.
    pub unprocessed_items: AtomicU64,
    /// Calls answered with a throttle.
    pub throttled: AtomicU64,
    /// Scan calls seen.
    pub scan_calls: AtomicU64,
    /// Scan calls answered with a fault.
    pub scan_faults: AtomicU64,
    /// Scan and BatchWriteItem calls seen (for drops and truncations).
    pub data_calls: AtomicU64,
    /// Connections dropped or answers truncated.
    pub network_faults: AtomicU64,
    /// S3 PUTs seen.
    pub s3_puts: AtomicU64,
    /// S3 PUTs answered 503.
    pub s3_slowdowns: AtomicU64,
    /// Multipart parts failed.
    pub s3_part_faults: AtomicU64,
    /// S3 requests without `x-amz-expected-bucket-owner`.
    pub s3_without_owner: AtomicU64,
    /// S3 writes refused under a read-only prefix.
    pub s3_refused_writes: AtomicU64,
    /// What `s3_policy` refused: `action resource` (or `s3:DeleteObject key` of a batch).
    pub s3_denied: Mutex<Vec<String>>,
    /// PUTs under `s3_stall_puts_under`'s prefix seen (those past its N are held).
    pub s3_stalled: AtomicU64,
    /// DynamoDB calls that met a random fault.
    pub random_faults: AtomicU64,
    /// The access key ids the requests were signed with.
    pub access_keys: Mutex<BTreeSet<String>>,
    /// The bodies of STS (query protocol) calls: `Action=AssumeRole&RoleArn=...`.
    pub sts_calls: Mutex<Vec<String>>,
    /// Every call, as the IAM action it needs (`dynamodb:Scan`, `s3:PutObject`, ...), in order.
    pub calls: Mutex<Vec<String>>,
}

impl Stats {
    /// How many calls needed this action.
    pub fn count(&self, action: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|a| *a == action)
            .count()
    }

    /// Calls of one service (`"dynamodb:"`, `"s3:"`).
    pub fn count_service(&self, prefix: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.starts_with(prefix))
            .count()
    }

    /// Calls so far: a mark for [`Stats::actions_since`].
    pub fn mark(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// The distinct actions of the calls since `mark`.
    pub fn actions_since(&self, mark: usize) -> BTreeSet<String> {
        self.calls.lock().unwrap()[mark..].iter().cloned().collect()
    }

    /// How many times `counter` was counted.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// A simulated on-demand table: it takes `start` write units a second at first (a new
/// table's warm throughput), and doubles its capacity (up to `max`) after each
/// `double_after` seconds in which it was used at half of it or more, as on-demand tables
/// scale with their traffic. Every item costs one unit (the tests' items are small).
#[derive(Debug, Clone, Copy)]
pub struct OnDemandTable {
    pub start: f64,
    pub double_after: Duration,
    pub max: f64,
}

/// The simulated table's state.
struct Sim {
    table: OnDemandTable,
    capacity: f64,
    window: std::collections::VecDeque<(Instant, f64)>,
    busy_since: Option<Instant>,
}

impl Sim {
    fn new(table: OnDemandTable) -> Self {
        Sim {
            table,
            capacity: table.start,
            window: Default::default(),
            busy_since: None,
        }
    }

    /// Whether a request of `units` is taken now (and counted).
    fn admit(&mut self, now: Instant, units: f64) -> bool {
        while self
            .window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.window.pop_front();
        }
        let used: f64 = self.window.iter().map(|(_, u)| u).sum();
        if used >= self.capacity / 2.0 {
            let since = *self.busy_since.get_or_insert(now);
            if now.duration_since(since) >= self.table.double_after {
                self.capacity = (self.capacity * 2.0).min(self.table.max);
                self.busy_since = Some(now);
            }
        } else {
            self.busy_since = None;
        }
        if used + units > self.capacity {
            return false;
        }
        self.window.push_back((now, units));
        true
    }
}

/// A running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What it did.
    pub stats: Arc<Stats>,
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let stats = Arc::new(Stats::default());
        let s = stats.clone();
        let rng = Arc::new(Mutex::new(first_state(faults.random.map_or(1, |r| r.seed))));
        let sim = Arc::new(faults.on_demand.map(|table| Mutex::new(Sim::new(table))));
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let stats = s.clone();
                let rng = rng.clone();
                let sim = sim.clone();
                tokio::spawn(async move {
                    let proxy = Proxy {
                        upstream: &upstream,
                        faults,
                        stats: &stats,
                        rng: &rng,
                        sim: sim.as_ref().as_ref(),
                    };
                    let _ = proxy.serve(conn).await;
                });
            }
        });
        Self { url, stats }
    }
}

/// One HTTP request: its head (request line and headers) and body.
pub struct Request {
    pub head: String,
    pub body: Vec<u8>,
}

/// The Content-Length a message head gives (0 when none).
fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0)
}

/// Read one request (by Content-Length) from a connection; None when it closes.
pub async fn read_message(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = content_length(&head);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 65536];
                let n = conn.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Ok(Some(Request { head, body }));
        }
        let mut chunk = [0u8; 65536];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A message with a new body: its length is set again and its CRC32 (which DynamoDB's
/// clients check) dropped.
pub fn with_body(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in head.lines().enumerate() {
        let lower = line.to_ascii_lowercase();
        if i > 0 && (lower.starts_with("content-length:") || lower.starts_with("x-amz-crc32:")) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn s3_error(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// S3's answer to a path-style request sent to a regional endpoint for a bucket that
/// lives in `region` (as documented for PermanentRedirect, and as S3 sends it: the
/// bucket's region in a header, the endpoint in the body, no Location; HEAD gets no body).
fn permanent_redirect(request_line: &str, region: &str) -> Vec<u8> {
    let target = request_line.split(' ').nth(1).unwrap_or("/");
    let bucket = target
        .trim_start_matches('/')
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let body = if request_line.starts_with("HEAD ") {
        String::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>{bucket}.s3.{region}.amazonaws.com</Endpoint><Bucket>{bucket}</Bucket><RequestId>0A1B2C3D4E5F6789</RequestId><HostId>ddbx-test-stand-in</HostId></Error>"
        )
    };
    format!(
        "HTTP/1.1 301 Moved Permanently\r\nx-amz-bucket-region: {region}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The IAM action an S3 request needs (path-style addressing).
fn s3_action(request_line: &str) -> &'static str {
    let mut words = request_line.split(' ');
    let method = words.next().unwrap_or("");
    let target = words.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let on_object = path.trim_start_matches('/').contains('/');
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    match method {
        "GET" if !on_object || has("list-type") => "s3:ListBucket",
        "GET" | "HEAD" if has("uploadId") => "s3:ListMultipartUploadParts",
        "GET" | "HEAD" => "s3:GetObject",
        "PUT" | "POST" if has("delete") => "s3:DeleteObject",
        "PUT" | "POST" => "s3:PutObject",
        "DELETE" if has("uploadId") => "s3:AbortMultipartUpload",
        "DELETE" => "s3:DeleteObject",
        _ => "s3:Unknown",
    }
}

/// The header's value, if the message has it.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The generator's first state: splitmix64 of the seed (nearby seeds give unrelated
/// sequences), never zero.
fn first_state(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// xorshift64: small, seeded, good enough to pick unlucky calls.
fn draw(state: &Mutex<u64>) -> f64 {
    let mut s = state.lock().unwrap();
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    (*s >> 11) as f64 / (1u64 << 53) as f64
}

/// A DynamoDB error answer.
pub fn ddb_error(status: &str, code: &str, message: &str) -> Vec<u8> {
    response(
        status,
        &format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#),
    )
}

pub fn response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub async fn forward(upstream: &str, req: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(req).await?;
    let head_only = req.starts_with(b"HEAD ");
    let mut buf = Vec::new();
    // Read the response head, then its body by content-length.
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = content_length(&head);
            let len = if head_only { 0 } else { len };
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 65536];
                let n = up.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(buf);
        }
        let mut chunk = [0u8; 65536];
        let n = up.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What the proxy does with one request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Answer this, without forwarding the request.
    Answer(Vec<u8>),
    /// Close the connection unanswered, without forwarding.
    DropBefore,
    /// Forward, then close the connection unanswered (the call took effect, its answer is lost).
    DropAfter,
    /// Forward, then send half the answer and close.
    Truncate,
    /// Forward half of each table's batch and answer the rest as unprocessed.
    Partial,
    /// Forward a DescribeTable and tell, in its answer, the simulated on-demand table's
    /// current write capacity.
    WarmThroughput,
    /// Hold the request unanswered until the connection is dropped (a hung call).
    Hang,
    /// Forward and pass the answer on.
    Forward,
}

/// What the checks of a call's own service (DynamoDB-shaped or S3) make of it.
#[derive(Debug, PartialEq, Eq)]
enum Screened {
    Decided(Verdict),
    /// No fault of its service: on to the checks of puts, scans and batch writes.
    Pass,
    /// The same, once this delay has passed.
    PassLate(Duration),
}

/// One request, with what the checks look at.
struct Call<'r> {
    req: &'r Request,
    request_line: &'r str,
    is_batch: bool,
    is_scan: bool,
}

impl<'r> Call<'r> {
    fn of(req: &'r Request) -> Self {
        let head = req.head.to_ascii_lowercase();
        Call {
            req,
            request_line: req.head.lines().next().unwrap_or(""),
            is_batch: head.contains("dynamodb_20120810.batchwriteitem"),
            is_scan: head.contains("dynamodb_20120810.scan"),
        }
    }

    fn body_text(&self) -> std::borrow::Cow<'r, str> {
        String::from_utf8_lossy(&self.req.body)
    }
}

/// The IAM action of a JSON-protocol call (`X-Amz-Target: Service.Operation`).
fn target_action(target: &str) -> String {
    let (service, op) = target.split_once('.').unwrap_or(("", target));
    match service {
        "AnyScaleFrontendService" => format!("application-autoscaling:{op}"),
        "ElasticMapReduce" => format!("elasticmapreduce:{op}"),
        _ => format!("dynamodb:{op}"),
    }
}

/// Note the access key a request was signed with, and an STS (query protocol) call's body.
fn record_credentials(stats: &Stats, req: &Request) {
    if let Some(auth) = header(&req.head, "authorization") {
        if let Some(key) = auth.split("Credential=").nth(1) {
            let key = key.split('/').next().unwrap_or_default().to_string();
            stats.access_keys.lock().unwrap().insert(key);
        }
    }
    if req.body.starts_with(b"Action=") {
        let body = String::from_utf8_lossy(&req.body).to_string();
        stats.sts_calls.lock().unwrap().push(body);
    }
}

/// The keys a DeleteObjects request names.
fn delete_keys(body: &str) -> Vec<String> {
    body.split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next().map(str::to_string))
        .collect()
}

/// S3's 200 answer to a DeleteObjects that deleted none of `keys` (each AccessDenied).
fn delete_denied(keys: &[String]) -> Vec<u8> {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
    );
    for k in keys {
        xml.push_str(&format!(
            "<Error><Key>{k}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        ));
    }
    xml.push_str("</DeleteResult>");
    with_body(
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n",
        xml.as_bytes(),
    )
}

/// Whether an S3 request (path-style) writes under `prefix` (`bucket/prefix`).
fn writes_under(request_line: &str, prefix: &str) -> bool {
    let mut words = request_line.split(' ');
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("").trim_start_matches('/');
    let reads = matches!(method, "GET" | "HEAD");
    !reads && path.starts_with(prefix)
}

/// How many write requests a BatchWriteItem body holds (0 when it is not one).
fn batch_items(body: &[u8]) -> usize {
    let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    body["RequestItems"].as_object().map_or(0, |t| {
        t.values()
            .filter_map(|r| r.as_array())
            .map(Vec::len)
            .sum::<usize>()
    })
}

/// A DescribeTable answer, with an on-demand table's warm throughput set to what the
/// simulated table takes now (`writes` units a second); other answers unchanged.
fn warm_throughput(resp: Vec<u8>, writes: f64) -> Vec<u8> {
    let end = find(&resp, b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    let mut out: serde_json::Value = serde_json::from_slice(&resp[end + 4..]).unwrap_or_default();
    let on_demand = out["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST";
    if !(head.contains(" 200 ") && on_demand) {
        return resp;
    }
    out["Table"]["WarmThroughput"] = serde_json::json!({
        "ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": writes as i64, "Status": "ACTIVE"});
    with_body(&head, &serde_json::to_vec(&out).unwrap())
}

/// A BatchWriteItem body cut to the first half of each table's requests, and the rest.
fn split_batch(body: &[u8]) -> (Vec<u8>, serde_json::Map<String, serde_json::Value>) {
    let mut body: serde_json::Value = serde_json::from_slice(body).unwrap();
    let mut held = serde_json::Map::new();
    for (table, reqs) in body["RequestItems"].as_object_mut().unwrap() {
        let list = reqs.as_array_mut().unwrap();
        let keep = list.len().div_ceil(2);
        let rest: Vec<_> = list.split_off(keep);
        if !rest.is_empty() {
            held.insert(table.clone(), serde_json::Value::Array(rest));
        }
    }
    (serde_json::to_vec(&body).unwrap(), held)
}

/// A BatchWriteItem answer with `held` as its UnprocessedItems (an error answer unchanged).
fn with_unprocessed(resp: Vec<u8>, held: serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    let end = find(&resp, b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    if !head.contains(" 200 ") {
        return resp;
    }
    let mut out: serde_json::Value = serde_json::from_slice(&resp[end + 4..]).unwrap();
    out["UnprocessedItems"] = serde_json::Value::Object(held);
    let body = serde_json::to_vec(&out).unwrap();
    with_body(&head, &body)
}

/// The proxy as one connection sees it: where it forwards, what it injects, what it counts.
struct Proxy<'a> {
    upstream: &'a str,
    faults: Faults,
    stats: &'a Stats,
    rng: &'a Mutex<u64>,
    sim: Option<&'a Mutex<Sim>>,
}

impl Proxy<'_> {
    /// Serve a connection's requests until it closes, or a fault closes it.
    async fn serve(&self, mut conn: TcpStream) -> std::io::Result<()> {
        let mut buf = Vec::new();
        while let Some(req) = read_message(&mut conn, &mut buf).await? {
            let call = Call::of(&req);
            let verdict = match self.screen(&call) {
                Screened::Decided(verdict) => verdict,
                Screened::Pass => self.data_call(&call),
                Screened::PassLate(delay) => {
                    tokio::time::sleep(delay).await;
                    self.data_call(&call)
                }
            };
            if !self.carry_out(&mut conn, &req, verdict).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Forward a request as it came (its length set again) and return the answer.
    async fn forward_as_is(&self, req: &Request) -> std::io::Result<Vec<u8>> {
        forward(self.upstream, &with_body(&req.head, &req.body)).await
    }

    /// Do what the verdict says; false when the connection is to close.
    async fn carry_out(
        &self,
        conn: &mut TcpStream,
        req: &Request,
        verdict: Verdict,
    ) -> std::io::Result<bool> {
        let forwarded = || self.forward_as_is(req);
        let reply = match verdict {
            Verdict::Answer(reply) => reply,
            Verdict::DropBefore => return Ok(false),
            Verdict::DropAfter => {
                forwarded().await?;
                return Ok(false);
            }
            Verdict::Truncate => {
                let resp = forwarded().await?;
                conn.write_all(&resp[..resp.len() / 2]).await?;
                return Ok(false);
            }
            Verdict::Partial => {
                let (sent, held) = split_batch(&req.body);
                let count = held.values().filter_map(|r| r.as_array()).map(Vec::len);
                self.stats
                    .unprocessed_items
                    .fetch_add(count.sum::<usize>() as u64, Ordering::SeqCst);
                let resp = forward(self.upstream, &with_body(&req.head, &sent)).await?;
                with_unprocessed(resp, held)
            }
            Verdict::WarmThroughput => {
                let resp = forwarded().await?;
                let writes = self.sim.map_or(0.0, |sim| sim.lock().unwrap().capacity);
                warm_throughput(resp, writes)
            }
            Verdict::Hang => {
                std::future::pending::<()>().await;
                return Ok(false);
            }
            Verdict::Forward => forwarded().await?,
        };
        conn.write_all(&reply).await?;
        Ok(true)
    }

    /// The checks of the call's own service, after noting its credentials and action.
    fn screen(&self, call: &Call) -> Screened {
        record_credentials(self.stats, call.req);
        match header(&call.req.head, "x-amz-target") {
            Some(target) => self.target_call(call, &target_action(target)),
            None => self.s3_call(call),
        }
    }

    /// A JSON-protocol call (DynamoDB, Application Auto Scaling, EMR).
    fn target_call(&self, call: &Call, action: &str) -> Screened {
        self.stats.calls.lock().unwrap().push(action.to_string());
        if self.sim.is_some() && action == "dynamodb:DescribeTable" {
            return Screened::Decided(Verdict::WarmThroughput);
        }
        let answer = self
            .export_in_progress(call, action)
            .or_else(|| self.refused_kms_key(call, action))
            .or_else(|| self.update_table_limit(action));
        match answer {
            Some(reply) => Screened::Decided(Verdict::Answer(reply)),
            None => self.random_fault(),
        }
    }

    fn export_in_progress(&self, call: &Call, action: &str) -> Option<Vec<u8>> {
        if !(self.faults.exports_in_progress && action == "dynamodb:DescribeExport") {
            return None;
        }
        let asked: serde_json::Value = serde_json::from_slice(&call.req.body).unwrap_or_default();
        let arn = asked["ExportArn"].as_str().unwrap_or("");
        Some(response(
            "200 OK",
            &format!(
                r#"{{"ExportDescription":{{"ExportArn":"{arn}","ExportStatus":"IN_PROGRESS"}}}}"#
            ),
        ))
    }

    fn refused_kms_key(&self, call: &Call, action: &str) -> Option<Vec<u8>> {
        let key = self.faults.refuse_kms_key?;
        (action == "dynamodb:CreateTable" && call.body_text().contains(key)).then(|| {
            ddb_error(
                "400 Bad Request",
                "ValidationException",
                &format!("KMS key {key} is not accessible to this account: kms:DescribeKey denied (injected)"),
            )
        })
    }

    fn update_table_limit(&self, action: &str) -> Option<Vec<u8>> {
        let after = self.faults.refuse_update_table_after?;
        (action == "dynamodb:UpdateTable" && self.stats.count(action) as u64 > after).then(|| {
            ddb_error(
                "400 Bad Request",
                "LimitExceededException",
                "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day (injected)",
            )
        })
    }

    /// A random fault, for a JSON-protocol call drawn unlucky.
    fn random_fault(&self) -> Screened {
        let Some(random) = self.faults.random else {
            return Screened::Pass;
        };
        if draw(self.rng) >= random.rate {
            return Screened::Pass;
        }
        self.stats.random_faults.fetch_add(1, Ordering::SeqCst);
        let answer = |status, code| Verdict::Answer(ddb_error(status, code, "injected"));
        Screened::Decided(match random.kind {
            Kind::Throttle => answer("400 Bad Request", "ProvisionedThroughputExceededException"),
            Kind::ServerError => answer("500 Internal Server Error", "InternalServerError"),
            Kind::DropBefore => Verdict::DropBefore,
            Kind::DropAfter => Verdict::DropAfter,
            Kind::Truncate => Verdict::Truncate,
            Kind::Delay(delay) => return Screened::PassLate(delay),
        })
    }

    /// An S3 request (no `X-Amz-Target`).
    fn s3_call(&self, call: &Call) -> Screened {
        let action = s3_action(call.request_line);
        self.stats.calls.lock().unwrap().push(action.to_string());
        let verdict = self
            .other_region(call)
            .or_else(|| self.policy_denied(call))
            .or_else(|| self.wrong_owner(call))
            .or_else(|| self.denied_delete(call))
            .or_else(|| self.read_only(call))
            .or_else(|| self.stalled_put(call))
            .or_else(|| self.part_fault(call));
        let pass = self
            .faults
            .s3_latency
            .map_or(Screened::Pass, Screened::PassLate);
        verdict.map_or(pass, Screened::Decided)
    }

    /// A bucket of another region (`s3_bucket_region`): every request redirected.
    fn other_region(&self, call: &Call) -> Option<Verdict> {
        let region = self.faults.s3_bucket_region?;
        Some(Verdict::Answer(permanent_redirect(
            call.request_line,
            region,
        )))
    }

    /// What `s3_policy` does not allow: refused as S3 refuses it, and recorded.
    fn policy_denied(&self, call: &Call) -> Option<Verdict> {
        use super::s3_policy::{check, Verdict as Judged};
        let policy = self.faults.s3_policy?;
        let denied = |what: String| self.stats.s3_denied.lock().unwrap().push(what);
        match check(policy, call.request_line, &call.req.head, &call.req.body) {
            Judged::Allowed => None,
            Judged::Denied(action, resource) => {
                denied(format!("{action} {resource}"));
                Some(Verdict::Answer(s3_error("403 Forbidden", "AccessDenied")))
            }
            Judged::KeysDenied(keys) => {
                for k in &keys {
                    denied(format!("s3:DeleteObject {k}"));
                }
                Some(Verdict::Answer(delete_denied(&keys)))
            }
        }
    }

    /// A PUT under `s3_stall_puts_under`'s prefix past its first N: held unanswered.
    fn stalled_put(&self, call: &Call) -> Option<Verdict> {
        let (prefix, after) = self.faults.s3_stall_puts_under?;
        let path = call.request_line.split(' ').nth(1).unwrap_or("");
        if !(call.request_line.starts_with("PUT ")
            && path.trim_start_matches('/').starts_with(prefix))
        {
            return None;
        }
        let n = self.stats.s3_stalled.fetch_add(1, Ordering::SeqCst) + 1;
        (n > after).then_some(Verdict::Hang)
    }

    fn wrong_owner(&self, call: &Call) -> Option<Verdict> {
        let owner = self.faults.bucket_owner?;
        match header(&call.req.head, "x-amz-expected-bucket-owner") {
            None => {
                self.stats.s3_without_owner.fetch_add(1, Ordering::SeqCst);
                None
            }
            Some(named) if named != owner => {
                Some(Verdict::Answer(s3_error("403 Forbidden", "AccessDenied")))
            }
            Some(_) => None,
        }
    }

    fn denied_delete(&self, call: &Call) -> Option<Verdict> {
        let denied = self.faults.s3_deny_delete_under?;
        let line = call.request_line;
        if !(line.starts_with("POST ") && line.contains("?delete")) {
            return None;
        }
        let keys = delete_keys(&call.body_text());
        if !keys.iter().any(|k| k.starts_with(denied)) {
            return None;
        }
        self.stats.s3_refused_writes.fetch_add(1, Ordering::SeqCst);
        Some(Verdict::Answer(delete_denied(&keys)))
    }

    fn read_only(&self, call: &Call) -> Option<Verdict> {
        let prefix = self.faults.s3_read_only?;
        if !writes_under(call.request_line, prefix) {
            return None;
        }
        self.stats.s3_refused_writes.fetch_add(1, Ordering::SeqCst);
        Some(Verdict::Answer(s3_error("403 Forbidden", "AccessDenied")))
    }

    /// A multipart part upload refused, or failed (alternately a 500 and a connection
    /// closed after the part was stored).
    fn part_fault(&self, call: &Call) -> Option<Verdict> {
        let line = call.request_line;
        if !(line.starts_with("PUT ") && line.contains("partNumber=")) {
            return None;
        }
        if self.faults.s3_refuse_parts {
            self.stats.s3_part_faults.fetch_add(1, Ordering::SeqCst);
            return Some(Verdict::Answer(s3_error("403 Forbidden", "AccessDenied")));
        }
        let every = self.faults.s3_part_fault_every;
        if every == 0 {
            return None;
        }
        let n = self.stats.s3_puts.fetch_add(1, Ordering::SeqCst) + 1;
        if n % every != 0 {
            return None;
        }
        self.stats.s3_part_faults.fetch_add(1, Ordering::SeqCst);
        Some(if (n / every) % 2 == 0 {
            Verdict::Answer(s3_error("500 Internal Server Error", "InternalError"))
        } else {
            Verdict::DropAfter
        })
    }

    /// What its service's checks let through: S3 puts slowed down, scans and batch writes
    /// denied, dropped, truncated, throttled, cut short.
    fn data_call(&self, call: &Call) -> Verdict {
        self.slowdown(call)
            .or_else(|| self.scan_denied(call))
            .or_else(|| self.network_fault(call))
            .unwrap_or_else(|| {
                if call.is_scan {
                    self.scan()
                } else if call.is_batch {
                    self.batch_write(call)
                } else {
                    Verdict::Forward
                }
            })
    }

    fn slowdown(&self, call: &Call) -> Option<Verdict> {
        let every = self.faults.s3_slowdown_every;
        if every == 0 || !call.req.head.starts_with("PUT ") {
            return None;
        }
        let n = self.stats.s3_puts.fetch_add(1, Ordering::SeqCst) + 1;
        if n % every != 0 {
            return None;
        }
        self.stats.s3_slowdowns.fetch_add(1, Ordering::SeqCst);
        Some(Verdict::Answer(s3_error(
            "503 Service Unavailable",
            "SlowDown",
        )))
    }

    fn scan_denied(&self, call: &Call) -> Option<Verdict> {
        let table = self.faults.deny_scan_of.filter(|_| call.is_scan)?;
        call.body_text()
            .contains(&format!("\"TableName\":\"{table}\""))
            .then(|| {
                Verdict::Answer(ddb_error(
                    "400 Bad Request",
                    "AccessDeniedException",
                    "injected: not authorized to perform dynamodb:Scan",
                ))
            })
    }

    /// A scan or batch write's connection dropped (alternately before forwarding and
    /// after) or its answer truncated.
    fn network_fault(&self, call: &Call) -> Option<Verdict> {
        if !(call.is_scan || call.is_batch) {
            return None;
        }
        let n = self.stats.data_calls.fetch_add(1, Ordering::SeqCst) + 1;
        let (drop, truncate) = (self.faults.drop_every, self.faults.truncate_every);
        if drop > 0 && n % drop == 0 {
            self.stats.network_faults.fetch_add(1, Ordering::SeqCst);
            return Some(if (n / drop) % 2 == 0 {
                Verdict::DropAfter
            } else {
                Verdict::DropBefore
            });
        }
        if truncate > 0 && n % truncate == 0 {
            self.stats.network_faults.fetch_add(1, Ordering::SeqCst);
            return Some(Verdict::Truncate);
        }
        None
    }

    /// A scan throttled (the three throttling codes in turn), failed, or forwarded.
    fn scan(&self) -> Verdict {
        let n = self.stats.scan_calls.fetch_add(1, Ordering::SeqCst) + 1;
        let (throttle, error) = (
            self.faults.scan_throttle_every,
            self.faults.scan_error_every,
        );
        if throttle > 0 && n % throttle == 0 {
            self.stats.scan_faults.fetch_add(1, Ordering::SeqCst);
            let code = [
                "ProvisionedThroughputExceededException",
                "ThrottlingException",
                "RequestLimitExceeded",
            ][(n / throttle % 3) as usize];
            Verdict::Answer(ddb_error("400 Bad Request", code, "injected"))
        } else if error > 0 && n % error == 0 {
            self.stats.scan_faults.fetch_add(1, Ordering::SeqCst);
            Verdict::Answer(ddb_error(
                "500 Internal Server Error",
                "InternalServerError",
                "injected",
            ))
        } else {
            Verdict::Forward
        }
    }

    /// A batch write refused by the simulated on-demand table, throttled, cut short, or
    /// forwarded.
    fn batch_write(&self, call: &Call) -> Verdict {
        let n = self.stats.batch_calls.fetch_add(1, Ordering::SeqCst) + 1;
        let refused = self.sim.is_some_and(|s| {
            !s.lock()
                .unwrap()
                .admit(Instant::now(), batch_items(&call.req.body) as f64)
        });
        let throttle = |message| {
            self.stats.throttled.fetch_add(1, Ordering::SeqCst);
            Verdict::Answer(ddb_error(
                "400 Bad Request",
                "ProvisionedThroughputExceededException",
                message,
            ))
        };
        let (throttle_every, unprocessed) =
            (self.faults.throttle_every, self.faults.unprocessed_every);
        if refused {
            throttle("simulated on-demand table: throughput exceeds the current capacity of your table or index")
        } else if throttle_every > 0 && n % throttle_every == 0 {
            throttle("injected throttle")
        } else if unprocessed > 0 && n % unprocessed == 0 {
            Verdict::Partial
        } else {
            Verdict::Forward
        }
    }
}

/// One AWS JSON-protocol call (`X-Amz-Target: TARGET`, `body` as JSON) to `url`, over a
/// connection of its own: the answer's head and its body as JSON (`null` when not JSON).
pub async fn post_json(
    url: &str,
    target: &str,
    body: &serde_json::Value,
) -> (String, serde_json::Value) {
    let addr = url.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let text = body.to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nx-amz-target: {target}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{text}",
        text.len()
    );
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    let answer = read_message(&mut conn, &mut buf)
        .await
        .expect("read")
        .expect("an answer");
    let json = serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
    (answer.head, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers every request `200 {"upstream":true}`.
    async fn upstream() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Ok(Some(_)) = read_message(&mut conn, &mut buf).await {
                        let body = r#"{"upstream":true}"#;
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    /// A proxy's counters and generator, for deciding requests without a network.
    struct Bench {
        stats: Stats,
        rng: Mutex<u64>,
        sim: Option<Mutex<Sim>>,
    }

    impl Bench {
        fn new() -> Self {
            Bench {
                stats: Stats::default(),
                rng: Mutex::new(first_state(7)),
                sim: None,
            }
        }

        fn proxy(&self, faults: Faults) -> Proxy<'_> {
            Proxy {
                upstream: "127.0.0.1:9",
                faults,
                stats: &self.stats,
                rng: &self.rng,
                sim: self.sim.as_ref(),
            }
        }
    }

    /// What the proxy decides for a request (a delay left out).
    fn decide(proxy: &Proxy, req: &Request) -> Verdict {
        let call = Call::of(req);
        match proxy.screen(&call) {
            Screened::Decided(verdict) => verdict,
            Screened::Pass | Screened::PassLate(_) => proxy.data_call(&call),
        }
    }

    fn ddb(op: &str, body: &str) -> Request {
        Request {
            head: format!("POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.{op}"),
            body: body.as_bytes().to_vec(),
        }
    }

    fn s3(request_line: &str, headers: &str, body: &str) -> Request {
        Request {
            head: format!("{request_line} HTTP/1.1\r\nhost: s3{headers}"),
            body: body.as_bytes().to_vec(),
        }
    }

    /// An answer's text (panics on any other verdict).
    fn answer(verdict: Verdict) -> String {
        match verdict {
            Verdict::Answer(bytes) => String::from_utf8(bytes).unwrap(),
            other => panic!("not an answer: {other:?}"),
        }
    }

    fn http(status: &str, body: &str) -> Vec<u8> {
        response(status, body)
    }

    #[test]
    fn json_calls_are_named_by_their_iam_action() {
        assert_eq!(target_action("DynamoDB_20120810.Scan"), "dynamodb:Scan");
        assert_eq!(
            target_action("AnyScaleFrontendService.RegisterScalableTarget"),
            "application-autoscaling:RegisterScalableTarget"
        );
        assert_eq!(
            target_action("ElasticMapReduce.RunJobFlow"),
            "elasticmapreduce:RunJobFlow"
        );
    }

    #[test]
    fn s3_requests_are_named_by_their_iam_action() {
        for (line, action) in [
            ("GET /b?list-type=2&prefix=p", "s3:ListBucket"),
            ("GET /b", "s3:ListBucket"),
            ("GET /b/k?uploadId=1", "s3:ListMultipartUploadParts"),
            ("HEAD /b/k", "s3:GetObject"),
            ("POST /b?delete", "s3:DeleteObject"),
            ("PUT /b/k?partNumber=1&uploadId=1", "s3:PutObject"),
            ("DELETE /b/k?uploadId=1", "s3:AbortMultipartUpload"),
            ("DELETE /b/k", "s3:DeleteObject"),
            ("PATCH /b/k", "s3:Unknown"),
        ] {
            assert_eq!(s3_action(&format!("{line} HTTP/1.1")), action, "{line}");
        }
    }

    #[test]
    fn signing_keys_and_sts_calls_are_recorded() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults::default());
        let mut req = ddb("Scan", "{}");
        req.head.push_str("\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDX/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host");
        assert_eq!(decide(&proxy, &req), Verdict::Forward);
        let sts = s3("POST /", "", "Action=AssumeRole&RoleArn=arn:r");
        decide(&proxy, &sts);
        assert_eq!(
            *bench.stats.access_keys.lock().unwrap(),
            BTreeSet::from(["AKIDX".to_string()])
        );
        assert_eq!(
            *bench.stats.sts_calls.lock().unwrap(),
            vec!["Action=AssumeRole&RoleArn=arn:r".to_string()]
        );
        assert_eq!(bench.stats.count("dynamodb:Scan"), 1);
        assert_eq!(bench.stats.count("s3:PutObject"), 1);
    }

    #[test]
    fn update_table_is_refused_after_the_allowance_and_kms_keys_on_create() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            refuse_update_table_after: Some(1),
            refuse_kms_key: Some("arn:key/other"),
            ..Faults::default()
        });
        assert_eq!(decide(&proxy, &ddb("UpdateTable", "{}")), Verdict::Forward);
        let refused = answer(decide(&proxy, &ddb("UpdateTable", "{}")));
        assert!(refused.contains("LimitExceededException"), "{refused}");
        let create = r#"{"SSESpecification":{"KMSMasterKeyId":"arn:key/other"}}"#;
        let refused = answer(decide(&proxy, &ddb("CreateTable", create)));
        assert!(refused.contains("ValidationException"), "{refused}");
        assert_eq!(decide(&proxy, &ddb("CreateTable", "{}")), Verdict::Forward);
    }

    #[test]
    fn random_faults_take_the_unlucky_share_and_delays_pass_on() {
        let faults = |kind, rate| Faults {
            random: Some(RandomFaults {
                kind,
                rate,
                seed: 7,
            }),
            ..Faults::default()
        };
        let bench = Bench::new();
        let always = bench.proxy(faults(Kind::ServerError, 1.0));
        let failed = answer(decide(&always, &ddb("GetItem", "{}")));
        assert!(failed.starts_with("HTTP/1.1 500"), "{failed}");
        let dropped = bench.proxy(faults(Kind::DropAfter, 1.0));
        assert_eq!(decide(&dropped, &ddb("GetItem", "{}")), Verdict::DropAfter);
        let never = bench.proxy(faults(Kind::Throttle, 0.0));
        assert_eq!(decide(&never, &ddb("GetItem", "{}")), Verdict::Forward);
        assert_eq!(Stats::get(&bench.stats.random_faults), 2);
        let late = bench.proxy(faults(Kind::Delay(Duration::from_secs(3)), 1.0));
        let call = ddb("GetItem", "{}");
        assert_eq!(
            late.screen(&Call::of(&call)),
            Screened::PassLate(Duration::from_secs(3))
        );
        // Half the calls, near enough, over a seeded sequence.
        let half = bench.proxy(faults(Kind::Throttle, 0.5));
        let unlucky = (0..1000)
            .filter(|_| matches!(decide(&half, &ddb("GetItem", "{}")), Verdict::Answer(_)))
            .count();
        assert!((400..600).contains(&unlucky), "{unlucky}");
    }

    #[test]
    fn nearby_seeds_start_unrelated_sequences() {
        let (a, b) = (first_state(1), first_state(2));
        assert_ne!(a, b);
        assert_eq!(a & 1, 1, "never zero");
        assert!((a ^ b).count_ones() > 10, "{a:x} {b:x}");
    }

    #[test]
    fn describe_table_tells_the_simulated_capacity_of_on_demand_tables_only() {
        let mut bench = Bench::new();
        assert_eq!(
            decide(&bench.proxy(Faults::default()), &ddb("DescribeTable", "{}")),
            Verdict::Forward
        );
        bench.sim = Some(Mutex::new(Sim::new(OnDemandTable {
            start: 100.0,
            double_after: Duration::from_secs(1),
            max: 400.0,
        })));
        let proxy = bench.proxy(Faults::default());
        assert_eq!(
            decide(&proxy, &ddb("DescribeTable", "{}")),
            Verdict::WarmThroughput
        );
        let on_demand = http(
            "200 OK",
            r#"{"Table":{"BillingModeSummary":{"BillingMode":"PAY_PER_REQUEST"}}}"#,
        );
        let told = warm_throughput(on_demand, 100.0);
        let end = find(&told, b"\r\n\r\n").unwrap();
        let body: serde_json::Value = serde_json::from_slice(&told[end + 4..]).unwrap();
        assert_eq!(body["Table"]["WarmThroughput"]["WriteUnitsPerSecond"], 100);
        let provisioned = http("200 OK", r#"{"Table":{}}"#);
        assert_eq!(warm_throughput(provisioned.clone(), 100.0), provisioned);
        let failed = http(
            "400 Bad Request",
            r#"{"Table":{"BillingModeSummary":{"BillingMode":"PAY_PER_REQUEST"}}}"#,
        );
        assert_eq!(warm_throughput(failed.clone(), 100.0), failed);
    }

    #[test]
    fn the_bucket_owner_is_checked_and_its_absence_counted() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            bucket_owner: Some("111"),
            ..Faults::default()
        });
        assert_eq!(decide(&proxy, &s3("GET /b/k", "", "")), Verdict::Forward);
        let owned = "\r\nx-amz-expected-bucket-owner: 111";
        assert_eq!(decide(&proxy, &s3("GET /b/k", owned, "")), Verdict::Forward);
        let other = "\r\nx-amz-expected-bucket-owner: 222";
        let refused = answer(decide(&proxy, &s3("GET /b/k", other, "")));
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        assert_eq!(Stats::get(&bench.stats.s3_without_owner), 1);
    }

    #[test]
    fn a_batch_delete_under_the_denied_prefix_deletes_nothing() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            s3_deny_delete_under: Some("runs/old/"),
            ..Faults::default()
        });
        let body = "<Delete><Object><Key>runs/old/a</Key></Object><Object><Key>runs/old/b</Key></Object></Delete>";
        assert_eq!(delete_keys(body), ["runs/old/a", "runs/old/b"]);
        let denied = answer(decide(&proxy, &s3("POST /b?delete", "", body)));
        assert!(denied.starts_with("HTTP/1.1 200"), "{denied}");
        assert_eq!(denied.matches("<Code>AccessDenied</Code>").count(), 2);
        assert!(denied.contains("<Key>runs/old/b</Key>"), "{denied}");
        let elsewhere = "<Delete><Object><Key>runs/new/a</Key></Object></Delete>";
        assert_eq!(
            decide(&proxy, &s3("POST /b?delete", "", elsewhere)),
            Verdict::Forward
        );
        assert_eq!(Stats::get(&bench.stats.s3_refused_writes), 1);
    }

    #[test]
    fn a_read_only_prefix_takes_reads_only() {
        assert!(writes_under("PUT /b/ro/k HTTP/1.1", "b/ro"));
        assert!(writes_under("DELETE /b/ro/k HTTP/1.1", "b/ro"));
        assert!(!writes_under("GET /b/ro/k HTTP/1.1", "b/ro"));
        assert!(!writes_under("HEAD /b/ro/k HTTP/1.1", "b/ro"));
        assert!(!writes_under("PUT /b/rw/k HTTP/1.1", "b/ro"));
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            s3_read_only: Some("b/ro"),
            ..Faults::default()
        });
        let refused = answer(decide(&proxy, &s3("PUT /b/ro/k", "", "x")));
        assert!(refused.contains("AccessDenied"), "{refused}");
        assert_eq!(decide(&proxy, &s3("GET /b/ro/k", "", "")), Verdict::Forward);
        assert_eq!(Stats::get(&bench.stats.s3_refused_writes), 1);
    }

    #[test]
    fn part_faults_alternate_a_lost_answer_and_a_500_or_refuse_every_part() {
        let part = || s3("PUT /b/k?partNumber=1&uploadId=u", "", "x");
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            s3_part_fault_every: 2,
            ..Faults::default()
        });
        let mut got: Vec<_> = (0..4).map(|_| decide(&proxy, &part())).collect();
        let failed = answer(got.pop().unwrap());
        assert!(failed.contains("InternalError"), "{failed}");
        assert_eq!(
            got,
            [Verdict::Forward, Verdict::DropAfter, Verdict::Forward]
        );
        assert_eq!(Stats::get(&bench.stats.s3_part_faults), 2);
        let bench = Bench::new();
        let refusing = bench.proxy(Faults {
            s3_refuse_parts: true,
            ..Faults::default()
        });
        let refused = answer(decide(&refusing, &part()));
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        assert_eq!(
            decide(&refusing, &s3("PUT /b/k", "", "x")),
            Verdict::Forward
        );
        assert_eq!(Stats::get(&bench.stats.s3_part_faults), 1);
    }

    #[test]
    fn every_nth_put_slows_down() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            s3_slowdown_every: 2,
            ..Faults::default()
        });
        assert_eq!(decide(&proxy, &s3("PUT /b/k", "", "x")), Verdict::Forward);
        assert_eq!(decide(&proxy, &s3("GET /b/k", "", "")), Verdict::Forward);
        let slow = answer(decide(&proxy, &s3("PUT /b/k", "", "x")));
        assert!(
            slow.starts_with("HTTP/1.1 503") && slow.contains("SlowDown"),
            "{slow}"
        );
        assert_eq!(Stats::get(&bench.stats.s3_puts), 2);
        assert_eq!(Stats::get(&bench.stats.s3_slowdowns), 1);
    }

    #[test]
    fn scans_of_the_denied_table_are_refused() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            deny_scan_of: Some("secret"),
            ..Faults::default()
        });
        let denied = answer(decide(&proxy, &ddb("Scan", r#"{"TableName":"secret"}"#)));
        assert!(denied.contains("AccessDeniedException"), "{denied}");
        assert_eq!(
            decide(&proxy, &ddb("Scan", r#"{"TableName":"open"}"#)),
            Verdict::Forward
        );
        assert_eq!(
            decide(&proxy, &ddb("GetItem", r#"{"TableName":"secret"}"#)),
            Verdict::Forward
        );
    }

    #[test]
    fn drops_alternate_before_and_after_forwarding_and_truncations_follow_their_schedule() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            drop_every: 1,
            ..Faults::default()
        });
        let got: Vec<_> = (0..3)
            .map(|i| decide(&proxy, &ddb(["Scan", "BatchWriteItem"][i % 2], "{}")))
            .collect();
        assert_eq!(
            got,
            [Verdict::DropBefore, Verdict::DropAfter, Verdict::DropBefore]
        );
        assert_eq!(decide(&proxy, &ddb("GetItem", "{}")), Verdict::Forward);
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            truncate_every: 2,
            ..Faults::default()
        });
        let got: Vec<_> = (0..4).map(|_| decide(&proxy, &ddb("Scan", "{}"))).collect();
        use Verdict::{Forward, Truncate};
        assert_eq!(got, [Forward, Truncate, Forward, Truncate]);
        assert_eq!(Stats::get(&bench.stats.network_faults), 2);
        assert_eq!(Stats::get(&bench.stats.data_calls), 4);
    }

    #[test]
    fn scan_throttles_take_the_three_codes_in_turn_and_errors_are_500s() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            scan_throttle_every: 1,
            ..Faults::default()
        });
        let codes: Vec<_> = (0..3)
            .map(|_| {
                let text = answer(decide(&proxy, &ddb("Scan", "{}")));
                let body = &text[text.find('{').unwrap()..];
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                v["__type"]
                    .as_str()
                    .unwrap()
                    .rsplit('#')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            codes,
            [
                "ThrottlingException",
                "RequestLimitExceeded",
                "ProvisionedThroughputExceededException"
            ]
        );
        let proxy = bench.proxy(Faults {
            scan_error_every: 4,
            ..Faults::default()
        });
        let failed = answer(decide(&proxy, &ddb("Scan", "{}")));
        assert!(failed.starts_with("HTTP/1.1 500"), "{failed}");
        assert_eq!(Stats::get(&bench.stats.scan_faults), 4);
    }

    #[test]
    fn batch_writes_are_throttled_or_cut_short_on_their_schedules() {
        let bench = Bench::new();
        let proxy = bench.proxy(Faults {
            throttle_every: 3,
            unprocessed_every: 2,
            ..Faults::default()
        });
        let got: Vec<_> = (0..6)
            .map(|_| match decide(&proxy, &ddb("BatchWriteItem", "{}")) {
                Verdict::Answer(_) => "throttled",
                Verdict::Partial => "partial",
                Verdict::Forward => "forwarded",
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                "forwarded",
                "partial",
                "throttled",
                "partial",
                "forwarded",
                "throttled"
            ]
        );
        assert_eq!(Stats::get(&bench.stats.throttled), 2);
    }

    #[test]
    fn a_simulated_on_demand_table_throttles_writes_past_its_capacity() {
        let mut bench = Bench::new();
        bench.sim = Some(Mutex::new(Sim::new(OnDemandTable {
            start: 3.0,
            double_after: Duration::from_secs(60),
            max: 6.0,
        })));
        let proxy = bench.proxy(Faults::default());
        let two = r#"{"RequestItems":{"t":[{"PutRequest":{}},{"PutRequest":{}}]}}"#;
        assert_eq!(batch_items(two.as_bytes()), 2);
        assert_eq!(batch_items(b"not json"), 0);
        assert_eq!(
            decide(&proxy, &ddb("BatchWriteItem", two)),
            Verdict::Forward
        );
        let refused = answer(decide(&proxy, &ddb("BatchWriteItem", two)));
        assert!(refused.contains("simulated on-demand table"), "{refused}");
        assert_eq!(Stats::get(&bench.stats.throttled), 1);
    }

    #[test]
    fn an_on_demand_table_doubles_after_a_busy_spell_up_to_its_most() {
        let table = OnDemandTable {
            start: 10.0,
            double_after: Duration::from_secs(2),
            max: 30.0,
        };
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut sim = Sim::new(table);
        assert!(sim.admit(at(0), 6.0));
        assert!(!sim.admit(at(10), 5.0), "past 10 units in the second");
        assert!(sim.admit(at(20), 4.0));
        // Used at half its capacity or more from 900 ms on: doubled 2 s later.
        let mut sim = Sim::new(table);
        let capacity = |sim: &mut Sim, ms, units| {
            assert!(sim.admit(at(ms), units), "at {ms} ms");
            sim.capacity
        };
        let got: Vec<f64> = (0..5).map(|i| capacity(&mut sim, i * 900, 5.0)).collect();
        assert_eq!(got, [10.0, 10.0, 10.0, 10.0, 20.0]);
        let got: Vec<f64> = (5..10).map(|i| capacity(&mut sim, i * 900, 10.0)).collect();
        assert_eq!(got, [20.0, 20.0, 20.0, 20.0, 30.0], "no more than its most");
        assert_eq!(capacity(&mut sim, 11 * 900, 15.0), 30.0);
        // An idle spell starts the busy clock again.
        let mut idle = Sim::new(table);
        let got: Vec<f64> = [0, 900, 2500, 3400, 4300]
            .into_iter()
            .map(|ms| capacity(&mut idle, ms, 5.0))
            .collect();
        assert_eq!(got, [10.0; 5]);
    }

    #[test]
    fn a_cut_batch_sends_half_of_each_table_and_answers_the_rest_unprocessed() {
        let body = serde_json::json!({"RequestItems": {
            "a": [{"PutRequest": {"n": 1}}, {"PutRequest": {"n": 2}}, {"PutRequest": {"n": 3}}],
            "b": [{"PutRequest": {"n": 4}}],
        }});
        let (sent, held) = split_batch(&serde_json::to_vec(&body).unwrap());
        let sent: serde_json::Value = serde_json::from_slice(&sent).unwrap();
        assert_eq!(sent["RequestItems"]["a"].as_array().unwrap().len(), 2);
        assert_eq!(sent["RequestItems"]["b"].as_array().unwrap().len(), 1);
        assert_eq!(
            serde_json::Value::Object(held.clone()),
            serde_json::json!({"a": [{"PutRequest": {"n": 3}}]})
        );
        let answered = with_unprocessed(http("200 OK", r#"{"UnprocessedItems":{}}"#), held.clone());
        let end = find(&answered, b"\r\n\r\n").unwrap();
        let out: serde_json::Value = serde_json::from_slice(&answered[end + 4..]).unwrap();
        assert_eq!(out["UnprocessedItems"]["a"][0]["PutRequest"]["n"], 3);
        let refused = http("400 Bad Request", r#"{"__type":"x"}"#);
        assert_eq!(with_unprocessed(refused.clone(), held), refused);
    }

    #[tokio::test]
    async fn every_nth_batch_write_is_throttled_and_the_rest_forwarded_and_counted() {
        let proxy = FaultProxy::start(
            &upstream().await,
            Faults {
                throttle_every: 2,
                ..Faults::default()
            },
        )
        .await;
        let batch = serde_json::json!({"RequestItems": {"t": []}});
        let target = "DynamoDB_20120810.BatchWriteItem";
        let mut throttled = 0;
        for _ in 0..4 {
            let (head, body) = post_json(&proxy.url, target, &batch).await;
            if head.starts_with("HTTP/1.1 400") {
                assert!(
                    body["__type"]
                        .as_str()
                        .unwrap()
                        .ends_with("ProvisionedThroughputExceededException"),
                    "{body}"
                );
                throttled += 1;
            } else {
                assert_eq!(body["upstream"], true, "{head}");
            }
        }
        assert_eq!(throttled, 2, "every second call");
        assert_eq!(Stats::get(&proxy.stats.throttled), 2);
        assert_eq!(proxy.stats.count("dynamodb:BatchWriteItem"), 4);
        // Another operation passes untouched.
        let (head, body) = post_json(&proxy.url, "DynamoDB_20120810.DescribeTable", &batch).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body["upstream"], true);
    }

    #[tokio::test]
    async fn exports_stay_in_progress_while_the_proxy_says_so() {
        let proxy = FaultProxy::start(
            &upstream().await,
            Faults {
                exports_in_progress: true,
                ..Faults::default()
            },
        )
        .await;
        let ask = serde_json::json!({"ExportArn": "arn:aws:dynamodb:us-east-1:1:table/t/export/1"});
        for _ in 0..3 {
            let (_, body) = post_json(&proxy.url, "DynamoDB_20120810.DescribeExport", &ask).await;
            assert_eq!(
                body["ExportDescription"]["ExportStatus"], "IN_PROGRESS",
                "{body}"
            );
        }
        assert_eq!(proxy.stats.count("dynamodb:DescribeExport"), 3);
    }
}
