//! What a run reports, whatever the job and the engine: one [`TableReport`] per table and
//! the [`RunSummary`] that the flags and `--output json` carry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::RunLayout;
use crate::spool::Spool;
use crate::table::settings::SettingsOutcome;
use crate::Result;

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
    /// Capacity units consumed: read units by an export or a verify, write units by an
    /// import (`readUnits` in summaries written before it was named for both).
    #[serde(alias = "readUnits")]
    pub units: f64,
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
            units: 0.0,
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

/// The reports of a run's tables, in the order pushed or, once sorted, by table name. Each
/// report waits in a [`Spool`] (a temporary file for a fleet), with its table's name and
/// the run's totals in memory: a fleet's reports are never all in memory, and its
/// documents that list every table are written report by report.
#[derive(Debug)]
pub struct Reports {
    spool: Spool<TableReport>,
    names: Vec<Box<str>>,
    /// Positions in the spool by table name, once sorted.
    sorted: Option<Vec<u32>>,
    totals: Totals,
}

/// What the summary says of all the reports together.
#[derive(Debug, Clone)]
struct Totals {
    failed: usize,
    interrupted: usize,
    planned: usize,
    items: u64,
    bytes: u64,
    items_unknown: bool,
    continues: std::collections::BTreeSet<String>,
    /// The instant every report is as of: `None` before any, `Some(None)` once two differ.
    as_of: Option<Option<DateTime<Utc>>>,
    /// The error line of each table that failed, with its table.
    errors: Vec<(String, String)>,
}

impl Default for Reports {
    fn default() -> Self {
        Self::with(Spool::new("the table reports"))
    }
}

impl Reports {
    fn with(spool: Spool<TableReport>) -> Self {
        Self {
            spool,
            names: Vec::new(),
            sorted: None,
            totals: Totals {
                failed: 0,
                interrupted: 0,
                planned: 0,
                items: 0,
                bytes: 0,
                items_unknown: false,
                continues: Default::default(),
                as_of: None,
                errors: Vec::new(),
            },
        }
    }

    /// Reports kept in memory (a summary read back, tests).
    pub fn in_memory() -> Self {
        Self::with(Spool::in_memory("the table reports"))
    }

    /// Add a table's report.
    pub fn push(&mut self, report: TableReport) -> Result<()> {
        self.spool.push(&report)?;
        let t = &mut self.totals;
        if report.is_failure() {
            t.failed += 1;
            t.errors.push((
                report.table.clone(),
                format!(
                    "{}: {}",
                    report.table,
                    report.error.as_deref().unwrap_or("failed")
                ),
            ));
        }
        t.interrupted += usize::from(report.status == TableStatus::Interrupted);
        t.planned += usize::from(report.status == TableStatus::Planned);
        t.items = t.items.saturating_add(report.items);
        t.bytes = t.bytes.saturating_add(report.bytes);
        t.items_unknown |= report.items_unknown;
        t.continues.extend(report.continues.clone());
        if let Some(at) = report.as_of {
            t.as_of = match t.as_of {
                None => Some(Some(at)),
                Some(Some(seen)) if seen == at => Some(Some(at)),
                Some(_) => Some(None),
            };
        }
        self.names.push(report.table.into_boxed_str());
        self.sorted = None;
        Ok(())
    }

    /// Add every report of `reports`.
    pub fn extend(&mut self, reports: impl IntoIterator<Item = TableReport>) -> Result<()> {
        reports.into_iter().try_for_each(|r| self.push(r))
    }

    /// List them by table name from now on.
    pub fn sort_by_table(&mut self) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_by(|a, b| self.names[*a as usize].cmp(&self.names[*b as usize]));
        self.sorted = Some(order);
        self.totals.errors.sort();
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether every one is only planned.
    pub fn all_planned(&self) -> bool {
        self.totals.planned == self.len()
    }

    /// Every report, in order, each read back as it comes.
    pub fn iter(&self) -> impl Iterator<Item = Result<TableReport>> + '_ {
        (0..self.len()).map(|i| self.spool.get(self.position(i)))
    }

    /// Every report, in order, in memory.
    pub fn to_vec(&self) -> Result<Vec<TableReport>> {
        self.iter().collect()
    }

    /// The report of `table`, if there is one (the first, if there are two).
    pub fn find(&self, table: &str) -> Result<Option<TableReport>> {
        let at = match &self.sorted {
            Some(order) => {
                let i = order.partition_point(|p| &*self.names[*p as usize] < table);
                order
                    .get(i)
                    .map(|p| *p as usize)
                    .filter(|p| &*self.names[*p] == table)
            }
            None => self.names.iter().position(|n| &**n == table),
        };
        at.map(|p| self.spool.get(p)).transpose()
    }

    fn position(&self, i: usize) -> usize {
        self.sorted.as_ref().map_or(i, |order| order[i] as usize)
    }
}

impl FromIterator<TableReport> for Reports {
    /// Reports in memory (they were already).
    fn from_iter<I: IntoIterator<Item = TableReport>>(reports: I) -> Self {
        let mut all = Reports::in_memory();
        all.extend(reports).expect("reports in memory");
        all
    }
}

impl From<Vec<TableReport>> for Reports {
    fn from(reports: Vec<TableReport>) -> Self {
        reports.into_iter().collect()
    }
}

/// A JSON array of the reports, each read back in turn.
impl Serialize for Reports {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::spool::serialize_each(s, self.len(), self.iter())
    }
}

