//! Planning a run: which tables (prefixes, globs, excludes), where the run lives (the
//! seed's dated layout), and the plans written at its root (`export-plan.json`,
//! `restore-plan.json`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::spool::Spool;
use crate::table::KeyAttribute;
use crate::{Error, Result};

/// Which tables a run takes: names matching any pattern, or named exactly, and no exclude.
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    patterns: Vec<Pattern>,
    names: Vec<String>,
    excludes: Vec<Pattern>,
}

#[derive(Debug, Clone)]
enum Pattern {
    Prefix(String),
    Glob(GlobMatcher),
    Exact(String),
}

impl Pattern {
    fn parse(text: &str, plain_is_prefix: bool) -> Result<Self> {
        if text.contains(['*', '?', '[']) {
            let glob = Glob::new(text)
                .map_err(|e| Error::Usage(format!("table pattern {text:?}: {e}")))?;
            Ok(Pattern::Glob(glob.compile_matcher()))
        } else if plain_is_prefix {
            Ok(Pattern::Prefix(text.to_string()))
        } else {
            Ok(Pattern::Exact(text.to_string()))
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Prefix(p) => name.starts_with(p.as_str()),
            Pattern::Glob(g) => g.is_match(name),
            Pattern::Exact(e) => name == e,
        }
    }
}

impl TableFilter {
    /// Tables named by `patterns` (a plain value is a prefix, as in the seed; one with
    /// `*`, `?` or `[` is a glob), less `excludes` (exact names, or globs).
    /// No pattern at all selects every table.
    pub fn new(patterns: &[String], excludes: &[String]) -> Result<Self> {
        Ok(Self {
            patterns: patterns
                .iter()
                .map(|p| Pattern::parse(p, true))
                .collect::<Result<_>>()?,
            names: Vec::new(),
            excludes: excludes
                .iter()
                .map(|p| Pattern::parse(p, false))
                .collect::<Result<_>>()?,
        })
    }

    /// Add the names of an `excludes` file (one a line; blank lines and `#` comments skipped).
    pub fn exclude_file(&mut self, origin: &str, bytes: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(bytes)
            .ok()
            .filter(|t| !t.contains('\0'))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{origin}: an excludes file must be text, one table name a line"
                ))
            })?;
        for (n, line) in text.lines().enumerate() {
            let name = line.trim();
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            validate_table_name(name)
                .map_err(|e| Error::Usage(format!("{origin}, line {}: {e}", n + 1)))?;
            self.excludes.push(Pattern::Exact(name.to_string()));
        }
        Ok(())
    }

    /// Also take these tables, named exactly (checked as DynamoDB table names).
    pub fn with_names(mut self, names: &[String]) -> Result<Self> {
        for name in names {
            validate_table_name(name).map_err(|e| Error::Usage(format!("--table: {e}")))?;
            self.names.push(name.clone());
        }
        Ok(self)
    }

    /// Whether the selection depends on which tables exist: `false` when it is only
    /// exact names, which need no listing (and no `dynamodb:ListTables` permission).
    pub fn needs_listing(&self) -> bool {
        self.names.is_empty() || !self.patterns.is_empty()
    }

    /// The selected tables among `listed` (the region's tables, when listed), plus every
    /// table named exactly whether listed or not (describing a missing one reports it),
    /// sorted.
    pub fn select_with_names<'a>(
        &'a self,
        listed: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        self.select(
            listed
                .into_iter()
                .chain(self.names.iter().map(String::as_str)),
        )
    }

    /// Whether `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        self.chosen(name) && !self.excluded_name(name)
    }

    fn chosen(&self, name: &str) -> bool {
        (self.patterns.is_empty() && self.names.is_empty())
            || self.patterns.iter().any(|p| p.matches(name))
            || self.names.iter().any(|n| n == name)
    }

    fn excluded_name(&self, name: &str) -> bool {
        self.excludes.iter().any(|p| p.matches(name))
    }

    /// The names among `listed` (and those named exactly) that the patterns take but an
    /// exclude leaves out, sorted.
    pub fn excluded<'a>(&'a self, listed: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        listed
            .into_iter()
            .chain(self.names.iter().map(String::as_str))
            .filter(|n| self.chosen(n) && self.excluded_name(n))
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The selected names, sorted.
    pub fn select<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        names
            .into_iter()
            .filter(|n| self.matches(n))
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// Check a DynamoDB table name (3-255 of `A-Z a-z 0-9 _ - .`), so no name can escape the layout.
pub fn validate_table_name(name: &str) -> crate::Result<()> {
    let ok = (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} is not a DynamoDB table name (3-255 characters of A-Z a-z 0-9 _ - .)",
            crate::text::quote(name)
        )))
    }
}

