//! `--engine native` against fakecloud behind a stand-in that answers as AWS does where
//! fakecloud does not (`support::aws_shape`): jobs that take several polls, idempotent
//! ClientTokens, quotas, LatestRestorableDateTime five minutes behind, and output in
//! AWS's shape (several data files and an empty one, `.md5` files, incremental data in
//! the shared `AWSDynamoDB/data/` folder).

use std::collections::HashSet;
use std::process::{Child, Stdio};

use crate::native::{change, instant_of, model_of, values, Kind, Native};
use crate::support::aws_shape::{AwsShape, Knobs};
use crate::support::{digests, json_stdout, table_error, table_report, wait_for};

/// The run root of `app`'s run (the one there is), from its plan.
fn run_of(n: &Native, app: &str) -> String {
    n.fc.keys(&n.env, &n.bucket, &format!("b/us-east-1/{app}/"))
        .into_iter()
        .find_map(|k| k.strip_suffix("/export-plan.json").map(str::to_string))
        .map(|k| format!("s3://{}/{k}", n.bucket))
        .expect("a run")
}

/// Whether the object `rel` exists under the run root `root`.
fn exists(n: &Native, root: &str, rel: &str) -> bool {
    let key = format!("{}/{rel}", n.key_of(root));
    n.fc.keys(&n.env, &n.bucket, &key).contains(&key)
}

