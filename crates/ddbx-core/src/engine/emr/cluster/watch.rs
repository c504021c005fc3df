//! Watching one cluster: steps handed over as it has room, one more than it runs at once
//! so that the next table's step waits in EMR's queue (a cluster never idles between two
//! tables), or known by their arguments when they came with it; each step's end reported,
//! faster near it; a cluster that does not start terminated, one EMR refuses to launch
//! reported as such.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

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
    /// When it was first seen running.
    running_since: Option<Instant>,
}

impl<'a> Submitted<'a> {
    fn new(id: String, step: &'a Step) -> Self {
        Self {
            id,
            step,
            cancelled_once: false,
            running_since: None,
        }
    }
}

/// Steps kept waiting in a cluster's queue behind those it runs: when one ends, EMR starts
/// the next at once, without waiting for ddbx to look.
pub const QUEUED_AHEAD: usize = 1;

/// How long to wait before looking at the cluster again: `poll`, or less while a running
/// step may be about to end: until it has run as long as the shortest step this cluster
/// has run so far, then half the time it has been over that (at least `fast`), growing
/// back to `poll`.
pub fn next_poll(
    now: Instant,
    running_since: &[Instant],
    shortest: Option<Duration>,
    poll: Duration,
    fast: Duration,
) -> Duration {
    let fast = fast.min(poll);
    running_since
        .iter()
        .map(|&since| {
            let due = since + shortest.unwrap_or_default();
            match due.checked_duration_since(now) {
                Some(left) if !left.is_zero() => left,
                _ => now.duration_since(due) / 2,
            }
        })
        .min()
        .map_or(poll, |wait| wait.clamp(fast, poll))
}

/// Hand one step to a running cluster (its table's capacity raised first). A lost answer
/// is not sent again blindly: the cluster's steps are looked at for it first.
async fn add_step(ctx: &Ctx<'_>, cluster: &str, step: &Step) -> crate::Result<String> {
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
        Ok(out) => out.step_ids().first().cloned().ok_or_else(|| {
            Error::Failed(format!(
                "EMR AddJobFlowSteps {cluster}: no step id returned"
            ))
        }),
        Err(e) => {
            if let Ok(listed) = list_steps(ctx.aws, cluster).await {
                if let Some((id, _)) = listed.iter().find(|(_, s)| s.args == step.args) {
                    return Ok(id.clone());
                }
            }
            Err(Error::Failed(e.to_string()))
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
    let mut w = Watch {
        ctx,
        plan,
        steps,
        id,
        started: ctx.aws.clock.now(),
        last_state: String::new(),
        queued: if ctx.waves {
            steps.iter().copied().collect()
        } else {
            VecDeque::new()
        },
        running: Vec::new(),
        outcomes: Vec::new(),
        ever_ran: false,
        shortest: None,
    };
    loop {
        if let Some(end) = w.look().await {
            return end;
        }
        let wait = w.next_wait();
        if !pause(ctx, wait.as_secs_f64()).await {
            return w.interrupted();
        }
    }
}

/// One cluster being watched.
struct Watch<'c, 'a> {
    ctx: &'c Ctx<'a>,
    plan: &'c ClusterPlan,
    steps: &'c [&'c Step],
    id: &'c str,
    started: Instant,
    last_state: String,
    /// Tables not yet handed over (waves).
    queued: VecDeque<&'c Step>,
    /// Handed over (pending or running on the cluster).
    running: Vec<Submitted<'c>>,
    outcomes: Vec<StepOutcome>,
    ever_ran: bool,
    /// The shortest time a step of this cluster took, as seen.
    shortest: Option<Duration>,
}

/// What DescribeCluster said.
struct Seen {
    status: Option<emr::ClusterStatus>,
    state: Option<emr::ClusterState>,
    text: String,
}

impl Seen {
    fn terminal(&self) -> bool {
        matches!(
            self.state,
            Some(emr::ClusterState::Terminated | emr::ClusterState::TerminatedWithErrors)
        )
    }

