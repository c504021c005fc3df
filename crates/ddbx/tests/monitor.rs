//! A backup job people can monitor: `ddbx check` (a verdict and an exit code per state),
//! `--metrics-file` on export, import and check (read by prometheus_client's parser, from
//! PyPI), and what a new user installs with it: `--version` naming the commit,
//! completions and the man page generated from the flags.

use std::path::Path;
use std::process::Command;

use crate::support::{items, json_stdout, repo_root, run_dir, TestEnv, REGION};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ddbx check --to base --app app EXTRA...`: (exit code, its line).
fn check(env: &TestEnv, base: &str, app: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", "--to", base, "--app", app];
    args.extend_from_slice(extra);
    let o = env.run(&args);
    let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.code().unwrap(), line)
}

/// A run folder `<base>/<region>/<app>/<time>` holding `flag` with a summary of `failed`
/// failed tables (what ddbx writes), for states a test cannot easily make happen.
fn fake_run(
    base: &Path,
    app: &str,
    time: chrono::DateTime<chrono::Utc>,
    flag: &str,
    failed: usize,
) -> std::path::PathBuf {
    let dir = base
        .join(REGION)
        .join(app)
        .join(time.format("%Y/%m/%d/%H_%M.%S").to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let errors: Vec<String> = (0..failed).map(|i| format!("T{i}: Scan: boom")).collect();
    let summary = serde_json::json!({
        "job": "export", "app": app, "region": REGION, "runRoot": dir.to_str(),
        "status": if failed > 0 { "failed" } else { "running" },
        "startedAt": time, "tables": 2, "tablesFailed": failed, "items": 0, "bytes": 0,
        "errors": errors, "tableReports": []});
    std::fs::write(dir.join(flag), summary.to_string()).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_gives_each_state_its_exit_code_and_one_line() {
    let env = TestEnv::new("check").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, Some((100, 100)), 30).await;
    assert_eq!(written.len(), 30);
    let out = env.out();
    let base = s(&out).to_string();
    // No run yet: stale.
    std::fs::create_dir_all(&out).unwrap();
    let (code, line) = check(&env, &base, "shop", &[]);
    assert_eq!((code, line.starts_with("stale: ")), (5, true), "{line}");
    // A success two hours old (as scheduled then): ok; older than --max-age: stale. The
    // runs after it are put between it and now, so every age below is positive.
    let now = chrono::Utc::now();
    let at = |minutes_ago: i64| now - chrono::Duration::minutes(minutes_ago);
    let run_time = at(120).to_rfc3339();
    let o = env.run(&[
        "export",
        "--app",
        "shop",
        "--table",
        &t,
        "--to",
        &base,
        "--run-time",
        &run_time,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let run = run_dir(&out, "shop");
    let (code, line) = check(&env, &base, "shop", &["--deep"]);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("ok: the newest backup, started ")
            && line.contains("succeeded: 1 tables, 30 items"),
        "{line}"
    );
    assert!(
        line.contains("--deep: its manifests match their checksums and its 1 data files are there"),
        "{line}"
    );
    let (code, line) = check(&env, &base, "shop", &["--max-age", "0s"]);
    assert_eq!(code, 5, "{line}");
    assert!(line.contains("is older than --max-age 0s"), "{line}");
    // --deep finds a missing data file, and a missing checksum file.
    let data = crate::support::files_under(&run)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/data/"))
        .unwrap();
    let kept = std::fs::read(&data).unwrap();
    std::fs::remove_file(&data).unwrap();
    let (code, line) = check(&env, &base, "shop", &["--deep"]);
    assert_eq!(code, 7, "{line}");
    assert!(
        line.contains("lacks 1 of its files (--deep)") && line.contains("missing"),
        "{line}"
    );
    std::fs::write(&data, kept).unwrap();
    let md5 = crate::support::files_named(&run, "manifest-files.md5")
        .pop()
        .unwrap();
    std::fs::remove_file(&md5).unwrap();
    let (code, line) = check(&env, &base, "shop", &["--deep"]);
    assert_eq!(code, 7, "{line}");
    assert!(line.contains("manifest-files.md5: missing"), "{line}");
    // A run in progress (the lock held by a live run) is left to end: the success before
    // it is judged; once it has run for longer than --max-running, it is reported.
    let running = fake_run(&out, "shop", at(60), "BACKUP_RUNNING", 0);
    let lock = out.join(REGION).join("shop/_LOCK");
    std::fs::write(
        &lock,
        serde_json::json!({"owner": "elsewhere:1", "run": format!("export {}", running.display()),
            "token": "x", "acquiredAt": now, "refreshedAt": now})
        .to_string(),
    )
    .unwrap();
    let (code, line) = check(&env, &base, "shop", &[]);
    assert_eq!(code, 0, "{line}");
    let (code, line) = check(&env, &base, "shop", &["--max-running", "0s"]);
    assert_eq!(code, 8, "{line}");
    assert!(
        line.starts_with("running too long: the run started ") && line.contains("--max-running 0s"),
        "{line}"
    );
    // The same run without its lock was killed: incomplete, and how to go on.
    std::fs::remove_file(&lock).unwrap();
    let (code, line) = check(&env, &base, "shop", &[]);
    assert_eq!(code, 7, "{line}");
    assert!(
        line.contains("was killed while running") && line.contains("ddbx export --resume"),
        "{line}"
    );
    std::fs::remove_dir_all(&running).unwrap();
    // A newer run that failed: failed, with its first error.
    fake_run(&out, "shop", at(30), "BACKUP_COMPLETE_FAILED", 1);
    let (code, line) = check(&env, &base, "shop", &[]);
    assert_eq!(code, 6, "{line}");
    assert!(
        line.contains("failed: 1 of 2 tables failed (T0: Scan: boom)"),
        "{line}"
    );
    // JSON for scripts.
    let o = env.run(&["--output", "json", "check", "--to", &base, "--app", "shop"]);
    assert_eq!(o.status.code(), Some(6));
    let v = json_stdout(&o);
    assert_eq!(v["health"], "failed");
    assert!(v["lastSuccess"]["runRoot"]
        .as_str()
        .unwrap()
        .ends_with(&run.file_name().unwrap().to_string_lossy().to_string()));
}

/// The metrics families prometheus_client's own parser reads from `path`, as
/// `{name: [(labels, value)]}`.
fn parsed(env: &TestEnv, path: &Path) -> serde_json::Value {
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        r = {}\n\
        for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   assert f.type == 'gauge', f\n\
        \x20   assert f.documentation, f\n\
        \x20   for s in f.samples:\n\
        \x20       r.setdefault(s.name, []).append([s.labels, s.value])\n\
        print(json.dumps(r))";
    let o = Command::new(&env.emulators.python)
        .args(["-c", script, s(path)])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "prometheus_client: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The value of metric `name` whose labels include `want`.
fn value(m: &serde_json::Value, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    m[name].as_array()?.iter().find_map(|s| {
        want.iter()
            .all(|(k, v)| s[0][k] == *v)
            .then(|| s[1].as_f64().unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_files_are_read_by_prometheus_clients_parser() {
    let env = TestEnv::new("metrics").await;
    let (a, b) = (env.table("a"), env.table("b"));
    env.mixed_table(&a, Some((100, 100)), 20).await;
    env.create_table(&b, false, None).await;
    env.put_items(
        &b,
        &(0..5).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
    )
    .await;
    let out = env.out();
    let base = s(&out).to_string();
    let prom = env.dir.path().join("textfile");
    std::fs::create_dir_all(&prom).unwrap();
    let export = prom.join("shop-export.prom");
    // Two runs, as scheduled ten and five minutes ago (each its own run folder).
    let now = chrono::Utc::now();
    let first = (now - chrono::Duration::minutes(10)).to_rfc3339();
    let second = (now - chrono::Duration::minutes(5)).to_rfc3339();
    let o = env.run(&[
        "export",
        "--run-time",
        &first,
        "--app",
        "shop",
        "--tables",
        &env.prefix,
        "--to",
        &base,
        "--metrics-file",
        s(&export),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let m = parsed(&env, &export);
    let run = [("command", "export"), ("app", "shop"), ("region", REGION)];
    assert_eq!(value(&m, "ddbx_table_items", &[("table", &a)]), Some(20.0));
    assert_eq!(value(&m, "ddbx_table_items", &[("table", &b)]), Some(5.0));
    assert_eq!(value(&m, "ddbx_table_success", &[("table", &a)]), Some(1.0));
    assert!(value(&m, "ddbx_table_bytes", &[("table", &a)]).unwrap() > 0.0);
    assert!(value(&m, "ddbx_table_duration_seconds", &[("table", &a)]).is_some());
    assert_eq!(value(&m, "ddbx_run_success", &run), Some(1.0));
    assert_eq!(value(&m, "ddbx_run_items", &run), Some(25.0));
    let duration = value(&m, "ddbx_run_duration_seconds", &run).unwrap();
    assert!(duration > 0.0 && duration < 60.0, "{duration}");
    let last = value(&m, "ddbx_last_success_timestamp_seconds", &run).unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(now - last < 60.0 && last <= now + 1.0, "{last} vs {now}");
    // A failed run (a table named that does not exist): its failure, the last success kept.
    let gone = format!("{a}_gone");
    let o = env.run(&[
        "export",
        "--run-time",
        &second,
        "--app",
        "shop",
        "--table",
        &a,
        "--table",
        &gone,
        "--to",
        &base,
        "--metrics-file",
        s(&export),
    ]);
    assert_eq!(o.status.code(), Some(4));
    let m = parsed(&env, &export);
    assert_eq!(value(&m, "ddbx_run_success", &run), Some(0.0));
    assert_eq!(
        value(&m, "ddbx_table_success", &[("table", &gone)]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "ddbx_last_success_timestamp_seconds", &run),
        Some(last)
    );
    // A run that cannot even start (no such profile) still says it failed.
    let o = env.run(&[
        "--profile",
        "nosuch",
        "export",
        "--app",
        "shop",
        "--table",
        &a,
        "--to",
        &base,
        "--metrics-file",
        s(&export),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let m = parsed(&env, &export);
    assert_eq!(
        value(
            &m,
            "ddbx_run_success",
            &[("command", "export"), ("app", "shop")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &m,
            "ddbx_last_success_timestamp_seconds",
            &[("app", "shop")]
        ),
        Some(last)
    );
    // An import, and a check.
    let first = crate::support::files_named(&out, "BACKUP_COMPLETE_SUCCESS")
        .pop()
        .unwrap();
    let root = first.parent().unwrap();
    let import = prom.join("shop-import.prom");
    let o = env.run(&[
        "import",
        "--from",
        s(root),
        "--table-map",
        &format!("{a}={a}_copy"),
        "--table-map",
        &format!("{b}={b}_copy"),
        "--create-missing",
        "--metrics-file",
        s(&import),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let m = parsed(&env, &import);
    let import_run = [("command", "import"), ("app", "shop")];
    assert_eq!(value(&m, "ddbx_run_success", &import_run), Some(1.0));
    assert_eq!(
        value(
            &m,
            "ddbx_table_items",
            &[("command", "import"), ("table", &format!("{a}_copy"))]
        ),
        Some(20.0)
    );
    let checked = prom.join("shop-check.prom");
    let o = env.run(&[
        "check",
        "--to",
        &base,
        "--app",
        "shop",
        "--metrics-file",
        s(&checked),
    ]);
    assert_eq!(o.status.code(), Some(6), "the newest run failed");
    let m = parsed(&env, &checked);
    let app = [("app", "shop"), ("region", REGION)];
    assert_eq!(value(&m, "ddbx_check_healthy", &app), Some(0.0));
    assert_eq!(value(&m, "ddbx_check_exit_code", &app), Some(6.0));
    // The success was scheduled ten minutes ago.
    let age = value(&m, "ddbx_backup_age_seconds", &app).unwrap();
    assert!((600.0..720.0).contains(&age), "{age}");
    let ended = value(&m, "ddbx_check_last_success_timestamp_seconds", &app).unwrap();
    assert!(
        (last - ended).abs() < 5.0,
        "the first export's end: {ended} vs {last}"
    );
    assert!(value(&m, "ddbx_check_last_success_duration_seconds", &app).unwrap() >= 600.0);
    // One textfile folder holds the three: node_exporter refuses a series two files hold.
    let mut series = std::collections::BTreeSet::new();
    for file in [&export, &import, &checked] {
        let m = parsed(&env, file);
        for (name, samples) in m.as_object().unwrap() {
            for sample in samples.as_array().unwrap() {
                let key = format!("{name}{}", sample[0]);
                assert!(series.insert(key.clone()), "{key} is in two files");
            }
        }
    }
    // Written atomically: only the files, never a temporary left beside them.
    let mut names: Vec<String> = std::fs::read_dir(&prom)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["shop-check.prom", "shop-export.prom", "shop-import.prom"]
    );
}

#[test]
fn version_completions_and_man_pages_come_from_the_flags() {
    let ddbx = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ddbx"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        c
    };
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let o = ddbx().arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&o.stdout);
    assert!(
        version.starts_with(&format!(
            "ddbx {} (commit {head} ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
    let dir = tempfile::tempdir().unwrap();
    for (shell, mark) in [
        ("bash", "complete -F _ddbx"),
        ("zsh", "#compdef ddbx"),
        ("fish", "complete -c ddbx"),
    ] {
        let o = ddbx().args(["completions", shell]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains(mark) && text.contains("read-ratio") && text.contains("metrics-file"),
            "{shell}"
        );
        std::fs::write(dir.path().join(shell), text.as_bytes()).unwrap();
    }
    // bash itself takes the script and registers the completion.
    let o = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source {} && complete -p ddbx",
                dir.path().join("bash").display()
            ),
        ])
        .output()
        .unwrap();
    let registered = String::from_utf8_lossy(&o.stdout);
    assert!(
        registered.contains("-F _ddbx") && registered.trim_end().ends_with(" ddbx"),
        "{o:?}"
    );
    let o = ddbx().arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ddbx 1"),
        "{page}"
    );
    assert!(
        page.contains("check") && page.contains("completions"),
        "the commands are listed"
    );
    let pages = dir.path().join("man");
    let o = ddbx()
        .args(["man", "--out-dir", s(&pages)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let export = std::fs::read_to_string(pages.join("ddbx-export.1")).unwrap();
    assert!(
        export.contains("A first export needs three flags") && export.contains("read\\-ratio"),
        "{export}"
    );
    assert!(pages.join("ddbx.1").exists() && pages.join("ddbx-check.1").exists());
}
