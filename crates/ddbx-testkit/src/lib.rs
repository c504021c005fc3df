//! ddbx's test kit: the local emulators (started once by the project's own script), a
//! per-test environment with its own table prefix and output folder, the real `ddbx`
//! binary and a builder of its command lines with typed outcomes ([`command`]), sample
//! items of every DynamoDB type ([`items`]), and the fakes that stand in for what the
//! emulators lack: the EMR stand-in ([`emr_service`], with a Hive ([`hive`]) and a
//! connector codec ([`connector`]) of its own), the fault proxy ([`fault_proxy`]), canned
//! AWS-shaped endpoints ([`aws_shape`]), fakecloud instances ([`fakecloud`]) and run
//! stores on a folder or S3 ([`runstore`]).
//!
//! `crates/ddbx/tests/support/mod.rs` re-exports it all, so a test names `crate::support::…`.

pub mod aws_shape;
pub mod command;
pub mod connector;
pub mod emr_service;
pub mod fakecloud;
pub mod fault_proxy;
pub mod hive;
pub mod items;
pub mod runstore;
pub mod s3_policy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ProvisionedThroughput, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;

/// Endpoints of the running emulators.
#[derive(Debug, Clone)]
pub struct Emulators {
    pub dynamodb: String,
    pub s3: String,
    /// The Python (with boto3) that scripts/emulators installed.
    pub python: String,
    /// The fakecloud binary that scripts/emulators built (native-engine tests start their own).
    pub fakecloud: String,
    /// libfaketime, which those instances run under.
    pub faketime: String,
}

/// Start the emulators once for the whole test binary (the script is idempotent).
pub fn emulators() -> &'static Emulators {
    static E: OnceLock<Emulators> = OnceLock::new();
    E.get_or_init(|| {
        // scripts/test starts them and exports their endpoints; otherwise start them here.
        if let (Ok(dynamodb), Ok(s3), Ok(python), Ok(fakecloud), Ok(faketime)) = (
            std::env::var("DDBX_DYNAMODB_ENDPOINT"),
            std::env::var("DDBX_S3_ENDPOINT"),
            std::env::var("DDBX_EMULATORS_PYTHON"),
            std::env::var("DDBX_FAKECLOUD_BIN"),
            std::env::var("DDBX_FAKETIME_LIB"),
        ) {
            return Emulators {
                dynamodb,
                s3,
                python,
                fakecloud,
                faketime,
            };
        }
        let root = repo_root();
        let out = Command::new(root.join("scripts/emulators"))
            .args(["start", "--native"])
            .output()
            .expect("run scripts/emulators start --native");
        assert!(
            out.status.success(),
            "scripts/emulators start --native failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("{name} not in the script's output: {text}"))
                .trim()
                .to_string()
        };
        Emulators {
            dynamodb: get("DDBX_DYNAMODB_ENDPOINT"),
            s3: get("DDBX_S3_ENDPOINT"),
            python: get("DDBX_EMULATORS_PYTHON"),
            fakecloud: get("DDBX_FAKECLOUD_BIN"),
            faketime: get("DDBX_FAKETIME_LIB"),
        }
    })
}

pub fn repo_root() -> PathBuf {
    // Cargo sets it when it runs the tests too: the runtime value names this checkout even
    // when the binary was built in another one sharing the target directory.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.join("../..").canonicalize().unwrap()
}

/// One test's world: a unique prefix for its tables and apps, a temporary folder, a client.
pub struct TestEnv {
    pub prefix: String,
    pub dir: tempfile::TempDir,
    pub ddb: Client,
    pub emulators: Emulators,
}

pub const REGION: &str = "us-east-1";

