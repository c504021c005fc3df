//! `ddbx import` and `ddbx verify` end to end.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use md5::{Digest, Md5};

use crate::support::fault_proxy::{FaultProxy, Faults, Stats};
use crate::support::{digests, items, json_stdout, read_json, wait_for, TestEnv};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn round_trip_both_formats_with_table_map_and_create_missing() {
    for format in ["dynamodb-json", "emr"] {
        let env = TestEnv::new(&format!("rt{}", &format[..3])).await;
        let (a, b) = (env.table("orders"), env.table("users"));
        // A table with a GSI and an LSI, so --create-missing must recreate them.
        env.ddb
            .create_table()
            .table_name(&a)
            .attribute_definitions(attr("pk", "S"))
            .attribute_definitions(attr("sk", "N"))
            .attribute_definitions(attr("g", "S"))
            .attribute_definitions(attr("l", "N"))
            .key_schema(key("pk", "HASH"))
            .key_schema(key("sk", "RANGE"))
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .global_secondary_indexes(
                aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
                    .index_name("by-g")
                    .key_schema(key("g", "HASH"))
                    .projection(
                        aws_sdk_dynamodb::types::Projection::builder()
                            .projection_type("ALL".into())
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .local_secondary_indexes(
                aws_sdk_dynamodb::types::LocalSecondaryIndex::builder()
                    .index_name("by-l")
                    .key_schema(key("pk", "HASH"))
                    .key_schema(key("l", "RANGE"))
                    .projection(
                        aws_sdk_dynamodb::types::Projection::builder()
                            .projection_type("KEYS_ONLY".into())
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        env.wait_active(&a).await;
        env.create_table(&b, false, Some((100, 100))).await;
        let mut items_a: Vec<_> = (0..400).map(|i| items::mixed(i, true)).collect();
        for (i, it) in items_a.iter_mut().enumerate() {
            it.insert(
                "g".into(),
                aws_sdk_dynamodb::types::AttributeValue::S(format!("g{}", i % 5)),
            );
            it.insert(
                "l".into(),
                aws_sdk_dynamodb::types::AttributeValue::N(i.to_string()),
            );
        }
        let mut items_b: Vec<_> = (0..100).map(|i| items::mixed(i, false)).collect();
        items_b.push(items::sized(777, 399 * 1024));
        env.put_items(&a, &items_a).await;
        env.put_items(&b, &items_b).await;
        let run = env.export_all("app", &["--format", format, "--file-items", "150"]);

        let (a2, b2) = (env.table("orders_copy"), env.table("users_copy"));
        let maps = [format!("{a}={a2}"), format!("{b}={b2}")];
        let mut args = vec![
            "import",
            "--from",
            s(&run),
            "--create-missing",
            "--output",
            "json",
        ];
        for m in &maps {
            args.extend(["--table-map", m]);
        }
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(0));
        let summary = json_stdout(&o);
        assert_eq!(summary["items"], 501, "each item counted once");
        assert!(
            run.join("RESTORE_COMPLETE_SUCCESS").exists() && !run.join("RESTORE_RUNNING").exists()
        );

        let created = env
            .ddb
            .describe_table()
            .table_name(&a2)
            .send()
            .await
            .unwrap();
        let t = created.table().unwrap();
        assert_eq!(t.global_secondary_indexes().len(), 1, "GSI recreated");
        assert_eq!(t.local_secondary_indexes().len(), 1, "LSI recreated");
        assert_eq!(digests(&env.scan_all(&a2).await), digests(&items_a));
        assert_eq!(digests(&env.scan_all(&b2).await), digests(&items_b));

        let mut vargs = vec!["verify", "--from", s(&run), "--deep", "--output", "json"];
        for m in &maps {
            vargs.extend(["--table-map", m]);
        }
        let o = env.run(&vargs);
        assert_eq!(o.status.code(), Some(0), "verify --deep matches");
        let verdicts = json_stdout(&o);
        for v in verdicts.as_array().unwrap() {
            assert_eq!(v["matches"], true);
            assert_eq!(v["differing"], 0);
            assert_eq!(v["missing"], 0);
            assert_eq!(v["extra"], 0);
        }

        // Change one item, delete one, add one: verify --deep names them.
        env.ddb
            .delete_item()
            .table_name(&b2)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("key-000001".into()),
            )
            .send()
            .await
            .unwrap();
        let mut changed = items::mixed(2, false);
        changed.insert(
            "s".into(),
            aws_sdk_dynamodb::types::AttributeValue::S("changed".into()),
        );
        let extra = items::mixed(5000, false);
        env.put_items(&b2, &[changed, extra]).await;
        let o = env.run(&vargs);
        assert_eq!(o.status.code(), Some(4));
        let verdicts = json_stdout(&o);
        let vb = verdicts
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["targetTable"] == b2.as_str())
            .unwrap();
        assert_eq!(vb["matches"], false);
        assert_eq!(
            (
                vb["differing"].as_u64(),
                vb["missing"].as_u64(),
                vb["extra"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
        let examples = vb["examples"].to_string();
        assert!(
            examples.contains("key-000001")
                && examples.contains("key-000002")
                && examples.contains("key-005000"),
            "{examples}"
        );
    }
}

fn attr(name: &str, t: &str) -> aws_sdk_dynamodb::types::AttributeDefinition {
    aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t.into())
        .build()
        .unwrap()
}

fn key(name: &str, t: &str) -> aws_sdk_dynamodb::types::KeySchemaElement {
    aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t.into())
        .build()
        .unwrap()
}

#[tokio::test]
async fn missing_table_and_key_mismatch_fail_only_that_table() {
    let env = TestEnv::new("keys").await;
    let (a, b, c) = (env.table("a"), env.table("b"), env.table("c"));
    for t in [&a, &b, &c] {
        env.create_table(t, true, Some((50, 50))).await;
        env.put_items(
            t,
            &(0..30).map(|i| items::mixed(i, true)).collect::<Vec<_>>(),
        )
        .await;
    }
    let run = env.export_all("app", &[]);
    // Targets: a -> new table with a different sort key type; b -> missing; c -> fresh good table.
    let (a2, b2, c2) = (env.table("a2"), env.table("b2"), env.table("c2"));
    env.ddb
        .create_table()
        .table_name(&a2)
        .attribute_definitions(attr("pk", "S"))
        .attribute_definitions(attr("sk", "S"))
        .key_schema(key("pk", "HASH"))
        .key_schema(key("sk", "RANGE"))
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    env.wait_active(&a2).await;
    env.create_table(&c2, true, Some((50, 50))).await;
    let (ma, mb, mc) = (
        format!("{a}={a2}"),
        format!("{b}={b2}"),
        format!("{c}={c2}"),
    );
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--table-map",
        &ma,
        "--table-map",
        &mb,
        "--table-map",
        &mc,
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    let errors = summary["errors"].to_string();
    assert!(
        errors.contains(&a2)
            && errors.contains("key schema differs")
            && errors.contains("RANGE sk (S)"),
        "{errors}"
    );
    assert!(
        errors.contains(&b2)
            && errors.contains("does not exist")
            && errors.contains("--create-missing"),
        "{errors}"
    );
    assert!(
        env.scan_all(&a2).await.is_empty(),
        "no writes into the mismatched table"
    );
    assert!(!env.table_exists(&b2).await);
    assert_eq!(
        env.scan_all(&c2).await.len(),
        30,
        "the good table is imported"
    );
    assert!(run.join("RESTORE_COMPLETE_FAILED").exists());
}

/// Write a gzip file of `lines`.
fn gz(lines: &[String]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in lines {
        e.write_all(l.as_bytes()).unwrap();
        e.write_all(b"\n").unwrap();
    }
    e.finish().unwrap()
}

fn md5_b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(b))
}

