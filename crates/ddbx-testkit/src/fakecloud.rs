//! fakecloud (a DynamoDB with ExportTableToPointInTime, ImportTable and point-in-time
//! history, and the S3 those write to), one instance per test, on a free 127.0.0.1 port,
//! under libfaketime so that a test moves its clock forward (incremental windows are 15
//! minutes at least) without waiting: the clock is real time plus an offset that the test
//! writes into a file libfaketime rereads on every call. Monotonic clocks are left alone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::TestEnv;

/// A running fakecloud.
pub struct FakeCloud {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    time_file: PathBuf,
    offset_seconds: AtomicI64,
    /// A DynamoDB client of it.
    pub ddb: Client,
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeCloud {
    /// Start one for `env`, its log and clock file in the test's folder.
    pub async fn start(env: &TestEnv) -> Self {
        Self::start_with(env, &[]).await
    }

    /// Start one with more of its flags (`--iam strict`: IAM policies enforced, for every
    /// caller but the reserved `test` root identity).
    pub async fn start_with(env: &TestEnv, flags: &[&str]) -> Self {
        let e = &env.emulators;
        assert!(
            std::path::Path::new(&e.fakecloud).exists()
                && std::path::Path::new(&e.faketime).exists(),
            "fakecloud ({}) or libfaketime ({}) is missing: run scripts/emulators start --native",
            e.fakecloud,
            e.faketime
        );
        let dir = env.dir.path().join("fakecloud");
        std::fs::create_dir_all(&dir).unwrap();
        let time_file = dir.join("clock");
        std::fs::write(&time_file, "+0\n").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("fakecloud.log")).unwrap();
        let child = Command::new(&e.fakecloud)
            .args([
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--log-level",
                "warn",
            ])
            .args(flags)
            .env("FAKECLOUD_CONTAINER_CLI", "false")
            .env("LD_PRELOAD", &e.faketime)
            .env("FAKETIME_TIMESTAMP_FILE", &time_file)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start fakecloud");
        let url = format!("http://127.0.0.1:{port}");
        let health = format!("{url}/_fakecloud/health");
        let mut up = false;
        for _ in 0..200 {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                drop(s);
                let out = Command::new("curl")
                    .args(["-s", "-m", "2", &health])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&out.stdout).contains("\"ok\"") {
                    up = true;
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            up,
            "fakecloud did not come up: see {}",
            dir.join("fakecloud.log").display()
        );
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(crate::REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .endpoint_url(&url)
            .build();
        Self {
            url,
            child,
            time_file,
            offset_seconds: AtomicI64::new(0),
            ddb: Client::from_conf(conf),
        }
    }

    /// Move its clock `minutes` forward.
    pub fn advance_minutes(&self, minutes: i64) {
        let now = self
            .offset_seconds
            .fetch_add(minutes * 60, Ordering::SeqCst)
            + minutes * 60;
        std::fs::write(&self.time_file, format!("+{now}\n")).unwrap();
    }

    /// Its clock: real time plus the offset.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.offset_seconds.load(Ordering::SeqCst))
    }

    /// Turn point-in-time recovery on or off.
    pub async fn set_pitr(&self, table: &str, on: bool) {
        self.ddb
            .update_continuous_backups()
            .table_name(table)
            .point_in_time_recovery_specification(
                aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(on)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Whether point-in-time recovery is on.
    pub async fn pitr(&self, table: &str) -> bool {
        let d = self
            .ddb
            .describe_continuous_backups()
            .table_name(table)
            .send()
            .await
            .unwrap();
        d.continuous_backups_description()
            .and_then(|c| c.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            .is_some_and(|s| s.as_str() == "ENABLED")
    }

    /// Put items (one call each: fakecloud stamps each write with its clock).
    pub async fn put(&self, table: &str, items: &[HashMap<String, AttributeValue>]) {
        for chunk in items.chunks(25) {
            let reqs = crate::items::put_requests(chunk);
            self.ddb
                .batch_write_item()
                .request_items(table, reqs)
                .send()
                .await
                .unwrap();
        }
    }

    /// Delete the item with this key.
    pub async fn delete(&self, table: &str, key: HashMap<String, AttributeValue>) {
        self.ddb
            .delete_item()
            .table_name(table)
            .set_key(Some(key))
            .send()
            .await
            .unwrap();
    }

    /// Every item of a table.
    pub async fn scan_all(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        crate::scan_all(&self.ddb, table).await
    }

    /// A bucket of its S3.
    pub fn create_bucket(&self, env: &TestEnv, bucket: &str) {
        env.boto3_at(
            &self.url,
            "s3",
            "c.create_bucket(Bucket=sys.argv[2])\nr = True",
            &[bucket],
        );
    }

    /// Keys under a prefix of one of its buckets.
    pub fn keys(&self, env: &TestEnv, bucket: &str, prefix: &str) -> Vec<String> {
        let v = env.boto3_at(
            &self.url,
            "s3",
            "r = [o['Key'] for p in c.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]) for o in p.get('Contents', [])]",
            &[bucket, prefix],
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    }

    /// An object of one of its buckets.
    pub fn object(&self, env: &TestEnv, bucket: &str, key: &str) -> Vec<u8> {
        let v = env.boto3_at(
            &self.url,
            "s3",
            "r = base64.b64encode(c.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read()).decode()",
            &[bucket, key],
        );
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }
}
