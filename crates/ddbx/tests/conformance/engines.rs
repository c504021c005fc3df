//! The engines under test: each one's world (where its tables and its bucket live, what
//! stands in for its AWS service), its flags, and what it cannot do, with why.

use std::sync::atomic::{AtomicI64, Ordering};

use std::sync::Mutex;

use aws_sdk_dynamodb::Client;

use crate::emr::Emr;
use crate::native::Native;
use crate::support::command::{Ddbx, Running};
use crate::support::emr_service::{EmrService, Script, StepEnv};
use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::{items, TestEnv};

/// How long an export may take to have work in hand (a cluster started, a first file
/// stored) on a loaded machine: a limit, never a wait.
const MID_RUN: std::time::Duration = std::time::Duration::from_secs(180);

/// An engine of ddbx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// In-process: dynalite and moto.
    Local,
    /// Hive steps on EMR clusters: the EMR stand-in, whose steps read and write dynalite
    /// and moto.
    Emr,
    /// ExportTableToPointInTime / ImportTable: fakecloud (its DynamoDB and its S3).
    Native,
}

impl Engine {
    /// The name `--engine` takes and summaries, plans and `list` give.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Local => "local",
            Engine::Emr => "emr",
            Engine::Native => "native",
        }
    }
}

/// What an engine may be unable to do. Each scenario that needs one asks
/// [`EngineUnderTest::cannot`], which names the reason; the scenario then proves the
/// engine refuses as documented (so a skip cannot outlive its reason) and says SKIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// `export --resume RUN` continues a killed or stopped run.
    ResumeExport,
    /// The export's summary counts the items it wrote.
    CountExportedItems,
}

/// Where an engine's tables, bucket and service are.
enum World {
    Local { env: TestEnv, bucket: String },
    Emr(Emr),
    Native(Native),
}

/// One engine, set up for one scenario: its own tables (by its prefix), bucket and
/// service, and `ddbx` aimed at them.
pub struct EngineUnderTest {
    /// Which engine.
    pub engine: Engine,
    world: World,
    /// Runs started so far (each gets its own run time, a minute after the last).
    runs: AtomicI64,
    /// The tables made.
    made: Mutex<Vec<String>>,
}

impl EngineUnderTest {
    /// Set up `engine`'s world.
    pub async fn start(engine: Engine) -> Self {
        let tag = format!("cf{}", engine.name());
        let world = match engine {
            Engine::Local => {
                let env = TestEnv::new(&tag).await;
                let bucket = env.bucket();
                World::Local { env, bucket }
            }
            Engine::Emr => World::Emr(Emr::new(&tag, Script::default()).await),
            Engine::Native => World::Native(Native::new(&tag).await),
        };
        Self {
            engine,
            world,
            runs: AtomicI64::new(0),
            made: Mutex::default(),
        }
    }

