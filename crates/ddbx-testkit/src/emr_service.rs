//! A strict stand-in for AWS EMR. It speaks the EMR JSON protocol for the calls ddbx makes
//! (RunJobFlow, AddJobFlowSteps, ListClusters, DescribeCluster, ListSteps,
//! TerminateJobFlows), refuses what EMR refuses (more than 256 steps, step names over 256
//! characters, an IdleTimeout or StepConcurrencyLevel out of range or on a release that
//! lacks it, unknown applications, subnets that do not fit the instance configuration; a
//! cluster under the managed service policy without its tag cannot launch), and its
//! clusters follow EMR's states with scriptable failures.
//!
//! It also refuses release labels EMR does not publish, tags longer than EMR takes, and
//! (under the v2 managed policy) a network without the policy's tag, which ends the
//! cluster with VALIDATION_ERROR as EMR does. Its steps start one after the other as soon
//! as the previous ends (or as many at once as StepConcurrencyLevel says), each with its
//! creation, start and end times in ListSteps' Timeline, and last at least as long as the
//! script says (a Hive step on EMR takes tens of seconds whatever the table).
//!
//! Its steps run for real against the emulators, with code of their own (none of ddbx's):
//! a Hive step (`command-runner.jar hive-script ... -f s3://....q`) needs the cluster's
//! Hive, and its script is read as Hive reads it (`support::hive`: the CLI's processors,
//! HiveQL's tokens and grammar, TRANSFORM with its row formats and environment, run by this
//! machine's Python as the release's `python3` runs in a YARN container); a connector
//! tools step (`CUSTOM_JAR`) must name the tools' classes and a jar that can run on the
//! release. Items go through `support::connector`, the connector's codec: an empty list or
//! map fails the write as the connector fails it.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::connector;
use crate::fault_proxy::read_message;
use crate::hive;

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
    /// The subnet and security groups carry no managed-policy tag: under the v2 policy the
    /// launch fails (VALIDATION_ERROR).
    pub untagged_network: bool,
    /// Each step lasts at least this many seconds (a Hive step's start-up and job).
    pub step_seconds: f64,
    /// A step ends only once ListSteps has shown it running this many times (how long it
    /// takes, counted in the caller's looks: deterministic ordering tests).
    pub step_polls: u32,
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
    /// When it was added, started and ended.
    pub created: SystemTime,
    pub started: Option<SystemTime>,
    pub ended: Option<SystemTime>,
    /// ListSteps answers that showed it running.
    pub seen_running: u32,
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
            created: SystemTime::now(),
            started: None,
            ended: None,
            seen_running: 0,
        })
        .collect()
}

/// The release labels EMR publishes (the Release Guide's application-version tables).
fn published(label: &str) -> bool {
    const V5: &str = "36.2 36.1 36.0 35.0 34.0 33.1 33.0 32.1 32.0 31.1 31.0 30.2 30.1 30.0 29.0 28.1 28.0 27.1 27.0 26.0 25.0 24.1 24.0 23.1 23.0 22.0 21.2 21.1 21.0 20.1 20.0 19.1 19.0 18.1 18.0 17.2 17.1 17.0 16.1 16.0 15.1 15.0 14.2 14.1 14.0 13.1 13.0 12.3 12.2 12.1 12.0 11.4 11.3 11.2 11.1 11.0 10.1 10.0 9.1 9.0 8.3 8.2 8.1 8.0 7.1 7.0 6.1 6.0 5.4 5.3 5.2 5.1 5.0 4.1 4.0 3.2 3.1 3.0 2.3 2.2 2.1 2.0 1.1 1.0 0.3 0.2 0.1 0.0";
    const V6: &str = "15.0 14.0 13.0 12.0 11.1 11.0 10.1 10.0 9.1 9.0 8.1 8.0 7.0 6.0 5.0 4.0 3.1 3.0 2.1 2.0 1.1 1.0 0.1 0.0";
    const V7: &str = "13.0 12.0 11.0 10.0 9.0 8.0 7.0 6.0 5.0 4.0 3.0 2.0 1.0 0.0";
    const V4: &str = "9.6 9.5 9.4 9.3 9.2 9.1 9.0 8.5 8.4 8.3 8.2 8.1 8.0 7.4 7.3 7.2 7.1 7.0 6.1 6.0 5.0 4.0 3.0 2.0 1.0 0.0";
    let Some((major, rest)) = label.strip_prefix("emr-").and_then(|r| r.split_once('.')) else {
        return false;
    };
    let list = match major {
        "4" => V4,
        "5" => V5,
        "6" => V6,
        "7" => V7,
        _ => return false,
    };
    list.split(' ').any(|v| v == rest)
}