/// `ddbx import` with DynamoDB at `via`, left running.
fn spawn(n: &Native, via: &str, args: &[&str]) -> Child {
    n.env
        .ddbx_with(via, &n.fc.url)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `ddbx export --resume RUN` alone (no --engine, no other flag) through `shape`.
fn resume(n: &Native, shape: &AwsShape, root: &str) -> std::process::Output {
    n.ddbx_via(
        &shape.url,
        &[
            "export",
            "--resume",
            root,
            "--poll-seconds",
            "0.05",
            "--output",
            "json",
        ],
    )
}

async fn table_arn(n: &Native, table: &str) -> String {
    let d =
        n.fc.ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
    d.table().unwrap().table_arn().unwrap().to_string()
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_chains_in_aws_layout_replay_exactly_one_record_per_key() {
    let n = Native::new("nataws").await;
    let t = n.table("t", Kind::OnDemand, true).await;
    let mut model = model_of(&n.fill(&t, Kind::OnDemand, 0, 40).await);
    // LatestRestorableDateTime trails by five minutes: the table restores to now only then.
    n.fc.advance_minutes(6);
    let shape = AwsShape::start(
        &n.fc.url,
        Knobs {
            duplicate_in_window: true,
            ..Knobs::default()
        },
    )
    .await;
    let o = n.export_via(&shape.url, &["--incremental", "--deep"]);
    assert_eq!(o.status.code(), Some(0));
    let run1 = Native::root(&o);
    let full = model.clone();
    change(
        &n,
        &t,
        Kind::OnDemand,
        &mut model,
        [0..5, 5..10, 100..105],
        "A",
    )
    .await;
    n.fc.advance_minutes(20);
    let o = n.export_via(&shape.url, &["--incremental", "--deep"]);
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    assert_eq!(
        table_report(&s, &t)["items"],
        16,
        "15 changes, and an earlier record of one of their keys"
    );
    let run2 = Native::root(&o);
    assert!(
        shape.count("DescribeExport") >= 6,
        "each export polled while it ran"
    );

    // AWS's layout: several data files and an empty one, in parts; .md5 of each manifest;
    // the window's data in the folder the prefix's incremental exports share.
    for (root, shared) in [(&run1, false), (&run2, true)] {
        let keys =
            n.fc.keys(&n.env, &n.bucket, &format!("{}/{t}/", n.key_of(root)));
        let data: Vec<&String> = keys.iter().filter(|k| k.ends_with(".json.gz")).collect();
        assert_eq!(data.len(), 4, "{keys:?}");
        assert!(
            data.iter()
                .all(|k| k.contains("/AWSDynamoDB/data/") == shared),
            "{keys:?}"
        );
        for md5 in ["manifest-files.md5", "manifest-summary.md5"] {
            assert!(keys.iter().any(|k| k.ends_with(md5)), "{keys:?}");
        }
    }

    // Replayed to the window's end: the later of the key's two records wins.
    let t2 = instant_of(&n, &run2);
    let at = (t2 + chrono::Duration::seconds(1)).to_rfc3339();
    let map = format!("{t}={t}_pit");
    let o = n.ddbx(&[
        "import",
        "--from",
        &run1,
        "--until",
        &at,
        "--create-missing",
        "--table-map",
        &map,
        "--max-write-units",
        "2000",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{t}_pit")).await),
        digests(&values(&model))
    );
    for target in [&map, &format!("{t}={t}")] {
        let o = n.ddbx(&[
            "verify",
            "--from",
            &run1,
            "--until",
            &at,
            "--deep",
            "--table-map",
            target,
        ]);
        assert_eq!(o.status.code(), Some(0), "{target}");
    }

    // An incremental run alone is refused by verify as by import.
    let o = n.ddbx(&["verify", "--from", &run2, "--output", "json"]);
    assert_eq!(o.status.code(), Some(4));
    let verdicts = json_stdout(&o);
    let why = verdicts[0]["error"].as_str().unwrap();
    assert_eq!(verdicts[0]["targetTable"], t.as_str());
    assert!(why.contains("--until") && why.contains("--at"), "{why}");

    // ImportTable reads AWS's full export (its files, the empty one included).
    let o = n.ddbx_via(
        &shape.url,
        &[
            "import",
            "--engine",
            "native",
            "--from",
            &run1,
            "--poll-seconds",
            "0.05",
            "--table-map",
            &format!("{t}={t}_n"),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{t}_n")).await),
        digests(&values(&full))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_native_run_keeps_what_an_earlier_attempt_exported_and_its_engine() {
    let n = Native::new("natresume").await;
    let a = n.table("a", Kind::OnDemand, true).await;
    let b = n.table("b", Kind::OnDemand, false).await;
    let a_items = n.fill(&a, Kind::OnDemand, 0, 20).await;
    let b_items = n.fill(&b, Kind::OnDemand, 100, 25).await;
    n.fc.advance_minutes(6);
    let shape = AwsShape::start(
        &n.fc.url,
        Knobs {
            hold: HashSet::from([b.clone()]),
            ..Knobs::default()
        },
    )
    .await;
    let mut child = n.spawn_export(&shape.url, &["--incremental", "--enable-pitr"]);
    // b's recovery is turned on now: it restores to now only five minutes later.
    let pitr_record = |root: &str| exists(&n, root, &format!("_capacity/{b}-pitr.json"));
    wait_for(&mut child, "b's recovery turned on", || {
        n.fc.keys(&n.env, &n.bucket, "b/")
            .iter()
            .any(|k| k.ends_with(&format!("_capacity/{b}-pitr.json")))
    });
    let root = run_of(&n, "app");
    assert!(pitr_record(&root));
    let polled = shape.count("DescribeContinuousBackups");
    wait_for(&mut child, "waiting for a common instant", || {
        shape.count("DescribeContinuousBackups") > polled + 2
    });
    assert_eq!(
        shape.count("ExportTableToPointInTime"),
        0,
        "none before the instant"
    );
    n.fc.advance_minutes(6);
    // Killed once a's full export is done and b's still runs.
    wait_for(&mut child, "a's export done", || {
        exists(&n, &root, &format!("_export/{a}/native-done.json"))
    });
    kill(child);

    // Resumed with nothing but the run: its engine, its --incremental and --enable-pitr.
    // Stopped (SIGTERM) while b's export runs: recovery stays on under it, said so.
    let mut child = spawn(
        &n,
        &shape.url,
        &["export", "--resume", &root, "--poll-seconds", "0.05"],
    );
    let seen = shape.count("DescribeExport");
    wait_for(&mut child, "b's export polled again", || {
        shape.count("DescribeExport") > seen + 1
    });
    crate::support::sigterm(&child);
    assert_ne!(child.wait().unwrap().code(), Some(0));
    assert!(
        n.fc.pitr(&b).await,
        "left on while its export may still run"
    );

    shape.knobs().hold.clear();
    let o = resume(&n, &shape, &root);
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    assert_eq!(s["engine"], "native");
    assert_eq!(table_report(&s, &a)["status"], "succeeded");
    assert_eq!(table_report(&s, &a)["items"], 20);
    assert_eq!(table_report(&s, &b)["items"], 25);
    assert!(!n.fc.pitr(&b).await, "turned off after its export");
    for t in [&a, &b] {
        assert_eq!(
            shape.forwarded("ExportTableToPointInTime", t),
            1,
            "{t}: one export"
        );
    }
    let plan: serde_json::Value = serde_json::from_slice(&n.fc.object(
        &n.env,
        &n.bucket,
        &format!("{}/export-plan.json", n.key_of(&root)),
    ))
    .unwrap();
    assert_eq!(plan["engineSettings"]["incremental"], true);
    let restore: serde_json::Value = serde_json::from_slice(&n.fc.object(
        &n.env,
        &n.bucket,
        &format!("{}/restore-plan.json", n.key_of(&root)),
    ))
    .unwrap();
    let mut planned: Vec<&str> = restore["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sourceTable"].as_str().unwrap())
        .collect();
    planned.sort();
    assert_eq!(planned, [a.as_str(), b.as_str()], "no table left out");

    // The run restores and verifies both.
    let maps = [format!("{a}={a}_c"), format!("{b}={b}_c")];
    let o = n.ddbx(&[
        "import",
        "--from",
        &root,
        "--create-missing",
        "--table-map",
        &maps[0],
        "--table-map",
        &maps[1],
        "--max-write-units",
        "2000",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{a}_c")).await),
        digests(&a_items)
    );
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{b}_c")).await),
        digests(&b_items)
    );
    let o = n.ddbx(&[
        "verify",
        "--from",
        &root,
        "--output",
        "json",
        "--table-map",
        &maps[0],
        "--table-map",
        &maps[1],
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o).as_array().unwrap().len(), 2);

    // A flag the run did not have is refused, naming the plan.
    let o = n.export(&["--exclude", "*_c", "--enable-pitr"]);
    assert_eq!(o.status.code(), Some(0));
    let full = Native::root(&o);
    let o = n.ddbx(&["export", "--resume", &full, "--incremental"]);
    assert_ne!(o.status.code(), Some(0));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("--incremental contradicts") && said.contains("export-plan.json"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_jobs_wait_for_quotas_keep_their_tokens_and_retry_failures_with_the_next() {
    let n = Native::new("natquota").await;
    let a = n.table("a", Kind::OnDemand, true).await;
    let b = n.table("b", Kind::OnDemand, true).await;
    n.fill(&a, Kind::OnDemand, 0, 10).await;
    n.fill(&b, Kind::OnDemand, 0, 12).await;
    n.fc.advance_minutes(6);
    let shape = AwsShape::start(
        &n.fc.url,
        Knobs {
            refuse_starts: 3,
            max_exports: 1,
            // Long enough for the other export's start to outlast its quick retries.
            polls_in_progress: 10,
            fail_exports: [(a.clone(), 1)].into(),
            lose_next_export_answer: true,
            ..Knobs::default()
        },
    )
    .await;
    let o = n.export_via(&shape.url, &["--max-jobs", "2"]);
    assert_eq!(o.status.code(), Some(4));
    let s = json_stdout(&o);
    let why = table_error(&s, &a);
    assert!(why.contains("FAILED: S3AccessDenied"), "{why}");
    assert_eq!(
        table_report(&s, &b)["items"],
        12,
        "waited in line, then exported"
    );
    assert!(
        shape.refusals() > 3,
        "refused for a while, then while the other export ran"
    );
    // One answer was lost: the call was sent again with its token, and was the same export.
    let sent = shape.count("ExportTableToPointInTime") as u64;
    assert!(sent > 2 + shape.refusals(), "{sent} calls");
    for t in [&a, &b] {
        assert_eq!(shape.forwarded("ExportTableToPointInTime", t), 1);
        let tokens: HashSet<String> = shape
            .tokens("ExportTableToPointInTime", t)
            .into_iter()
            .collect();
        assert_eq!(tokens.len(), 1, "{t}: {tokens:?}");
    }
    // The same token with other parameters is refused, as AWS refuses it.
    let token = shape.tokens("ExportTableToPointInTime", &b)[0].clone();
    let arn = table_arn(&n, &b).await;
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .endpoint_url(&shape.url)
        .build();
    let err = aws_sdk_dynamodb::Client::from_conf(conf)
        .export_table_to_point_in_time()
        .table_arn(arn)
        .s3_bucket(&n.bucket)
        .s3_prefix("elsewhere")
        .client_token(token)
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("ExportConflictException"),
        "{err:?}"
    );

    // Resumed: the FAILED export is started again, with the next token.
    let root = Native::root(&o);
    let o = resume(&n, &shape, &root);
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    assert_eq!(table_report(&s, &a)["items"], 10);
    let note = table_report(&s, &a)["note"].as_str().unwrap().to_string();
    assert!(
        note.contains("started again after attempt 1") && note.contains("S3AccessDenied"),
        "{note}"
    );
    let tokens = shape.tokens("ExportTableToPointInTime", &a);
    assert!(tokens.last().unwrap().ends_with("-2"), "{tokens:?}");
    assert_eq!(shape.forwarded("ExportTableToPointInTime", &a), 2);
    assert_eq!(
        shape.forwarded("ExportTableToPointInTime", &b),
        1,
        "b was done"
    );

    // A quota that stays full for longer than --max-wait fails the table, saying so.
    shape.knobs().refuse_starts = 1_000_000;
    n.fc.advance_minutes(1);
    let o = n.export_via(&shape.url, &["--max-wait", "1s"]);
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &a);
    assert!(
        why.contains("LimitExceededException") && why.contains("--max-wait"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_native_import_is_taken_up_checked_and_given_its_settings() {
    let n = Native::new("natimpres").await;
    let t = n.table("t", Kind::OnDemand, true).await;
    let u = n.table("u", Kind::OnDemand, true).await;
    let t_items = n.fill(&t, Kind::OnDemand, 0, 30).await;
    let u_items = n.fill(&u, Kind::OnDemand, 50, 15).await;
    // Settings ImportTable cannot set.
    n.fc.ddb
        .update_time_to_live()
        .table_name(&t)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    n.fc.ddb
        .update_table()
        .table_name(&t)
        .deletion_protection_enabled(true)
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewImage)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let arn = table_arn(&n, &t).await;
    n.fc.ddb
        .tag_resource()
        .resource_arn(&arn)
        .tags(
            aws_sdk_dynamodb::types::Tag::builder()
                .key("team")
                .value("billing")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    n.fc.advance_minutes(6);
    let o = n.export(&[]);
    assert_eq!(o.status.code(), Some(0));
    let root = Native::root(&o);
    let (tn, un) = (format!("{t}_n"), format!("{u}_n"));
    let shape = AwsShape::start(
        &n.fc.url,
        Knobs {
            hold: HashSet::from([tn.clone()]),
            lose_import_answer: HashSet::from([un.clone()]),
            ..Knobs::default()
        },
    )
    .await;
    let maps = [format!("{t}={tn}"), format!("{u}={un}")];
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "--engine",
            "native",
            "--from",
            &root,
            "--poll-seconds",
            "0.05",
            "--output",
            "json",
            "--table-map",
            &maps[0],
            "--table-map",
            &maps[1],
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    // Killed while t's import runs and u's ImportTable has taken effect unanswered.
    let args = import(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn(&n, &shape.url, &args);
    wait_for(&mut child, "both imports started", || {
        shape.count("DescribeImport") >= 2 && shape.forwarded("ImportTable", &un) == 1
    });
    kill(child);

    // The tables exist: without --resume they are refused, saying how to go on.
    shape.knobs().hold.clear();
    shape.knobs().lose_import_answer.clear();
    let args = import(&[]);
    let o = n.ddbx_via(
        &shape.url,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(4));
    for target in [&tn, &un] {
        let why = table_error(&json_stdout(&o), target);
        assert!(why.contains("exists") && why.contains("--resume"), "{why}");
    }

    // With --resume: each import taken up (u's found by its token), checked, finished.
    let args = import(&["--resume"]);
    let o = n.ddbx_via(
        &shape.url,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    assert_eq!(table_report(&s, &tn)["items"], 30);
    assert_eq!(table_report(&s, &un)["items"], 15);
    for target in [&tn, &un] {
        assert_eq!(
            shape.forwarded("ImportTable", target),
            1,
            "{target}: no second import"
        );
    }
    assert!(
        shape.count("ListImports") >= 1,
        "u's import found among the table's"
    );
    let restored = table_report(&s, &tn)["settings"]["restored"].to_string();
    for setting in [
        "stream",
        "time to live (expires)",
        "deletion protection",
        "tags (1)",
        "point-in-time recovery",
    ] {
        assert!(restored.contains(setting), "{setting}: {restored}");
    }
    let d =
        n.fc.ddb
            .describe_table()
            .table_name(&tn)
            .send()
            .await
            .unwrap();
    assert_eq!(d.table().unwrap().deletion_protection_enabled(), Some(true));
    assert_eq!(
        d.table()
            .unwrap()
            .stream_specification()
            .map(|s| s.stream_enabled()),
        Some(true)
    );
    let ttl =
        n.fc.ddb
            .describe_time_to_live()
            .table_name(&tn)
            .send()
            .await
            .unwrap();
    assert_eq!(
        ttl.time_to_live_description().unwrap().attribute_name(),
        Some("expires")
    );
    assert!(n.fc.pitr(&tn).await);
    assert_eq!(digests(&n.fc.scan_all(&tn).await), digests(&t_items));
    assert_eq!(digests(&n.fc.scan_all(&un).await), digests(&u_items));

    // Deleted and imported again (no --resume): a new import, with the next token.
    n.fc.ddb
        .delete_table()
        .table_name(&un)
        .send()
        .await
        .unwrap();
    let args = import(&["--tables", &u]);
    let o = n.ddbx_via(
        &shape.url,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(shape.forwarded("ImportTable", &un), 2);
    let tokens = shape.tokens("ImportTable", &un);
    assert!(
        tokens.last().unwrap().ends_with("-2") && tokens[0].ends_with("-1"),
        "{tokens:?}"
    );
    assert_eq!(digests(&n.fc.scan_all(&un).await), digests(&u_items));

    // An import that FAILS leaves its table: --resume says so (it is that import's),
    // and once the table is deleted imports it again, as the next attempt.
    n.fc.ddb
        .delete_table()
        .table_name(&un)
        .send()
        .await
        .unwrap();
    shape.knobs().fail_imports.insert(un.clone(), 1);
    let run = |extra: &[&str]| {
        let args = import(&[&["--tables", u.as_str()], extra].concat());
        n.ddbx_via(
            &shape.url,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &un);
    assert!(why.contains("FAILED: S3AccessDenied"), "{why}");
    let o = run(&["--resume"]);
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &un);
    assert!(
        why.contains("FAILED") && why.contains("once the table is deleted"),
        "{why}"
    );
    assert_eq!(
        shape.forwarded("ImportTable", &un),
        3,
        "taken up, not started again"
    );
    n.fc.ddb
        .delete_table()
        .table_name(&un)
        .send()
        .await
        .unwrap();
    let o = run(&["--resume"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(shape.forwarded("ImportTable", &un), 4);
    assert!(shape
        .tokens("ImportTable", &un)
        .last()
        .unwrap()
        .ends_with("-4"));
    assert_eq!(digests(&n.fc.scan_all(&un).await), digests(&u_items));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_table_keeps_the_tables_kms_key_or_says_it_could_not() {
    let n = Native::new("natkms").await;
    let key = |k: &str| format!("arn:aws:kms:us-east-1:123456789012:key/{k}");
    let mut tables = Vec::new();
    for (short, k) in [("kept", key("kept")), ("refused", key("refused"))] {
        let name = n.env.table(short);
        crate::support::create_table_request(&n.fc.ddb, &name, false, None)
            .sse_specification(
                aws_sdk_dynamodb::types::SseSpecification::builder()
                    .enabled(true)
                    .sse_type(aws_sdk_dynamodb::types::SseType::Kms)
                    .kms_master_key_id(&k)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        n.fc.set_pitr(&name, true).await;
        n.fill(&name, Kind::OnDemand, 0, 5).await;
        tables.push((name, k));
    }
    n.fc.advance_minutes(6);
    let o = n.export(&[]);
    assert_eq!(o.status.code(), Some(0));
    let root = Native::root(&o);
    let shape = AwsShape::start(
        &n.fc.url,
        Knobs {
            refuse_kms_key: Some(key("refused")),
            ..Knobs::default()
        },
    )
    .await;
    let maps: Vec<String> = tables.iter().map(|(t, _)| format!("{t}={t}_n")).collect();
    // DynamoDB runs 50 imports at once per account at most.
    let o = n.ddbx(&[
        "import",
        "--engine",
        "native",
        "--from",
        &root,
        "--max-jobs",
        "51",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("50 imports at once"));
    let o = n.ddbx_via(
        &shape.url,
        &[
            "import",
            "--engine",
            "native",
            "--from",
            &root,
            "--poll-seconds",
            "0.05",
            "--output",
            "json",
            "--table-map",
            &maps[0],
            "--table-map",
            &maps[1],
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    let ddb = n.fc.ddb.clone();
    let sse = |t: String| {
        let ddb = ddb.clone();
        async move {
            let d = ddb.describe_table().table_name(t).send().await.unwrap();
            d.table()
                .unwrap()
                .sse_description()
                .and_then(|d| d.kms_master_key_arn().map(str::to_string))
        }
    };
    let (kept, kept_key) = &tables[0];
    assert_eq!(
        sse(format!("{kept}_n")).await.as_deref(),
        Some(kept_key.as_str())
    );
    let restored = table_report(&s, &format!("{kept}_n"))["settings"]["restored"].to_string();
    assert!(
        restored.contains(&format!("encryption (KMS key {kept_key})")),
        "{restored}"
    );
    let (refused, refused_key) = &tables[1];
    assert_ne!(
        sse(format!("{refused}_n")).await.as_deref(),
        Some(refused_key.as_str())
    );
    let not = table_report(&s, &format!("{refused}_n"))["settings"]["notRestored"].to_string();
    assert!(
        not.contains(&format!("encryption with KMS key {refused_key}"))
            && not.contains("AWS managed key"),
        "{not}"
    );
}
