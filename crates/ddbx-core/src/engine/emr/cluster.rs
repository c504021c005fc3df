//! Running steps on EMR clusters: refuse to start beside an active cluster of the same
//! name, create each cluster with its steps and auto-termination (retrying one that fails
//! to start, saying why), poll until every cluster is terminal, and report each step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_emr::types as emr;
use tokio::sync::mpsc;

use super::config::EmrConfig;
use super::steps::Step;
use crate::aws::Aws;
use crate::progress::{Phase, RunProgress};
use crate::run::stop::StopSignal;
use crate::{Error, Result};

/// One cluster to create: its name and its steps.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// The cluster's name.
    pub name: String,
    /// Its steps, one per table.
    pub steps: Vec<Step>,
}

/// What is common to a run's clusters.
#[derive(Debug, Clone)]
pub struct ClusterCommon {
    /// Where EMR writes logs.
    pub log_uri: String,
    /// Tags besides the config's.
    pub tags: BTreeMap<String, String>,
}

/// What to do with running clusters when ddbx is interrupted.
#[derive(Clone)]
pub enum OnInterrupt {
    /// Terminate them (their unfinished tables fail).
    Terminate,
    /// Leave them running (they end themselves when their steps are done).
    Leave,
    /// Ask (given the cluster ids): true terminates.
    Ask(AskTerminate),
}

/// A question put to the user: terminate these clusters?
pub type AskTerminate = Arc<dyn Fn(&[String]) -> bool + Send + Sync>;

impl std::fmt::Debug for OnInterrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Terminate => "Terminate",
            Self::Leave => "Leave",
            Self::Ask(_) => "Ask",
        })
    }
}

/// How one step (one table) ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The step's table.
    pub table: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The cluster that ran it.
    pub cluster_id: Option<String>,
    /// Its cluster was left running when ddbx was interrupted (its step may still run).
    pub left_running: bool,
}

const ACTIVE: [emr::ClusterState; 4] = [
    emr::ClusterState::Starting,
    emr::ClusterState::Bootstrapping,
    emr::ClusterState::Running,
    emr::ClusterState::Waiting,
];

/// Refuse to start when an active cluster carries one of these names (the seed's first
/// rule): a second run would double the load on the tables and mix their outputs.
pub async fn refuse_active_clusters(aws: &Aws, names: &[String]) -> Result<()> {
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .call(
                || "EMR ListClusters".to_string(),
                None,
                || {
                    aws.emr
                        .list_clusters()
                        .set_cluster_states(Some(ACTIVE.to_vec()))
                        .set_marker(marker.clone())
                        .send()
                },
            )
            .await?;
        for c in out.clusters() {
            if let Some(name) = c.name().filter(|n| names.iter().any(|m| m == n)) {
                let state = c
                    .status()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                return Err(Error::Locked(format!(
                    "EMR cluster {name} ({}) is {state}: another run is still going; nothing was started",
                    c.id().unwrap_or("?")
                )));
            }
        }
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            return Ok(());
        }
    }
}

/// Create every cluster, wait for all, and report each step. A cluster that cannot be
/// created, or ends before running a step, is tried again (`create_attempts`); when the
/// run is stopped, the clusters are terminated or left as `on_interrupt` says. Each
/// table whose step ends is sent on `ended` as soon as a poll sees it.
pub async fn run_clusters(
    aws: &Aws,
    emr: &super::EmrRun,
    plans: Vec<ClusterPlan>,
    common: &ClusterCommon,
    stop: &StopSignal,
    progress: &RunProgress,
    ended: mpsc::UnboundedSender<String>,
) -> Vec<StepOutcome> {
    let watcher = Watcher {
        stop,
        progress,
        ended,
    };
    let runs = plans
        .iter()
        .map(|plan| run_cluster(aws, &emr.config, plan, common, &watcher));
    let ended = futures::future::join_all(runs).await;
    let mut outcomes = Vec::new();
    let mut live = Vec::new();
    for (plan, end) in plans.iter().zip(ended) {
        match end {
            ClusterEnd::Done(o) => outcomes.extend(o),
            ClusterEnd::Interrupted(id) => {
                live.extend(id.clone());
                outcomes.extend(plan.steps.iter().map(|s| StepOutcome {
                    table: s.table().to_string(),
                    error: Some("interrupted".into()),
                    cluster_id: id.clone(),
                    left_running: false,
                }));
            }
        }
    }
    if !live.is_empty() {
        let terminate = match &emr.on_interrupt {
            OnInterrupt::Terminate => true,
            OnInterrupt::Leave => false,
            OnInterrupt::Ask(ask) => ask(&live),
        };
        if terminate {
            tracing::warn!(clusters = ?live, "interrupted: terminating the clusters");
            let result = aws
                .call(
                    || format!("EMR TerminateJobFlows {live:?}"),
                    None,
                    || {
                        aws.emr
                            .terminate_job_flows()
                            .set_job_flow_ids(Some(live.clone()))
                            .send()
                    },
                )
                .await;
            if let Err(e) = result {
                tracing::error!(clusters = ?live, error = %e, "could not terminate the clusters: terminate them by hand");
                mark_left_running(&mut outcomes, &live);
            }
        } else {
            tracing::warn!(clusters = ?live, "interrupted: the clusters were left running; they terminate when their steps are done");
            mark_left_running(&mut outcomes, &live);
        }
    }
    outcomes
}

