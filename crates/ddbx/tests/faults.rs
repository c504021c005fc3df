//! Faults injected between ddbx and the emulators: every way a DynamoDB call can fail, at
//! 10% of calls, on export and import of several tables; S3 multipart uploads failing
//! part-way; a bucket owned by someone else. Each test asserts an exact result.

use std::path::Path;

use crate::support::fault_proxy::{FaultProxy, Faults, Kind, RandomFaults, Stats};
use crate::support::{digests, items, json_stdout, run_dir, TestEnv};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: &std::process::Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

// Multi-threaded: the proxy runs on the test's runtime while the test waits for ddbx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_of_dynamodb_calls_failing_each_way_loses_and_repeats_nothing() {
    let env = TestEnv::new("matrix").await;
    // Three tables: string key, string+number key, and small provisioned capacity.
    let tables = [env.table("a"), env.table("b"), env.table("c")];
    env.create_table(&tables[0], false, None).await;
    env.create_table(&tables[1], true, None).await;
    env.create_table(&tables[2], false, Some((50, 50))).await;
    let mut written = Vec::new();
    for (n, t) in tables.iter().enumerate() {
        let items: Vec<_> = (0..250)
            .map(|i| items::mixed(i + n * 1000, n == 1))
            .collect();
        env.put_items(t, &items).await;
        written.push(items);
    }
    let kinds = [
        Kind::Throttle,
        Kind::ServerError,
        Kind::DropBefore,
        Kind::DropAfter,
        Kind::Truncate,
        // Slower than --request-timeout below: the attempt is abandoned and retried.
        Kind::Delay(std::time::Duration::from_millis(2500)),
    ];
    for (k, kind) in kinds.into_iter().enumerate() {
        let seed = 0x5eed_0000 + k as u64;
        let proxy = FaultProxy::start(
            &env.emulators.dynamodb,
            Faults {
                random: Some(RandomFaults {
                    kind,
                    rate: 0.1,
                    seed,
                }),
                ..Faults::default()
            },
        )
        .await;
        let what = format!("{kind:?} (seed {seed:#x})");
        let out = env.out().join(format!("k{k}"));
        let app = format!("app{k}");
        let o = env
            .ddbx_at(&proxy.url)
            .args([
                "export",
                "--app",
                &app,
                "--tables",
                &format!("{}*", env.prefix),
                "--exclude",
                "*_copy*",
                "--to",
                s(&out),
                "--segments",
                "2",
                "--max-read-units",
                "200",
                // Small pages and files: many calls.
                "--file-items",
                "10",
                "--request-timeout",
                "1",
                "--output",
                "json",
            ])
            .output()
            .unwrap();
        ok(&o);
        let summary = json_stdout(&o);
        assert_eq!(
            summary["items"], 750,
            "{what}: export counts each item once"
        );
        let run = run_dir(&out, &app);
        // Import through the same faults into new tables, created by ddbx.
        let mut maps = Vec::new();
        let mut targets = Vec::new();
        for t in &tables {
            let target = format!("{t}_copy{k}");
            maps.push(format!("{t}={target}"));
            targets.push(target);
        }
        let mut args = vec!["import", "--from", s(&run), "--create-missing"];
        for m in &maps {
            args.extend(["--table-map", m.as_str()]);
        }
        args.extend(["--request-timeout", "1", "--output", "json"]);
        let o = env.ddbx_at(&proxy.url).args(&args).output().unwrap();
        ok(&o);
        assert_eq!(
            json_stdout(&o)["items"],
            750,
            "{what}: import counts each item once"
        );
        let faults = Stats::get(&proxy.stats.random_faults);
        let calls = Stats::get(&proxy.stats.dynamodb_calls);
        eprintln!("{what}: {faults} of {calls} DynamoDB calls faulted");
        assert!(
            calls >= 100 && faults * 20 >= calls && faults * 5 <= calls,
            "{what}: about 10% of {calls} calls faulted, not {faults}"
        );
        for (target, items) in targets.iter().zip(&written) {
            assert_eq!(
                digests(&env.scan_all(target).await),
                digests(items),
                "{what}: {target} holds exactly what was exported"
            );
        }
        // And verify agrees, asked directly.
        let mut args = vec!["verify", "--from", s(&run), "--deep"];
        for m in &maps {
            args.extend(["--table-map", m.as_str()]);
        }
        ok(&env.run(&args));
    }
}
