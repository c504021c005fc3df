//! A run as a test sees it, on a local folder or in the S3 emulator alike: objects read,
//! written, listed and copied by path relative to the base, so that one hostile-input
//! case tampers with a run the same way on either store.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use futures::TryStreamExt;
use md5::{Digest, Md5};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

/// Where a test's runs are.
#[derive(Debug, Clone)]
pub enum Store {
    /// A local folder (the base).
    Local(PathBuf),
    /// A bucket of the S3 emulator, the base at its root, reached with signed requests
    /// (moto refuses anonymous reads of what ddbx wrote).
    S3 {
        bucket: String,
        client: Arc<dyn ObjectStore>,
    },
}

/// Runs `f` to its end from a synchronous tamper function (tests run on the
/// multi-threaded runtime).
fn wait<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

impl Store {
    /// A bucket of the S3 emulator at `endpoint`.
    pub fn s3(endpoint: &str, bucket: &str) -> Self {
        let client = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap();
        Store::S3 {
            bucket: bucket.to_string(),
            client: Arc::new(client),
        }
    }

    /// What `--to` (or `--from`, joined with a run's path) takes.
    pub fn base_url(&self) -> String {
        match self {
            Store::Local(p) => p.to_string_lossy().to_string(),
            Store::S3 { bucket, .. } => format!("s3://{bucket}"),
        }
    }

    /// The URL of `rel` (a run root) as `--from` takes it.
    pub fn url(&self, rel: &str) -> String {
        format!("{}/{rel}", self.base_url())
    }

    /// The object at `rel`, if there is one.
    pub fn get(&self, rel: &str) -> Option<Vec<u8>> {
        match self {
            Store::Local(p) => std::fs::read(p.join(rel)).ok(),
            Store::S3 { client, .. } => wait(async {
                let got = client.get(&ObjectPath::from(rel)).await.ok()?;
                Some(got.bytes().await.unwrap().to_vec())
            }),
        }
    }

    /// Write `rel`.
    pub fn put(&self, rel: &str, bytes: &[u8]) {
        match self {
            Store::Local(p) => {
                let path = p.join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            Store::S3 { client, .. } => wait(async {
                client
                    .put(&ObjectPath::from(rel), bytes.to_vec().into())
                    .await
                    .unwrap();
            }),
        }
    }

    /// Remove `rel`.
    pub fn delete(&self, rel: &str) {
        match self {
            Store::Local(p) => {
                let _ = std::fs::remove_file(p.join(rel));
            }
            Store::S3 { client, .. } => wait(async {
                let _ = client.delete(&ObjectPath::from(rel)).await;
            }),
        }
    }

    /// Every object under `prefix` (relative, ending in `/`), relative to the base, sorted.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = match self {
            Store::Local(p) => crate::files_under(&p.join(prefix))
                .into_iter()
                .map(|f| f.strip_prefix(p).unwrap().to_string_lossy().to_string())
                .collect(),
            Store::S3 { client, .. } => wait(async {
                client
                    .list(Some(&ObjectPath::from(prefix)))
                    .map_ok(|o| o.location.to_string())
                    .try_collect()
                    .await
                    .unwrap()
            }),
        };
        keys.sort();
        keys
    }

    /// Copy every object under `from` (a run root, relative) to `to`.
    pub fn copy_tree(&self, from: &str, to: &str) {
        for key in self.list(&format!("{from}/")) {
            let dest = format!("{to}{}", &key[from.len()..]);
            match self {
                Store::S3 { client, .. } => wait(async {
                    client
                        .copy(
                            &ObjectPath::from(key.as_str()),
                            &ObjectPath::from(dest.as_str()),
                        )
                        .await
                        .unwrap()
                }),
                Store::Local(_) => self.put(&dest, &self.get(&key).unwrap()),
            }
        }
    }
}

/// The base64 MD5 that manifests and `.md5` files hold.
pub fn md5_b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(b))
}

/// One table's native export inside a run, to tamper with as a hostile operator would,
/// its checksums kept right so that only the tampered thing is under test.
#[derive(Debug, Clone)]
pub struct Export {
    pub store: Store,
    /// `<run root>/<table>/AWSDynamoDB/<id>`, relative to the base.
    pub dir: String,
}

impl Export {
    /// The export of `table` in the run at `run` (relative).
    pub fn of(store: &Store, run: &str, table: &str) -> Self {
        let summary = store
            .list(&format!("{run}/{table}/AWSDynamoDB/"))
            .into_iter()
            .find(|k| k.ends_with("/manifest-summary.json"))
            .unwrap_or_else(|| panic!("no export of {table} in {run}"));
        Export {
            store: store.clone(),
            dir: summary
                .trim_end_matches("/manifest-summary.json")
                .to_string(),
        }
    }

    /// The manifest's entries, as JSON.
    pub fn manifest(&self) -> Vec<serde_json::Value> {
        let text = self
            .store
            .get(&format!("{}/manifest-files.json", self.dir))
            .unwrap();
        String::from_utf8(text)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Write the manifest (and its `.md5`).
    pub fn set_manifest(&self, entries: &[serde_json::Value]) {
        let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
        self.set_manifest_text(text.as_bytes());
    }

    /// Write the manifest as these bytes (and its `.md5`).
    pub fn set_manifest_text(&self, bytes: &[u8]) {
        self.store
            .put(&format!("{}/manifest-files.json", self.dir), bytes);
        self.store.put(
            &format!("{}/manifest-files.md5", self.dir),
            md5_b64(bytes).as_bytes(),
        );
    }

    /// The data file of entry `n` of the manifest, relative to the base.
    pub fn file(&self, n: usize) -> String {
        let key = self.manifest()[n]["dataFileS3Key"]
            .as_str()
            .unwrap()
            .to_string();
        format!("{}/data/{}", self.dir, key.rsplit('/').next().unwrap())
    }

    /// The lines of data file `n` (an uncompressed export).
    pub fn lines(&self, n: usize) -> Vec<String> {
        String::from_utf8(self.store.get(&self.file(n)).unwrap())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Replace data file `n` by `bytes`, holding `items` items (the manifest says so, with
    /// the file's MD5).
    pub fn set_file(&self, n: usize, bytes: &[u8], items: u64) {
        self.store.put(&self.file(n), bytes);
        let mut m = self.manifest();
        m[n]["md5Checksum"] = md5_b64(bytes).into();
        m[n]["itemCount"] = items.into();
        self.set_manifest(&m);
    }

    /// Replace the lines of data file `n` (one item each).
    pub fn set_lines(&self, n: usize, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.set_file(n, text.as_bytes(), lines.len() as u64);
    }

    /// Replace line `line` (from 1) of data file `n`.
    pub fn set_line(&self, n: usize, line: usize, text: &str) {
        let mut lines = self.lines(n);
        lines[line - 1] = text.to_string();
        self.set_lines(n, &lines);
    }

    /// The summary, as JSON.
    pub fn summary(&self) -> serde_json::Value {
        let text = self
            .store
            .get(&format!("{}/manifest-summary.json", self.dir))
            .unwrap();
        serde_json::from_slice(&text).unwrap()
    }

    /// Write the summary (and its `.md5`).
    pub fn set_summary(&self, v: &serde_json::Value) {
        let text = v.to_string();
        self.store.put(
            &format!("{}/manifest-summary.json", self.dir),
            text.as_bytes(),
        );
        self.store.put(
            &format!("{}/manifest-summary.md5", self.dir),
            md5_b64(text.as_bytes()).as_bytes(),
        );
    }
}