/// Check an app name: one path segment of `A-Z a-z 0-9 _ - .`, not `.` or `..`.
pub fn validate_app_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "app name {}: use 1-128 characters of A-Z a-z 0-9 _ - . (it becomes a folder name)",
            crate::text::quote(name)
        )))
    }
}

/// The folders and files ddbx keeps at a run root besides the tables' folders.
const RUN_ROOT_ENTRIES: &[&str] = &[
    "_export",
    "_import",
    "_capacity",
    "_emr",
    "_tables",
    "emr-logs",
    "export-plan.json",
    "restore-plan.json",
    "BACKUP_RUNNING",
    "BACKUP_COMPLETE_SUCCESS",
    "BACKUP_COMPLETE_FAILED",
    "RESTORE_RUNNING",
    "RESTORE_COMPLETE_SUCCESS",
    "RESTORE_COMPLETE_FAILED",
];

/// A table's folder in its run, relative to the run root: `<table>` as the seed has it,
/// or `_tables/<table>` for a table named like one of the run root's own entries (a table
/// called `_capacity`, `emr-logs` or `exportSteps_01.json`), so that nothing of ddbx's can
/// mix with a table's data. The restore plan records the folder.
pub fn table_folder(table: &str) -> String {
    let steps_file = ["exportSteps_", "importSteps_"]
        .iter()
        .any(|p| table.starts_with(p) && table.ends_with(".json"));
    if steps_file || RUN_ROOT_ENTRIES.contains(&table) {
        format!("_tables/{table}")
    } else {
        table.to_string()
    }
}

/// The seed's layout: `<base>/<region>/<app>/<YYYY>/<MM>/<DD>/<HH_MM.SS>/`.
#[derive(Debug, Clone)]
pub struct RunLayout {
    /// AWS region of the tables.
    pub region: String,
    /// The app's friendly name.
    pub app: String,
    /// When the run started (UTC).
    pub started: DateTime<Utc>,
}

impl RunLayout {
    /// The app's folder, relative to the base: `<region>/<app>`.
    pub fn app_dir(&self) -> String {
        format!("{}/{}", self.region, self.app)
    }

    /// The run's folder, relative to the base.
    pub fn run_dir(&self) -> String {
        format!(
            "{}/{}",
            self.app_dir(),
            self.started.format("%Y/%m/%d/%H_%M.%S")
        )
    }

    /// The lock object, relative to the base: `<region>/<app>/_LOCK`.
    pub fn lock_path(&self) -> String {
        format!("{}/_LOCK", self.app_dir())
    }
}

/// How data files are laid out and encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// AWS's native "Export to S3" DynamoDB JSON (docs/FORMATS.md §1).
    #[default]
    #[cfg_attr(
        feature = "cli",
        value(help = "AWS \"Export to S3\" DynamoDB JSON (AWSDynamoDB/<id>/ with manifests)")
    )]
    DynamodbJson,
    /// AWS's native "Export to S3" layout with Amazon Ion lines (docs/FORMATS.md §1.1).
    #[cfg_attr(
        feature = "cli",
        value(help = "AWS \"Export to S3\" in Amazon Ion (the same layout, .ion.gz data files)")
    )]
    Ion,
    /// The emr-dynamodb-connector's layout (docs/FORMATS.md §2).
    #[cfg_attr(
        feature = "cli",
        value(
            help = "The emr-dynamodb-connector layout (manifest v3), as the seed's EMR steps wrote"
        )
    )]
    Emr,
    /// Old AWS Data Pipeline exports (read only).
    DataPipeline,
}

