//! `--engine emr` against the EMR stand-in (`support::emr_service`), whose clusters carry
//! out their steps for real against the emulators.

use std::collections::HashSet;

use crate::support::emr_service::{EmrService, Script, StepEnv};
use crate::support::{digests, items, json_stdout, TestEnv};

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