fn mark_left_running(outcomes: &mut [StepOutcome], live: &[String]) {
    for o in outcomes {
        if o.cluster_id.as_ref().is_some_and(|id| live.contains(id)) && o.error.is_some() {
            o.left_running = true;
            o.error = Some(format!(
                "interrupted; EMR cluster {} was left running its step",
                o.cluster_id.as_deref().unwrap_or("?")
            ));
        }
    }
}

enum ClusterEnd {
    Done(Vec<StepOutcome>),
    /// Stopped; the cluster's id when one was running.
    Interrupted(Option<String>),
}

enum Watched {
    Finished(Vec<StepOutcome>),
    NeverStarted(String),
    Interrupted,
}

/// What a cluster's watch reports to.
struct Watcher<'a> {
    stop: &'a StopSignal,
    progress: &'a RunProgress,
    ended: mpsc::UnboundedSender<String>,
}

async fn run_cluster(
    aws: &Aws,
    config: &EmrConfig,
    plan: &ClusterPlan,
    common: &ClusterCommon,
    watcher: &Watcher<'_>,
) -> ClusterEnd {
    let stop = watcher.stop;
    let mut reasons = Vec::new();
    for attempt in 1..=config.create_attempts {
        if stop.is_stopped() {
            return ClusterEnd::Interrupted(None);
        }
        match create(aws, config, plan, common).await {
            Err(e) => {
                tracing::warn!(cluster = %plan.name, attempt, error = %e, "the cluster could not be created");
                reasons.push(format!("attempt {attempt}: {e}"));
            }
            Ok(id) => {
                tracing::info!(cluster = %plan.name, id = %id, attempt, steps = plan.steps.len(), "cluster created");
                match watch(aws, config, plan, &id, watcher).await {
                    Watched::Finished(o) => return ClusterEnd::Done(o),
                    Watched::Interrupted => return ClusterEnd::Interrupted(Some(id)),
                    Watched::NeverStarted(why) => {
                        tracing::warn!(cluster = %plan.name, id = %id, attempt, reason = %why, "the cluster ended before running a step");
                        reasons.push(format!("attempt {attempt}: cluster {id} {why}"));
                    }
                }
            }
        }
        if attempt < config.create_attempts
            && !pause(
                aws,
                stop,
                Duration::from_secs_f64(config.retry_delay_seconds),
            )
            .await
        {
            return ClusterEnd::Interrupted(None);
        }
    }
    let why = format!(
        "EMR cluster {} never ran its steps after {} attempts: {}",
        plan.name,
        config.create_attempts,
        reasons.join("; ")
    );
    ClusterEnd::Done(
        plan.steps
            .iter()
            .map(|s| StepOutcome {
                table: s.table().to_string(),
                error: Some(why.clone()),
                cluster_id: None,
                left_running: false,
            })
            .collect(),
    )
}

/// Sleep, unless stopped first (then false).
async fn pause(aws: &Aws, stop: &StopSignal, d: Duration) -> bool {
    tokio::select! {
        _ = aws.clock.sleep(d) => true,
        _ = stop.stopped() => false,
    }
}

async fn create(
    aws: &Aws,
    config: &EmrConfig,
    plan: &ClusterPlan,
    common: &ClusterCommon,
) -> Result<String> {
    let req = request(aws, config, plan, common);
    let out = aws
        .call(
            || format!("EMR RunJobFlow {}", plan.name),
            None,
            || req.clone().send(),
        )
        .await?;
    out.job_flow_id().map(str::to_string).ok_or_else(|| {
        Error::Invalid(format!(
            "EMR RunJobFlow {}: no cluster id returned",
            plan.name
        ))
    })
}

