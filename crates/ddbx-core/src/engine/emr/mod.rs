//! The EMR engine: the same plan, run as steps on one or more EMR clusters (what the seed
//! orchestrated with shell scripts). By default each table is a Hive step over the
//! DynamoDB storage handler that EMR installs ([`hive`]); with `step_mode = "tools"`, the
//! connector's tools from the user's jar. ddbx plans, writes the steps files and scripts,
//! creates and watches the clusters ([`cluster`]), raises each table's capacity around its
//! step, and completes the run files (`table.json`, the listing of the data files, the
//! restore plan, the flags) from each step's outcome. An import writes itself, after its
//! step, the items the connector cannot write (empty lists or maps), which the step sets
//! aside.

pub(crate) mod cluster;
pub mod config;
mod export;
pub(crate) mod hive;
mod import;
pub(crate) mod steps;

pub use cluster::OnInterrupt;
pub use config::{EmrConfig, StepMode};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use cluster::{ClusterCommon, ClusterPlan, StepHooks};
use config::Configuration;
use object_store::PutPayload;
use steps::Step;

use crate::aws::Aws;
use crate::capacity::{self, Spike};
use crate::engine::interface::{Engine, ExportWork, ImportWork};
use crate::format::source::TableSource;
use crate::plan::{Compression, DataFormat, ExportPlan, PlannedTable};
use crate::progress::Phase;
use crate::report::{Reports, TableReport, TableStatus};
use crate::store::{Encryption, Location};
use crate::table::{TableSchema, ON_DEMAND_DEFAULT_UNITS};
use crate::{Error, Result};

/// How a run uses EMR.
#[derive(Debug, Clone)]
pub struct EmrEngine {
    /// Cluster settings.
    pub config: EmrConfig,
    /// The cluster's name (with `--clusters N`: `<name>_01` ... `<name>_NN`).
    pub cluster_name: String,
    /// Clusters to split the tables over, by size.
    pub clusters: usize,
    /// What to do with the clusters on Ctrl-C or SIGTERM.
    pub on_interrupt: OnInterrupt,
}

/// The tag AWS's managed policy `AmazonEMRServicePolicy_v2` requires on a cluster.
pub const MANAGED_POLICY_TAG: &str = "for-use-with-amazon-emr-managed-policies";

/// EMR's limit on a tag's value.
pub const MAX_TAG_VALUE: usize = 256;

/// A tag value within EMR's 256 characters: a longer one keeps its end (a run's date and
/// time), marked as cut.
fn tag_value(value: &str) -> String {
    if value.chars().count() <= MAX_TAG_VALUE {
        return value.to_string();
    }
    let keep: String = {
        let tail: Vec<char> = value.chars().rev().take(MAX_TAG_VALUE - 3).collect();
        tail.into_iter().rev().collect()
    };
    format!("...{keep}")
}

/// The names a table defines (its keys, its indexes' keys): the storage handler refuses an
/// item column named as any of them.
fn defined_names(schema: &TableSchema) -> Vec<String> {
    let mut names: Vec<String> = schema.key().into_iter().map(|k| k.attribute_name).collect();
    for a in &schema.attribute_definitions {
        if !names.contains(&a.attribute_name) {
            names.push(a.attribute_name.clone());
        }
    }
    names
}

impl EmrEngine {
    /// How many clusters `tables` tables get: as asked, or more when the release takes
    /// every step at creation and one cluster would exceed EMR's 256 steps.
    fn cluster_count(&self, tables: usize) -> usize {
        let waves = self
            .config
            .release()
            .map(|r| r.has_auto_termination())
            .unwrap_or(true);
        let needed = if waves {
            self.clusters
        } else {
            self.clusters.max(tables.div_ceil(steps::MAX_PENDING_STEPS))
        };
        needed.min(tables.max(1))
    }

    /// The names of the clusters a run of `tables` tables creates.
    pub fn cluster_names(&self, tables: usize) -> Vec<String> {
        steps::cluster_names(&self.cluster_name, self.cluster_count(tables))
    }

