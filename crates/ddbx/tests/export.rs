//! `ddbx export` end to end.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use base64::Engine as _;
use ddbx_core::item;
use md5::{Digest, Md5};

use crate::support::{
    digests, files_under, gz_lines, items, json_stdout, read_json, run_dir, wait_for, TestEnv,
};

/// Check a native export folder against docs/FORMATS.md §1 and return its items.
fn read_native_table(out: &Path, table_dir: &Path) -> Vec<item::Item> {
    let aws = table_dir.join("AWSDynamoDB");
    let ids: Vec<_> = std::fs::read_dir(&aws)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(ids.len(), 1, "one export id folder");
    let id_dir = &ids[0];
    let id = id_dir.file_name().unwrap().to_str().unwrap();
    let (ms, hex8) = id.split_once('-').unwrap();
    assert_eq!(ms.len(), 14, "export id {id}");
    assert_eq!(hex8.len(), 8, "export id {id}");
    assert_eq!(std::fs::read(id_dir.join("_started")).unwrap().len(), 0);

    // Beside each manifest, `.md5` with its base64 MD5 (24 bytes, no newline), as AWS writes.
    let b64_md5 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(Md5::digest(b));
    let files_manifest = std::fs::read(id_dir.join("manifest-files.json")).unwrap();
    assert_eq!(
        std::fs::read_to_string(id_dir.join("manifest-files.md5")).unwrap(),
        b64_md5(&files_manifest)
    );
    let summary_bytes = std::fs::read(id_dir.join("manifest-summary.json")).unwrap();
    assert_eq!(
        std::fs::read_to_string(id_dir.join("manifest-summary.md5")).unwrap(),
        b64_md5(&summary_bytes)
    );
    assert!(!id_dir.join("manifest-files.checksum").exists());
    let summary: serde_json::Value = serde_json::from_slice(&summary_bytes).unwrap();
    let keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "version",
            "exportArn",
            "startTime",
            "endTime",
            "tableArn",
            "tableId",
            "exportTime",
            "s3Bucket",
            "s3Prefix",
            "s3SseAlgorithm",
            "s3SseKmsKeyId",
            "manifestFilesS3Key",
            "billedSizeBytes",
            "itemCount",
            "outputFormat",
            "exportType"
        ]
    );
    assert_eq!(summary["exportType"], "FULL_EXPORT");
    assert_eq!(summary["version"], "2020-06-30");
    assert_eq!(summary["outputFormat"], "DYNAMODB_JSON");

    let mut all = Vec::new();
    let mut listed = HashSet::new();
    for line in String::from_utf8(files_manifest).unwrap().lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = entry["dataFileS3Key"].as_str().unwrap();
        assert!(
            key.contains(&format!("AWSDynamoDB/{id}/data/")) && key.ends_with(".json.gz"),
            "{key}"
        );
        let path = out.join(key);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            entry["md5Checksum"].as_str().unwrap(),
            base64::engine::general_purpose::STANDARD.encode(Md5::digest(&bytes)),
            "md5 of {key}"
        );
        let lines = gz_lines(&path);
        assert_eq!(entry["itemCount"].as_u64().unwrap(), lines.len() as u64);
        for l in lines {
            // Any JSON tool reads it: {"Item":{...}} with upper-case type keys.
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert!(v["Item"].is_object(), "{l}");
            all.push(item::dynamodb_json::decode_line(l.as_bytes()).unwrap());
        }
        listed.insert(path);
    }
    let on_disk: HashSet<_> = files_under(&id_dir.join("data")).into_iter().collect();
    assert_eq!(
        on_disk, listed,
        "every data file is in the manifest and nothing else is there"
    );
    assert_eq!(summary["itemCount"].as_u64().unwrap(), all.len() as u64);
    all
}