/// The RunJobFlow request of one cluster: its instances, steps, settings and tags.
fn request(
    aws: &Aws,
    config: &EmrConfig,
    plan: &ClusterPlan,
    common: &ClusterCommon,
) -> aws_sdk_emr::operation::run_job_flow::builders::RunJobFlowFluentBuilder {
    let ec2 = &config.ec2;
    let mut instances = emr::JobFlowInstancesConfig::builder()
        .keep_job_flow_alive_when_no_steps(false)
        .termination_protected(false)
        .set_ec2_subnet_id(ec2.subnet_id.clone())
        .set_ec2_subnet_ids((!ec2.subnet_ids.is_empty()).then(|| ec2.subnet_ids.clone()))
        .set_ec2_key_name(ec2.key_name.clone())
        .set_emr_managed_master_security_group(ec2.master_security_group.clone())
        .set_emr_managed_slave_security_group(ec2.slave_security_group.clone())
        .set_service_access_security_group(ec2.service_access_security_group.clone());
    if config.instance_fleets.is_empty() {
        for g in &config.instance_groups {
            instances = instances.instance_groups(
                emr::InstanceGroupConfig::builder()
                    .instance_role(emr::InstanceRoleType::from(g.role.as_str()))
                    .instance_type(&g.instance_type)
                    .instance_count(g.count)
                    .set_market(g.market.as_deref().map(emr::MarketType::from))
                    .set_bid_price(g.bid_price.clone())
                    .build(),
            );
        }
    } else {
        for f in &config.instance_fleets {
            let mut fleet = emr::InstanceFleetConfig::builder()
                .instance_fleet_type(emr::InstanceFleetType::from(f.fleet_type.as_str()))
                .target_on_demand_capacity(f.target_on_demand_capacity)
                .target_spot_capacity(f.target_spot_capacity);
            for t in &f.instance_types {
                fleet = fleet.instance_type_configs(
                    emr::InstanceTypeConfig::builder()
                        .instance_type(&t.instance_type)
                        .weighted_capacity(t.weighted_capacity)
                        .set_bid_price_as_percentage_of_on_demand_price(
                            t.bid_price_as_percentage_of_on_demand_price,
                        )
                        .build(),
                );
            }
            instances = instances.instance_fleets(fleet.build());
        }
    }
    let mut req = aws
        .emr
        .run_job_flow()
        .name(&plan.name)
        .release_label(&config.release_label)
        .service_role(&config.service_role)
        .job_flow_role(&config.instance_profile)
        .log_uri(&common.log_uri)
        .visible_to_all_users(true)
        .step_concurrency_level(config.step_concurrency)
        .set_security_configuration(config.security_configuration.clone())
        .applications(emr::Application::builder().name("Hadoop").build())
        .auto_termination_policy(
            emr::AutoTerminationPolicy::builder()
                .idle_timeout(config.idle_timeout_seconds)
                .build(),
        )
        .instances(instances.build());
    for s in &plan.steps {
        req = req.steps(
            emr::StepConfig::builder()
                .name(&s.name)
                .action_on_failure(emr::ActionOnFailure::from(s.action_on_failure.as_str()))
                .hadoop_jar_step(
                    emr::HadoopJarStepConfig::builder()
                        .jar(&s.jar)
                        .set_args(Some(s.args.clone()))
                        .build(),
                )
                .build(),
        );
    }
    for (k, v) in config.tags.iter().chain(&common.tags) {
        req = req.tags(emr::Tag::builder().key(k).value(v).build());
    }
    for c in &config.configurations {
        req = req.configurations(
            emr::Configuration::builder()
                .classification(&c.classification)
                .set_properties(Some(c.properties.clone().into_iter().collect()))
                .build(),
        );
    }
    req
}

