//! `--engine emr` against the EMR stand-in (`support::emr_service`), whose clusters carry
//! out their steps for real against the emulators.

use std::collections::HashSet;

use crate::support::emr_service::{EmrService, Script, StepEnv};
use crate::support::{digests, items, json_stdout, table_error, table_report, TestEnv};

/// Settings that poll fast and retry at once.
const FAST: &str = "poll_seconds = 0.05\nretry_delay_seconds = 0\ncreate_attempts = 3\n";

struct Emr {
    env: TestEnv,
    service: EmrService,
    config: std::path::PathBuf,
    bucket: String,
}

impl Emr {
    async fn new(name: &str, script: Script) -> Self {
        let env = TestEnv::new(name).await;
        let service = EmrService::start(
            script,
            StepEnv {
                dynamodb: env.emulators.dynamodb.clone(),
                s3: env.emulators.s3.clone(),
                scratch: env.out().join("emr-scratch"),
            },
        )
        .await;
        let config = env.out().join("emr.toml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, FAST).unwrap();
        let bucket = env.bucket();
        Self {
            env,
            service,
            config,
            bucket,
        }
    }

    fn ddbx(&self, args: &[&str]) -> std::process::Output {
        let o = self
            .env
            .ddbx()
            .args(["--emr-endpoint-url", &self.service.url])
            .args(args)
            .args([
                "--engine",
                "emr",
                "--emr-config",
                self.config.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        eprintln!(
            "ddbx {args:?} -> {:?}\nstdout:\n{}\nstderr:\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn export(&self, extra: &[&str]) -> std::process::Output {
        let to = format!("s3://{}/b", self.bucket);
        let tables = format!("{}*", self.env.prefix);
        let mut args = vec![
            "export", "--app", "app", "--tables", &tables, "--to", &to, "--output", "json",
        ];
        args.extend(extra);
        self.ddbx(&args)
    }

    /// The run root's key prefix (`b/us-east-1/app/.../`), found by its plan.
    fn run_prefix(&self) -> String {
        self.env
            .s3_keys(&self.bucket, "b/")
            .iter()
            .find_map(|k| k.strip_suffix("export-plan.json").map(str::to_string))
            .expect("an export plan")
    }

    fn object(&self, key: &str) -> Vec<u8> {
        self.env.s3_object(&self.bucket, key).1
    }

    async fn tables(&self, names: &[&str], items_each: usize) -> Vec<(String, Vec<items::Item>)> {
        let mut out = Vec::new();
        for (n, name) in names.iter().enumerate() {
            let t = self.env.table(name);
            self.env.create_table(&t, n % 2 == 1, None).await;
            let written: Vec<_> = (0..items_each)
                .map(|i| items::mixed(i + n * 10_000, n % 2 == 1))
                .collect();
            self.env.put_items(&t, &written).await;
            out.push((t, written));
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emr_export_then_emr_import_round_trips_over_two_clusters() {
    let emr = Emr::new("emrtrip", Script::default()).await;
    let tables = emr.tables(&["a", "b", "c"], 60).await;
    let o = emr.export(&[
        "--cluster-name",
        "backup",
        "--clusters",
        "2",
        "--read-ratio",
        "0.45",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let summary = json_stdout(&o);
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["tables"], 3);

    // Two clusters, named as the seed named them, each created once with its steps and
    // auto-termination, logging under the run.
    let run = emr.run_prefix();
    let clusters = emr.service.clusters();
    let names: Vec<_> = clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["backup_01", "backup_02"]);
    let req = &clusters[0].request;
    assert_eq!(req["Instances"]["KeepJobFlowAliveWhenNoSteps"], false);
    assert_eq!(req["AutoTerminationPolicy"]["IdleTimeout"], 3600);
    assert_eq!(req["LogUri"], format!("s3://{}/{run}emr-logs/", emr.bucket));
    assert_eq!(req["ReleaseLabel"], "emr-7.5.0");
    assert!(req["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["Key"] == "ddbx:app" && t["Value"] == "app"));
    let steps: usize = clusters.iter().map(|c| c.steps.len()).sum();
    assert_eq!(steps, 3, "one step per table");

    // The steps files, in the seed's shape, say what each cluster ran.
    let mut stepped = HashSet::new();
    for n in ["01", "02"] {
        let file: serde_json::Value =
            serde_json::from_slice(&emr.object(&format!("{run}exportSteps_{n}.json"))).unwrap();
        for s in file.as_array().unwrap() {
            assert_eq!(s["Type"], "CUSTOM_JAR");
            assert_eq!(s["ActionOnFailure"], "CONTINUE");
            assert_eq!(
                s["Args"][0],
                "org.apache.hadoop.dynamodb.tools.DynamoDbExport"
            );
            assert_eq!(s["Args"][3], "0.45");
            let table = s["Args"][2].as_str().unwrap().to_string();
            assert_eq!(
                s["Args"][1],
                format!("s3://{}/{run}{table}", emr.bucket),
                "the connector writes into the table's folder"
            );
            stepped.insert(table);
        }
        let imports: serde_json::Value =
            serde_json::from_slice(&emr.object(&format!("{run}importSteps_{n}.json"))).unwrap();
        assert_eq!(
            imports[0]["Args"][0],
            "org.apache.hadoop.dynamodb.tools.DynamoDbImport"
        );
    }
    assert_eq!(stepped.len(), 3);
    // ddbx completed the run: table.json beside each connector export, plans, flags.
    let keys = emr.env.s3_keys(&emr.bucket, &run);
    for (t, _) in &tables {
        assert!(keys.contains(&format!("{run}{t}/table.json")), "{keys:?}");
        assert!(keys.contains(&format!("{run}{t}/manifest")));
    }
    assert!(keys.contains(&format!("{run}BACKUP_COMPLETE_SUCCESS")));
    assert!(!keys.contains(&format!("{run}BACKUP_RUNNING")));
    let plan: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{run}export-plan.json"))).unwrap();
    assert_eq!(plan["engine"], "emr");
    // The local engine's --resume does not take over an EMR run.
    let root = format!("s3://{}/{}", emr.bucket, run.trim_end_matches('/'));
    let o = emr.env.run(&["export", "--resume", &root]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("emr engine"));

    // Import the run on EMR into new tables (created from table.json), then verify.
    let from = format!("s3://{}/{}", emr.bucket, run.trim_end_matches('/'));
    let mut args = vec![
        "import",
        "--from",
        &from,
        "--create-missing",
        "--cluster-name",
        "restore",
    ];
    let maps: Vec<String> = tables
        .iter()
        .map(|(t, _)| format!("{t}={t}_restored"))
        .collect();
    for m in &maps {
        args.extend(["--table-map", m.as_str()]);
    }
    let o = emr.ddbx(&args);
    assert_eq!(o.status.code(), Some(0));
    for (t, written) in &tables {
        assert_eq!(
            digests(&emr.env.scan_all(&format!("{t}_restored")).await),
            digests(written),
            "{t} round-trips through EMR"
        );
    }
    let mut verify = vec!["verify", "--from", &from, "--deep"];
    for m in &maps {
        verify.extend(["--table-map", m.as_str()]);
    }
    assert_eq!(emr.env.run(&verify).status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_cluster_of_the_same_name_stops_the_run_before_anything() {
    let emr = Emr::new(
        "emractive",
        Script {
            active_cluster: Some("backup_02".into()),
            ..Script::default()
        },
    )
    .await;
    emr.tables(&["a", "b"], 5).await;
    let o = emr.export(&["--cluster-name", "backup", "--clusters", "2"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("backup_02") && err.contains("WAITING"),
        "{err}"
    );
    assert_eq!(emr.service.create_calls(), 0, "no cluster created");
    assert!(
        emr.env.s3_keys(&emr.bucket, "b/").is_empty(),
        "nothing written, lock released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_that_fail_to_start_are_retried_and_a_failed_step_fails_its_table_alone() {
    let emr = Emr::new(
        "emrretry",
        Script {
            refuse_creates: 1,
            bootstrap_failures: 1,
            fail_steps_of: HashSet::from(["_b".to_string()]),
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a", "b", "c"], 20).await;
    let failing = tables[1].0.clone();
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    // Each failed attempt is explained.
    assert!(
        err.contains("not supported in the requested Availability Zone"),
        "{err}"
    );
    assert!(err.contains("BOOTSTRAP_FAILURE"), "{err}");
    assert_eq!(
        emr.service.create_calls(),
        3,
        "refused, failed to bootstrap, ran"
    );
    let summary = json_stdout(&o);
    assert_eq!(summary["tablesFailed"], 1);
    let failed = table_report(&summary, &failing);
    assert_eq!(failed["status"], "failed");
    let why = failed["error"].as_str().unwrap();
    assert!(
        why.contains("FAILED") && why.contains("the task failed 4 times"),
        "{why}"
    );
    for (t, _) in [&tables[0], &tables[2]] {
        assert_eq!(table_report(&summary, t)["status"], "succeeded");
    }
    let run = emr.run_prefix();
    let flag: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{run}BACKUP_COMPLETE_FAILED"))).unwrap();
    assert_eq!(flag["tablesFailed"], 1);
    let restore: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{run}restore-plan.json"))).unwrap();
    let restorable: Vec<_> = restore["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sourceTable"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(restorable, vec![tables[0].0.clone(), tables[2].0.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_dies_fails_only_its_unfinished_tables_and_attempts_run_out() {
    let emr = Emr::new(
        "emrdies",
        Script {
            die_after_steps: Some(1),
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a", "b"], 10).await;
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    // The step that completed before the cluster died stands; the other failed with the
    // cluster's reason.
    let first = &emr.service.clusters()[0].steps[0].args[2];
    for (t, _) in &tables {
        let r = table_report(&summary, t);
        if t == first {
            assert_eq!(r["status"], "succeeded");
        } else {
            let why = r["error"].as_str().unwrap();
            assert!(
                why.contains("TERMINATED_WITH_ERRORS") && why.contains("INSTANCE_FAILURE"),
                "{why}"
            );
        }
    }

    // Every creation refused: after create_attempts, every table fails and says why.
    let emr = Emr::new(
        "emrnever",
        Script {
            refuse_creates: 99,
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a"], 3).await;
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    let why = table_error(&summary, &tables[0].0);
    assert!(
        why.contains("never ran its steps after 3 attempts")
            && why.contains("attempt 1:")
            && why.contains("attempt 3:"),
        "{why}"
    );
    assert_eq!(emr.service.create_calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_terminates_or_leaves_the_clusters_as_asked_and_the_flags_say_interrupted() {
    for choice in ["terminate", "leave"] {
        let emr = Emr::new(
            &format!("emrstop{choice}"),
            Script {
                hang: true,
                ..Script::default()
            },
        )
        .await;
        let t = emr.env.table("t");
        emr.env.create_table(&t, false, Some((5, 5))).await;
        let to = format!("s3://{}/b", emr.bucket);
        let mut child = emr
            .env
            .ddbx()
            .args(["--emr-endpoint-url", &emr.service.url])
            .args([
                "export",
                "--app",
                "app",
                "--tables",
                &t,
                "--to",
                &to,
                "--engine",
                "emr",
                "--emr-config",
                emr.config.to_str().unwrap(),
                "--cluster-name",
                "backup",
                "--spike-read-units",
                "80",
                "--on-interrupt",
                choice,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        crate::support::wait_for(&mut child, "a step running", || {
            emr.service
                .clusters()
                .iter()
                .any(|c| c.steps.iter().any(|s| s.state == "RUNNING"))
        });
        crate::support::sigterm(&child);
        let o = child.wait_with_output().unwrap();
        assert_ne!(o.status.code(), Some(0));
        let err = String::from_utf8_lossy(&o.stderr);
        let run = emr.run_prefix();
        let flag = String::from_utf8(emr.object(&format!("{run}BACKUP_COMPLETE_FAILED"))).unwrap();
        assert!(flag.contains("interrupted"), "{flag}");
        assert!(emr
            .env
            .s3_keys(&emr.bucket, "b/us-east-1/app/_LOCK")
            .is_empty());
        let now = emr.env.capacity(&t).await.0;
        let id = emr.service.clusters()[0].id.clone();
        if choice == "terminate" {
            assert_eq!(emr.service.terminate_calls(), vec![vec![id]]);
            assert_eq!(now, 5, "capacity put back");
        } else {
            // Left running: its step still reads, so the capacity stays until told.
            assert!(emr.service.terminate_calls().is_empty());
            assert!(flag.contains("left running"), "{flag}");
            assert_eq!(now, 80);
            assert!(err.contains("ddbx capacity restore --from"), "{err}");
            let root = format!("s3://{}/{}", emr.bucket, run.trim_end_matches('/'));
            assert_eq!(
                emr.env
                    .run(&["capacity", "restore", "--from", &root])
                    .status
                    .code(),
                Some(0)
            );
            let now = emr.env.capacity(&t).await.0;
            assert_eq!(now, 5);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emr_import_takes_a_local_emr_format_export_and_refuses_the_native_format() {
    let emr = Emr::new("emrlocal", Script::default()).await;
    let tables = emr.tables(&["a", "b"], 30).await;
    let (a, b) = (&tables[0], &tables[1]);
    // A local-engine export of `a` in the connector's format, and of `b` natively.
    let base = format!("s3://{}/local", emr.bucket);
    for (t, format, app) in [(&a.0, "emr", "one"), (&b.0, "dynamodb-json", "two")] {
        let o = emr.env.run(&[
            "export", "--app", app, "--tables", t, "--to", &base, "--format", format,
        ]);
        assert_eq!(o.status.code(), Some(0));
    }
    let run_of = |app: &str| {
        let key = emr
            .env
            .s3_keys(&emr.bucket, &format!("local/us-east-1/{app}/"))
            .into_iter()
            .find_map(|k| k.strip_suffix("/export-plan.json").map(str::to_string))
            .unwrap();
        format!("s3://{}/{key}", emr.bucket)
    };
    let (from_a, from_b) = (run_of("one"), run_of("two"));
    let map_a = format!("{}={}_copy", a.0, a.0);
    let o = emr.ddbx(&[
        "import",
        "--from",
        &from_a,
        "--table-map",
        &map_a,
        "--create-missing",
        "--cluster-name",
        "restore",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&emr.env.scan_all(&format!("{}_copy", a.0)).await),
        digests(&a.1)
    );
    // The connector cannot read the native format: that table fails, saying so, and no
    // cluster is created for nothing.
    let clusters_before = emr.service.create_calls();
    let map_b = format!("{}={}_copy", b.0, b.0);
    let o = emr.ddbx(&[
        "import",
        "--from",
        &from_b,
        "--table-map",
        &map_b,
        "--create-missing",
        "--cluster-name",
        "restore",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    let why = table_error(&summary, &format!("{}_copy", b.0));
    assert!(why.contains("only its own format"), "{why}");
    assert_eq!(emr.service.create_calls(), clusters_before);
}

#[tokio::test]
async fn emr_init_writes_a_config_that_loads_and_bad_configs_are_named() {
    let env = TestEnv::new("emrinit").await;
    let dir = env.out();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("emr.toml");
    let o = env.run(&["emr", "init", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("release_label") && text.contains("[[instance_groups]]"));
    // Never overwritten unless asked.
    assert_eq!(
        env.run(&["emr", "init", path.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        env.run(&["emr", "init", path.to_str().unwrap(), "--force"])
            .status
            .code(),
        Some(0)
    );
    // The written file is accepted (a dry run plans with it), a misspelt key is named.
    let t = env.table("t");
    env.create_table(&t, false, None).await;
    let dry = |config: &std::path::Path| {
        env.run(&[
            "export",
            "--app",
            "app",
            "--tables",
            &t,
            "--to",
            "s3://bucket/x",
            "--engine",
            "emr",
            "--cluster-name",
            "c",
            "--emr-config",
            config.to_str().unwrap(),
            "--dry-run",
        ])
    };
    assert_eq!(dry(&path).status.code(), Some(0));
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "relase_label = \"emr-7.5.0\"\n").unwrap();
    let o = dry(&bad);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("relase_label"),
        "{err}"
    );
    // EMR clusters cannot write to a local folder.
    let o = env.run(&[
        "export",
        "--app",
        "app",
        "--tables",
        &t,
        "--to",
        dir.to_str().unwrap(),
        "--engine",
        "emr",
        "--cluster-name",
        "c",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("s3://"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emr_export_spikes_each_table_while_its_step_runs_and_puts_it_back() {
    let emr = Emr::new(
        "emrspike",
        Script {
            fail_steps_of: HashSet::from(["_bad".to_string()]),
            ..Script::default()
        },
    )
    .await;
    let mut names = Vec::new();
    for short in ["good", "bad"] {
        let t = emr.env.table(short);
        emr.env.create_table(&t, false, Some((5, 5))).await;
        emr.env
            .put_items(
                &t,
                &(0..10).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
            )
            .await;
        names.push(t);
    }
    let o = emr.export(&["--cluster-name", "backup", "--spike-read-units", "80"]);
    assert_eq!(o.status.code(), Some(4), "the bad table's step failed");
    // Both tables were raised and are back, whether their step succeeded or failed.
    let run = emr.run_prefix();
    for t in &names {
        let (read, _, decreases) = emr.env.capacity(t).await;
        assert_eq!((read, decreases), (5, 1), "{t}");
        let rec: serde_json::Value =
            serde_json::from_slice(&emr.object(&format!("{run}_capacity/{t}-read.json"))).unwrap();
        assert_eq!(rec["restored"], true);
        assert_eq!(rec["to"], 80);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tables_round_trip_through_emr() {
    let emr = Emr::new("emrdemo", Script::default()).await;
    // The README demo's ten tables (every type, GSI and LSI, items near 400 KB, an empty one).
    let root = crate::support::repo_root();
    let made = std::process::Command::new(&emr.env.emulators.python)
        .arg(root.join("scripts/demo-tables.py"))
        .args([&emr.env.emulators.dynamodb, &emr.env.prefix])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let o = emr.export(&["--cluster-name", "demo", "--clusters", "3"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["tables"], 10);
    assert_eq!(emr.service.clusters().len(), 3);
    let run = emr.run_prefix();
    let from = format!("s3://{}/{}", emr.bucket, run.trim_end_matches('/'));
    let tables: Vec<String> = json_stdout(&o)["tableReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["table"].as_str().unwrap().to_string())
        .collect();
    let maps: Vec<String> = tables.iter().map(|t| format!("{t}={t}_RESTORED")).collect();
    let mut args = vec![
        "import",
        "--from",
        &from,
        "--create-missing",
        "--cluster-name",
        "demo-restore",
        "--clusters",
        "2",
    ];
    for m in &maps {
        args.extend(["--table-map", m.as_str()]);
    }
    assert_eq!(emr.ddbx(&args).status.code(), Some(0));
    let mut verify = vec!["verify", "--from", &from, "--deep", "--output", "json"];
    for m in &maps {
        verify.extend(["--table-map", m.as_str()]);
    }
    let o = emr.env.run(&verify);
    assert_eq!(
        o.status.code(),
        Some(0),
        "every demo table matches after EMR export and import"
    );
}

/// moto's EMR accepts ddbx's requests as AWS would parse them (its clusters never run
/// steps, so the run is stopped once the cluster is up, and terminated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_accepts_the_cluster_requests_with_fleets_spot_and_settings() {
    use crate::support::fault_proxy::{FaultProxy, Faults};
    let env = TestEnv::new("emrmoto").await;
    let t = env.table("t");
    env.create_table(&t, false, None).await;
    let bucket = env.bucket();
    // moto keeps its clusters between runs: a name of this test's own.
    let cluster = format!("{}shape", env.prefix);
    let config = env.out().join("emr.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        r#"poll_seconds = 0.05
release_label = "emr-7.5.0"
security_configuration = "dynamodb-backups"
step_concurrency = 2
[ec2]
subnet_ids = ["subnet-0123", "subnet-4567"]
key_name = "ops"
[[instance_fleets]]
fleet_type = "MASTER"
target_on_demand_capacity = 1
instance_types = [{ instance_type = "m5.xlarge" }]
[[instance_fleets]]
fleet_type = "CORE"
target_spot_capacity = 4
instance_types = [{ instance_type = "m5.xlarge", bid_price_as_percentage_of_on_demand_price = 60.0 }, { instance_type = "m5.2xlarge", weighted_capacity = 2 }]
[[configurations]]
classification = "mapred-site"
properties = { "mapreduce.map.speculative" = "false" }
"#,
    )
    .unwrap();
    // Through a proxy, to see when ddbx is watching the cluster.
    let proxy = FaultProxy::start(&env.emulators.s3, Faults::default()).await;
    let mut child = env
        .ddbx()
        .args(["--emr-endpoint-url", &proxy.url])
        .args([
            "export",
            "--app",
            "app",
            "--tables",
            &t,
            "--to",
            &format!("s3://{bucket}/b"),
            "--engine",
            "emr",
            "--emr-config",
            config.to_str().unwrap(),
            "--cluster-name",
            &cluster,
            "--emr-set",
            "tags.team=ops",
            "--on-interrupt",
            "terminate",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_for(&mut child, "the cluster watched", || {
        proxy.stats.count("elasticmapreduce:ListSteps") >= 1
    });
    crate::support::sigterm(&child);
    let o = child.wait_with_output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(proxy.stats.count("elasticmapreduce:RunJobFlow"), 1);
    assert_eq!(proxy.stats.count("elasticmapreduce:TerminateJobFlows"), 1);
    // What moto made of the request.
    let v = env.boto3(
        "emr",
        "cl = [x for x in c.list_clusters()['Clusters'] if x['Name'] == sys.argv[2]][0]\n\
         r = {'cluster': c.describe_cluster(ClusterId=cl['Id'])['Cluster'], 'steps': c.list_steps(ClusterId=cl['Id'])['Steps']}",
        &[&cluster],
    );
    let cluster = &v["cluster"];
    assert!(
        cluster["Status"]["State"]
            .as_str()
            .unwrap()
            .starts_with("TERMINAT"),
        "{cluster}"
    );
    assert_eq!(cluster["ReleaseLabel"], "emr-7.5.0");
    assert_eq!(cluster["SecurityConfiguration"], "dynamodb-backups");
    let tags: Vec<(String, String)> = cluster["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().into(),
                t["Value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(tags.contains(&("team".into(), "ops".into())), "{tags:?}");
    assert!(tags.iter().any(|(k, _)| k == "ddbx:run"), "{tags:?}");
    assert_eq!(v["steps"][0]["Name"], format!("Export Table:{t}"));
    let args = &v["steps"][0]["Config"]["Args"];
    assert_eq!(args[0], "org.apache.hadoop.dynamodb.tools.DynamoDbExport");
    assert_eq!(args[2], t.as_str());
}