    /// Refuse when an active cluster has one of this run's names (exit code 2).
    pub async fn refuse_active_clusters(&self, aws: &Aws, tables: usize) -> Result<()> {
        cluster::refuse_active_clusters(aws, &self.cluster_names(tables)).await
    }

    fn hive(&self) -> bool {
        self.config.step_mode == StepMode::Hive
    }

    /// What a run's clusters have in common: logs (the run's `emr-logs/`, when the run is
    /// in S3), tags (the managed policy's among them), applications, and ddbx's Hadoop
    /// settings (speculation off; with `--sse`, EMRFS encrypts what the cluster writes).
    fn common(&self, run_dir: &Location, app: &str) -> ClusterCommon {
        let mut applications = vec!["Hadoop".to_string()];
        if self.hive() {
            applications.push("Hive".into());
        }
        let mut configurations = vec![Configuration {
            classification: "mapred-site".into(),
            properties: BTreeMap::from([
                ("mapreduce.map.speculative".into(), "false".into()),
                ("mapreduce.reduce.speculative".into(), "false".into()),
            ]),
        }];
        if let Some(sse) = &run_dir.encryption {
            let mut p =
                BTreeMap::from([("fs.s3.enableServerSideEncryption".into(), "true".into())]);
            if let Encryption::Kms(key) = sse {
                p.insert(
                    "fs.s3.serverSideEncryption.kms.keyId".into(),
                    key.clone().unwrap_or_else(|| "alias/aws/s3".into()),
                );
            }
            configurations.push(Configuration {
                classification: "emrfs-site".into(),
                properties: p,
            });
        }
        ClusterCommon {
            log_uri: self.config.log_uri.clone().or_else(|| {
                run_dir
                    .bucket
                    .is_some()
                    .then(|| format!("{}/emr-logs/", run_dir.url()))
            }),
            tags: BTreeMap::from([
                ("ddbx:app".to_string(), app.to_string()),
                ("ddbx:run".to_string(), tag_value(&run_dir.url())),
                (MANAGED_POLICY_TAG.to_string(), "true".to_string()),
            ]),
            applications,
            configurations,
        }
    }

    /// The type key the cluster's connector reads NULL by: connector 5.x (emr-6.15 and
    /// later) `nULL`, 4.x (AWS SDK for Java v1) `nULLValue`.
    fn null_key(&self) -> &'static str {
        match self.config.release() {
            Ok(r) if r.at_least(6, 15) => "nULL",
            _ => "nULLValue",
        }
    }
}

/// Split steps (one per table, with the table's size) over the run's clusters, named.
fn cluster_plans(emr: &EmrEngine, steps: Vec<(Step, u64)>) -> Vec<ClusterPlan> {
    let sizes: Vec<u64> = steps.iter().map(|(_, size)| *size).collect();
    let groups = steps::split_by_size(&sizes, emr.cluster_count(steps.len()));
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
async fn write_steps_files(dir: &Location, job: &str, plans: &[Vec<Step>]) -> Result<()> {
    for (i, steps) in plans.iter().enumerate() {
        dir.put_json(&steps::steps_file(job, i), steps).await?;
    }
    Ok(())
}

/// Write a small text object (a script) and return its URL.
async fn put_text(dir: &Location, rel: &str, text: &str) -> Result<String> {
    let path = dir.join(rel);
    dir.store
        .put(&path, PutPayload::from(Bytes::from(text.to_string())))
        .await
        .map_err(|e| Error::store(dir.url_of(&path), e))?;
    Ok(dir.url_of(&path))
}

/// The capacity each table has while its step runs, raised just before the step and put
/// back when it ends (idempotent: a table is put back once).
struct SpikeHooks<'a> {
    aws: &'a Aws,
    records: &'a Location,
    spikes: HashMap<String, Spike>,
    raised: Mutex<HashSet<String>>,
}