async fn watch(
    aws: &Aws,
    config: &EmrConfig,
    plan: &ClusterPlan,
    id: &str,
    watcher: &Watcher<'_>,
) -> Watched {
    let poll = Duration::from_secs_f64(config.poll_seconds);
    let mut last_state = String::new();
    let mut reported = std::collections::HashSet::new();
    loop {
        let described = aws
            .call(
                || format!("EMR DescribeCluster {id}"),
                None,
                || aws.emr.describe_cluster().cluster_id(id).send(),
            )
            .await;
        let status = match described {
            Ok(out) => out.cluster().and_then(|c| c.status()).cloned(),
            Err(e) => {
                // Keep polling: the cluster runs on whatever happens to one call.
                tracing::warn!(cluster = %plan.name, id, error = %e, "could not poll the cluster");
                None
            }
        };
        let steps = list_steps(aws, id).await.unwrap_or_default();
        let cluster_state = status
            .as_ref()
            .and_then(|s| s.state())
            .map_or("?", |s| s.as_str());
        for step in &plan.steps {
            let step_state = steps
                .get(&step.name)
                .and_then(|s| s.state())
                .map_or("not listed yet", |s| s.as_str());
            watcher
                .progress
                .table(step.table())
                .set_state(format!("cluster {id} {cluster_state}, step {step_state}"));
        }
        for (name, s) in &steps {
            let phase = match s.state() {
                Some(emr::StepState::Running) => Phase::Running,
                Some(emr::StepState::Completed) => Phase::Done,
                Some(
                    emr::StepState::Failed
                    | emr::StepState::Cancelled
                    | emr::StepState::Interrupted,
                ) => Phase::Failed,
                _ => continue,
            };
            let table = name.split_once(':').map_or(name.as_str(), |(_, t)| t);
            watcher.progress.table(table).set_phase(phase);
            if phase != Phase::Running && reported.insert(table.to_string()) {
                let _ = watcher.ended.send(table.to_string());
            }
        }
        if let Some(status) = status {
            let state = status
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if state != last_state {
                tracing::info!(cluster = %plan.name, id, state = %state, "cluster state");
                last_state = state.clone();
            }
            if matches!(
                status.state(),
                Some(emr::ClusterState::Terminated | emr::ClusterState::TerminatedWithErrors)
            ) {
                return finished(plan, id, &state, &status, &steps);
            }
        }
        if !pause(aws, watcher.stop, poll).await {
            return Watched::Interrupted;
        }
    }
}

async fn list_steps(aws: &Aws, id: &str) -> Result<BTreeMap<String, emr::StepStatus>> {
    let mut all = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .call(
                || format!("EMR ListSteps {id}"),
                None,
                || {
                    aws.emr
                        .list_steps()
                        .cluster_id(id)
                        .set_marker(marker.clone())
                        .send()
                },
            )
            .await?;
        for s in out.steps() {
            if let (Some(name), Some(status)) = (s.name(), s.status()) {
                all.insert(name.to_string(), status.clone());
            }
        }
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            return Ok(all);
        }
    }
}

/// A terminal cluster: each step's outcome, or "never started" when no step ran.
fn finished(
    plan: &ClusterPlan,
    id: &str,
    state: &str,
    status: &emr::ClusterStatus,
    steps: &BTreeMap<String, emr::StepStatus>,
) -> Watched {
    let reason = status.state_change_reason();
    let code = reason
        .and_then(|r| r.code())
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
    let message = reason.and_then(|r| r.message()).unwrap_or("");
    let why = format!("ended {state} ({code}: {message})");
    let ran = steps.values().any(|s| {
        matches!(
            s.state(),
            Some(emr::StepState::Running | emr::StepState::Completed | emr::StepState::Failed)
        )
    });
    if !ran && code != "ALL_STEPS_COMPLETED" && code != "USER_REQUEST" {
        return Watched::NeverStarted(why);
    }
    Watched::Finished(
        plan.steps
            .iter()
            .map(|s| {
                let error = match steps.get(&s.name) {
                    Some(st) if st.state() == Some(&emr::StepState::Completed) => None,
                    Some(st) if st.state() == Some(&emr::StepState::Failed) => {
                        let d = st.failure_details();
                        Some(format!(
                            "EMR step FAILED on cluster {id}: {}{}{}",
                            d.and_then(|d| d.reason()).unwrap_or("no reason given"),
                            d.and_then(|d| d.message())
                                .map(|m| format!(": {m}"))
                                .unwrap_or_default(),
                            d.and_then(|d| d.log_file())
                                .map(|l| format!(" (log: {l})"))
                                .unwrap_or_default(),
                        ))
                    }
                    Some(st) => Some(format!(
                        "EMR step {} when cluster {id} {why}",
                        st.state().map(|s| s.as_str()).unwrap_or("?")
                    )),
                    None => Some(format!("EMR step missing on cluster {id}, which {why}")),
                };
                StepOutcome {
                    table: s.table().to_string(),
                    error,
                    cluster_id: Some(id.to_string()),
                    left_running: false,
                }
            })
            .collect(),
    )
}
