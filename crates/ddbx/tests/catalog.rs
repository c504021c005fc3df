//! Living with backups: `ddbx list`, `--from latest`, `ddbx prune`, over a month of daily
//! runs (each with its own `--run-time`).

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::support::command::Exit;
use crate::support::{TestEnv, REGION};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn day(d: u32) -> chrono::DateTime<chrono::Utc> {
    format!("2026-11-{d:02}T03:00:00Z").parse().unwrap()
}

fn item(id: &str, day: u32) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(id.into())),
        ("day".to_string(), AttributeValue::N(day.to_string())),
    ])
}

/// The runs `ddbx list --output json` shows, as (time, status) pairs.
fn listed(env: &TestEnv, base: &str, app: &str) -> Vec<(chrono::DateTime<chrono::Utc>, String)> {
    env.cmd()
        .list()
        .to(base)
        .app(app)
        .json()
        .run()
        .expect(Exit::Ok)
        .listed()
        .into_iter()
        .map(|r| (r.time, r.backup.status))
        .collect()
}

#[tokio::test]
async fn a_month_of_daily_runs_is_listed_pruned_and_the_latest_restored() {
    let env = TestEnv::new("month").await;
    let t = env.table("t");
    env.create_table(&t, false, Some((100, 100))).await;
    let out = env.out();
    let base = s(&out).to_string();
    // Thirty days: each day one item changes; day 12 names a table that does not exist
    // (that run fails).
    for d in 1..=30 {
        env.put_items(&t, &[item("changing", d), item(&format!("day{d}"), d)])
            .await;
        let export = env
            .cmd()
            .export()
            .app("shop")
            .to(&base)
            .run_time(day(d))
            .table(&t);
        if d == 12 {
            export
                .table(&format!("{t}_gone"))
                .run()
                .expect(Exit::TablesFailed);
        } else {
            export.run().expect(Exit::Ok);
        }
    }
    // A run that died before its first flag: only its plan.
    let dead = out.join(REGION).join("shop/2026/11/30/04_00.00");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("export-plan.json"), "{}").unwrap();

    // Newest first, each with its status; text for people names the run roots.
    let runs = listed(&env, &base, "shop");
    assert_eq!(runs.len(), 31);
    let died: chrono::DateTime<chrono::Utc> = "2026-11-30T04:00:00Z".parse().unwrap();
    assert_eq!(runs[0], (died, "incomplete".to_string()));
    assert_eq!(runs[1], (day(30), "success".to_string()));
    assert_eq!(runs[19], (day(12), "failed".to_string()));
    let o = env.cmd().list().to(&base).run().expect(Exit::Ok);
    let text = String::from_utf8_lossy(&o.output.stdout);
    assert!(
        text.contains("2026-11-30 03:00:00  shop") && text.contains("local   success"),
        "{text}"
    );
    let all = env.cmd().list().to(&base).json().run().expect(Exit::Ok);
    let first = &all.listed()[1].backup;
    assert_eq!((first.engine.as_deref(), first.tables), (Some("local"), 1));
    assert_eq!(first.items, 31, "{first:?}");

    // --from latest takes the newest success (not the incomplete run), and says so.
    let o = env
        .cmd()
        .import()
        .from("latest")
        .to(&base)
        .app("shop")
        .table_map(&t, &format!("{t}_restored"))
        .create_missing()
        .run()
        .expect(Exit::Ok);
    let said = o.stderr();
    assert!(
        said.contains("latest successful run:") && said.contains("2026/11/30/03_00.00"),
        "{said}"
    );
    let restored = env.scan_all(&format!("{t}_restored")).await;
    assert_eq!(restored.len(), 31);
    let changing = restored
        .iter()
        .find(|i| i["pk"] == AttributeValue::S("changing".into()))
        .unwrap();
    assert_eq!(changing["day"], AttributeValue::N("30".into()));
    env.cmd()
        .verify()
        .from("latest")
        .to(&base)
        .app("shop")
        .deep()
        .run()
        .expect(Exit::Ok);
    // `latest` without the base is a usage error that says what is missing.
    let o = env.cmd().verify().from("latest").run().expect(Exit::Usage);
    assert!(o.stderr().contains("--to BASE --app APP"));

    // A run holding the app's lock stops a prune before it deletes anything.
    let lock = out.join(REGION).join("shop/_LOCK");
    let now = chrono::Utc::now().to_rfc3339();
    std::fs::write(
        &lock,
        serde_json::json!({"owner": "elsewhere:1", "run": "export elsewhere", "token": "x",
            "acquiredAt": now, "refreshedAt": now})
        .to_string(),
    )
    .unwrap();
    let prune = || env.cmd().prune().to(&base).app("shop").keep_last(7);
    prune().run().expect(Exit::Locked);
    assert_eq!(listed(&env, &base, "shop").len(), 31);
    std::fs::remove_file(&lock).unwrap();

    // The dry run says what would go and deletes nothing.
    let o = prune().dry_run().run().expect(Exit::Ok);
    let text = String::from_utf8_lossy(&o.output.stdout).to_string();
    let lines = text.lines();
    assert_eq!(
        lines.filter(|l| l.starts_with("would delete")).count(),
        23,
        "{text}"
    );
    assert!(text.contains("would delete 23 of 31 runs"), "{text}");
    assert!(
        text.contains("newer than the newest successful run"),
        "{text}"
    );
    assert_eq!(listed(&env, &base, "shop").len(), 31);

    // The prune: the incomplete run (newer than the newest success) and the 7 newest
    // successes stay (--keep-days 2 adds nothing: those days are past or already kept);
    // the rest go, folders and all.
    let report = prune().keep_days(2).json().run().expect(Exit::Ok).pruned();
    assert!(!report.dry_run);
    assert_eq!(report.deleted().len(), 23);
    assert!(report.objects >= 23 * 5, "{report:?}");
    let runs = listed(&env, &base, "shop");
    let kept: Vec<_> = runs.iter().map(|r| r.0).collect();
    let mut want = vec![died];
    want.extend((24..=30).rev().map(day));
    assert_eq!(kept, want);
    assert!(!out.join(REGION).join("shop/2026/11/01").exists());
    assert!(out.join(REGION).join("shop/2026/11/24/03_00.00").is_dir());
    // What is left still imports.
    env.cmd()
        .verify()
        .from("latest")
        .to(&base)
        .app("shop")
        .run()
        .expect(Exit::Ok);
}

