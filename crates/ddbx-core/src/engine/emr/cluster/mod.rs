//! Running steps on EMR clusters. Refuse to start beside an active cluster of the same
//! name; create each cluster (a create that failed is retried, but only after looking for
//! a cluster the lost answer may have made, and never when EMR said the request is
//! invalid); watch it, terminating one that does not start in time; report each step.
//!
//! On releases with auto-termination (emr-5.30.0 and 6.1.0 or later) a cluster is created
//! with no step and kept alive: ddbx hands it its tables' steps as it goes, at most
//! `step_concurrency` at a time, raising a table's capacity just before its step and
//! putting it back as soon as the step ends; it terminates the cluster when the last step
//! is done (and the cluster ends itself after `idle_timeout_seconds` if ddbx cannot).
//! Older releases get every step at creation (at most 256 a cluster) and end by
//! themselves; their tables are raised before the cluster starts.

mod request;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_emr::types as emr;

use super::config::{Configuration, EmrConfig};
use super::steps::Step;
use crate::aws::{Aws, ErrorClass};
use crate::progress::RunProgress;
use crate::stop::StopSignal;
use crate::{Error, Result};
use request::request;
use watch::watch;

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
    /// Where EMR writes logs, if anywhere.
    pub log_uri: Option<String>,
    /// Tags besides the config's.
    pub tags: BTreeMap<String, String>,
    /// Applications (Hadoop, and Hive for Hive steps).
    pub applications: Vec<String>,
    /// Hadoop configurations ddbx needs, merged under the config's.
    pub configurations: Vec<Configuration>,
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

/// What happens around each table's step.
#[async_trait::async_trait]
pub trait StepHooks: Send + Sync {
    /// Just before the table's step is handed to a cluster (its capacity raised). An error
    /// means the step does not run: the table fails with it.
    async fn before(&self, table: &str) -> Result<()>;
    /// Once the table's step has ended (its capacity put back); an error is added to the
    /// table's outcome.
    async fn after(&self, table: &str) -> Option<String>;
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

/// Active clusters of these names: (name, id, state).
async fn active_clusters(aws: &Aws, names: &[String]) -> Result<Vec<(String, String, String)>> {
    let mut found = Vec::new();
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
                found.push((name.to_string(), c.id().unwrap_or("?").to_string(), state));
            }
        }
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            return Ok(found);
        }
    }
}

/// Refuse to start when an active cluster carries one of these names (the seed's first
/// rule): a second run would double the load on the tables and mix their outputs.
pub async fn refuse_active_clusters(aws: &Aws, names: &[String]) -> Result<()> {
    match active_clusters(aws, names).await?.into_iter().next() {
        Some((name, id, state)) => Err(Error::Locked(format!(
            "EMR cluster {name} ({id}) is {state}: another run is still going; nothing was started"
        ))),
        None => Ok(()),
    }
}

/// Create every cluster, wait for all, and report each step (in the order of the plans).
/// When the run is stopped, the clusters are terminated or left as `on_interrupt` says.
pub async fn run_clusters(
    aws: &Aws,
    emr: &super::EmrEngine,
    plans: Vec<ClusterPlan>,
    common: &ClusterCommon,
    stop: &StopSignal,
    progress: &RunProgress,
    hooks: &dyn StepHooks,
) -> Result<Vec<StepOutcome>> {
    let waves = emr.config.release()?.has_auto_termination();
    let ctx = Ctx {
        aws,
        config: &emr.config,
        common,
        stop,
        progress,
        hooks,
        waves,
    };
    let runs = plans.iter().map(|plan| run_cluster(&ctx, plan));
    let ended = futures::future::join_all(runs).await;
    let mut outcomes = Vec::new();
    let mut live = Vec::new();
    for end in ended {
        live.extend(end.live);
        outcomes.extend(end.outcomes);
    }
    if !live.is_empty() {
        let terminate = match &emr.on_interrupt {
            OnInterrupt::Terminate => true,
            OnInterrupt::Leave => false,
            OnInterrupt::Ask(ask) => ask(&live),
        };
        if terminate {
            tracing::warn!(clusters = ?live, "interrupted: terminating the clusters");
            if let Err(e) = terminate_clusters(aws, &live).await {
                tracing::error!(clusters = ?live, error = %e, "could not terminate the clusters: terminate them by hand");
                mark_left_running(&mut outcomes, &live);
            }
        } else {
            tracing::warn!(clusters = ?live, "interrupted: the clusters were left running; they terminate when their steps are done (or after idle_timeout_seconds)");
            mark_left_running(&mut outcomes, &live);
        }
    }
    // Every table whose step is not left running gets its capacity back (the hooks put a
    // table back once: those whose steps were seen to end are back already).
    for o in &mut outcomes {
        if !o.left_running {
            if let Some(reset) = hooks.after(&o.table).await {
                append(o, reset);
            }
        }
    }
    Ok(outcomes)
}

