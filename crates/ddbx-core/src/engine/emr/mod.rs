//! The EMR engine: the same plan, run as the emr-dynamodb-connector's export and import
//! tools on one or more EMR clusters (what the seed orchestrated with shell scripts).
//! ddbx plans, writes the steps files, creates and watches the clusters, and completes
//! the run files (`table.json`, the restore plan, the flags) from each step's outcome.

pub mod cluster;
pub mod config;
pub mod steps;

pub use cluster::OnInterrupt;
pub use config::EmrConfig;

use std::collections::BTreeMap;

use cluster::{ClusterCommon, ClusterPlan, StepOutcome};
use steps::Step;
use tokio::sync::mpsc;

use crate::aws::Aws;
use crate::capacity::{self, Spike};
use crate::engine::interface::{Engine, ExportWork, ImportWork};
use crate::format::source::{parse_connector_manifest, TableSource};
use crate::plan::{DataFormat, ExportPlan, DEFAULT_WRITE_RATIO};
use crate::progress::{Phase, RunProgress};
use crate::report::{TableReport, TableStatus};
use crate::run::stop::StopSignal;
use crate::store::Location;
use crate::table::TableSchema;
use crate::{Error, Result};

/// How a run uses EMR.
#[derive(Debug, Clone)]
pub struct EmrRun {
    /// Cluster settings.
    pub config: EmrConfig,
    /// The cluster's name (with `--clusters N`: `<name>_01` ... `<name>_NN`).
    pub cluster_name: String,
    /// Clusters to split the tables over, by size.
    pub clusters: usize,
    /// What to do with the clusters on Ctrl-C or SIGTERM.
    pub on_interrupt: OnInterrupt,
}

impl EmrRun {
    /// The names of the clusters a run of `tables` tables creates.
    pub fn cluster_names(&self, tables: usize) -> Vec<String> {
        steps::cluster_names(&self.cluster_name, self.clusters.min(tables.max(1)))
    }

    /// Refuse when an active cluster has one of this run's names (exit code 2).
    pub async fn refuse_active_clusters(&self, aws: &Aws, tables: usize) -> Result<()> {
        cluster::refuse_active_clusters(aws, &self.cluster_names(tables)).await
    }

    fn common(&self, run_dir: &Location, app: &str) -> ClusterCommon {
        ClusterCommon {
            log_uri: self
                .config
                .log_uri
                .clone()
                .unwrap_or_else(|| format!("{}/emr-logs/", run_dir.url())),
            tags: BTreeMap::from([
                ("ddbx:app".to_string(), app.to_string()),
                ("ddbx:run".to_string(), run_dir.url()),
            ]),
        }
    }
}

/// Split steps (one per table, with the table's size) over the run's clusters, named.
fn cluster_plans(emr: &EmrRun, steps: Vec<(Step, u64)>) -> Vec<ClusterPlan> {
    let sizes: Vec<u64> = steps.iter().map(|(_, size)| *size).collect();
    let groups = steps::split_by_size(&sizes, emr.clusters);
    let names = steps::cluster_names(&emr.cluster_name, groups.len());
    groups
        .into_iter()
        .zip(names)
        .map(|(group, name)| ClusterPlan {
            name,
            steps: group.into_iter().map(|i| steps[i].0.clone()).collect(),
        })
        .collect()
}

