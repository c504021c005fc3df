//! `--engine emr` against the EMR stand-in (`support::emr_service`), whose clusters carry
//! out their steps for real against the emulators.

use std::collections::HashSet;

use crate::support::emr_service::{EmrService, Script, StepEnv};
use crate::support::{digests, items, json_stdout, table_error, table_report, TestEnv};

/// Settings that poll fast and retry at once.
pub const FAST: &str = "poll_seconds = 0.05\nretry_delay_seconds = 0\ncreate_attempts = 3\n";

pub struct Emr {
    pub env: TestEnv,
    pub service: EmrService,
    pub config: std::path::PathBuf,
    pub bucket: String,
}

impl Emr {
    pub async fn new(name: &str, script: Script) -> Self {
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

    pub fn ddbx(&self, args: &[&str]) -> std::process::Output {
        self.ddbx_with(&self.config, args)
    }

    /// `ddbx` with another EMR config.
    pub fn ddbx_with(&self, config: &std::path::Path, args: &[&str]) -> std::process::Output {
        let o = self
            .env
            .ddbx()
            .args(["--emr-endpoint-url", &self.service.url])
            .args(args)
            .args(["--engine", "emr", "--emr-config", config.to_str().unwrap()])
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

    pub fn export(&self, extra: &[&str]) -> std::process::Output {
        let to = format!("s3://{}/b", self.bucket);
        let tables = format!("{}*", self.env.prefix);
        let mut args = vec![
            "export", "--app", "app", "--tables", &tables, "--to", &to, "--output", "json",
        ];
        args.extend(extra);
        self.ddbx(&args)
    }

    /// The run root's key prefix (`b/us-east-1/app/.../`), found by its plan.
    pub fn run_prefix(&self) -> String {
        self.env
            .s3_keys(&self.bucket, "b/")
            .iter()
            .find_map(|k| k.strip_suffix("export-plan.json").map(str::to_string))
            .expect("an export plan")
    }

    pub fn object(&self, key: &str) -> Vec<u8> {
        self.env.s3_object(&self.bucket, key).1
    }

    /// Tables of `items_each` items, every other one holding an empty map (which the
    /// connector cannot write).
    pub async fn tables(
        &self,
        names: &[&str],
        items_each: usize,
    ) -> Vec<(String, Vec<items::Item>)> {
        let mut out = Vec::new();
        for (n, name) in names.iter().enumerate() {
            let t = self.env.table(name);
            let sk = n % 2 == 1;
            self.env.create_table(&t, sk, None).await;
            let written: Vec<_> = (0..items_each)
                .map(|i| match i % 2 {
                    0 => items::mixed(i + n * 10_000, sk),
                    _ => items::connector_writable(i + n * 10_000, sk),
                })
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

    // Two clusters, named as the seed named them, each created once, kept alive while ddbx
    // gives it its steps (auto-termination as the backstop), logging under the run, with
    // Hive and the tag AWS's v2 managed policy needs.
    let run = emr.run_prefix();
    let clusters = emr.service.clusters();
    // (The two are launched at once: either may reach EMR first.)
    let mut names: Vec<_> = clusters.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["backup_01", "backup_02"]);
    let req = &clusters[0].request;
    assert_eq!(req["Instances"]["KeepJobFlowAliveWhenNoSteps"], true);
    assert!(
        req.get("Steps").is_none(),
        "steps are added, not created with: {req}"
    );
    assert_eq!(req["AutoTerminationPolicy"]["IdleTimeout"], 3600);
    assert_eq!(req["LogUri"], format!("s3://{}/{run}emr-logs/", emr.bucket));
    assert_eq!(req["ReleaseLabel"], "emr-7.5.0");
    let apps: Vec<_> = req["Applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Name"].as_str().unwrap())
        .collect();
    assert_eq!(apps, vec!["Hadoop", "Hive"]);
    let tags = req["Tags"].as_array().unwrap();
    let tag = |k: &str| {
        tags.iter()
            .find(|t| t["Key"] == k)
            .map(|t| t["Value"].as_str().unwrap().to_string())
    };
    assert_eq!(tag("ddbx:app").as_deref(), Some("app"));
    assert_eq!(tag("Name").as_deref(), Some("backup_01"));
    assert_eq!(
        tag("for-use-with-amazon-emr-managed-policies").as_deref(),
        Some("true")
    );
    let steps: usize = clusters.iter().map(|c| c.steps.len()).sum();
    assert_eq!(steps, 3, "one step per table");
    // Each cluster is terminated by ddbx once its last step ended.
    let mut terminated: Vec<String> = emr.service.terminate_calls().concat();
    terminated.sort();
    assert_eq!(
        terminated,
        vec![clusters[0].id.clone(), clusters[1].id.clone()]
    );

    // The steps files, in the seed's shape, say what each cluster ran: Hive scripts that
    // EMR's own storage handler runs, at the chosen rate in absolute units (0.45 of an
    // on-demand table's 40,000), into the table's data folder.
    let mut stepped = HashSet::new();
    for n in ["01", "02"] {
        let file: serde_json::Value =
            serde_json::from_slice(&emr.object(&format!("{run}exportSteps_{n}.json"))).unwrap();
        for s in file.as_array().unwrap() {
            assert_eq!(s["Type"], "CUSTOM_JAR");
            assert_eq!(s["ActionOnFailure"], "CONTINUE");
            assert_eq!(s["Jar"], "command-runner.jar");
            assert_eq!(s["Args"][0], "hive-script");
            let table = s["Name"]
                .as_str()
                .unwrap()
                .strip_prefix("Export Table:")
                .unwrap()
                .to_string();
            let script = s["Args"][4].as_str().unwrap();
            assert_eq!(
                script,
                format!("s3://{}/{run}_emr/export-{table}.q", emr.bucket)
            );
            let key = script
                .strip_prefix(&format!("s3://{}/", emr.bucket))
                .unwrap();
            let hql = String::from_utf8(emr.object(key)).unwrap();
            assert!(hql.contains("SET hive.execution.engine=mr;"), "{hql}");
            assert!(hql.contains("'dynamodb.throughput.read'='18000'"), "{hql}");
            assert!(
                hql.contains(&format!("'dynamodb.table.name'='{table}'")),
                "{hql}"
            );
            assert!(
                hql.contains(&format!(
                    "LOCATION 's3://{}/{run}{table}/data/'",
                    emr.bucket
                )),
                "{hql}"
            );
            stepped.insert(table);
        }
        let imports: serde_json::Value =
            serde_json::from_slice(&emr.object(&format!("{run}importSteps_{n}.json"))).unwrap();
        assert!(imports[0]["Name"]
            .as_str()
            .unwrap()
            .starts_with("Import Table:"));
        assert_eq!(imports[0]["Args"][0], "hive-script");
    }
    assert_eq!(stepped.len(), 3);
    // What the stand-in ran is what the files say.
    for c in &clusters {
        for s in &c.steps {
            assert_eq!(s.jar, "command-runner.jar");
            assert!(s.hql.as_deref().unwrap().contains("INSERT OVERWRITE TABLE"));
        }
    }
    // ddbx completed the run: table.json and the listing of the data files beside each
    // table's data, plans, flags.
    let keys = emr.env.s3_keys(&emr.bucket, &run);
    for (t, _) in &tables {
        assert!(keys.contains(&format!("{run}{t}/table.json")), "{keys:?}");
        assert!(keys.contains(&format!("{run}{t}/files.json")), "{keys:?}");
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("{run}{t}/data/"))),
            "{keys:?}"
        );
    }
    assert!(keys.contains(&format!("{run}BACKUP_COMPLETE_SUCCESS")));
    assert!(!keys.contains(&format!("{run}BACKUP_RUNNING")));
    // Items are counted by nobody on the cluster: the summary and the restore plan say so
    // rather than claim zero.
    assert_eq!(summary["itemsUnknown"], true, "{summary}");
    let restore: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{run}restore-plan.json"))).unwrap();
    for t in restore["tables"].as_array().unwrap() {
        assert!(t.get("itemCount").is_none(), "{t}");
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{run}export-plan.json"))).unwrap();
    assert_eq!(plan["engine"], "emr");
    assert_eq!(plan["format"], "data-pipeline");
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
        "--output",
        "json",
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
    // Half the items hold an empty map, which the connector cannot write: the Hive step
    // set them aside and ddbx wrote them, and the report says how many.
    let summary = json_stdout(&o);
    for (t, written) in &tables {
        let note = table_report(&summary, &format!("{t}_restored"))["note"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            note.starts_with(&format!(
                "{} items that the connector cannot write",
                written.len() / 2
            )),
            "{note}"
        );
    }
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

    // The local engine imports the EMR run too (its restore plan claims no item counts).
    let locals: Vec<String> = tables
        .iter()
        .map(|(t, _)| format!("{t}={t}_local"))
        .collect();
    let mut args = vec!["import", "--from", &from, "--create-missing"];
    for m in &locals {
        args.extend(["--table-map", m.as_str()]);
    }
    assert_eq!(emr.env.run(&args).status.code(), Some(0));
    for (t, written) in &tables {
        assert_eq!(
            digests(&emr.env.scan_all(&format!("{t}_local")).await),
            digests(written),
            "{t} imported locally from the EMR run"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emr_import_takes_the_local_engines_exports_and_refuses_what_it_cannot_read() {
    let emr = Emr::new("emrlocal", Script::default()).await;
    let tables = emr.tables(&["a", "b", "c"], 30).await;
    // Local-engine exports: the connector's format, the native DynamoDB JSON, and Ion.
    let base = format!("s3://{}/local", emr.bucket);
    let formats = ["emr", "dynamodb-json", "ion"];
    let mut roots = Vec::new();
    for ((t, _), format) in tables.iter().zip(formats) {
        let o = emr.env.run(&[
            "export", "--app", format, "--tables", t, "--to", &base, "--format", format,
        ]);
        assert_eq!(o.status.code(), Some(0));
        let key = emr
            .env
            .s3_keys(&emr.bucket, &format!("local/us-east-1/{format}/"))
            .into_iter()
            .find_map(|k| k.strip_suffix("/export-plan.json").map(str::to_string))
            .unwrap();
        roots.push(format!("s3://{}/{key}", emr.bucket));
    }
    let import = |n: usize, config: &std::path::Path| {
        let map = format!("{}={}_copy", tables[n].0, tables[n].0);
        emr.ddbx_with(
            config,
            &[
                "import",
                "--from",
                &roots[n],
                "--table-map",
                &map,
                "--create-missing",
                "--cluster-name",
                "restore",
                "--output",
                "json",
            ],
        )
    };
    // Hive steps read both line formats (the script converts each line).
    for n in [0, 1] {
        let o = import(n, &emr.config);
        assert_eq!(o.status.code(), Some(0), "{}", formats[n]);
        assert_eq!(
            digests(&emr.env.scan_all(&format!("{}_copy", tables[n].0)).await),
            digests(&tables[n].1),
            "{}",
            formats[n]
        );
    }
    // No reader of Ion on the cluster: that table fails, saying so, and no cluster is
    // created for nothing.
    let clusters_before = emr.service.create_calls();
    let o = import(2, &emr.config);
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &format!("{}_copy", tables[2].0));
    assert!(why.contains("no Ion reader"), "{why}");
    assert_eq!(emr.service.create_calls(), clusters_before);

    // With the connector's tools, only the connector's format.
    let tools = emr.env.out().join("tools.toml");
    std::fs::write(
        &tools,
        format!("{FAST}step_mode = \"tools\"\nconnector_jar = \"s3://jars/emr-dynamodb-tools-5.6.0.jar\"\n"),
    )
    .unwrap();
    let o = import(1, &tools);
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &format!("{}_copy", tables[1].0));
    assert!(why.contains("only its own format"), "{why}");
    assert_eq!(emr.service.create_calls(), clusters_before);
}

/// `step_mode = "tools"`: the connector's tools from the user's jar, its own format; an
/// import of a run moved since reads a manifest of the files where they are now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connectors_tools_export_and_import_a_run_moved_since() {
    let emr = Emr::new("emrtools", Script::default()).await;
    let t = emr.env.table("t");
    emr.env.create_table(&t, true, Some((100, 100))).await;
    let written: Vec<_> = (0..40)
        .map(|i| items::connector_writable(i, true))
        .collect();
    emr.env.put_items(&t, &written).await;
    let tools = emr.env.out().join("tools.toml");
    let jar = "s3://jars/emr-dynamodb-tools-5.6.0.jar";
    std::fs::write(
        &tools,
        format!("{FAST}step_mode = \"tools\"\nconnector_jar = \"{jar}\"\n"),
    )
    .unwrap();
    let to = format!("s3://{}/b", emr.bucket);
    let o = emr.ddbx_with(
        &tools,
        &[
            "export",
            "--app",
            "app",
            "--tables",
            &t,
            "--to",
            &to,
            "--read-ratio",
            "0.5",
            "--cluster-name",
            "tools",
            "--output",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let run = emr.run_prefix();
    let cluster = &emr.service.clusters()[0];
    let apps: Vec<_> = cluster.request["Applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Name"].as_str().unwrap())
        .collect();
    assert_eq!(apps, vec!["Hadoop"], "no Hive needed");
    let step = &cluster.steps[0];
    assert_eq!(step.jar, jar);
    assert_eq!(
        step.args[0],
        "org.apache.hadoop.dynamodb.tools.DynamoDBExport"
    );
    let n = step.args.len();
    assert_eq!(
        step.args[n - 3..],
        [
            format!("s3://{}/{run}{t}", emr.bucket),
            t.clone(),
            "0.5".to_string()
        ],
        "half of 100 read units: the ratio the tool takes"
    );
    assert!(step
        .args
        .contains(&"-Dmapreduce.map.speculative=false".to_string()));
    let plan: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{run}export-plan.json"))).unwrap();
    assert_eq!(plan["format"], "emr");

    // Move the run elsewhere, originals deleted: the manifest's URLs now point at nothing.
    let moved = format!("moved/{run}");
    let count = emr.env.boto3(
        "s3",
        "b, src, dst = sys.argv[2], sys.argv[3], sys.argv[4]\n\
         keys = [o['Key'] for p in c.get_paginator('list_objects_v2').paginate(Bucket=b, Prefix=src) for o in p.get('Contents', [])]\n\
         [(c.copy_object(Bucket=b, Key=dst + k[len(src):], CopySource={'Bucket': b, 'Key': k}), c.delete_object(Bucket=b, Key=k)) for k in keys]\n\
         r = len(keys)",
        &[&emr.bucket, &run, &moved],
    );
    assert!(count.as_u64().unwrap() > 3);
    let from = format!("s3://{}/{}", emr.bucket, moved.trim_end_matches('/'));
    let map = format!("{t}={t}_back");
    let o = emr.ddbx_with(
        &tools,
        &[
            "import",
            "--from",
            &from,
            "--table-map",
            &map,
            "--create-missing",
            "--cluster-name",
            "tools-restore",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&emr.env.scan_all(&format!("{t}_back")).await),
        digests(&written)
    );
    let step = &emr.service.clusters()[1].steps[0];
    assert_eq!(
        step.args[0],
        "org.apache.hadoop.dynamodb.tools.DynamoDBImport"
    );
    let rewritten = format!("s3://{}/{moved}_import/{t}_back", emr.bucket);
    assert_eq!(
        step.args[1], rewritten,
        "the step reads the rewritten manifest"
    );
    let manifest =
        String::from_utf8(emr.object(&format!("{moved}_import/{t}_back/manifest"))).unwrap();
    assert!(
        manifest.contains(&format!("s3://{}/{moved}{t}/", emr.bucket)),
        "{manifest}"
    );
}

/// A table name at DynamoDB's limit (a step name longer than EMR takes), a key named as
/// ddbx's item column, and a table named like one of the run root's own files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_table_and_key_names_round_trip() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let emr = Emr::new("emrnames", Script::default()).await;
    let long = emr.env.table(&"l".repeat(255 - emr.env.prefix.len()));
    assert_eq!(long.len(), 255);
    emr.env.create_table(&long, false, None).await;
    let keyed = emr.env.table("keyed");
    emr.env
        .ddb
        .create_table()
        .table_name(&keyed)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("ddbx_item")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("ddbx_item")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    emr.env.wait_active(&keyed).await;
    let long_items: Vec<_> = (0..5)
        .map(|i| items::connector_writable(i, false))
        .collect();
    emr.env.put_items(&long, &long_items).await;
    let keyed_items: Vec<_> = (0..5)
        .map(|i| {
            let mut m = items::connector_writable(i, false);
            let pk = m.remove("pk").unwrap();
            m.insert("ddbx_item".into(), pk);
            m
        })
        .collect();
    emr.env.put_items(&keyed, &keyed_items).await;

    let o = emr.export(&["--cluster-name", "names"]);
    assert_eq!(o.status.code(), Some(0));
    let steps: Vec<_> = emr.service.clusters()[0].steps.clone();
    let named = steps
        .iter()
        .find(|s| s.name.ends_with("..."))
        .expect("a shortened name");
    assert_eq!(named.name.len(), 256);
    let from = format!(
        "s3://{}/{}",
        emr.bucket,
        emr.run_prefix().trim_end_matches('/')
    );
    let back = emr.env.table("long_back");
    let maps = [format!("{long}={back}"), format!("{keyed}={keyed}_back")];
    let o = emr.ddbx(&[
        "import",
        "--from",
        &from,
        "--create-missing",
        "--cluster-name",
        "names-restore",
        "--table-map",
        &maps[0],
        "--table-map",
        &maps[1],
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&emr.env.scan_all(&back).await),
        digests(&long_items)
    );
    assert_eq!(
        digests(&emr.env.scan_all(&format!("{keyed}_back")).await),
        digests(&keyed_items)
    );

    // A table named like one of the run root's own files goes under `_tables/`, and
    // imports from there.
    let odd = format!("exportSteps_{}.json", emr.env.prefix);
    emr.env.create_table(&odd, false, None).await;
    emr.env.put_items(&odd, &long_items).await;
    let to = format!("s3://{}/odd", emr.bucket);
    let o = emr.ddbx(&[
        "export",
        "--app",
        "odd",
        "--table",
        &odd,
        "--to",
        &to,
        "--cluster-name",
        "odd",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let root = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    let prefix = root.strip_prefix(&format!("s3://{}/", emr.bucket)).unwrap();
    let keys = emr.env.s3_keys(&emr.bucket, prefix);
    assert!(
        keys.contains(&format!("{prefix}/_tables/{odd}/files.json")),
        "{keys:?}"
    );
    let steps: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{prefix}/exportSteps_01.json"))).unwrap();
    assert_eq!(
        steps[0]["Name"],
        format!("Export Table:{odd}"),
        "the steps file is ddbx's"
    );
    let odd_back = emr.env.table("odd_back");
    let map = format!("{odd}={odd_back}");
    let o = emr.env.run(&[
        "import",
        "--from",
        &root,
        "--table-map",
        &map,
        "--create-missing",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&emr.env.scan_all(&odd_back).await),
        digests(&long_items)
    );
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
    crate::support::wait_for(&mut child, "a step handed to the cluster", || {
        proxy.stats.count("elasticmapreduce:AddJobFlowSteps") >= 1
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
    assert!(
        tags.contains(&(
            "for-use-with-amazon-emr-managed-policies".into(),
            "true".into()
        )),
        "{tags:?}"
    );
    // The step was added to the running cluster, as a Hive script run by command-runner.
    assert_eq!(proxy.stats.count("elasticmapreduce:AddJobFlowSteps"), 1);
    assert_eq!(v["steps"][0]["Name"], format!("Export Table:{t}"));
    assert_eq!(v["steps"][0]["Config"]["Jar"], "command-runner.jar");
    let args = &v["steps"][0]["Config"]["Args"];
    assert_eq!(args[0], "hive-script");
    assert_eq!(args[3], "-f");
    assert!(
        args[4]
            .as_str()
            .unwrap()
            .ends_with(&format!("/_emr/export-{t}.q")),
        "{args}"
    );
}

/// The run root of the only export under `prefix` (`s3://bucket/<key>`).
fn root_under(emr: &Emr, prefix: &str) -> String {
    let key = emr
        .env
        .s3_keys(&emr.bucket, prefix)
        .into_iter()
        .find_map(|k| k.strip_suffix("/export-plan.json").map(str::to_string))
        .expect("an export plan");
    format!("s3://{}/{key}", emr.bucket)
}

/// An import of an export of thousands of data files: its query names every file, and
/// Hive copies the query into the TRANSFORM script's environment, past Linux's limit for
/// one string unless truncated (which the import asks for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_of_thousands_of_data_files_starts_its_script() {
    let emr = Emr::new("emrmany", Script::default()).await;
    let t = emr.env.table("t");
    emr.env.create_table(&t, false, None).await;
    let written: Vec<_> = (0..3_500)
        .map(|i| items::connector_writable(i, false))
        .collect();
    emr.env.put_items(&t, &written).await;
    let base = format!("s3://{}/many", emr.bucket);
    let o = emr.env.run(&[
        "export",
        "--app",
        "many",
        "--tables",
        &t,
        "--to",
        &base,
        "--format",
        "dynamodb-json",
        "--file-items",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let root = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    let map = format!("{t}={t}_copy");
    let o = emr.ddbx(&[
        "import",
        "--from",
        &root,
        "--table-map",
        &map,
        "--create-missing",
        "--cluster-name",
        "many",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&emr.env.scan_all(&format!("{t}_copy")).await),
        digests(&written)
    );
    let hql = &emr.service.clusters()[0].steps[0].hql.clone().unwrap();
    assert!(
        hql.len() > 128 * 1024,
        "the query names 3,500 files: {} bytes",
        hql.len()
    );
    assert!(hql.contains("SET hive.script.operator.truncate.env=true;"));
}

/// Attribute names the Hive text cannot hold (a line end, \x02, \x03) fail the table's EMR
/// export, naming the attribute, rather than leave a backup that cannot be read; an EMR
/// import of a local export keeps them, and an attribute Hive would read as NULL (`\N`),
/// by writing those items with ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_attribute_names_never_make_a_backup_that_cannot_be_restored() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let emr = Emr::new("emroddnames", Script::default()).await;
    let odd = emr.env.table("odd");
    emr.env.create_table(&odd, false, None).await;
    let mut written: Vec<_> = (0..6)
        .map(|i| items::connector_writable(i, false))
        .collect();
    written[1].insert("line\nend".into(), A::S("x".into()));
    written[2].insert("\\N".into(), A::S("read as NULL by Hive".into()));
    written[3].insert("sep\u{2}arator".into(), A::N("1".into()));
    emr.env.put_items(&odd, &written).await;
    let plain = emr.env.table("plain");
    emr.env.create_table(&plain, false, None).await;
    emr.env.put_items(&plain, &written[4..]).await;

    let o = emr.export(&["--cluster-name", "odd"]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    let why = table_error(&summary, &odd);
    assert!(
        why.contains("2 items") && why.contains("line end") && why.contains("--engine local"),
        "{why}"
    );
    assert!(
        why.contains("line\\nend") || why.contains("sep\\u{2}arator"),
        "names the attribute: {why}"
    );
    assert_eq!(table_report(&summary, &plain)["status"], "succeeded");

    let base = format!("s3://{}/local", emr.bucket);
    let o = emr.env.run(&[
        "export",
        "--app",
        "odd",
        "--tables",
        &odd,
        "--to",
        &base,
        "--format",
        "dynamodb-json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let root = root_under(&emr, "local/");
    let map = format!("{odd}={odd}_back");
    let o = emr.ddbx(&[
        "import",
        "--from",
        &root,
        "--table-map",
        &map,
        "--create-missing",
        "--cluster-name",
        "odd-back",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&emr.env.scan_all(&format!("{odd}_back")).await),
        digests(&written),
        "every item, its odd names too"
    );
}

/// An index keyed on the item column's usual name, and a base location long enough that
/// the run's URL is over EMR's 256 characters for a tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_key_named_like_the_item_column_and_a_long_base_location() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let emr = Emr::new("emrindex", Script::default()).await;
    let t = emr.env.table("indexed");
    let def = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(KeyType::Hash)
            .build()
            .unwrap()
    };
    emr.env
        .ddb
        .create_table()
        .table_name(&t)
        .attribute_definitions(def("pk"))
        .attribute_definitions(def("ddbx_item"))
        .key_schema(key("pk"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_item")
                .key_schema(key("ddbx_item"))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    emr.env.wait_active(&t).await;
    let written: Vec<_> = (0..5)
        .map(|i| {
            let mut m = items::connector_writable(i, false);
            m.insert(
                "ddbx_item".into(),
                aws_sdk_dynamodb::types::AttributeValue::S(format!("g{i}")),
            );
            m
        })
        .collect();
    emr.env.put_items(&t, &written).await;
    let long = "deep/".repeat(60);
    let to = format!("s3://{}/{long}b", emr.bucket);
    let o = emr.ddbx(&[
        "export",
        "--app",
        "app",
        "--tables",
        &t,
        "--to",
        &to,
        "--cluster-name",
        "index",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let tags = emr.service.clusters()[0].request["Tags"].clone();
    let run = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Key"] == "ddbx:run")
        .unwrap()["Value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(run.chars().count(), 256, "{run}");
    let root = root_under(&emr, &format!("{long}b/"));
    assert!(root.ends_with(&run[3..]), "{root} {run}");
    let hql = emr.service.clusters()[0].steps[0].hql.clone().unwrap();
    assert!(hql.contains("(ddbx_item_2 MAP<STRING,STRING>)"), "{hql}");
    let map = format!("{t}={t}_back");
    let o = emr.ddbx(&[
        "import",
        "--from",
        &root,
        "--table-map",
        &map,
        "--create-missing",
        "--cluster-name",
        "index-back",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&emr.env.scan_all(&format!("{t}_back")).await),
        digests(&written)
    );
}

/// emr-5.19's python3 is 3.4, whose stdio is ASCII in a YARN container's C locale: the
/// import script reads and writes UTF-8 itself, so non-ASCII names and values pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_releases_python_imports_non_ascii_data() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let emr = Emr::new("emrpython", Script::default()).await;
    std::fs::write(
        &emr.config,
        format!("{FAST}release_label = \"emr-5.19.0\"\n"),
    )
    .unwrap();
    let t = emr.env.table("t");
    emr.env.create_table(&t, false, None).await;
    let written: Vec<_> = (0..8)
        .map(|i| {
            std::collections::HashMap::from([
                ("pk".to_string(), A::S(format!("clé-{i}-✓"))),
                (
                    "naïve ünïcödé".to_string(),
                    A::S("日本語 \u{2028} é".into()),
                ),
                ("n".to_string(), A::N(format!("{i}.5"))),
            ])
        })
        .collect();
    emr.env.put_items(&t, &written).await;
    let o = emr.export(&["--cluster-name", "old"]);
    assert_eq!(o.status.code(), Some(0));
    let from = format!(
        "s3://{}/{}",
        emr.bucket,
        emr.run_prefix().trim_end_matches('/')
    );
    let map = format!("{t}={t}_back");
    let o = emr.ddbx(&[
        "import",
        "--from",
        &from,
        "--table-map",
        &map,
        "--create-missing",
        "--cluster-name",
        "old-back",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&emr.env.scan_all(&format!("{t}_back")).await),
        digests(&written)
    );
}
