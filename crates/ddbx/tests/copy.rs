//! `ddbx copy` (issue 28): a run to another bucket with other credentials (streamed),
//! killed half-way and resumed, retained there; server-side within one identity; an
//! app's runs synced to a folder, only those the target lacks. Every copy verified
//! against the live table, and imported exactly.

use std::sync::atomic::Ordering;

use crate::object_lock::{lock_bucket, run_prefix, versions};
use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::{digests, json_stdout, wait_for, TestEnv};

const DR_KEY: &str = "AKIADRACCOUNT0000001";

fn export(env: &TestEnv, t: &str, to: &str, time: Option<&str>) -> String {
    let mut args = vec![
        "export",
        "--app",
        "cp",
        "--tables",
        t,
        "--to",
        to,
        "--file-items",
        "20",
        "--output",
        "json",
    ];
    if let Some(time) = time {
        args.extend(["--run-time", time]);
    }
    let o = env.run(&args);
    assert_eq!(o.status.code(), Some(0));
    json_stdout(&o)["runRoot"].as_str().unwrap().to_string()
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_with_other_credentials_killed_half_way_resumes_retained_and_imports_exactly() {
    let env = TestEnv::new("cpkill").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, None, 200).await;
    let source = env.bucket();
    let root = export(&env, &t, &format!("s3://{source}/prod"), None);
    let target = lock_bucket(&env, "dr");
    let aws_dir = env.dir.path().join(".aws");
    std::fs::create_dir_all(&aws_dir).unwrap();
    std::fs::write(
        aws_dir.join("credentials"),
        format!("[dr]\naws_access_key_id = {DR_KEY}\naws_secret_access_key = dr-secret\n"),
    )
    .unwrap();
    let to = format!("s3://{target}/dr");
    let args = [
        "copy",
        "--from",
        &root,
        "--to",
        &to,
        "--s3-profile",
        "dr",
        "--object-lock",
        "compliance",
        "--retain",
        "1",
        "--workers",
        "2",
        "--output",
        "json",
    ];
    // The copy hangs on its seventh PUT into the target (the lock, the copy's record and
    // four objects went before) and is killed there (SIGKILL: no cleanup, its lock left
    // behind).
    let stall = Box::leak(format!("{target}/dr/").into_boxed_str());
    let proxy = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_stall_puts_under: Some((stall, 6)),
            ..Faults::default()
        },
    )
    .await;
    let mut child = env
        .ddbx_with(&env.emulators.dynamodb, &proxy.url)
        .args(args)
        .spawn()
        .unwrap();
    wait_for(&mut child, "the copy to hang on a PUT", || {
        proxy.stats.s3_stalled.load(Ordering::SeqCst) > 6
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let keys = proxy.stats.access_keys.lock().unwrap().clone();
    assert!(keys.contains("test") && keys.contains(DR_KEY), "{keys:?}");
    let prefix = run_prefix(&root.replace(&format!("s3://{source}/prod"), &to), &target);
    let half: Vec<String> = env.s3_keys(&target, &prefix);
    assert!(!half.is_empty(), "a half copy is there");
    assert!(
        !half
            .iter()
            .any(|k| k.ends_with("BACKUP_COMPLETE_SUCCESS") || k.ends_with("restore-plan.json")),
        "no flag, no plan: {half:?}"
    );
    let o = env.run(&["list", "--to", &to]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("success"));

    // Run again: it takes over its own lock and continues.
    let o = env.run(&args);
    assert_eq!(o.status.code(), Some(0));
    let report = json_stdout(&o);
    let run = &report["runs"][0];
    assert_eq!(run["status"], "copied");
    assert_eq!(run["serverSide"], false, "other credentials: streamed");
    assert!(run["alreadyThere"].as_u64().unwrap() >= 3, "{run}");
    let data_files = env
        .s3_keys(&source, &run_prefix(&root, &source))
        .iter()
        .filter(|k| k.contains("/data/"))
        .count();
    assert!(data_files >= 10, "200 items, 20 a file");
    assert_eq!(run["filesChecked"], data_files as u64, "{run}");
    let copy = run["to"].as_str().unwrap().to_string();
    // Every object of the copy's backup retained; the copy's record gone.
    let current: Vec<_> = versions(&env, &target, &prefix)
        .into_iter()
        .filter(|v| v.latest && !v.marker)
        .collect();
    assert!(current.len() > 12);
    for v in &current {
        assert_eq!(v.mode.as_deref(), Some("COMPLIANCE"), "{}", v.key);
    }
    let o = env.run(&["list", "--to", &to]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("success") && text.contains(&format!("a copy of {root}")),
        "{text}"
    );

    // It verifies and imports like its source.
    let o = env.run(&["verify", "--from", &copy, "--deep"]);
    assert_eq!(o.status.code(), Some(0));
    env.ddb.delete_table().table_name(&t).send().await.unwrap();
    let o = env.run(&[
        "import",
        "--from",
        &copy,
        "--create-missing",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(digests(&env.scan_all(&t).await), digests(&written));
}

#[tokio::test]
async fn an_apps_runs_sync_to_a_folder_and_server_side_to_a_bucket() {
    let env = TestEnv::new("cpsync").await;
    let t = env.table("t");
    env.mixed_table(&t, None, 60).await;
    let source = env.bucket();
    let base = format!("s3://{source}/prod");
    let old = export(&env, &t, &base, Some("2021-01-01T00:00:00Z"));
    export(&env, &t, &base, Some("2022-01-01T00:00:00Z"));
    let dr = env.out();
    let dr = dr.to_str().unwrap();
    let sync = || {
        let o = env.run(&[
            "copy",
            "--app",
            "cp",
            "--from-base",
            &base,
            "--to",
            dr,
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0));
        json_stdout(&o)["runs"].as_array().unwrap().clone()
    };
    let first = sync();
    assert_eq!(first.len(), 2);
    assert!(first[0]["from"].as_str().unwrap() == old, "oldest first");
    assert!(first
        .iter()
        .all(|r| r["status"] == "copied" && r["serverSide"] == false));
    let newest = export(&env, &t, &base, None);
    let second = sync();
    assert_eq!(second.len(), 1, "only the run the folder lacks");
    assert_eq!(second[0]["from"].as_str().unwrap(), newest);
    assert!(sync().is_empty());
    let o = env.run(&[
        "import",
        "--to",
        dr,
        "--app",
        "cp",
        "--from",
        "latest",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(0));

    // Within one identity and region, S3 copies it (CopyObject).
    let other = lock_bucket(&env, "other");
    let o = env.run(&[
        "copy",
        "--from",
        &newest,
        "--to",
        &format!("s3://{other}/b"),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let run = &json_stdout(&o)["runs"][0];
    assert_eq!(run["serverSide"], true);
    let o = env.run(&["verify", "--from", run["to"].as_str().unwrap(), "--deep"]);
    assert_eq!(o.status.code(), Some(0));
}

/// Past CopyObject's 5 GiB, `ddbx copy` has S3 copy an object in parts (UploadPartCopy,
/// each a byte range of the source). The same path, taken at 12 MiB in parts of 5 MiB
/// against moto, into a bucket with Object Lock: three parts (the ETag says so), the same
/// bytes, retained as asked.
#[tokio::test]
async fn an_object_past_one_copys_limit_is_copied_in_parts_and_retained() {
    use ddbx_core::store::retention::{LockMode, ObjectLock};
    use ddbx_core::store::{S3Settings, Storage};
    let env = TestEnv::new("cpparts").await;
    let (source, target) = (env.bucket(), lock_bucket(&env, "parts"));
    let size = 12 * 1024 * 1024 + 17;
    let put = env.boto3(
        "s3",
        "import hashlib\nb = bytes((i * 31) % 251 for i in range(int(sys.argv[4])))\nc.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=b)\nr = hashlib.md5(b).hexdigest()",
        &[&source, "run/data/big.json.gz", &size.to_string()],
    );
    let settings = S3Settings {
        endpoint_url: Some(env.emulators.s3.clone()),
        ..S3Settings::default()
    };
    let keys = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test");
    let storage = Storage::new(
        settings,
        "us-east-1",
        Some(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            keys,
        )),
    );
    let from = storage.open(&format!("s3://{source}/run")).unwrap();
    let lock = ObjectLock {
        mode: LockMode::Compliance,
        days: 1,
        retain_until: chrono::Utc::now() + chrono::Duration::days(1),
    };
    let to = storage
        .open(&format!("s3://{target}/copy"))
        .unwrap()
        .retained(&lock)
        .unwrap();
    ddbx_core::testing::copy_server_side_in_parts(
        &from,
        &to,
        "data/big.json.gz",
        size,
        5 * 1024 * 1024,
    )
    .await
    .unwrap();
    let got = env.boto3(
        "s3",
        "import hashlib\nh = c.head_object(Bucket=sys.argv[2], Key=sys.argv[3])\nb = c.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read()\nr = [h['ETag'], h.get('ObjectLockMode'), len(b), hashlib.md5(b).hexdigest()]",
        &[&target, "copy/data/big.json.gz"],
    );
    assert!(got[0].as_str().unwrap().ends_with("-3\""), "{got}");
    assert_eq!(got[1], "COMPLIANCE");
    assert_eq!(got[2], size);
    assert_eq!(got[3], put);
}