impl TestEnv {
    pub async fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let emulators = emulators().clone();
        let prefix = format!(
            "T{}x{}_{}_",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            name
        );
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .endpoint_url(&emulators.dynamodb)
            .build();
        Self {
            prefix,
            dir: tempfile::tempdir().unwrap(),
            ddb: Client::from_conf(conf),
            emulators,
        }
    }

    /// A table name unique to this test.
    pub fn table(&self, short: &str) -> String {
        format!("{}{short}", self.prefix)
    }

    /// The output folder.
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Create a table with a string partition key `pk` and optional number sort key `sk`.
    pub async fn create_table(&self, name: &str, sort_key: bool, provisioned: Option<(i64, i64)>) {
        create_table(&self.ddb, name, sort_key, provisioned).await
    }

    /// Wait for a table to be ACTIVE (the emulator takes ~50 ms).
    pub async fn wait_active(&self, name: &str) {
        wait_active(&self.ddb, name).await
    }

    /// Write items with BatchWriteItem (the emulator never leaves items unprocessed,
    /// but resend them anyway).
    pub async fn put_items(&self, table: &str, items: &[HashMap<String, AttributeValue>]) {
        put_items(&self.ddb, table, items).await
    }

    /// Every item of a table.
    pub async fn scan_all(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        scan_all(&self.ddb, table).await
    }

    /// (read units, write units, decreases today) of a provisioned table.
    pub async fn capacity(&self, table: &str) -> (i64, i64, i64) {
        let out = self
            .ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let p = out.table().unwrap().provisioned_throughput().unwrap();
        (
            p.read_capacity_units().unwrap_or(0),
            p.write_capacity_units().unwrap_or(0),
            p.number_of_decreases_today().unwrap_or(0),
        )
    }

    /// A `ddbx` command aimed at the emulators, with test credentials.
    pub fn ddbx(&self) -> Command {
        self.ddbx_at(&self.emulators.dynamodb)
    }

    /// A `ddbx` command aimed at another DynamoDB endpoint (a fault proxy).
    pub fn ddbx_at(&self, dynamodb: &str) -> Command {
        self.ddbx_with(dynamodb, &self.emulators.s3)
    }

    /// A `ddbx` command aimed at the given DynamoDB and S3 endpoints.
    pub fn ddbx_with(&self, dynamodb: &str, s3: &str) -> Command {
        ddbx_command(dynamodb, s3, self.dir.path())
    }

    /// A `ddbx` command line aimed at the emulators, to build ([`command::Ddbx`]).
    pub fn cmd(&self) -> command::Ddbx {
        command::Ddbx::from_command(self.ddbx())
    }

    /// Run a `ddbx` command and return its output.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.ddbx().args(args).output().unwrap();
        eprintln!(
            "ddbx {args:?} -> {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Create this test's S3 bucket (named after its prefix) and return its name.
    pub fn bucket(&self) -> String {
        let bucket = self
            .prefix
            .to_lowercase()
            .replace('_', "-")
            .trim_end_matches('-')
            .to_string();
        self.create_bucket(&bucket);
        bucket
    }

    /// An unsigned GET from the S3 emulator (moto accepts them): the response head and body.
    pub fn s3_get(&self, path_and_query: &str) -> (String, Vec<u8>) {
        let (head, body) = moto_http(&self.emulators.s3, "GET", path_and_query, b"");
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "GET {path_and_query}: {head}"
        );
        (head, body)
    }

    /// A signed GET through boto3 (encrypted objects need signed requests): the object's
    /// server-side encryption and its body.
    pub fn s3_object(&self, bucket: &str, key: &str) -> (String, Vec<u8>) {
        let v = self.boto3(
            "s3",
            "o = c.get_object(Bucket=sys.argv[2], Key=sys.argv[3])\n\
             r = {'sse': o.get('ServerSideEncryption', ''), 'body': base64.b64encode(o['Body'].read()).decode()}",
            &[bucket, key],
        );
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD
            .decode(v["body"].as_str().unwrap())
            .unwrap();
        (v["sse"].as_str().unwrap().to_string(), body)
    }

    /// Run boto3 against moto: `code` has a `service` client `c` and `sys.argv[2..]` as
    /// `args`, and sets `r`, which comes back as JSON.
    pub fn boto3(&self, service: &str, code: &str, args: &[&str]) -> serde_json::Value {
        self.boto3_at(&self.emulators.s3, service, code, args)
    }

    /// [`boto3`](Self::boto3) against another endpoint (a fakecloud instance).
    pub fn boto3_at(
        &self,
        endpoint: &str,
        service: &str,
        code: &str,
        args: &[&str],
    ) -> serde_json::Value {
        let script = format!(
            "import sys, json, base64, boto3\n\
             c = boto3.client('{service}', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
             {code}\n\
             print(json.dumps(r, default=str))"
        );
        let out = Command::new(&self.emulators.python)
            .args(["-c", &script, endpoint])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3 {service}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Keys under a prefix of a bucket in the S3 emulator.
    pub fn s3_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (_, body) = self.s3_get(&format!("/{bucket}?list-type=2&prefix={prefix}"));
        let text = String::from_utf8(body).unwrap();
        text.split("<Key>")
            .skip(1)
            .map(|k| k.split("</Key>").next().unwrap().to_string())
            .collect()
    }

    /// The items of one table of a native export in S3, read through its manifest.
    pub fn s3_native_items(
        &self,
        bucket: &str,
        table_prefix: &str,
    ) -> Vec<HashMap<String, AttributeValue>> {
        use ddbx_core::item;
        let keys = self.s3_keys(bucket, table_prefix);
        let manifest = keys
            .iter()
            .find(|k| k.ends_with("manifest-files.json"))
            .unwrap_or_else(|| panic!("no manifest under {table_prefix}: {keys:?}"));
        let mut got = Vec::new();
        let listed = String::from_utf8(self.s3_object(bucket, manifest).1).unwrap();
        for line in listed.lines() {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            let (_, gz) = self.s3_object(bucket, entry["dataFileS3Key"].as_str().unwrap());
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::MultiGzDecoder::new(&gz[..]),
                &mut text,
            )
            .unwrap();
            for l in text.lines() {
                got.push(item::dynamodb_json::decode_line(l.as_bytes()).unwrap());
            }
        }
        let data_objects = keys.iter().filter(|k| k.contains("/data/")).count();
        assert_eq!(data_objects, listed.lines().count(), "no stray objects");
        got
    }

    /// Create an S3 bucket in the S3 emulator (moto accepts unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let (head, _) = moto_http(&self.emulators.s3, "PUT", &format!("/{bucket}"), b"");
        assert!(head.starts_with("HTTP/1.1 200"), "create bucket: {head}");
    }
}

