//! What a run reports, whatever the job and the engine: one [`TableReport`] per table and
//! the [`RunSummary`] that the flags and `--output json` carry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::RunLayout;
use crate::table::settings::SettingsOutcome;

/// How one table ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableStatus {
    /// Every item is stored and described by the manifests (verify: the table matches).
    Succeeded,
    /// Something failed; see the error.
    Failed,
    /// Stopped (Ctrl-C, SIGTERM...) before it ended: `--resume` continues it.
    Interrupted,
    /// Planned only (dry run, or not started yet).
    Planned,
    /// Nothing to do in this run, by design (an incremental window too short yet): the
    /// note says why. Not a failure.
    Deferred,
}

/// The outcome of one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReport {
    /// Table name.
    pub table: String,
    /// How it ended.
    pub status: TableStatus,
    /// Items written (or compared).
    pub items: u64,
    /// Item bytes (DynamoDB's sizes).
    pub bytes: u64,
    /// Data files written (or read).
    pub files: u64,
    /// Capacity units consumed.
    pub read_units: f64,
    /// Seconds spent.
    pub seconds: f64,
    /// Items are not known (an engine that could not count them): `items` is then 0 and
    /// means nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub items_unknown: bool,
    /// What else the reader should know (items set aside and written another way).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    /// The instant the table's data is as of, when the engine exports one (native).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub as_of: Option<DateTime<Utc>>,
    /// The run whose export this table's incremental export continues (native
    /// `--incremental`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub continues: Option<String>,
    /// What became of the settings of a table the import created.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub settings: Option<SettingsOutcome>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TableReport {
    /// A table not (yet) worked on.
    pub fn planned(table: &str) -> Self {
        Self {
            table: table.to_string(),
            status: TableStatus::Planned,
            items: 0,
            bytes: 0,
            files: 0,
            read_units: 0.0,
            seconds: 0.0,
            items_unknown: false,
            note: None,
            as_of: None,
            continues: None,
            settings: None,
            error: None,
        }
    }

    /// A table that failed with `error`.
    pub fn failed(table: &str, error: impl std::fmt::Display) -> Self {
        Self {
            status: TableStatus::Failed,
            error: Some(error.to_string()),
            ..Self::planned(table)
        }
    }

    /// A table that ended with `error`: interrupted when it was stopped, else failed
    /// (and logged as such).
    pub fn of_error(table: &str, error: &crate::Error) -> Self {
        if error.is_interrupted() {
            tracing::warn!(%table, %error, "table interrupted");
        } else {
            tracing::error!(%table, %error, "table failed");
        }
        Self {
            status: if error.is_interrupted() {
                TableStatus::Interrupted
            } else {
                TableStatus::Failed
            },
            ..Self::failed(table, error)
        }
    }

    /// Whether it did not end well (failed, or was interrupted).
    pub fn is_failure(&self) -> bool {
        matches!(self.status, TableStatus::Failed | TableStatus::Interrupted)
    }
}

/// The outcome of a run: what the flags and `--output json` carry. Items and bytes sum
/// what the engines counted (`itemsUnknown` says when an engine could not).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// `export`, `import` or `verify`.
    pub job: String,
    /// App name.
    pub app: String,
    /// Region.
    pub region: String,
    /// URL of the run root.
    pub run_root: String,
    /// The engine that did the work (`local`, `emr`, `native`; absent before ddbx 0.3).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub engine: Option<String>,
    /// The runs this run's incremental exports continue (native `--incremental`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub continues: Vec<String>,
    /// `running`, `succeeded`, `failed`, `interrupted` (every table that did not end well
    /// was stopped) or `planned`.
    pub status: String,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, once ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Tables in the run.
    pub tables: usize,
    /// Tables that failed.
    pub tables_failed: usize,
    /// Items, all tables (those counted).
    pub items: u64,
    /// Some table's items are not known (EMR): `items` is then a lower bound.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub items_unknown: bool,
    /// Bytes, all tables.
    pub bytes: u64,
    /// The one instant every table's data is as of (a native export's ExportTime).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub as_of: Option<DateTime<Utc>>,
    /// Where an import kept its flags and checkpoints, when not in the run root.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state_root: Option<String>,
    /// Tables the selection's patterns took but an exclude (a flag, or an excludes file)
    /// left out.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub excluded: Vec<String>,
    /// What the run should be known for beside its tables (an import of a failed export).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
    /// One line per failed table.
    pub errors: Vec<String>,
    /// Per table.
    pub table_reports: Vec<TableReport>,
}

impl RunSummary {
    /// Whether every table succeeded.
    pub fn succeeded(&self) -> bool {
        self.tables_failed == 0
    }

    /// A summary of `tables` for `job` (`export`, `import`); `ended` is `None` while running.
    pub fn for_job(
        job: &str,
        layout: &RunLayout,
        run_root: String,
        tables: Vec<TableReport>,
        ended: Option<DateTime<Utc>>,
    ) -> Self {
        let failed: Vec<&TableReport> = tables.iter().filter(|t| t.is_failure()).collect();
        let status = match (ended, failed.is_empty()) {
            (None, _) => "running",
            (Some(_), true) if tables.iter().all(|t| t.status == TableStatus::Planned) => "planned",
            (Some(_), true) => "succeeded",
            (Some(_), false) if failed.iter().all(|t| t.status == TableStatus::Interrupted) => {
                "interrupted"
            }
            (Some(_), false) => "failed",
        };
        Self {
            job: job.into(),
            app: layout.app.clone(),
            region: layout.region.clone(),
            run_root,
            engine: None,
            continues: {
                let mut runs: Vec<String> =
                    tables.iter().filter_map(|t| t.continues.clone()).collect();
                runs.sort();
                runs.dedup();
                runs
            },
            status: status.into(),
            started_at: layout.started,
            ended_at: ended,
            tables: tables.len(),
            tables_failed: failed.len(),
            items: tables.iter().fold(0u64, |a, t| a.saturating_add(t.items)),
            items_unknown: tables.iter().any(|t| t.items_unknown),
            bytes: tables.iter().fold(0u64, |a, t| a.saturating_add(t.bytes)),
            as_of: {
                let mut instants = tables.iter().filter_map(|t| t.as_of);
                let first = instants.next();
                first.filter(|f| instants.all(|t| t == *f))
            },
            state_root: None,
            excluded: Vec::new(),
            warnings: Vec::new(),
            errors: failed
                .iter()
                .map(|t| format!("{}: {}", t.table, t.error.as_deref().unwrap_or("failed")))
                .collect(),
            table_reports: tables,
        }
    }
}
