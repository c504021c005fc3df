//! Helpers for `scripts/bench`: load a table with generated items, and the two baselines
//! every tool is compared with: a null scanner (a minimal parallel Scan that discards its
//! pages: the emulator's read ceiling) and a null writer (a minimal BatchWriteItem loop:
//! its write ceiling). They are deliberately bare: no encoding, no files, no rate limit.
//! Then ddbx's own ceiling: a canned endpoint serving Scan pages from memory and taking
//! BatchWriteItem calls (the null writer pointed at it is import's baseline), and the cost
//! of merely compressing an export's bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod canned;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as V, BillingMode, KeySchemaElement, KeyType,
    ProvisionedThroughput, PutRequest, ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    /// DynamoDB endpoint.
    #[arg(long)]
    endpoint_url: String,
    #[command(subcommand)]
    command: Cmd,
}

/// A table of generated items.
#[derive(clap::Args)]
struct Generated {
    #[arg(long)]
    table: String,
    #[arg(long)]
    items: u64,
    /// Approximate item size in bytes.
    #[arg(long, default_value_t = 200)]
    item_bytes: usize,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create TABLE (40,000 RCU/WCU, so capacity is never the limit) and write ITEMS generated items.
    Load {
        #[command(flatten)]
        generated: Generated,
        #[arg(long, default_value_t = 8)]
        writers: usize,
    },
    /// Write ITEMS generated items into TABLE, which must exist (for example on a canned
    /// endpoint): the null writer alone.
    NullWrite {
        #[command(flatten)]
        generated: Generated,
        #[arg(long, default_value_t = 8)]
        writers: usize,
    },
    /// Scan TABLE in SEGMENTS parallel segments and discard the pages.
    NullScan {
        #[arg(long)]
        table: String,
        #[arg(long, default_value_t = 8)]
        segments: i32,
    },
    /// Serve TABLE of ITEMS generated items from memory on PORT (a canned endpoint), or a
    /// fleet of such tables.
    Canned {
        #[command(flatten)]
        generated: Generated,
        #[arg(long)]
        port: u16,
        /// Provisioned read capacity the table reports.
        #[arg(long, default_value_t = 40_000)]
        read_units: i64,
        /// Provisioned write capacity every table reports.
        #[arg(long, default_value_t = 40_000)]
        write_units: i64,
        /// Keep the read units consumed in each 10-second window in this file (JSON).
        #[arg(long)]
        meter: Option<std::path::PathBuf>,
        /// Answer this share of each BatchWriteItem's requests (rounded down) as
        /// UnprocessedItems.
        #[arg(long, default_value_t = 0.0)]
        unprocessed_share: f64,
        /// Serve a fleet of this many tables instead of one: TABLE is their names' prefix
        /// (`<TABLE>0000` ...), each holding the ITEMS items, ListTables paged as DynamoDB
        /// pages it.
        #[arg(long)]
        fleet_tables: Option<usize>,
    },
    /// Decompress FILES (not timed), then print the seconds ddbx's own compressor takes to
    /// compress their bytes again with CODEC, and the uncompressed and compressed sizes.
    Compress {
        #[arg(long)]
        codec: String,
        files: Vec<std::path::PathBuf>,
    },
}

fn item(i: u64, bytes: usize) -> HashMap<String, V> {
    let mut m = HashMap::new();
    m.insert("pk".into(), V::S(format!("item-{i:010}")));
    m.insert(
        "n".into(),
        V::N(format!("{}.{}", i * 7919 % 1_000_003, i % 97)),
    );
    m.insert(
        "b".into(),
        V::B(Blob::new(
            (0..16)
                .map(|k| (i as u8).wrapping_mul(k + 1))
                .collect::<Vec<u8>>(),
        )),
    );
    m.insert("ok".into(), V::Bool(i % 3 == 0));
    m.insert(
        "tags".into(),
        V::Ss(vec!["red".into(), format!("t{}", i % 10)]),
    );
    m.insert(
        "m".into(),
        V::M(HashMap::from([
            ("a".to_string(), V::N((i % 1000).to_string())),
            ("z".to_string(), V::Null(true)),
        ])),
    );
    let used = 120;
    m.insert(
        "pad".into(),
        V::S("x".repeat(bytes.saturating_sub(used).max(1))),
    );
    m
}

