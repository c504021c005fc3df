//! Watching one cluster: steps handed over as it has room (or known by their arguments when
//! they came with it), each step's end reported, a cluster that does not start terminated.

use std::collections::HashMap;

use aws_sdk_emr::types as emr;

use super::request::step_config;
use super::{append, outcome, pause, terminate_clusters, ClusterPlan, Ctx, StepOutcome, Watched};
use crate::aws::Aws;
use crate::engine::emr::steps::Step;
use crate::progress::Phase;
use crate::{Error, Result};

/// A step handed to the cluster: its id, and its table.
struct Submitted<'a> {
    id: String,
    step: &'a Step,
    /// Seen cancelled while the cluster still looked alive: looked at once more, to learn
    /// whether the cluster is ending (and why).
    cancelled_once: bool,
}

/// Hand one step to a running cluster (its table's capacity raised first). A lost answer
/// is not sent again blindly: the cluster's steps are looked at for it first.
async fn add_step(
    ctx: &Ctx<'_>,
    cluster: &str,
    step: &Step,
) -> std::result::Result<String, String> {
    ctx.hooks.before(step.table()).await?;
    let sent = ctx
        .aws
        .call_once(
            || format!("EMR AddJobFlowSteps {cluster} {}", step.table()),
            ctx.aws
                .emr
                .add_job_flow_steps()
                .job_flow_id(cluster)
                .steps(step_config(step))
                .send(),
        )
        .await;
    match sent {
        Ok(out) => out
            .step_ids()
            .first()
            .cloned()
            .ok_or_else(|| format!("EMR AddJobFlowSteps {cluster}: no step id returned")),
        Err(e) => {
            if let Ok(listed) = list_steps(ctx.aws, cluster).await {
                if let Some((id, _)) = listed.iter().find(|(_, s)| s.args == step.args) {
                    return Ok(id.clone());
                }
            }
            Err(e.to_string())
        }
    }
}

/// A step as ListSteps shows it.
struct Listed {
    args: Vec<String>,
    status: emr::StepStatus,
}

async fn list_steps(aws: &Aws, id: &str) -> Result<Vec<(String, Listed)>> {
    let mut all = Vec::new();
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
            if let (Some(step_id), Some(status)) = (s.id(), s.status()) {
                let args = s.config().map(|c| c.args().to_vec()).unwrap_or_default();
                all.push((
                    step_id.to_string(),
                    Listed {
                        args,
                        status: status.clone(),
                    },
                ));
            }
        }
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            return Ok(all);
        }
    }
}

