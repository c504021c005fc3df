//! A canned DynamoDB endpoint: one table of generated items held in memory, its Scan pages
//! served from memory (honouring Segment, TotalSegments, ExclusiveStartKey and Limit, and
//! DynamoDB's 1 MB page size), BatchWriteItem into any table name taken and discarded
//! (metered as DynamoDB charges, a share optionally answered as UnprocessedItems), plus
//! the few control-plane calls an export or an import makes. Against it, an export's or
//! an import's wall and CPU time are the tool's own, not an emulator's.
//!
//! As a fleet ([`Table::fleet`]), it serves many tables named with a common prefix, each
//! holding the same items: ListTables paged as DynamoDB pages it (at most 100 names a
//! page, `Limit` 1 to 100, `ExclusiveStartTableName`, `LastEvaluatedTableName`, names in
//! order), and each of them described and scanned.
//!
//! What it counts of the writes (`DdbxBench.Stats`, a call of its own): the puts taken, a
//! sum of their keys' hashes (so that a benchmark can tell every item was written once),
//! the units charged and the items answered as unprocessed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The table: each item's DynamoDB JSON map (`{"pk":{"S":...},...}`).
pub struct Table {
    name: String,
    items: Vec<Vec<u8>>,
    bytes: u64,
    /// Provisioned read capacity it reports.
    pub read_units: i64,
    /// Provisioned write capacity it reports (for every table name).
    pub write_units: i64,
    /// Where to keep the read units consumed in each 10-second window (JSON), if anywhere.
    pub meter: Option<std::path::PathBuf>,
    windows: std::sync::Mutex<(Option<std::time::Instant>, Vec<f64>)>,
    /// The share of each BatchWriteItem's requests answered as unprocessed (rounded down,
    /// so that a resent remainder is eventually all taken).
    pub unprocessed_share: f64,
    writes: Writes,
    /// The key hash sum of the table's own items: what [`Writes::key_sum`] gains when they
    /// are all written once.
    expected_key_sum: u64,
    /// The items' total size as DynamoDB counts it.
    item_bytes: u64,
    /// The fleet's table names, sorted (empty: the one table `name`).
    fleet: Vec<String>,
}

/// What BatchWriteItem calls have taken so far.
#[derive(Default)]
struct Writes {
    puts: AtomicU64,
    key_sum: AtomicU64,
    /// Write units charged, in thousandths.
    milli_units: AtomicU64,
    unprocessed: AtomicU64,
    calls: AtomicU64,
}