async fn create(client: &Client, table: &str) {
    let _ = client.delete_table().table_name(table).send().await;
    loop {
        if client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(40_000)
                .write_capacity_units(40_000)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
    loop {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("describe");
        if d.table().and_then(|t| t.table_status()).map(|s| s.as_str()) == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The null writer: `writers` bare BatchWriteItem loops, unprocessed items resent; prints
/// the items written.
async fn write(client: &Client, generated: &Generated, writers: usize) {
    let Generated {
        table,
        items,
        item_bytes: bytes,
    } = generated;
    let (table, items, bytes) = (table.as_str(), *items, *bytes);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let client = client.clone();
            let next = next.clone();
            let table = table.to_string();
            tokio::spawn(async move {
                loop {
                    let start = next.fetch_add(25, Ordering::SeqCst);
                    if start >= items {
                        return;
                    }
                    let mut reqs: Vec<WriteRequest> = (start..(start + 25).min(items))
                        .map(|i| {
                            WriteRequest::builder()
                                .put_request(
                                    PutRequest::builder()
                                        .set_item(Some(item(i, bytes)))
                                        .build()
                                        .unwrap(),
                                )
                                .build()
                        })
                        .collect();
                    while !reqs.is_empty() {
                        let out = client
                            .batch_write_item()
                            .request_items(&table, reqs)
                            .send()
                            .await
                            .expect("batch write");
                        reqs = out
                            .unprocessed_items()
                            .and_then(|u| u.get(&table))
                            .cloned()
                            .unwrap_or_default();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    println!("{items}");
}

async fn null_scan(client: &Client, table: &str, segments: i32) -> u64 {
    let tasks: Vec<_> = (0..segments)
        .map(|segment| {
            let client = client.clone();
            let table = table.to_string();
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut start = None;
                loop {
                    let page = client
                        .scan()
                        .table_name(&table)
                        .segment(segment)
                        .total_segments(segments)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .expect("scan");
                    n += page.items().len() as u64;
                    match page.last_evaluated_key() {
                        Some(k) if !k.is_empty() => start = Some(k.clone()),
                        _ => return n,
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&cli.endpoint_url)
        .load()
        .await;
    let client = Client::new(&conf);
    match cli.command {
        Cmd::Load { generated, writers } => {
            create(&client, &generated.table).await;
            write(&client, &generated, writers).await;
        }
        Cmd::NullWrite { generated, writers } => write(&client, &generated, writers).await,
        Cmd::NullScan { table, segments } => {
            println!("{}", null_scan(&client, &table, segments).await)
        }
        Cmd::Canned {
            generated:
                Generated {
                    table,
                    items,
                    item_bytes,
                },
            port,
            read_units,
            write_units,
            meter,
            unprocessed_share,
            fleet_tables,
        } => {
            let mut t = canned::Table::new(&table, items, |i| item(i, item_bytes));
            if let Some(n) = fleet_tables {
                t = t.fleet(n);
            }
            t.read_units = read_units;
            t.write_units = write_units;
            t.meter = meter;
            t.unprocessed_share = unprocessed_share;
            canned::serve(t, port).await;
        }
        Cmd::Compress { codec, files } => {
            use std::io::Read;
            let mut raw = Vec::new();
            for f in files {
                let bytes = std::fs::read(&f).expect("read a data file");
                let mut text = Vec::new();
                match codec.as_str() {
                    "gzip" => flate2::read::MultiGzDecoder::new(&bytes[..])
                        .read_to_end(&mut text)
                        .expect("gzip"),
                    "zstd" => zstd::stream::read::Decoder::new(&bytes[..])
                        .expect("zstd")
                        .read_to_end(&mut text)
                        .expect("zstd"),
                    other => panic!("codec {other}"),
                };
                raw.extend_from_slice(&text);
            }
            let c = if codec == "gzip" {
                ddbx_core::plan::Compression::Gzip
            } else {
                ddbx_core::plan::Compression::Zstd
            };
            let (seconds, out) = canned::compress_seconds(&raw, c);
            println!("{seconds} {} {out}", raw.len());
        }
    }
}
