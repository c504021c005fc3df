//! `--engine emr` when things go wrong: clusters refused, lost, stuck or dying, steps
//! failing, runs stopped; and what the capacity does meanwhile.

use std::collections::HashSet;

use crate::emr::{Emr, FAST};
use crate::support::emr_service::Script;
use crate::support::{items, json_stdout, table_error, table_report};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_cluster_of_the_same_name_stops_the_run_before_anything() {
    let emr = Emr::new(
        "emractive",
        Script {
            active_cluster: Some("backup_02".into()),
            ..Script::default()
        },
    )
    .await;
    emr.tables(&["a", "b"], 5).await;
    let o = emr.export(&["--cluster-name", "backup", "--clusters", "2"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("backup_02") && err.contains("WAITING"),
        "{err}"
    );
    assert_eq!(emr.service.create_calls(), 0, "no cluster created");
    assert!(
        emr.env.s3_keys(&emr.bucket, "b/").is_empty(),
        "nothing written, lock released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_that_fail_to_start_are_retried_and_a_failed_step_fails_its_table_alone() {
    let emr = Emr::new(
        "emrretry",
        Script {
            refuse_creates: 1,
            bootstrap_failures: 1,
            fail_steps_of: HashSet::from(["_b".to_string()]),
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a", "b", "c"], 20).await;
    let failing = tables[1].0.clone();
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    // Each failed attempt is explained.
    assert!(err.contains("Rate exceeded"), "{err}");
    assert!(err.contains("BOOTSTRAP_FAILURE"), "{err}");
    assert_eq!(
        emr.service.create_calls(),
        3,
        "refused, failed to bootstrap, ran"
    );
    let summary = json_stdout(&o);
    assert_eq!(summary["tablesFailed"], 1);
    let failed = table_report(&summary, &failing);
    assert_eq!(failed["status"], "failed");
    let why = failed["error"].as_str().unwrap();
    assert!(
        why.contains("FAILED") && why.contains("the task failed 4 times"),
        "{why}"
    );
    for (t, _) in [&tables[0], &tables[2]] {
        assert_eq!(table_report(&summary, t)["status"], "succeeded");
    }
    let run = emr.run_prefix();
    let flag: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{run}BACKUP_COMPLETE_FAILED"))).unwrap();
    assert_eq!(flag["tablesFailed"], 1);
    let restore: serde_json::Value =
        serde_json::from_slice(&emr.object(&format!("{run}restore-plan.json"))).unwrap();
    let restorable: Vec<_> = restore["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sourceTable"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(restorable, vec![tables[0].0.clone(), tables[2].0.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_dies_fails_only_its_unfinished_tables_and_attempts_run_out() {
    let emr = Emr::new(
        "emrdies",
        Script {
            die_after_steps: Some(1),
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a", "b"], 10).await;
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    // The step that completed before the cluster died stands; the other failed with the
    // cluster's reason.
    let first = emr.service.clusters()[0].steps[0]
        .name
        .strip_prefix("Export Table:")
        .unwrap()
        .to_string();
    for (t, _) in &tables {
        let r = table_report(&summary, t);
        if *t == first {
            assert_eq!(r["status"], "succeeded");
        } else {
            let why = r["error"].as_str().unwrap();
            assert!(
                why.contains("TERMINATED_WITH_ERRORS") && why.contains("INSTANCE_FAILURE"),
                "{why}"
            );
        }
    }

    // Every creation refused: after create_attempts, every table fails and says why.
    let emr = Emr::new(
        "emrnever",
        Script {
            refuse_creates: 99,
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a"], 3).await;
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    let why = table_error(&summary, &tables[0].0);
    assert!(
        why.contains("never ran its steps after 3 attempts")
            && why.contains("attempt 1:")
            && why.contains("attempt 3:"),
        "{why}"
    );
    assert_eq!(emr.service.create_calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_terminates_or_leaves_the_clusters_as_asked_and_the_flags_say_interrupted() {
    for choice in ["terminate", "leave"] {
        let emr = Emr::new(
            &format!("emrstop{choice}"),
            Script {
                hang: true,
                ..Script::default()
            },
        )
        .await;
        let t = emr.env.table("t");
        emr.env.create_table(&t, false, Some((5, 5))).await;
        let to = format!("s3://{}/b", emr.bucket);
        let mut child = emr
            .env
            .ddbx()
            .args(["--emr-endpoint-url", &emr.service.url])
            .args([
                "export",
                "--app",
                "app",
                "--tables",
                &t,
                "--to",
                &to,
                "--engine",
                "emr",
                "--emr-config",
                emr.config.to_str().unwrap(),
                "--cluster-name",
                "backup",
                "--spike-read-units",
                "80",
                "--on-interrupt",
                choice,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        crate::support::wait_for(&mut child, "a step running", || {
            emr.service
                .clusters()
                .iter()
                .any(|c| c.steps.iter().any(|s| s.state == "RUNNING"))
        });
        crate::support::sigterm(&child);
        let o = child.wait_with_output().unwrap();
        assert_ne!(o.status.code(), Some(0));
        let err = String::from_utf8_lossy(&o.stderr);
        let run = emr.run_prefix();
        let flag = String::from_utf8(emr.object(&format!("{run}BACKUP_COMPLETE_FAILED"))).unwrap();
        assert!(flag.contains("interrupted"), "{flag}");
        assert!(emr
            .env
            .s3_keys(&emr.bucket, "b/us-east-1/app/_LOCK")
            .is_empty());
        let now = emr.env.capacity(&t).await.0;
        let id = emr.service.clusters()[0].id.clone();
        if choice == "terminate" {
            assert_eq!(emr.service.terminate_calls(), vec![vec![id]]);
            assert_eq!(now, 5, "capacity put back");
        } else {
            // Left running: its step still reads, so the capacity stays until told.
            assert!(emr.service.terminate_calls().is_empty());
            assert!(flag.contains("left running"), "{flag}");
            assert_eq!(now, 80);
            assert!(err.contains("ddbx capacity restore --from"), "{err}");
            let root = format!("s3://{}/{}", emr.bucket, run.trim_end_matches('/'));
            assert_eq!(
                emr.env
                    .run(&["capacity", "restore", "--from", &root])
                    .status
                    .code(),
                Some(0)
            );
            let now = emr.env.capacity(&t).await.0;
            assert_eq!(now, 5);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emr_export_spikes_each_table_while_its_step_runs_and_puts_it_back() {
    let emr = Emr::new(
        "emrspike",
        Script {
            fail_steps_of: HashSet::from(["_bad".to_string()]),
            ..Script::default()
        },
    )
    .await;
    let mut names = Vec::new();
    for short in ["good", "bad"] {
        let t = emr.env.table(short);
        emr.env.create_table(&t, false, Some((5, 5))).await;
        emr.env
            .put_items(
                &t,
                &(0..10).map(|i| items::mixed(i, false)).collect::<Vec<_>>(),
            )
            .await;
        names.push(t);
    }
    let o = emr.export(&["--cluster-name", "backup", "--spike-read-units", "80"]);
    assert_eq!(o.status.code(), Some(4), "the bad table's step failed");
    // Both tables were raised and are back, whether their step succeeded or failed.
    let run = emr.run_prefix();
    for t in &names {
        let (read, _, decreases) = emr.env.capacity(t).await;
        assert_eq!((read, decreases), (5, 1), "{t}");
        let rec: serde_json::Value =
            serde_json::from_slice(&emr.object(&format!("{run}_capacity/{t}-read.json"))).unwrap();
        assert_eq!(rec["restored"], true);
        assert_eq!(rec["to"], 80);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_emr_calls_invalid_is_not_tried_again() {
    let emr = Emr::new(
        "emrinvalid",
        Script {
            invalid_creates: true,
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a"], 3).await;
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &tables[0].0);
    assert!(why.contains("ValidationException"), "{why}");
    assert_eq!(
        emr.service.create_calls(),
        1,
        "the same request would be refused again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_stuck_starting_is_terminated_and_replaced() {
    let emr = Emr::new(
        "emrstuck",
        Script {
            stuck_starting: 1,
            ..Script::default()
        },
    )
    .await;
    std::fs::write(&emr.config, format!("{FAST}start_timeout_seconds = 1\n")).unwrap();
    let tables = emr.tables(&["a"], 4).await;
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(0));
    let clusters = emr.service.clusters();
    assert_eq!(clusters.len(), 2, "the stuck one, then one that ran");
    assert!(
        clusters[0].steps.is_empty(),
        "no step given to a cluster that never ran"
    );
    assert!(emr
        .service
        .terminate_calls()
        .contains(&vec![clusters[0].id.clone()]));
    assert_eq!(clusters[1].steps.len(), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("start_timeout_seconds"), "{err}");
    assert_eq!(
        table_report(&json_stdout(&o), &tables[0].0)["status"],
        "succeeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_run_job_flow_adopts_the_cluster_it_made() {
    let emr = Emr::new(
        "emrlost",
        Script {
            lose_create_answers: 1,
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a", "b"], 4).await;
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(0));
    // The answer lost, the next attempt found the cluster by its name and took it rather
    // than pay for two.
    assert_eq!(emr.service.create_calls(), 1);
    let clusters = emr.service.clusters();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].steps.len(), 2);
    let summary = json_stdout(&o);
    for (t, _) in &tables {
        assert_eq!(table_report(&summary, t)["status"], "succeeded");
    }
}

/// Releases before auto-termination (emr-5.29.0): every step at creation, the cluster
/// ending itself after its last step; outcomes read even when ListSteps fails at first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_release_gets_its_steps_at_creation_and_ends_itself() {
    let emr = Emr::new(
        "emrold",
        Script {
            fail_list_steps_when_terminated: 2,
            ..Script::default()
        },
    )
    .await;
    std::fs::write(
        &emr.config,
        format!("{FAST}release_label = \"emr-5.29.0\"\n"),
    )
    .unwrap();
    let tables = emr.tables(&["a", "b"], 6).await;
    let o = emr.export(&["--cluster-name", "old"]);
    assert_eq!(o.status.code(), Some(0));
    let c = &emr.service.clusters()[0];
    assert_eq!(c.request["Instances"]["KeepJobFlowAliveWhenNoSteps"], false);
    assert!(
        c.request.get("AutoTerminationPolicy").is_none(),
        "{}",
        c.request
    );
    assert_eq!(c.request["Steps"].as_array().unwrap().len(), 2);
    assert_eq!(emr.service.add_step_calls(), 0);
    assert!(emr.service.terminate_calls().is_empty(), "it ended itself");
    // Connector 4.x on this release reads NULL as `nULLValue`: the import script says so.
    let run = emr.run_prefix();
    let q = String::from_utf8(emr.object(&format!("{run}_emr/import-{}.q", tables[0].0))).unwrap();
    assert!(q.contains("ddbx_import.py data-pipeline nULLValue"), "{q}");
    let summary = json_stdout(&o);
    for (t, _) in &tables {
        assert_eq!(table_report(&summary, t)["status"], "succeeded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_as_many_at_once_as_step_concurrency_allows() {
    let emr = Emr::new("emrconc", Script::default()).await;
    std::fs::write(&emr.config, format!("{FAST}step_concurrency = 2\n")).unwrap();
    emr.tables(&["a", "b", "c", "d"], 4).await;
    let o = emr.export(&["--cluster-name", "conc"]);
    assert_eq!(o.status.code(), Some(0));
    let c = &emr.service.clusters()[0];
    assert_eq!(c.request["StepConcurrencyLevel"], 2);
    assert_eq!(c.steps.len(), 4);
    assert_eq!(c.peak_running, 2, "two steps run at a time");
    assert_eq!(
        c.peak_active, 3,
        "two steps running and one queued behind them"
    );
}

/// AWS's VALIDATION_ERROR (here: the v2 service policy and a network without its tag) does
/// not fix itself: the run ends at once with EMR's message and what to check, not after
/// create_attempts clusters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_emr_refuses_fails_at_once_with_emrs_message() {
    let emr = Emr::new(
        "emrvalidation",
        Script {
            untagged_network: true,
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a", "b"], 3).await;
    let o = emr.export(&["--cluster-name", "backup"]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    for (t, _) in &tables {
        let why = table_error(&summary, t);
        assert!(
            why.contains("EMR refused to launch cluster backup")
                && why.contains("VALIDATION_ERROR")
                && why.contains("subnet and security groups must be tagged")
                && why.contains("set ec2.subnet_id"),
            "{why}"
        );
    }
    assert_eq!(
        emr.service.create_calls(),
        1,
        "one cluster, not create_attempts (3)"
    );
}

/// One table's step waits in the cluster's queue while the previous one runs, so the
/// cluster starts it the moment the previous ends. Steps here end only once ddbx has seen
/// them running twice: the order below holds whatever the machine's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_tables_step_is_queued_before_the_running_one_ends() {
    let emr = Emr::new(
        "emrqueue",
        Script {
            step_polls: 2,
            ..Script::default()
        },
    )
    .await;
    let tables = emr.tables(&["a", "b", "c", "d", "e"], 2).await;
    let o = emr.export(&["--cluster-name", "queue"]);
    assert_eq!(o.status.code(), Some(0));
    let c = &emr.service.clusters()[0];
    assert_eq!(c.steps.len(), tables.len());
    assert_eq!(
        (c.peak_running, c.peak_active),
        (1, 2),
        "one running, one queued"
    );
    for k in 1..c.steps.len() {
        let (prev, next) = (&c.steps[k - 1], &c.steps[k]);
        assert!(
            next.created < prev.ended.unwrap(),
            "step {k} was handed over before step {} ended",
            k - 1
        );
        assert!(next.started.unwrap() >= prev.ended.unwrap());
    }
}

/// A release label EMR does not publish is refused at RunJobFlow, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_emr_does_not_publish_is_refused() {
    let emr = Emr::new("emrlabel", Script::default()).await;
    std::fs::write(
        &emr.config,
        format!("{FAST}release_label = \"emr-7.99.0\"\n"),
    )
    .unwrap();
    let tables = emr.tables(&["a"], 2).await;
    let o = emr.export(&["--cluster-name", "label"]);
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &tables[0].0);
    assert!(why.contains("emr-7.99.0 is not valid"), "{why}");
    assert_eq!(emr.service.create_calls(), 1);
}

/// The figure docs/BENCHMARKS.md records: 300 tables through one cluster, each step
/// lasting a second (a Hive step's start-up, scaled down), ddbx polling every 0.75 s
/// (30 s scaled alike); prints the cluster's idle time between steps. Not a timed
/// assertion: run it with `cargo test -p ddbx --test tests idle_between_steps -- --ignored
/// --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (about six minutes): see docs/BENCHMARKS.md"]
async fn idle_between_steps_with_300_tables_on_one_cluster() {
    let tables: usize = std::env::var("DDBX_IDLE_TABLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let emr = Emr::new(
        "emridle",
        Script {
            step_seconds: 1.0,
            ..Script::default()
        },
    )
    .await;
    std::fs::write(
        &emr.config,
        "poll_seconds = 0.75\nfast_poll_seconds = 0.125\nretry_delay_seconds = 0\n",
    )
    .unwrap();
    for n in 0..tables {
        let t = emr.env.table(&format!("t{n:03}"));
        emr.env.create_table(&t, false, None).await;
    }
    let started = std::time::Instant::now();
    let o = emr.export(&["--cluster-name", "idle"]);
    assert_eq!(o.status.code(), Some(0));
    let wall = started.elapsed().as_secs_f64();
    let c = &emr.service.clusters()[0];
    assert_eq!(c.steps.len(), tables);
    let gaps: Vec<f64> = c
        .steps
        .windows(2)
        .map(|w| {
            w[1].started
                .unwrap()
                .duration_since(w[0].ended.unwrap())
                .map_or(0.0, |d| d.as_secs_f64())
        })
        .collect();
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    let total: f64 = gaps.iter().sum();
    let ran: f64 = c
        .steps
        .iter()
        .map(|s| {
            s.ended
                .unwrap()
                .duration_since(s.started.unwrap())
                .unwrap()
                .as_secs_f64()
        })
        .sum();
    println!(
        "idle between steps, {tables} tables, one cluster: total {total:.3} s, mean {:.4} s, median {:.4} s, p99 {:.4} s, max {:.4} s; steps ran {ran:.1} s; ddbx wall {wall:.1} s",
        total / gaps.len().max(1) as f64,
        sorted[sorted.len() / 2],
        sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)],
        sorted.last().copied().unwrap_or(0.0),
    );
}