impl Table {
    /// `count` items made by `item` (the same items `load` writes to an emulator).
    pub fn new(name: &str, count: u64, item: impl Fn(u64) -> ddbx_core::item::Item + Sync) -> Self {
        // Made on every core: ten million items take a minute on one.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let chunk = count.div_ceil(threads.max(1)).max(1);
        let parts: Vec<_> = std::thread::scope(|scope| {
            let item = &item;
            let handles: Vec<_> = (0..count.div_ceil(chunk))
                .map(|t| {
                    scope.spawn(move || {
                        let mut part = (Vec::new(), 0u64, 0u64, 0u64);
                        for i in t * chunk..((t + 1) * chunk).min(count) {
                            let mut line = Vec::new();
                            let item = item(i);
                            part.2 += guide_size(&item) as u64;
                            if let Some(ddbx_core::item::AttributeValue::S(pk)) = item.get("pk") {
                                part.3 = part.3.wrapping_add(key_hash(pk));
                            }
                            ddbx_core::item::dynamodb_json::encode_line(&item, &mut line);
                            // `{"Item":` ... `}\n` around the map.
                            let map = line[8..line.len() - 2].to_vec();
                            part.1 += map.len() as u64;
                            part.0.push(map);
                        }
                        part
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("generator"))
                .collect()
        });
        let mut items = Vec::with_capacity(count as usize);
        let (mut bytes, mut item_bytes, mut expected_key_sum) = (0, 0, 0u64);
        for (part, b, ib, keys) in parts {
            items.extend(part);
            bytes += b;
            item_bytes += ib;
            expected_key_sum = expected_key_sum.wrapping_add(keys);
        }
        Self {
            name: name.to_string(),
            items,
            bytes,
            read_units: 40_000,
            write_units: 40_000,
            meter: None,
            windows: std::sync::Mutex::new((None, Vec::new())),
            unprocessed_share: 0.0,
            writes: Writes::default(),
            expected_key_sum,
            item_bytes,
            fleet: Vec::new(),
        }
    }

    /// Serve `tables` tables named `<name><number>` (numbers zero-padded, so that their
    /// names sort as their numbers), each holding this table's items.
    pub fn fleet(mut self, tables: usize) -> Self {
        let width = tables.saturating_sub(1).to_string().len();
        self.fleet = (0..tables)
            .map(|i| format!("{}{i:0width$}", self.name))
            .collect();
        self
    }

    /// Whether `name` is one of the tables holding the items.
    fn holds(&self, name: &str) -> bool {
        if self.fleet.is_empty() {
            name == self.name
        } else {
            self.fleet
                .binary_search_by(|n| n.as_str().cmp(name))
                .is_ok()
        }
    }

    /// The names ListTables lists.
    fn names(&self) -> &[String] {
        if self.fleet.is_empty() {
            std::slice::from_ref(&self.name)
        } else {
            &self.fleet
        }
    }
}

/// Serve `table` on 127.0.0.1:`port` until killed.
pub async fn serve(table: Table, port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    let table = Arc::new(table);
    eprintln!("canned endpoint on http://127.0.0.1:{port}");
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let table = table.clone();
        tokio::spawn(async move {
            let _ = connection(conn, &table).await;
        });
    }
}

async fn connection(mut conn: TcpStream, table: &Table) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let (head, body) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    break (head, body);
                }
            }
            let mut chunk = [0u8; 65536];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let target = head
            .lines()
            .find_map(|l| l.strip_prefix("x-amz-target:"))
            .unwrap_or("")
            .trim()
            .to_string();
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let answer = match target.rsplit('.').next().unwrap_or("") {
            "scan" => scan(table, &request),
            "batchwriteitem" => batch_write(table, &request),
            "stats" => stats(table),
            "describetable" => describe(table, request["TableName"].as_str()),
            "describetimetolive" => {
                br#"{"TimeToLiveDescription":{"TimeToLiveStatus":"DISABLED"}}"#.to_vec()
            }
            "describecontinuousbackups" => br#"{"ContinuousBackupsDescription":{"ContinuousBackupsStatus":"ENABLED","PointInTimeRecoveryDescription":{"PointInTimeRecoveryStatus":"DISABLED"}}}"#.to_vec(),
            "listtagsofresource" => br#"{"Tags":[]}"#.to_vec(),
            "listtables" => list_tables(table, &request),
            other => format!(r#"{{"__type":"UnknownOperationException","message":"{other}"}}"#)
                .into_bytes(),
        };
        // An error answer is a 400, as DynamoDB sends it.
        let status = if answer.starts_with(b"{\"__type\"") {
            "400 Bad Request"
        } else {
            "200 OK"
        };
        let mut reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        reply.extend_from_slice(&answer);
        conn.write_all(&reply).await?;
    }
}

/// One ListTables page, as DynamoDB pages it: the names after `ExclusiveStartTableName`
/// in order, at most `Limit` (1 to 100, default 100) of them, and the last one as
/// `LastEvaluatedTableName` when more follow.
fn list_tables(table: &Table, req: &serde_json::Value) -> Vec<u8> {
    let limit = match req["Limit"].as_u64() {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Limit must be between 1 and 100"}"#.to_vec(),
    };
    let names = table.names();
    let from = match req["ExclusiveStartTableName"].as_str() {
        Some(start) => names.partition_point(|n| n.as_str() <= start),
        None => 0,
    };
    let page = &names[from..(from + limit).min(names.len())];
    let mut answer = serde_json::json!({ "TableNames": page });
    if from + page.len() < names.len() {
        answer["LastEvaluatedTableName"] = page.last().cloned().into();
    }
    serde_json::to_vec(&answer).expect("JSON")
}

fn describe(table: &Table, name: Option<&str>) -> Vec<u8> {
    let name = name.unwrap_or(&table.name);
    let (count, bytes) = if table.holds(name) {
        (table.items.len(), table.bytes)
    } else {
        (0, 0)
    };
    format!(
        r#"{{"Table":{{"TableName":"{}","TableStatus":"ACTIVE","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}}],"ItemCount":{},"TableSizeBytes":{},"ProvisionedThroughput":{{"ReadCapacityUnits":{},"WriteCapacityUnits":{},"NumberOfDecreasesToday":0}},"BillingModeSummary":{{"BillingMode":"PROVISIONED"}},"CreationDateTime":1700000000,"TableArn":"arn:aws:dynamodb:us-east-1:000000000000:table/{}"}}}}"#,
        name, count, bytes, table.read_units, table.write_units, name
    )
    .into_bytes()
}

