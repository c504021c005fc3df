//! The hostile inputs of the probe of the local engine (`docs/research/probe.md`) as one table
//! of cases, each run on a local folder and on S3: a run exported once, copied for each
//! case, tampered with as an attacker or a careless operator would (checksums kept right,
//! so only the tampered thing is under test), imported, and the outcome checked: the exit
//! code, the message (naming the file and line), the tampered table (never created when
//! its export is bad), the untouched table beside it (imported whole), the flags, and
//! `verify --deep` reading the same export.

use std::collections::HashSet;
use std::io::Write as _;

use crate::support::runstore::{Export, Store};
use crate::support::{items, TestEnv};

/// What a case leaves in the tampered table's target.
#[derive(Debug, Clone, Copy, PartialEq)]
enum After {
    /// It was never created: its export was checked first.
    NotCreated,
    /// It holds this many items.
    Items(usize),
}

/// One hostile input.
struct Case {
    name: &'static str,
    /// Tamper with the copied run (`Export` of the table under test; the run's path).
    tamper: fn(&Export, &Store, &str),
    /// More import flags.
    extra: &'static [&'static str],
    /// The import's exit code.
    code: i32,
    /// What its message (or, for a success, a note) says.
    says: &'static str,
    table: After,
    /// The whole run stops (a bad plan): nothing at all is imported.
    whole_run: bool,
    /// `verify --deep` of the export must fail saying `says` too.
    verify: bool,
    /// Too large to send to the S3 emulator for every run of the suite.
    local_only: bool,
}

const SRC: &str = "src";
const OTHER: &str = "other";
const RUN: &str = "us-east-1/host/2026/11/24/03_00.00";

