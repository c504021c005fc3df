//! The native engine: DynamoDB's own export and import services for every table of a run.
//!
//! - Export ([`export`]): ExportTableToPointInTime for every selected table at one
//!   ExportTime, so the run is one instant across the fleet; no read capacity, no Scan.
//!   Each export lands in the table's folder of the run (`S3Prefix`), so `import` and
//!   `verify` read it like any other run. With `--incremental`, each table exports what
//!   changed since its chain's last point (`format::chain`).
//! - Import ([`import`]): ImportTable creates each missing target from the export (no
//!   write capacity), then ddbx applies what ImportTable cannot (TTL, tags, PITR, stream).
//!
//! One export ([`job`]) is started once per ClientToken, recorded before it is polled, and
//! checked (its manifests and data files) rather than trusted.

mod export;
mod import;
pub(crate) mod job;
pub mod quota;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::Aws;
use crate::engine::interface::{Engine, ExportWork, ImportWork};
use crate::format::source::TableSource;
use crate::plan::{Compression, DataFormat, ExportPlan, PlannedTable};
use crate::report::{Reports, TableReport};
use crate::table::TableSchema;
use crate::{Error, Result};

/// How long a job refused for the account's quota waits in line, unless told: DynamoDB's
/// jobs hold their quota for minutes to hours.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(6 * 3600);

/// Polling: the first wait, growing by half each time up to the longest.
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

/// The native engine's settings.
#[derive(Debug, Clone)]
pub struct NativeEngine {
    /// Turn point-in-time recovery on for tables that lack it (and off after).
    pub enable_pitr: bool,
    /// Export what changed since each table's chain's last point.
    pub incremental: bool,
    /// Exports (and imports) running at once at most, all tables together.
    pub max_jobs: usize,
    /// Read every data file in full to check its MD5 (else its ETag).
    pub deep_check: bool,
    /// The run's instant, when given (else the latest every table can export).
    pub export_time: Option<DateTime<Utc>>,
    /// How DescribeExport / DescribeImport are polled.
    pub poll: Poll,
    /// How long to wait for every table's restorable window to reach a common instant.
    pub instant_wait: Duration,
    /// How long a job refused for the account's quota (LimitExceededException) waits in
    /// line at most.
    pub max_wait: Duration,
}

impl Default for NativeEngine {
    fn default() -> Self {
        Self {
            enable_pitr: false,
            incremental: false,
            max_jobs: 25,
            deep_check: false,
            export_time: None,
            poll: Poll {
                first: Duration::from_secs(5),
                max: Duration::from_secs(60),
            },
            instant_wait: Duration::from_secs(15 * 60),
            max_wait: DEFAULT_MAX_WAIT,
        }
    }
}

/// What a native run's plan records of its engine's settings (`engineSettings`): what a
/// resumed run keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSettings {
    /// `--incremental`.
    pub incremental: bool,
    /// `--enable-pitr`.
    pub enable_pitr: bool,
}

impl NativeEngine {
    /// This engine continuing a run whose plan recorded `recorded`: the run's
    /// `--incremental` and `--enable-pitr` kept; one given that the run did not have is
    /// refused, naming the plan (`plan_url`). A plan from before they were recorded: the
    /// flags as given.
    pub fn resumed(
        &self,
        recorded: Option<&serde_json::Value>,
        plan_url: &str,
    ) -> Result<NativeEngine> {
        let Some(recorded) = recorded else {
            return Ok(self.clone());
        };
        let r: RunSettings =
            serde_json::from_value(recorded.clone()).map_err(|e| Error::Corrupt {
                file: plan_url.to_string(),
                message: format!("engineSettings are not the native engine's: {e}"),
            })?;
        let refuse = |flag: &str, planned: &str| {
            Err(Error::Usage(format!(
                "{flag} contradicts the run being resumed: its plan ({plan_url}) has {planned}; drop the flag or start a new run"
            )))
        };
        if self.incremental && !r.incremental {
            return refuse(
                "--incremental",
                "a full export of every table (no --incremental)",
            );
        }
        if self.enable_pitr && !r.enable_pitr {
            return refuse(
                "--enable-pitr",
                "no --enable-pitr (tables without point-in-time recovery fail)",
            );
        }
        Ok(NativeEngine {
            incremental: r.incremental,
            enable_pitr: r.enable_pitr,
            ..self.clone()
        })
    }
}

/// A table's point-in-time recovery, as DescribeContinuousBackups says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pitr {
    /// Whether it is on.
    pub enabled: bool,
    /// The earliest time it restores to.
    pub earliest: Option<DateTime<Utc>>,
    /// The latest.
    pub latest: Option<DateTime<Utc>>,
}

/// DescribeContinuousBackups of `table`.
pub async fn pitr(aws: &Aws, table: &str) -> Result<Pitr> {
    let out = aws
        .call(
            || format!("table {table}: DescribeContinuousBackups"),
            None,
            || {
                aws.dynamodb
                    .describe_continuous_backups()
                    .table_name(table)
                    .send()
            },
        )
        .await?;
    let d = out
        .continuous_backups_description()
        .and_then(|c| c.point_in_time_recovery_description());
    Ok(Pitr {
        enabled: d
            .and_then(|d| d.point_in_time_recovery_status())
            .is_some_and(|s| *s == aws_sdk_dynamodb::types::PointInTimeRecoveryStatus::Enabled),
        earliest: d
            .and_then(|d| d.earliest_restorable_date_time())
            .and_then(from_smithy),
        latest: d
            .and_then(|d| d.latest_restorable_date_time())
            .and_then(from_smithy),
    })
}

