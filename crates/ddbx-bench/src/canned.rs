//! A canned DynamoDB endpoint: one table of generated items held in memory, its Scan pages
//! served from memory (honouring Segment, TotalSegments, ExclusiveStartKey and Limit, and
//! DynamoDB's 1 MB page size), plus the few control-plane calls an export makes. Against
//! it, an export's wall and CPU time are the tool's own, not an emulator's.

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
    /// Where to keep the read units consumed in each 10-second window (JSON), if anywhere.
    pub meter: Option<std::path::PathBuf>,
    windows: std::sync::Mutex<(Option<std::time::Instant>, Vec<f64>)>,
}

impl Table {
    /// `count` items made by `item` (the same items `load` writes to an emulator).
    pub fn new(name: &str, count: u64, item: impl Fn(u64) -> ddbx_core::item::Item) -> Self {
        let mut items = Vec::with_capacity(count as usize);
        let mut bytes = 0;
        for i in 0..count {
            let mut line = Vec::new();
            ddbx_core::item::dynamodb_json::encode_line(&item(i), &mut line);
            // `{"Item":` ... `}\n` around the map.
            let map = line[8..line.len() - 2].to_vec();
            bytes += map.len() as u64;
            items.push(map);
        }
        Self {
            name: name.to_string(),
            items,
            bytes,
            read_units: 40_000,
            meter: None,
            windows: std::sync::Mutex::new((None, Vec::new())),
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
            "describetable" => describe(table),
            "describetimetolive" => {
                br#"{"TimeToLiveDescription":{"TimeToLiveStatus":"DISABLED"}}"#.to_vec()
            }
            "listtables" => format!(r#"{{"TableNames":["{}"]}}"#, table.name).into_bytes(),
            other => format!(r#"{{"__type":"UnknownOperationException","message":"{other}"}}"#)
                .into_bytes(),
        };
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        reply.extend_from_slice(&answer);
        conn.write_all(&reply).await?;
    }
}

fn describe(table: &Table) -> Vec<u8> {
    format!(
        r#"{{"Table":{{"TableName":"{}","TableStatus":"ACTIVE","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}}],"ItemCount":{},"TableSizeBytes":{},"ProvisionedThroughput":{{"ReadCapacityUnits":{},"WriteCapacityUnits":40000,"NumberOfDecreasesToday":0}},"BillingModeSummary":{{"BillingMode":"PROVISIONED"}},"CreationDateTime":1700000000}}}}"#,
        table.name,
        table.items.len(),
        table.bytes,
        table.read_units
    )
    .into_bytes()
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
            table.name
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