#[async_trait::async_trait]
impl StepHooks for SpikeHooks<'_> {
    async fn before(&self, table: &str) -> crate::Result<()> {
        let Some(spike) = self.spikes.get(table).filter(|s| s.changes()) else {
            return Ok(());
        };
        capacity::apply_or_undo(self.aws, self.records, spike).await?;
        self.raised.lock().unwrap().insert(table.to_string());
        Ok(())
    }

    async fn after(&self, table: &str) -> Option<String> {
        if !self.raised.lock().unwrap().remove(table) {
            return None;
        }
        let spike = &self.spikes[table];
        capacity::restore(self.aws, self.records, spike)
            .await
            .err()
            .map(|e| e.to_string())
    }
}

impl SpikeHooks<'_> {
    /// Tables still raised (their steps left running): said so, with the way back.
    fn warn_left(&self) {
        for table in self.raised.lock().unwrap().iter() {
            tracing::warn!(
                %table,
                "its capacity stays at {} while the EMR cluster left running works; put it back with `ddbx capacity restore --from {}` when the cluster ends",
                self.spikes[table].to,
                self.records.url()
            );
        }
    }
}

/// Run the clusters' steps, each table's capacity spiked around its step (records under
/// `records`); the steps' outcomes and how long they took, in seconds.
#[allow(clippy::too_many_arguments)]
async fn run_steps(
    emr: &EmrEngine,
    aws: &Aws,
    clusters: Vec<ClusterPlan>,
    records: &Location,
    app: &str,
    spikes: HashMap<String, Spike>,
    stop: &crate::stop::StopSignal,
    progress: &crate::progress::RunProgress,
) -> Result<(Vec<cluster::StepOutcome>, f64)> {
    let hooks = SpikeHooks {
        aws,
        records,
        spikes,
        raised: Mutex::default(),
    };
    let started = std::time::Instant::now();
    let outcomes = cluster::run_clusters(
        aws,
        emr,
        clusters,
        &emr.common(records, app),
        stop,
        progress,
        &hooks,
    )
    .await?;
    hooks.warn_left();
    Ok((outcomes, started.elapsed().as_secs_f64()))
}

/// A table's capacity as the connector sees it: provisioned RCU (WCU), or 40,000 for an
/// on-demand table (it ignores the on-demand maximums).
fn connector_capacity(schema: &TableSchema, spike: Option<&Spike>, read: bool) -> f64 {
    if let Some(units) = spike.and_then(|s| s.units(1.0)) {
        return units;
    }
    match (&schema.provisioned_throughput, schema.is_on_demand()) {
        (Some(p), false) => (if read {
            p.read_capacity_units
        } else {
            p.write_capacity_units
        })
        .max(1) as f64,
        _ => ON_DEMAND_DEFAULT_UNITS,
    }
}

