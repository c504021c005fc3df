//! Backups that survive the writer's own keys (issue 28): exports retained with S3 Object
//! Lock on moto (which enforces it: a retained version cannot be deleted), prune keeping
//! what is retained, and recovery past the delete markers the writer's credentials can
//! still place. Every check of what S3 holds is made with boto3.

use std::collections::BTreeMap;

use crate::support::{items, json_stdout, TestEnv};

/// A bucket with Object Lock enabled (and so versioning), created with boto3.
pub fn lock_bucket(env: &TestEnv, suffix: &str) -> String {
    let bucket = format!(
        "{}-{suffix}",
        env.prefix
            .to_lowercase()
            .replace('_', "-")
            .trim_end_matches('-')
    );
    env.boto3(
        "s3",
        "c.create_bucket(Bucket=sys.argv[2], ObjectLockEnabledForBucket=True)\nr = 1",
        &[&bucket],
    );
    bucket
}

/// One entry of ListObjectVersions under a prefix, with its retention (HeadObject).
#[derive(Debug, Clone)]
pub struct Version {
    pub key: String,
    pub latest: bool,
    pub marker: bool,
    pub mode: Option<String>,
    pub until: Option<String>,
}

/// Every version and delete marker under `prefix` of `bucket`, as boto3 sees them.
pub fn versions(env: &TestEnv, bucket: &str, prefix: &str) -> Vec<Version> {
    let v = env.boto3(
        "s3",
        "r = []\n\
         for page in c.get_paginator('list_object_versions').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]):\n\
         \x20   for v in page.get('Versions', []):\n\
         \x20       h = c.head_object(Bucket=sys.argv[2], Key=v['Key'], VersionId=v['VersionId'])\n\
         \x20       u = h.get('ObjectLockRetainUntilDate')\n\
         \x20       r.append([v['Key'], v['VersionId'], v['IsLatest'], False, h.get('ObjectLockMode'), u.strftime('%Y-%m-%dT%H:%M:%SZ') if u else None])\n\
         \x20   for m in page.get('DeleteMarkers', []):\n\
         \x20       r.append([m['Key'], m['VersionId'], m['IsLatest'], True, None, None])",
        &[bucket, prefix],
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| Version {
            key: e[0].as_str().unwrap().to_string(),
            latest: e[2].as_bool().unwrap(),
            marker: e[3].as_bool().unwrap(),
            mode: e[4].as_str().map(str::to_string),
            until: e[5].as_str().map(str::to_string),
        })
        .collect()
}

/// Delete every current object under `prefix` with a plain DeleteObjects (no versions),
/// as ransomware holding the writer's keys would: returns how many, and what S3 refused.
pub fn delete_current(env: &TestEnv, bucket: &str, prefix: &str) -> (u64, Vec<String>) {
    let v = env.boto3(
        "s3",
        "keys = [o['Key'] for p in c.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]) for o in p.get('Contents', [])]\n\
         out = c.delete_objects(Bucket=sys.argv[2], Delete={'Objects': [{'Key': k} for k in keys]}) if keys else {}\n\
         r = [len(keys), [e['Key'] + ': ' + e['Code'] for e in out.get('Errors', [])]]",
        &[bucket, prefix],
    );
    (
        v[0].as_u64().unwrap(),
        v[1].as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect(),
    )
}