/// The `ddbx` binary under test: `DDBX_BIN` when set, else the one cargo built beside the
/// running test binary (`target/<profile>/ddbx`, the test being `target/<profile>/deps/…`),
/// which cargo builds before it runs an integration test of the `ddbx` package.
pub fn ddbx_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("DDBX_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary under target/<profile>/deps");
    let bin = profile.join(format!("ddbx{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests through cargo (which builds it), or set DDBX_BIN",
        bin.display()
    );
    bin
}

/// The `ddbx` binary aimed at the given DynamoDB and S3 endpoints, with test credentials
/// and `home` as its HOME.
pub fn ddbx_command(dynamodb: &str, s3: &str, home: &Path) -> Command {
    let mut c = Command::new(ddbx_bin());
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Any AWS service a test does not aim elsewhere gets a closed local port, never AWS;
        // Application Auto Scaling is moto's.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING", s3)
        .env("RUST_LOG", "ddbx=info,ddbx_core=info")
        .arg("--endpoint-url")
        .arg(dynamodb)
        .arg("--s3-endpoint-url")
        .arg(s3)
        .arg("--no-progress");
    c
}

/// One unsigned HTTP request to moto (which accepts them): the response head and body.
pub fn moto_http(s3: &str, method: &str, path: &str, body: &[u8]) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let addr = s3.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    (
        String::from_utf8_lossy(&resp[..end]).to_string(),
        resp[end + 4..].to_vec(),
    )
}

/// Send SIGTERM to a running ddbx (as cron's timeout or an operator would).
pub fn sigterm(child: &std::process::Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// Every file under `dir`, sorted (none when it does not exist, as while a run starts).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Files named `name` anywhere under `dir`.
pub fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == name))
        .collect()
}

/// The single run folder under `<out>/<region>/<app>/` (`YYYY/MM/DD/HH_MM.SS`).
pub fn run_dir(out: &Path, app: &str) -> PathBuf {
    let mut dir = out.join(REGION).join(app);
    for _ in 0..4 {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(
            entries.len(),
            1,
            "one run expected in {}: {entries:?}",
            dir.display()
        );
        dir = entries.pop().unwrap();
    }
    dir
}

/// The actions of one service (`"s3:"`, `"dynamodb:"`) that a policy in `iam/` grants.
pub fn policy_actions(policy: &str, service: &str) -> std::collections::BTreeSet<String> {
    let v = read_json(&repo_root().join("iam").join(policy));
    v["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap().to_string())
        .filter(|a| a.starts_with(service))
        .collect()
}

/// Read a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decompress a gzip file into its lines.
pub fn gz_lines(path: &Path) -> Vec<String> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap();
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(str::to_string).collect()
}