fn append(o: &mut StepOutcome, more: String) {
    o.error = Some(match o.error.take() {
        None => format!("the data is complete, but {more}"),
        Some(e) => format!("{e}; and {more}"),
    });
}

async fn terminate_clusters(aws: &Aws, ids: &[String]) -> Result<()> {
    aws.call(
        || format!("EMR TerminateJobFlows {ids:?}"),
        None,
        || {
            aws.emr
                .terminate_job_flows()
                .set_job_flow_ids(Some(ids.to_vec()))
                .send()
        },
    )
    .await
    .map(|_| ())
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

/// What every cluster of a run works with.
struct Ctx<'a> {
    aws: &'a Aws,
    config: &'a EmrConfig,
    common: &'a ClusterCommon,
    stop: &'a StopSignal,
    progress: &'a RunProgress,
    hooks: &'a dyn StepHooks,
    /// Steps handed over as the run goes (else all at creation).
    waves: bool,
}

/// How a cluster's run ended: its steps' outcomes, and the cluster still running when
/// ddbx was interrupted.
struct ClusterEnd {
    outcomes: Vec<StepOutcome>,
    live: Option<String>,
}

enum Watched {
    Finished(Vec<StepOutcome>),
    /// Ended before running a step, for a reason that may pass (capacity, bootstrap).
    NeverStarted(String),
    /// EMR refused to launch it (VALIDATION_ERROR): another cluster would be refused too.
    Refused(String),
    Interrupted(Vec<StepOutcome>),
}

/// What to check when EMR refuses to launch a cluster: under `AmazonEMRServicePolicy_v2`
/// the network it launches into must carry the policy's tag.
fn refused_hint(config: &EmrConfig) -> String {
    let tag = super::MANAGED_POLICY_TAG;
    let network = if config.ec2.subnet_id.is_none() && config.ec2.subnet_ids.is_empty() {
        format!("no ec2.subnet_id is set, so EMR launches into a subnet of the default VPC, which must then carry the tag {tag}=true: tag it, or set ec2.subnet_id to a subnet that carries it")
    } else {
        format!("the subnets and security groups in [ec2] must carry the tag {tag}=true")
    };
    format!(
        "check the roles ({} and {}), the instance types and, with AmazonEMRServicePolicy_v2 (EMR_DefaultRole_V2): {network}",
        config.service_role, config.instance_profile
    )
}

/// Without waves, every table is raised before its cluster starts: the steps that may run,
/// and the outcomes of those whose raise was refused.
async fn raise_all<'p>(ctx: &Ctx<'_>, plan: &'p ClusterPlan) -> (Vec<&'p Step>, Vec<StepOutcome>) {
    let mut refused = HashMap::new();
    if !ctx.waves {
        for s in &plan.steps {
            if let Err(e) = ctx.hooks.before(s.table()).await {
                refused.insert(s.table().to_string(), e);
            }
        }
    }
    let steps = plan
        .steps
        .iter()
        .filter(|s| !refused.contains_key(s.table()))
        .collect();
    let early = refused
        .into_iter()
        .map(|(t, e)| outcome(&t, Some(e.to_string()), None))
        .collect();
    (steps, early)
}

/// Every one of `steps` ended, never run, with one reason, after the outcomes in `early`.
fn all_ended(steps: &[&Step], why: &str, mut early: Vec<StepOutcome>) -> ClusterEnd {
    early.extend(
        steps
            .iter()
            .map(|s| outcome(s.table(), Some(why.to_string()), None)),
    );
    ClusterEnd {
        outcomes: early,
        live: None,
    }
}