/// The cluster's steps, for a cluster that has ended: asked until EMR answers (a
/// terminated cluster stays listable), since "no answer" is not "no steps".
async fn list_steps_of_ended(ctx: &Ctx<'_>, id: &str) -> Result<Vec<(String, Listed)>> {
    let mut last = None;
    for _ in 0..10 {
        match list_steps(ctx.aws, id).await {
            Ok(s) => return Ok(s),
            Err(e) => {
                tracing::warn!(cluster = %id, error = %e, "could not list the steps of the ended cluster; asking again");
                last = Some(e);
                if !pause(ctx, ctx.config.poll_seconds).await {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or(Error::Interrupted))
}

fn step_ended(state: Option<&emr::StepState>) -> bool {
    matches!(
        state,
        Some(
            emr::StepState::Completed
                | emr::StepState::Failed
                | emr::StepState::Cancelled
                | emr::StepState::Interrupted
        )
    )
}

/// How a cluster ended: `ended TERMINATED_WITH_ERRORS (INSTANCE_FAILURE: ...)`.
fn ended_why(state: &str, status: Option<&emr::ClusterStatus>) -> String {
    let reason = status.and_then(|s| s.state_change_reason());
    let code = reason.and_then(|r| r.code()).map_or("", |c| c.as_str());
    let message = reason.and_then(|r| r.message()).unwrap_or("");
    format!("ended {state} ({code}: {message})")
}

/// A step's outcome from its status.
fn step_error(cluster: &str, status: &emr::StepStatus) -> Option<String> {
    match status.state() {
        Some(emr::StepState::Completed) => None,
        Some(emr::StepState::Failed) => {
            let d = status.failure_details();
            Some(format!(
                "EMR step FAILED on cluster {cluster}: {}{}{}",
                d.and_then(|d| d.reason()).unwrap_or("no reason given"),
                d.and_then(|d| d.message())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default(),
                d.and_then(|d| d.log_file())
                    .map(|l| format!(" (log: {l})"))
                    .unwrap_or_default(),
            ))
        }
        other => Some(format!(
            "EMR step {} on cluster {cluster}",
            other.map(|s| s.as_str()).unwrap_or("?")
        )),
    }
}

pub(super) async fn watch(ctx: &Ctx<'_>, plan: &ClusterPlan, steps: &[&Step], id: &str) -> Watched {
    let config = ctx.config;
    let started = ctx.aws.clock.now();
    let mut last_state = String::new();
    // Tables not yet handed over (waves), handed over, and ended.
    let mut queued: std::collections::VecDeque<&Step> = if ctx.waves {
        steps.iter().copied().collect()
    } else {
        Default::default()
    };
    let mut running: Vec<Submitted> = Vec::new();
    let mut outcomes: Vec<StepOutcome> = Vec::new();
    let mut ever_ran = false;
    loop {
        let status = match ctx
            .aws
            .call(
                || format!("EMR DescribeCluster {id}"),
                None,
                || ctx.aws.emr.describe_cluster().cluster_id(id).send(),
            )
            .await
        {
            Ok(out) => out.cluster().and_then(|c| c.status()).cloned(),
            Err(e) => {
                // Keep polling: the cluster runs on whatever happens to one call.
                tracing::warn!(cluster = %plan.name, id, error = %e, "could not poll the cluster");
                None
            }
        };
        let state = status.as_ref().and_then(|s| s.state()).cloned();
        let state_text = state.as_ref().map_or("?", |s| s.as_str()).to_string();
        if state_text != last_state && state.is_some() {
            tracing::info!(cluster = %plan.name, id, state = %state_text, "cluster state");
            last_state = state_text.clone();
        }
        let terminal = matches!(
            state,
            Some(emr::ClusterState::Terminated | emr::ClusterState::TerminatedWithErrors)
        );
        let starting = matches!(
            state,
            Some(emr::ClusterState::Starting | emr::ClusterState::Bootstrapping)
        );
        if starting && !ever_ran {
            let waited = ctx.aws.clock.now().duration_since(started);
            if waited.as_secs_f64() > config.start_timeout_seconds {
                tracing::warn!(cluster = %plan.name, id, state = %state_text, "the cluster did not start in time: terminating it");
                if let Err(e) = terminate_clusters(ctx.aws, &[id.to_string()]).await {
                    tracing::error!(cluster = %id, error = %e, "could not terminate the cluster that did not start");
                }
                return Watched::NeverStarted(format!(
                    "was still {state_text} after {} s (start_timeout_seconds): terminated",
                    config.start_timeout_seconds
                ));
            }
        }
        // Waves: hand over steps while the cluster runs and has room.
        if ctx.waves
            && matches!(
                state,
                Some(emr::ClusterState::Running | emr::ClusterState::Waiting)
            )
        {
            while running.len() < config.step_concurrency.max(1) as usize {
                let Some(step) = queued.pop_front() else {
                    break;
                };
                if ctx.stop.is_stopped() {
                    queued.push_front(step);
                    break;
                }
                match add_step(ctx, id, step).await {
                    Ok(step_id) => running.push(Submitted {
                        id: step_id,
                        step,
                        cancelled_once: false,
                    }),
                    Err(e) => outcomes.push(outcome(step.table(), Some(e), Some(id))),
                }
            }
        }
        let listed = if terminal {
            list_steps_of_ended(ctx, id).await
        } else {
            list_steps(ctx.aws, id).await
        };
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(cluster = %plan.name, id, error = %e, "could not list the cluster's steps");
                if terminal {
                    // Unknown outcomes fail their tables; they are never taken as not run.
                    let why = format!("the outcome of its EMR step is unknown: {e}");
                    outcomes.extend(
                        running
                            .drain(..)
                            .map(|r| outcome(r.step.table(), Some(why.clone()), Some(id))),
                    );
                    outcomes.extend(
                        queued
                            .drain(..)
                            .map(|s| outcome(s.table(), Some(why.clone()), Some(id))),
                    );
                    return Watched::Finished(outcomes);
                }
                Vec::new()
            }
        };
        if !ctx.waves && running.is_empty() {
            // All steps came with the cluster: know them by their arguments.
            for step in steps {
                if let Some((sid, _)) = listed.iter().find(|(_, l)| l.args == step.args) {
                    running.push(Submitted {
                        id: sid.clone(),
                        step,
                        cancelled_once: false,
                    });
                }
            }
        }
        // Why the cluster is ending, for the steps it cancels.
        let ending = matches!(
            state,
            Some(
                emr::ClusterState::Terminating
                    | emr::ClusterState::Terminated
                    | emr::ClusterState::TerminatedWithErrors
            )
        )
        .then(|| ended_why(&state_text, status.as_ref()));
        let by_id: HashMap<&str, &Listed> = listed.iter().map(|(i, l)| (i.as_str(), l)).collect();
        let mut still = Vec::new();
        for mut r in running.drain(..) {
            let Some(l) = by_id.get(r.id.as_str()) else {
                still.push(r);
                continue;
            };
            let step_state = l.status.state();
            let table = r.step.table();
            let counters = ctx.progress.table(table);
            counters.set_state(format!(
                "cluster {id} {state_text}, step {}",
                step_state.map_or("?", |s| s.as_str())
            ));
            if matches!(
                step_state,
                Some(emr::StepState::Running | emr::StepState::Completed | emr::StepState::Failed)
            ) {
                ever_ran = true;
                counters.set_phase(Phase::Running);
            }
            let cancelled = matches!(
                step_state,
                Some(emr::StepState::Cancelled | emr::StepState::Interrupted)
            );
            if cancelled && ending.is_none() && !r.cancelled_once {
                // The cluster was described before it cancelled the step: the next look
                // says whether it is ending.
                r.cancelled_once = true;
                still.push(r);
                continue;
            }
            if step_ended(step_state) {
                let mut error = step_error(id, &l.status);
                if let (Some(e), Some(why), false) = (
                    &mut error,
                    &ending,
                    step_state == Some(&emr::StepState::Failed),
                ) {
                    e.push_str(&format!(": the cluster {why}"));
                }
                let mut o = outcome(table, error, Some(id));
                counters.set_phase(if o.error.is_none() {
                    Phase::Done
                } else {
                    Phase::Failed
                });
                if let Some(reset) = ctx.hooks.after(table).await {
                    append(&mut o, reset);
                }
                outcomes.push(o);
            } else {
                still.push(r);
            }
        }
        running = still;
        for s in &queued {
            ctx.progress.table(s.table()).set_state(format!(
                "cluster {id} {state_text}, step not handed over yet"
            ));
        }
        if ctx.waves && queued.is_empty() && running.is_empty() && !terminal {
            tracing::info!(cluster = %plan.name, id, "every step has ended: terminating the cluster");
            if let Err(e) = terminate_clusters(ctx.aws, &[id.to_string()]).await {
                tracing::warn!(cluster = %id, error = %e, "could not terminate the cluster; it ends itself after idle_timeout_seconds");
            }
            return Watched::Finished(outcomes);
        }
        if terminal {
            let code = status
                .as_ref()
                .and_then(|s| s.state_change_reason())
                .and_then(|r| r.code())
                .map(|c| c.as_str().to_string())
                .unwrap_or_default();
            let why = ended_why(&state_text, status.as_ref());
            if !ever_ran
                && outcomes.is_empty()
                && code != "ALL_STEPS_COMPLETED"
                && code != "USER_REQUEST"
            {
                return Watched::NeverStarted(why);
            }
            let failed = |s: &Step| {
                outcome(
                    s.table(),
                    Some(format!("EMR cluster {id} {why} before its step ended")),
                    Some(id),
                )
            };
            outcomes.extend(running.drain(..).map(|r| failed(r.step)));
            outcomes.extend(queued.drain(..).map(failed));
            if !ctx.waves {
                for s in steps {
                    if !outcomes.iter().any(|o| o.table == s.table()) {
                        outcomes.push(outcome(
                            s.table(),
                            Some(format!("EMR step missing on cluster {id}, which {why}")),
                            Some(id),
                        ));
                    }
                }
            }
            return Watched::Finished(outcomes);
        }
        if !pause(ctx, config.poll_seconds).await {
            let interrupted = |s: &Step| outcome(s.table(), Some("interrupted".into()), Some(id));
            outcomes.extend(running.drain(..).map(|r| interrupted(r.step)));
            // Not handed over yet: nothing runs for them, whatever becomes of the cluster.
            outcomes.extend(
                queued
                    .drain(..)
                    .map(|s| outcome(s.table(), Some("interrupted".into()), None)),
            );
            if !ctx.waves {
                for s in steps {
                    if !outcomes.iter().any(|o| o.table == s.table()) {
                        outcomes.push(interrupted(s));
                    }
                }
            }
            return Watched::Interrupted(outcomes);
        }
    }
}
