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
        // splitmix64 of the seed: nearby seeds give unrelated sequences.
        let mut z = faults
            .random
            .map_or(1, |r| r.seed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let rng = Arc::new(Mutex::new((z ^ (z >> 31)) | 1));
        let sim = Arc::new(faults.on_demand.map(|table| {
            Mutex::new(Sim {
                table,
                capacity: table.start,
                window: Default::default(),
                busy_since: None,
            })
        }));
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
                    let _ =
                        serve(conn, &upstream, faults, &stats, &rng, sim.as_ref().as_ref()).await;
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

/// Read one request (by Content-Length) from a connection; None when it closes.
pub async fn read_message(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
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
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
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

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    faults: Faults,
    stats: &Stats,
    rng: &Mutex<u64>,
    sim: Option<&Mutex<Sim>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_message(&mut conn, &mut buf).await? {
        let head = req.head.to_ascii_lowercase();
        let is_batch = head.contains("dynamodb_20120810.batchwriteitem");
        let is_scan = head.contains("dynamodb_20120810.scan");
        let request_line = req.head.lines().next().unwrap_or("").to_string();
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
        match header(&req.head, "x-amz-target") {
            Some(target) => {
                let (service, op) = target.split_once('.').unwrap_or(("", target));
                let action = match service {
                    "AnyScaleFrontendService" => format!("application-autoscaling:{op}"),
                    "ElasticMapReduce" => format!("elasticmapreduce:{op}"),
                    _ => format!("dynamodb:{op}"),
                };
                stats.calls.lock().unwrap().push(action.clone());
                if let (Some(sim), "dynamodb:DescribeTable") = (sim, action.as_str()) {
                    // What DynamoDB says of an on-demand table: the writes it takes now.
                    let resp = forward(upstream, &with_body(&req.head, &req.body)).await?;
                    let end = find(&resp, b"\r\n\r\n").unwrap();
                    let head = String::from_utf8_lossy(&resp[..end]).to_string();
                    let mut out: serde_json::Value =
                        serde_json::from_slice(&resp[end + 4..]).unwrap_or_default();
                    let on_demand =
                        out["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST";
                    if head.contains(" 200 ") && on_demand {
                        let writes = sim.lock().unwrap().capacity;
                        out["Table"]["WarmThroughput"] = serde_json::json!({
                            "ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": writes as i64, "Status": "ACTIVE"});
                        conn.write_all(&with_body(&head, &serde_json::to_vec(&out).unwrap()))
                            .await?;
                    } else {
                        conn.write_all(&resp).await?;
                    }
                    continue;
                }
                if faults.exports_in_progress && action == "dynamodb:DescribeExport" {
                    let asked: serde_json::Value =
                        serde_json::from_slice(&req.body).unwrap_or_default();
                    let arn = asked["ExportArn"].as_str().unwrap_or("");
                    conn.write_all(&response(
                        "200 OK",
                        &format!(r#"{{"ExportDescription":{{"ExportArn":"{arn}","ExportStatus":"IN_PROGRESS"}}}}"#),
                    ))
                    .await?;
                    continue;
                }
                if let Some(key) = faults.refuse_kms_key {
                    if action == "dynamodb:CreateTable"
                        && String::from_utf8_lossy(&req.body).contains(key)
                    {
                        conn.write_all(&ddb_error(
                            "400 Bad Request",
                            "ValidationException",
                            &format!("KMS key {key} is not accessible to this account: kms:DescribeKey denied (injected)"),
                        ))
                        .await?;
                        continue;
                    }
                }
                if let Some(after) = faults.refuse_update_table_after {
                    if action == "dynamodb:UpdateTable" && stats.count(&action) as u64 > after {
                        conn.write_all(&ddb_error(
                            "400 Bad Request",
                            "LimitExceededException",
                            "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day (injected)",
                        ))
                        .await?;
                        continue;
                    }
                }
                if let Some(random) = faults.random {
                    if draw(rng) < random.rate {
                        stats.random_faults.fetch_add(1, Ordering::SeqCst);
                        match random.kind {
                            Kind::Throttle | Kind::ServerError => {
                                let (status, code) = if random.kind == Kind::Throttle {
                                    ("400 Bad Request", "ProvisionedThroughputExceededException")
                                } else {
                                    ("500 Internal Server Error", "InternalServerError")
                                };
                                conn.write_all(&ddb_error(status, code, "injected")).await?;
                                continue;
                            }
                            Kind::DropBefore => return Ok(()),
                            Kind::DropAfter => {
                                forward(upstream, &with_body(&req.head, &req.body)).await?;
                                return Ok(());
                            }
                            Kind::Truncate => {
                                let resp =
                                    forward(upstream, &with_body(&req.head, &req.body)).await?;
                                conn.write_all(&resp[..resp.len() / 2]).await?;
                                return Ok(());
                            }
                            Kind::Delay(d) => tokio::time::sleep(d).await,
                        }
                    }
                }
            }
            None => {
                stats
                    .calls
                    .lock()
                    .unwrap()
                    .push(s3_action(&request_line).to_string());
                if let Some(region) = faults.s3_bucket_region {
                    conn.write_all(&permanent_redirect(&request_line, region))
                        .await?;
                    continue;
                }
                if let Some(owner) = faults.bucket_owner {
                    match header(&req.head, "x-amz-expected-bucket-owner") {
                        None => {
                            stats.s3_without_owner.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(named) if named != owner => {
                            conn.write_all(&s3_error("403 Forbidden", "AccessDenied"))
                                .await?;
                            continue;
                        }
                        Some(_) => {}
                    }
                }
                if let Some(denied) = faults.s3_deny_delete_under {
                    if request_line.starts_with("POST ") && request_line.contains("?delete") {
                        let body = String::from_utf8_lossy(&req.body).to_string();
                        let keys: Vec<String> = body
                            .split("<Key>")
                            .skip(1)
                            .filter_map(|k| k.split("</Key>").next().map(str::to_string))
                            .collect();
                        if keys.iter().any(|k| k.starts_with(denied)) {
                            stats.s3_refused_writes.fetch_add(1, Ordering::SeqCst);
                            let mut xml = String::from(
                                r#"<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
                            );
                            for k in &keys {
                                xml.push_str(&format!("<Error><Key>{k}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"));
                            }
                            xml.push_str("</DeleteResult>");
                            conn.write_all(&with_body(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n",
                                xml.as_bytes(),
                            ))
                            .await?;
                            continue;
                        }
                    }
                }
                if let Some(prefix) = faults.s3_read_only {
                    let mut words = request_line.split(' ');
                    let method = words.next().unwrap_or("");
                    let path = words.next().unwrap_or("").trim_start_matches('/');
                    let reads = matches!(method, "GET" | "HEAD");
                    if !reads && path.starts_with(prefix) {
                        stats.s3_refused_writes.fetch_add(1, Ordering::SeqCst);
                        conn.write_all(&s3_error("403 Forbidden", "AccessDenied"))
                            .await?;
                        continue;
                    }
                }
                let is_part =
                    request_line.starts_with("PUT ") && request_line.contains("partNumber=");
                if is_part && faults.s3_refuse_parts {
                    stats.s3_part_faults.fetch_add(1, Ordering::SeqCst);
                    conn.write_all(&s3_error("403 Forbidden", "AccessDenied"))
                        .await?;
                    continue;
                }
                if is_part && faults.s3_part_fault_every > 0 {
                    let n = stats.s3_puts.fetch_add(1, Ordering::SeqCst) + 1;
                    if n % faults.s3_part_fault_every == 0 {
                        stats.s3_part_faults.fetch_add(1, Ordering::SeqCst);
                        if (n / faults.s3_part_fault_every) % 2 == 0 {
                            conn.write_all(&s3_error("500 Internal Server Error", "InternalError"))
                                .await?;
                            continue;
                        }
                        forward(upstream, &with_body(&req.head, &req.body)).await?;
                        return Ok(());
                    }
                }
            }
        }
        if faults.s3_slowdown_every > 0 && req.head.starts_with("PUT ") {
            let n = stats.s3_puts.fetch_add(1, Ordering::SeqCst) + 1;
            if n % faults.s3_slowdown_every == 0 {
                stats.s3_slowdowns.fetch_add(1, Ordering::SeqCst);
                conn.write_all(&s3_error("503 Service Unavailable", "SlowDown"))
                    .await?;
                continue;
            }
        }
        if is_scan {
            if let Some(table) = faults.deny_scan_of {
                if String::from_utf8_lossy(&req.body)
                    .contains(&format!("\"TableName\":\"{table}\""))
                {
                    let reply = ddb_error(
                        "400 Bad Request",
                        "AccessDeniedException",
                        "injected: not authorized to perform dynamodb:Scan",
                    );
                    conn.write_all(&reply).await?;
                    continue;
                }
            }
        }
        if is_scan || is_batch {
            let n = stats.data_calls.fetch_add(1, Ordering::SeqCst) + 1;
            if faults.drop_every > 0 && n % faults.drop_every == 0 {
                stats.network_faults.fetch_add(1, Ordering::SeqCst);
                if (n / faults.drop_every) % 2 == 0 {
                    forward(upstream, &with_body(&req.head, &req.body)).await?;
                }
                return Ok(()); // the connection closes unanswered
            }
            if faults.truncate_every > 0 && n % faults.truncate_every == 0 {
                stats.network_faults.fetch_add(1, Ordering::SeqCst);
                let resp = forward(upstream, &with_body(&req.head, &req.body)).await?;
                conn.write_all(&resp[..resp.len() / 2]).await?;
                return Ok(());
            }
        }
        let reply = if is_scan {
            let n = stats.scan_calls.fetch_add(1, Ordering::SeqCst) + 1;
            if faults.scan_throttle_every > 0 && n % faults.scan_throttle_every == 0 {
                stats.scan_faults.fetch_add(1, Ordering::SeqCst);
                let code = [
                    "ProvisionedThroughputExceededException",
                    "ThrottlingException",
                    "RequestLimitExceeded",
                ][(n / faults.scan_throttle_every % 3) as usize];
                ddb_error("400 Bad Request", code, "injected")
            } else if faults.scan_error_every > 0 && n % faults.scan_error_every == 0 {
                stats.scan_faults.fetch_add(1, Ordering::SeqCst);
                ddb_error(
                    "500 Internal Server Error",
                    "InternalServerError",
                    "injected",
                )
            } else {
                forward(upstream, &with_body(&req.head, &req.body)).await?
            }
        } else if is_batch {
            let n = stats.batch_calls.fetch_add(1, Ordering::SeqCst) + 1;
            let items = || {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                body["RequestItems"].as_object().map_or(0, |t| {
                    t.values()
                        .filter_map(|r| r.as_array())
                        .map(Vec::len)
                        .sum::<usize>()
                })
            };
            let refused =
                sim.is_some_and(|s| !s.lock().unwrap().admit(Instant::now(), items() as f64));
            if refused {
                stats.throttled.fetch_add(1, Ordering::SeqCst);
                ddb_error(
                    "400 Bad Request",
                    "ProvisionedThroughputExceededException",
                    "simulated on-demand table: throughput exceeds the current capacity of your table or index",
                )
            } else if faults.throttle_every > 0 && n % faults.throttle_every == 0 {
                stats.throttled.fetch_add(1, Ordering::SeqCst);
                ddb_error(
                    "400 Bad Request",
                    "ProvisionedThroughputExceededException",
                    "injected throttle",
                )
            } else if faults.unprocessed_every > 0 && n % faults.unprocessed_every == 0 {
                partial(upstream, &req, stats).await?
            } else {
                forward(upstream, &with_body(&req.head, &req.body)).await?
            }
        } else {
            forward(upstream, &with_body(&req.head, &req.body)).await?
        };
        conn.write_all(&reply).await?;
    }
    Ok(())
}

/// Forward the first half of each table's requests; return the rest as unprocessed.
async fn partial(upstream: &str, req: &Request, stats: &Stats) -> std::io::Result<Vec<u8>> {
    let mut body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let mut held = serde_json::Map::new();
    for (table, reqs) in body["RequestItems"].as_object_mut().unwrap() {
        let list = reqs.as_array_mut().unwrap();
        let keep = list.len().div_ceil(2);
        let rest: Vec<_> = list.split_off(keep);
        if !rest.is_empty() {
            stats
                .unprocessed_items
                .fetch_add(rest.len() as u64, Ordering::SeqCst);
            held.insert(table.clone(), serde_json::Value::Array(rest));
        }
    }
    let sent = serde_json::to_vec(&body).unwrap();
    let resp = forward(upstream, &with_body(&req.head, &sent)).await?;
    let end = find(&resp, b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    if !head.contains(" 200 ") {
        return Ok(resp);
    }
    let mut out: serde_json::Value = serde_json::from_slice(&resp[end + 4..]).unwrap();
    out["UnprocessedItems"] = serde_json::Value::Object(held);
    let body = serde_json::to_vec(&out).unwrap();
    Ok(with_body(&head, &body))
}