async fn run_cluster(ctx: &Ctx<'_>, plan: &ClusterPlan) -> ClusterEnd {
    let config = ctx.config;
    let (steps, mut early) = raise_all(ctx, plan).await;
    if steps.is_empty() {
        return all_ended(&steps, "", early);
    }
    // Stopped before a cluster ran: its steps never ran anywhere.
    let interrupted = |early| all_ended(&steps, "interrupted", early);
    let mut reasons = Vec::new();
    for attempt in 1..=config.create_attempts {
        if ctx.stop.is_stopped() {
            return interrupted(early);
        }
        let id = match create(ctx, plan, &steps, attempt).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(cluster = %plan.name, attempt, error = %e, "the cluster could not be created");
                reasons.push(format!("attempt {attempt}: {e}"));
                if matches!(
                    e,
                    Error::Aws {
                        class: ErrorClass::Permanent,
                        ..
                    }
                ) {
                    // EMR refused the request itself: another attempt would be refused too.
                    let why = format!("EMR refused to create cluster {}: {e}", plan.name);
                    return all_ended(&steps, &why, early);
                }
                if attempt < config.create_attempts && !pause(ctx, config.retry_delay_seconds).await
                {
                    return interrupted(early);
                }
                continue;
            }
        };
        tracing::info!(cluster = %plan.name, id = %id, attempt, steps = steps.len(), "cluster created");
        match watch(ctx, plan, &steps, &id).await {
            Watched::Finished(o) => {
                early.extend(o);
                return ClusterEnd {
                    outcomes: early,
                    live: None,
                };
            }
            Watched::Interrupted(o) => {
                early.extend(o);
                return ClusterEnd {
                    outcomes: early,
                    live: Some(id),
                };
            }
            Watched::Refused(why) => {
                tracing::error!(cluster = %plan.name, id = %id, reason = %why, "EMR refused to launch the cluster");
                let why = format!(
                    "EMR refused to launch cluster {} ({id}): it {why}; {}",
                    plan.name,
                    refused_hint(config)
                );
                return all_ended(&steps, &why, early);
            }
            Watched::NeverStarted(why) => {
                tracing::warn!(cluster = %plan.name, id = %id, attempt, reason = %why, "the cluster ended before running a step");
                reasons.push(format!("attempt {attempt}: cluster {id} {why}"));
            }
        }
        if attempt < config.create_attempts && !pause(ctx, config.retry_delay_seconds).await {
            return interrupted(early);
        }
    }
    let why = format!(
        "EMR cluster {} never ran its steps after {} attempts: {}",
        plan.name,
        config.create_attempts,
        reasons.join("; ")
    );
    all_ended(&steps, &why, early)
}

fn outcome(table: &str, error: Option<String>, cluster_id: Option<&str>) -> StepOutcome {
    StepOutcome {
        table: table.to_string(),
        error,
        cluster_id: cluster_id.map(str::to_string),
        left_running: false,
    }
}

/// Sleep, unless stopped first (then false).
async fn pause(ctx: &Ctx<'_>, seconds: f64) -> bool {
    tokio::select! {
        _ = ctx.aws.clock.sleep(Duration::from_secs_f64(seconds)) => true,
        _ = ctx.stop.stopped() => false,
    }
}

/// Create the cluster, once. Before a second attempt, a cluster of the same name that is
/// active is the first attempt's (its answer was lost): it is taken, not doubled.
async fn create(
    ctx: &Ctx<'_>,
    plan: &ClusterPlan,
    steps: &[&Step],
    attempt: u32,
) -> Result<String> {
    if attempt > 1 {
        let found = active_clusters(ctx.aws, std::slice::from_ref(&plan.name)).await?;
        if let Some((_, id, state)) = found.into_iter().next() {
            tracing::warn!(cluster = %plan.name, id = %id, state = %state, "a cluster of this name is already up (an earlier attempt's answer was lost): taking it");
            return Ok(id);
        }
    }
    let req = request(ctx, plan, steps)?;
    let out = ctx
        .aws
        .call_once(|| format!("EMR RunJobFlow {}", plan.name), req.send())
        .await?;
    out.job_flow_id().map(str::to_string).ok_or_else(|| {
        Error::Failed(format!(
            "EMR RunJobFlow {}: no cluster id returned",
            plan.name
        ))
    })
}