impl DataFormat {
    /// The name used in flags and plans.
    pub fn name(self) -> &'static str {
        match self {
            DataFormat::DynamodbJson => "dynamodb-json",
            DataFormat::Ion => "ion",
            DataFormat::Emr => "emr",
            DataFormat::DataPipeline => "data-pipeline",
        }
    }

    /// Whether the data is in AWS's native export layout (`AWSDynamoDB/<id>/` with
    /// manifests), whatever the line encoding.
    pub fn is_native(self) -> bool {
        matches!(self, DataFormat::DynamodbJson | DataFormat::Ion)
    }
}

/// How data files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// gzip (`.gz`), what AWS writes.
    #[default]
    Gzip,
    /// zstd (`.zst`), which AWS Import from S3 also reads.
    Zstd,
    /// None.
    #[cfg_attr(feature = "cli", value(help = "no compression"))]
    None,
}

impl Compression {
    /// The name used in flags and plans.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    /// The file name ending, with its dot (empty for none).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::None => "",
        }
    }
}

/// One table of an export plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedTable {
    /// Table name.
    pub table: String,
    /// Key attributes with their types.
    pub key_schema: Vec<KeyAttribute>,
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub billing_mode: String,
    /// Provisioned RCU, when provisioned.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub read_capacity_units: Option<i64>,
    /// DynamoDB's approximate size in bytes.
    pub size_bytes: i64,
    /// DynamoDB's approximate item count.
    pub item_count_estimate: i64,
    /// Read units per second the export aims at.
    pub target_read_units: f64,
    /// Scan segments.
    pub segments: u32,
    /// Where the table's data goes (URL).
    pub destination: String,
    /// The read capacity spike for the export (`--spike-read-units`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_spike: Option<crate::capacity::Spike>,
}

/// `export-plan.json`: the resolved plan of a run.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportPlan {
    /// ddbx's version.
    pub ddbx_version: String,
    /// App name.
    pub app: String,
    /// Region of the tables.
    pub region: String,
    /// URL of the run root.
    pub run_root: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// Data format.
    pub format: DataFormat,
    /// Compression of data files.
    pub compression: Compression,
    /// The fraction of read capacity used.
    pub read_ratio: f64,
    /// The engine (`local`).
    pub engine: String,
    /// What selected the tables (absent in plans of ddbx before 0.2).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub selection: Option<PlanSelection>,
    /// The S3 storage class of the run's data files (`--storage-class`; absent: STANDARD).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub storage_class: Option<String>,
    /// How the run's backup objects are retained (`--object-lock`, `--retain`; absent:
    /// they are not).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub object_lock: Option<crate::store::retention::ObjectLock>,
    /// What the engine does that the plan's fields do not say (native: one instant).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    /// The engine's own settings that shape the run (native: `incremental`,
    /// `enablePitr`), which a resumed run keeps.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub engine_settings: Option<serde_json::Value>,
    /// The tables, sorted by name (each read back when its turn comes).
    pub tables: Spool<PlannedTable>,
}

/// What selected a run's tables: its `--tables`, `--table`, `--exclude` and `--exclude-file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSelection {
    /// Prefixes or globs.
    pub tables: Vec<String>,
    /// Tables named exactly.
    #[serde(default)]
    pub table_names: Vec<String>,
    /// Names or globs never exported.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Another excludes file.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exclude_file: Option<String>,
    /// Tables the patterns took that an exclude (a flag, `<to>/excludes` or the excludes
    /// file) left out, so that the run says why they are missing.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub excluded: Vec<String>,
}

/// What one table's import will do (a step of the import's plan; what `import --dry-run`
/// prints).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportStep {
    /// The exported table.
    pub source_table: String,
    /// The table written into.
    pub target_table: String,
    /// Where the data is.
    pub source: String,
    /// Its format.
    pub format: DataFormat,
    /// Data files.
    pub files: usize,
    /// Items the manifests promise, when they say.
    pub expected_items: Option<u64>,
    /// The fraction of write capacity.
    pub write_ratio: f64,
    /// The target rate, once the target is known.
    pub target_write_units: Option<f64>,
    /// Whether the target exists (dry run), or a problem found with it.
    pub target_state: String,
}

/// The write ratio a restore plan proposes (the seed's default).
pub const DEFAULT_WRITE_RATIO: f64 = 0.8;

/// `restore-plan.json`: what restores a run (the seed's importSteps). Users may edit the
/// target names and write ratios before importing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestorePlan {
    /// Plan format version (1).
    pub version: u32,
    /// App name.
    pub app: String,
    /// Region the tables were exported from.
    pub region: String,
    /// When the export started.
    pub exported_at: DateTime<Utc>,
    /// One step per table.
    pub tables: Vec<RestoreStep>,
}