fn item_line(pk: &str, rest: &str) -> String {
    format!(r#"{{"Item":{{"pk":{{"S":"{pk}"}}{rest}}}}}"#)
}

/// The table under test's export made an Ion one (its summary and its restore plan say
/// so) whose one data file is `text`.
fn ion_file(e: &Export, s: &Store, run: &str, text: &str) {
    let mut summary = e.summary();
    summary["outputFormat"] = "ION".into();
    e.set_summary(&summary);
    let path = format!("{run}/restore-plan.json");
    let mut plan: serde_json::Value = serde_json::from_slice(&s.get(&path).unwrap()).unwrap();
    for step in plan["tables"].as_array_mut().unwrap() {
        if step["sourceTable"].as_str().unwrap().ends_with(SRC) {
            step["format"] = "ion".into();
        }
    }
    s.put(&path, plan.to_string().as_bytes());
    e.set_file(0, text.as_bytes(), 1)
}

/// A value wrapped in `n` maps.
fn wrapped(n: usize) -> String {
    format!(
        r#"{}{{"S":"x"}}{}"#,
        r#"{"M":{"b":"#.repeat(n),
        "}}".repeat(n)
    )
}

fn cases() -> Vec<Case> {
    let case = |name, tamper, code, says, table| Case {
        name,
        tamper,
        extra: &[],
        code,
        says,
        table,
        whole_run: false,
        verify: code == 4,
        local_only: false,
    };
    use After::*;
    vec![
        case(
            "F6 a key of another type than the table's",
            |e, _, _| e.set_line(1, 30, r#"{"Item":{"pk":{"N":"30"},"v":{"S":"x"}}}"#),
            4,
            "is N, but the table's partition key is S",
            NotCreated,
        ),
        case(
            "F6 an item without its key",
            |e, _, _| e.set_line(1, 30, r#"{"Item":{"v":{"S":"x"}}}"#),
            4,
            "is missing: every item needs the table's partition key",
            NotCreated,
        ),
        case(
            "F7 nested 32 levels (DynamoDB takes 31 maps)",
            |e, _, _| {
                e.set_line(
                    0,
                    3,
                    &item_line("deep", &format!(r#","d":{}"#, wrapped(32))),
                )
            },
            4,
            "nested deeper than DynamoDB's 32 levels",
            NotCreated,
        ),
        case(
            "F7 an empty attribute name",
            |e, _, _| e.set_line(0, 3, &item_line("x", r#","":{"S":"x"}"#)),
            4,
            "a name of 0 bytes",
            NotCreated,
        ),
        case(
            "F7 a 70,000-byte attribute name",
            |e, _, _| {
                let name = "n".repeat(70_000);
                e.set_line(0, 3, &item_line("x", &format!(r#","{name}":{{"S":"x"}}"#)))
            },
            4,
            "a name of 70000 bytes",
            NotCreated,
        ),
        case(
            "F9 an attribute given twice in one item",
            |e, _, _| e.set_line(0, 3, &item_line("x", r#","a":{"S":"x"},"a":{"S":"y"}"#)),
            4,
            "is given twice",
            NotCreated,
        ),
        case(
            "F8 a manifest listing one file twice",
            |e, _, _| {
                let mut m = e.manifest();
                m.push(m[0].clone());
                e.set_manifest(&m);
            },
            4,
            "lists the data file",
            NotCreated,
        ),
        case(
            "F12 more items than the manifest lists",
            |e, _, _| {
                let mut m = e.manifest();
                m[0]["itemCount"] = 49.into();
                e.set_manifest(&m);
            },
            4,
            "more items than the 49 its manifest lists",
            NotCreated,
        ),
        case(
            "F12 a file of blank lines",
            |e, _, _| e.set_file(0, &vec![b'\n'; 2 * 1024 * 1024], 1),
            4,
            "bytes of blank lines",
            NotCreated,
        ),
        case(
            "F12 a line padded far past its item",
            |e, _, _| {
                let padded = format!("{}{}", " ".repeat(200_000), item_line("pad", ""));
                e.set_line(0, 3, &padded)
            },
            4,
            "padded far past",
            NotCreated,
        ),
        case(
            "F14 a number of four million digits",
            |e, _, _| {
                let n = "7".repeat(4_000_000);
                e.set_line(0, 3, &item_line("x", &format!(r#","n":{{"N":"{n}"}}"#)))
            },
            4,
            "invalid number",
            NotCreated,
        ),
        Case {
            verify: false,
            ..case(
                "F9 a key given twice across files (reported, the table keeps the last)",
                |e, _, _| {
                    let first = e.lines(0)[0].clone();
                    e.set_line(1, 1, &first)
                },
                0,
                "have the key of an earlier item",
                Items(99),
            )
        },
        case(
            "a malformed line",
            |e, _, _| e.set_line(0, 3, r#"{"Item":{"pk":"#),
            4,
            "line 3: not valid JSON",
            NotCreated,
        ),
        case(
            "an unknown type key",
            |e, _, _| e.set_line(0, 3, &item_line("x", r#","v":{"Q":"1"}"#)),
            4,
            "unknown type key",
            NotCreated,
        ),
        case(
            "an empty set",
            |e, _, _| e.set_line(0, 3, &item_line("x", r#","v":{"SS":[]}"#)),
            4,
            "empty set",
            NotCreated,
        ),
        case(
            "a number of 39 digits",
            |e, _, _| {
                e.set_line(
                    0,
                    3,
                    &item_line("x", &format!(r#","v":{{"N":"{}"}}"#, "1".repeat(39))),
                )
            },
            4,
            "invalid number",
            NotCreated,
        ),
        case(
            "an item over 400 KB",
            |e, _, _| {
                let big = "y".repeat(401 * 1024);
                e.set_line(0, 3, &item_line("big", &format!(r#","x":{{"S":"{big}"}}"#)))
            },
            4,
            "over DynamoDB's limit",
            NotCreated,
        ),
        case(
            "F20 a byte order mark",
            |e, _, _| {
                let line = format!("\u{feff}{}", e.lines(0)[0]);
                e.set_line(0, 1, &line)
            },
            4,
            "byte order mark",
            NotCreated,
        ),
        case(
            "F20 a lone surrogate",
            |e, _, _| e.set_line(0, 3, &item_line("x", r#","v":{"S":"\ud800"}"#)),
            4,
            "lone surrogate",
            NotCreated,
        ),
        case(
            "a change record in a full export",
            |e, _, _| {
                e.set_line(
                    0,
                    3,
                    r#"{"Keys":{"pk":{"S":"x"}},"NewImage":{"pk":{"S":"x"}}}"#,
                )
            },
            4,
            "not an item",
            NotCreated,
        ),
        case(
            "a data file whose MD5 is not the manifest's",
            |e, _, _| {
                let mut m = e.manifest();
                m[0]["md5Checksum"] = crate::support::runstore::md5_b64(b"else").into();
                e.set_manifest(&m);
            },
            4,
            "does not match the manifest's",
            NotCreated,
        ),
        case(
            "a data file missing",
            |e, s, _| s.delete(&e.file(1)),
            4,
            "data file listed in the manifest is missing",
            NotCreated,
        ),
        case(
            "a manifest that does not match its checksum",
            |e, s, _| {
                s.put(
                    &format!("{}/manifest-files.md5", e.dir),
                    b"AAAAAAAAAAAAAAAAAAAAAA==",
                )
            },
            4,
            "does not match its checksum",
            NotCreated,
        ),
        case(
            "a manifest that is not one",
            |e, _, _| e.set_manifest_text(b"{\"itemCount\":\n"),
            4,
            "not a manifest-files entry",
            NotCreated,
        ),
        case(
            "a truncated gzip file",
            |e, _, _| {
                let text: String = e.lines(0).iter().map(|l| format!("{l}\n")).collect();
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(text.as_bytes()).unwrap();
                let gz = gz.finish().unwrap();
                e.set_file(0, &gz[..gz.len() / 2], 50)
            },
            4,
            "cannot read",
            NotCreated,
        ),
        Case {
            verify: false,
            ..case(
                "a manifest key pointing outside the export reads inside it",
                |e, _, _| {
                    let mut m = e.manifest();
                    let key = m[0]["dataFileS3Key"].as_str().unwrap().to_string();
                    let name = key.rsplit('/').next().unwrap();
                    m[0]["dataFileS3Key"] = format!("../../other-app/../{name}").into();
                    e.set_manifest(&m);
                },
                0,
                "",
                Items(100),
            )
        },
        Case {
            whole_run: true,
            verify: false,
            ..case(
                "a restore plan target escaping the layout",
                |_, s, run| {
                    let path = format!("{run}/restore-plan.json");
                    let mut plan: serde_json::Value =
                        serde_json::from_slice(&s.get(&path).unwrap()).unwrap();
                    plan["tables"][0]["targetTable"] = "../../etc".into();
                    s.put(&path, plan.to_string().as_bytes());
                },
                1,
                "is not a DynamoDB table name",
                NotCreated,
            )
        },
        Case {
            whole_run: true,
            verify: false,
            ..case(
                "F11 a restore plan writing at a ratio of 0",
                |_, s, run| {
                    let path = format!("{run}/restore-plan.json");
                    let mut plan: serde_json::Value =
                        serde_json::from_slice(&s.get(&path).unwrap()).unwrap();
                    plan["tables"][0]["writeRatio"] = 0.into();
                    s.put(&path, plan.to_string().as_bytes());
                },
                1,
                "writeRatio",
                NotCreated,
            )
        },
        Case {
            whole_run: true,
            verify: true,
            local_only: true,
            ..case(
                "F13 a restore plan padded past what any plan holds",
                |_, s, run| {
                    let path = format!("{run}/restore-plan.json");
                    let mut plan = s.get(&path).unwrap();
                    plan.extend(std::iter::repeat_n(b' ', 65 * 1024 * 1024));
                    s.put(&path, &plan);
                },
                4,
                "more than any file of its kind holds",
                NotCreated,
            )
        },
        case(
            "F5 an Ion item nested 4,000 levels",
            |e, s, run| {
                let deep = format!(
                    "$ion_1_0 {{Item:{{pk:\"x\",d:{}1.{}}}}}\n",
                    "{a:".repeat(4000),
                    "}".repeat(4000)
                );
                ion_file(e, s, run, &deep)
            },
            4,
            "nested deeper than 64 levels",
            NotCreated,
        ),
        case(
            // ion-rs 1.2 panics on it unchecked (found by the fuzz target item_decoders).
            "F5 an Ion item holding a symbol ID too large for its reader",
            |e, s, run| {
                let line = "$ion_1_0 {Item:{pk:\"x\",d:$123456789012345678901}}\n";
                ion_file(e, s, run, line)
            },
            4,
            "a symbol ID of 21 digits",
            NotCreated,
        ),
        Case {
            extra: &["--format", "ion"],
            verify: false,
            // The flag reads both tables as Ion: neither is imported.
            whole_run: true,
            ..case(
                "F6 DynamoDB JSON read as Ion (its keys become maps)",
                |_, _, _| {},
                4,
                // (Its items' maps read as Ion nest twice as deep: refused at line 1.)
                "line 1: attribute",
                NotCreated,
            )
        },
    ]
}

/// Every case on `store`: a run exported once under it, a copy per case.
async fn run_cases(env: &TestEnv, store: &Store) {
    let (src, other) = (env.table(SRC), env.table(OTHER));
    env.create_table(&src, false, Some((100, 100))).await;
    env.put_items(
        &src,
        &(0..100).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
    )
    .await;
    env.create_table(&other, false, Some((100, 100))).await;
    env.put_items(
        &other,
        &(0..10).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
    )
    .await;
    let o = env.run(&[
        "export",
        "--app",
        "host",
        "--tables",
        &env.prefix,
        "--to",
        &store.base_url(),
        "--run-time",
        "2026-11-24T03:00:00Z",
        "--file-items",
        "50",
        "--compression",
        "none",
        "--segments",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "the export to tamper with");
    let mut failures = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        if case.local_only && matches!(store, Store::S3 { .. }) {
            continue;
        }
        if let Err(why) = run_case(env, store, i, &case).await {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "cases that failed:\n{}",
        failures.join("\n")
    );
}

/// One case; `Err` says what did not hold.
async fn run_case(env: &TestEnv, store: &Store, i: usize, case: &Case) -> Result<(), String> {
    let (src, other) = (env.table(SRC), env.table(OTHER));
    let run = format!("us-east-1/host/2026/11/24/04_{i:02}.00");
    store.copy_tree(RUN, &run);
    (case.tamper)(&Export::of(store, &run, &src), store, &run);
    let (target, other_target) = (env.table(&format!("c{i}")), env.table(&format!("o{i}")));
    let mut args = vec![
        "import".to_string(),
        "--from".into(),
        store.url(&run),
        "--table-map".into(),
        format!("{src}={target}"),
        "--table-map".into(),
        format!("{other}={other_target}"),
        "--create-missing".into(),
        "--output".into(),
        "json".into(),
    ];
    args.extend(case.extra.iter().map(|s| s.to_string()));
    let o = env.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let code = o.status.code().unwrap_or(-1);
    if code != case.code {
        return Err(format!("exit {code}, expected {}", case.code));
    }
    let said = said(&o);
    if !said.contains(case.says) {
        return Err(format!("does not say {:?}: {said}", case.says));
    }
    let exists = env.table_exists(&target).await;
    match case.table {
        After::NotCreated if exists => return Err(format!("{target} was created")),
        After::Items(n) if !exists || env.scan_all(&target).await.len() != n => {
            return Err(format!("{target} does not hold {n} items"));
        }
        _ => {}
    }
    let other_ok =
        env.table_exists(&other_target).await && env.scan_all(&other_target).await.len() == 10;
    if other_ok == case.whole_run {
        return Err(format!(
            "the untouched table {}",
            if case.whole_run {
                "was imported"
            } else {
                "was not imported whole"
            }
        ));
    }
    check_flags(store, &run, case)?;
    if case.verify {
        let o = env.run(&[
            "verify",
            "--deep",
            "--from",
            &store.url(&run),
            "--tables",
            &src,
        ]);
        if o.status.code() == Some(0) || !said_text(&o).contains(case.says) {
            return Err(format!(
                "verify: exit {:?}, {}",
                o.status.code(),
                said_text(&o)
            ));
        }
    }
    Ok(())
}

/// The flags the import left: its final flag, small (data values cut), or none for a
/// command line or plan refused before it started.
fn check_flags(store: &Store, run: &str, case: &Case) -> Result<(), String> {
    let flag = |name: &str| store.get(&format!("{run}/{name}"));
    match case.code {
        0 if flag("RESTORE_COMPLETE_SUCCESS").is_none() => {
            Err("no RESTORE_COMPLETE_SUCCESS".into())
        }
        4 if !case.whole_run => match flag("RESTORE_COMPLETE_FAILED") {
            None => Err("no RESTORE_COMPLETE_FAILED".into()),
            Some(f) if f.len() > 32 * 1024 => Err(format!("a flag of {} bytes", f.len())),
            Some(_) => Ok(()),
        },
        1 if flag("RESTORE_RUNNING").is_some() || flag("RESTORE_COMPLETE_FAILED").is_some() => {
            Err("a refused command left flags".into())
        }
        _ if flag("RESTORE_RUNNING").is_some() => Err("RESTORE_RUNNING left behind".into()),
        _ => Ok(()),
    }
}

/// What an import said: its errors, its tables' notes, or (refused) its stderr.
fn said(o: &std::process::Output) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
        return String::from_utf8_lossy(&o.stderr).to_string();
    };
    let mut lines: Vec<String> = v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    for r in v["tableReports"].as_array().into_iter().flatten() {
        lines.extend(r["note"].as_str().map(str::to_string));
    }
    lines.join("\n")
}

fn said_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_inputs_on_a_local_folder_fail_alone_and_named() {
    let env = TestEnv::new("hostl").await;
    let store = Store::Local(env.out());
    run_cases(&env, &store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_inputs_on_s3_fail_alone_and_named() {
    let env = TestEnv::new("hosts").await;
    let store = Store::s3(&env.emulators.s3, &env.bucket());
    run_cases(&env, &store).await;
}

/// Every finding of the probe about hostile files has its case, each named once.
#[test]
fn the_cases_cover_every_probe_finding_about_files() {
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    for f in [
        "F5", "F6", "F7", "F8", "F9", "F11", "F12", "F13", "F14", "F20",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(&format!("{f} "))),
            "no case for {f}"
        );
    }
    let unique: HashSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "case names are unique");
}

/// The careless settings of the probe: refused before anything starts, whatever the engine.
const CARELESS: &[&[&str]] = &[
    &["--segments", "0"],
    &["--max-read-units", "0"],
    &["--read-ratio", "NaN"],
    &["--stale-lock-minutes", "0"],
    &["--run-time", "2062-11-30T03:00:00Z"],
];

/// On the EMR stand-in: no cluster is created for a careless setting, nor for an import
/// whose manifest lists a file twice (the table fails before any step).
#[tokio::test(flavor = "multi_thread")]
async fn careless_settings_and_bad_manifests_start_no_emr_cluster() {
    let emr = crate::emr::Emr::new("hemr", crate::support::emr_service::Script::default()).await;
    let env = &emr.env;
    let t = env.table(SRC);
    env.create_table(&t, false, Some((10, 10))).await;
    env.put_items(
        &t,
        &(0..5).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
    )
    .await;
    let to = format!("s3://{}/ddb", emr.bucket);
    for extra in CARELESS {
        let mut args = vec!["export", "--app", "a", "--tables", &env.prefix, "--to", &to];
        args.extend_from_slice(&["--cluster-name", "careless"]);
        args.extend_from_slice(extra);
        assert_eq!(emr.ddbx(&args).status.code(), Some(1), "{extra:?}");
    }
    assert_eq!(
        emr.service.create_calls(),
        0,
        "no cluster for a refused command"
    );
    // A run exported by the local engine, its manifest then listing one file twice.
    let o = env.run(&[
        "export",
        "--app",
        "m",
        "--tables",
        &env.prefix,
        "--to",
        &to,
        "--run-time",
        "2026-11-24T03:00:00Z",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let store = Store::s3(&env.emulators.s3, &emr.bucket);
    let run = "ddb/us-east-1/m/2026/11/24/03_00.00";
    let e = Export::of(&store, run, &t);
    let mut m = e.manifest();
    m.push(m[0].clone());
    e.set_manifest(&m);
    let target = env.table("c");
    let o = emr.ddbx(&[
        "import",
        "--from",
        &store.url(run),
        "--table-map",
        &format!("{t}={target}"),
        "--create-missing",
        "--cluster-name",
        "badmanifest",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(said(&o).contains("lists the data file"), "{}", said(&o));
    assert_eq!(
        emr.service.create_calls(),
        0,
        "no cluster for a table that failed first"
    );
    assert!(!env.table_exists(&target).await);
}

/// On fakecloud: no export is started for a careless setting.
#[tokio::test(flavor = "multi_thread")]
async fn careless_settings_start_no_native_export() {
    let n = crate::native::Native::new("hnat").await;
    let _ = n.table("t", crate::native::Kind::OnDemand, true).await;
    let to = format!("s3://{}/b", n.bucket);
    let prefix = format!("{}*", n.env.prefix);
    let mut careless: Vec<&[&str]> = CARELESS.to_vec();
    careless.push(&["--poll-seconds", "0"]);
    careless.push(&["--max-jobs", "0"]);
    for extra in careless {
        let mut args = vec![
            "export", "--engine", "native", "--app", "a", "--tables", &prefix, "--to", &to,
        ];
        args.extend_from_slice(extra);
        assert_eq!(n.ddbx(&args).status.code(), Some(1), "{extra:?}");
    }
    let exports = n.fc.ddb.list_exports().send().await.unwrap();
    assert!(
        exports.export_summaries().is_empty(),
        "no export was started"
    );
    assert!(
        n.fc.keys(&n.env, &n.bucket, "").is_empty(),
        "nothing was written"
    );
}