#[tokio::test]
async fn export_writes_the_native_layout_flags_and_plans() {
    let env = TestEnv::new("native").await;
    let (a, b, c) = (env.table("orders"), env.table("users"), env.table("empty"));
    env.create_table(&a, true, Some((200, 50))).await;
    env.create_table(&b, false, None).await;
    env.create_table(&c, false, Some((5, 5))).await;
    let items_a: Vec<_> = (0..300).map(|i| items::mixed(i, true)).collect();
    let mut items_b: Vec<_> = (0..50).map(|i| items::mixed(i, false)).collect();
    items_b.push(items::sized(9999, 399 * 1024)); // near DynamoDB's 400 KB limit
    env.put_items(&a, &items_a).await;
    env.put_items(&b, &items_b).await;

    let out = env.out();
    let app = format!("{}app", env.prefix);
    let o = env.run(&[
        "export",
        "--app",
        &app,
        "--tables",
        &env.prefix,
        "--to",
        out.to_str().unwrap(),
        "--read-ratio",
        "0.5",
        "--segments",
        "3",
        "--file-items",
        "100",
    ]);
    assert_eq!(o.status.code(), Some(0));

    let run = run_dir(&out, &app);
    // Flags: RUNNING removed, SUCCESS written with a summary.
    assert!(!run.join("BACKUP_RUNNING").exists());
    assert!(!run.join("BACKUP_COMPLETE_FAILED").exists());
    let flag = read_json(&run.join("BACKUP_COMPLETE_SUCCESS"));
    assert_eq!(flag["tables"], 3);
    assert_eq!(flag["tablesFailed"], 0);
    assert_eq!(flag["items"], 351);
    assert!(
        !out.join("us-east-1").join(&app).join("_LOCK").exists(),
        "lock released"
    );

    // Plans.
    let plan = read_json(&run.join("export-plan.json"));
    let planned: BTreeMap<String, serde_json::Value> = plan["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap().to_string(), t.clone()))
        .collect();
    assert_eq!(planned[&a]["targetReadUnits"], 100.0, "0.5 x 200 RCU");
    assert_eq!(
        planned[&b]["targetReadUnits"], 20000.0,
        "0.5 x 40,000 on demand"
    );
    assert_eq!(planned[&b]["billingMode"], "PAY_PER_REQUEST");
    let restore = read_json(&run.join("restore-plan.json"));
    let steps = restore["tables"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    for s in steps {
        assert_eq!(s["writeRatio"], 0.8);
        assert_eq!(s["sourceTable"], s["targetTable"]);
        assert_eq!(s["format"], "dynamodb-json");
    }

    // Tables: table.json and the native layout, items exactly as written.
    for (name, expected) in [(&a, &items_a), (&b, &items_b), (&c, &Vec::new())] {
        let dir = run.join(name);
        let schema = read_json(&dir.join("table.json"));
        assert_eq!(schema["TableName"], name.as_str());
        assert_eq!(schema["KeySchema"][0]["AttributeName"], "pk");
        let got = read_native_table(&out, &dir);
        assert_eq!(digests(&got), digests(expected), "items of {name}");
    }
    // The empty table leaves one (empty) data file, as AWS does, however many segments
    // it was read in: a million segments of a small table never make a million files.
    let empty_files = files_under(&run.join(&c).join("AWSDynamoDB"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/data/"))
        .count();
    assert_eq!(empty_files, 1);
}

#[tokio::test]
async fn export_emr_format_writes_the_connector_layout() {
    let env = TestEnv::new("emr").await;
    let t = env.table("things");
    env.create_table(&t, true, Some((100, 100))).await;
    let written: Vec<_> = (0..250).map(|i| items::mixed(i, true)).collect();
    env.put_items(&t, &written).await;
    let out = env.out();
    let app = format!("{}app", env.prefix);
    let o = env.run(&[
        "export",
        "--app",
        &app,
        "--tables",
        &t,
        "--to",
        out.to_str().unwrap(),
        "--format",
        "emr",
        "--file-items",
        "100",
        "--segments",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let dir = run_dir(&out, &app).join(&t);
    let manifest = std::fs::read_to_string(dir.join("manifest")).unwrap();
    assert!(
        manifest.starts_with("{\"name\":\"DynamoDB-export\",\"version\":3,\n\"entries\": [\n"),
        "{manifest}"
    );
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "250 items at 100 a file");
    let mut got = Vec::new();
    for e in entries {
        assert_eq!(e["mandatory"], true);
        let url = e["url"].as_str().unwrap();
        let path = url.strip_prefix("file://").expect("absolute URL");
        let name = Path::new(path).file_name().unwrap().to_str().unwrap();
        assert!(
            name.ends_with(".gz") && uuid_like(name.trim_end_matches(".gz")),
            "{name}"
        );
        assert_eq!(
            Path::new(path).parent().unwrap(),
            dir.canonicalize().unwrap()
        );
        for l in gz_lines(Path::new(path)) {
            assert!(
                l.contains("{\"s\":") && !l.contains("\"Item\""),
                "connector keys: {l}"
            );
            got.push(item::connector::decode_line(l.as_bytes()).unwrap());
        }
    }
    assert_eq!(digests(&got), digests(&written));
    let restore = read_json(&run_dir(&out, &app).join("restore-plan.json"));
    assert_eq!(restore["tables"][0]["format"], "emr");
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn filters_excludes_and_dry_run() {
    let env = TestEnv::new("filter").await;
    for t in [
        "PROD_a",
        "PROD_b",
        "PROD_tmp",
        "PRODUCTS",
        "DEV_a",
        "PROD_skip",
    ] {
        env.create_table(&env.table(t), false, Some((5, 5))).await;
    }
    let out = env.out();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("excludes"),
        format!("{}\n# comment\n", env.table("PROD_skip")),
    )
    .unwrap();
    let extra = env.dir.path().join("more-excludes");
    std::fs::write(&extra, env.table("PRODUCTS")).unwrap();
    let app = format!("{}app", env.prefix);
    let o = env.run(&[
        "export",
        "--app",
        &app,
        "--tables",
        &env.table("PROD"),
        "--tables",
        &format!("{}DEV_?", env.prefix),
        "--exclude",
        &env.table("PROD_tmp"),
        "--exclude-file",
        extra.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["plan"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [env.table("DEV_a"), env.table("PROD_a"), env.table("PROD_b")]
    );
    assert_eq!(
        v["plan"]["tables"][0]["keySchema"][0]["AttributeName"],
        "pk"
    );
    // A dry run writes nothing: only the excludes file is there.
    let entries: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["excludes"]);

    // Nothing selected: exit 3, with a message.
    let o = env.run(&[
        "export",
        "--app",
        &app,
        "--tables",
        &env.table("NOPE"),
        "--to",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no table"));

    // A binary excludes file is refused, naming it.
    std::fs::write(&extra, [0u8, 159, 146, 150]).unwrap();
    let o = env.run(&[
        "export",
        "--app",
        &app,
        "--tables",
        &env.table("PROD"),
        "--exclude-file",
        extra.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("more-excludes"));
}

#[tokio::test]
async fn selects_past_the_first_page_of_list_tables() {
    let env = TestEnv::new("many").await;
    let names: Vec<String> = (0..105).map(|i| env.table(&format!("t{i:03}"))).collect();
    futures::future::join_all(
        names
            .iter()
            .map(|n| env.create_table(n, false, Some((1, 1)))),
    )
    .await;
    let o = env.run(&[
        "export",
        "--app",
        "many",
        "--tables",
        &env.prefix,
        "--to",
        env.out().to_str().unwrap(),
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["plan"]["tables"].as_array().unwrap().len(), 105);
}

#[tokio::test]
async fn bad_app_name_and_ratio_are_usage_errors() {
    let env = TestEnv::new("usage").await;
    let out = env.out();
    let o = env.run(&[
        "export",
        "--app",
        "..",
        "--tables",
        "x",
        "--to",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("app name"));
    let o = env.run(&[
        "export",
        "--app",
        "a",
        "--tables",
        "x",
        "--to",
        out.to_str().unwrap(),
        "--read-ratio",
        "7",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--read-ratio"));
}

#[tokio::test]
async fn a_held_lock_stops_a_second_export_and_a_stale_one_can_be_broken() {
    let env = TestEnv::new("lock").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((5, 5)), 20).await;
    let out = env.out();
    let app = format!("{}app", env.prefix);
    let lock = out.join("us-east-1").join(&app).join("_LOCK");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let held = |minutes_ago: i64| {
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
        serde_json::json!({"owner":"otherhost:42","run":"export elsewhere","token":"x","acquiredAt":at,"refreshedAt":at}).to_string()
    };
    std::fs::write(&lock, held(1)).unwrap();
    let args = [
        "export",
        "--app",
        &app,
        "--tables",
        &t,
        "--to",
        out.to_str().unwrap(),
    ];
    let o = env.run(&args);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("otherhost:42") && err.contains("_LOCK"),
        "{err}"
    );
    assert!(
        !out.join("us-east-1").join(&app).join("2026").exists()
            && std::fs::read_dir(lock.parent().unwrap()).unwrap().count() == 1,
        "nothing written"
    );

    // Fresh lock + --break-stale-lock: still refused.
    let mut with_break = args.to_vec();
    with_break.push("--break-stale-lock");
    assert_eq!(env.run(&with_break).status.code(), Some(2));
    // Stale lock without the flag: refused, with a hint.
    std::fs::write(&lock, held(60)).unwrap();
    let o = env.run(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--break-stale-lock"));
    // Stale lock with the flag: taken over, export succeeds, lock removed.
    assert_eq!(env.run(&with_break).status.code(), Some(0));
    assert!(!lock.exists());
}

#[tokio::test]
async fn two_concurrent_exports_of_one_app_one_wins() {
    let env = TestEnv::new("race").await;
    let t = env.table("slow");
    env.create_table(&t, false, Some((5, 5))).await;
    // ~40 units of data read at 10 units/s: the first export holds the lock for seconds.
    env.put_items(
        &t,
        &(0..80).map(|i| items::sized(i, 3500)).collect::<Vec<_>>(),
    )
    .await;
    let out = env.out();
    let app = format!("{}app", env.prefix);
    let args = [
        "export",
        "--app",
        &app,
        "--tables",
        &t,
        "--to",
        out.to_str().unwrap(),
        "--max-read-units",
        "10",
    ];
    let mut first = env.ddbx().args(args).spawn().unwrap();
    let lock = out.join("us-east-1").join(&app).join("_LOCK");
    wait_for(&mut first, "taking the lock", || lock.exists());
    let second = env.run(&args);
    assert_eq!(second.status.code(), Some(2), "second export is refused");
    assert_eq!(
        first.wait().unwrap().code(),
        Some(0),
        "first export succeeds"
    );
}

#[tokio::test]
async fn a_table_deleted_mid_run_fails_alone() {
    let env = TestEnv::new("fail").await;
    let (slow, gone) = (env.table("a_slow"), env.table("b_gone"));
    env.create_table(&slow, false, Some((5, 5))).await;
    env.create_table(&gone, false, Some((5, 5))).await;
    env.put_items(
        &slow,
        &(0..60).map(|i| items::sized(i, 3500)).collect::<Vec<_>>(),
    )
    .await;
    env.put_items(
        &gone,
        &(0..10).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
    )
    .await;
    let out = env.out();
    let app = format!("{}app", env.prefix);
    // One table at a time, the slow one first: the other is deleted before its turn.
    let mut child = env
        .ddbx()
        .args([
            "export",
            "--app",
            &app,
            "--tables",
            &env.prefix,
            "--to",
            out.to_str().unwrap(),
            "--max-read-units",
            "10",
            "--parallel-tables",
            "1",
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = out.join("us-east-1").join(&app).join("_LOCK");
    wait_for(&mut child, "taking the lock", || lock.exists());
    env.ddb
        .delete_table()
        .table_name(&gone)
        .send()
        .await
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["tablesFailed"], 1);
    assert!(summary["errors"][0].as_str().unwrap().contains(&gone));
    let run = run_dir(&out, &app);
    assert!(!run.join("BACKUP_COMPLETE_SUCCESS").exists() && !run.join("BACKUP_RUNNING").exists());
    let flag = read_json(&run.join("BACKUP_COMPLETE_FAILED"));
    assert_eq!(flag["tablesFailed"], 1);
    let restore = read_json(&run.join("restore-plan.json"));
    assert_eq!(
        restore["tables"].as_array().unwrap().len(),
        1,
        "only the good table is restorable"
    );
    assert_eq!(restore["tables"][0]["sourceTable"], slow.as_str());
    assert_eq!(read_native_table(&out, &run.join(&slow)).len(), 60);
}

#[tokio::test]
async fn the_read_rate_stays_at_the_target() {
    let env = TestEnv::new("rate").await;
    let t = env.table("r");
    env.create_table(&t, false, Some((40, 5))).await;
    // 3.5 KB items: a scan costs ~0.43 units per item by DynamoDB's rule; ~430 units in all.
    env.put_items(
        &t,
        &(0..1000).map(|i| items::sized(i, 3500)).collect::<Vec<_>>(),
    )
    .await;
    let out = env.out();
    let start = std::time::Instant::now();
    let o = env.run(&[
        "export",
        "--app",
        &format!("{}app", env.prefix),
        "--tables",
        &t,
        "--to",
        out.to_str().unwrap(),
        "--read-ratio",
        "1.0",
        "--segments",
        "4",
        "--output",
        "json",
    ]);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(o.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let units = summary["tableReports"][0]["readUnits"].as_f64().unwrap();
    assert!(units > 300.0, "consumed {units}");
    // The target is 40 units/s: the whole run may not go faster than 10% over it (one
    // second of saved-up capacity allowed), and the limiter should not crawl either.
    let rate = units / secs;
    assert!(
        units <= 40.0 * 1.1 * secs + 40.0,
        "consumed {units} units in {secs:.1}s"
    );
    assert!(rate > 40.0 * 0.6, "only {rate:.1} units/s");
}

#[tokio::test]
async fn export_to_s3() {
    let env = TestEnv::new("s3").await;
    let t = env.table("t");
    env.create_table(&t, true, None).await;
    env.put_items(
        &t,
        &(0..40).map(|i| items::mixed(i, true)).collect::<Vec<_>>(),
    )
    .await;
    let bucket = env.bucket();
    let app = "s3app";
    let o = env.run(&[
        "export",
        "--app",
        app,
        "--tables",
        &t,
        "--to",
        &format!("s3://{bucket}/backups/ddb"),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["items"], 40);
    let root = summary["runRoot"].as_str().unwrap();
    assert!(
        root.starts_with(&format!("s3://{bucket}/backups/ddb/us-east-1/s3app/")),
        "{root}"
    );
    // The lock is gone after the run: a second run (at another time, so in another run
    // root: the same second's would be refused) goes ahead.
    let o = env.run(&[
        "export",
        "--app",
        app,
        "--tables",
        &t,
        "--to",
        &format!("s3://{bucket}/backups/ddb"),
        "--run-time",
        "2020-01-01T00:00:00Z",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "the first run released its lock");
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_and_server_errors_lose_and_repeat_nothing() {
    use crate::support::fault_proxy::{FaultProxy, Faults};
    let env = TestEnv::new("throttle").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, Some((1000, 5)), 400).await;
    let proxy = FaultProxy::start(
        &env.emulators.dynamodb,
        Faults {
            scan_throttle_every: 3,
            scan_error_every: 5,
            ..Faults::default()
        },
    )
    .await;
    let out = env.out();
    let o = env.export_via(
        &proxy.url,
        &env.emulators.s3,
        &t,
        out.to_str().unwrap(),
        &[
            "--segments",
            "4",
            "--max-read-units",
            "200",
            "--output",
            "json",
        ],
    );
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["items"], 400);
    let faults = proxy
        .stats
        .scan_faults
        .load(std::sync::atomic::Ordering::SeqCst);
    let scans = proxy
        .stats
        .scan_calls
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        faults >= 3,
        "faults were injected: {faults} in {scans} scans"
    );
    let got = read_native_table(&out, &run_dir(&out, "app").join(&t));
    assert_eq!(digests(&got), digests(&written), "every item exactly once");
}

#[tokio::test]
async fn sigterm_stops_cleanly_with_failed_flag_and_released_lock() {
    let env = TestEnv::new("sigterm").await;
    let t = env.table("t");
    env.create_table(&t, false, Some((5, 5))).await;
    env.put_items(
        &t,
        &(0..200).map(|i| items::sized(i, 3500)).collect::<Vec<_>>(),
    )
    .await;
    let out = env.out();
    let app = format!("{}app", env.prefix);
    // ~100 units at 5 units/s: 20 s if left alone.
    let mut child = env
        .ddbx()
        .args([
            "export",
            "--app",
            &app,
            "--tables",
            &t,
            "--to",
            out.to_str().unwrap(),
            "--max-read-units",
            "5",
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = out.join("us-east-1").join(&app).join("_LOCK");
    wait_for(&mut child, "taking the lock", || lock.exists());
    let signalled = std::time::Instant::now();
    crate::support::sigterm(&child);
    let o = child.wait_with_output().unwrap();
    assert!(
        signalled.elapsed().as_secs_f64() < 10.0,
        "stopped within seconds"
    );
    assert_eq!(o.status.code(), Some(4));
    let run = run_dir(&out, &app);
    let flag = read_json(&run.join("BACKUP_COMPLETE_FAILED"));
    assert!(flag["errors"].to_string().contains("interrupted"), "{flag}");
    assert!(!run.join("BACKUP_RUNNING").exists());
    assert!(!lock.exists(), "lock released");
}

/// Every file under a folder, or none if it is not there yet.
/// Data files written so far under a run (any table, any layout).
fn data_files(dir: &Path) -> usize {
    if !dir.exists() {
        return 0;
    }
    files_under(dir)
        .iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.contains("/data/") && s.ends_with(".json.gz")
        })
        .count()
}

#[tokio::test]
async fn a_killed_export_resumes_to_an_exact_result() {
    let env = TestEnv::new("kill").await;
    let t = env.table("t");
    env.create_table(&t, false, Some((50, 5))).await;
    let written: Vec<_> = (0..800).map(|i| items::sized(i, 900)).collect();
    env.put_items(&t, &written).await;
    let out = env.out();
    // Twenty kill points chosen by a seeded generator: half after k data files are stored,
    // half at a random moment once the run has started (mid-page, mid-upload, between files).
    let mut seed: u64 = 20261125;
    for round in 0..20 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = (seed >> 33) as usize;
        let app = format!("{}app{round}", env.prefix);
        let mut child = env
            .ddbx()
            .args([
                "export",
                "--app",
                &app,
                "--tables",
                &t,
                "--to",
                out.to_str().unwrap(),
                "--segments",
                "4",
                "--file-items",
                "50",
                "--max-read-units",
                "150",
            ])
            .spawn()
            .unwrap();
        let app_dir = out.join("us-east-1").join(&app);
        if round % 2 == 0 {
            let k = 1 + r % 12;
            wait_for(&mut child, &format!("round {round}: {k} files"), || {
                data_files(&app_dir) >= k
            });
        } else {
            wait_for(&mut child, &format!("round {round}: the plan"), || {
                files_under(&app_dir)
                    .iter()
                    .any(|p| p.ends_with("export-plan.json"))
            });
            std::thread::sleep(std::time::Duration::from_millis((r % 1200) as u64));
        }
        child.kill().unwrap(); // SIGKILL: no flag, no checkpoint, no cleanup
        child.wait().unwrap();
        let run = run_dir(&out, &app);
        if round % 2 == 0 {
            assert!(
                run.join("BACKUP_RUNNING").exists(),
                "a killed run still says RUNNING"
            );
        }
        let o = env.run(&[
            "export",
            "--resume",
            run.to_str().unwrap(),
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "round {round}");
        let summary = json_stdout(&o);
        assert_eq!(
            summary["items"], 800,
            "round {round}: each item counted once"
        );
        assert!(
            run.join("BACKUP_COMPLETE_SUCCESS").exists() && !run.join("BACKUP_RUNNING").exists()
        );
        assert!(
            !app_dir.join("_LOCK").exists(),
            "the resumed run took over and released its lock"
        );
        let got = read_native_table(&out, &run.join(&t));
        assert_eq!(
            digests(&got),
            digests(&written),
            "round {round}: every item exactly once"
        );
    }
}

#[tokio::test]
async fn secrets_never_reach_logs_or_run_files() {
    let env = TestEnv::new("secret").await;
    let t = env.table("t");
    env.mixed_table(&t, None, 30).await;
    let bucket = env.bucket();
    let (secret, token) = ("SeCrEtDiStInCtIvE0987654321", "ToKeNdIsTiNcTiVe1234567890");
    let out = env.out();
    for to in [
        format!("s3://{bucket}/b"),
        out.to_str().unwrap().to_string(),
    ] {
        let o = env
            .ddbx()
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token)
            .env("RUST_LOG", "trace")
            .args([
                "export", "--app", "app", "--tables", &t, "--to", &to, "--output", "json",
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.len() > 10_000, "trace logging was on");
        for text in [stderr.as_ref(), String::from_utf8_lossy(&o.stdout).as_ref()] {
            assert!(
                !text.contains(secret) && !text.contains(token),
                "a secret leaked into the output for {to}"
            );
        }
    }
    for f in files_under(&out) {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret) && !text.contains(token),
            "a secret leaked into {}",
            f.display()
        );
    }
}

#[tokio::test]
async fn s3_writes_are_encrypted_as_asked_and_the_manifest_says_so() {
    let env = TestEnv::new("sse").await;
    let t = env.table("t");
    env.mixed_table(&t, None, 20).await;
    let bucket = env.bucket();
    let o = env.run(&[
        "--sse",
        "aws:kms",
        "--sse-kms-key-id",
        "alias/backups",
        "--expected-bucket-owner",
        "123456789012",
        "export",
        "--app",
        "app",
        "--tables",
        &t,
        "--to",
        &format!("s3://{bucket}/b"),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let keys = env.s3_keys(&bucket, "b/");
    let summary_key = keys
        .iter()
        .find(|k| k.ends_with("manifest-summary.json"))
        .expect("a manifest summary");
    let data_key = keys
        .iter()
        .find(|k| k.ends_with(".json.gz"))
        .expect("a data file");
    let (sse, body) = env.s3_object(&bucket, summary_key);
    assert_eq!(sse, "aws:kms");
    let summary: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(summary["s3SseAlgorithm"], "KMS");
    assert_eq!(summary["s3SseKmsKeyId"], "alias/backups");
    assert_eq!(summary["s3Bucket"], bucket.as_str());
    let (sse, _) = env.s3_object(&bucket, data_key);
    assert_eq!(sse, "aws:kms", "data files are encrypted too");
    // A key id without aws:kms is a usage error.
    let o = env.run(&[
        "--sse",
        "AES256",
        "--sse-kms-key-id",
        "k",
        "export",
        "--app",
        "app",
        "--tables",
        &t,
        "--to",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

#[tokio::test]
async fn data_files_are_stored_in_the_storage_class_asked_and_small_documents_stay_standard() {
    let env = TestEnv::new("class").await;
    let t = env.table("t");
    env.create_table(&t, false, None).await;
    let written: Vec<_> = (0..300).map(|i| items::incompressible(i, 1000)).collect();
    env.put_items(&t, &written).await;
    let bucket = env.bucket();
    let to = format!("s3://{bucket}/b");
    // One segment: one data file of about 300 KB.
    let o = env.run(&[
        "--storage-class",
        "STANDARD_IA",
        "export",
        "--app",
        "app",
        "--tables",
        &t,
        "--to",
        &to,
        "--segments",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let run = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    let class_of = |key: &str| {
        env.boto3(
            "s3",
            "r = c.head_object(Bucket=sys.argv[2], Key=sys.argv[3]).get('StorageClass', 'STANDARD')",
            &[&bucket, key],
        )
    };
    let keys = env.s3_keys(&bucket, "b/");
    let data = keys.iter().find(|k| k.ends_with(".json.gz")).unwrap();
    assert_eq!(class_of(data), "STANDARD_IA");
    for small in [
        "BACKUP_COMPLETE_SUCCESS",
        "export-plan.json",
        "manifest-summary.json",
    ] {
        let key = keys.iter().find(|k| k.ends_with(small)).unwrap();
        assert_eq!(class_of(key), "STANDARD", "{key}");
    }
    let plan_key = keys
        .iter()
        .find(|k| k.ends_with("export-plan.json"))
        .unwrap();
    let (_, plan) = env.s3_object(&bucket, plan_key);
    let plan: serde_json::Value = serde_json::from_slice(&plan).unwrap();
    assert_eq!(plan["storageClass"], "STANDARD_IA");
    // It reads back like any run.
    let o = env.run(&["verify", "--from", &run, "--deep"]);
    assert_eq!(o.status.code(), Some(0));
    // Engines whose files AWS writes say they cannot, before anything starts.
    let o = env.run(&[
        "--storage-class",
        "GLACIER_IR",
        "export",
        "--engine",
        "native",
        "--app",
        "app2",
        "--tables",
        &t,
        "--to",
        &to,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("lifecycle rule"));
}

/// Every AWS call in the library, as IAM actions: `.dynamodb.scan()` is `dynamodb:Scan`,
/// `.emr.run_job_flow()` is `elasticmapreduce:RunJobFlow`, `.autoscaling.x()` is
/// `application-autoscaling:X`.
fn aws_actions_in_code(dir: &Path) -> std::collections::BTreeSet<String> {
    let clients = [
        (".dynamodb", "dynamodb"),
        (".emr", "elasticmapreduce"),
        (".autoscaling", "application-autoscaling"),
    ];
    let mut actions = std::collections::BTreeSet::new();
    for f in files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        // Without whitespace, calls split over lines read `aws.dynamodb.scan()`.
        let text: String = std::fs::read_to_string(&f)
            .unwrap()
            .split_whitespace()
            .collect();
        for ((client, service), owner) in
            clients.into_iter().flat_map(|c| [(c, "aws"), (c, "self")])
        {
            for part in text.split(&format!("{owner}{client}")).skip(1) {
                let rest = part.trim_start();
                let Some(rest) = rest.strip_prefix('.') else {
                    continue;
                };
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if rest[name.len()..].starts_with("()") {
                    let pascal: String = name
                        .split('_')
                        .map(|w| w[..1].to_uppercase() + &w[1..])
                        .collect();
                    actions.insert(format!("{service}:{pascal}"));
                }
            }
        }
    }
    actions
}

#[test]
fn iam_policies_cover_exactly_the_calls_the_code_makes() {
    let root = crate::support::repo_root();
    let in_code = aws_actions_in_code(&root.join("crates/ddbx-core/src"));
    for expected in [
        "dynamodb:Scan",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateTable",
        "elasticmapreduce:RunJobFlow",
        "elasticmapreduce:AddJobFlowSteps",
        "dynamodb:ExportTableToPointInTime",
        "dynamodb:ImportTable",
        "dynamodb:UpdateContinuousBackups",
        "application-autoscaling:RegisterScalableTarget",
    ] {
        assert!(
            in_code.contains(expected),
            "{expected} not found in {in_code:?}"
        );
    }
    let mut granted = std::collections::BTreeSet::new();
    for policy in [
        "export-policy.json",
        "import-policy.json",
        "emr-policy.json",
        "native-policy.json",
    ] {
        for service in ["dynamodb:", "elasticmapreduce:", "application-autoscaling:"] {
            granted.extend(crate::support::policy_actions(policy, service));
        }
    }
    // Checked by AWS on RunJobFlow with tags, not called.
    granted.remove("elasticmapreduce:AddTags");
    assert_eq!(
        granted, in_code,
        "the policies grant exactly the DynamoDB, EMR and auto-scaling actions the code calls"
    );
    // Checked by AWS on RunJobFlow: the roles handed over, and the service-linked role EMR
    // makes on an account's first cluster.
    let iam = crate::support::policy_actions("emr-policy.json", "iam:");
    assert_eq!(
        iam.into_iter().collect::<Vec<_>>(),
        vec!["iam:CreateServiceLinkedRole", "iam:PassRole"]
    );
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_on_one_table_fails_it_alone() {
    use crate::support::fault_proxy::{FaultProxy, Faults};
    let env = TestEnv::new("denied").await;
    let (ok, denied) = (env.table("a_ok"), env.table("b_denied"));
    for t in [&ok, &denied] {
        env.create_table(t, false, Some((100, 5))).await;
        env.put_items(
            t,
            &(0..50).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
        )
        .await;
    }
    let deny: &'static str = Box::leak(denied.clone().into_boxed_str());
    let proxy = FaultProxy::start(
        &env.emulators.dynamodb,
        Faults {
            deny_scan_of: Some(deny),
            ..Faults::default()
        },
    )
    .await;
    let out = env.out();
    let o = env.export_via(
        &proxy.url,
        &env.emulators.s3,
        &env.prefix,
        out.to_str().unwrap(),
        &["--output", "json"],
    );
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    assert_eq!(summary["tablesFailed"], 1);
    let errors = summary["errors"].to_string();
    assert!(
        errors.contains(&denied) && errors.contains("AccessDeniedException"),
        "{errors}"
    );
    let run = run_dir(&out, "app");
    assert!(run.join("BACKUP_COMPLETE_FAILED").exists() && !run.join("BACKUP_RUNNING").exists());
    assert_eq!(
        read_native_table(&out, &run.join(&ok)).len(),
        50,
        "the other table is exported"
    );
    let restore = read_json(&run.join("restore-plan.json"));
    assert_eq!(restore["tables"].as_array().unwrap().len(), 1);
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_slowdowns_are_retried_and_the_export_is_exact() {
    use crate::support::fault_proxy::{FaultProxy, Faults};
    let env = TestEnv::new("slowdown").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, None, 300).await;
    let bucket = env.bucket();
    let proxy = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_slowdown_every: 3,
            ..Faults::default()
        },
    )
    .await;
    let o = env.export_via(
        &env.emulators.dynamodb,
        &proxy.url,
        &t,
        &format!("s3://{bucket}/b"),
        &["--file-items", "40", "--output", "json"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json_stdout(&o)["items"], 300);
    let slowdowns = proxy
        .stats
        .s3_slowdowns
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(slowdowns >= 3, "503s were injected: {slowdowns}");
    // The manifests list every file once, and the files hold every item once.
    assert_eq!(
        digests(&env.s3_native_items(&bucket, "b/")),
        digests(&written)
    );
}

#[tokio::test]
async fn a_new_run_never_writes_into_an_existing_run_root() {
    let env = TestEnv::new("runexists").await;
    let t = env.table("t");
    env.mixed_table(&t, None, 30).await;
    let bucket = env.bucket();
    let to = format!("s3://{bucket}/b");
    let export_at = |time: &str| {
        env.run(&[
            "export",
            "--app",
            "app",
            "--tables",
            &t,
            "--to",
            &to,
            "--run-time",
            time,
        ])
    };
    assert_eq!(export_at("2026-11-24T03:00:00Z").status.code(), Some(0));
    let run_prefix = "b/us-east-1/app/2026/11/24/03_00.00/";
    let before: Vec<_> = env
        .s3_keys(&bucket, run_prefix)
        .into_iter()
        .map(|k| (env.s3_object(&bucket, &k).1, k))
        .collect();
    assert!(before
        .iter()
        .any(|(_, k)| k.ends_with("BACKUP_COMPLETE_SUCCESS")));

    // The same run time again: refused before anything is written, with the way out.
    let o = export_at("2026-11-24T03:00:00Z");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already holds a run") && err.contains("--resume") && err.contains(run_prefix),
        "{err}"
    );
    let after: Vec<_> = env
        .s3_keys(&bucket, run_prefix)
        .into_iter()
        .map(|k| (env.s3_object(&bucket, &k).1, k))
        .collect();
    assert_eq!(after, before, "the earlier run is untouched");
    assert!(
        env.s3_keys(&bucket, "b/us-east-1/app/_LOCK").is_empty(),
        "lock released"
    );

    // Another run time is a new run.
    assert_eq!(export_at("2026-11-24T03:00:01Z").status.code(), Some(0));
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_named_exactly_are_taken_without_listing() {
    use crate::support::fault_proxy::{FaultProxy, Faults};
    let env = TestEnv::new("exact").await;
    let (orders, archive, users) = (
        env.table("ORDERS"),
        env.table("ORDERS_archive"),
        env.table("USERS"),
    );
    for t in [&orders, &archive, &users] {
        env.mixed_table(t, Some((100, 5)), 20).await;
    }
    let missing = env.table("GONE");
    let proxy = FaultProxy::start(&env.emulators.dynamodb, Faults::default()).await;
    let out = env.out();
    let export = |extra: &[&str]| {
        env.ddbx_with(&proxy.url, &env.emulators.s3)
            .args(["export", "--app", "app", "--to", out.to_str().unwrap()])
            .args(["--output", "json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = export(&["--table", &orders, "--table", &users, "--table", &missing]);
    // The missing table fails alone, named; a name is not a prefix (ORDERS_archive stays).
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    let reports: Vec<(String, u64, bool)> = summary["tableReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["items"].as_u64().unwrap(),
                t.get("error").is_some(),
            )
        })
        .collect();
    assert_eq!(
        reports,
        [
            (missing.clone(), 0, true),
            (orders.clone(), 20, false),
            (users.clone(), 20, false),
        ]
    );
    assert!(summary["errors"].to_string().contains("not found"));
    assert_eq!(proxy.stats.count("dynamodb:ListTables"), 0);

    // With a prefix too, the region is listed, and the names are added to what matches.
    std::fs::remove_dir_all(&out).unwrap();
    let o = export(&["--tables", &env.table("ORD"), "--table", &users]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json_stdout(&o)["items"], 60);
    // (One call per 100 tables: other tests' tables share the emulator.)
    assert!(proxy.stats.count("dynamodb:ListTables") >= 1);

    // Every named table excluded: nothing to do, said so.
    let o = export(&["--table", &users, "--exclude", &users]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("excluded"));
    // Not a table name: a usage error naming it.
    let o = export(&["--table", "no/such"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no/such"));
}

#[tokio::test]
async fn a_resume_takes_the_rest_of_the_original_command_line() {
    let env = TestEnv::new("resumeargs").await;
    let t = env.table("t");
    env.create_table(&t, false, Some((5, 5))).await;
    let written: Vec<_> = (0..120).map(|i| items::sized(i, 3500)).collect();
    env.put_items(&t, &written).await;
    let out = env.out();
    let app = format!("{}app", env.prefix);
    let to = out.to_str().unwrap().to_string();
    assert_eq!(written.len(), 120);
    // What cron runs (the same line again, with --resume added after a failure).
    let line: Vec<String> = [
        "export",
        "--app",
        &app,
        "--tables",
        &t,
        "--exclude",
        "nothing-else",
        "--to",
        &to,
        "--read-ratio",
        "0.8",
        "--segments",
        "2",
        "--max-read-units",
        "5",
        "--format",
        "dynamodb-json",
        "--compression",
        "zstd",
        "--run-time",
        "2026-11-24T03:00:00Z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // ~60 units at 5 units/s: 12 s if left alone.
    let mut child = env.ddbx().args(&line).spawn().unwrap();
    let run = out.join("us-east-1").join(&app).join("2026/11/24/03_00.00");
    wait_for(&mut child, "the plan", || {
        run.join("export-plan.json").exists()
    });
    crate::support::sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(4));
    let resume = |extra: &[&str]| {
        let mut args = line.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["--resume".into(), run.to_str().unwrap().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&args)
    };
    // A flag that contradicts the plan is refused, naming the plan's value; nothing moves.
    for (flag, value, planned) in [
        ("--read-ratio", "0.5", "readRatio 0.8"),
        ("--compression", "gzip", "compression zstd"),
        ("--app", "other", &format!("app {app}")),
        ("--tables", "OTHER_", "--tables"),
    ] {
        let mut args: Vec<String> = line.clone();
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = value.to_string();
        args.extend(["--resume".into(), run.to_str().unwrap().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(1), "{flag} {value}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(planned) && err.contains("export-plan.json"),
            "{err}"
        );
        assert!(
            run.join("BACKUP_COMPLETE_FAILED").exists(),
            "the run is untouched"
        );
    }
    // The same line with --resume: the run completes as planned.
    let o = resume(&["--output", "json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["items"], 120);
    assert!(run.join("BACKUP_COMPLETE_SUCCESS").exists());
    let got = env.run(&["verify", "--from", run.to_str().unwrap(), "--deep"]);
    assert_eq!(got.status.code(), Some(0), "every item exactly once");
}