/// One table of a restore plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreStep {
    /// The table the data came from.
    pub source_table: String,
    /// The table to write into (edit to restore elsewhere).
    pub target_table: String,
    /// The table's folder, relative to the run root.
    pub path: String,
    /// The data's format.
    pub format: DataFormat,
    /// The key the target table must have.
    pub key_schema: Vec<KeyAttribute>,
    /// Fraction of the target's write capacity to use (0 < ratio ≤ 1.5).
    pub write_ratio: f64,
    /// Items exported; absent when the engine could not count them (EMR): an import then
    /// has no count to check against, and `ddbx verify` counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
}

impl RestorePlan {
    /// Parse and check a plan (unknown fields, names, ratios), naming `origin` in errors.
    pub fn parse(origin: &str, bytes: &[u8]) -> Result<Self> {
        let plan: RestorePlan =
            serde_json::from_slice(bytes).map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
        for step in &plan.tables {
            for name in [&step.source_table, &step.target_table] {
                validate_table_name(name).map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
            }
            crate::bounds::RATIO.check(step.write_ratio).map_err(|e| {
                Error::Usage(format!(
                    "{origin}: table {}: writeRatio: {e}",
                    step.source_table
                ))
            })?;
            if step.path.split('/').any(|s| s == ".." || s == ".") || step.path.starts_with('/') {
                return Err(Error::Usage(format!(
                    "{origin}: table {}: path {} must stay inside the run",
                    step.source_table,
                    crate::text::quote(&step.path)
                )));
            }
        }
        Ok(plan)
    }
}