impl TestEnv {
    /// Export every table of this test (by its prefix) to the test's folder; returns the run root.
    pub fn export_all(&self, app: &str, extra: &[&str]) -> PathBuf {
        let out = self.out();
        let mut args = vec![
            "export",
            "--app",
            app,
            "--tables",
            &self.prefix,
            "--to",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = self.run(&args);
        assert_eq!(o.status.code(), Some(0), "export failed");
        run_dir(&out, app)
    }

    /// `ddbx export --app app --tables TABLES --to TO EXTRA...` against the given
    /// endpoints (a fault proxy in front of one of them).
    pub fn export_via(
        &self,
        dynamodb: &str,
        s3: &str,
        tables: &str,
        to: &str,
        extra: &[&str],
    ) -> Output {
        self.ddbx_with(dynamodb, s3)
            .args(["export", "--app", "app", "--tables", tables, "--to", to])
            .args(extra)
            .output()
            .unwrap()
    }

    /// Create a table (string key; provisioned when given) holding `count` items of every
    /// type, and return them.
    pub async fn mixed_table(
        &self,
        name: &str,
        provisioned: Option<(i64, i64)>,
        count: usize,
    ) -> Vec<HashMap<String, AttributeValue>> {
        self.create_table(name, false, provisioned).await;
        let written: Vec<_> = (0..count).map(|i| items::mixed(i, false)).collect();
        self.put_items(name, &written).await;
        written
    }

    /// Whether a table exists.
    pub async fn table_exists(&self, name: &str) -> bool {
        self.ddb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .is_ok()
    }
}

/// One table's report in a `--output json` summary.
pub fn table_report<'a>(summary: &'a serde_json::Value, table: &str) -> &'a serde_json::Value {
    summary["tableReports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == table)
        .unwrap_or_else(|| panic!("no report for {table}: {summary}"))
}

/// The error a summary reports for `table`.
pub fn table_error(summary: &serde_json::Value, table: &str) -> String {
    let report = table_report(summary, table);
    report["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error for {table}: {report}"))
        .to_string()
}

/// The ddbx summary printed with `--output json`.
pub fn json_stdout(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// Items as order-independent digests, for comparing tables and exports.
pub fn digests(items: &[HashMap<String, AttributeValue>]) -> Vec<[u8; 16]> {
    let mut d: Vec<_> = items
        .iter()
        .map(ddbx_core::item::canonical::item_digest)
        .collect();
    d.sort();
    d
}

/// Poll (every 10 ms, for at most 30 s) until `ready()` holds while `child` still runs:
/// a test waits for an observable state of the process under test, never for a time.
pub fn wait_for(child: &mut std::process::Child, what: &str, ready: impl FnMut() -> bool) {
    wait_within(child, what, std::time::Duration::from_secs(30), ready)
}

/// [`wait_for`] with another limit (a state that takes clusters or tables to set up comes
/// later on a loaded machine).
pub fn wait_within(
    child: &mut std::process::Child,
    what: &str,
    within: std::time::Duration,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + within;
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ddbx ended before {what}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Every item of a table, through any client (dynalite's, a fakecloud's).
pub async fn scan_all(ddb: &Client, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        out.extend(page.items().iter().cloned());
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return out,
        }
    }
}

/// Create a table with a string partition key `pk` and optional number sort key `sk`.
pub async fn create_table(
    ddb: &Client,
    name: &str,
    sort_key: bool,
    provisioned: Option<(i64, i64)>,
) {
    create_table_request(ddb, name, sort_key, provisioned)
        .send()
        .await
        .unwrap();
    wait_active(ddb, name).await;
}

/// The CreateTable call of [`create_table`], for a caller to add to (encryption) and send.
pub fn create_table_request(
    ddb: &Client,
    name: &str,
    sort_key: bool,
    provisioned: Option<(i64, i64)>,
) -> aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder {
    let mut req = ddb
        .create_table()
        .table_name(name)
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
        );
    if sort_key {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sk")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("sk")
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            );
    }
    req = match provisioned {
        Some((r, w)) => req
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(
                ProvisionedThroughput::builder()
                    .read_capacity_units(r)
                    .write_capacity_units(w)
                    .build()
                    .unwrap(),
            ),
        None => req.billing_mode(BillingMode::PayPerRequest),
    };
    req
}

/// Wait for a table to be ACTIVE (the emulator takes ~50 ms).
pub async fn wait_active(ddb: &Client, name: &str) {
    for _ in 0..400 {
        let d = ddb.describe_table().table_name(name).send().await.unwrap();
        if d.table().and_then(|t| t.table_status()).map(|s| s.as_str()) == Some("ACTIVE") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("table {name} never became ACTIVE");
}

/// Write items with BatchWriteItem (the emulator never leaves items unprocessed,
/// but resend them anyway).
pub async fn put_items(ddb: &Client, table: &str, items: &[HashMap<String, AttributeValue>]) {
    for chunk in items.chunks(25) {
        let mut reqs = items::put_requests(chunk);
        while !reqs.is_empty() {
            let out = ddb
                .batch_write_item()
                .request_items(table, reqs)
                .send()
                .await
                .unwrap();
            reqs = out
                .unprocessed_items()
                .and_then(|u| u.get(table))
                .cloned()
                .unwrap_or_default();
        }
    }
}