    fn ending(&self) -> Option<String> {
        matches!(
            self.state,
            Some(
                emr::ClusterState::Terminating
                    | emr::ClusterState::Terminated
                    | emr::ClusterState::TerminatedWithErrors
            )
        )
        .then(|| ended_why(&self.text, self.status.as_ref()))
    }

    fn code(&self) -> String {
        self.status
            .as_ref()
            .and_then(|s| s.state_change_reason())
            .and_then(|r| r.code())
            .map(|c| c.as_str().to_string())
            .unwrap_or_default()
    }
}

impl<'c> Watch<'c, '_> {
    /// One look at the cluster: its state, steps handed over, steps ended; the end of the
    /// watch when the cluster is done.
    async fn look(&mut self) -> Option<Watched> {
        let seen = self.describe().await;
        if let Some(end) = self.start_timed_out(&seen).await {
            return Some(end);
        }
        let listed = match self.list(&seen).await {
            Ok(l) => l,
            Err(end) => return Some(end),
        };
        if !self.ctx.waves && self.running.is_empty() {
            // All steps came with the cluster: know them by their arguments.
            for step in self.steps {
                if let Some((sid, _)) = listed.iter().find(|(_, l)| l.args == step.args) {
                    self.running.push(Submitted::new(sid.clone(), step));
                }
            }
        }
        self.take_ended(&listed, &seen).await;
        self.refill(&seen).await;
        for s in &self.queued {
            self.ctx.progress.table(s.table()).set_state(format!(
                "cluster {} {}, step not handed over yet",
                self.id, seen.text
            ));
        }
        if self.ctx.waves && self.queued.is_empty() && self.running.is_empty() && !seen.terminal() {
            tracing::info!(cluster = %self.plan.name, id = self.id, "every step has ended: terminating the cluster");
            if let Err(e) = terminate_clusters(self.ctx.aws, &[self.id.to_string()]).await {
                tracing::warn!(cluster = %self.id, error = %e, "could not terminate the cluster; it ends itself after idle_timeout_seconds");
            }
            return Some(Watched::Finished(std::mem::take(&mut self.outcomes)));
        }
        seen.terminal().then(|| self.ended(&seen))
    }

    async fn describe(&mut self) -> Seen {
        let (ctx, id) = (self.ctx, self.id);
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
                tracing::warn!(cluster = %self.plan.name, id, error = %e, "could not poll the cluster");
                None
            }
        };
        let state = status.as_ref().and_then(|s| s.state()).cloned();
        let text = state.as_ref().map_or("?", |s| s.as_str()).to_string();
        if text != self.last_state && state.is_some() {
            tracing::info!(cluster = %self.plan.name, id, state = %text, "cluster state");
            self.last_state = text.clone();
        }
        Seen {
            status,
            state,
            text,
        }
    }

    /// A cluster still starting after `start_timeout_seconds` is terminated.
    async fn start_timed_out(&self, seen: &Seen) -> Option<Watched> {
        let starting = matches!(
            seen.state,
            Some(emr::ClusterState::Starting | emr::ClusterState::Bootstrapping)
        );
        let limit = self.ctx.config.start_timeout_seconds;
        let waited = self.ctx.aws.clock.now().duration_since(self.started);
        if !starting || self.ever_ran || waited.as_secs_f64() <= limit {
            return None;
        }
        tracing::warn!(cluster = %self.plan.name, id = self.id, state = %seen.text, "the cluster did not start in time: terminating it");
        if let Err(e) = terminate_clusters(self.ctx.aws, &[self.id.to_string()]).await {
            tracing::error!(cluster = %self.id, error = %e, "could not terminate the cluster that did not start");
        }
        Some(Watched::NeverStarted(format!(
            "was still {} after {limit} s (start_timeout_seconds): terminated",
            seen.text
        )))
    }

    /// The cluster's steps; for a terminated cluster whose steps cannot be listed, the
    /// end of the watch (unknown outcomes fail their tables, never taken as not run).
    async fn list(&mut self, seen: &Seen) -> std::result::Result<Vec<(String, Listed)>, Watched> {
        let listed = if seen.terminal() {
            list_steps_of_ended(self.ctx, self.id).await
        } else {
            list_steps(self.ctx.aws, self.id).await
        };
        match listed {
            Ok(l) => Ok(l),
            Err(e) => {
                tracing::warn!(cluster = %self.plan.name, id = self.id, error = %e, "could not list the cluster's steps");
                if !seen.terminal() {
                    return Ok(Vec::new());
                }
                let why = format!("the outcome of its EMR step is unknown: {e}");
                let id = self.id;
                let mut outcomes = std::mem::take(&mut self.outcomes);
                outcomes.extend(
                    self.running
                        .drain(..)
                        .map(|r| outcome(r.step.table(), Some(why.clone()), Some(id))),
                );
                outcomes.extend(
                    self.queued
                        .drain(..)
                        .map(|s| outcome(s.table(), Some(why.clone()), Some(id))),
                );
                Err(Watched::Finished(outcomes))
            }
        }
    }

    /// Waves: hand over steps while the cluster runs and has room, keeping
    /// [`QUEUED_AHEAD`] waiting behind those it runs (each table's capacity raised as its
    /// step is queued).
    async fn refill(&mut self, seen: &Seen) {
        if !self.ctx.waves
            || !matches!(
                seen.state,
                Some(emr::ClusterState::Running | emr::ClusterState::Waiting)
            )
        {
            return;
        }
        let room = (self.ctx.config.step_concurrency.max(1) as usize + QUEUED_AHEAD)
            .min(crate::engine::emr::steps::MAX_PENDING_STEPS);
        while self.running.len() < room {
            let Some(step) = self.queued.pop_front() else {
                break;
            };
            if self.ctx.stop.is_stopped() {
                self.queued.push_front(step);
                break;
            }
            match add_step(self.ctx, self.id, step).await {
                Ok(step_id) => self.running.push(Submitted::new(step_id, step)),
                Err(e) => {
                    self.outcomes
                        .push(outcome(step.table(), Some(e.to_string()), Some(self.id)))
                }
            }
        }
    }

    /// Steps that ended since the last look: reported (their capacity put back).
    async fn take_ended(&mut self, listed: &[(String, Listed)], seen: &Seen) {
        let ending = seen.ending();
        let by_id: HashMap<&str, &Listed> = listed.iter().map(|(i, l)| (i.as_str(), l)).collect();
        let now = self.ctx.aws.clock.now();
        let mut still = Vec::new();
        for mut r in std::mem::take(&mut self.running) {
            let Some(l) = by_id.get(r.id.as_str()) else {
                still.push(r);
                continue;
            };
            let step_state = l.status.state();
            let table = r.step.table();
            let counters = self.ctx.progress.table(table);
            counters.set_state(format!(
                "cluster {} {}, step {}",
                self.id,
                seen.text,
                step_state.map_or("?", |s| s.as_str())
            ));
            if matches!(
                step_state,
                Some(emr::StepState::Running | emr::StepState::Completed | emr::StepState::Failed)
            ) {
                self.ever_ran = true;
                r.running_since.get_or_insert(now);
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
            if !step_ended(step_state) {
                still.push(r);
                continue;
            }
            if let Some(since) = r.running_since {
                let took = now.duration_since(since);
                self.shortest = Some(self.shortest.map_or(took, |s| s.min(took)));
            }
            let mut error = step_error(self.id, &l.status);
            if let (Some(e), Some(why), false) = (
                &mut error,
                &ending,
                step_state == Some(&emr::StepState::Failed),
            ) {
                e.push_str(&format!(": the cluster {why}"));
            }
            let mut o = outcome(table, error, Some(self.id));
            counters.set_phase(if o.error.is_none() {
                Phase::Done
            } else {
                Phase::Failed
            });
            if let Some(reset) = self.ctx.hooks.after(table).await {
                append(&mut o, reset);
            }
            self.outcomes.push(o);
        }
        self.running = still;
    }

    /// The cluster has terminated: steps that did not end fail with its reason; a cluster
    /// that never ran a step is one to create again, unless EMR refused to launch it
    /// (VALIDATION_ERROR: a role, subnet, security group, instance type or policy that
    /// does not fix itself).
    fn ended(&mut self, seen: &Seen) -> Watched {
        let id = self.id;
        let code = seen.code();
        let why = ended_why(&seen.text, seen.status.as_ref());
        if !self.ever_ran
            && self.outcomes.is_empty()
            && code != "ALL_STEPS_COMPLETED"
            && code != "USER_REQUEST"
        {
            return if code == "VALIDATION_ERROR" {
                Watched::Refused(why)
            } else {
                Watched::NeverStarted(why)
            };
        }
        let failed = |s: &Step| {
            outcome(
                s.table(),
                Some(format!("EMR cluster {id} {why} before its step ended")),
                Some(id),
            )
        };
        let mut outcomes = std::mem::take(&mut self.outcomes);
        outcomes.extend(self.running.drain(..).map(|r| failed(r.step)));
        outcomes.extend(self.queued.drain(..).map(failed));
        if !self.ctx.waves {
            for s in self.steps {
                if !outcomes.iter().any(|o| o.table == s.table()) {
                    outcomes.push(outcome(
                        s.table(),
                        Some(format!("EMR step missing on cluster {id}, which {why}")),
                        Some(id),
                    ));
                }
            }
        }
        Watched::Finished(outcomes)
    }

    /// Stopped: handed-over steps are interrupted (their cluster is terminated or left as
    /// asked), the others never ran anywhere.
    fn interrupted(&mut self) -> Watched {
        let id = self.id;
        let interrupted = |s: &Step| outcome(s.table(), Some("interrupted".into()), Some(id));
        let mut outcomes = std::mem::take(&mut self.outcomes);
        outcomes.extend(self.running.drain(..).map(|r| interrupted(r.step)));
        // Not handed over yet: nothing runs for them, whatever becomes of the cluster.
        outcomes.extend(
            self.queued
                .drain(..)
                .map(|s| outcome(s.table(), Some("interrupted".into()), None)),
        );
        if !self.ctx.waves {
            for s in self.steps {
                if !outcomes.iter().any(|o| o.table == s.table()) {
                    outcomes.push(interrupted(s));
                }
            }
        }
        Watched::Interrupted(outcomes)
    }

    fn next_wait(&self) -> Duration {
        let config = self.ctx.config;
        let since: Vec<Instant> = self
            .running
            .iter()
            .filter_map(|r| r.running_since)
            .collect();
        next_poll(
            self.ctx.aws.clock.now(),
            &since,
            self.shortest,
            Duration::from_secs_f64(config.poll_seconds),
            Duration::from_secs_f64(config.fast_poll_seconds),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_come_faster_when_a_step_may_be_ending() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let (poll, fast) = (s(30), s(5));
        // Nothing running: the usual poll.
        assert_eq!(next_poll(t0, &[], Some(s(40)), poll, fast), poll);
        // A step that started 10 s ago, where steps took 40 s at the shortest: looked at
        // when it has run 40 s, not later.
        assert_eq!(next_poll(t0 + s(10), &[t0], Some(s(40)), poll, fast), poll);
        assert_eq!(next_poll(t0 + s(25), &[t0], Some(s(40)), poll, fast), s(15));
        // Past that, at half the time it has been over (at least fast), back to poll.
        assert_eq!(next_poll(t0 + s(41), &[t0], Some(s(40)), poll, fast), fast);
        assert_eq!(next_poll(t0 + s(60), &[t0], Some(s(40)), poll, fast), s(10));
        assert_eq!(next_poll(t0 + s(200), &[t0], Some(s(40)), poll, fast), poll);
        // No step has ended yet: from its start.
        assert_eq!(next_poll(t0 + s(1), &[t0], None, poll, fast), fast);
        // The soonest of several; never faster than fast, never slower than poll.
        assert_eq!(
            next_poll(t0 + s(30), &[t0, t0 + s(28)], Some(s(4)), poll, fast),
            fast
        );
        assert_eq!(next_poll(t0, &[t0], None, s(1), fast), s(1));
    }
}