/// How many Scan segments to use by default: enough for the table's size (one per GiB)
/// and for its rate (one per 1,000 read units per second), but never so many that a
/// segment holds less than 32 MiB; when DynamoDB reports no size (new tables, emulators),
/// at most 4 for the rate. Between 1 and 1,000.
pub fn default_segments(size_bytes: i64, read_units: f64) -> u32 {
    const MIB: f64 = 1024.0 * 1024.0;
    let size = size_bytes.max(0) as f64;
    let by_size = (size / (1024.0 * MIB)).ceil();
    let by_rate = (read_units / 1000.0).ceil();
    let rate_cap = if size == 0.0 {
        4.0
    } else {
        (size / (32.0 * MIB)).ceil()
    };
    by_size.max(by_rate.min(rate_cap)).clamp(1.0, 1000.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn names() -> Vec<&'static str> {
        vec![
            "BILLING_PROD_a",
            "BILLING_PROD_tmp",
            "BILLING_DEV_a",
            "OTHER",
            "BILLING_PRODUCTS",
        ]
    }

    #[test]
    fn plain_value_is_a_prefix() {
        let f = TableFilter::new(&["BILLING_PROD".into()], &["BILLING_PROD_tmp".into()]).unwrap();
        assert_eq!(
            f.select(names()),
            vec!["BILLING_PRODUCTS", "BILLING_PROD_a"]
        );
    }

    #[test]
    fn globs_and_excluding_globs() {
        let f =
            TableFilter::new(&["BILLING_*_a".into(), "OTH?R".into()], &["*DEV*".into()]).unwrap();
        assert_eq!(f.select(names()), vec!["BILLING_PROD_a", "OTHER"]);
    }

    #[test]
    fn exact_names_alone_need_no_listing() {
        let f = TableFilter::new(&[], &["*tmp".into()])
            .unwrap()
            .with_names(&["BILLING_PROD_a".into(), "BILLING_PROD_tmp".into()])
            .unwrap();
        assert!(!f.needs_listing());
        assert_eq!(f.select_with_names([]), vec!["BILLING_PROD_a"]);
        // A name is not a prefix: BILLING_PRODUCTS is not taken.
        assert_eq!(f.select(names()), vec!["BILLING_PROD_a"]);
        // With a prefix too, the region must be listed.
        let f = TableFilter::new(&["OTH".into()], &[])
            .unwrap()
            .with_names(&["BILLING_DEV_a".into()])
            .unwrap();
        assert!(f.needs_listing());
        assert_eq!(f.select(names()), vec!["BILLING_DEV_a", "OTHER"]);
        // No pattern and no name: every table, listed.
        assert!(TableFilter::new(&[], &[]).unwrap().needs_listing());
        let err = TableFilter::default()
            .with_names(&["a/b".into()])
            .unwrap_err();
        assert!(err.to_string().contains("a/b"), "{err}");
    }

    #[test]
    fn excludes_file() {
        let mut f = TableFilter::new(&["BILLING".into()], &[]).unwrap();
        f.exclude_file("x", b"# comment\nBILLING_DEV_a\n\n  BILLING_PRODUCTS  \n")
            .unwrap();
        assert_eq!(
            f.select(names()),
            vec!["BILLING_PROD_a", "BILLING_PROD_tmp"]
        );
        let err = f
            .exclude_file("s3://b/excludes", b"\x00\x01\xff")
            .unwrap_err();
        assert!(err.to_string().contains("s3://b/excludes"), "{err}");
    }

    #[test]
    fn layout_is_the_seeds() {
        let l = RunLayout {
            region: "us-east-1".into(),
            app: "billing".into(),
            started: Utc.with_ymd_and_hms(2026, 11, 24, 3, 0, 7).unwrap(),
        };
        assert_eq!(l.run_dir(), "us-east-1/billing/2026/11/24/03_00.07");
        assert_eq!(l.lock_path(), "us-east-1/billing/_LOCK");
    }

    #[test]
    fn a_table_never_shares_a_folder_with_the_run_roots_own_entries() {
        assert_eq!(table_folder("BILLING_orders"), "BILLING_orders");
        for name in [
            "_capacity",
            "_import",
            "emr-logs",
            "_tables",
            "exportSteps_01.json",
            "BACKUP_RUNNING",
        ] {
            assert_eq!(table_folder(name), format!("_tables/{name}"));
        }
        assert_eq!(table_folder("_capacity2"), "_capacity2");
    }

    #[test]
    fn names_that_would_escape_are_refused() {
        assert!(validate_app_name("..").is_err());
        assert!(validate_app_name("a/b").is_err());
        assert!(validate_app_name("billing").is_ok());
        assert!(validate_table_name("../x").is_err());
        assert!(validate_table_name("ab").is_err());
        assert!(validate_table_name("Orders.v2-x_y").is_ok());
    }

    #[test]
    fn restore_plan_checks() {
        let good = r#"{"version":1,"app":"a","region":"r","exportedAt":"2026-11-24T03:00:00Z","tables":[
          {"sourceTable":"abc","targetTable":"abd","path":"abc/AWSDynamoDB/x","format":"dynamodb-json",
           "keySchema":[],"writeRatio":0.8,"itemCount":3}]}"#;
        assert_eq!(
            RestorePlan::parse("p", good.as_bytes()).unwrap().tables[0].item_count,
            Some(3)
        );
        let uncounted = good.replace(",\"itemCount\":3", "");
        assert_eq!(
            RestorePlan::parse("p", uncounted.as_bytes())
                .unwrap()
                .tables[0]
                .item_count,
            None
        );
        assert!(RestorePlan::parse("p", good.as_bytes()).is_ok());
        let bad_ratio = good.replace("0.8", "2.5");
        assert!(RestorePlan::parse("p", bad_ratio.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("writeRatio"));
        let unknown = good.replace("\"itemCount\"", "\"surprise\":1,\"itemCount\"");
        assert!(RestorePlan::parse("p", unknown.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("surprise"));
        let escape = good.replace("abc/AWSDynamoDB/x", "../other");
        assert!(RestorePlan::parse("p", escape.as_bytes()).is_err());
    }

    #[test]
    fn segments_follow_size_and_rate() {
        assert_eq!(default_segments(0, 10.0), 1);
        assert_eq!(default_segments(10 * 1024 * 1024 * 1024, 10.0), 10);
        assert_eq!(default_segments(0, 20_000.0), 4, "size unknown");
        assert_eq!(
            default_segments(100 * 1024 * 1024, 20_000.0),
            4,
            "32 MiB a segment at least"
        );
        assert_eq!(default_segments(2 * 1024 * 1024 * 1024, 20_000.0), 20);
        assert_eq!(default_segments(i64::MAX, 1e9), 1000);
    }
}