#[tokio::test]
async fn hand_written_fixtures_of_each_foreign_format_import() {
    let env = TestEnv::new("fixtures").await;
    let root = env.dir.path().join("fixtures");

    // 1. An AWS native export, written elsewhere (its keys name another bucket and prefix).
    let native = root.join("native/AWSDynamoDB/01700000000000-abcdef12");
    std::fs::create_dir_all(native.join("data")).unwrap();
    let f1 = gz(&[
        r#"{"Item":{"pk":{"S":"n1"},"num":{"N":"12345678901234567890123456789012345678"},"b":{"B":"AAEC/w=="}}}"#.into(),
        r#"{"Item":{"pk":{"S":"n2"},"set":{"NS":["1","2.5"]},"m":{"M":{"x":{"L":[{"NULL":true},{"BOOL":false}]}}}}}"#.into(),
    ]);
    let f2 = gz(&[r#"{"Item":{"pk":{"S":"n3"},"bs":{"BS":["AA==","AQ=="]},"e":{"S":""}}}"#.into()]);
    std::fs::write(native.join("data/aaaa.json.gz"), &f1).unwrap();
    std::fs::write(native.join("data/bbbb.json.gz"), &f2).unwrap();
    std::fs::write(
        native.join("manifest-files.json"),
        format!(
            "{{\"itemCount\":2,\"md5Checksum\":\"{}\",\"etag\":\"x-1\",\"dataFileS3Key\":\"old/prefix/AWSDynamoDB/01700000000000-abcdef12/data/aaaa.json.gz\"}}\n{{\"itemCount\":1,\"md5Checksum\":\"{}\",\"etag\":\"y-1\",\"dataFileS3Key\":\"old/prefix/AWSDynamoDB/01700000000000-abcdef12/data/bbbb.json.gz\"}}\n",
            md5_b64(&f1),
            md5_b64(&f2)
        ),
    )
    .unwrap();
    std::fs::write(
        native.join("manifest-summary.json"),
        r#"{"version":"2020-06-30","exportArn":"arn:aws:dynamodb:us-east-1:123456789012:table/Orders/export/01700000000000-abcdef12","startTime":"2023-11-14T22:13:20.000Z","endTime":"2023-11-14T22:20:00.000Z","tableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/Orders","tableId":"x","exportTime":"2023-11-14T22:13:20.000Z","s3Bucket":"other-bucket","s3Prefix":"old/prefix","s3SseAlgorithm":"AES256","s3SseKmsKeyId":null,"manifestFilesS3Key":"old/prefix/AWSDynamoDB/01700000000000-abcdef12/manifest-files.json","billedSizeBytes":100,"itemCount":3,"outputFormat":"DYNAMODB_JSON"}"#,
    )
    .unwrap();

    // 2. A connector export whose manifest points at another bucket.
    let conn = root.join("connector");
    std::fs::create_dir_all(&conn).unwrap();
    let c1 = gz(&[
        r#"{"pk":{"s":"c1"},"scores":{"nS":["100","30"]},"ok":{"bOOL":true},"gone":{"nULL":true}}"#.into(),
        r#"{"pk":{"s":"c2"},"blobs":{"bS":["AAE="]},"tags":{"sS":["a"]},"list":{"l":[{"s":"x"}]},"map":{"m":{"k":{"s":"v"}}}}"#.into(),
    ]);
    std::fs::write(conn.join("92dd1414-a049-4c68-88fb-a23acd44907e.gz"), &c1).unwrap();
    std::fs::write(
        conn.join("manifest"),
        "{\"name\":\"DynamoDB-export\",\"version\":3,\n\"entries\": [\n{\"url\":\"s3://some-other-bucket/exports/tbl/92dd1414-a049-4c68-88fb-a23acd44907e.gz\",\"mandatory\":true}\n]}",
    )
    .unwrap();

    // 3. A Data Pipeline export: no manifest, \u0002 and \u0003 separators.
    let dp = root.join("datapipeline");
    std::fs::create_dir_all(&dp).unwrap();
    std::fs::write(
        dp.join("ae10f955-fb2f-4790-9b11-fbfea01a871e_000000"),
        "pk\u{3}{\"s\":\"d1\"}\u{2}scores\u{3}{\"nS\":[\"100\",\"30\",\"45\"]}\npk\u{3}{\"s\":\"d2\"}\u{2}n\u{3}{\"n\":\"-0.5\"}\n",
    )
    .unwrap();

    for (dir, expected, name) in [
        (native.clone(), 3, "native"),
        (conn.clone(), 2, "conn"),
        (dp.clone(), 2, "dp"),
    ] {
        let t = env.table(name);
        env.create_table(&t, false, Some((50, 50))).await;
        let o = env.run(&[
            "import",
            "--from",
            s(&dir),
            "--target-table",
            &t,
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{name}");
        assert_eq!(json_stdout(&o)["items"], expected, "{name}");
        assert_eq!(env.scan_all(&t).await.len(), expected as usize, "{name}");
        let o = env.run(&["verify", "--from", s(&dir), "--target-table", &t, "--deep"]);
        assert_eq!(o.status.code(), Some(0), "{name} verifies");
    }
    // The native export names its table (Orders): without --target-table it would go there.
    let o = env.run(&[
        "import",
        "--from",
        s(&native),
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)[0]["targetTable"], "Orders");
}

#[tokio::test]
async fn broken_inputs_name_the_file_and_line_and_harm_nothing_else() {
    let env = TestEnv::new("broken").await;
    let (good, bad) = (env.table("good"), env.table("bad"));
    for t in [&good, &bad] {
        env.create_table(t, false, Some((50, 50))).await;
        env.put_items(
            t,
            &(0..20).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
        )
        .await;
    }
    let run = env.export_all("app", &["--segments", "1", "--compression", "none"]);
    let data_dir = |t: &str| {
        let aws = run.join(t).join("AWSDynamoDB");
        std::fs::read_dir(&aws)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    let bad_dir = data_dir(&bad);
    let bad_file = std::fs::read_dir(bad_dir.join("data"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let original = std::fs::read_to_string(&bad_file).unwrap();
    let manifest = std::fs::read_to_string(bad_dir.join("manifest-files.json")).unwrap();
    let line3 = |replacement: &str| {
        let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
        lines[2] = replacement.to_string();
        lines.join("\n") + "\n"
    };
    // The data file's MD5 in the manifest made to match, and the manifest's own `.md5`.
    let fix_md5 = |content: &[u8]| {
        let v: serde_json::Value = serde_json::from_str(manifest.trim()).unwrap();
        let mut v = v;
        v["md5Checksum"] = md5_b64(content).into();
        let manifest = format!("{v}\n");
        std::fs::write(bad_dir.join("manifest-files.json"), &manifest).unwrap();
        std::fs::write(
            bad_dir.join("manifest-files.md5"),
            md5_b64(manifest.as_bytes()),
        )
        .unwrap();
    };
    let big = format!(
        r#"{{"Item":{{"pk":{{"S":"big"}},"x":{{"S":"{}"}}}}}}"#,
        "y".repeat(401 * 1024)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed line", line3("{\"Item\":{\"pk\":"), "line 3"),
        (
            "unknown type key",
            line3(r#"{"Item":{"pk":{"S":"x"},"v":{"Q":"1"}}}"#),
            "line 3",
        ),
        (
            "empty set",
            line3(r#"{"Item":{"pk":{"S":"x"},"v":{"SS":[]}}}"#),
            "line 3",
        ),
        (
            "39 digits",
            line3(
                r#"{"Item":{"pk":{"S":"x"},"v":{"N":"123456789012345678901234567890123456789"}}}"#,
            ),
            "line 3",
        ),
        ("item over 400 KB", line3(&big), "line 3"),
        ("not an item", line3(r#"{"Foo":1}"#), "line 3"),
    ];
    let targets = |t: &str| format!("{t}={t}_r");
    let (mg, mb) = (targets(&good), targets(&bad));
    let (good_r, bad_r) = (format!("{good}_r"), format!("{bad}_r"));
    for (what, content, where_) in cases {
        std::fs::write(&bad_file, &content).unwrap();
        fix_md5(content.as_bytes());
        let o = env.run(&[
            "import",
            "--from",
            s(&run),
            "--table-map",
            &mg,
            "--table-map",
            &mb,
            "--create-missing",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(4), "{what}");
        let errors = json_stdout(&o)["errors"].to_string();
        let fname = bad_file.file_name().unwrap().to_str().unwrap();
        assert!(
            errors.contains(fname) && errors.contains(where_),
            "{what}: {errors}"
        );
        assert!(
            !env.table_exists(&bad_r).await,
            "{what}: the bad table is not even created (its export is checked first)"
        );
        assert_eq!(
            env.scan_all(&good_r).await.len(),
            20,
            "{what}: the good table is imported"
        );
    }
    // MD5 mismatch.
    std::fs::write(&bad_file, &original).unwrap();
    fix_md5(b"something else");
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--tables",
        &bad,
        "--table-map",
        &mb,
        "--create-missing",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(json_stdout(&o)["errors"].to_string().contains("MD5"), "md5");
    // Missing data file.
    fix_md5(original.as_bytes());
    std::fs::remove_file(&bad_file).unwrap();
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--tables",
        &bad,
        "--table-map",
        &mb,
        "--create-missing",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        json_stdout(&o)["errors"].to_string().contains("missing"),
        "missing file"
    );
    assert!(!env.table_exists(&bad_r).await);
    // Corrupt gzip (an export of the good table, gzip this time).
    let run2 = env.export_all("app2", &["--tables", &good]);
    let gz_file = std::fs::read_dir(data_dir_in(&run2, &good).join("data"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&gz_file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    bytes[mid + 1] ^= 0xff;
    std::fs::write(&gz_file, &bytes).unwrap();
    let o = env.run(&[
        "import",
        "--from",
        s(&run2),
        "--table-map",
        &format!("{good}={good}_gz"),
        "--create-missing",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(4));
    let errors = json_stdout(&o)["errors"].to_string();
    assert!(
        errors.contains(gz_file.file_name().unwrap().to_str().unwrap()),
        "corrupt gzip: {errors}"
    );
    // A restore plan with an out-of-range write ratio is a usage error naming the file.
    let plan = run.join("restore-plan.json");
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("0.8", "7.5");
    std::fs::write(&plan, text).unwrap();
    let o = env.run(&["import", "--from", s(&run), "--dry-run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("restore-plan.json"));
}

fn data_dir_in(run: &Path, table: &str) -> std::path::PathBuf {
    std::fs::read_dir(run.join(table).join("AWSDynamoDB"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprocessed_items_and_throttles_are_resent_and_counted_once() {
    let env = TestEnv::new("unproc").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, Some((50, 50)), 600).await;
    let run = env.export_all("app", &[]);
    let proxy = FaultProxy::start(
        &env.emulators.dynamodb,
        Faults {
            unprocessed_every: 3,
            throttle_every: 7,
            ..Faults::default()
        },
    )
    .await;
    let t2 = env.table("t2");
    env.create_table(&t2, false, Some((1000, 1000))).await;
    let o = env
        .ddbx_at(&proxy.url)
        .args([
            "import",
            "--from",
            s(&run),
            "--table-map",
            &format!("{t}={t2}"),
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["items"], 600, "each item counted once");
    let unprocessed = proxy
        .stats
        .unprocessed_items
        .load(std::sync::atomic::Ordering::SeqCst);
    let throttled = proxy
        .stats
        .throttled
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        unprocessed > 50 && throttled > 0,
        "faults were injected: {unprocessed} unprocessed, {throttled} throttled"
    );
    assert_eq!(digests(&env.scan_all(&t2).await), digests(&written));
}

#[tokio::test]
async fn a_killed_import_resumes_and_counts_each_item_once() {
    let env = TestEnv::new("resume").await;
    let t = env.table("t");
    env.create_table(&t, false, Some((50, 50))).await;
    let written: Vec<_> = (0..400).map(|i| items::sized(i, 900)).collect();
    env.put_items(&t, &written).await;
    let run = env.export_all("app", &["--file-items", "60", "--segments", "2"]);
    // Twenty kill points chosen by a seeded generator: half once the checkpoint records
    // some progress, half at a random moment after the start (validating, between
    // batches, mid-write).
    let mut seed: u64 = 1125;
    for round in 0..20 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = seed >> 33;
        let t2 = env.table(&format!("copy{round}"));
        env.create_table(&t2, false, Some((50, 50))).await;
        let map = format!("{t}={t2}");
        // 1 unit per item at 200 units/s: ~2 s if left alone.
        let mut child = env
            .ddbx()
            .args([
                "import",
                "--from",
                s(&run),
                "--table-map",
                &map,
                "--max-write-units",
                "200",
                "--workers",
                "2",
            ])
            .spawn()
            .unwrap();
        if round % 2 == 0 {
            let ckpt = run.join("_import").join(&t2).join("checkpoint.json");
            let at_least = 1 + r % 300;
            wait_for(
                &mut child,
                &format!("round {round}: {at_least} items checkpointed"),
                || {
                    std::fs::read_to_string(&ckpt)
                        .ok()
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                        .is_some_and(|v| v["itemsWritten"].as_u64().unwrap_or(0) >= at_least)
                },
            );
        } else {
            std::thread::sleep(std::time::Duration::from_millis(r % 1500));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let o = env.run(&[
            "import",
            "--from",
            s(&run),
            "--table-map",
            &map,
            "--resume",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "round {round}");
        assert_eq!(
            json_stdout(&o)["items"],
            400,
            "round {round}: each item counted once across the kill"
        );
        assert_eq!(
            digests(&env.scan_all(&t2).await),
            digests(&written),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn import_dry_run_writes_nothing() {
    let env = TestEnv::new("idry").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((40, 40)), 10).await;
    let run = env.export_all("app", &[]);
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--table-map",
        &format!("{t}={t}_x"),
        "--write-ratio",
        "0.5",
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v = json_stdout(&o);
    assert_eq!(v[0]["targetTable"], format!("{t}_x"));
    assert!(v[0]["targetState"].as_str().unwrap().contains("missing"));
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--write-ratio",
        "0.5",
        "--dry-run",
        "--output",
        "json",
    ]);
    let v = json_stdout(&o);
    assert_eq!(v[0]["targetWriteUnits"], 20.0, "0.5 x 40 WCU");
    assert!(!run.join("RESTORE_RUNNING").exists() && !run.join("_import").exists());
}

#[tokio::test]
async fn round_trip_through_s3() {
    let env = TestEnv::new("s3rt").await;
    let t = env.table("t");
    env.create_table(&t, true, Some((100, 100))).await;
    let written: Vec<_> = (0..120).map(|i| items::mixed(i, true)).collect();
    env.put_items(&t, &written).await;
    let bucket = env.bucket();
    let to = format!("s3://{bucket}/ddb");
    for format in ["dynamodb-json", "emr"] {
        let app = format!("app-{format}");
        let o = env.run(&[
            "export", "--app", &app, "--tables", &t, "--to", &to, "--format", format, "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0));
        let root = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
        let t2 = env.table(&format!("copy_{}", &format[..3]));
        let map = format!("{t}={t2}");
        let o = env.run(&[
            "import",
            "--from",
            &root,
            "--table-map",
            &map,
            "--create-missing",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{format}");
        assert_eq!(json_stdout(&o)["items"], 120);
        let o = env.run(&["verify", "--from", &root, "--table-map", &map, "--deep"]);
        assert_eq!(o.status.code(), Some(0), "{format} verifies");
        assert_eq!(digests(&env.scan_all(&t2).await), digests(&written));
    }
}

#[tokio::test]
async fn the_write_rate_stays_at_the_target() {
    let env = TestEnv::new("wrate").await;
    let t = env.table("t");
    env.create_table(&t, false, Some((100, 100))).await;
    // 2.5 KB items: 3 write units each, 300 items: 900 units at 150 units/s, ~6 s.
    env.put_items(
        &t,
        &(0..300).map(|i| items::sized(i, 2500)).collect::<Vec<_>>(),
    )
    .await;
    let run = env.export_all("app", &[]);
    let t2 = env.table("t2");
    env.create_table(&t2, false, Some((100, 100))).await;
    let start = std::time::Instant::now();
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--table-map",
        &format!("{t}={t2}"),
        "--max-write-units",
        "150",
        "--output",
        "json",
    ]);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(o.status.code(), Some(0));
    let units = json_stdout(&o)["tableReports"][0]["units"]
        .as_f64()
        .unwrap();
    assert_eq!(units, 900.0, "units from BatchWriteItem's ConsumedCapacity");
    assert!(
        units <= 150.0 * 1.1 * secs + 150.0,
        "{units} units in {secs:.1}s"
    );
    assert!(
        units / secs > 150.0 * 0.6,
        "only {:.1} units/s",
        units / secs
    );
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_truncated_connections_lose_and_repeat_nothing() {
    let env = TestEnv::new("netfault").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, Some((1000, 1000)), 500).await;
    let proxy = FaultProxy::start(
        &env.emulators.dynamodb,
        Faults {
            drop_every: 4,
            truncate_every: 7,
            ..Faults::default()
        },
    )
    .await;
    let out = env.out();
    // Export through the faults (small pages: many Scan calls).
    let o = env.export_via(
        &proxy.url,
        &env.emulators.s3,
        &t,
        out.to_str().unwrap(),
        &[
            "--segments",
            "3",
            "--max-read-units",
            "100",
            "--output",
            "json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json_stdout(&o)["items"], 500);
    let run = crate::support::run_dir(&out, "app");
    // Import through the faults into a fresh table.
    let t2 = env.table("copy");
    env.create_table(&t2, false, Some((1000, 1000))).await;
    let map = format!("{t}={t2}");
    let o = env
        .ddbx_at(&proxy.url)
        .args([
            "import",
            "--from",
            s(&run),
            "--table-map",
            &map,
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json_stdout(&o)["items"], 500, "each item counted once");
    let faults = proxy
        .stats
        .network_faults
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(faults >= 5, "network faults were injected: {faults}");
    assert_eq!(digests(&env.scan_all(&t2).await), digests(&written));
    let o = env.run(&["verify", "--from", s(&run), "--table-map", &map, "--deep"]);
    assert_eq!(o.status.code(), Some(0));
}

#[tokio::test]
async fn corrupt_zstd_is_named_and_its_table_untouched() {
    let env = TestEnv::new("zstd").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((50, 50)), 200).await;
    let run = env.export_all("app", &["--compression", "zstd", "--segments", "1"]);
    let data = data_dir_in(&run, &t).join("data");
    let file = std::fs::read_dir(&data)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(file.to_string_lossy().ends_with(".json.zst"));
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, &bytes).unwrap();
    let t2 = env.table("copy");
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--table-map",
        &format!("{t}={t2}"),
        "--create-missing",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(4));
    let errors = json_stdout(&o)["errors"].to_string();
    assert!(
        errors.contains(file.file_name().unwrap().to_str().unwrap()),
        "{errors}"
    );
    assert!(
        !env.table_exists(&t2).await,
        "no table is created for a corrupt export"
    );
}

#[tokio::test]
async fn sigterm_stops_an_import_cleanly_and_it_resumes() {
    let env = TestEnv::new("iterm").await;
    let t = env.table("t");
    env.create_table(&t, false, Some((50, 50))).await;
    let written: Vec<_> = (0..600).map(|i| items::sized(i, 900)).collect();
    env.put_items(&t, &written).await;
    let run = env.export_all("app", &["--file-items", "100"]);
    let t2 = env.table("copy");
    env.create_table(&t2, false, Some((50, 50))).await;
    let map = format!("{t}={t2}");
    // 600 units at 50 units/s: 12 s if left alone.
    let mut child = env
        .ddbx()
        .args([
            "import",
            "--from",
            s(&run),
            "--table-map",
            &map,
            "--max-write-units",
            "50",
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ckpt = run.join("_import").join(&t2).join("checkpoint.json");
    wait_for(&mut child, "a checkpoint", || ckpt.exists());
    let signalled = std::time::Instant::now();
    crate::support::sigterm(&child);
    let o = child.wait_with_output().unwrap();
    assert!(
        signalled.elapsed().as_secs_f64() < 10.0,
        "stopped within seconds"
    );
    assert_eq!(o.status.code(), Some(4));
    let errors = json_stdout(&o)["errors"].to_string();
    assert!(errors.contains("interrupted"), "{errors}");
    assert!(run.join("RESTORE_COMPLETE_FAILED").exists() && !run.join("RESTORE_RUNNING").exists());
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--table-map",
        &map,
        "--resume",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        json_stdout(&o)["items"],
        600,
        "each item counted once across the stop"
    );
    assert_eq!(digests(&env.scan_all(&t2).await), digests(&written));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_from_a_source_it_may_only_read_keeps_its_state_elsewhere_and_resumes() {
    let env = TestEnv::new("readonly").await;
    let (a, b) = (env.table("a"), env.table("b"));
    let items_a = env.mixed_table(&a, Some((50, 50)), 30).await;
    let items_b = env.mixed_table(&b, Some((50, 50)), 20).await;
    let bucket = env.bucket();
    let o = env.run(&[
        "export",
        "--app",
        "app",
        "--tables",
        &env.prefix,
        "--to",
        &format!("s3://{bucket}/backups"),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let root = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    let before = env.s3_keys(&bucket, "backups/");
    // These credentials may only read the bucket.
    let proxy = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_read_only: Some(Box::leak(bucket.clone().into_boxed_str())),
            ..Faults::default()
        },
    )
    .await;
    let (a2, b2) = (env.table("a2"), env.table("b2"));
    let map = [format!("{a}={a2}"), format!("{b}={b2}")];
    let import = |extra: &[&str]| {
        let mut c = env.ddbx_with(&env.emulators.dynamodb, &proxy.url);
        c.args([
            "import",
            "--from",
            &root,
            "--table-map",
            &map[0],
            "--table-map",
            &map[1],
        ])
        .args(["--output", "json"])
        .args(extra);
        let o = c.output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    // b2 is missing (no --create-missing): that table fails, the other is written.
    env.create_table(&a2, false, Some((50, 50))).await;
    let o = import(&[]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    assert_eq!(summary["tablesFailed"], 1);
    let state = summary["stateRoot"]
        .as_str()
        .expect("the state went elsewhere")
        .to_string();
    let mirror = root.replacen("s3://", "s3/", 1);
    let state_dir = env
        .dir
        .path()
        .join(".local/state/ddbx/imports")
        .join(&mirror);
    assert_eq!(
        state,
        format!("file://{}", state_dir.canonicalize().unwrap().display())
    );
    assert!(state_dir.join("RESTORE_COMPLETE_FAILED").exists());
    assert!(state_dir
        .join("_import")
        .join(&a2)
        .join("checkpoint.json")
        .exists());
    assert!(
        proxy
            .stats
            .s3_refused_writes
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0,
        "the write check was refused"
    );
    // Resumed: a2 is done and stays done, b2 is written now.
    env.create_table(&b2, false, Some((50, 50))).await;
    let o = import(&["--resume"]);
    assert_eq!(o.status.code(), Some(0));
    let summary = json_stdout(&o);
    assert_eq!(summary["items"], 50, "each item counted once");
    assert!(state_dir.join("RESTORE_COMPLETE_SUCCESS").exists());
    assert_eq!(digests(&env.scan_all(&a2).await), digests(&items_a));
    assert_eq!(digests(&env.scan_all(&b2).await), digests(&items_b));
    // The source is as it was.
    assert_eq!(
        env.s3_keys(&bucket, "backups/"),
        before,
        "nothing written into the source"
    );
    // --state-to names the place; one place serves one source.
    let elsewhere = env.dir.path().join("state-elsewhere");
    let o = import(&["--state-to", s(&elsewhere)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(elsewhere.join("RESTORE_COMPLETE_SUCCESS").exists());
    assert!(read_json(&elsewhere.join("source.json"))["source"] == root.as_str());
    let local_run = env.export_all("other", &[]);
    let o = env.run(&[
        "import",
        "--from",
        s(&local_run),
        "--state-to",
        s(&elsewhere),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "another source's state is refused"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(&root));
}

// Multi-threaded: the proxies run on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_on_demand_table_is_written_as_fast_as_it_scales_without_a_throttle_storm() {
    use crate::support::fault_proxy::OnDemandTable;
    let env = TestEnv::new("ramp").await;
    let t = env.table("t");
    env.create_table(&t, false, None).await;
    let written: Vec<_> = (0..3_000).map(|i| items::mixed(i, false)).collect();
    env.put_items(&t, &written).await;
    let run = env.export_all("app", &[]);
    // A new on-demand table, scaled down to well under what the emulator behind the proxy
    // sustains even on a loaded machine (DynamoDB's new tables take 4,000 writes a second):
    // 120 a second at first, as its DescribeTable says, doubling each 3 s it is kept at half
    // of that or more.
    let table = OnDemandTable {
        start: 120.0,
        double_after: std::time::Duration::from_secs(3),
        max: 4800.0,
    };
    let mut figures = Vec::new();
    for (name, extra) in [("fixed", Some("--no-ramp")), ("ramp", None)] {
        let proxy = FaultProxy::start(
            &env.emulators.dynamodb,
            Faults {
                on_demand: Some(table),
                ..Faults::default()
            },
        )
        .await;
        let target = format!("{t}_{name}");
        let started = std::time::Instant::now();
        let o = env
            .ddbx_at(&proxy.url)
            .args(["import", "--from", s(&run), "--create-missing"])
            .args(["--table-map", &format!("{t}={target}")])
            .args(extra)
            .output()
            .unwrap();
        let throttles = Stats::get(&proxy.stats.throttled);
        let calls = Stats::get(&proxy.stats.batch_calls);
        let landed = env.scan_all(&target).await.len();
        eprintln!(
            "{name}: exit {:?}, {landed} of 3,000 items in {:.1} s, {calls} BatchWriteItem calls, {throttles} throttled",
            o.status.code(),
            started.elapsed().as_secs_f64()
        );
        if name == "ramp" {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "{err}");
            assert_eq!(digests(&env.scan_all(&target).await), digests(&written));
        } else {
            // At the full rate the table may throttle a batch past its retries: the table
            // then fails, named, with what it wrote (the storm the ramp avoids).
            assert!(matches!(o.status.code(), Some(0 | 4)), "{o:?}");
        }
        figures.push(throttles);
    }
    // At 0.8 of 40,000 from the first second, most calls are throttled; the ramp meets the
    // table's capacity a few times as it scales, and the import is exact.
    let (fixed, ramp) = (figures[0], figures[1]);
    assert!(fixed >= 20, "fixed rate: {fixed} throttles");
    assert!(ramp * 5 <= fixed, "ramp: {ramp} throttles, fixed: {fixed}");
}
