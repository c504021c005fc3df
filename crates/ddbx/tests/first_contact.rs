//! When something is wrong with how AWS is reached, ddbx says so in seconds, in one line,
//! with the fix (the README's "When something is wrong"): an unknown profile, no
//! credentials, an endpoint that cannot be resolved or reached, an access denied, a
//! bucket that does not exist or lives in another region, an expired token. Each against
//! a real server's real answer where one exists (moto, fakecloud with `--iam strict`),
//! each within its bound on this test's own clock; never a Rust Debug dump (`-v` keeps
//! the detail).

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::fakecloud::FakeCloud;
use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::{json_stdout, table_error, TestEnv};

/// The one line of an error ddbx ended with: stderr holds it alone, with no Debug form.
fn one_line(o: &Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, not:\n{stderr}");
    let line = lines[0];
    assert!(line.starts_with("ddbx: error: "), "{line}");
    no_debug_dump(line);
    line.to_string()
}

/// No Rust Debug form in what a person reads.
fn no_debug_dump(text: &str) {
    for debug in [
        "DispatchFailure",
        "ConnectorError",
        " { ",
        "Some(",
        "source:",
    ] {
        assert!(!text.contains(debug), "a Debug dump ({debug}) in: {text}");
    }
}

/// Run ddbx (as `command`) and time it on this test's clock.
fn timed(mut command: std::process::Command) -> (Output, Duration) {
    let t0 = Instant::now();
    let o = command.output().unwrap();
    let took = t0.elapsed();
    eprintln!(
        "-> {:?} in {took:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o, took)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_profile_is_refused_before_any_call_naming_the_files() {
    let env = TestEnv::new("noprofile").await;
    let aws = env.dir.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("config"), "[profile prod]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[backup]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n",
    )
    .unwrap();
    let proxy = FaultProxy::start(&env.emulators.dynamodb, Faults::default()).await;
    let out = env.out();
    let export = [
        "export",
        "--app",
        "a",
        "--tables",
        "T",
        "--to",
        out.to_str().unwrap(),
    ];
    for from_env in [false, true] {
        let mut c = env.ddbx_at(&proxy.url);
        if from_env {
            c.env("AWS_PROFILE", "nosuch");
        } else {
            c.args(["--profile", "nosuch"]);
        }
        let (o, took) = timed({
            c.args(export);
            c
        });
        assert_eq!(o.status.code(), Some(1));
        let line = one_line(&o);
        let config = aws.join("config");
        let credentials = aws.join("credentials");
        for words in [
            "\"nosuch\"",
            "no such profile",
            config.to_str().unwrap(),
            credentials.to_str().unwrap(),
            "the profiles there: backup, prod",
            "aws configure --profile nosuch",
        ] {
            assert!(line.contains(words), "{words:?} not in: {line}");
        }
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }
    assert_eq!(proxy.stats.mark(), 0, "no call was made");
    assert!(!out.exists(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_are_said_within_5_seconds_naming_the_chain() {
    let env = TestEnv::new("nocreds").await;
    // The instance metadata service of a machine that is no EC2 instance: connections go
    // nowhere (a listener that never accepts: the handshake completes, no answer comes).
    let imds = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let imds_url = format!("http://{}", imds.local_addr().unwrap());
    let proxy = FaultProxy::start(&env.emulators.dynamodb, Faults::default()).await;
    let out = env.out();
    let mut c = env.ddbx_at(&proxy.url);
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds_url)
        .args([
            "export",
            "--app",
            "a",
            "--tables",
            "T",
            "--to",
            out.to_str().unwrap(),
        ]);
    let (o, took) = timed(c);
    assert_eq!(o.status.code(), Some(1));
    let line = one_line(&o);
    for words in [
        "no AWS credentials",
        "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
        "profile \"default\"",
        ".aws/credentials",
        "web identity",
        "instance metadata",
        "--profile NAME",
        "aws sso login",
    ] {
        assert!(line.contains(words), "{words:?} not in: {line}");
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
    imds.set_nonblocking(true).unwrap();
    assert!(
        imds.accept().is_ok(),
        "the instance metadata service was asked"
    );
    assert_eq!(proxy.stats.mark(), 0, "no call was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_cannot_be_reached_is_said_within_15_seconds() {
    let env = TestEnv::new("unreach").await;
    let out = env.out();
    let to = out.to_str().unwrap().to_string();
    let closed = closed_port();
    // A host that takes the connection and never answers (a listener that never accepts:
    // the kernel completes the handshake, nobody reads).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_at = silent.local_addr().unwrap();
    let bucket = env.bucket();
    let cases: Vec<(&str, String, String, String)> = vec![
        (
            "silent",
            format!("http://{silent_at}"),
            env.emulators.s3.clone(),
            to.clone(),
        ),
        (
            "silent s3",
            env.emulators.dynamodb.clone(),
            format!("http://{silent_at}"),
            format!("s3://{bucket}/backups"),
        ),
        // A name that does not resolve (RFC 6761's .invalid never does).
        (
            "dns",
            "http://ddbx-test-nowhere.invalid:8000".into(),
            env.emulators.s3.clone(),
            to.clone(),
        ),
        // A port nobody listens on.
        (
            "refused",
            format!("http://127.0.0.1:{closed}"),
            env.emulators.s3.clone(),
            to.clone(),
        ),
        // S3 where nobody listens, DynamoDB fine.
        (
            "s3",
            env.emulators.dynamodb.clone(),
            format!("http://127.0.0.1:{closed}"),
            format!("s3://{bucket}/backups"),
        ),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(name, ddb, s3, to)| {
            let mut c = env.ddbx_with(&ddb, &s3);
            c.args(["export", "--app", "a", "--tables", &env.prefix, "--to", &to]);
            std::thread::spawn(move || (name, timed(c)))
        })
        .collect();
    for run in runs {
        let (name, (o, took)) = run.join().unwrap();
        assert_eq!(o.status.code(), Some(1), "{name}");
        let line = one_line(&o);
        let expected = match name {
            "dns" => {
                "cannot reach ddbx-test-nowhere.invalid:8000: the name does not resolve".to_string()
            }
            "silent" | "silent s3" => format!("cannot reach {silent_at}: no answer"),
            _ => format!("cannot reach 127.0.0.1:{closed}: Connection refused"),
        };
        assert!(
            line.contains(&expected),
            "{name}: {expected:?} not in: {line}"
        );
        assert!(took <= Duration::from_secs(15), "{name}: took {took:?}");
    }
    // -v keeps the detail the line leaves out.
    let mut c = env.ddbx_at(&format!("http://127.0.0.1:{closed}"));
    c.env_remove("RUST_LOG")
        .args(["-v", "export", "--app", "a", "--tables", "T", "--to", &to]);
    let (o, _) = timed(c);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("DispatchFailure"), "-v: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_does_not_exist_or_lives_elsewhere_is_said_naming_the_fix() {
    let env = TestEnv::new("buckets").await;
    let missing = format!("{}-none", env.bucket());
    // moto's own answer: NoSuchBucket.
    let (o, took) = timed({
        let mut c = env.ddbx();
        c.args(["list", "--to", &format!("s3://{missing}/backups")]);
        c
    });
    assert_eq!(o.status.code(), Some(1));
    let line = one_line(&o);
    assert!(
        line.contains(&format!(
            "the bucket {missing} does not exist (S3 answered NoSuchBucket)"
        )),
        "{line}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // A bucket in eu-west-1, asked of us-east-1's endpoint: S3's 301 PermanentRedirect.
    let elsewhere = FaultProxy::start(
        &env.emulators.s3,
        Faults {
            s3_bucket_region: Some("eu-west-1"),
            ..Faults::default()
        },
    )
    .await;
    let bucket = env.bucket();
    let (o, took) = timed({
        let mut c = env.ddbx_with(&env.emulators.dynamodb, &elsewhere.url);
        c.args([
            "export",
            "--app",
            "a",
            "--tables",
            &env.prefix,
            "--to",
            &format!("s3://{bucket}/b"),
        ]);
        c
    });
    assert_eq!(o.status.code(), Some(1));
    let line = one_line(&o);
    for words in [
        // The region from the x-amz-bucket-region header S3 sends with its 301.
        format!("the bucket {bucket} is not in us-east-1 but in eu-west-1"),
        "pass --s3-region eu-west-1".into(),
    ] {
        assert!(line.contains(&words), "{words:?} not in: {line}");
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// A user of fakecloud's IAM (enforced with `--iam strict`) with `policy` (a policy of
/// `iam/` with its placeholders filled in and `drop` left out), and its access key.
fn iam_user(
    env: &TestEnv,
    fc: &FakeCloud,
    policy: &str,
    drop: &str,
    bucket: &str,
) -> (String, String) {
    let text = std::fs::read_to_string(crate::support::repo_root().join("iam").join(policy))
        .unwrap()
        .replace("REGION", "us-east-1")
        .replace("ACCOUNT", "123456789012")
        .replace("APP_PREFIX", &env.prefix)
        .replace("BUCKET", bucket)
        .replace("PREFIX", "backups");
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let statements = doc["Statement"].as_array_mut().unwrap();
    for st in statements.iter_mut() {
        st["Action"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a.as_str() != Some(drop));
    }
    // Its own sessions (an expired one is what a test needs).
    statements.push(serde_json::json!({
        "Sid": "OwnSessions", "Effect": "Allow", "Action": ["sts:GetSessionToken"], "Resource": "*"
    }));
    let key = env.boto3_at(
        &fc.url,
        "iam",
        "c.create_user(UserName='backup')\n\
         c.put_user_policy(UserName='backup', PolicyName='ddbx', PolicyDocument=sys.argv[2])\n\
         k = c.create_access_key(UserName='backup')['AccessKey']\n\
         r = [k['AccessKeyId'], k['SecretAccessKey']]",
        &[&doc.to_string()],
    );
    (
        key[0].as_str().unwrap().to_string(),
        key[1].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_names_the_action_the_resource_and_the_policy() {
    let env = TestEnv::new("denied").await;
    let fc = FakeCloud::start_with(&env, &["--iam", "strict"]).await;
    let bucket = env.bucket();
    fc.create_bucket(&env, &bucket);
    let t = env.table("t");
    crate::support::create_table_request(&fc.ddb, &t, false, None)
        .send()
        .await
        .unwrap();
    let run = |key: &(String, String), to: &str| {
        let mut c = env.ddbx_with(&fc.url, &fc.url);
        c.env("AWS_ACCESS_KEY_ID", &key.0)
            .env("AWS_SECRET_ACCESS_KEY", &key.1)
            .args([
                "--output", "json", "export", "--app", "a", "--table", &t, "--to", to,
            ]);
        timed(c)
    };
    // The export policy without dynamodb:Scan: the table fails alone, and says why.
    let key = iam_user(&env, &fc, "export-policy.json", "dynamodb:Scan", &bucket);
    let out = env.out();
    let (o, took) = run(&key, out.to_str().unwrap());
    assert_eq!(o.status.code(), Some(4));
    let error = table_error(&json_stdout(&o), &t);
    no_debug_dump(&error);
    for words in [
        "access denied: arn:aws:iam::123456789012:user/backup may not call dynamodb:Scan",
        &format!("on arn:aws:dynamodb:us-east-1:123456789012:table/{t}"),
        "; iam/export-policy.json (statement ReadTheAppsTables) and iam/import-policy.json",
        "grant it: attach one",
    ] {
        assert!(error.contains(words), "{words:?} not in: {error}");
    }
    assert!(!error.contains("Encoded authorization failure"), "{error}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_says_it_expired() {
    let env = TestEnv::new("expired").await;
    let fc = FakeCloud::start_with(&env, &["--iam", "strict"]).await;
    let bucket = env.bucket();
    fc.create_bucket(&env, &bucket);
    let key = iam_user(&env, &fc, "export-policy.json", "", &bucket);
    // A session of the shortest length STS gives (15 minutes), then 20 minutes later.
    let session = env.boto3_at(
        &fc.url,
        "sts",
        "s = boto3.client('sts', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\n\
         k = s.get_session_token(DurationSeconds=900)['Credentials']\n\
         r = [k['AccessKeyId'], k['SecretAccessKey'], k['SessionToken']]",
        &[&key.0, &key.1],
    );
    fc.advance_minutes(20);
    let out = env.out();
    for to in [
        out.to_str().unwrap().to_string(),
        format!("s3://{bucket}/backups"),
    ] {
        let (o, took) = timed({
            let mut c = env.ddbx_with(&fc.url, &fc.url);
            c.env("AWS_ACCESS_KEY_ID", session[0].as_str().unwrap())
                .env("AWS_SECRET_ACCESS_KEY", session[1].as_str().unwrap())
                .env("AWS_SESSION_TOKEN", session[2].as_str().unwrap())
                .args(["export", "--app", "a", "--tables", &env.prefix, "--to", &to]);
            c
        });
        assert_eq!(o.status.code(), Some(1), "{to}");
        let line = one_line(&o);
        assert!(
            line.contains("the AWS credentials have expired (AWS answered ExpiredToken"),
            "{to}: {line}"
        );
        assert!(took < Duration::from_secs(5), "{to}: took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_local_folders_needs_no_region_nor_credentials() {
    let env = TestEnv::new("localonly").await;
    let table = env.table("T");
    env.create_table(&table, false, None).await;
    let run = env.export_all("a", &[]);
    let out = env.out();
    // A machine with no AWS configuration at all: no region, no credentials, no files.
    let bare = |c: &mut std::process::Command| {
        c.env_remove("AWS_REGION")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", env.dir.path().join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                env.dir.path().join("no-credentials"),
            );
    };
    for args in [
        vec!["list", "--to", out.to_str().unwrap()],
        vec!["check", "--to", out.to_str().unwrap(), "--app", "a"],
        vec![
            "prune",
            "--to",
            out.to_str().unwrap(),
            "--app",
            "a",
            "--keep-last",
            "1",
        ],
    ] {
        let mut c = env.ddbx();
        bare(&mut c);
        let o = c.args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", one_line(&o));
    }
    let mut c = env.ddbx();
    bare(&mut c);
    let o = c
        .args(["list", "--to", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(run.file_name().unwrap().to_str().unwrap()),
        "the run is listed"
    );
    // A command that reaches AWS still says what is missing.
    let mut c = env.ddbx();
    bare(&mut c);
    let o = c
        .args([
            "export",
            "--app",
            "a",
            "--tables",
            &table,
            "--to",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(one_line(&o).contains("no AWS region"), "{}", one_line(&o));
}