/// Write `<job>Steps_NN.json` at the run root, one per cluster.
async fn write_steps_files(run_dir: &Location, job: &str, plans: &[Vec<Step>]) -> Result<()> {
    for (i, steps) in plans.iter().enumerate() {
        run_dir.put_json(&steps::steps_file(job, i), steps).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Engine for EmrRun {
    fn name(&self) -> &'static str {
        "emr"
    }

    fn export_format(&self, asked: Option<DataFormat>) -> Result<DataFormat> {
        match asked {
            None | Some(DataFormat::Emr) => Ok(DataFormat::Emr),
            Some(other) => Err(Error::Invalid(format!(
                "--engine emr writes the connector's format (--format emr); --format {} is written by the local engine",
                other.name()
            ))),
        }
    }

    async fn check_export(&self, aws: &Aws, plan: &ExportPlan) -> Result<()> {
        self.refuse_active_clusters(aws, plan.tables.len()).await
    }

    fn check_import_source(&self, source: &TableSource) -> std::result::Result<(), String> {
        if source.format != DataFormat::Emr {
            return Err(format!(
                "{}: the connector imports only its own format (ddbx --format emr or EMR exports); use the local engine for this one",
                source.dir.url()
            ));
        }
        Ok(())
    }

    async fn export_tables(&self, work: ExportWork<'_>) -> Result<Vec<TableReport>> {
        export_tables(self, &work).await
    }

    async fn import_tables(&self, work: ImportWork<'_>) -> Result<Vec<TableReport>> {
        let jobs = work
            .tables
            .iter()
            .map(|t| ImportJob {
                target: t.step.target_table.clone(),
                path: t.step.source.clone(),
                write_ratio: t.step.write_ratio,
                size: t.step.files as u64,
                error: t.ready.as_ref().err().cloned(),
                spike: t.ready.as_ref().ok().and_then(|r| r.spike.clone()),
            })
            .collect();
        import_tables(
            work.aws,
            self,
            work.state,
            work.app,
            jobs,
            work.stop,
            work.progress,
        )
        .await
    }
}

/// Export the planned tables on EMR: the connector writes each table's folder; ddbx writes
/// the steps files, then `table.json` for each table whose step completed (and whose
/// manifest is there). Returns one report per table.
async fn export_tables(emr: &EmrRun, work: &ExportWork<'_>) -> Result<Vec<TableReport>> {
    let (aws, run_dir, plan, schemas, progress) = (
        work.aws,
        work.run_dir,
        work.plan,
        work.schemas,
        work.progress,
    );
    // Capacity first: a table whose spike cannot be applied is not exported.
    let mut spikes = Vec::new();
    let mut reports = Vec::new();
    let mut ready = Vec::new();
    for (schema, planned) in schemas.iter().zip(&plan.tables) {
        let spike = planned.capacity_spike.as_ref();
        if let Err(e) = raise_capacity(aws, run_dir, spike, &mut spikes).await {
            reports.push(finish(progress, &schema.table_name, Err(e), 0.0));
            continue;
        }
        ready.push(schema);
    }
    let steps: Vec<(Step, u64)> = ready
        .iter()
        .map(|s| {
            let path = run_dir.child(&s.table_name).url();
            let step = steps::export_step(
                &emr.config,
                &aws.region,
                &s.table_name,
                &path,
                plan.read_ratio,
                work.segments,
            );
            (step, s.table_size_bytes.max(0) as u64)
        })
        .collect();
    let clusters = cluster_plans(emr, steps);
    write_steps_files(
        run_dir,
        "export",
        &clusters.iter().map(|c| c.steps.clone()).collect::<Vec<_>>(),
    )
    .await?;
    // What restores each cluster's tables, in the seed's shape (its ratio is meant to be edited).
    let imports: Vec<Vec<Step>> = clusters
        .iter()
        .map(|c| {
            c.steps
                .iter()
                .map(|s| {
                    steps::import_step(
                        &emr.config,
                        &aws.region,
                        s.table(),
                        &run_dir.child(s.table()).url(),
                        DEFAULT_WRITE_RATIO,
                    )
                })
                .collect()
        })
        .collect();
    write_steps_files(run_dir, "import", &imports).await?;

    let started = std::time::Instant::now();
    let ctx = Ctx {
        aws,
        emr,
        run_dir,
        app: &plan.app,
        stop: work.stop,
        progress,
    };
    let outcomes = run_spiked(&ctx, clusters, spikes).await;
    let seconds = started.elapsed().as_secs_f64();
    for outcome in outcomes {
        let schema = schemas
            .iter()
            .find(|s| s.table_name == outcome.table)
            .expect("a step per planned table");
        let result = match outcome.error {
            Some(e) => Err(e),
            None => complete_table(run_dir, schema)
                .await
                .map_err(|e| e.to_string()),
        };
        reports.push(finish(progress, &outcome.table, result, seconds));
    }
    Ok(reports)
}

/// What a run's clusters work with.
struct Ctx<'a> {
    aws: &'a Aws,
    emr: &'a EmrRun,
    run_dir: &'a Location,
    app: &'a str,
    stop: &'a StopSignal,
    progress: &'a RunProgress,
}

/// Run the clusters; each spiked table gets its capacity back as soon as a poll sees its
/// step end (and any left at the end, whatever happened). A failed reset fails its table.
async fn run_spiked(
    ctx: &Ctx<'_>,
    clusters: Vec<ClusterPlan>,
    spikes: Vec<Spike>,
) -> Vec<StepOutcome> {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut pending = spikes;
    let mut failed_resets: BTreeMap<String, String> = BTreeMap::new();
    let common = ctx.emr.common(ctx.run_dir, ctx.app);
    let run = cluster::run_clusters(
        ctx.aws,
        ctx.emr,
        clusters,
        &common,
        ctx.stop,
        ctx.progress,
        tx,
    );
    let restorer = async {
        let mut done = Vec::new();
        while let Some(table) = rx.recv().await {
            if let Some(i) = pending.iter().position(|s| s.table == table) {
                let spike = pending.remove(i);
                done.push((table, capacity::restore(ctx.aws, ctx.run_dir, &spike).await));
            }
        }
        done
    };
    let (mut outcomes, done) = tokio::join!(run, restorer);
    for spike in pending {
        // A step still running on a cluster left behind keeps its capacity: lowering it
        // under the connector would throttle the table's own traffic.
        if outcomes
            .iter()
            .any(|o| o.table == spike.table && o.left_running)
        {
            tracing::warn!(
                table = %spike.table,
                "its capacity stays at {} while the EMR cluster left running works; put it back with `ddbx capacity restore --from {}` when the cluster ends",
                spike.to,
                ctx.run_dir.url()
            );
            continue;
        }
        let r = capacity::restore(ctx.aws, ctx.run_dir, &spike).await;
        failed_resets.extend(r.err().map(|e| (spike.table.clone(), e.to_string())));
    }
    for (table, r) in done {
        failed_resets.extend(r.err().map(|e| (table, e.to_string())));
    }
    for o in &mut outcomes {
        if let Some(reset) = failed_resets.remove(&o.table) {
            o.error = Some(match o.error.take() {
                None => format!("the data is complete, but {reset}"),
                Some(e) => format!("{e}; and {reset}"),
            });
        }
    }
    outcomes
}

