//! A strict stand-in for AWS EMR. It speaks the EMR JSON protocol for the calls ddbx makes
//! (RunJobFlow, AddJobFlowSteps, ListClusters, DescribeCluster, ListSteps,
//! TerminateJobFlows), refuses what EMR refuses (more than 256 steps, step names over 256
//! characters, an IdleTimeout or StepConcurrencyLevel out of range or on a release that
//! lacks it, unknown applications, subnets that do not fit the instance configuration; a
//! cluster under the managed service policy without its tag cannot launch), and its
//! clusters follow EMR's states with scriptable failures.
//!
//! Its steps run for real against the emulators, with code of their own (none of ddbx's):
//! a Hive step (`command-runner.jar hive-script ... -f s3://....q`) needs the cluster's
//! Hive, and its HiveQL is read statement by statement (SETs, external tables over the
//! DynamoDB storage handler or text in S3, INSERT OVERWRITE, TRANSFORM with a script added
//! with ADD FILE and run by this machine's Python, multi-inserts into directories); a
//! connector tools step (`CUSTOM_JAR`) must name the tools' classes and a jar that can run
//! on the release. Items go through `support::connector`, the connector's codec: an empty
//! list or map fails the write as the connector fails it.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::connector;
use super::fault_proxy::read_message;

/// What the service does to the clusters it is asked for.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The first N RunJobFlow calls are throttled (a passing refusal, worth another try).
    pub refuse_creates: u32,
    /// The first N RunJobFlow calls create their cluster, but the answer is lost (500).
    pub lose_create_answers: u32,
    /// Every RunJobFlow call is refused as invalid (ValidationException).
    pub invalid_creates: bool,
    /// The first N clusters created end TERMINATED_WITH_ERRORS while bootstrapping.
    pub bootstrap_failures: u32,
    /// The first N clusters created never leave STARTING (spot capacity that never comes).
    pub stuck_starting: u32,
    /// Steps of tables whose names end with one of these end FAILED.
    pub fail_steps_of: HashSet<String>,
    /// Each cluster dies (TERMINATED_WITH_ERRORS, INSTANCE_FAILURE) after this many steps.
    pub die_after_steps: Option<usize>,
    /// Steps never finish (until the cluster is terminated).
    pub hang: bool,
    /// An active cluster of this name exists before the test starts.
    pub active_cluster: Option<String>,
    /// The service role has the older managed policy (no tag needed to launch); by default
    /// it has `AmazonEMRServicePolicy_v2`, which needs the cluster's tag.
    pub v1_service_policy: bool,
    /// The first N ListSteps calls of a terminated cluster fail (500).
    pub fail_list_steps_when_terminated: u32,
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
    /// The steps it ran at most at once.
    pub peak_running: usize,
    /// The steps it held at most at once, pending or running.
    pub peak_active: usize,
}

/// One step of a cluster.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub id: String,
    pub name: String,
    pub jar: String,
    pub args: Vec<String>,
    pub state: String,
    pub failure: Option<String>,
    /// The HiveQL it ran, when a Hive step.
    pub hql: Option<String>,
}

#[derive(Default)]
struct State {
    script: Script,
    creates: u32,
    clusters: Vec<Cluster>,
    terminate_calls: Vec<Vec<String>>,
    add_step_calls: u32,
    list_steps_failures: u32,
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

/// The applications EMR knows (RunJobFlow refuses others).
const APPLICATIONS: &[&str] = &[
    "Hadoop",
    "Hive",
    "Spark",
    "Tez",
    "Pig",
    "HBase",
    "Hue",
    "Presto",
    "Trino",
    "Flink",
    "Livy",
    "JupyterHub",
    "Zeppelin",
    "Oozie",
    "Sqoop",
    "HCatalog",
    "ZooKeeper",
    "Ganglia",
];

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
                peak_running: 0,
                peak_active: 0,
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

    /// AddJobFlowSteps calls received.
    pub fn add_step_calls(&self) -> u32 {
        self.state.lock().unwrap().add_step_calls
    }
}

fn error(code: &str, message: &str) -> (&'static str, Value) {
    (
        "400 Bad Request",
        json!({"__type": code, "Message": message}),
    )
}

fn release(label: &str) -> (u32, u32) {
    let mut p = label.trim_start_matches("emr-").split('.');
    let major = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let minor = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn has_auto_termination(label: &str) -> bool {
    match release(label) {
        (5, m) => m >= 30,
        (6, m) => m >= 1,
        (m, _) => m > 6,
    }
}

fn step_records(steps: &[Value], cluster: usize, first: usize) -> Vec<StepRecord> {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| StepRecord {
            id: format!("s-{cluster:04}{:04}", first + i),
            name: step["Name"].as_str().unwrap_or("").to_string(),
            jar: step["HadoopJarStep"]["Jar"]
                .as_str()
                .unwrap_or("")
                .to_string(),
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
            hql: None,
        })
        .collect()
}