    /// Why this engine cannot do `what`, when it cannot.
    pub fn cannot(&self, what: Capability) -> Option<&'static str> {
        match (self.engine, what) {
            (Engine::Emr, Capability::ResumeExport) => Some(
                "the EMR engine does not resume exports: `export --resume` of an EMR run is \
                 refused (exit 1, \"whose runs are not resumed\"); a new run is started instead",
            ),
            (Engine::Emr, Capability::CountExportedItems) => Some(
                "EMR's step API reports no item counts: an EMR export's summary says \
                 itemsUnknown (README, EMR engine), and verify counts them",
            ),
            _ => None,
        }
    }

    /// Say that a scenario is skipped on this engine, and why: straight to stderr, past
    /// the test harness's capture, so that every run of the suite shows it.
    pub fn skip(&self, scenario: &str, why: &str) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP conformance::{}::{scenario}: {why}",
            self.engine.name()
        );
    }

    /// The test's environment (its prefix, folder and the emulators).
    pub fn env(&self) -> &TestEnv {
        match &self.world {
            World::Local { env, .. } => env,
            World::Emr(e) => &e.env,
            World::Native(n) => &n.env,
        }
    }

    /// The bucket runs are written to.
    pub fn bucket(&self) -> &str {
        match &self.world {
            World::Local { bucket, .. } => bucket,
            World::Emr(e) => &e.bucket,
            World::Native(n) => &n.bucket,
        }
    }

    /// The base every run of the scenario goes under.
    pub fn base(&self) -> String {
        format!("s3://{}/b", self.bucket())
    }

    /// A DynamoDB client of the engine's tables.
    pub fn ddb(&self) -> &Client {
        match &self.world {
            World::Local { env, .. } | World::Emr(Emr { env, .. }) => &env.ddb,
            World::Native(n) => &n.fc.ddb,
        }
    }

    fn dynamodb_url(&self) -> &str {
        match &self.world {
            World::Local { env, .. } | World::Emr(Emr { env, .. }) => &env.emulators.dynamodb,
            World::Native(n) => &n.fc.url,
        }
    }

    fn s3_url(&self) -> &str {
        match &self.world {
            World::Local { env, .. } | World::Emr(Emr { env, .. }) => &env.emulators.s3,
            World::Native(n) => &n.fc.url,
        }
    }

    /// `ddbx` aimed at the engine's DynamoDB and S3 (and EMR), before any subcommand.
    pub fn ddbx(&self) -> Ddbx {
        self.ddbx_via(self.dynamodb_url(), self.emr_url())
    }

    fn emr_url(&self) -> Option<&str> {
        match &self.world {
            World::Emr(e) => Some(&e.service.url),
            _ => None,
        }
    }

    fn ddbx_via(&self, dynamodb: &str, emr: Option<&str>) -> Ddbx {
        let cmd = Ddbx::new(dynamodb, self.s3_url(), self.env().dir.path());
        match emr {
            Some(url) => cmd.flag("--emr-endpoint-url", url),
            None => cmd,
        }
    }

    /// The flags that choose the engine and its settings, after `export` or `import`.
    fn engine_flags(&self, cmd: Ddbx) -> Ddbx {
        let cmd = cmd.flag("--engine", self.engine.name());
        match &self.world {
            World::Local { .. } => cmd,
            World::Emr(e) => cmd
                .flag("--emr-config", &e.config)
                .flag("--cluster-name", "conformance"),
            World::Native(_) => cmd.flag("--poll-seconds", "0.05"),
        }
    }

    /// The next run's time: a minute after the last one (on fakecloud's clock, which
    /// moves on a minute first, so that the run's instant follows every write).
    fn next_run_time(&self) -> chrono::DateTime<chrono::Utc> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        match &self.world {
            World::Native(native) => {
                native.fc.advance_minutes(1);
                native.fc.now()
            }
            _ => chrono::Utc::now() + chrono::Duration::minutes(n),
        }
    }

    /// `ddbx export --engine E --app APP --tables PREFIX* --to BASE --run-time T --output
    /// json`: every table of the scenario, with the engine's settings.
    pub fn export(&self, app: &str) -> Ddbx {
        self.export_with(self.ddbx(), app)
    }

    /// [`export`](Self::export) of the tables `pattern` selects.
    pub fn export_of(&self, app: &str, pattern: &str) -> Ddbx {
        self.engine_flags(self.ddbx().export())
            .app(app)
            .tables(pattern)
            .to(self.base())
            .run_time(self.next_run_time())
            .json()
    }

    fn export_with(&self, cmd: Ddbx, app: &str) -> Ddbx {
        self.engine_flags(cmd.export())
            .app(app)
            .tables(&format!("{}*", self.env().prefix))
            .to(self.base())
            .run_time(self.next_run_time())
            .json()
    }

    /// `ddbx export --resume ROOT --engine E --output json`.
    pub fn resume(&self, root: &str) -> Ddbx {
        self.engine_flags(self.ddbx().export().resume(root)).json()
    }

    /// An export of the scenario's tables that takes its time, left running; it returns
    /// once the engine has work in hand (local: a data file stored; EMR: a step running;
    /// native: every table's export polled). What makes it slow lives as long as the
    /// returned guard.
    pub async fn spawn_slow_export(&self, app: &str) -> (Running, Box<dyn std::any::Any>) {
        match &self.world {
            World::Local { env, bucket } => {
                let cmd = self
                    .export(app)
                    .flag("--max-read-units", "25")
                    .flag("--file-items", "20");
                let mut running = cmd.spawn();
                running.wait_within("a data file stored", MID_RUN, || {
                    env.s3_keys(bucket, "b/")
                        .iter()
                        .any(|k| k.contains("/data/"))
                });
                (running, Box::new(()))
            }
            World::Emr(e) => {
                // A second stand-in whose steps never end (until their cluster does).
                let hanging = EmrService::start(
                    Script {
                        hang: true,
                        ..Script::default()
                    },
                    StepEnv {
                        dynamodb: e.env.emulators.dynamodb.clone(),
                        s3: e.env.emulators.s3.clone(),
                        scratch: e.env.out().join("emr-scratch-hang"),
                    },
                )
                .await;
                let cmd = self.export_with(
                    self.ddbx_via(&e.env.emulators.dynamodb, Some(&hanging.url)),
                    app,
                );
                let mut running = cmd.spawn();
                running.wait_within("a step running", MID_RUN, || {
                    hanging
                        .clusters()
                        .iter()
                        .any(|c| c.steps.iter().any(|s| s.state == "RUNNING"))
                });
                (running, Box::new(hanging))
            }
            World::Native(n) => {
                // DescribeExport answers IN_PROGRESS for as long as the proxy lives.
                let slow = FaultProxy::start(
                    &n.fc.url,
                    Faults {
                        exports_in_progress: true,
                        ..Faults::default()
                    },
                )
                .await;
                let tables = self.tables_made().len();
                let mut running = self
                    .export_with(self.ddbx_via(&slow.url, None), app)
                    .spawn();
                running.wait_within("every table's export polled", MID_RUN, || {
                    slow.stats.count("dynamodb:DescribeExport") >= tables
                });
                (running, Box::new(slow))
            }
        }
    }

    /// `ddbx import --engine E --from ROOT --output json` with the engine's settings (the
    /// local and EMR engines create missing tables when asked; the native engine's
    /// ImportTable always creates its target).
    pub fn import(&self, root: &str) -> Ddbx {
        let cmd = self.engine_flags(self.ddbx().import()).from(root).json();
        match self.engine {
            Engine::Native => cmd,
            Engine::Local | Engine::Emr => cmd.create_missing(),
        }
    }

    /// `ddbx verify --from ROOT --deep --output json` (every engine's runs are verified by
    /// ddbx itself).
    pub fn verify(&self, root: &str) -> Ddbx {
        self.ddbx().verify().from(root).deep().json()
    }

    /// `ddbx list --to BASE --output json`.
    pub fn list(&self) -> Ddbx {
        self.ddbx().list().to(self.base()).json()
    }

    /// `ddbx prune --to BASE --app APP --keep-last N --output json`.
    pub fn prune(&self, app: &str, keep_last: usize) -> Ddbx {
        self.ddbx()
            .prune()
            .to(self.base())
            .app(app)
            .keep_last(keep_last)
            .json()
    }

    /// Create a table of the scenario (string `pk`, and a number `sk` when `sort_key`), on
    /// demand; point-in-time recovery on where the engine needs it.
    pub async fn create_table(&self, short: &str, sort_key: bool) -> String {
        let name = self.env().table(short);
        match &self.world {
            World::Native(n) => {
                crate::support::create_table(&n.fc.ddb, &name, sort_key, None).await;
                n.fc.set_pitr(&name, true).await;
            }
            _ => self.env().create_table(&name, sort_key, None).await,
        }
        self.made.lock().unwrap().push(name.clone());
        name
    }

    /// The scenario's tables made so far.
    pub fn tables_made(&self) -> Vec<String> {
        self.made.lock().unwrap().clone()
    }

    /// Delete a table.
    pub async fn drop_table(&self, table: &str) {
        self.ddb()
            .delete_table()
            .table_name(table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete {table}: {e:?}"));
    }

    /// Write items into a table.
    pub async fn put(&self, table: &str, items: &[items::Item]) {
        match &self.world {
            World::Native(n) => n.fc.put(table, items).await,
            _ => self.env().put_items(table, items).await,
        }
    }

    /// Every item of a table.
    pub async fn scan(&self, table: &str) -> Vec<items::Item> {
        crate::support::scan_all(self.ddb(), table).await
    }

    /// The keys under a prefix of the bucket.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        match &self.world {
            World::Native(n) => n.fc.keys(&n.env, &n.bucket, prefix),
            _ => self.env().s3_keys(self.bucket(), prefix),
        }
    }

    /// The run roots under the base, found by their plans.
    pub fn run_roots(&self) -> Vec<String> {
        let mut roots: Vec<String> = self
            .keys("b/")
            .iter()
            .filter_map(|k| k.strip_suffix("/export-plan.json"))
            .map(|k| format!("s3://{}/{k}", self.bucket()))
            .collect();
        roots.sort();
        roots
    }

    /// The key prefix of a run root URL in the bucket.
    pub fn prefix_of(&self, root: &str) -> String {
        let key = root
            .strip_prefix(&format!("s3://{}/", self.bucket()))
            .unwrap_or_else(|| panic!("{root} is not in {}", self.bucket()));
        format!("{key}/")
    }
}