/// After a completed step: the connector's manifest must be there; write `table.json`
/// beside it. Returns the number of data files.
async fn complete_table(run_dir: &Location, schema: &TableSchema) -> Result<u64> {
    let dir = run_dir.child(&schema.table_name);
    let manifest = dir.join("manifest");
    let bytes = dir
        .get_optional(&manifest)
        .await?
        .ok_or_else(|| Error::Corrupt {
            file: dir.url_of(&manifest),
            message: "the EMR step completed but wrote no manifest".into(),
        })?;
    let entries = parse_connector_manifest(&dir.url_of(&manifest), &bytes)?;
    dir.put_json("table.json", schema).await?;
    Ok(entries.len() as u64)
}

/// One table an EMR import writes: checked and ready, or already failed.
#[derive(Debug, Clone)]
struct ImportJob {
    /// The target table.
    pub target: String,
    /// The connector export's folder (URL).
    pub path: String,
    /// The write ratio.
    pub write_ratio: f64,
    /// Its size, to balance clusters (data files or items).
    pub size: u64,
    /// Why it cannot be imported, when so.
    pub error: Option<String>,
    /// Its write capacity spike.
    pub spike: Option<Spike>,
}

/// Import on EMR: one connector import step per ready table, split over the clusters.
/// The steps are also written to `<state>/_import/importSteps_NN.json`.
async fn import_tables(
    aws: &Aws,
    emr: &EmrRun,
    root: &Location,
    app: &str,
    jobs: Vec<ImportJob>,
    stop: &StopSignal,
    progress: &RunProgress,
) -> Result<Vec<TableReport>> {
    let mut reports = Vec::new();
    let mut steps = Vec::new();
    let mut spikes = Vec::new();
    for job in jobs {
        let ready = match job.error {
            Some(e) => Err(e),
            None => raise_capacity(aws, root, job.spike.as_ref(), &mut spikes).await,
        };
        if let Err(e) = ready {
            reports.push(finish(progress, &job.target, Err(e), 0.0));
            continue;
        }
        steps.push((
            steps::import_step(
                &emr.config,
                &aws.region,
                &job.target,
                &job.path,
                job.write_ratio,
            ),
            job.size,
        ));
    }
    if steps.is_empty() {
        return Ok(reports);
    }
    let clusters = cluster_plans(emr, steps);
    write_steps_files(
        &root.child("_import"),
        "import",
        &clusters.iter().map(|c| c.steps.clone()).collect::<Vec<_>>(),
    )
    .await?;
    let started = std::time::Instant::now();
    let ctx = Ctx {
        aws,
        emr,
        run_dir: root,
        app,
        stop,
        progress,
    };
    let outcomes = run_spiked(&ctx, clusters, spikes).await;
    let seconds = started.elapsed().as_secs_f64();
    for o in outcomes {
        reports.push(finish(
            progress,
            &o.table,
            o.error.map_or(Ok(0), Err),
            seconds,
        ));
    }
    Ok(reports)
}

/// Raise a table's capacity when its plan says to, keeping the spike to put back later.
async fn raise_capacity(
    aws: &Aws,
    run_dir: &Location,
    spike: Option<&Spike>,
    spikes: &mut Vec<Spike>,
) -> std::result::Result<(), String> {
    if let Some(spike) = spike.filter(|s| s.changes()) {
        capacity::apply_or_undo(aws, run_dir, spike)
            .await
            .map_err(|e| e.to_string())?;
        spikes.push(spike.clone());
    }
    Ok(())
}

/// One table's end (its data files, or why it failed): its progress phase, the log, and
/// its report.
fn finish(
    progress: &RunProgress,
    table: &str,
    result: std::result::Result<u64, String>,
    seconds: f64,
) -> TableReport {
    let counters = progress.table(table);
    let (status, files, error) = match result {
        Ok(files) => {
            counters.set_phase(Phase::Done);
            (TableStatus::Succeeded, files, None)
        }
        Err(e) => {
            counters.set_phase(Phase::Failed);
            tracing::error!(%table, error = %e, "table failed");
            (TableStatus::Failed, 0, Some(e))
        }
    };
    TableReport {
        status,
        files,
        seconds,
        error,
        ..TableReport::planned(table)
    }
}