/// Try to delete each data version under `prefix` by its version id: what S3 answered
/// for each (the error code, or `deleted`).
pub fn delete_versions(env: &TestEnv, bucket: &str, prefix: &str) -> BTreeMap<String, String> {
    let v = env.boto3(
        "s3",
        "r = {}\n\
         for p in c.get_paginator('list_object_versions').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]):\n\
         \x20   for v in p.get('Versions', []):\n\
         \x20       try:\n\
         \x20           c.delete_object(Bucket=sys.argv[2], Key=v['Key'], VersionId=v['VersionId'])\n\
         \x20           r[v['Key']] = 'deleted'\n\
         \x20       except c.exceptions.ClientError as e:\n\
         \x20           r[v['Key']] = e.response['Error']['Code']",
        &[bucket, prefix],
    );
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// Whether a key (relative to the run root) is one of the run's working files, which must
/// stay replaceable (never retained).
fn working(rel: &str) -> bool {
    rel == "BACKUP_RUNNING" || rel.starts_with("_export/") || rel.starts_with("_capacity/")
}

/// A run root's key prefix in its bucket (`s3://bucket/p/...` → `p/.../`).
pub fn run_prefix(root: &str, bucket: &str) -> String {
    format!("{}/", root.trim_start_matches(&format!("s3://{bucket}/")))
}

#[tokio::test]
async fn a_retained_export_locks_every_object_of_the_backup_and_no_working_file() {
    let env = TestEnv::new("olock").await;
    let t = env.table("t");
    env.mixed_table(&t, None, 60).await;
    // A second table whose one data file is written in parts (9 MB, 8 MiB a part).
    let big = env.table("big");
    env.create_table(&big, false, None).await;
    let blobs: Vec<_> = (0..90).map(|i| items::incompressible(i, 100_000)).collect();
    env.put_items(&big, &blobs).await;
    let plain = env.bucket();
    let bucket = lock_bucket(&env, "lock");
    let export = |to: &str| {
        env.run(&[
            "export",
            "--app",
            "olapp",
            "--tables",
            &env.prefix,
            "--to",
            to,
            "--object-lock",
            "compliance",
            "--retain",
            "3",
            "--segments",
            "1",
            "--compression",
            "none",
            "--output",
            "json",
        ])
    };

    // A bucket without Object Lock is refused, named, with the fix, before any write.
    let o = export(&format!("s3://{plain}/b"));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("s3://{plain}: Object Lock is not enabled"))
            && err.contains("put-object-lock-configuration"),
        "{err}"
    );
    assert!(env.s3_keys(&plain, "b/").is_empty(), "nothing written");

    let o = export(&format!("s3://{bucket}/b"));
    assert_eq!(o.status.code(), Some(0));
    let summary = json_stdout(&o);
    let root = summary["runRoot"].as_str().unwrap().to_string();
    let prefix = run_prefix(&root, &bucket);
    let (_, plan) = env.s3_object(&bucket, &format!("{prefix}export-plan.json"));
    let plan: serde_json::Value = serde_json::from_slice(&plan).unwrap();
    assert_eq!(plan["objectLock"]["mode"], "COMPLIANCE");
    assert_eq!(plan["objectLock"]["days"], 3);
    let until = plan["objectLock"]["retainUntil"].as_str().unwrap();
    let until: chrono::DateTime<chrono::Utc> = until.parse().unwrap();
    let ahead = until - chrono::Utc::now();
    assert!(
        ahead > chrono::Duration::days(3) - chrono::Duration::minutes(5)
            && ahead <= chrono::Duration::days(3),
        "{until}"
    );
    let until = until.format("%Y-%m-%dT%H:%M:%SZ").to_string();

    let all = versions(&env, &bucket, &prefix);
    let current: Vec<&crate::object_lock::Version> =
        all.iter().filter(|v| v.latest && !v.marker).collect();
    let (mut retained, mut data_files) = (0, 0);
    for v in &current {
        let rel = &v.key[prefix.len()..];
        if working(rel) {
            assert_eq!(v.mode, None, "{rel} is a working file: never retained");
            continue;
        }
        assert_eq!(
            (v.mode.as_deref(), v.until.as_deref()),
            (Some("COMPLIANCE"), Some(until.as_str())),
            "{rel}"
        );
        retained += 1;
        data_files += usize::from(rel.contains("/data/"));
    }
    for needed in [
        "BACKUP_COMPLETE_SUCCESS",
        "export-plan.json",
        "restore-plan.json",
        "manifest-files.json",
        "manifest-files.md5",
        "manifest-summary.md5",
        "table.json",
    ] {
        assert!(
            current
                .iter()
                .any(|v| v.key.ends_with(needed) && v.mode.is_some()),
            "{needed} retained"
        );
    }
    // One a table: the big one's 9 MB went up in parts (8 MiB each), retained too.
    assert_eq!(data_files, 2);
    eprintln!("{retained} objects retained, {data_files} data files");
    // The lock above the run root was removed (a delete marker): it stayed replaceable.
    let app = prefix.trim_end_matches('/').rsplitn(5, '/').last().unwrap();
    assert!(
        versions(&env, &bucket, &format!("{app}/_LOCK"))
            .iter()
            .all(|v| v.mode.is_none()),
        "the lock is not retained"
    );
    // moto enforces it: no version of the backup can be deleted, by anyone.
    let refused = delete_versions(&env, &bucket, &format!("{prefix}{t}/"));
    assert!(!refused.is_empty());
    assert!(refused.values().all(|c| c == "AccessDenied"), "{refused:?}");

    // ddbx list says so; the copy imports exactly.
    let o = env.run(&["list", "--to", &format!("s3://{bucket}/b")]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("retained until") && text.contains("Object Lock COMPLIANCE, 3 days"),
        "{text}"
    );
    let o = env.run(&["verify", "--from", &root, "--deep"]);
    assert_eq!(o.status.code(), Some(0));
}