/// Takes every put and delete of a BatchWriteItem call (but the unprocessed share, whose
/// requests go back as they came) and charges what DynamoDB would: one unit per started
/// KB of each item (keys only, for a delete: one unit).
fn batch_write(table: &Table, req: &serde_json::Value) -> Vec<u8> {
    let Some(tables) = req["RequestItems"].as_object() else {
        return br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"RequestItems is required"}"#.to_vec();
    };
    let w = &table.writes;
    w.calls.fetch_add(1, Ordering::Relaxed);
    let mut unprocessed = serde_json::Map::new();
    let mut consumed = Vec::new();
    for (name, requests) in tables {
        let requests = requests.as_array().map(Vec::as_slice).unwrap_or_default();
        if requests.is_empty() || requests.len() > 25 {
            return br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"1 to 25 requests per call"}"#.to_vec();
        }
        let left = (requests.len() as f64 * table.unprocessed_share).floor() as usize;
        let (taken, back) = requests.split_at(requests.len() - left);
        let mut units = 0.0;
        for r in taken {
            if let Some(item) = r["PutRequest"]["Item"].as_object() {
                units += (size_of_map(item) as f64 / 1024.0).ceil().max(1.0);
                w.puts.fetch_add(1, Ordering::Relaxed);
                if let Some(pk) = item.get("pk").and_then(|v| v["S"].as_str()) {
                    w.key_sum.fetch_add(key_hash(pk), Ordering::Relaxed);
                }
            } else {
                units += 1.0;
            }
        }
        w.milli_units
            .fetch_add((units * 1000.0) as u64, Ordering::Relaxed);
        w.unprocessed
            .fetch_add(back.len() as u64, Ordering::Relaxed);
        if !back.is_empty() {
            unprocessed.insert(name.clone(), serde_json::Value::Array(back.to_vec()));
        }
        consumed.push(serde_json::json!({"TableName": name, "CapacityUnits": units}));
    }
    serde_json::to_vec(&serde_json::json!({
        "UnprocessedItems": unprocessed,
        "ConsumedCapacity": consumed,
    }))
    .expect("JSON")
}

