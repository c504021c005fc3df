//! A stand-in for AWS EMR, speaking the EMR JSON protocol for the calls ddbx makes
//! (RunJobFlow, ListClusters, DescribeCluster, ListSteps, TerminateJobFlows). Its clusters
//! follow EMR's documented states (STARTING, BOOTSTRAPPING, RUNNING, TERMINATING,
//! TERMINATED or TERMINATED_WITH_ERRORS) with scriptable outcomes, and they carry out
//! their steps for real: an export step runs ddbx's local engine in `--format emr`
//! against the emulators and puts the files at the step's S3 path, as the connector
//! would; an import step runs `ddbx import` from that path.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::fault_proxy::read_message;

/// What the service does to the clusters it is asked for.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The first N RunJobFlow calls are refused (as when capacity or a quota is short).
    pub refuse_creates: u32,
    /// The first N clusters created end TERMINATED_WITH_ERRORS while bootstrapping.
    pub bootstrap_failures: u32,
    /// Steps of tables whose names end with one of these end FAILED.
    pub fail_steps_of: HashSet<String>,
    /// Each cluster dies (TERMINATED_WITH_ERRORS, INSTANCE_FAILURE) after this many steps.
    pub die_after_steps: Option<usize>,
    /// Steps never finish (until the cluster is terminated).
    pub hang: bool,
    /// An active cluster of this name exists before the test starts.
    pub active_cluster: Option<String>,
}

/// A cluster as the service keeps it.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub state: String,
    pub reason: (String, String),
    pub steps: Vec<StepRecord>,
    /// The RunJobFlow request, as sent.
    pub request: Value,
}

/// One step of a cluster.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub id: String,
    pub name: String,
    pub args: Vec<String>,
    pub state: String,
    pub failure: Option<String>,
}

#[derive(Default)]
struct State {
    script: Script,
    creates: u32,
    clusters: Vec<Cluster>,
    terminate_calls: Vec<Vec<String>>,
}

/// Where steps read and write: the emulators, and a scratch folder.
#[derive(Debug, Clone)]
pub struct StepEnv {
    pub dynamodb: String,
    pub s3: String,
    pub scratch: PathBuf,
}

/// A running EMR stand-in.
pub struct EmrService {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl EmrService {
    /// Start the service; steps run against `env`.
    pub async fn start(script: Script, env: StepEnv) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            script: script.clone(),
            ..State::default()
        }));
        if let Some(name) = script.active_cluster {
            state.lock().unwrap().clusters.push(Cluster {
                id: "j-ALREADYRUNNING".into(),
                name,
                state: "WAITING".into(),
                reason: (String::new(), String::new()),
                steps: Vec::new(),
                request: Value::Null,
            });
        }
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                let env = env.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Ok(Some(req)) = read_message(&mut conn, &mut buf).await {
                        let target = req
                            .head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("x-amz-target")
                                    .then(|| v.trim().to_string())
                            })
                            .unwrap_or_default();
                        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                        let (status, answer) = handle(&st, &env, &target, &body);
                        let text = answer.to_string();
                        let reply = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, state }
    }

    /// The clusters created so far.
    pub fn clusters(&self) -> Vec<Cluster> {
        self.state.lock().unwrap().clusters.clone()
    }

    /// The TerminateJobFlows calls received.
    pub fn terminate_calls(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().terminate_calls.clone()
    }

    /// RunJobFlow calls received (refused ones included).
    pub fn create_calls(&self) -> u32 {
        self.state.lock().unwrap().creates
    }
}

fn error(code: &str, message: &str) -> (&'static str, Value) {
    (
        "400 Bad Request",
        json!({"__type": code, "Message": message}),
    )
}