#[tokio::test]
async fn prune_keeps_what_is_retained_and_deletes_the_rest_version_by_version() {
    let env = TestEnv::new("olprune").await;
    let t = env.table("t");
    env.mixed_table(&t, None, 20).await;
    let bucket = lock_bucket(&env, "lock");
    let base = format!("s3://{bucket}/b");
    let export = |time: &str, lock: &[&str]| {
        let mut args = vec![
            "export", "--app", "pr", "--tables", &t, "--to", &base, "--output", "json",
        ];
        if !time.is_empty() {
            args.extend(["--run-time", time]);
        }
        args.extend(lock);
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(0));
        run_prefix(json_stdout(&o)["runRoot"].as_str().unwrap(), &bucket)
    };
    // Oldest first: retained by its own flag; plain; plain but one object retained later
    // (as a bucket's default retention or an operator would); the newest.
    let retained = export(
        "2020-01-01T00:00:00Z",
        &["--object-lock", "governance", "--retain", "2"],
    );
    let plain = export("2021-01-01T00:00:00Z", &[]);
    let later = export("2022-01-01T00:00:00Z", &[]);
    export("", &[]);
    env.boto3(
        "s3",
        "import datetime\n\
         c.put_object_retention(Bucket=sys.argv[2], Key=sys.argv[3], Retention={'Mode': 'GOVERNANCE', 'RetainUntilDate': datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)})\n\
         r = 1",
        &[&bucket, &format!("{later}restore-plan.json")],
    );
    let before = |p: &str| versions(&env, &bucket, p).len();
    let (retained_n, later_n) = (before(&retained), before(&later));
    assert!(before(&plain) > 5);

    let prune = |dry: bool| {
        let mut args = vec!["prune", "--to", &base, "--app", "pr", "--keep-last", "1"];
        if dry {
            args.push("--dry-run");
        }
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(0), "no failure half-way");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    for dry in [true, false] {
        let said = prune(dry);
        let line = |p: &str| {
            said.lines()
                .find(|l| l.contains(p.trim_end_matches('/')))
                .unwrap_or_else(|| panic!("{p} in {said}"))
                .to_string()
        };
        let r = line(&retained);
        assert!(
            r.starts_with("keep") && r.contains("retained until") && r.contains("GOVERNANCE"),
            "{r}"
        );
        let l = line(&later);
        assert!(
            l.starts_with("keep")
                && l.contains("retained until")
                && l.contains("restore-plan.json"),
            "{l}"
        );
        let p = line(&plain);
        assert!(
            p.starts_with(if dry { "would delete" } else { "deleted" }),
            "{p}"
        );
        if dry {
            assert!(before(&plain) > 5, "a dry run deletes nothing");
        }
    }
    // The plain run went whole, every version and marker (no bytes left behind markers);
    // the retained ones are untouched.
    assert_eq!(before(&plain), 0);
    assert_eq!((before(&retained), before(&later)), (retained_n, later_n));
    let o = env.run(&["list", "--to", &base, "--app", "pr"]);
    let listed = String::from_utf8_lossy(&o.stdout);
    assert_eq!(listed.matches("success").count(), 3, "{listed}");
}

