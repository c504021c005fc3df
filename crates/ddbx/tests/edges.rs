//! The probe's findings about how the default engine is run (`docs/research/probe.md`, F1-F4,
//! F10, F11, F15-F18, F20), each reproduced as the probe ran it: a careless flag, a
//! concurrent command, a killed process, a link, a typo, against dynalite and moto.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::{items, json_stdout, run_dir, sigterm, wait_for, TestEnv, REGION};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The run folder of `app` at `time` (`2026-11-01T03:00:00Z` is `2026/11/01/03_00.00`).
fn run_at(out: &Path, app: &str, day: u32) -> PathBuf {
    out.join(REGION)
        .join(app)
        .join(format!("2026/11/{day:02}/03_00.00"))
}

/// Export every table of the test to `out` as `app` at 03:00 on day `day` of 2026-11.
fn export_day(
    env: &TestEnv,
    app: &str,
    to: &str,
    day: u32,
    extra: &[&str],
) -> std::process::Output {
    let time = format!("2026-11-{day:02}T03:00:00Z");
    let mut args = vec![
        "export",
        "--app",
        app,
        "--tables",
        &env.prefix,
        "--to",
        to,
        "--run-time",
        &time,
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

/// A table of `n` items of about `bytes` bytes each.
async fn table(env: &TestEnv, short: &str, n: usize, bytes: usize) -> String {
    let t = env.table(short);
    env.create_table(&t, false, Some((100, 100))).await;
    env.put_items(
        &t,
        &(0..n).map(|i| items::sized(i, bytes)).collect::<Vec<_>>(),
    )
    .await;
    t
}

/// Wait (polling) until `child` ends, at most `limit`; its exit code.
fn exit_within(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A ddbx run in the background whose stderr is collected as it comes.
fn spawn_collecting(mut cmd: Command) -> (Child, Arc<Mutex<String>>) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let said = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let into = said.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[child] {line}");
            into.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    (child, said)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test]
async fn f1_no_scan_segment_means_no_backup_and_prune_keeps_the_real_one() {
    let env = TestEnv::new("segs").await;
    let t = table(&env, "t", 30, 200).await;
    let out = env.out();
    assert_eq!(
        export_day(&env, "seg", s(&out), 1, &[]).status.code(),
        Some(0)
    );
    for segments in ["0", "1000001"] {
        let o = export_day(&env, "seg", s(&out), 2, &["--segments", segments]);
        assert_eq!(o.status.code(), Some(1), "--segments {segments}");
        assert!(stderr(&o).contains("--segments"), "{}", stderr(&o));
    }
    assert!(!run_at(&out, "seg", 2).exists(), "no run is written");
    let o = env.run(&["prune", "--to", s(&out), "--app", "seg", "--keep-last", "1"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(run_at(&out, "seg", 1).exists(), "the real backup is kept");
    let t2 = env.table("t2");
    let o = env.run(&[
        "import",
        "--from",
        "latest",
        "--to",
        s(&out),
        "--app",
        "seg",
        "--table-map",
        &format!("{t}={t2}"),
        "--create-missing",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(env.scan_all(&t2).await.len(), 30);
}

#[tokio::test]
async fn f10_f11_bad_flags_and_numbers_are_usage_errors_exit_1() {
    let env = TestEnv::new("usage").await;
    let out = env.out();
    let to = s(&out);
    let export = |extra: &[&str]| {
        let mut a = vec!["export", "--app", "a", "--tables", "X", "--to", to];
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let mut cases: Vec<Vec<String>> = vec![
        vec!["export".into(), "--nosuch".into()],
        vec!["export".into(), "--app".into(), "a".into()],
        vec![
            "prune".into(),
            "--to".into(),
            to.into(),
            "--app".into(),
            "a".into(),
            "--keep-last".into(),
            "0".into(),
        ],
        vec![
            "import".into(),
            "--from".into(),
            to.into(),
            "--max-write-units".into(),
            "0".into(),
        ],
        vec![
            "import".into(),
            "--from".into(),
            to.into(),
            "--write-ratio".into(),
            "0".into(),
        ],
        vec![
            "verify".into(),
            "--from".into(),
            to.into(),
            "--max-read-units".into(),
            "0".into(),
        ],
        vec![
            "verify".into(),
            "--from".into(),
            to.into(),
            "--read-ratio".into(),
            "1.6".into(),
        ],
    ];
    for bad in [
        &["--request-timeout", "0"][..],
        &["--max-read-units", "0"],
        &["--max-read-units", "NaN"],
        &["--max-read-units", "inf"],
        &["--read-ratio", "0"],
        &["--segments", "0"],
        &["--workers", "0"],
        &["--parallel-tables", "0"],
        &["--file-items", "0"],
        &["--stale-lock-minutes", "0"],
        &["--run-time", "tomorrow"],
    ] {
        cases.push(export(bad));
    }
    for args in &cases {
        let o = env.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(1), "{args:?} is a usage error");
    }
    // A flag of another engine is refused, naming it and its engine, not ignored.
    for (flags, said) in [
        (
            &["--max-jobs", "5"][..],
            "--max-jobs is for --engine native",
        ),
        (
            &["--poll-seconds", "1"],
            "--poll-seconds is for --engine native",
        ),
        (&["--max-wait", "1h"], "--max-wait is for --engine native"),
        (
            &["--on-interrupt", "leave"],
            "--on-interrupt is for --engine emr",
        ),
        (&["--clusters", "1"], "--clusters is for --engine emr"),
    ] {
        let o = env.run(&export(flags).iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(1), "{flags:?} on the local engine");
        let err = stderr(&o);
        assert!(
            err.contains(said) && err.contains("engine is local"),
            "{err}"
        );
    }
    assert!(!out.exists(), "nothing was written");
    for ok in [&["--help"][..], &["--version"], &["export", "--help"]] {
        assert_eq!(env.run(ok).status.code(), Some(0), "{ok:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn f11_a_stop_ends_a_wait_on_the_write_rate() {
    let env = TestEnv::new("rstop").await;
    // 10 KB items: 10 write units each; a batch of 25 at 1 unit/s is four minutes of debt.
    let t = table(&env, "t", 60, 10_000).await;
    let run = env.export_all("app", &[]);
    let t2 = env.table("t2");
    let map = format!("{t}={t2}");
    let mut child = env
        .ddbx()
        .args([
            "import",
            "--from",
            s(&run),
            "--table-map",
            &map,
            "--create-missing",
        ])
        .args(["--max-write-units", "1", "--workers", "1"])
        .spawn()
        .unwrap();
    let ddb = env.ddb.clone();
    let rt = tokio::runtime::Handle::current();
    let t2c = t2.clone();
    wait_for(&mut child, "the first batch written", || {
        let n = tokio::task::block_in_place(|| {
            rt.block_on(async {
                ddb.scan()
                    .table_name(&t2c)
                    .send()
                    .await
                    .map_or(0, |o| o.count())
            })
        });
        n > 0
    });
    sigterm(&child);
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(4));
    let flag = std::fs::read_to_string(run.join("RESTORE_COMPLETE_FAILED")).unwrap();
    assert!(flag.contains("interrupted"), "{flag}");
    assert!(!run.join("_import/_LOCK").exists(), "the lock is released");
    // The stopped import is listed as interrupted, not failed (its table's status says
    // so, whatever its error's text holds: here how many items were written).
    let base = run.ancestors().nth(6).unwrap();
    let o = env.run(&["list", "--to", s(base), "--output", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let listed = json_stdout(&o);
    assert_eq!(listed[0]["restore"]["status"], "interrupted", "{listed:#}");
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
    assert_eq!(env.scan_all(&t2).await.len(), 60);
}

#[tokio::test]
async fn f2_prune_never_deletes_through_a_symbolic_link() {
    let env = TestEnv::new("plink").await;
    let t = table(&env, "t", 5, 100).await;
    let out = env.out();
    for day in [1, 2] {
        assert_eq!(
            export_day(&env, "p", s(&out), day, &[]).status.code(),
            Some(0)
        );
    }
    let victim = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(victim.path().join("dir")).unwrap();
    std::fs::write(victim.path().join("dir/precious.txt"), "precious").unwrap();
    let old = run_at(&out, "p", 1);
    std::os::unix::fs::symlink(victim.path().join("dir"), old.join(&t).join("linkdir")).unwrap();
    std::os::unix::fs::symlink(
        victim.path().join("dir/precious.txt"),
        old.join(&t).join("linkfile"),
    )
    .unwrap();
    for dry in [true, false] {
        let mut args = vec![
            "prune",
            "--to",
            s(&out),
            "--app",
            "p",
            "--keep-last",
            "1",
            "--output",
            "json",
        ];
        if dry {
            args.push("--dry-run");
        }
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(0));
        let report = json_stdout(&o);
        let old_run = report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| {
                d["runRoot"]
                    .as_str()
                    .unwrap()
                    .ends_with("2026/11/01/03_00.00")
            })
            .unwrap()
            .clone();
        assert_eq!(old_run["delete"], false, "{old_run}");
        assert!(old_run.to_string().contains("symbolic link"), "{old_run}");
    }
    assert_eq!(
        std::fs::read_to_string(victim.path().join("dir/precious.txt")).unwrap(),
        "precious"
    );
    assert!(
        old.join("BACKUP_COMPLETE_SUCCESS").exists(),
        "the run is kept whole"
    );
}

#[tokio::test]
async fn f3_prune_keeps_a_run_an_import_is_reading() {
    let env = TestEnv::new("pimp").await;
    let t = table(&env, "t", 12, 900).await;
    let out = env.out();
    for day in [1, 2] {
        assert_eq!(
            export_day(&env, "app", s(&out), day, &[]).status.code(),
            Some(0)
        );
    }
    let old = run_at(&out, "app", 1);
    let t2 = env.table("t2");
    // 12 units at 2 a second: about six seconds of import.
    let mut child = env
        .ddbx()
        .args([
            "import",
            "--from",
            s(&old),
            "--table-map",
            &format!("{t}={t2}"),
        ])
        .args(["--create-missing", "--max-write-units", "2"])
        .spawn()
        .unwrap();
    let leases = out.join(REGION).join("app/_LEASES");
    wait_for(&mut child, "the import's lease", || {
        std::fs::read_dir(&leases).is_ok_and(|mut d| d.next().is_some())
    });
    let o = env.run(&[
        "prune",
        "--to",
        s(&out),
        "--app",
        "app",
        "--keep-last",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        json_stdout(&o)
            .to_string()
            .contains("an import from it is running"),
        "the run being read is kept"
    );
    assert!(old.join("restore-plan.json").exists());
    assert_eq!(exit_within(&mut child, Duration::from_secs(60)), Some(0));
    assert_eq!(
        env.scan_all(&t2).await.len(),
        12,
        "the import had all it read"
    );
    assert!(
        std::fs::read_dir(&leases).unwrap().next().is_none(),
        "the lease is given back"
    );
    let o = env.run(&["prune", "--to", s(&out), "--app", "app", "--keep-last", "1"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!old.exists(), "once the import is done, the run goes");
}

#[tokio::test]
async fn f3_an_import_waits_for_a_prune_holding_the_lock() {
    let env = TestEnv::new("pwait").await;
    let t = table(&env, "t", 12, 200).await;
    let run = env.export_all("app", &[]);
    let lock = env.out().join(REGION).join("app/_LOCK");
    let now = chrono::Utc::now().to_rfc3339();
    std::fs::write(
        &lock,
        serde_json::json!({
            "owner": "another-host:1", "run": format!("prune {}", env.out().display()),
            "token": "t", "acquiredAt": now, "refreshedAt": now,
        })
        .to_string(),
    )
    .unwrap();
    let t2 = env.table("t2");
    let mut cmd = env.ddbx();
    cmd.args([
        "import",
        "--from",
        s(&run),
        "--table-map",
        &format!("{t}={t2}"),
        "--create-missing",
    ]);
    let (mut child, said) = spawn_collecting(cmd);
    wait_for(&mut child, "the import to wait for the prune", || {
        said.lock()
            .unwrap()
            .contains("a prune of this app is running")
    });
    assert!(
        !run.join("RESTORE_RUNNING").exists(),
        "nothing read or written while it waits"
    );
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(exit_within(&mut child, Duration::from_secs(60)), Some(0));
    assert_eq!(env.scan_all(&t2).await.len(), 12);
}

#[tokio::test]
async fn f4_resume_into_a_dropped_or_recreated_table_starts_again() {
    let env = TestEnv::new("ident").await;
    let t = table(&env, "t", 30, 200).await;
    let run = env.export_all("app", &[]);
    let t2 = env.table("t2");
    let map = format!("{t}={t2}");
    let import = |extra: &[&str]| {
        let mut a = vec![
            "import",
            "--from",
            s(&run),
            "--table-map",
            &map,
            "--output",
            "json",
        ];
        a.extend_from_slice(extra);
        env.run(&a)
    };
    assert_eq!(import(&["--create-missing"]).status.code(), Some(0));
    let drop = || async {
        env.ddb.delete_table().table_name(&t2).send().await.unwrap();
        while env.table_exists(&t2).await {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    // Dropped: --resume --create-missing creates it again, and writes everything.
    drop().await;
    let o = import(&["--create-missing", "--resume"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        env.scan_all(&t2).await.len(),
        30,
        "not 0: the old checkpoint is not this table's"
    );
    assert!(json_stdout(&o)
        .to_string()
        .contains("this import created the table"));
    // Dropped and created again by someone else: another table of the same name.
    drop().await;
    env.create_table(&t2, false, Some((100, 100))).await;
    let o = import(&["--resume"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(env.scan_all(&t2).await.len(), 30);
    assert!(json_stdout(&o)
        .to_string()
        .contains("another table of this name"));
}

#[tokio::test]
async fn f15_one_unreadable_flag_never_fails_list_prune_or_latest() {
    let env = TestEnv::new("badflag").await;
    let t = table(&env, "t", 5, 100).await;
    let out = env.out();
    for day in [1, 2, 3] {
        assert_eq!(
            export_day(&env, "u", s(&out), day, &[]).status.code(),
            Some(0)
        );
    }
    // A flag from the EMR-era tooling, and a truncated one.
    std::fs::write(
        run_at(&out, "u", 1).join("BACKUP_COMPLETE_SUCCESS"),
        "SUCCESS",
    )
    .unwrap();
    std::fs::write(
        run_at(&out, "u", 3).join("BACKUP_COMPLETE_SUCCESS"),
        r#"{"job":"exp"#,
    )
    .unwrap();
    let o = env.run(&["list", "--to", s(&out), "--output", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let runs = json_stdout(&o);
    let status = |day: u32| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["runRoot"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("11/{day:02}/03_00.00"))
            })
            .map(|r| r["backup"]["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        (status(1), status(2), status(3)),
        ("unknown".into(), "success".into(), "unknown".into())
    );
    let o = env.run(&[
        "prune",
        "--to",
        s(&out),
        "--app",
        "u",
        "--keep-last",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        run_at(&out, "u", 1).exists() && run_at(&out, "u", 3).exists(),
        "unknown runs are kept"
    );
    assert!(json_stdout(&o)
        .to_string()
        .contains("its flags cannot be read"));
    let t2 = env.table("t2");
    let o = env.run(&[
        "import",
        "--from",
        "latest",
        "--to",
        s(&out),
        "--app",
        "u",
        "--table-map",
        &format!("{t}={t2}"),
        "--create-missing",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("11/02"),
        "latest is the readable success"
    );
}

#[tokio::test]
async fn f15_a_key_s3_cannot_name_leaves_only_its_run_unknown() {
    let env = TestEnv::new("badkey").await;
    let _ = table(&env, "t", 5, 100).await;
    let bucket = env.bucket();
    let to = format!("s3://{bucket}");
    for day in [1, 2] {
        assert_eq!(export_day(&env, "k", &to, day, &[]).status.code(), Some(0));
    }
    // (Signed: moto refuses anonymous writes into what ddbx wrote.)
    env.boto3(
        "s3",
        "c.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=b'x'); r = True",
        &[&bucket, &format!("{REGION}/k/2026/11/01/03_00.00//x")],
    );
    let o = env.run(&["list", "--to", &to, "--output", "json"]);
    assert_eq!(o.status.code(), Some(0), "the listing goes on");
    let text = json_stdout(&o).to_string();
    assert!(
        text.contains("unknown") && text.contains("11/02/03_00.00"),
        "{text}"
    );
    let o = env.run(&[
        "prune",
        "--to",
        &to,
        "--app",
        "k",
        "--keep-last",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        env.s3_keys(&bucket, &format!("{REGION}/k/2026/11/01/"))
            .len()
            > 1,
        "kept whole"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn f15_a_prune_that_fails_part_way_says_what_it_deleted() {
    let env = TestEnv::new("ppart").await;
    let _ = table(&env, "t", 5, 100).await;
    let bucket = env.bucket();
    let to = format!("s3://{bucket}");
    for day in [1, 2, 3] {
        assert_eq!(export_day(&env, "pp", &to, day, &[]).status.code(), Some(0));
    }
    let denied: &'static str = Box::leak(format!("{REGION}/pp/2026/11/01/").into_boxed_str());
    let s3 = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_deny_delete_under: Some(denied),
            ..Faults::default()
        },
    )
    .await;
    let o = env
        .ddbx_with(&env.emulators.dynamodb, &s3.url)
        .args([
            "prune",
            "--to",
            &to,
            "--app",
            "pp",
            "--keep-last",
            "1",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "a failed prune says so");
    assert!(!o.stdout.is_empty(), "a report: {}", stderr(&o));
    let report = json_stdout(&o);
    let decision = |day: u32| {
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| {
                d["runRoot"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("11/{day:02}/03_00.00"))
            })
            .unwrap()
            .clone()
    };
    assert_eq!(
        decision(2)["delete"],
        true,
        "what went before the failure is reported"
    );
    assert_eq!(decision(1)["delete"], false);
    assert!(decision(1).to_string().contains("its delete failed"));
    assert!(!report["errors"].as_array().unwrap().is_empty());
    assert!(env
        .s3_keys(&bucket, &format!("{REGION}/pp/2026/11/02/"))
        .is_empty());
    assert!(!env.s3_keys(&bucket, denied).is_empty());
}

#[tokio::test]
async fn f16_a_killed_runs_lock_says_how_to_go_on_and_is_taken_at_once() {
    let env = TestEnv::new("dead").await;
    let _ = table(&env, "t", 200, 1000).await;
    let out = env.out();
    let mut child = env
        .ddbx()
        .args([
            "export",
            "--app",
            "d",
            "--tables",
            &env.prefix,
            "--to",
            s(&out),
        ])
        .args([
            "--run-time",
            "2026-11-01T03:00:00Z",
            "--max-read-units",
            "5",
        ])
        .spawn()
        .unwrap();
    let run = run_at(&out, "d", 1);
    wait_for(&mut child, "the export to run", || {
        run.join("BACKUP_RUNNING").exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let o = export_day(&env, "d", s(&out), 2, &[]);
    assert_eq!(o.status.code(), Some(2));
    let said = stderr(&o);
    assert!(
        said.contains("gone") && said.contains("--resume") && said.contains("--break-stale-lock"),
        "{said}"
    );
    let o = env.run(&["list", "--to", s(&out), "--output", "json"]);
    assert!(
        json_stdout(&o).to_string().contains("\"crashed\""),
        "a killed run is not running"
    );
    let o = export_day(&env, "d", s(&out), 2, &["--break-stale-lock"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a dead owner's lock is taken at once"
    );
}

#[tokio::test]
async fn f16_an_unreadable_or_future_lock_can_be_broken() {
    let env = TestEnv::new("badlock").await;
    let _ = table(&env, "t", 5, 100).await;
    let out = env.out();
    let lock = out.join(REGION).join("b/_LOCK");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let future = chrono::Utc::now() + chrono::Duration::days(30);
    let locks = [
        (String::new(), "not a ddbx lock"),
        (
            serde_json::json!({"owner": "another-host:1", "run": "export x", "token": "t",
                "acquiredAt": future, "refreshedAt": future})
            .to_string(),
            "clock skew",
        ),
    ];
    for (day, (body, says)) in (1..).zip(locks) {
        std::fs::write(&lock, body).unwrap();
        let o = export_day(&env, "b", s(&out), day, &[]);
        assert_eq!(o.status.code(), Some(2), "{says}");
        assert!(
            stderr(&o).contains(says) && stderr(&o).contains("--break-stale-lock"),
            "{}",
            stderr(&o)
        );
        let o = export_day(&env, "b", s(&out), day, &["--break-stale-lock"]);
        assert_eq!(o.status.code(), Some(0), "{says}: taken over");
    }
}

#[tokio::test]
async fn f16_sighup_stops_a_run_as_sigterm_does() {
    let env = TestEnv::new("hup").await;
    let _ = table(&env, "t", 200, 1000).await;
    let out = env.out();
    let mut child = env
        .ddbx()
        .args([
            "export",
            "--app",
            "h",
            "--tables",
            &env.prefix,
            "--to",
            s(&out),
        ])
        .args([
            "--run-time",
            "2026-11-01T03:00:00Z",
            "--max-read-units",
            "5",
        ])
        .spawn()
        .unwrap();
    let run = run_at(&out, "h", 1);
    wait_for(&mut child, "the export to run", || {
        run.join("BACKUP_RUNNING").exists()
    });
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(4));
    let flag = std::fs::read_to_string(run.join("BACKUP_COMPLETE_FAILED")).unwrap();
    assert!(flag.contains("interrupted"), "{flag}");
    assert!(
        !out.join(REGION).join("h/_LOCK").exists(),
        "the lock is released"
    );
}

#[tokio::test]
async fn f17_reads_and_writes_never_follow_a_link_out_of_a_run() {
    let env = TestEnv::new("rlink").await;
    let t = table(&env, "t", 5, 100).await;
    let run = env.export_all("app", &["--compression", "none"]);
    let outside = tempfile::tempdir().unwrap();
    let t2 = env.table("t2");
    let import = || {
        env.run(&[
            "import",
            "--from",
            s(&run),
            "--table-map",
            &format!("{t}={t2}"),
            "--create-missing",
            "--output",
            "json",
        ])
    };
    // A data file linked to a file outside the run (its MD5 matches).
    let data = crate::support::files_under(&run.join(&t))
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/data/"))
        .unwrap();
    let copy = outside.path().join("copy.json");
    std::fs::copy(&data, &copy).unwrap();
    std::fs::remove_file(&data).unwrap();
    std::os::unix::fs::symlink(&copy, &data).unwrap();
    let o = import();
    assert_eq!(o.status.code(), Some(4));
    assert!(json_stdout(&o).to_string().contains("is a symbolic link"));
    assert!(!env.table_exists(&t2).await);
    std::fs::remove_file(&data).unwrap();
    std::fs::copy(&copy, &data).unwrap();
    // The import's state folder linked elsewhere: nothing is written there.
    let state = outside.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let _ = std::fs::remove_dir_all(run.join("_import"));
    std::os::unix::fs::symlink(&state, run.join("_import")).unwrap();
    // (Its write check through the link is refused: the run is one it may not write, so
    // its flags and checkpoints go to a state folder of its own, as for a read-only run.)
    let o = import();
    assert_eq!(o.status.code(), Some(0));
    let state_root = json_stdout(&o)["stateRoot"].as_str().unwrap().to_string();
    assert!(
        state_root.contains("/.local/state/ddbx/imports/"),
        "{state_root}"
    );
    assert!(
        crate::support::files_under(&state).is_empty(),
        "nothing written through the link"
    );
    // An excludes file linked to a secret: refused, its content never echoed.
    let secret = outside.path().join("credentials");
    std::fs::write(&secret, "[default]\naws_secret_access_key = s3cr3t\n").unwrap();
    std::os::unix::fs::symlink(&secret, env.out().join("excludes")).unwrap();
    let o = export_day(&env, "x", s(&env.out()), 5, &[]);
    assert_ne!(o.status.code(), Some(0));
    let said = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    assert!(
        said.contains("symbolic link") && !said.contains("[default]") && !said.contains("s3cr3t"),
        "{said}"
    );
}

#[tokio::test]
async fn f18_a_run_time_far_ahead_is_refused_unless_meant() {
    let env = TestEnv::new("future").await;
    let _ = table(&env, "t", 5, 100).await;
    let out = env.out();
    let o = env.run(&[
        "export",
        "--app",
        "f",
        "--tables",
        &env.prefix,
        "--to",
        s(&out),
        "--run-time",
        "2062-11-30T03:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("more than a day after now"),
        "{}",
        stderr(&o)
    );
    assert!(!out.join(REGION).join("f/2062").exists());
    let o = env.run(&[
        "export",
        "--app",
        "f",
        "--tables",
        &env.prefix,
        "--to",
        s(&out),
        "--run-time",
        "2062-11-30T03:00:00Z",
        "--allow-future-run-time",
    ]);
    assert_eq!(o.status.code(), Some(0));
}

#[tokio::test]
async fn f20_read_only_commands_never_create_their_folder() {
    let env = TestEnv::new("typo").await;
    let typo = env.dir.path().join("typo");
    let t = s(&typo);
    for args in [
        vec!["import", "--from", t],
        vec!["verify", "--from", t],
        vec!["list", "--to", t],
        vec!["prune", "--to", t, "--app", "a", "--keep-last", "1"],
        vec!["export", "--resume", t],
        vec!["capacity", "restore", "--from", t],
    ] {
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&o).contains("no such folder"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!typo.exists(), "{args:?} created it");
    }
    let o = env.run(&[
        "export",
        "--app",
        "a",
        "--tables",
        "X",
        "--to",
        "s3://bucket//p",
    ]);
    assert_eq!(o.status.code(), Some(1), "an S3 prefix with an empty part");
}

#[tokio::test]
async fn f20_an_import_says_its_export_failed_or_still_runs() {
    let env = TestEnv::new("state").await;
    let t = table(&env, "t", 5, 100).await;
    let run = env.export_all("app", &[]);
    let t2 = env.table("t2");
    let import = || {
        env.run(&[
            "import",
            "--from",
            s(&run),
            "--table-map",
            &format!("{t}={t2}"),
            "--create-missing",
            "--output",
            "json",
        ])
    };
    std::fs::rename(
        run.join("BACKUP_COMPLETE_SUCCESS"),
        run.join("BACKUP_COMPLETE_FAILED"),
    )
    .unwrap();
    let o = import();
    assert_eq!(o.status.code(), Some(0));
    assert!(json_stdout(&o)["warnings"]
        .to_string()
        .contains("BACKUP_COMPLETE_FAILED"));
    std::fs::rename(
        run.join("BACKUP_COMPLETE_FAILED"),
        run.join("BACKUP_RUNNING"),
    )
    .unwrap();
    std::fs::remove_file(run.join("restore-plan.json")).unwrap();
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--table-map",
        &format!("{t}={t2}"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("still RUNNING"), "{}", stderr(&o));
}

#[tokio::test]
async fn f20_excluded_tables_are_recorded_and_said() {
    let env = TestEnv::new("excl").await;
    let a = table(&env, "a", 3, 100).await;
    let b = table(&env, "b", 3, 100).await;
    let out = env.out();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("excludes"), format!("# not this one\n{b}\n")).unwrap();
    let o = env.run(&[
        "export",
        "--app",
        "e",
        "--tables",
        &env.prefix,
        "--to",
        s(&out),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["excluded"], serde_json::json!([b]));
    let plan = crate::support::read_json(&run_dir(&out, "e").join("export-plan.json"));
    assert_eq!(plan["selection"]["excluded"], serde_json::json!([b]));
    assert_eq!(plan["tables"].as_array().unwrap().len(), 1);
    assert_eq!(plan["tables"][0]["table"], a.as_str());
}

#[tokio::test]
async fn f20_an_earlier_stopped_import_is_said_when_not_resumed() {
    let env = TestEnv::new("hint").await;
    let t = table(&env, "t", 60, 900).await;
    let run = env.export_all("app", &["--file-items", "20"]);
    let t2 = env.table("t2");
    let map = format!("{t}={t2}");
    let mut child = env
        .ddbx()
        .args([
            "import",
            "--from",
            s(&run),
            "--table-map",
            &map,
            "--create-missing",
        ])
        .args(["--max-write-units", "20", "--workers", "1"])
        .spawn()
        .unwrap();
    let checkpoint = run.join("_import").join(&t2).join("checkpoint.json");
    wait_for(&mut child, "a checkpoint", || checkpoint.exists());
    sigterm(&child);
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(4));
    let o = env.run(&[
        "import",
        "--from",
        s(&run),
        "--table-map",
        &map,
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(json_stdout(&o)
        .to_string()
        .contains("pass --resume to continue one"));
}