/// The release's `python3` (AWS: 3.4 on emr-4.6 to 5.19, 3.6 on 5.20 to 5.29, 3.7 with
/// Amazon Linux 2 on 5.30 and 6.x, 3.9 on 7.x).
fn python3_of(label: &str) -> (u32, u32) {
    match release(label) {
        (7.., _) => (3, 9),
        (6, _) => (3, 7),
        (5, m) if m >= 30 => (3, 7),
        (5, m) if m >= 20 => (3, 6),
        _ => (3, 4),
    }
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// What RunJobFlow refuses, as EMR's API reference says.
fn refuse_request(body: &Value) -> Option<String> {
    let label = body["ReleaseLabel"].as_str().unwrap_or("");
    if !published(label) {
        return Some(format!("Specified release label {label} is not valid."));
    }
    for t in body["Tags"].as_array().into_iter().flatten() {
        let (k, v) = (
            t["Key"].as_str().unwrap_or(""),
            t["Value"].as_str().unwrap_or(""),
        );
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Some(format!("1 validation error detected: Value at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256 (tag {k})"));
        }
    }
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

/// An answer: its status and its JSON body.
type Answer = (&'static str, Value);

/// One call of the EMR API; a cluster that RunJobFlow creates starts its life.
fn handle(st: &Arc<Mutex<State>>, env: &StepEnv, target: &str, body: &Value) -> Answer {
    let op = target.rsplit('.').next().unwrap_or("");
    let mut s = st.lock().unwrap();
    match op {
        "RunJobFlow" => {
            let (answer, created) = s.run_job_flow(body);
            drop(s);
            if let Some((id, fate)) = created {
                tokio::spawn(lifecycle(st.clone(), env.clone(), id, fate));
            }
            answer
        }
        "AddJobFlowSteps" => s.add_job_flow_steps(body),
        "ListClusters" => s.list_clusters(body),
        "DescribeCluster" => s.describe_cluster(body),
        "ListSteps" => s.list_steps(body),
        "TerminateJobFlows" => s.terminate_job_flows(body),
        _ => error("UnknownOperationException", op),
    }
}

fn not_valid(id: &str) -> Answer {
    error(
        "InvalidRequestException",
        &format!("Cluster id '{id}' is not valid."),
    )
}

impl State {
    /// RunJobFlow: the answer, and the cluster created (with its fate) unless refused.
    fn run_job_flow(&mut self, body: &Value) -> (Answer, Option<(String, Fate)>) {
        self.creates += 1;
        if self.creates <= self.script.refuse_creates {
            return (
                error("ThrottlingException", "injected: Rate exceeded"),
                None,
            );
        }
        if let Some(why) = refuse_request(body) {
            return (error("ValidationException", &why), None);
        }
        if self.script.invalid_creates {
            let why = "injected: The requested instance type m5.xlarge is not supported in the requested Availability Zone";
            return (error("ValidationException", why), None);
        }
        let n = self.clusters.len() + 1;
        let id = format!("j-TEST{n:08}");
        let steps = step_records(body["Steps"].as_array().map_or(&[][..], |v| v), n, 0);
        self.clusters.push(Cluster {
            id: id.clone(),
            name: body["Name"].as_str().unwrap_or("").to_string(),
            state: "STARTING".into(),
            reason: (String::new(), String::new()),
            steps,
            request: body.clone(),
            peak_running: 0,
            peak_active: 0,
        });
        let created = self
            .clusters
            .iter()
            .filter(|c| !c.request.is_null())
            .count() as u32;
        let fate = Fate {
            bootstrap_fails: created <= self.script.bootstrap_failures,
            stuck: created <= self.script.stuck_starting,
        };
        let answer = if created <= self.script.lose_create_answers {
            (
                "500 Internal Server Error",
                json!({"__type": "InternalServerException", "Message": "injected: the answer was lost"}),
            )
        } else {
            (
                "200 OK",
                json!({"JobFlowId": id, "ClusterArn": format!("arn:aws:elasticmapreduce:us-east-1:123456789012:cluster/{id}")}),
            )
        };
        (answer, Some((id, fate)))
    }

    fn add_job_flow_steps(&mut self, body: &Value) -> Answer {
        self.add_step_calls += 1;
        let id = body["JobFlowId"].as_str().unwrap_or("");
        let Some(n) = self.clusters.iter().position(|c| c.id == id) else {
            return error(
                "ValidationException",
                &format!("Cluster id '{id}' is not valid."),
            );
        };
        let c = &mut self.clusters[n];
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
        let pending = c.steps.iter().filter(|s| s.active()).count();
        if pending + new.len() > 256 {
            return error("ValidationException", "Maximum number of active steps(State = 'Running', 'Pending' or 'Cancel_Pending') for cluster exceeded.");
        }
        let records = step_records(&new, n + 1, c.steps.len());
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        c.steps.extend(records);
        c.peak_active = c.peak_active.max(pending + new.len());
        ("200 OK", json!({"StepIds": ids}))
    }

    fn list_clusters(&self, body: &Value) -> Answer {
        let states: Vec<&str> = body["ClusterStates"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let clusters: Vec<Value> = self
            .clusters
            .iter()
            .filter(|c| states.is_empty() || states.contains(&c.state.as_str()))
            .map(|c| json!({"Id": c.id, "Name": c.name, "Status": {"State": c.state}}))
            .collect();
        ("200 OK", json!({"Clusters": clusters}))
    }

    fn describe_cluster(&self, body: &Value) -> Answer {
        let id = body["ClusterId"].as_str().unwrap_or("");
        match self.clusters.iter().find(|c| c.id == id) {
            Some(c) => (
                "200 OK",
                json!({"Cluster": {"Id": c.id, "Name": c.name, "Status": {
                    "State": c.state,
                    "StateChangeReason": {"Code": c.reason.0, "Message": c.reason.1}
                }}}),
            ),
            None => not_valid(id),
        }
    }

    /// ListSteps, newest step first (as EMR lists them); it counts the looks at running steps.
    fn list_steps(&mut self, body: &Value) -> Answer {
        let id = body["ClusterId"].as_str().unwrap_or("");
        let terminated = self
            .clusters
            .iter()
            .any(|c| c.id == id && c.state.starts_with("TERMINATED"));
        if terminated && self.list_steps_failures < self.script.fail_list_steps_when_terminated {
            self.list_steps_failures += 1;
            return (
                "500 Internal Server Error",
                json!({"__type": "InternalServerException", "Message": "injected"}),
            );
        }
        let Some(c) = self.clusters.iter_mut().find(|c| c.id == id) else {
            return not_valid(id);
        };
        for st in c.steps.iter_mut().filter(|st| st.state == "RUNNING") {
            st.seen_running += 1;
        }
        let steps: Vec<Value> = c.steps.iter().rev().map(|st| st.listed(&c.id)).collect();
        ("200 OK", json!({ "Steps": steps }))
    }

    fn terminate_job_flows(&mut self, body: &Value) -> Answer {
        let ids: Vec<String> = body["JobFlowIds"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        self.terminate_calls.push(ids.clone());
        for c in self.clusters.iter_mut().filter(|c| ids.contains(&c.id)) {
            if !c.state.starts_with("TERMINATED") {
                c.state = "TERMINATED".into();
                c.reason = ("USER_REQUEST".into(), "Terminated by user request".into());
                c.cancel_active();
            }
        }
        ("200 OK", json!({}))
    }
}

impl StepRecord {
    /// Pending or running.
    fn active(&self) -> bool {
        self.state == "PENDING" || self.state == "RUNNING"
    }

    /// The step as ListSteps shows it, on cluster `cluster`.
    fn listed(&self, cluster: &str) -> Value {
        let mut status = json!({"State": self.state});
        let mut timeline = json!({"CreationDateTime": secs(self.created)});
        if let Some(t) = self.started {
            timeline["StartDateTime"] = json!(secs(t));
        }
        if let Some(t) = self.ended {
            timeline["EndDateTime"] = json!(secs(t));
        }
        status["Timeline"] = timeline;
        if let Some(f) = &self.failure {
            status["FailureDetails"] = json!({"Reason": "Step failed", "Message": f, "LogFile": format!("s3://logs/{cluster}/steps/{}/stderr.gz", self.id)});
        }
        json!({"Id": self.id, "Name": self.name, "Config": {"Jar": self.jar, "Args": self.args}, "Status": status})
    }
}

/// What becomes of a new cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Why a cluster that bootstraps fails to launch, if it does: under the v2 managed policy,
/// a cluster or network without the policy's tag; else a scripted bootstrap failure.
fn launch_failure(script: &Script, request: &Value, fate: Fate) -> Option<(String, String)> {
    let tagged =
        request["Tags"].as_array().into_iter().flatten().any(|t| {
            t["Key"] == "for-use-with-amazon-emr-managed-policies" && t["Value"] == "true"
        });
    let launch_fails = !script.v1_service_policy && (!tagged || script.untagged_network);
    if launch_fails {
        let what = if tagged {
            "the subnet and security groups"
        } else {
            "the cluster"
        };
        Some(("VALIDATION_ERROR".into(), format!("The EMR service role is not authorized to perform ec2:RunInstances: {what} must be tagged for-use-with-amazon-emr-managed-policies=true (AmazonEMRServicePolicy_v2)")))
    } else if fate.bootstrap_fails {
        Some((
            "BOOTSTRAP_FAILURE".into(),
            "On the master instance (i-0123), bootstrap action 1 returned a non-zero return code"
                .into(),
        ))
    } else {
        None
    }
}

/// What a launched cluster's RunJobFlow request says of how it runs its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Launch {
    /// Whether it waits for more steps when it has none (else it ends).
    keep_alive: bool,
    label: String,
    apps: Vec<String>,
    /// How many steps it runs at once.
    level: usize,
}

impl Launch {
    fn of(request: &Value) -> Self {
        Launch {
            keep_alive: request["Instances"]["KeepJobFlowAliveWhenNoSteps"] == true,
            label: request["ReleaseLabel"].as_str().unwrap_or("").to_string(),
            apps: request["Applications"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["Name"].as_str().map(str::to_string))
                .collect(),
            level: request["StepConcurrencyLevel"].as_u64().unwrap_or(1).max(1) as usize,
        }
    }
}

/// What a running cluster does next.
#[derive(Debug, Clone)]
enum Next {
    /// Start this pending step (its index and record).
    Start(usize, Box<StepRecord>),
    /// Wait a tick: as many steps run as it may, or none is pending (idle when none runs
    /// either).
    Wait { idle: bool },
}

impl Cluster {
    /// Its first pending step, when fewer than `level` run.
    fn next_step(&self, level: usize) -> Next {
        let running = self.steps.iter().filter(|s| s.state == "RUNNING").count();
        let next = self.steps.iter().position(|s| s.state == "PENDING");
        match next {
            Some(i) if running < level => Next::Start(i, Box::new(self.steps[i].clone())),
            _ => Next::Wait {
                idle: running == 0 && next.is_none(),
            },
        }
    }

    fn start_step(&mut self, i: usize, now: SystemTime) {
        self.state = "RUNNING".into();
        self.steps[i].state = "RUNNING".into();
        self.steps[i].started = Some(now);
        let running = self.steps.iter().filter(|s| s.state == "RUNNING").count();
        self.peak_running = self.peak_running.max(running);
    }

    /// Nothing to run, kept alive: WAITING.
    fn idle(&mut self) {
        if self.state == "RUNNING" {
            self.state = "WAITING".into();
        }
    }

    fn cancel_active(&mut self) {
        for s in self.steps.iter_mut().filter(|s| s.active()) {
            s.state = "CANCELLED".into();
        }
    }

    /// Ended with errors before it ran anything (`reason`): every step cancelled.
    fn fail_launch(&mut self, reason: (String, String)) {
        self.state = "TERMINATED_WITH_ERRORS".into();
        self.reason = reason;
        for step in &mut self.steps {
            step.state = "CANCELLED".into();
        }
    }

    /// Its core instances lost (a scripted death): ended with errors, active steps cancelled.
    fn lose_instances(&mut self) {
        self.state = "TERMINATED_WITH_ERRORS".into();
        self.reason = (
            "INSTANCE_FAILURE".into(),
            "injected: the core instance group was lost".into(),
        );
        self.cancel_active();
    }

    /// Ended after its last step.
    fn complete(&mut self, any_failed: bool) {
        self.state = "TERMINATED".into();
        let message = if any_failed {
            "Steps completed with errors"
        } else {
            "Steps completed"
        };
        self.reason = ("ALL_STEPS_COMPLETED".into(), message.into());
    }
}

/// A cluster's life: STARTING, BOOTSTRAPPING, RUNNING (its steps in order, as many at once
/// as its StepConcurrencyLevel, the next started as soon as one ends; WAITING when it has
/// none and is kept alive), TERMINATING, then TERMINATED or TERMINATED_WITH_ERRORS.
async fn lifecycle(st: Arc<Mutex<State>>, env: StepEnv, id: String, fate: Fate) {
    let Some((script, launch)) = start_up(&st, &id, fate).await else {
        return;
    };
    let Some(any_failed) = run_steps(&st, &env, &id, &script, &launch).await else {
        return;
    };
    with(&st, &id, |c| c.state = "TERMINATING".into());
    tokio::task::yield_now().await;
    with(&st, &id, |c| c.complete(any_failed));
}

/// STARTING, BOOTSTRAPPING, then RUNNING: the script and how it runs its steps, unless it
/// stays STARTING or fails to launch.
async fn start_up(st: &Mutex<State>, id: &str, fate: Fate) -> Option<(Script, Launch)> {
    tokio::task::yield_now().await;
    if fate.stuck {
        return None; // STARTING until terminated
    }
    with(st, id, |c| c.state = "BOOTSTRAPPING".into());
    tokio::task::yield_now().await;
    let (script, request) = {
        let s = st.lock().unwrap();
        let c = s.clusters.iter().find(|c| c.id == id).unwrap();
        (s.script.clone(), c.request.clone())
    };
    if let Some(reason) = launch_failure(&script, &request, fate) {
        with(st, id, |c| c.fail_launch(reason));
        return None;
    }
    with(st, id, |c| c.state = "RUNNING".into());
    Some((script, Launch::of(&request)))
}

/// Run the cluster's steps until it has none left (and is not kept alive): whether any
/// failed; None when it was terminated or died meanwhile.
async fn run_steps(
    st: &Arc<Mutex<State>>,
    env: &StepEnv,
    id: &str,
    script: &Script,
    launch: &Launch,
) -> Option<bool> {
    let mut any_failed = false;
    let mut ran = 0;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if terminated(st, id) {
            return None;
        }
        while let Some(Ok(failed)) = tasks.try_join_next() {
            any_failed |= failed;
        }
        let (i, step) = match with(st, id, |c| c.next_step(launch.level)) {
            Next::Start(i, step) => (i, *step),
            Next::Wait { idle } => {
                if idle {
                    if !launch.keep_alive {
                        break;
                    }
                    with(st, id, Cluster::idle);
                }
                tokio::time::sleep(TICK).await;
                continue;
            }
        };
        if script.die_after_steps == Some(ran) {
            with(st, id, Cluster::lose_instances);
            return None;
        }
        with(st, id, |c| c.start_step(i, SystemTime::now()));
        ran += 1;
        if script.hang {
            continue; // until TerminateJobFlows
        }
        let (st, env, id, script, launch) = (
            st.clone(),
            env.clone(),
            id.to_string(),
            script.clone(),
            launch.clone(),
        );
        tasks.spawn(async move {
            run_and_end(
                &st,
                &env,
                &id,
                i,
                step,
                &script,
                &launch.label,
                &launch.apps,
            )
            .await
        });
    }
    while let Some(Ok(failed)) = tasks.join_next().await {
        any_failed |= failed;
    }
    Some(any_failed)
}

/// One step: carried out, then held until it has lasted as long as the script says; its
/// end recorded unless the cluster cancelled it meanwhile. True when it failed.
#[allow(clippy::too_many_arguments)]
async fn run_and_end(
    st: &Mutex<State>,
    env: &StepEnv,
    id: &str,
    i: usize,
    step: StepRecord,
    script: &Script,
    label: &str,
    apps: &[String],
) -> bool {
    let started = std::time::Instant::now();
    let failing = script
        .fail_steps_of
        .iter()
        .any(|end| step.name.ends_with(end.as_str()));
    let result = if failing {
        Err("injected: Error: java.lang.RuntimeException: the task failed 4 times".to_string())
    } else {
        let (env, step, label, apps) =
            (env.clone(), step.clone(), label.to_string(), apps.to_vec());
        tokio::task::spawn_blocking(move || run_step(&env, &label, &apps, &step))
            .await
            .unwrap()
    };
    let least = std::time::Duration::from_secs_f64(script.step_seconds);
    loop {
        let polls = with(st, id, |c| c.steps[i].seen_running);
        if terminated(st, id) || (started.elapsed() >= least && polls >= script.step_polls) {
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    let failed = result.is_err();
    with(st, id, |c| {
        let s = &mut c.steps[i];
        if s.state != "RUNNING" {
            return;
        }
        s.ended = Some(SystemTime::now());
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
    failed
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
        hive::Session::new(&ctx, python3_of(label)).run_script(&text)?;
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
    /// The table's AttributeDefinitions (its keys and its indexes' keys).
    fn attribute_names(&self, table: &str) -> Result<Vec<String>, String> {
        let d = self
            .rt
            .block_on(self.ddb.describe_table().table_name(table).send())
            .map_err(|e| format!("ResourceNotFoundException: {table}: {e}"))?;
        Ok(d.table()
            .map(|t| {
                t.attribute_definitions()
                    .iter()
                    .map(|a| a.attribute_name().to_string())
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
            let mut reqs = crate::items::put_requests(chunk);
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

// ---- Hive (support::hive) over the emulators ----

impl hive::Io for StepCtx<'_> {
    fn get(&self, url: &str) -> Option<Vec<u8>> {
        s3_get(&self.env.s3, url)
    }
    fn put(&self, url: &str, body: &[u8]) {
        s3_put(&self.env.s3, url, body)
    }
    fn list(&self, folder: &str) -> Vec<String> {
        s3_list(&self.env.s3, folder)
    }
    fn delete_under(&self, folder: &str) {
        s3_delete_under(&self.env.s3, folder)
    }
    fn attribute_names(&self, table: &str) -> Result<Vec<String>, String> {
        StepCtx::attribute_names(self, table)
    }
    fn scan(&self, table: &str, segment: i32, total: i32) -> Result<Vec<Item>, String> {
        StepCtx::scan(self, table, segment, total)
    }
    fn write(&self, table: &str, items: Vec<Item>) -> Result<(), String> {
        StepCtx::write(self, table, items)
    }
    fn scratch(&self) -> PathBuf {
        self.env.scratch.clone()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault_proxy::post_json;

    async fn service(script: Script) -> (EmrService, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let env = StepEnv {
            dynamodb: "http://127.0.0.1:9".into(),
            s3: "http://127.0.0.1:9".into(),
            scratch: dir.path().to_path_buf(),
        };
        (EmrService::start(script, env).await, dir)
    }

    fn cluster(release: &str) -> Value {
        json!({
            "Name": "backup",
            "ReleaseLabel": release,
            "Applications": [{"Name": "Hadoop"}, {"Name": "Hive"}],
            "Instances": {"KeepJobFlowAliveWhenNoSteps": true},
            "ServiceRole": "EMR_DefaultRole",
            "JobFlowRole": "EMR_EC2_DefaultRole",
            "Tags": [{"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}],
        })
    }

    #[tokio::test]
    async fn creates_are_throttled_as_scripted_and_unpublished_releases_refused() {
        let (emr, _dir) = service(Script {
            refuse_creates: 1,
            ..Script::default()
        })
        .await;
        let run = "ElasticMapReduce.RunJobFlow";
        let (head, body) = post_json(&emr.url, run, &cluster("emr-7.5.0")).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
        assert_eq!(body["__type"], "ThrottlingException");
        let (_, body) = post_json(&emr.url, run, &cluster("emr-7.99.0")).await;
        assert_eq!(body["__type"], "ValidationException", "{body}");
        assert!(body["Message"].as_str().unwrap().contains("emr-7.99.0"));
        assert!(emr.clusters().is_empty(), "nothing created yet");
        let (head, body) = post_json(&emr.url, run, &cluster("emr-7.5.0")).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head} {body}");
        let id = body["JobFlowId"].as_str().unwrap().to_string();
        assert_eq!(emr.create_calls(), 3);
        let made = emr.clusters();
        assert_eq!(made.len(), 1);
        assert_eq!(
            (made[0].id.as_str(), made[0].name.as_str()),
            (id.as_str(), "backup")
        );
        // It is described, and terminated when asked.
        let ask = json!({"ClusterId": id});
        let (_, body) = post_json(&emr.url, "ElasticMapReduce.DescribeCluster", &ask).await;
        assert_eq!(body["Cluster"]["Id"], id.as_str(), "{body}");
        let ids = json!({"JobFlowIds": [id]});
        post_json(&emr.url, "ElasticMapReduce.TerminateJobFlows", &ids).await;
        assert_eq!(emr.terminate_calls(), vec![vec![id]]);
    }

    /// A service's state under a script, without a network.
    fn state(script: Script) -> State {
        State {
            script,
            ..State::default()
        }
    }

    fn with_steps(names: &[&str]) -> Value {
        let mut body = cluster("emr-7.5.0");
        body["Steps"] = json!(names
            .iter()
            .map(|n| json!({"Name": n, "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["hive-script", "-f", "s3://b/q"]}}))
            .collect::<Vec<_>>());
        body
    }

    fn code(answer: &Answer) -> &str {
        answer.1["__type"].as_str().unwrap_or("")
    }

    #[test]
    fn run_job_flow_throttles_refuses_and_creates_with_the_scripted_fates() {
        let mut s = state(Script {
            refuse_creates: 1,
            bootstrap_failures: 1,
            stuck_starting: 2,
            lose_create_answers: 1,
            ..Script::default()
        });
        let (answer, created) = s.run_job_flow(&cluster("emr-7.5.0"));
        assert_eq!((code(&answer), created), ("ThrottlingException", None));
        let mut odd = cluster("emr-7.5.0");
        odd["Applications"] = json!([{"Name": "Cobol"}]);
        let (answer, created) = s.run_job_flow(&odd);
        assert_eq!((code(&answer), created), ("ValidationException", None));
        let (answer, created) = s.run_job_flow(&with_steps(&["a", "b"]));
        assert_eq!(
            answer.0, "500 Internal Server Error",
            "created, its answer lost"
        );
        let first = Fate {
            bootstrap_fails: true,
            stuck: true,
        };
        assert_eq!(created, Some(("j-TEST00000001".to_string(), first)));
        let (answer, created) = s.run_job_flow(&cluster("emr-7.5.0"));
        assert_eq!(answer.1["JobFlowId"], "j-TEST00000002");
        let second = Fate {
            bootstrap_fails: false,
            stuck: true,
        };
        assert_eq!(created.unwrap().1, second);
        assert_eq!(s.creates, 4);
        let steps: Vec<_> = s.clusters[0]
            .steps
            .iter()
            .map(|st| (st.id.as_str(), st.state.as_str()))
            .collect();
        assert_eq!(
            steps,
            [("s-00010000", "PENDING"), ("s-00010001", "PENDING")]
        );
        let mut invalid = state(Script {
            invalid_creates: true,
            ..Script::default()
        });
        let (answer, created) = invalid.run_job_flow(&cluster("emr-7.5.0"));
        assert_eq!((code(&answer), created), ("ValidationException", None));
        assert!(invalid.clusters.is_empty());
    }

    #[test]
    fn steps_are_added_to_live_clusters_only_and_no_more_than_256_active() {
        let mut s = state(Script::default());
        s.run_job_flow(&with_steps(&["a"]));
        let add = |names: Vec<String>| json!({"JobFlowId": "j-TEST00000001", "Steps": names.iter().map(|n| json!({"Name": n})).collect::<Vec<_>>()});
        let answer = s.add_job_flow_steps(&add(vec!["b".into(), "c".into()]));
        assert_eq!(answer.1["StepIds"], json!(["s-00010001", "s-00010002"]));
        assert_eq!(s.clusters[0].peak_active, 3);
        let many = (0..254).map(|i| format!("s{i}")).collect();
        assert_eq!(
            code(&s.add_job_flow_steps(&add(many))),
            "ValidationException"
        );
        let long = vec!["x".repeat(257)];
        assert_eq!(
            code(&s.add_job_flow_steps(&add(long))),
            "ValidationException"
        );
        let unknown = json!({"JobFlowId": "j-NONE", "Steps": []});
        assert_eq!(code(&s.add_job_flow_steps(&unknown)), "ValidationException");
        s.terminate_job_flows(&json!({"JobFlowIds": ["j-TEST00000001"]}));
        let late = s.add_job_flow_steps(&add(vec!["d".into()]));
        assert!(late.1["Message"]
            .as_str()
            .unwrap()
            .contains("may not be modified"));
        assert_eq!(s.add_step_calls, 5);
        assert_eq!(s.clusters[0].steps.len(), 3);
    }

    #[test]
    fn clusters_are_listed_by_state_and_described_by_id() {
        let mut s = state(Script::default());
        s.run_job_flow(&cluster("emr-7.5.0"));
        s.run_job_flow(&cluster("emr-7.5.0"));
        s.clusters[1].state = "WAITING".into();
        let ids = |answer: Answer| -> Vec<String> {
            answer.1["Clusters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["Id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(s.list_clusters(&json!({}))).len(), 2);
        assert_eq!(
            ids(s.list_clusters(&json!({"ClusterStates": ["WAITING", "RUNNING"]}))),
            ["j-TEST00000002"]
        );
        let described = s.describe_cluster(&json!({"ClusterId": "j-TEST00000002"}));
        assert_eq!(described.1["Cluster"]["Status"]["State"], "WAITING");
        let unknown = s.describe_cluster(&json!({"ClusterId": "j-NONE"}));
        assert_eq!(code(&unknown), "InvalidRequestException");
    }

    #[test]
    fn steps_are_listed_newest_first_with_timelines_failures_and_looks_counted() {
        let mut s = state(Script {
            fail_list_steps_when_terminated: 1,
            ..Script::default()
        });
        s.run_job_flow(&with_steps(&["a", "b"]));
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        s.clusters[0].start_step(0, t);
        s.clusters[0].steps[0].state = "FAILED".into();
        s.clusters[0].steps[0].failure = Some("boom".into());
        s.clusters[0].steps[0].ended = Some(t);
        s.clusters[0].start_step(1, t);
        let ask = json!({"ClusterId": "j-TEST00000001"});
        let (status, listed) = s.list_steps(&ask);
        assert_eq!(status, "200 OK");
        let steps = listed["Steps"].as_array().unwrap();
        assert_eq!(steps[0]["Name"], "b", "newest first");
        assert_eq!(steps[0]["Status"]["Timeline"]["StartDateTime"], 100.0);
        assert!(steps[0]["Status"]["Timeline"]["EndDateTime"].is_null());
        assert_eq!(steps[1]["Status"]["FailureDetails"]["Message"], "boom");
        assert_eq!(
            steps[1]["Status"]["FailureDetails"]["LogFile"],
            "s3://logs/j-TEST00000001/steps/s-00010000/stderr.gz"
        );
        assert_eq!(steps[1]["Config"]["Args"][0], "hive-script");
        s.list_steps(&ask);
        let looks: Vec<u32> = s.clusters[0]
            .steps
            .iter()
            .map(|st| st.seen_running)
            .collect();
        assert_eq!(looks, [0, 2], "only running steps are counted");
        s.terminate_job_flows(&json!({"JobFlowIds": ["j-TEST00000001"]}));
        assert_eq!(s.list_steps(&ask).0, "500 Internal Server Error");
        assert_eq!(s.list_steps(&ask).0, "200 OK", "the first N only");
        assert_eq!(
            code(&s.list_steps(&json!({"ClusterId": "j-NONE"}))),
            "InvalidRequestException"
        );
    }

    #[test]
    fn terminating_cancels_active_steps_once_and_records_the_call() {
        let mut s = state(Script::default());
        s.run_job_flow(&with_steps(&["a", "b", "c"]));
        s.clusters[0].steps[0].state = "COMPLETED".into();
        s.clusters[0].start_step(1, SystemTime::now());
        let ids = json!({"JobFlowIds": ["j-TEST00000001", "j-NONE"]});
        s.terminate_job_flows(&ids);
        let c = &s.clusters[0];
        assert_eq!(
            (c.state.as_str(), c.reason.0.as_str()),
            ("TERMINATED", "USER_REQUEST")
        );
        let states: Vec<_> = c.steps.iter().map(|st| st.state.as_str()).collect();
        assert_eq!(states, ["COMPLETED", "CANCELLED", "CANCELLED"]);
        s.clusters[0].state = "TERMINATED_WITH_ERRORS".into();
        s.terminate_job_flows(&ids);
        assert_eq!(
            s.clusters[0].state, "TERMINATED_WITH_ERRORS",
            "an ended cluster stays so"
        );
        assert_eq!(s.terminate_calls.len(), 2);
        assert_eq!(s.terminate_calls[0], ["j-TEST00000001", "j-NONE"]);
    }

    #[test]
    fn a_launch_fails_on_a_missing_managed_policy_tag_or_a_scripted_bootstrap_failure() {
        let fine = Fate {
            bootstrap_fails: false,
            stuck: false,
        };
        let tagged = cluster("emr-7.5.0");
        let mut untagged = tagged.clone();
        untagged["Tags"] = json!([]);
        let v2 = Script::default();
        assert_eq!(launch_failure(&v2, &tagged, fine), None);
        let (code, why) = launch_failure(&v2, &untagged, fine).unwrap();
        assert_eq!(code, "VALIDATION_ERROR");
        assert!(why.contains("the cluster must be tagged"), "{why}");
        let network = Script {
            untagged_network: true,
            ..Script::default()
        };
        let (_, why) = launch_failure(&network, &tagged, fine).unwrap();
        assert!(why.contains("the subnet and security groups"), "{why}");
        let v1 = Script {
            v1_service_policy: true,
            ..Script::default()
        };
        assert_eq!(launch_failure(&v1, &untagged, fine), None);
        let failing = Fate {
            bootstrap_fails: true,
            stuck: false,
        };
        assert_eq!(
            launch_failure(&v1, &tagged, failing).unwrap().0,
            "BOOTSTRAP_FAILURE"
        );
        assert_eq!(
            launch_failure(&v2, &untagged, failing).unwrap().0,
            "VALIDATION_ERROR"
        );
    }

    #[test]
    fn a_launch_reads_its_step_concurrency_and_keep_alive_from_the_request() {
        let mut request = cluster("emr-6.15.0");
        assert_eq!(
            Launch::of(&request),
            Launch {
                keep_alive: true,
                label: "emr-6.15.0".into(),
                apps: vec!["Hadoop".into(), "Hive".into()],
                level: 1,
            }
        );
        request["StepConcurrencyLevel"] = json!(4);
        request["Instances"] = json!({});
        let launch = Launch::of(&request);
        assert_eq!((launch.level, launch.keep_alive), (4, false));
        request["StepConcurrencyLevel"] = json!(0);
        assert_eq!(Launch::of(&request).level, 1);
    }

    #[test]
    fn a_cluster_starts_pending_steps_in_order_up_to_its_level() {
        let mut s = state(Script::default());
        s.run_job_flow(&with_steps(&["a", "b", "c"]));
        let c = &mut s.clusters[0];
        assert!(matches!(c.next_step(2), Next::Start(0, ref st) if st.name == "a"));
        c.start_step(0, SystemTime::now());
        assert!(matches!(c.next_step(1), Next::Wait { idle: false }));
        assert!(matches!(c.next_step(2), Next::Start(1, _)));
        c.start_step(1, SystemTime::now());
        assert_eq!((c.state.as_str(), c.peak_running), ("RUNNING", 2));
        assert!(matches!(c.next_step(2), Next::Wait { idle: false }));
        c.steps[0].state = "COMPLETED".into();
        c.steps[1].state = "FAILED".into();
        assert!(matches!(c.next_step(2), Next::Start(2, _)));
        c.steps[2].state = "COMPLETED".into();
        assert!(matches!(c.next_step(2), Next::Wait { idle: true }));
        c.idle();
        assert_eq!(c.state, "WAITING");
    }

    #[test]
    fn a_cluster_ends_completed_lost_or_failing_to_launch() {
        let mut s = state(Script::default());
        s.run_job_flow(&with_steps(&["a", "b", "c"]));
        let mut c = s.clusters[0].clone();
        c.steps[0].state = "COMPLETED".into();
        c.start_step(1, SystemTime::now());
        c.lose_instances();
        assert_eq!(
            (c.state.as_str(), c.reason.0.as_str()),
            ("TERMINATED_WITH_ERRORS", "INSTANCE_FAILURE")
        );
        let states: Vec<_> = c.steps.iter().map(|st| st.state.as_str()).collect();
        assert_eq!(states, ["COMPLETED", "CANCELLED", "CANCELLED"]);
        let mut c = s.clusters[0].clone();
        c.fail_launch(("BOOTSTRAP_FAILURE".into(), "no".into()));
        assert!(c.steps.iter().all(|st| st.state == "CANCELLED"));
        let mut c = s.clusters[0].clone();
        c.complete(true);
        assert_eq!(
            c.reason,
            (
                "ALL_STEPS_COMPLETED".into(),
                "Steps completed with errors".into()
            )
        );
        c.complete(false);
        assert_eq!(
            (c.state.as_str(), c.reason.1.as_str()),
            ("TERMINATED", "Steps completed")
        );
    }
}