#[async_trait::async_trait]
impl Engine for EmrEngine {
    fn name(&self) -> &'static str {
        "emr"
    }

    fn export_format(&self, asked: Option<DataFormat>) -> Result<DataFormat> {
        match (self.config.step_mode, asked) {
            (StepMode::Hive, None | Some(DataFormat::DataPipeline)) => Ok(DataFormat::DataPipeline),
            (StepMode::Tools, None | Some(DataFormat::Emr)) => Ok(DataFormat::Emr),
            (StepMode::Hive, Some(DataFormat::Emr)) => Err(Error::Usage(
                "the EMR engine's Hive steps write the Hive (Data Pipeline) format; the connector's format (--format emr) needs step_mode = \"tools\"".into(),
            )),
            (_, Some(other)) => Err(Error::Usage(format!(
                "--engine emr writes the Hive format (or the connector's, with step_mode = \"tools\"); --format {} is written by the local engine",
                other.name()
            ))),
        }
    }

    fn adjust_plan(&self, planned: &mut PlannedTable, schema: &TableSchema, segments: Option<u32>) {
        // The connector takes whole units per second (it floors what it is given).
        planned.target_read_units = planned.target_read_units.floor().max(1.0);
        // Unless --segments is given, the connector splits the scan itself, in whole
        // numbers as it counts them (`AbstractDynamoDBInputFormat.getNumSegments`): a
        // segment per whole GiB of the table or per whole 100 units of the rate, the larger,
        // at least 1 and at most 1,000,000.
        if segments.is_none() {
            let by_size = schema.table_size_bytes.max(0) as u64 / (1u64 << 30);
            let by_rate = planned.target_read_units as u64 / 100;
            planned.segments = by_size.max(by_rate).clamp(1, 1_000_000) as u32;
        }
    }

    async fn check_export(&self, aws: &Aws, plan: &ExportPlan) -> Result<()> {
        if plan.compression == Compression::Zstd {
            return Err(Error::Usage(
                "--engine emr writes gzip or no compression (Hadoop's zstd needs native support EMR does not promise): pass --compression gzip or none".into(),
            ));
        }
        if plan.storage_class.is_some() {
            return Err(Error::Usage(
                "--storage-class: the cluster writes the data through EMRFS as STANDARD; use an S3 lifecycle rule on the run's prefix, or the local engine".into(),
            ));
        }
        if self.hive() {
            // The run root is where an EMR import of this run keeps its script by default:
            // refused now if Hive's ADD FILE could not name it.
            hive::hive_cli_path(
                "the run root",
                &format!("{}/_emr/{}", plan.run_root, hive::IMPORT_SCRIPT_NAME),
            )?;
        }
        self.refuse_active_clusters(aws, plan.tables.len()).await
    }

    fn check_import_source(&self, source: &TableSource) -> crate::Result<()> {
        let url = source.dir.url();
        if self.hive() {
            if source.format == DataFormat::Ion {
                return Err(Error::Usage(format!(
                    "{url}: EMR's clusters have no Ion reader; import this Ion export with the local engine"
                )));
            }
            if source
                .files
                .iter()
                .any(|f| f.url.ends_with(".zst") || f.url.ends_with(".zstd"))
            {
                return Err(Error::Usage(format!(
                    "{url}: zstd files are not read by EMR's Hadoop without native zstd; import them with the local engine"
                )));
            }
            import::data_folder(source)?;
            Ok(())
        } else if source.format != DataFormat::Emr {
            Err(Error::Usage(format!(
                "{url}: the connector imports only its own format (ddbx --format emr or EMR tools exports); use step_mode = \"hive\" or the local engine for this one"
            )))
        } else {
            Ok(())
        }
    }

    async fn export_tables(&self, work: ExportWork<'_>) -> Result<Reports> {
        export::export_tables(self, &work).await.map(Reports::from)
    }

    async fn import_tables(&self, work: ImportWork<'_>) -> Result<Vec<TableReport>> {
        import::import_tables(self, work).await
    }
}

fn report(
    progress: &crate::progress::RunProgress,
    table: &str,
    result: Result<(u64, Option<String>)>,
    seconds: f64,
) -> TableReport {
    let counters = progress.table(table);
    match result {
        Ok((files, note)) => {
            counters.set_phase(Phase::Done);
            TableReport {
                status: TableStatus::Succeeded,
                files,
                seconds,
                items_unknown: true,
                note,
                ..TableReport::planned(table)
            }
        }
        Err(e) => failed(progress, table, &e, seconds),
    }
}