/// chrono's time as the SDK's.
pub(crate) fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

/// The SDK's time as chrono's.
pub(crate) fn from_smithy(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.secs(), t.subsec_nanos()).single()
}

#[async_trait::async_trait]
impl Engine for NativeEngine {
    fn name(&self) -> &'static str {
        "native"
    }

    fn export_format(&self, asked: Option<DataFormat>) -> Result<DataFormat> {
        match asked {
            None | Some(DataFormat::DynamodbJson) => Ok(DataFormat::DynamodbJson),
            Some(DataFormat::Ion) => Ok(DataFormat::Ion),
            Some(other) => Err(Error::Usage(format!(
                "--engine native writes what DynamoDB's export writes (dynamodb-json or ion); --format {} is written by the local engine",
                other.name()
            ))),
        }
    }

    fn adjust_plan(
        &self,
        planned: &mut PlannedTable,
        _schema: &TableSchema,
        _segments: Option<u32>,
    ) {
        // DynamoDB exports from its backups: no read capacity, no Scan.
        planned.target_read_units = 0.0;
        planned.segments = 0;
    }

    fn plan_note(&self) -> Option<String> {
        let when = match self.export_time {
            Some(t) => format!("{t} (--export-time)"),
            None => "the latest time every table restores to, chosen when the exports start and recorded in _export/native.json".into(),
        };
        Some(format!(
            "DynamoDB exports every table as of one instant: {when}; no read capacity is used{}{}",
            if self.incremental {
                "; incremental: each table's changes since its chain's last point"
            } else {
                ""
            },
            if self.enable_pitr {
                "; point-in-time recovery is turned on for tables without it, and off after"
            } else {
                ""
            }
        ))
    }

    fn resumes_exports(&self) -> bool {
        true
    }

    fn plan_settings(&self) -> Option<serde_json::Value> {
        Some(
            serde_json::to_value(RunSettings {
                incremental: self.incremental,
                enable_pitr: self.enable_pitr,
            })
            .expect("settings serialize"),
        )
    }

    async fn check_export(&self, _aws: &Aws, plan: &ExportPlan) -> Result<()> {
        if !plan.run_root.starts_with("s3://") {
            return Err(Error::Usage(format!(
                "{}: DynamoDB's export service writes only to S3; with --engine native the location must be s3://",
                plan.run_root
            )));
        }
        if plan.compression != Compression::Gzip {
            return Err(Error::Usage(
                "DynamoDB's export service writes gzip files only: drop --compression, or use the local engine".into(),
            ));
        }
        if plan.storage_class.is_some() {
            return Err(Error::Usage(
                "--storage-class: DynamoDB's export service writes its files as STANDARD; use an S3 lifecycle rule on the run's prefix, or the local engine".into(),
            ));
        }
        if let Some(t) = plan
            .tables
            .iter()
            .find(|t| t.as_ref().map_or(true, |t| t.capacity_spike.is_some()))
        {
            let t = t?;
            return Err(Error::Usage(format!(
                "table {}: --spike-read-units raises read capacity, which a native export does not use",
                t.table
            )));
        }
        Ok(())
    }

    fn check_import_source(&self, source: &TableSource) -> crate::Result<()> {
        import::check_source(source)
    }

    fn creates_targets(&self) -> bool {
        true
    }

    async fn export_tables(&self, work: ExportWork<'_>) -> Result<Reports> {
        export::export_tables(self, &work).await.map(Reports::from)
    }

    async fn import_tables(&self, work: ImportWork<'_>) -> Result<Vec<TableReport>> {
        import::import_tables(self, work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_run_keeps_its_settings_and_refuses_contradicting_flags() {
        let planned = |incremental, enable_pitr| {
            NativeEngine {
                incremental,
                enable_pitr,
                ..NativeEngine::default()
            }
            .plan_settings()
            .unwrap()
        };
        assert_eq!(
            planned(true, false),
            serde_json::json!({"incremental": true, "enablePitr": false})
        );
        // `export --resume RUN` alone: the run's settings.
        let given = NativeEngine {
            max_jobs: 7,
            ..NativeEngine::default()
        };
        let e = given.resumed(Some(&planned(true, true)), "PLAN").unwrap();
        assert!(e.incremental && e.enable_pitr);
        assert_eq!(e.max_jobs, 7, "what does not shape the run is as given");
        // The same flags again: accepted.
        let again = NativeEngine {
            incremental: true,
            ..NativeEngine::default()
        };
        assert!(
            again
                .resumed(Some(&planned(true, false)), "PLAN")
                .unwrap()
                .incremental
        );
        // A flag the run did not have: refused, naming the plan.
        let err = again
            .resumed(Some(&planned(false, false)), "PLAN")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--incremental") && err.contains("PLAN"),
            "{err}"
        );
        let pitr = NativeEngine {
            enable_pitr: true,
            ..NativeEngine::default()
        };
        assert!(pitr.resumed(Some(&planned(true, false)), "PLAN").is_err());
        // A plan from before the settings were recorded: the flags as given.
        assert!(again.resumed(None, "PLAN").unwrap().incremental);
    }
}