fn handle(
    st: &Arc<Mutex<State>>,
    env: &StepEnv,
    target: &str,
    body: &Value,
) -> (&'static str, Value) {
    let op = target.rsplit('.').next().unwrap_or("");
    let mut s = st.lock().unwrap();
    match op {
        "RunJobFlow" => {
            s.creates += 1;
            if s.creates <= s.script.refuse_creates {
                return error(
                    "ValidationException",
                    "injected: The requested instance type m5.xlarge is not supported in the requested Availability Zone",
                );
            }
            let n = s.clusters.len() + 1;
            let id = format!("j-TEST{n:08}");
            let steps = body["Steps"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, step)| StepRecord {
                    id: format!("s-{n:04}{i:04}"),
                    name: step["Name"].as_str().unwrap_or("").to_string(),
                    args: step["HadoopJarStep"]["Args"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|v| v.as_str().unwrap_or("").to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                    state: "PENDING".into(),
                    failure: None,
                })
                .collect();
            s.clusters.push(Cluster {
                id: id.clone(),
                name: body["Name"].as_str().unwrap_or("").to_string(),
                state: "STARTING".into(),
                reason: (String::new(), String::new()),
                steps,
                request: body.clone(),
            });
            let created = s.clusters.iter().filter(|c| !c.request.is_null()).count() as u32;
            let bootstrap_fails = created <= s.script.bootstrap_failures;
            drop(s);
            tokio::spawn(lifecycle(
                st.clone(),
                env.clone(),
                id.clone(),
                bootstrap_fails,
            ));
            (
                "200 OK",
                json!({"JobFlowId": id, "ClusterArn": format!("arn:aws:elasticmapreduce:us-east-1:123456789012:cluster/{id}")}),
            )
        }
        "ListClusters" => {
            let states: Vec<&str> = body["ClusterStates"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let clusters: Vec<Value> = s
                .clusters
                .iter()
                .filter(|c| states.is_empty() || states.contains(&c.state.as_str()))
                .map(|c| json!({"Id": c.id, "Name": c.name, "Status": {"State": c.state}}))
                .collect();
            ("200 OK", json!({"Clusters": clusters}))
        }
        "DescribeCluster" => {
            let id = body["ClusterId"].as_str().unwrap_or("");
            match s.clusters.iter().find(|c| c.id == id) {
                Some(c) => (
                    "200 OK",
                    json!({"Cluster": {"Id": c.id, "Name": c.name, "Status": {
                        "State": c.state,
                        "StateChangeReason": {"Code": c.reason.0, "Message": c.reason.1}
                    }}}),
                ),
                None => error(
                    "InvalidRequestException",
                    &format!("Cluster id '{id}' is not valid."),
                ),
            }
        }
        "ListSteps" => {
            let id = body["ClusterId"].as_str().unwrap_or("");
            match s.clusters.iter().find(|c| c.id == id) {
                // EMR lists the newest step first.
                Some(c) => (
                    "200 OK",
                    json!({"Steps": c.steps.iter().rev().map(|st| {
                        let mut status = json!({"State": st.state});
                        if let Some(f) = &st.failure {
                            status["FailureDetails"] = json!({"Reason": "Step failed", "Message": f, "LogFile": format!("s3://logs/{}/steps/{}/stderr.gz", c.id, st.id)});
                        }
                        json!({"Id": st.id, "Name": st.name, "Status": status})
                    }).collect::<Vec<_>>()}),
                ),
                None => error(
                    "InvalidRequestException",
                    &format!("Cluster id '{id}' is not valid."),
                ),
            }
        }
        "TerminateJobFlows" => {
            let ids: Vec<String> = body["JobFlowIds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            s.terminate_calls.push(ids.clone());
            for c in s.clusters.iter_mut().filter(|c| ids.contains(&c.id)) {
                if !c.state.starts_with("TERMINATED") {
                    c.state = "TERMINATED".into();
                    c.reason = ("USER_REQUEST".into(), "Terminated by user request".into());
                    for step in c
                        .steps
                        .iter_mut()
                        .filter(|st| st.state == "PENDING" || st.state == "RUNNING")
                    {
                        step.state = "CANCELLED".into();
                    }
                }
            }
            ("200 OK", json!({}))
        }
        _ => error("UnknownOperationException", op),
    }
}

fn set(st: &Mutex<State>, id: &str, f: impl FnOnce(&mut Cluster)) {
    let mut s = st.lock().unwrap();
    let c = s.clusters.iter_mut().find(|c| c.id == id).unwrap();
    f(c);
}

fn terminated(st: &Mutex<State>, id: &str) -> bool {
    let s = st.lock().unwrap();
    s.clusters
        .iter()
        .find(|c| c.id == id)
        .unwrap()
        .state
        .starts_with("TERMINATED")
}

/// A cluster's life: STARTING, BOOTSTRAPPING, RUNNING (its steps, one after the other),
/// TERMINATING, then TERMINATED or TERMINATED_WITH_ERRORS.
async fn lifecycle(st: Arc<Mutex<State>>, env: StepEnv, id: String, bootstrap_fails: bool) {
    tokio::task::yield_now().await;
    set(&st, &id, |c| c.state = "BOOTSTRAPPING".into());
    tokio::task::yield_now().await;
    if bootstrap_fails {
        set(&st, &id, |c| {
            c.state = "TERMINATED_WITH_ERRORS".into();
            c.reason = (
                "BOOTSTRAP_FAILURE".into(),
                "On the master instance (i-0123), bootstrap action 1 returned a non-zero return code".into(),
            );
            for step in &mut c.steps {
                step.state = "CANCELLED".into();
            }
        });
        return;
    }
    set(&st, &id, |c| c.state = "RUNNING".into());
    let (script, steps) = {
        let s = st.lock().unwrap();
        let c = s.clusters.iter().find(|c| c.id == id).unwrap();
        (s.script.clone(), c.steps.clone())
    };
    let mut any_failed = false;
    for (i, step) in steps.iter().enumerate() {
        if terminated(&st, &id) {
            return;
        }
        if script.die_after_steps == Some(i) {
            set(&st, &id, |c| {
                c.state = "TERMINATED_WITH_ERRORS".into();
                c.reason = (
                    "INSTANCE_FAILURE".into(),
                    "injected: the core instance group was lost".into(),
                );
                for s in c.steps.iter_mut().filter(|s| s.state == "PENDING") {
                    s.state = "CANCELLED".into();
                }
            });
            return;
        }
        set(&st, &id, |c| c.steps[i].state = "RUNNING".into());
        if script.hang {
            return; // until TerminateJobFlows
        }
        let table = step.args.get(2).cloned().unwrap_or_default();
        let result = if script
            .fail_steps_of
            .iter()
            .any(|end| table.ends_with(end.as_str()))
        {
            Err("injected: Error: java.lang.RuntimeException: the task failed 4 times".to_string())
        } else {
            let env = env.clone();
            let args = step.args.clone();
            tokio::task::spawn_blocking(move || run_step(&env, &args))
                .await
                .unwrap()
        };
        any_failed |= result.is_err();
        set(&st, &id, |c| match result {
            Ok(()) => c.steps[i].state = "COMPLETED".into(),
            Err(e) => {
                c.steps[i].state = "FAILED".into();
                c.steps[i].failure = Some(e);
            }
        });
    }
    set(&st, &id, |c| c.state = "TERMINATING".into());
    tokio::task::yield_now().await;
    set(&st, &id, |c| {
        c.state = "TERMINATED".into();
        c.reason = (
            "ALL_STEPS_COMPLETED".into(),
            if any_failed {
                "Steps completed with errors"
            } else {
                "Steps completed"
            }
            .into(),
        );
    });
}

/// Carry out one connector step: `[class, path, table, ratio, segments?]`.
fn run_step(env: &StepEnv, args: &[String]) -> Result<(), String> {
    let class = args.first().map(String::as_str).unwrap_or("");
    let (path, table, ratio) = (&args[1], &args[2], &args[3]);
    let scratch = env.scratch.join(format!("step-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    let ddbx = |a: &[&str]| {
        let o = super::ddbx_command(&env.dynamodb, &env.s3, &scratch)
            .args(a)
            .output()
            .unwrap();
        if o.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string())
        }
    };
    if class.ends_with("Export") {
        // The table's name as a glob matching only itself (a plain value is a prefix).
        let (head, last) = table.split_at(table.len() - 1);
        let exact = format!("{head}[{last}]");
        let out = scratch.join("out");
        let mut a = vec![
            "export",
            "--app",
            "step",
            "--tables",
            &exact,
            "--to",
            out.to_str().unwrap(),
            "--format",
            "emr",
            "--read-ratio",
            ratio,
        ];
        if let Some(segments) = args.get(4) {
            a.extend(["--segments", segments.as_str()]);
        }
        ddbx(&a)?;
        upload_connector_export(env, &super::run_dir(&out, "step").join(table), path);
        Ok(())
    } else {
        let source = path.rsplit('/').next().unwrap_or("");
        ddbx(&[
            "import",
            "--from",
            path,
            "--table-map",
            &format!("{source}={table}"),
            "--write-ratio",
            ratio,
        ])
    }
}

/// Put a local connector export (UUID files and `manifest`) at an S3 path, the manifest's
/// URLs pointing at the uploaded files: what the connector itself leaves there.
fn upload_connector_export(env: &StepEnv, dir: &std::path::Path, path: &str) {
    let (bucket, prefix) = path.trim_start_matches("s3://").split_once('/').unwrap();
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name == "manifest" || name == "table.json" {
            continue;
        }
        put(
            &env.s3,
            bucket,
            &format!("{prefix}/{name}"),
            &std::fs::read(&p).unwrap(),
        );
        entries.push(format!(
            "{{\"url\":\"s3://{bucket}/{prefix}/{name}\",\"mandatory\":true}}"
        ));
    }
    let manifest = format!(
        "{{\"name\":\"DynamoDB-export\",\"version\":3,\n\"entries\": [\n{}\n]}}\n",
        entries.join(",\n")
    );
    put(
        &env.s3,
        bucket,
        &format!("{prefix}/manifest"),
        manifest.as_bytes(),
    );
}

/// An unsigned PUT to the S3 emulator (moto accepts them).
fn put(s3: &str, bucket: &str, key: &str, body: &[u8]) {
    let (head, _) = super::moto_http(s3, "PUT", &format!("/{bucket}/{key}"), body);
    assert!(head.starts_with("HTTP/1.1 200"), "PUT {key}: {head}");
}