/// What RunJobFlow refuses, as EMR's API reference says.
fn refuse_request(body: &Value) -> Option<String> {
    let label = body["ReleaseLabel"].as_str().unwrap_or("");
    let steps = body["Steps"].as_array().map_or(0, Vec::len);
    if steps > 256 {
        return Some("A maximum of 256 steps are allowed in each job flow.".into());
    }
    for s in body["Steps"].as_array().into_iter().flatten() {
        if s["Name"].as_str().unwrap_or("").len() > 256 {
            return Some("1 validation error detected: Value at 'steps.member.name' failed to satisfy constraint: Member must have length less than or equal to 256".into());
        }
    }
    if let Some(t) = body["AutoTerminationPolicy"]["IdleTimeout"].as_i64() {
        if !(60..=604_800).contains(&t) {
            return Some(format!(
                "The idle timeout {t} is out of range (60 to 604800 seconds)."
            ));
        }
        if !has_auto_termination(label) {
            return Some(format!(
                "Auto-termination is not supported on release {label}."
            ));
        }
    }
    if let Some(n) = body["StepConcurrencyLevel"].as_i64() {
        if !(1..=256).contains(&n) {
            return Some(format!(
                "StepConcurrencyLevel {n} must be between 1 and 256."
            ));
        }
        let (major, minor) = release(label);
        if (major, minor) < (5, 28) {
            return Some(format!(
                "StepConcurrencyLevel is not supported on release {label}."
            ));
        }
    }
    for app in body["Applications"].as_array().into_iter().flatten() {
        let name = app["Name"].as_str().unwrap_or("");
        if !APPLICATIONS.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            return Some(format!("Application {name} is not supported on {label}."));
        }
    }
    let instances = &body["Instances"];
    if instances["InstanceGroups"].is_array() && instances["Ec2SubnetIds"].is_array() {
        return Some("Ec2SubnetIds is only supported with instance fleets.".into());
    }
    None
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
                return error("ThrottlingException", "injected: Rate exceeded");
            }
            if let Some(why) = refuse_request(body) {
                return error("ValidationException", &why);
            }
            if s.script.invalid_creates {
                return error(
                    "ValidationException",
                    "injected: The requested instance type m5.xlarge is not supported in the requested Availability Zone",
                );
            }
            let n = s.clusters.len() + 1;
            let id = format!("j-TEST{n:08}");
            let steps = step_records(body["Steps"].as_array().map_or(&[][..], |v| v), n, 0);
            s.clusters.push(Cluster {
                id: id.clone(),
                name: body["Name"].as_str().unwrap_or("").to_string(),
                state: "STARTING".into(),
                reason: (String::new(), String::new()),
                steps,
                request: body.clone(),
                peak_running: 0,
                peak_active: 0,
            });
            let created = s.clusters.iter().filter(|c| !c.request.is_null()).count() as u32;
            let fate = Fate {
                bootstrap_fails: created <= s.script.bootstrap_failures,
                stuck: created <= s.script.stuck_starting,
            };
            let answer_lost = created <= s.script.lose_create_answers;
            drop(s);
            tokio::spawn(lifecycle(st.clone(), env.clone(), id.clone(), fate));
            if answer_lost {
                return (
                    "500 Internal Server Error",
                    json!({"__type": "InternalServerException", "Message": "injected: the answer was lost"}),
                );
            }
            (
                "200 OK",
                json!({"JobFlowId": id, "ClusterArn": format!("arn:aws:elasticmapreduce:us-east-1:123456789012:cluster/{id}")}),
            )
        }
        "AddJobFlowSteps" => {
            s.add_step_calls += 1;
            let id = body["JobFlowId"].as_str().unwrap_or("");
            let Some(n) = s.clusters.iter().position(|c| c.id == id) else {
                return error(
                    "ValidationException",
                    &format!("Cluster id '{id}' is not valid."),
                );
            };
            let c = &mut s.clusters[n];
            if c.state.starts_with("TERMINAT") {
                return error(
                    "ValidationException",
                    &format!("A job flow that is shutting down, terminated, or finished may not be modified: {id}"),
                );
            }
            let new = body["Steps"].as_array().cloned().unwrap_or_default();
            if new
                .iter()
                .any(|s| s["Name"].as_str().unwrap_or("").len() > 256)
            {
                return error(
                    "ValidationException",
                    "Member must have length less than or equal to 256",
                );
            }
            let pending = c
                .steps
                .iter()
                .filter(|s| s.state == "PENDING" || s.state == "RUNNING")
                .count();
            if pending + new.len() > 256 {
                return error("ValidationException", "Maximum number of active steps(State = 'Running', 'Pending' or 'Cancel_Pending') for cluster exceeded.");
            }
            let records = step_records(&new, n + 1, c.steps.len());
            let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
            c.steps.extend(records);
            c.peak_active = c.peak_active.max(pending + new.len());
            ("200 OK", json!({"StepIds": ids}))
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
            let terminated = s
                .clusters
                .iter()
                .any(|c| c.id == id && c.state.starts_with("TERMINATED"));
            if terminated && s.list_steps_failures < s.script.fail_list_steps_when_terminated {
                s.list_steps_failures += 1;
                return (
                    "500 Internal Server Error",
                    json!({"__type": "InternalServerException", "Message": "injected"}),
                );
            }
            match s.clusters.iter().find(|c| c.id == id) {
                // EMR lists the newest step first.
                Some(c) => (
                    "200 OK",
                    json!({"Steps": c.steps.iter().rev().map(|st| {
                        let mut status = json!({"State": st.state});
                        if let Some(f) = &st.failure {
                            status["FailureDetails"] = json!({"Reason": "Step failed", "Message": f, "LogFile": format!("s3://logs/{}/steps/{}/stderr.gz", c.id, st.id)});
                        }
                        json!({"Id": st.id, "Name": st.name, "Config": {"Jar": st.jar, "Args": st.args}, "Status": status})
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

/// What becomes of a new cluster.
#[derive(Debug, Clone, Copy)]
struct Fate {
    bootstrap_fails: bool,
    stuck: bool,
}

fn with<T>(st: &Mutex<State>, id: &str, f: impl FnOnce(&mut Cluster) -> T) -> T {
    let mut s = st.lock().unwrap();
    let c = s.clusters.iter_mut().find(|c| c.id == id).unwrap();
    f(c)
}

fn terminated(st: &Mutex<State>, id: &str) -> bool {
    with(st, id, |c| c.state.starts_with("TERMINATED"))
}

/// The service's own clock: how long its clusters wait between looks at their steps.
const TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// A cluster's life: STARTING, BOOTSTRAPPING, RUNNING (its steps, one after the other;
/// WAITING between them when it is kept alive), TERMINATING, then TERMINATED or
/// TERMINATED_WITH_ERRORS.
async fn lifecycle(st: Arc<Mutex<State>>, env: StepEnv, id: String, fate: Fate) {
    tokio::task::yield_now().await;
    if fate.stuck {
        return; // STARTING until terminated
    }
    with(&st, &id, |c| c.state = "BOOTSTRAPPING".into());
    tokio::task::yield_now().await;
    let (script, request) = {
        let s = st.lock().unwrap();
        let c = s.clusters.iter().find(|c| c.id == id).unwrap();
        (s.script.clone(), c.request.clone())
    };
    let tagged =
        request["Tags"].as_array().into_iter().flatten().any(|t| {
            t["Key"] == "for-use-with-amazon-emr-managed-policies" && t["Value"] == "true"
        });
    let launch_fails = !script.v1_service_policy && !tagged;
    if fate.bootstrap_fails || launch_fails {
        with(&st, &id, |c| {
            c.state = "TERMINATED_WITH_ERRORS".into();
            c.reason = if launch_fails {
                ("VALIDATION_ERROR".into(), "The EMR service role is not authorized to perform ec2:RunInstances: resources must be tagged for-use-with-amazon-emr-managed-policies=true (AmazonEMRServicePolicy_v2)".into())
            } else {
                ("BOOTSTRAP_FAILURE".into(), "On the master instance (i-0123), bootstrap action 1 returned a non-zero return code".into())
            };
            for step in &mut c.steps {
                step.state = "CANCELLED".into();
            }
        });
        return;
    }
    let keep_alive = request["Instances"]["KeepJobFlowAliveWhenNoSteps"] == true;
    let label = request["ReleaseLabel"].as_str().unwrap_or("").to_string();
    let apps: Vec<String> = request["Applications"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["Name"].as_str().map(str::to_string))
        .collect();
    with(&st, &id, |c| c.state = "RUNNING".into());
    let mut any_failed = false;
    let mut ran = 0;
    loop {
        if terminated(&st, &id) {
            return;
        }
        let next = with(&st, &id, |c| {
            c.steps
                .iter()
                .position(|s| s.state == "PENDING")
                .map(|i| (i, c.steps[i].clone()))
        });
        let Some((i, step)) = next else {
            if keep_alive {
                with(&st, &id, |c| {
                    if c.state == "RUNNING" {
                        c.state = "WAITING".into();
                    }
                });
                tokio::time::sleep(TICK).await;
                continue;
            }
            break;
        };
        if script.die_after_steps == Some(ran) {
            with(&st, &id, |c| {
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
        with(&st, &id, |c| {
            c.state = "RUNNING".into();
            c.steps[i].state = "RUNNING".into();
            let running = c.steps.iter().filter(|s| s.state == "RUNNING").count();
            c.peak_running = c.peak_running.max(running);
        });
        if script.hang {
            return; // until TerminateJobFlows
        }
        let failing = script
            .fail_steps_of
            .iter()
            .any(|end| step.name.ends_with(end.as_str()));
        let result = if failing {
            Err("injected: Error: java.lang.RuntimeException: the task failed 4 times".to_string())
        } else {
            let (env, step, label, apps) = (env.clone(), step.clone(), label.clone(), apps.clone());
            tokio::task::spawn_blocking(move || run_step(&env, &label, &apps, &step))
                .await
                .unwrap()
        };
        ran += 1;
        any_failed |= result.is_err();
        with(&st, &id, |c| {
            let s = &mut c.steps[i];
            match result {
                Ok(hql) => {
                    s.state = "COMPLETED".into();
                    s.hql = hql;
                }
                Err(e) => {
                    s.state = "FAILED".into();
                    s.failure = Some(e);
                }
            }
        });
    }
    with(&st, &id, |c| c.state = "TERMINATING".into());
    tokio::task::yield_now().await;
    with(&st, &id, |c| {
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

/// Carry out one step; returns the HiveQL it ran, for a Hive step.
fn run_step(
    env: &StepEnv,
    label: &str,
    apps: &[String],
    step: &StepRecord,
) -> Result<Option<String>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ctx = StepCtx {
        env,
        ddb: dynamodb(&env.dynamodb),
        rt: &rt,
    };
    if step.jar == "command-runner.jar" {
        let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
        if args.first() != Some(&"hive-script") {
            return Err(format!(
                "command-runner.jar: {args:?} is not a program of this stand-in"
            ));
        }
        if !apps.iter().any(|a| a.eq_ignore_ascii_case("Hive")) {
            return Err("Cannot run program \"hive-script\": error=2, No such file or directory (the cluster has no Hive)".into());
        }
        let script = args
            .iter()
            .position(|a| *a == "-f")
            .and_then(|i| args.get(i + 1))
            .ok_or("hive-script: no -f SCRIPT")?;
        let text = s3_get(&env.s3, script).ok_or_else(|| format!("{script}: No such file"))?;
        let text = String::from_utf8(text).map_err(|e| e.to_string())?;
        run_hql(&ctx, &text)?;
        return Ok(Some(text));
    }
    let class = step.args.first().map(String::as_str).unwrap_or("");
    let legacy = step.jar.contains("emr-ddb-2.1.0")
        || class.ends_with("DynamoDbExport")
        || class.ends_with("DynamoDbImport");
    if legacy && release(label).0 >= 6 {
        return Err("Exception in thread \"main\" java.lang.NoSuchMethodError: 'com.amazonaws.services.dynamodbv2.model.TableDescription org.apache.hadoop.dynamodb.DynamoDBClient.describeTable(java.lang.String)'".into());
    }
    let (settings, rest): (Vec<&String>, Vec<&String>) =
        step.args[1..].iter().partition(|a| a.starts_with("-D"));
    let settings: HashMap<String, String> = settings
        .iter()
        .filter_map(|a| {
            a[2..]
                .split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    match class {
        "org.apache.hadoop.dynamodb.tools.DynamoDBExport" => {
            tools_export(&ctx, &settings, rest[0], rest[1]).map(|()| None)
        }
        "org.apache.hadoop.dynamodb.tools.DynamoDBImport" => {
            tools_import(&ctx, rest[0], rest[1]).map(|()| None)
        }
        other => Err(format!("java.lang.ClassNotFoundException: {other}")),
    }
}

struct StepCtx<'a> {
    env: &'a StepEnv,
    ddb: aws_sdk_dynamodb::Client,
    rt: &'a tokio::runtime::Runtime,
}

fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "emr",
            "emr",
            None,
            None,
            "emr-stand-in",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

type Item = HashMap<String, AttributeValue>;

impl StepCtx<'_> {
    fn key_names(&self, table: &str) -> Result<Vec<String>, String> {
        let d = self
            .rt
            .block_on(self.ddb.describe_table().table_name(table).send())
            .map_err(|e| format!("ResourceNotFoundException: {table}: {e}"))?;
        Ok(d.table()
            .map(|t| {
                t.key_schema()
                    .iter()
                    .map(|k| k.attribute_name().to_string())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every item of segment `segment` of `total`.
    fn scan(&self, table: &str, segment: i32, total: i32) -> Result<Vec<Item>, String> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .rt
                .block_on(
                    self.ddb
                        .scan()
                        .table_name(table)
                        .segment(segment)
                        .total_segments(total)
                        .set_exclusive_start_key(start)
                        .send(),
                )
                .map_err(|e| format!("Scan {table}: {e}"))?;
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// BatchWriteItem, 25 at a time, unprocessed items resent.
    fn write(&self, table: &str, items: Vec<Item>) -> Result<(), String> {
        for chunk in items.chunks(25) {
            let mut reqs: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(i.clone()))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect();
            while !reqs.is_empty() {
                let out = self
                    .rt
                    .block_on(
                        self.ddb
                            .batch_write_item()
                            .request_items(table, reqs)
                            .send(),
                    )
                    .map_err(|e| format!("BatchWriteItem {table}: {e}"))?;
                reqs = out
                    .unprocessed_items()
                    .and_then(|u| u.get(table))
                    .cloned()
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}

// ---- HiveQL ----

/// A Hive table of a step's script.
#[derive(Debug, Clone)]
enum HiveTable {
    /// Over the DynamoDB storage handler.
    Dynamo {
        table: String,
        column: String,
        properties: HashMap<String, String>,
    },
    /// Text files in S3.
    Text { location: String, column: String },
}

/// Split a script into statements at `;` outside quotes, comments dropped.
fn statements(text: &str) -> Vec<String> {
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The single-quoted strings of a text, in order.
fn quoted_strings(text: &str) -> Vec<String> {
    text.split('\'')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// The column of `CREATE EXTERNAL TABLE name (col TYPE)`.
fn column(stmt: &str) -> Result<(String, String), String> {
    let open = stmt.find('(').ok_or("ParseException: no column list")?;
    let close = stmt[open..]
        .find(')')
        .ok_or("ParseException: no column list")?
        + open;
    let inner = stmt[open + 1..close].trim();
    let (name, ty) = inner.split_once(' ').ok_or("ParseException: column")?;
    Ok((name.to_string(), ty.trim().to_uppercase()))
}

fn run_hql(ctx: &StepCtx<'_>, text: &str) -> Result<(), String> {
    let mut settings: HashMap<String, String> = HashMap::new();
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    let mut tables: HashMap<String, HiveTable> = HashMap::new();
    for stmt in statements(text) {
        let upper = stmt.to_uppercase();
        let w = words(&stmt);
        if upper.starts_with("SET ") {
            let (k, v) = stmt[4..]
                .split_once('=')
                .ok_or_else(|| format!("ParseException: {stmt}"))?;
            settings.insert(k.trim().to_string(), v.trim().to_string());
        } else if upper.starts_with("ADD FILE ") {
            let url = quoted_strings(&stmt)
                .first()
                .cloned()
                .ok_or("ParseException: ADD FILE")?;
            let body = s3_get(&ctx.env.s3, &url).ok_or_else(|| format!("{url}: No such file"))?;
            let name = url.rsplit('/').next().unwrap().to_string();
            let dir = ctx
                .env
                .scratch
                .join(format!("hive-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(&name);
            std::fs::write(&path, body).unwrap();
            files.insert(name, path);
        } else if upper.starts_with("CREATE EXTERNAL TABLE ") {
            let name = w[3].split('(').next().unwrap().to_string();
            let (col, ty) = column(&stmt)?;
            if upper.contains("STORED BY") {
                let q = quoted_strings(&stmt);
                if q.first().map(String::as_str)
                    != Some("org.apache.hadoop.hive.dynamodb.DynamoDBStorageHandler")
                {
                    return Err(format!(
                        "SemanticException: storage handler {:?}",
                        q.first()
                    ));
                }
                let properties: HashMap<String, String> = q[1..]
                    .chunks(2)
                    .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
                    .collect();
                let table = properties
                    .get("dynamodb.table.name")
                    .cloned()
                    .ok_or("MetaException: dynamodb.table.name is required")?;
                if ty != "MAP<STRING,STRING>" {
                    return Err(format!(
                        "MetaException: column type {ty} (this stand-in maps an item column only)"
                    ));
                }
                // HiveDynamoDBItemType: the item column may not be named as a key attribute.
                if ctx
                    .key_names(&table)?
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&col))
                {
                    return Err(format!("MetaException: Column name {col} cannot be the same as a key attribute of {table}"));
                }
                tables.insert(
                    name,
                    HiveTable::Dynamo {
                        table,
                        column: col,
                        properties,
                    },
                );
            } else {
                let location = quoted_strings(&stmt)
                    .into_iter()
                    .find(|q| q.starts_with("s3://"))
                    .ok_or("SemanticException: no LOCATION")?;
                if upper.contains("MAP<STRING,STRING>")
                    && !(stmt.contains("COLLECTION ITEMS TERMINATED BY '\\002'")
                        && stmt.contains("MAP KEYS TERMINATED BY '\\003'"))
                {
                    return Err(
                        "this stand-in reads and writes Hive's default \\002/\\003 map text only"
                            .into(),
                    );
                }
                tables.insert(
                    name,
                    HiveTable::Text {
                        location,
                        column: col,
                    },
                );
            }
        } else if upper.starts_with("INSERT OVERWRITE TABLE ") {
            // INSERT OVERWRITE TABLE out SELECT col FROM in
            let (out, input) = (&w[3], &w[w.len() - 1]);
            let (Some(o), Some(i)) = (tables.get(out), tables.get(input)) else {
                return Err(format!("SemanticException: unknown table in {stmt}"));
            };
            match (i, o) {
                (
                    HiveTable::Dynamo {
                        table, properties, ..
                    },
                    HiveTable::Text { location, .. },
                ) => hive_export(ctx, &settings, table, properties, location)?,
                (HiveTable::Text { location, .. }, HiveTable::Dynamo { table, .. }) => {
                    let mut items = Vec::new();
                    for (_, line) in text_lines(ctx, location, None)? {
                        items.push(connector::from_hive_map(&line)?);
                    }
                    ctx.write(table, items)?;
                }
                _ => return Err(format!("this stand-in does not run {stmt}")),
            }
        } else if upper.starts_with("FROM (") && upper.contains("TRANSFORM") {
            hive_transform_import(ctx, &tables, &files, &stmt)?;
        } else if upper.starts_with("DROP TABLE ") {
            tables.remove(&w[2]);
        } else {
            return Err(format!(
                "ParseException: this stand-in does not know {stmt:?}"
            ));
        }
    }
    Ok(())
}

/// INSERT OVERWRITE TABLE <text in S3> SELECT item FROM <DynamoDB>: one file a map task
/// (`dynamodb.scan.segments`, else one), gzip when the session says so.
fn hive_export(
    ctx: &StepCtx<'_>,
    settings: &HashMap<String, String>,
    table: &str,
    properties: &HashMap<String, String>,
    location: &str,
) -> Result<(), String> {
    if !properties.contains_key("dynamodb.throughput.read") {
        return Err("this stand-in expects the rate in the table's properties".into());
    }
    let segments: i32 = settings
        .get("dynamodb.scan.segments")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let gzip = settings
        .get("hive.exec.compress.output")
        .map(String::as_str)
        == Some("true")
        && settings
            .get("mapreduce.output.fileoutputformat.compress.codec")
            .is_some_and(|c| c.ends_with("GzipCodec"));
    s3_delete_under(&ctx.env.s3, location);
    for seg in 0..segments {
        let items = ctx.scan(table, seg, segments)?;
        let mut text = String::new();
        for item in &items {
            text.push_str(&connector::hive_line(item));
            text.push('\n');
        }
        let name = format!("{seg:06}_0{}", if gzip { ".gz" } else { "" });
        let body = if gzip {
            gzip_bytes(text.as_bytes())
        } else {
            text.into_bytes()
        };
        s3_put(
            &ctx.env.s3,
            &format!("{}/{name}", location.trim_end_matches('/')),
            &body,
        );
    }
    Ok(())
}

/// The lines of a text table's files (hidden files skipped; only `only`, when given).
fn text_lines(
    ctx: &StepCtx<'_>,
    location: &str,
    only: Option<&[String]>,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for url in s3_list(&ctx.env.s3, location) {
        let name = url.rsplit('/').next().unwrap().to_string();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        if only.is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let body = s3_get(&ctx.env.s3, &url).unwrap();
        let text = if name.ends_with(".gz") {
            let mut s = String::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .read_to_string(&mut s)
                .map_err(|e| format!("{url}: {e}"))?;
            s
        } else {
            String::from_utf8(body).map_err(|e| format!("{url}: {e}"))?
        };
        // Hadoop's LineReader: \n, \r or \r\n end a line.
        for line in text.split('\n').flat_map(|l| l.split('\r')) {
            if !line.is_empty() {
                out.push((name.clone(), line.to_string()));
            }
        }
    }
    Ok(out)
}

/// `FROM (SELECT TRANSFORM (line) ... USING 'cmd' AS (...) FROM src [WHERE file IN (...)])
/// x INSERT OVERWRITE TABLE dst SELECT col WHERE kind = 'item' INSERT OVERWRITE DIRECTORY
/// 'd' SELECT raw WHERE kind = 'k' ...`: the script run over the source's lines, its rows
/// routed by kind.
fn hive_transform_import(
    ctx: &StepCtx<'_>,
    tables: &HashMap<String, HiveTable>,
    files: &HashMap<String, PathBuf>,
    stmt: &str,
) -> Result<(), String> {
    let using = stmt
        .find("USING '")
        .ok_or("ParseException: TRANSFORM without USING")?
        + 7;
    let cmd: Vec<&str> = stmt[using..]
        .split('\'')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    if cmd.first() != Some(&"python3") {
        return Err(format!("this stand-in runs python3 scripts only: {cmd:?}"));
    }
    let script = files
        .get(cmd[1])
        .ok_or_else(|| format!("{}: not a file added to the session (ADD FILE)", cmd[1]))?;
    let inner_end = stmt.find(") lines").ok_or("ParseException: subquery")?;
    let inner = &stmt[..inner_end];
    let src_at = inner.rfind("FROM ").ok_or("ParseException: FROM")?;
    let src_name = inner[src_at + 5..].split_whitespace().next().unwrap();
    let Some(HiveTable::Text { location, .. }) = tables.get(src_name) else {
        return Err(format!("SemanticException: {src_name} is not a text table"));
    };
    let only: Option<Vec<String>> = inner
        .find("INPUT__FILE__NAME")
        .map(|at| quoted_strings(&inner[at..]).into_iter().skip(1).collect());
    let lines = text_lines(ctx, location, only.as_deref())?;
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(&cmd[2..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Fed from a thread of its own, as Hive's operator does: the script writes while it
    // reads, and a pipe holds only so much.
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for (_, l) in &lines {
            stdin.write_all(l.as_bytes())?;
            stdin.write_all(b"\n")?;
        }
        Ok::<_, std::io::Error>(())
    });
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    feeder
        .join()
        .unwrap()
        .map_err(|e| format!("feeding the script: {e}"))?;
    if !out.status.success() {
        return Err(format!("[Error 20003]: An error occurred when trying to close the Operator running your custom script ({})", out.status));
    }
    let rows: Vec<(String, String, String)> = String::from_utf8(out.stdout)
        .map_err(|e| e.to_string())?
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '\u{1}');
            (
                f.next().unwrap_or("").to_string(),
                f.next().unwrap_or("").to_string(),
                f.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    let after = &stmt[inner_end..];
    for insert in after.split("INSERT OVERWRITE ").skip(1) {
        let kind = quoted_strings(insert)
            .last()
            .cloned()
            .ok_or("ParseException: WHERE kind")?;
        let equal = insert.contains(&format!("kind = '{kind}'"));
        let chosen = rows.iter().filter(|r| (r.0 == kind) == equal);
        if let Some(rest) = insert.strip_prefix("TABLE ") {
            let dst = rest.split_whitespace().next().unwrap();
            let Some(HiveTable::Dynamo { table, .. }) = tables.get(dst) else {
                return Err(format!("SemanticException: {dst} is not a DynamoDB table"));
            };
            let mut items = Vec::new();
            for r in chosen {
                // DynamoDBSerDe: the item column to AttributeValues, then BatchWriteItem
                // (a typeless value is refused, and the task with it).
                items.push(connector::from_hive_map(&r.1)?);
            }
            ctx.write(table, items)?;
        } else if insert.starts_with("DIRECTORY ") {
            let dir = quoted_strings(insert).first().cloned().unwrap();
            s3_delete_under(&ctx.env.s3, &dir);
            let mut text = String::new();
            for r in chosen {
                text.push_str(&r.2);
                text.push('\n');
            }
            s3_put(
                &ctx.env.s3,
                &format!("{}/000000_0", dir.trim_end_matches('/')),
                text.as_bytes(),
            );
        } else {
            return Err(format!("ParseException: INSERT OVERWRITE {insert}"));
        }
    }
    Ok(())
}

// ---- the connector's tools ----

/// DynamoDBExport: UUID-named files (100,000 items each) and a manifest (version 3) of
/// their absolute URLs, in the output folder.
fn tools_export(
    ctx: &StepCtx<'_>,
    settings: &HashMap<String, String>,
    path: &str,
    table: &str,
) -> Result<(), String> {
    let gzip = settings
        .get("mapreduce.output.fileoutputformat.compress")
        .map(String::as_str)
        == Some("true");
    let items = ctx.scan(table, 0, 1)?;
    let mut urls = Vec::new();
    for chunk in items
        .chunks(100_000)
        .chain(items.is_empty().then_some(&[][..]))
    {
        let mut text = String::new();
        for item in chunk {
            text.push_str(&connector::tools_line(item));
            text.push('\n');
        }
        let name = format!("{}{}", uuid::Uuid::new_v4(), if gzip { ".gz" } else { "" });
        let url = format!("{}/{name}", path.trim_end_matches('/'));
        let body = if gzip {
            gzip_bytes(text.as_bytes())
        } else {
            text.into_bytes()
        };
        s3_put(&ctx.env.s3, &url, &body);
        urls.push(url);
    }
    let entries: Vec<String> = urls
        .iter()
        .map(|u| format!("{{\"url\":\"{u}\",\"mandatory\":true}}"))
        .collect();
    let manifest = format!(
        "{{\"name\":\"DynamoDB-export\",\"version\":3,\n\"entries\": [\n{}\n]}}",
        entries.join(",\n")
    );
    s3_put(
        &ctx.env.s3,
        &format!("{}/manifest", path.trim_end_matches('/')),
        manifest.as_bytes(),
    );
    Ok(())
}

/// DynamoDBImport: the manifest's URLs read as written (absolute), each line an item.
fn tools_import(ctx: &StepCtx<'_>, path: &str, table: &str) -> Result<(), String> {
    let manifest = s3_get(
        &ctx.env.s3,
        &format!("{}/manifest", path.trim_end_matches('/')),
    )
    .ok_or_else(|| format!("{path}: no manifest"))?;
    let manifest: Value = serde_json::from_slice(&manifest).map_err(|e| e.to_string())?;
    if manifest["version"] != 3 {
        return Err("Unknown version".into());
    }
    let mut items = Vec::new();
    for e in manifest["entries"].as_array().into_iter().flatten() {
        let url = e["url"].as_str().unwrap_or("");
        let body = s3_get(&ctx.env.s3, url).ok_or_else(|| {
            format!("java.io.FileNotFoundException: No such file or directory '{url}'")
        })?;
        let text = if url.ends_with(".gz") {
            let mut s = String::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .read_to_string(&mut s)
                .map_err(|e| e.to_string())?;
            s
        } else {
            String::from_utf8(body).map_err(|e| e.to_string())?
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            items.push(connector::from_tools_line(line.trim())?);
        }
    }
    ctx.write(table, items)
}

// ---- S3 (signed, as the cluster's instance role signs) ----

fn split(url: &str) -> (&str, &str) {
    url.trim_start_matches("s3://")
        .split_once('/')
        .unwrap_or((url, ""))
}

/// A client of one bucket of the S3 emulator, and the key within it.
fn bucket(s3: &str, url: &str) -> (object_store::aws::AmazonS3, object_store::path::Path) {
    let (bucket, key) = split(url);
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("emr")
        .with_secret_access_key("emr")
        .with_endpoint(s3)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    (store, object_store::path::Path::from(key))
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn s3_get(s3: &str, url: &str) -> Option<Vec<u8>> {
    use object_store::ObjectStore;
    let (store, key) = bucket(s3, url);
    block_on(async { store.get(&key).await.ok()?.bytes().await.ok() }).map(|b| b.to_vec())
}

fn s3_put(s3: &str, url: &str, body: &[u8]) {
    use object_store::ObjectStore;
    let (store, key) = bucket(s3, url);
    block_on(store.put(&key, object_store::PutPayload::from(body.to_vec())))
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
}

/// Every object under a folder's URL, as URLs.
fn s3_list(s3: &str, folder: &str) -> Vec<String> {
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let (store, prefix) = bucket(s3, folder);
    let b = split(folder).0.to_string();
    let listed: Vec<object_store::ObjectMeta> =
        block_on(store.list(Some(&prefix)).try_collect()).unwrap_or_default();
    listed
        .into_iter()
        .map(|o| format!("s3://{b}/{}", o.location))
        .collect()
}

fn s3_delete_under(s3: &str, folder: &str) {
    use object_store::ObjectStore;
    for url in s3_list(s3, folder) {
        let (store, key) = bucket(s3, &url);
        let _ = block_on(store.delete(&key));
    }
}

fn gzip_bytes(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}