/// The report of a table that did not end well: failed, or interrupted.
fn failed(
    progress: &crate::progress::RunProgress,
    table: &str,
    error: &crate::Error,
    seconds: f64,
) -> TableReport {
    progress.table(table).fail(&error.to_string());
    TableReport {
        seconds,
        items_unknown: true,
        ..TableReport::of_error(table, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(release: &str, clusters: usize) -> EmrEngine {
        EmrEngine {
            config: EmrConfig {
                release_label: release.into(),
                ..EmrConfig::default()
            },
            cluster_name: "backup".into(),
            clusters,
            on_interrupt: OnInterrupt::Terminate,
        }
    }

    #[test]
    fn older_releases_get_a_cluster_per_256_tables_and_newer_ones_as_asked() {
        // Every step at creation, at most 256 a cluster: 600 tables need three.
        assert_eq!(run("emr-5.29.0", 1).cluster_count(600), 3);
        assert_eq!(run("emr-5.29.0", 1).cluster_count(256), 1);
        assert_eq!(run("emr-5.29.0", 1).cluster_count(257), 2);
        assert_eq!(run("emr-5.29.0", 4).cluster_count(600), 4);
        // Steps handed over as the run goes: as many clusters as asked, never more than
        // tables.
        assert_eq!(run("emr-7.5.0", 1).cluster_count(600), 1);
        assert_eq!(run("emr-7.5.0", 5).cluster_count(3), 3);
        assert_eq!(
            run("emr-5.29.0", 1).cluster_names(600),
            vec!["backup_01", "backup_02", "backup_03"]
        );
    }

    #[test]
    fn a_tag_value_stays_within_emrs_limit_and_keeps_the_runs_date() {
        let short = "s3://b/ddb/us-east-1/app/2026/11/24/03_00.00";
        assert_eq!(tag_value(short), short);
        let long = format!(
            "s3://b/{}/us-east-1/app/2026/11/24/03_00.00",
            "p".repeat(300)
        );
        let v = tag_value(&long);
        assert_eq!(v.chars().count(), MAX_TAG_VALUE);
        assert!(
            v.starts_with("...") && v.ends_with("/2026/11/24/03_00.00"),
            "{v}"
        );
        let wide = "\u{e9}".repeat(300);
        assert_eq!(tag_value(&wide).chars().count(), MAX_TAG_VALUE);
    }

    #[test]
    fn the_plan_counts_segments_as_the_connector_does() {
        let segments = |units: f64, bytes: i64| {
            let schema: TableSchema = serde_json::from_value(serde_json::json!({
                "TableName": "t", "KeySchema": [], "AttributeDefinitions": [],
                "BillingMode": "PAY_PER_REQUEST", "TableSizeBytes": bytes
            }))
            .unwrap();
            let mut p: PlannedTable = serde_json::from_value(serde_json::json!({
                "table": "t", "keySchema": [], "billingMode": "PAY_PER_REQUEST", "sizeBytes": bytes,
                "itemCountEstimate": 0, "targetReadUnits": units, "segments": 0, "destination": ""
            }))
            .unwrap();
            run("emr-7.5.0", 1).adjust_plan(&mut p, &schema, None);
            p.segments
        };
        // Integer division: 250 units scan in 2 segments, not 3; 99 in 1.
        assert_eq!(segments(250.0, 0), 2);
        assert_eq!(segments(99.9, 0), 1);
        assert_eq!(segments(1.0, (3 << 30) - 1), 2);
        assert_eq!(segments(1.0, 3 << 30), 3);
        assert_eq!(segments(40_000.0, 0), 400);
    }

    #[test]
    fn the_item_column_avoids_the_names_of_index_keys_too() {
        let schema: TableSchema = serde_json::from_value(serde_json::json!({
            "TableName": "t",
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "ddbx_item", "AttributeType": "S"}
            ]
        }))
        .unwrap();
        assert_eq!(defined_names(&schema), vec!["pk", "ddbx_item"]);
        assert_eq!(hive::item_column(&defined_names(&schema)), "ddbx_item_2");
    }

    #[test]
    fn the_null_key_follows_the_release_connector() {
        assert_eq!(run("emr-6.15.0", 1).null_key(), "nULL");
        assert_eq!(run("emr-7.5.0", 1).null_key(), "nULL");
        assert_eq!(run("emr-6.14.0", 1).null_key(), "nULLValue");
        assert_eq!(run("emr-5.36.2", 1).null_key(), "nULLValue");
    }
}
