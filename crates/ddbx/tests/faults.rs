//! Faults injected between ddbx and the emulators: every way a DynamoDB call can fail, at
//! 10% of calls, on export and import of several tables; S3 multipart uploads failing
//! part-way; a bucket owned by someone else. Each test asserts an exact result.

use std::path::Path;

use crate::support::fault_proxy::{FaultProxy, Faults, Kind, RandomFaults, Stats};
use crate::support::{digests, items, json_stdout, policy_actions, run_dir, table_report, TestEnv};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: &std::process::Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_of_dynamodb_calls_failing_each_way_loses_and_repeats_nothing() {
    let env = TestEnv::new("matrix").await;
    // Three tables: string key, string+number key, and small provisioned capacity.
    let tables = [env.table("a"), env.table("b"), env.table("c")];
    env.create_table(&tables[0], false, None).await;
    env.create_table(&tables[1], true, None).await;
    env.create_table(&tables[2], false, Some((50, 50))).await;
    let mut written = Vec::new();
    for (n, t) in tables.iter().enumerate() {
        let items: Vec<_> = (0..250)
            .map(|i| items::mixed(i + n * 1000, n == 1))
            .collect();
        env.put_items(t, &items).await;
        written.push(items);
    }
    let kinds = [
        Kind::Throttle,
        Kind::ServerError,
        Kind::DropBefore,
        Kind::DropAfter,
        Kind::Truncate,
        // Slower than --request-timeout below: the attempt is abandoned and retried.
        Kind::Delay(std::time::Duration::from_millis(2500)),
    ];
    for (k, kind) in kinds.into_iter().enumerate() {
        let seed = 0x5eed_0000 + k as u64;
        let proxy = FaultProxy::start(
            &env.emulators.dynamodb,
            Faults {
                random: Some(RandomFaults {
                    kind,
                    rate: 0.1,
                    seed,
                }),
                ..Faults::default()
            },
        )
        .await;
        let what = format!("{kind:?} (seed {seed:#x})");
        let out = env.out().join(format!("k{k}"));
        let app = format!("app{k}");
        let o = env
            .ddbx_at(&proxy.url)
            .args([
                "export",
                "--app",
                &app,
                "--tables",
                &format!("{}*", env.prefix),
                "--exclude",
                "*_copy*",
                "--to",
                s(&out),
                "--segments",
                "2",
                "--max-read-units",
                "200",
                // Small pages and files: many calls.
                "--file-items",
                "10",
                "--request-timeout",
                "1",
                "--output",
                "json",
            ])
            .output()
            .unwrap();
        ok(&o);
        let summary = json_stdout(&o);
        assert_eq!(
            summary["items"], 750,
            "{what}: export counts each item once"
        );
        let run = run_dir(&out, &app);
        // Import through the same faults into new tables, created by ddbx.
        let mut maps = Vec::new();
        let mut targets = Vec::new();
        for t in &tables {
            let target = format!("{t}_copy{k}");
            maps.push(format!("{t}={target}"));
            targets.push(target);
        }
        let mut args = vec!["import", "--from", s(&run), "--create-missing"];
        for m in &maps {
            args.extend(["--table-map", m.as_str()]);
        }
        args.extend(["--request-timeout", "1", "--output", "json"]);
        let o = env.ddbx_at(&proxy.url).args(&args).output().unwrap();
        ok(&o);
        assert_eq!(
            json_stdout(&o)["items"],
            750,
            "{what}: import counts each item once"
        );
        let faults = Stats::get(&proxy.stats.random_faults);
        let calls = proxy.stats.count_service("dynamodb:") as u64;
        eprintln!("{what}: {faults} of {calls} DynamoDB calls faulted");
        assert!(
            calls >= 100 && faults * 20 >= calls && faults * 5 <= calls,
            "{what}: about 10% of {calls} calls faulted, not {faults}"
        );
        for (target, items) in targets.iter().zip(&written) {
            assert_eq!(
                digests(&env.scan_all(target).await),
                digests(items),
                "{what}: {target} holds exactly what was exported"
            );
        }
        // And verify agrees, asked directly.
        let mut args = vec!["verify", "--from", s(&run), "--deep"];
        for m in &maps {
            args.extend(["--table-map", m.as_str()]);
        }
        ok(&env.run(&args));
    }
}