/// [`size_of_map`]'s count, for an item the generator made.
fn guide_size(item: &ddbx_core::item::Item) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    fn number(n: &str) -> usize {
        n.trim_start_matches('-').len().div_ceil(2) + 1
    }
    fn value(v: &V) -> usize {
        match v {
            V::S(s) => s.len(),
            V::N(n) => number(n),
            V::B(b) => b.as_ref().len(),
            V::Ss(s) => s.iter().map(String::len).sum(),
            V::Ns(s) => s.iter().map(|n| number(n)).sum(),
            V::Bs(s) => s.iter().map(|b| b.as_ref().len()).sum(),
            V::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value(v) + 1).sum::<usize>(),
            V::L(l) => 3 + l.iter().map(|v| value(v) + 1).sum::<usize>(),
            _ => 1,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// An item's size as DynamoDB's developer guide counts it: names' and values' UTF-8
/// lengths, binary decoded, numbers at about one byte per two digits, 3 bytes per list or
/// map plus one per element. (Written from the guide, not from ddbx's code.)
fn size_of_map(m: &serde_json::Map<String, serde_json::Value>) -> usize {
    m.iter().map(|(k, v)| k.len() + size_of_value(v)).sum()
}

fn size_of_value(v: &serde_json::Value) -> usize {
    let Some((kind, v)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let scalar = |kind: &str, v: &serde_json::Value| {
        let s = v.as_str().unwrap_or("");
        match kind {
            "N" | "NS" => s.trim_start_matches('-').len().div_ceil(2) + 1,
            "B" | "BS" => s.len() / 4 * 3 - s.bytes().rev().take_while(|&b| b == b'=').count(),
            _ => s.len(),
        }
    };
    match kind.as_str() {
        "S" | "N" | "B" => scalar(kind, v),
        "SS" | "NS" | "BS" => v
            .as_array()
            .map(|a| a.iter().map(|m| scalar(kind, m)).sum())
            .unwrap_or(0),
        "M" => {
            3 + v
                .as_object()
                .map(|m| m.iter().map(|(k, v)| k.len() + size_of_value(v) + 1).sum())
                .unwrap_or(0)
        }
        "L" => {
            3 + v
                .as_array()
                .map(|a| a.iter().map(|v| size_of_value(v) + 1).sum())
                .unwrap_or(0)
        }
        _ => 1,
    }
}

/// FNV-1a of a key: summed over the puts taken, equal to the table's own sum when each of
/// its items was written exactly once (a lost item and a duplicate do not cancel out,
/// short of a 2^-64 coincidence).
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `DdbxBench.Stats`: the writes taken so far.
fn stats(table: &Table) -> Vec<u8> {
    let w = &table.writes;
    serde_json::to_vec(&serde_json::json!({
        "calls": w.calls.load(Ordering::Relaxed),
        "puts": w.puts.load(Ordering::Relaxed),
        "key_sum": w.key_sum.load(Ordering::Relaxed),
        "expected_key_sum": table.expected_key_sum,
        "items": table.items.len(),
        "item_bytes": table.item_bytes,
        "units": w.milli_units.load(Ordering::Relaxed) as f64 / 1000.0,
        "unprocessed": w.unprocessed.load(Ordering::Relaxed),
    }))
    .expect("JSON")
}

/// One Scan page: the segment's items (index ≡ segment mod total) after the start key.
fn scan(table: &Table, req: &serde_json::Value) -> Vec<u8> {
    let total = req["TotalSegments"].as_u64().unwrap_or(1).max(1) as usize;
    let segment = req["Segment"].as_u64().unwrap_or(0) as usize;
    let limit = req["Limit"].as_u64().unwrap_or(u64::MAX) as usize;
    let mut i = match req["ExclusiveStartKey"]["pk"]["S"].as_str() {
        Some(key) => {
            key.trim_start_matches("item-")
                .parse::<usize>()
                .unwrap_or(0)
                + total
        }
        None => segment,
    };
    let mut out = b"{\"Items\":[".to_vec();
    let (mut count, mut size) = (0usize, 0usize);
    while i < table.items.len() && count < limit && size < 1024 * 1024 {
        if count > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&table.items[i]);
        size += table.items[i].len();
        count += 1;
        i += total;
    }
    out.push(b']');
    // Eventually consistent: half a unit per 4 KB.
    let units = (size as f64 / 8192.0).ceil().max(0.5);
    meter(table, units);
    out.extend_from_slice(
        format!(
            r#","Count":{count},"ScannedCount":{count},"ConsumedCapacity":{{"TableName":"{}","CapacityUnits":{units}}}"#,
            req["TableName"].as_str().unwrap_or(&table.name)
        )
        .as_bytes(),
    );
    if i < table.items.len() {
        out.extend_from_slice(
            format!(
                r#","LastEvaluatedKey":{{"pk":{{"S":"item-{:010}"}}}}"#,
                i - total
            )
            .as_bytes(),
        );
    }
    out.push(b'}');
    out
}

/// Count `units` in the current 10-second window (from the first Scan) and write the
/// windows out.
fn meter(table: &Table, units: f64) {
    let Some(path) = &table.meter else {
        return;
    };
    let mut w = table.windows.lock().unwrap();
    let start = *w.0.get_or_insert_with(std::time::Instant::now);
    let i = (start.elapsed().as_secs_f64() / 10.0) as usize;
    if w.1.len() <= i {
        w.1.resize(i + 1, 0.0);
    }
    w.1[i] += units;
    let _ = std::fs::write(path, serde_json::to_vec(&w.1).expect("numbers"));
}

/// The CPU seconds of compressing `raw` with ddbx's own compressor for `codec` (one
/// thread, in memory: the cost of compression alone).
pub fn compress_seconds(raw: &[u8], codec: ddbx_core::plan::Compression) -> (f64, usize) {
    let start = std::time::Instant::now();
    let mut c = ddbx_core::format::compress::Compressor::new(codec);
    let mut out = 0;
    for chunk in raw.chunks(64 * 1024) {
        c.write(chunk);
        out += c.take().len();
    }
    out += c.finish().len();
    (start.elapsed().as_secs_f64(), out)
}