#[tokio::test]
async fn thousands_of_runs_are_listed_from_their_flags() {
    let env = TestEnv::new("thousands").await;
    let out = env.out();
    // 2,000 run roots (with a data file each that must never be read), made by hand.
    let summary = |status: &str| {
        serde_json::json!({"job": "export", "app": "big", "region": REGION, "runRoot": "x",
            "engine": "local", "status": status, "startedAt": "2026-01-01T00:00:00Z",
            "tables": 3, "tablesFailed": 0, "items": 7, "bytes": 9, "errors": [],
            "tableReports": []})
        .to_string()
    };
    for n in 0..2000u32 {
        let dir = out.join(REGION).join(format!(
            "big/2026/{:02}/{:02}/{:02}_{:02}.00",
            1 + n / 200,
            1 + n / 8 % 25,
            n % 8,
            n % 60
        ));
        std::fs::create_dir_all(dir.join("t")).unwrap();
        std::fs::write(dir.join("BACKUP_COMPLETE_SUCCESS"), summary("succeeded")).unwrap();
        std::fs::write(dir.join("t/data.json.gz"), b"not gzip: never read").unwrap();
    }
    let runs = listed(&env, s(&out), "big");
    assert_eq!(runs.len(), 2000);
    assert!(runs.iter().all(|r| r.1 == "success"));
    assert!(runs.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
}

/// The figure docs/BENCHMARKS.md records for a prune against S3's latency: 200 runs of one
/// app in moto (copies of one real run, an hour apart), pruned to their newest 20 through
/// the fault proxy, which answers every S3 request 25 ms late (moto answers at once; S3
/// does not). Prints the wall time and the requests. Not a timed assertion: run it with
/// `cargo test -p ddbx --test tests prune_behind_s3_latency -- --ignored --nocapture`
/// (and with `DDBX_BIN=<another ddbx>` to measure that one the same way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (about a minute): see docs/BENCHMARKS.md"]
async fn prune_behind_s3_latency() {
    use crate::support::fault_proxy::{FaultProxy, Faults};
    let runs = 200;
    let env = TestEnv::new("prlat").await;
    let t = env.table("t");
    env.mixed_table(&t, None, 10).await;
    let bucket = env.bucket();
    let base = format!("s3://{bucket}/b");
    let o = env.run(&[
        "export",
        "--app",
        "lat",
        "--tables",
        &t,
        "--to",
        &base,
        "--run-time",
        "2020-01-01T00:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let copied = env.boto3(
        "s3",
        "import datetime\n\
         first = 'b/us-east-1/lat/2020/01/01/00_00.00/'\n\
         keys = [o['Key'] for o in c.list_objects_v2(Bucket=sys.argv[2], Prefix=first)['Contents']]\n\
         start = datetime.datetime(2020, 1, 1)\n\
         for i in range(1, int(sys.argv[3])):\n    \
             to = 'b/us-east-1/lat/' + (start + datetime.timedelta(hours=i)).strftime('%Y/%m/%d/%H_%M.%S') + '/'\n    \
             for k in keys:\n        \
                 c.copy_object(Bucket=sys.argv[2], Key=to + k[len(first):], CopySource={'Bucket': sys.argv[2], 'Key': k})\n\
         r = len(keys)",
        &[&bucket, &runs.to_string()],
    );
    let proxy = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_latency: Some(std::time::Duration::from_millis(25)),
            ..Faults::default()
        },
    )
    .await;
    let started = std::time::Instant::now();
    let o = env
        .ddbx_with(&env.emulators.dynamodb, &proxy.url)
        .args(["prune", "--to", &base, "--app", "lat", "--keep-last", "20"])
        .args(["--output", "json"])
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(o.status.code(), Some(0));
    let report = crate::support::json_stdout(&o);
    let deleted = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["delete"] == true)
        .count();
    assert_eq!(deleted, runs - 20);
    let requests = proxy.stats.calls.lock().unwrap().len();
    println!(
        "prune of {deleted} runs ({copied} objects each) behind 25 ms of S3 latency: {wall:.1} s, {requests} S3 requests ({:.1} a run; one after another they would wait {:.1} s)",
        requests as f64 / deleted as f64,
        requests as f64 * 0.025
    );
}