/// Multipart uploads the S3 emulator still holds open for a bucket.
fn pending_uploads(env: &TestEnv, bucket: &str) -> usize {
    let (_, body) = env.s3_get(&format!("/{bucket}?uploads"));
    String::from_utf8(body).unwrap().matches("<Upload>").count()
}

/// Items of about 100 KB of incompressible bytes: a data file of several 8 MiB parts.
async fn big_table(env: &TestEnv, name: &str, count: usize) -> Vec<items::Item> {
    env.create_table(name, false, None).await;
    let written: Vec<_> = (0..count)
        .map(|i| items::incompressible(i, 100_000))
        .collect();
    env.put_items(name, &written).await;
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_parts_failing_midway_are_retried_and_nothing_is_left_open() {
    let env = TestEnv::new("multipart").await;
    let t = env.table("t");
    let written = big_table(&env, &t, 260).await;
    let bucket = env.bucket();
    // Every 2nd part fails: a 500, or the connection closing after the part was stored.
    let proxy = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_part_fault_every: 2,
            ..Faults::default()
        },
    )
    .await;
    // One segment: one file per table, large enough for several parts.
    let o = env.export_via(
        &env.emulators.dynamodb,
        &proxy.url,
        &t,
        &format!("s3://{bucket}/b"),
        &["--segments", "1", "--output", "json"],
    );
    ok(&o);
    assert_eq!(json_stdout(&o)["items"], 260);
    let faults = Stats::get(&proxy.stats.s3_part_faults);
    assert!(faults >= 1, "parts failed: {faults}");
    assert_eq!(
        digests(&env.s3_native_items(&bucket, "b/")),
        digests(&written)
    );
    assert_eq!(pending_uploads(&env, &bucket), 0, "no upload left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_that_cannot_finish_is_aborted_and_never_published() {
    let env = TestEnv::new("mpabort").await;
    let big = env.table("big");
    let written_big = big_table(&env, &big, 120).await;
    let small = env.table("small");
    env.create_table(&small, false, None).await;
    let written_small: Vec<_> = (0..50).map(|i| items::mixed(i, false)).collect();
    env.put_items(&small, &written_small).await;
    let bucket = env.bucket();
    // Every part is refused: the big table's file can never be completed.
    let proxy = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_refuse_parts: true,
            ..Faults::default()
        },
    )
    .await;
    // One segment: one file per table, large enough for several parts.
    let o = env.export_via(
        &env.emulators.dynamodb,
        &proxy.url,
        &format!("{}*", env.prefix),
        &format!("s3://{bucket}/b"),
        &["--segments", "1", "--output", "json"],
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary = json_stdout(&o);
    assert_eq!(summary["tablesFailed"], 1);
    let report = |t: &str| table_report(&summary, t).clone();
    assert_eq!(report(&big)["status"], "failed");
    assert!(
        report(&big)["error"]
            .as_str()
            .unwrap()
            .contains("access denied: not allowed: s3:PutObject"),
        "{}",
        report(&big)
    );
    assert_eq!(report(&small)["status"], "succeeded");
    assert_eq!(pending_uploads(&env, &bucket), 0, "the upload was aborted");
    // (Auto scaling, read for table.json, goes to the same proxy: S3's actions only.)
    let used: std::collections::BTreeSet<String> = proxy
        .stats
        .actions_since(0)
        .into_iter()
        .filter(|a| a.starts_with("s3:"))
        .collect();
    assert!(used.contains("s3:AbortMultipartUpload"), "{used:?}");
    assert!(
        used.is_subset(&policy_actions("export-policy.json", "s3:")),
        "the export policy grants every S3 action of a failed export: {used:?}"
    );
    let keys = env.s3_keys(&bucket, "b/");
    let run = keys
        .iter()
        .find_map(|k| k.strip_suffix("BACKUP_COMPLETE_FAILED"))
        .expect("the failed flag")
        .to_string();
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with(&format!("{run}{big}/data/"))),
        "no half-written object is published: {keys:?}"
    );
    assert_eq!(
        digests(&env.s3_native_items(&bucket, &format!("{run}{small}/"))),
        digests(&written_small)
    );

    // Resumed without the fault, the big table completes and the run succeeds.
    let o = env
        .ddbx_with(&env.emulators.dynamodb, &env.emulators.s3)
        .args([
            "export",
            "--resume",
            &format!("s3://{bucket}/{}", run.trim_end_matches('/')),
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(
        digests(&env.s3_native_items(&bucket, &format!("{run}{big}/"))),
        digests(&written_big)
    );
    assert!(env
        .s3_keys(&bucket, &run)
        .iter()
        .any(|k| k.ends_with("BACKUP_COMPLETE_SUCCESS")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_s3_request_names_the_expected_bucket_owner() {
    let env = TestEnv::new("owner").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, None, 40).await;
    let bucket = env.bucket();
    let proxy = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            bucket_owner: Some("111122223333"),
            ..Faults::default()
        },
    )
    .await;
    let to = format!("s3://{bucket}/b");
    let export = |owner: &str| {
        env.ddbx_with(&env.emulators.dynamodb, &proxy.url)
            .args([
                "export",
                "--app",
                "app",
                "--tables",
                &t,
                "--to",
                &to,
                "--expected-bucket-owner",
                owner,
            ])
            .output()
            .unwrap()
    };
    // The wrong owner: S3 refuses, ddbx says so and writes nothing.
    let o = export("999999999999");
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("access denied: not allowed: s3:GetObject"),
        "S3's refusal is said with the action it refused: {err}"
    );
    assert!(env.s3_keys(&bucket, "b/").is_empty(), "nothing written");
    // The right owner: the export and an import from S3 send it on every request.
    let export_from = proxy.stats.mark();
    ok(&export("111122223333"));
    // The export policy grants exactly the S3 actions an export needs (aborting a
    // multipart upload happens only on failure: see the test above).
    let mut used: std::collections::BTreeSet<String> = proxy
        .stats
        .actions_since(export_from)
        .into_iter()
        .filter(|a| a.starts_with("s3:"))
        .collect();
    let import_from = proxy.stats.mark();
    used.insert("s3:AbortMultipartUpload".into());
    assert_eq!(used, policy_actions("export-policy.json", "s3:"));
    let run = env
        .s3_keys(&bucket, "b/")
        .iter()
        .find_map(|k| {
            k.strip_suffix("/BACKUP_COMPLETE_SUCCESS")
                .map(str::to_string)
        })
        .expect("a finished run");
    let copy = env.table("copy");
    let o = env
        .ddbx_with(&env.emulators.dynamodb, &proxy.url)
        .args([
            "import",
            "--from",
            &format!("s3://{bucket}/{run}"),
            "--table-map",
            &format!("{t}={copy}"),
            "--create-missing",
            "--expected-bucket-owner",
            "111122223333",
        ])
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(digests(&env.scan_all(&copy).await), digests(&written));
    assert_eq!(
        proxy
            .stats
            .actions_since(import_from)
            .into_iter()
            .filter(|a| a.starts_with("s3:"))
            .collect::<std::collections::BTreeSet<_>>(),
        policy_actions("import-policy.json", "s3:"),
        "the import policy grants exactly the S3 actions an import needs"
    );
    let requests = proxy.stats.count_service("s3:") as u64;
    assert!(requests > 10, "{requests}");
    assert_eq!(
        Stats::get(&proxy.stats.s3_without_owner),
        0,
        "every one of {requests} S3 requests named the owner"
    );
}
