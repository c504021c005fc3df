//! Cross-account runs: the tables in one account, the bucket in another, each reached with
//! its own credentials (two profiles; then two roles assumed through STS), seen from the
//! signatures of the requests that reach each service.

use std::collections::BTreeSet;

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::{digests, json_stdout, TestEnv};

const TABLES_KEY: &str = "AKIATABLESACCOUNT001";

fn keys(p: &FaultProxy) -> BTreeSet<String> {
    p.stats.access_keys.lock().unwrap().clone()
}

// Multi-threaded: the proxies run on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_bucket_in_two_accounts_through_two_profiles_and_through_roles() {
    let env = TestEnv::new("xacct").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, Some((100, 100)), 40).await;
    let bucket = env.bucket();
    // The backup account's role, assumed through moto's STS: its session is the "backup"
    // profile; the tables account's keys are the "tables" profile.
    let session = env.boto3(
        "sts",
        "r = c.assume_role(RoleArn=sys.argv[2], RoleSessionName='setup')['Credentials']",
        &["arn:aws:iam::222222222222:role/backup-writer"],
    );
    let backup_key = session["AccessKeyId"].as_str().unwrap().to_string();
    let aws_dir = env.dir.path().join(".aws");
    std::fs::create_dir_all(&aws_dir).unwrap();
    std::fs::write(
        aws_dir.join("credentials"),
        format!(
            "[tables]\naws_access_key_id = {TABLES_KEY}\naws_secret_access_key = tables-secret\n\n\
             [backup]\naws_access_key_id = {backup_key}\naws_secret_access_key = {}\naws_session_token = {}\n",
            session["SecretAccessKey"].as_str().unwrap(),
            session["SessionToken"].as_str().unwrap()
        ),
    )
    .unwrap();
    let ddb = FaultProxy::start(&env.emulators.dynamodb, Faults::default()).await;
    let s3 = FaultProxy::start(&env.emulators.s3, Faults::default()).await;
    let ddbx = |args: &[&str]| {
        let o = env
            .ddbx_with(&ddb.url, &s3.url)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            // Auto scaling (read for table.json) straight to moto: the S3 proxy sees S3 only.
            .env(
                "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING",
                &env.emulators.s3,
            )
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "ddbx {args:?} -> {:?}\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let to = format!("s3://{bucket}/backups");

    // Two profiles: DynamoDB signed by the tables account, S3 by the backup account.
    let o = ddbx(&[
        "--profile",
        "tables",
        "--s3-profile",
        "backup",
        "export",
        "--app",
        "app",
        "--table",
        &t,
        "--to",
        &to,
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let run = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    assert_eq!(keys(&ddb), BTreeSet::from([TABLES_KEY.to_string()]));
    assert_eq!(keys(&s3), BTreeSet::from([backup_key.clone()]));

    // Two roles, each with its external id, assumed from the tables profile through STS:
    // the restore reads the bucket as the backup account's reader and writes the tables
    // as the tables account's restorer.
    let sts = FaultProxy::start(&env.emulators.s3, Faults::default()).await;
    let (ddb, s3) = (
        FaultProxy::start(&env.emulators.dynamodb, Faults::default()).await,
        FaultProxy::start(&env.emulators.s3, Faults::default()).await,
    );
    let o = env
        .ddbx_with(&ddb.url, &s3.url)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        // The SDK's own setting for where STS is (no ddbx flag needed).
        .env("AWS_ENDPOINT_URL_STS", &sts.url)
        .env(
            "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING",
            &env.emulators.s3,
        )
        .args([
            "--profile",
            "tables",
            "--role-arn",
            "arn:aws:iam::111111111111:role/restorer",
            "--external-id",
            "ext-tables",
            "--s3-role-arn",
            "arn:aws:iam::222222222222:role/backup-reader",
            "--s3-external-id",
            "ext-backup",
            "import",
            "--from",
            &run,
            "--table-map",
            &format!("{t}={t}_restored"),
            "--create-missing",
        ])
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&env.scan_all(&format!("{t}_restored")).await),
        digests(&written)
    );
    let calls = sts.stats.sts_calls.lock().unwrap().clone();
    for (role, id) in [
        ("111111111111%3Arole%2Frestorer", "ext-tables"),
        ("222222222222%3Arole%2Fbackup-reader", "ext-backup"),
    ] {
        assert!(
            calls
                .iter()
                .any(|c| c.contains("Action=AssumeRole") && c.contains(role) && c.contains(id)),
            "{role} assumed with {id}: {calls:?}"
        );
    }
    assert_eq!(keys(&sts), BTreeSet::from([TABLES_KEY.to_string()]));
    let (ddb_keys, s3_keys) = (keys(&ddb), keys(&s3));
    assert_eq!((ddb_keys.len(), s3_keys.len()), (1, 1), "one session each");
    assert!(ddb_keys.is_disjoint(&s3_keys));
    assert!(!ddb_keys.contains(TABLES_KEY) && !s3_keys.contains(TABLES_KEY));
}