#[tokio::test]
async fn a_retained_run_deleted_with_the_writers_keys_is_listed_verified_and_restored() {
    let env = TestEnv::new("olrec").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, None, 120).await;
    let bucket = lock_bucket(&env, "lock");
    let base = format!("s3://{bucket}/b");
    let o = env.run(&[
        "export",
        "--app",
        "rec",
        "--tables",
        &t,
        "--to",
        &base,
        "--object-lock",
        "compliance",
        "--retain",
        "1",
        "--file-items",
        "30",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let root = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    let prefix = run_prefix(&root, &bucket);

    // The ransomware: every current object deleted with the credentials that wrote them
    // (S3 takes it: a delete without a version places a marker) and an attempt at the
    // versions themselves (refused: they are retained).
    let (n, refused) = delete_current(&env, &bucket, &prefix);
    assert!(n > 8 && refused.is_empty(), "{n} deleted, {refused:?}");
    let destroyed = delete_versions(&env, &bucket, &prefix);
    assert!(
        destroyed
            .iter()
            .all(|(k, c)| (c == "AccessDenied") != working(&k[prefix.len()..])),
        "{destroyed:?}"
    );
    assert!(
        env.s3_keys(&bucket, &prefix).is_empty(),
        "nothing current is left"
    );
    let versions_before = versions(&env, &bucket, &prefix).len();

    // Gone from the listing and unreadable as it is...
    let o = env.run(&["list", "--to", &base, "--output", "json"]);
    let now = json_stdout(&o);
    assert!(
        now.as_array()
            .unwrap()
            .iter()
            .all(|r| r["backup"]["status"] != "success"),
        "{now}"
    );
    let o = env.run(&["verify", "--from", &root]);
    assert_ne!(o.status.code(), Some(0));
    // ...but shown past the markers, with what was deleted.
    let o = env.run(&["list", "--to", &base, "--include-deleted"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&root) && text.contains("success") && text.contains("DELETED: "),
        "{text}"
    );
    let o = env.run(&[
        "list",
        "--to",
        &base,
        "--include-deleted",
        "--output",
        "json",
    ]);
    let listed = json_stdout(&o);
    let deleted = &listed[0]["deleted"];
    assert!(
        deleted["objects"].as_u64().unwrap() >= 8 && deleted["objects"] == deleted["of"],
        "{deleted}"
    );
    assert_eq!(listed[0]["backup"]["objectLock"]["mode"], "COMPLIANCE");

    // Verified and restored exactly from the newest versions that hold data.
    let o = env.run(&["verify", "--from", &root, "--recover-deleted", "--deep"]);
    assert_eq!(o.status.code(), Some(0));
    env.ddb.delete_table().table_name(&t).send().await.unwrap();
    let o = env.run(&[
        "import",
        "--to",
        &base,
        "--app",
        "rec",
        "--from",
        "latest",
        "--recover-deleted",
        "--create-missing",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["items"], 120);
    assert_eq!(
        crate::support::digests(&env.scan_all(&t).await),
        crate::support::digests(&written)
    );
    // Copied out past the markers too (to a folder elsewhere): the copy is a whole run
    // again, with its flag, and verifies against the restored table.
    let dr = env.dir.path().join("dr");
    let o = env.run(&[
        "copy",
        "--from",
        &root,
        "--recover-deleted",
        "--to",
        dr.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let run = &json_stdout(&o)["runs"][0];
    assert_eq!(
        (&run["status"], &run["serverSide"]),
        (&serde_json::json!("copied"), &serde_json::json!(false)),
        "{run}"
    );
    let copy = run["to"].as_str().unwrap().to_string();
    let flags = crate::support::files_named(&dr, "BACKUP_COMPLETE_SUCCESS");
    assert_eq!(flags.len(), 1, "{copy}: {flags:?}");
    let o = env.run(&["verify", "--from", &copy, "--deep"]);
    assert_eq!(o.status.code(), Some(0));
    // Without the flag, the deleted run is not there to copy.
    let elsewhere = env.dir.path().join("dr2");
    let o = env.run(&["copy", "--from", &root, "--to", elsewhere.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(
        versions(&env, &bucket, &prefix).len(),
        versions_before,
        "nothing written into the recovered run"
    );
    // Past delete markers is for S3 with versions: a folder is refused, and so are the
    // engines that read S3 themselves.
    let out = env.out();
    let o = env.run(&[
        "verify",
        "--from",
        out.to_str().unwrap(),
        "--recover-deleted",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

/// `iam/NAME` with its S3 placeholders filled in, for the fault proxy to judge by.
fn policy(name: &str, bucket: &str, prefix: &str) -> &'static str {
    let text = std::fs::read_to_string(crate::support::repo_root().join("iam").join(name)).unwrap();
    Box::leak(
        text.replace("BUCKET", bucket)
            .replace("PREFIX", prefix)
            .into_boxed_str(),
    )
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_policy_exports_retained_and_cannot_destroy_or_unlock_a_backup() {
    use crate::support::fault_proxy::{FaultProxy, Faults};
    let env = TestEnv::new("olwriter").await;
    let t = env.table("t");
    env.mixed_table(&t, None, 50).await;
    let bucket = lock_bucket(&env, "lock");
    let writer = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_policy: Some(policy("writer-policy.json", &bucket, "b")),
            ..Faults::default()
        },
    )
    .await;
    let base = format!("s3://{bucket}/b");
    let o = env
        .ddbx_with(&env.emulators.dynamodb, &writer.url)
        .env(
            "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING",
            &env.emulators.s3,
        )
        .args([
            "export",
            "--app",
            "w",
            "--tables",
            &t,
            "--to",
            &base,
            "--object-lock",
            "governance",
            "--retain",
            "1",
            "--file-items",
            "20",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        *writer.stats.s3_denied.lock().unwrap(),
        Vec::<String>::new()
    );
    let used = writer.stats.actions_since(0);
    assert!(
        used.contains("s3:DeleteObject"),
        "the lock and the RUNNING flag: {used:?}"
    );
    let root = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    let prefix = run_prefix(&root, &bucket);
    let data = versions(&env, &bucket, &prefix)
        .into_iter()
        .find(|v| v.key.contains("/data/"))
        .unwrap();

    // With the writer's keys (through the same policy): no version destroyed, no
    // governance bypassed, no lock or versioning undone; a plain delete of the data is
    // refused too (and would only have placed a marker).
    let attempt = |code: &str| {
        env.boto3_at(
            &writer.url,
            "s3",
            &format!(
                "try:\n\
                 \x20   {code}\n\
                 \x20   r = 'done'\n\
                 except c.exceptions.ClientError as e:\n\
                 \x20   r = e.response['Error']['Code']"
            ),
            &[&bucket, &data.key],
        )
    };
    for ransom in [
        "c.delete_object(Bucket=sys.argv[2], Key=sys.argv[3], VersionId=c.list_object_versions(Bucket=sys.argv[2], Prefix=sys.argv[3])['Versions'][0]['VersionId'], BypassGovernanceRetention=True)",
        "c.delete_object(Bucket=sys.argv[2], Key=sys.argv[3])",
        "c.put_object_lock_configuration(Bucket=sys.argv[2], ObjectLockConfiguration={'ObjectLockEnabled': 'Enabled'})",
        "c.put_bucket_versioning(Bucket=sys.argv[2], VersioningConfiguration={'Status': 'Suspended'})",
    ] {
        assert_eq!(attempt(ransom), "AccessDenied", "{ransom}");
    }
    // Every version of the backup is still there.
    assert!(versions(&env, &bucket, &prefix)
        .iter()
        .any(|v| v.key == data.key && !v.marker && v.mode.as_deref() == Some("GOVERNANCE")));

    // Prune runs under its own role (iam/prune-policy.json), never bypassing governance:
    // the retained run is kept, and nothing it needs is refused.
    let pruner = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_policy: Some(policy("prune-policy.json", &bucket, "b")),
            ..Faults::default()
        },
    )
    .await;
    let o = env
        .ddbx_with(&env.emulators.dynamodb, &pruner.url)
        .args(["prune", "--to", &base, "--app", "w", "--keep-last", "1"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        *pruner.stats.s3_denied.lock().unwrap(),
        Vec::<String>::new()
    );
}

// Multi-threaded: fakecloud's clock and ddbx run beside the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_export_retains_what_dynamodb_wrote() {
    use crate::native::{Kind, Native};
    let mut n = Native::new("olnative").await;
    // Its bucket again, with Object Lock (fakecloud implements it).
    n.bucket = format!("{}-lock", n.bucket);
    n.env.boto3_at(
        &n.fc.url,
        "s3",
        "c.create_bucket(Bucket=sys.argv[2], ObjectLockEnabledForBucket=True)\nr = 1",
        &[&n.bucket],
    );
    let t = n.table("t", Kind::OnDemand, true).await;
    n.fill(&t, Kind::OnDemand, 0, 30).await;
    n.fc.advance_minutes(1);
    let o = n.export(&["--object-lock", "governance", "--retain", "2"]);
    assert_eq!(o.status.code(), Some(0));
    let root = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    let prefix = run_prefix(&root, &n.bucket);
    let held = n.env.boto3_at(
        &n.fc.url,
        "s3",
        "r = {}\n\
         for p in c.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]):\n\
         \x20   for o in p.get('Contents', []):\n\
         \x20       h = c.head_object(Bucket=sys.argv[2], Key=o['Key'])\n\
         \x20       r[o['Key'][len(sys.argv[3]):]] = h.get('ObjectLockMode')",
        &[&n.bucket, &prefix],
    );
    let held = held.as_object().unwrap();
    let exported: Vec<&String> = held
        .keys()
        .filter(|k| k.contains("/AWSDynamoDB/"))
        .collect();
    assert!(exported.iter().any(|k| k.contains("/data/")), "{held:?}");
    assert!(
        exported
            .iter()
            .any(|k| k.ends_with("manifest-summary.json")),
        "{held:?}"
    );
    for (rel, mode) in held {
        let want = if working(rel) || rel.starts_with("_") {
            None
        } else {
            Some("GOVERNANCE")
        };
        assert_eq!(mode.as_str(), want, "{rel}");
    }
}
