//! Capacity spikes (`--spike-read-units`, `--spike-write-units`): raised for the work,
//! always put back, recorded in the run before any change, and restorable after a crash
//! with `ddbx capacity restore`.

use std::path::Path;

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::{items, json_stdout, read_json, run_dir, table_error, wait_for, TestEnv};

/// Run a boto3 Application Auto Scaling call against moto and return its JSON answer.
fn autoscaling(env: &TestEnv, call: &str) -> serde_json::Value {
    env.boto3(
        "application-autoscaling",
        &format!("r = c.{call}\nr.pop('ResponseMetadata', None)"),
        &[],
    )
}

/// A slow export (4 read units a second) of `table` spiked to 100 RCU, once its table is
/// under way (the spike is applied by then).
fn spiked_export_under_way(env: &TestEnv, table: &str, out: &Path) -> std::process::Child {
    let mut child = env
        .ddbx()
        .args([
            "export",
            "--app",
            "app",
            "--tables",
            table,
            "--to",
            out.to_str().unwrap(),
            "--spike-read-units",
            "100",
            "--max-read-units",
            "4",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let progress = out.join("us-east-1").join("app");
    wait_for(&mut child, "the table's export under way", || {
        crate::support::files_named(&progress, "table.json").len() >= 2
    });
    child
}

fn record(run: &Path, name: &str) -> serde_json::Value {
    read_json(&run.join("_capacity").join(name))
}

#[tokio::test]
async fn an_export_spikes_provisioned_tables_and_puts_them_back() {
    let env = TestEnv::new("spike").await;
    let t = env.table("prov");
    env.create_table(&t, false, Some((5, 7))).await;
    let od = env.table("ondemand");
    env.create_table(&od, false, None).await;
    let written: Vec<_> = (0..50).map(|i| items::mixed(i, false)).collect();
    env.put_items(&t, &written).await;
    let out = env.out();
    let o = env.run(&[
        "export",
        "--app",
        "app",
        "--tables",
        &format!("{}*", env.prefix),
        "--to",
        out.to_str().unwrap(),
        "--spike-read-units",
        "100",
        "--read-ratio",
        "0.5",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["items"], 50);
    // Back where it was; DynamoDB counted the one decrease (the reset).
    assert_eq!(env.capacity(&t).await, (5, 7, 1));
    let run = run_dir(&out, "app");
    let rec = record(&run, &format!("{t}-read.json"));
    assert_eq!(rec["via"], "table");
    assert_eq!(rec["readUnits"], 5);
    assert_eq!(rec["to"], 100);
    assert_eq!(rec["restored"], true);
    // The plan says what happens to each table, and the rate follows the spiked capacity.
    let plan = read_json(&run.join("export-plan.json"));
    let planned = |name: &str| {
        plan["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["table"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(planned(&t)["targetReadUnits"], 50.0);
    assert_eq!(planned(&t)["capacitySpike"]["via"], "table");
    assert_eq!(planned(&od)["capacitySpike"]["via"], "none");
    assert!(planned(&od)["capacitySpike"]["reason"]
        .as_str()
        .unwrap()
        .contains("on-demand"));
    assert!(!run
        .join("_capacity")
        .join(format!("{od}-read.json"))
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_autoscales_gets_its_minimum_raised_and_restored() {
    let env = TestEnv::new("autoscale").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((5, 5)), 20).await;
    autoscaling(
        &env,
        &format!("register_scalable_target(ServiceNamespace='dynamodb', ResourceId='table/{t}', ScalableDimension='dynamodb:table:ReadCapacityUnits', MinCapacity=5, MaxCapacity=50)"),
    );
    let proxy = FaultProxy::start(&env.emulators.s3, Faults::default()).await;
    let out = env.out();
    let o = env
        .ddbx()
        .args(["--autoscaling-endpoint-url", &proxy.url])
        .args([
            "export",
            "--app",
            "app",
            "--tables",
            &t,
            "--to",
            out.to_str().unwrap(),
            "--spike-read-units",
            "200",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Raised (min 200, max 200), then put back (min 5, max 50); the table itself untouched.
    assert_eq!(
        proxy
            .stats
            .count("application-autoscaling:RegisterScalableTarget"),
        2
    );
    let target = autoscaling(
        &env,
        &format!(
            "describe_scalable_targets(ServiceNamespace='dynamodb', ResourceIds=['table/{t}'])"
        ),
    );
    let target = &target["ScalableTargets"][0];
    assert_eq!(
        (
            target["MinCapacity"].as_i64(),
            target["MaxCapacity"].as_i64()
        ),
        (Some(5), Some(50))
    );
    assert_eq!(env.capacity(&t).await.0, 5);
    let rec = record(&run_dir(&out, "app"), &format!("{t}-read.json"));
    assert_eq!(rec["via"], "autoScaling");
    assert_eq!(rec["minCapacity"], 5);
    assert_eq!(rec["restored"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reset_names_the_capacity_left_and_capacity_restore_finishes_it() {
    let env = TestEnv::new("noreset").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((5, 5)), 20).await;
    // The spike goes through; the reset is refused (the day's decreases are spent).
    let proxy = FaultProxy::start(
        &env.emulators.dynamodb,
        Faults {
            refuse_update_table_after: Some(1),
            ..Faults::default()
        },
    )
    .await;
    let out = env.out();
    let o = env.export_via(
        &proxy.url,
        &env.emulators.s3,
        &t,
        out.to_str().unwrap(),
        &["--spike-read-units", "100", "--output", "json"],
    );
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    let why = table_error(&summary, &t);
    assert!(
        why.contains("the data is complete")
            && why.contains("left at 100 RCU")
            && why.contains("ddbx capacity restore --from"),
        "{why}"
    );
    assert_eq!(env.capacity(&t).await.0, 100);
    // Later (the next day), the recorded original is put back.
    let run = run_dir(&out, "app");
    let o = env.run(&["capacity", "restore", "--from", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(env.capacity(&t).await.0, 5);
    assert_eq!(record(&run, &format!("{t}-read.json"))["restored"], true);
    let o = env.run(&["capacity", "restore", "--from", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no capacity left to restore"));
}

#[tokio::test]
async fn a_killed_export_leaves_a_record_that_capacity_restore_undoes() {
    let env = TestEnv::new("spikekill").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((5, 5)), 400).await;
    let out = env.out();
    // Slow enough to be killed mid-export: 4 read units a second.
    let mut child = spiked_export_under_way(&env, &t, &out);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(env.capacity(&t).await.0, 100, "killed while spiked");
    let run = run_dir(&out, "app");
    assert_eq!(record(&run, &format!("{t}-read.json"))["restored"], false);
    let o = env.run(&[
        "capacity",
        "restore",
        "--from",
        run.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)[0]["restored"], true);
    assert_eq!(env.capacity(&t).await.0, 5);
}

#[tokio::test]
async fn an_import_spikes_write_capacity_and_the_plan_warns_when_decreases_are_spent() {
    let env = TestEnv::new("spikew").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((5, 5)), 60).await;
    let out = env.out();
    assert_eq!(
        env.run(&[
            "export",
            "--app",
            "app",
            "--tables",
            &t,
            "--to",
            out.to_str().unwrap()
        ])
        .status
        .code(),
        Some(0)
    );
    let run = run_dir(&out, "app");
    let copy = env.table("copy");
    env.create_table(&copy, false, Some((3, 3))).await;
    let map = format!("{t}={copy}");
    let o = env.run(&[
        "import",
        "--from",
        run.to_str().unwrap(),
        "--table-map",
        &map,
        "--spike-write-units",
        "50",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(env.capacity(&copy).await, (3, 3, 1));
    assert_eq!(env.scan_all(&copy).await.len(), 60);
    assert_eq!(
        record(&run, &format!("{copy}-write.json"))["restored"],
        true
    );

    // Four decreases today: a dry run's plan warns that a reset may be refused.
    for (r, w) in [
        (10, 10),
        (9, 9),
        (8, 8),
        (7, 7),
        (6, 6),
        (5, 5),
        (4, 4),
        (3, 3),
    ] {
        env.ddb
            .update_table()
            .table_name(&t)
            .provisioned_throughput(
                aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                    .read_capacity_units(r)
                    .write_capacity_units(w)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        while env
            .ddb
            .describe_table()
            .table_name(&t)
            .send()
            .await
            .unwrap()
            .table()
            .unwrap()
            .table_status()
            .unwrap()
            .as_str()
            != "ACTIVE"
        {
            tokio::task::yield_now().await;
        }
    }
    assert!(env.capacity(&t).await.2 >= 4);
    let o = env.run(&[
        "export",
        "--app",
        "app2",
        "--tables",
        &t,
        "--to",
        out.to_str().unwrap(),
        "--spike-read-units",
        "100",
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("may refuse the reset"), "{text}");
}

#[tokio::test]
async fn sigterm_puts_the_capacity_back_before_exiting() {
    let env = TestEnv::new("spiketerm").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((5, 5)), 400).await;
    let out = env.out();
    let mut child = spiked_export_under_way(&env, &t, &out);
    assert_eq!(env.capacity(&t).await.0, 100, "spiked while it runs");
    crate::support::sigterm(&child);
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(0));
    assert_eq!(env.capacity(&t).await.0, 5, "put back on the way out");
    let run = run_dir(&out, "app");
    assert_eq!(record(&run, &format!("{t}-read.json"))["restored"], true);
    let flag = std::fs::read_to_string(run.join("BACKUP_COMPLETE_FAILED")).unwrap();
    assert!(flag.contains("interrupted"), "{flag}");
}