/// Reports read from a summary (in memory, as the summary was).
impl<'de> Deserialize<'de> for Reports {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Vec::<TableReport>::deserialize(d)?.into())
    }
}

/// The outcome of a run: what the flags and `--output json` carry. Items and bytes sum
/// what the engines counted (`itemsUnknown` says when an engine could not).
#[derive(Debug, Serialize, Deserialize)]
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
    /// How the run's backup objects are retained (S3 Object Lock), when they are.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub object_lock: Option<crate::store::retention::ObjectLock>,
    /// The run this one is a copy of (`ddbx copy`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub copied_from: Option<String>,
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
    pub table_reports: Reports,
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
        tables: Reports,
        ended: Option<DateTime<Utc>>,
    ) -> Self {
        let t = &tables.totals;
        let status = match (ended, t.failed) {
            (None, _) => "running",
            (Some(_), 0) if tables.all_planned() => "planned",
            (Some(_), 0) => "succeeded",
            (Some(_), failed) if failed == t.interrupted => "interrupted",
            (Some(_), _) => "failed",
        };
        Self {
            job: job.into(),
            app: layout.app.clone(),
            region: layout.region.clone(),
            run_root,
            engine: None,
            continues: t.continues.iter().cloned().collect(),
            status: status.into(),
            started_at: layout.started,
            ended_at: ended,
            tables: tables.len(),
            tables_failed: t.failed,
            items: t.items,
            items_unknown: t.items_unknown,
            bytes: t.bytes,
            as_of: t.as_of.flatten(),
            state_root: None,
            object_lock: None,
            copied_from: None,
            excluded: Vec::new(),
            warnings: Vec::new(),
            errors: t.errors.iter().map(|(_, line)| line.clone()).collect(),
            table_reports: tables,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(table: &str, status: TableStatus, items: u64) -> TableReport {
        TableReport {
            status,
            items,
            bytes: items * 10,
            error: (status == TableStatus::Failed).then(|| format!("{table} broke")),
            ..TableReport::planned(table)
        }
    }

    #[test]
    fn a_fleets_reports_are_summed_sorted_found_and_written_as_a_list_would_be() {
        // Enough to go to a temporary file, pushed out of order.
        let mut all: Vec<TableReport> = (0..3000)
            .map(|i| {
                let status = match i % 100 {
                    7 => TableStatus::Failed,
                    8 => TableStatus::Interrupted,
                    _ => TableStatus::Succeeded,
                };
                report(&format!("T{:05}", (i * 7919) % 3000), status, i)
            })
            .collect();
        let mut reports = Reports::default();
        reports.extend(all.clone()).unwrap();
        assert!(reports.spool.in_file());
        reports.sort_by_table();
        all.sort_by(|a, b| a.table.cmp(&b.table));
        let all_json = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::to_string(&reports).unwrap(), all_json);
        assert_eq!(reports.to_vec().unwrap().len(), 3000);
        let found = reports.find("T00042").unwrap().unwrap();
        assert_eq!(found.table, "T00042");
        assert!(reports.find("T99999").unwrap().is_none());

        let layout = RunLayout {
            region: "r".into(),
            app: "a".into(),
            started: Utc::now(),
        };
        let s = RunSummary::for_job("export", &layout, "root".into(), reports, Some(Utc::now()));
        assert_eq!(
            (s.tables, s.tables_failed, s.status.as_str()),
            (3000, 60, "failed")
        );
        assert_eq!(s.items, (0..3000).sum::<u64>());
        assert_eq!(s.bytes, 10 * (0..3000).sum::<u64>());
        // One error line a failed table, by table name.
        let mut errors = s.errors.clone();
        errors.sort();
        assert_eq!(s.errors, errors);
        assert_eq!(s.errors.len(), 60);
        // Read back, it is the same summary.
        let back: RunSummary = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(
            serde_json::to_string(&back.table_reports).unwrap(),
            all_json
        );
    }

    #[test]
    fn a_runs_status_follows_its_reports() {
        let layout = RunLayout {
            region: "r".into(),
            app: "a".into(),
            started: Utc::now(),
        };
        let status = |reports: Vec<TableReport>, ended: bool| {
            RunSummary::for_job(
                "export",
                &layout,
                "x".into(),
                reports.into(),
                ended.then(Utc::now),
            )
            .status
        };
        let planned = || TableReport::planned("p");
        let ok = || report("o", TableStatus::Succeeded, 1);
        let stopped = || report("s", TableStatus::Interrupted, 1);
        assert_eq!(status(vec![ok()], false), "running");
        assert_eq!(status(vec![planned(), planned()], true), "planned");
        assert_eq!(status(vec![planned(), ok()], true), "succeeded");
        assert_eq!(status(vec![ok(), stopped()], true), "interrupted");
        assert_eq!(
            status(vec![stopped(), report("f", TableStatus::Failed, 0)], true),
            "failed"
        );
        // The one instant of every table, or none when they differ.
        let at = |s: i64| DateTime::from_timestamp(s, 0);
        let as_of = |instants: &[i64]| {
            let reports: Reports = instants
                .iter()
                .map(|s| TableReport {
                    as_of: at(*s),
                    ..ok()
                })
                .collect();
            RunSummary::for_job("export", &layout, "x".into(), reports, None).as_of
        };
        assert_eq!(as_of(&[5, 5]), at(5));
        assert_eq!(as_of(&[5, 6, 5]), None);
        assert_eq!(as_of(&[]), None);
    }
}
