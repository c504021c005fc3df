//! `ddbx verify`: prove that tables hold exactly what an export holds. Per table, the
//! export's item count against a counting scan of the table, and with `deep`, every
//! item's canonical digest against every item of the table (differing, missing, extra,
//! with a few example keys).
//!
//! A deep verify keeps one small entry per exported item in memory (key digest, item
//! digest, key text): about 100 bytes an item.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::aws::Aws;
use crate::concurrent::for_each_limited;
use crate::engine::local::scan::{scan_segment, PageSink, ScanJob, ScanKey};
use crate::engine::local::{LocalEngine, WorkerPool};
use crate::format::reader::ItemReader;
use crate::format::select;
use crate::format::source::{self, Selection, TableSource};
use crate::item::canonical::{item_digest, key_digest, SetDigest};
use crate::item::{dynamodb_json, Item, ItemError, Record};
use crate::plan::default_segments;
use crate::plan::RunLayout;
use crate::progress::{Phase, RunProgress};
use crate::rate::RateLimiter;
use crate::report::{Reports, RunSummary, TableReport, TableStatus};
use crate::run::lifecycle::{Outcome, Run};
use crate::stop::StopSignal;
use crate::table::{KeyAttribute, TableSchema};
use crate::{Error, Result};

/// How many example keys a verdict shows per kind of difference.
const EXAMPLES: usize = 5;

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifySettings {
    /// The export and its tables.
    pub source: Selection,
    /// Fraction of each table's read capacity for the scan.
    pub read_ratio: f64,
    /// Read units per second per table, overriding the ratio.
    pub max_read_units: Option<f64>,
    /// Compare every item, not only counts.
    pub deep: bool,
    /// Concurrency.
    pub engine: LocalEngine,
    /// Raised to stop cleanly.
    pub stop: StopSignal,
}

/// The verdict for one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The exported table.
    pub source_table: String,
    /// The table compared.
    pub target_table: String,
    /// Whether it matches.
    pub matches: bool,
    /// Items in the export.
    pub export_items: u64,
    /// Items in the table.
    pub table_items: u64,
    /// Digest of the export's items (deep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_digest: Option<String>,
    /// Items present on both sides with different values (deep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differing: Option<u64>,
    /// Exported items missing from the table (deep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<u64>,
    /// Table items not in the export (deep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<u64>,
    /// A few keys of each kind, as DynamoDB JSON.
    pub examples: Vec<String>,
    /// Why the table could not be verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a verify produced: a verdict per table, and the summary (a table that does not
/// match is a failed table).
#[derive(Debug)]
pub struct VerifyReport {
    /// Per table.
    pub verdicts: Vec<Verdict>,
    /// The summary.
    pub summary: RunSummary,
}

/// Verify every selected table of an export. It goes through the run's lifecycle like
/// every job, holding no lock and raising no flag (it writes nothing).
pub async fn run(
    aws: &Aws,
    settings: &VerifySettings,
    progress: &RunProgress,
) -> Result<VerifyReport> {
    crate::bounds::RATIO.check(settings.read_ratio)?;
    crate::bounds::UNITS.check_opt(settings.max_read_units)?;
    settings.engine.validate()?;
    let (root, plan, selected) = select::select(&aws.storage, &settings.source).await?;
    let layout = RunLayout {
        region: aws.region.clone(),
        app: plan.map(|p| p.app).unwrap_or_default(),
        started: chrono::Utc::now(),
    };
    let warnings: Vec<String> = source::export_warning(&root).await?.into_iter().collect();
    let summarize = |reports, ended| RunSummary {
        warnings: warnings.clone(),
        ..RunSummary::for_job("verify", &layout, root.url(), reports, ended)
    };
    let run = Run {
        flags: None,
        root: &root,
        lease: None,
        lock: None,
        fresh: false,
        summarize: &summarize,
    };
    let work = async {
        let verdicts = verify_tables(aws, settings, progress, selected).await;
        Ok(Outcome {
            reports: verdicts.iter().map(Verdict::report).collect(),
            files: Vec::new(),
            extra: verdicts,
        })
    };
    let (summary, verdicts) = run
        .execute(Reports::in_memory(), Vec::new(), async { Ok(()) }, work)
        .await?;
    Ok(VerifyReport { verdicts, summary })
}

impl Verdict {
    /// The verdict as a table's report: a table that does not match failed.
    fn report(&self) -> TableReport {
        let mut r = TableReport::planned(&self.target_table);
        r.items = self.table_items;
        if self.matches {
            r.status = TableStatus::Succeeded;
        } else {
            r.status = TableStatus::Failed;
            r.error = Some(self.error.clone().unwrap_or_else(|| {
                format!(
                    "does not match the export ({} items exported, {} in the table)",
                    self.export_items, self.table_items
                )
            }));
        }
        r
    }
}

async fn verify_tables(
    aws: &Aws,
    settings: &VerifySettings,
    progress: &RunProgress,
    selected: Vec<source::Selected>,
) -> Vec<Verdict> {
    let work: Vec<_> = selected
        .into_iter()
        .map(|s| (s.source_table, s.target_table, s.key, (s.table, s.changes)))
        .collect();
    let pool = WorkerPool::new(settings.engine.workers);
    for_each_limited(
        work,
        settings.engine.parallel_tables,
        |(source_table, target, key, (table, changes))| {
            let pool = pool.clone();
            async move {
                let counters = progress.table(&target);
                counters.set_phase(Phase::Running);
                let result = match table {
                    Ok(t) => {
                        let src = Export {
                            base: &t,
                            changes: &changes,
                        };
                        verify_table(aws, settings, &pool, &target, key, src, counters.clone())
                            .await
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(mut v) => {
                        counters.set_phase(if v.matches {
                            Phase::Done
                        } else {
                            Phase::Failed
                        });
                        v.source_table = source_table;
                        v
                    }
                    Err(e) => {
                        counters.set_phase(Phase::Failed);
                        Verdict {
                            source_table,
                            target_table: target,
                            matches: false,
                            export_items: 0,
                            table_items: 0,
                            export_digest: None,
                            differing: None,
                            missing: None,
                            extra: None,
                            examples: Vec::new(),
                            error: Some(e.to_string()),
                        }
                    }
                }
            }
        },
    )
    .await
}

/// The export's items by the digest of their key: the digest of each item, nothing more
/// (about 40 bytes an item, whatever its key's size). The keys of missing items are found
/// again, by reading the export once more, only when some are missing.
type ExportIndex = HashMap<[u8; 16], [u8; 16]>;

/// What a deep scan found against the export's index: items that differ, items the export
/// does not hold, and a few of their keys.
#[derive(Debug, Clone, Default, PartialEq)]
struct Tally {
    differing: u64,
    extra: u64,
    examples: Vec<String>,
}

impl Tally {
    /// One item of the table: taken out of `expected` (what is left at the end is missing),
    /// counted as differing or extra when it is.
    fn record(&mut self, expected: &mut ExportIndex, item: &Item, names: &[&str]) {
        match expected.remove(&key_digest(item, names)) {
            Some(d) => {
                if d != item_digest(item) {
                    self.differing += 1;
                    if self.examples.len() < EXAMPLES * 2 {
                        self.examples
                            .push(format!("differs: {}", key_text(item, names)));
                    }
                }
            }
            None => {
                self.extra += 1;
                if self.examples.len() < EXAMPLES * 3 {
                    self.examples
                        .push(format!("extra: {}", key_text(item, names)));
                }
            }
        }
    }
}

struct Compare {
    names: Vec<String>,
    expected: Arc<Mutex<ExportIndex>>,
    tally: Arc<Mutex<Tally>>,
}

impl PageSink for Compare {
    async fn page(
        &mut self,
        items: &[Item],
        _sizes: &[u64],
        _next: Option<&ScanKey>,
    ) -> Result<()> {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let mut expected = self.expected.lock().unwrap();
        let mut tally = self.tally.lock().unwrap();
        for item in items {
            tally.record(&mut expected, item, &names);
        }
        Ok(())
    }
}

struct Count;

impl PageSink for Count {
    async fn page(
        &mut self,
        _items: &[Item],
        _sizes: &[u64],
        _next: Option<&ScanKey>,
    ) -> Result<()> {
        Ok(())
    }
}

fn key_text(item: &Item, names: &[&str]) -> String {
    let key: Item = names
        .iter()
        .filter_map(|n| item.get(*n).map(|v| (n.to_string(), v.clone())))
        .collect();
    let mut out = Vec::new();
    dynamodb_json::encode_line(&key, &mut out);
    String::from_utf8_lossy(&out).trim().to_string()
}

/// The keys of a few of the `missing` items (by key digest), read again from the export
/// (its items, and its windows' puts).
async fn missing_keys(
    export: Export<'_>,
    missing: &ExportIndex,
    names: &[&str],
) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for src in std::iter::once(export.base).chain(export.changes) {
        for f in &src.files {
            let mut r = ItemReader::open(&src.dir, f, src.format)
                .await?
                .changes(src.changes);
            while let Some((_, record)) = r.next_record().await? {
                if let Record::Put(item) = record {
                    let text = key_text(&item, names);
                    if missing.contains_key(&key_digest(&item, names)) && !found.contains(&text) {
                        found.push(text);
                        if found.len() == EXAMPLES {
                            return Ok(found);
                        }
                    }
                }
            }
        }
    }
    Ok(found)
}

/// What a table is compared with: an export, and (replaying a chain) the windows over it.
#[derive(Clone, Copy)]
struct Export<'a> {
    base: &'a TableSource,
    changes: &'a [TableSource],
}

/// Verify one table against its export: the export's side read (or its count taken from
/// the manifests), the table scanned, the two compared.
async fn verify_table(
    aws: &Aws,
    settings: &VerifySettings,
    pool: &WorkerPool,
    target: &str,
    key: Option<Vec<KeyAttribute>>,
    export: Export<'_>,
    counters: Arc<crate::progress::TableProgress>,
) -> Result<Verdict> {
    refuse_incremental(export.base)?;
    let described = aws.describe_table(target).await?;
    let key = key
        .or_else(|| export.base.schema.as_ref().map(|s| s.key()))
        .unwrap_or_else(|| described.key());
    let names: Vec<String> = key.iter().map(|k| k.attribute_name.clone()).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();

    let side = ExportSide::read(export, &key, &name_refs, settings.deep).await?;
    counters.expected_items.store(side.items, Ordering::Relaxed);

    let scan = TableScan::new(aws, settings, target, &described, counters.clone());
    let (missing, tally) = scan.run(pool, &names, side.index).await?;
    let table_items = counters.items.load(Ordering::Relaxed);
    let verdict = Verdict::counted(target, side.items, table_items);
    if !settings.deep {
        return Ok(verdict);
    }
    let missing_examples = if missing.is_empty() {
        Vec::new()
    } else {
        missing_keys(export, &missing, &name_refs).await?
    };
    Ok(verdict.compared(&side.digest, tally, missing.len() as u64, missing_examples))
}

/// An incremental export alone is changes, not a table: refused.
fn refuse_incremental(src: &TableSource) -> Result<()> {
    if src.changes {
        return Err(Error::Usage(format!(
            "{}: an incremental export holds changes, not the table: verify its chain with --until TIME (from the run of its full export) or --at TIME (from the app's folder)",
            src.dir.url()
        )));
    }
    Ok(())
}

/// The export's side of a table's verify: how many items it holds, and (deep, or
/// replaying a chain) each item's digest by its key's digest, and the digest of them all.
#[derive(Debug, Default)]
struct ExportSide {
    index: ExportIndex,
    items: u64,
    digest: SetDigest,
}

impl ExportSide {
    /// Read what `export` holds: every item of its files, then the windows over it, in
    /// order; or, when only counts are compared and the manifests give one, that count.
    async fn read(
        export: Export<'_>,
        key: &[KeyAttribute],
        names: &[&str],
        deep: bool,
    ) -> Result<Self> {
        let src = export.base;
        let replay = !export.changes.is_empty();
        let mut side = ExportSide::default();
        if !(deep || replay) {
            if let Some(n) = src.expected_items {
                side.items = n;
                return Ok(side);
            }
        }
        side.read_base(src, key, names, deep || replay).await?;
        for window in export.changes {
            side.apply_window(window, names).await?;
        }
        if replay {
            side.settle();
        }
        Ok(side)
    }

    /// Every item of the full export, each carrying the key (as an import checks it).
    async fn read_base(
        &mut self,
        src: &TableSource,
        key: &[KeyAttribute],
        names: &[&str],
        indexed: bool,
    ) -> Result<()> {
        let key_check = Some(Arc::new(crate::table::key_check(key)));
        for f in &src.files {
            let mut r = ItemReader::open(&src.dir, f, src.format)
                .await?
                .with_key(key_check.clone());
            while let Some((line, item)) = r.next().await? {
                self.add(&item, names, indexed)
                    .map_err(|source| Error::Item {
                        file: r.url().to_string(),
                        line,
                        source,
                    })?;
            }
        }
        Ok(())
    }

    /// One item of the full export: counted, and (`indexed`) its digest kept by its key's;
    /// a key seen before is refused.
    fn add(
        &mut self,
        item: &Item,
        names: &[&str],
        indexed: bool,
    ) -> std::result::Result<(), ItemError> {
        self.items += 1;
        if indexed {
            let d = item_digest(item);
            self.digest.add(d);
            if self.index.insert(key_digest(item, names), d).is_some() {
                return Err(ItemError::Shape(
                    "the same key appears twice in the export".into(),
                ));
            }
        }
        Ok(())
    }

    /// One window of the chain over the export, its superseded records passed over.
    async fn apply_window(&mut self, window: &TableSource, names: &[&str]) -> Result<()> {
        let superseded = crate::format::replay::superseded(window).await?;
        for (i, f) in window.files.iter().enumerate() {
            let mut r = ItemReader::open(&window.dir, f, window.format)
                .await?
                .changes(true);
            while let Some((line, record)) = r.next_record().await? {
                if !superseded.skips(i, line) {
                    self.apply(record, names);
                }
            }
        }
        Ok(())
    }

    /// One record of a window: a put replaces the item of its key, a delete removes it.
    fn apply(&mut self, record: Record, names: &[&str]) {
        match record {
            Record::Put(item) => {
                self.index
                    .insert(key_digest(&item, names), item_digest(&item));
            }
            Record::Delete(keys) => {
                self.index.remove(&key_digest(&keys, names));
            }
        }
    }

    /// After a replay: the count and the digest of what the chain leaves.
    fn settle(&mut self) {
        self.items = self.index.len() as u64;
        self.digest = SetDigest::default();
        for d in self.index.values() {
            self.digest.add(*d);
        }
    }
}

/// The table's side of a table's verify: a parallel scan at the chosen read rate, which
/// counts (and, deep, compares every item with the export's).
struct TableScan {
    job: Arc<ScanJob>,
    deep: bool,
}

impl TableScan {
    fn new(
        aws: &Aws,
        settings: &VerifySettings,
        target: &str,
        described: &TableSchema,
        counters: Arc<crate::progress::TableProgress>,
    ) -> Self {
        let units = settings
            .max_read_units
            .unwrap_or_else(|| described.read_units(settings.read_ratio));
        let segments = default_segments(described.table_size_bytes, units)
            .max(settings.engine.workers.min(4) as u32);
        let job = Arc::new(ScanJob {
            aws: aws.clone(),
            table: target.to_string(),
            limiter: RateLimiter::new(units, aws.clock.clone()).until_stopped(&settings.stop),
            segments,
            concurrency: settings.engine.workers.max(1) as u32,
            avg_item_bytes: (described.item_count > 0)
                .then(|| described.table_size_bytes as f64 / described.item_count as f64),
            count_only: !settings.deep,
            progress: counters,
            cancelled: AtomicBool::new(false),
            stop: settings.stop.clone(),
        });
        TableScan {
            job,
            deep: settings.deep,
        }
    }

    /// Scan every segment on `pool`, each item taken out of `expected`: what is left of it
    /// (the missing items), and what the comparison found.
    async fn run(
        self,
        pool: &WorkerPool,
        names: &[String],
        expected: ExportIndex,
    ) -> Result<(ExportIndex, Tally)> {
        let expected = Arc::new(Mutex::new(expected));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let handles: Vec<_> = (0..self.job.segments)
            .map(|segment| {
                let job = self.job.clone();
                let mut sink = Compare {
                    names: names.to_vec(),
                    expected: expected.clone(),
                    tally: tally.clone(),
                };
                let deep = self.deep;
                pool.spawn(async move {
                    if deep {
                        scan_segment(&job, segment, None, &mut sink).await
                    } else {
                        scan_segment(&job, segment, None, &mut Count).await
                    }
                })
            })
            .collect();
        for h in handles {
            h.await
                .map_err(|e| Error::Failed(format!("a scan task died: {e}")))??;
        }
        self.job.limiter.drain().await?;
        let missing = std::mem::take(&mut *expected.lock().unwrap());
        let tally = std::mem::take(&mut *tally.lock().unwrap());
        Ok((missing, tally))
    }
}

impl Verdict {
    /// The verdict of counts alone: the table matches when it holds as many items.
    fn counted(target: &str, export_items: u64, table_items: u64) -> Self {
        Verdict {
            source_table: String::new(),
            target_table: target.to_string(),
            matches: export_items == table_items,
            export_items,
            table_items,
            export_digest: None,
            differing: None,
            missing: None,
            extra: None,
            examples: Vec::new(),
            error: None,
        }
    }

    /// With a deep comparison: the table matches when, besides its count, no item differs,
    /// none is extra and none is missing.
    fn compared(
        mut self,
        digest: &SetDigest,
        tally: Tally,
        missing: u64,
        missing_examples: Vec<String>,
    ) -> Self {
        let mut examples = tally.examples;
        examples.extend(
            missing_examples
                .into_iter()
                .map(|k| format!("missing: {k}")),
        );
        self.export_digest = Some(digest.to_hex());
        self.differing = Some(tally.differing);
        self.missing = Some(missing);
        self.extra = Some(tally.extra);
        self.matches = self.matches && tally.differing == 0 && tally.extra == 0 && missing == 0;
        self.examples = examples;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::AttributeValue;

    fn item(pk: &str, v: &str) -> Item {
        Item::from([
            ("pk".to_string(), AttributeValue::S(pk.into())),
            ("v".to_string(), AttributeValue::N(v.into())),
        ])
    }

    fn key(pk: &str) -> Item {
        Item::from([("pk".to_string(), AttributeValue::S(pk.into()))])
    }

    const NAMES: &[&str] = &["pk"];

    fn side_of(items: &[Item]) -> ExportSide {
        let mut side = ExportSide::default();
        for i in items {
            side.add(i, NAMES, true).unwrap();
        }
        side
    }

    #[test]
    fn a_tally_counts_differing_and_extra_items_and_leaves_the_missing() {
        let mut expected = side_of(&[item("a", "1"), item("b", "2"), item("c", "3")]).index;
        let mut tally = Tally::default();
        tally.record(&mut expected, &item("a", "1"), NAMES);
        tally.record(&mut expected, &item("b", "20"), NAMES);
        tally.record(&mut expected, &item("z", "9"), NAMES);
        assert_eq!(tally.differing, 1);
        assert_eq!(tally.extra, 1);
        assert_eq!(
            tally.examples,
            [
                r#"differs: {"Item":{"pk":{"S":"b"}}}"#,
                r#"extra: {"Item":{"pk":{"S":"z"}}}"#
            ]
        );
        assert_eq!(expected.len(), 1, "c is missing");
        assert!(expected.contains_key(&key_digest(&item("c", "3"), NAMES)));
    }

    #[test]
    fn a_tally_keeps_only_a_few_examples() {
        let mut expected = ExportIndex::new();
        let mut tally = Tally::default();
        for n in 0..100 {
            tally.record(&mut expected, &item(&n.to_string(), "1"), NAMES);
        }
        assert_eq!(tally.extra, 100);
        assert_eq!(tally.examples.len(), EXAMPLES * 3);
    }

    #[test]
    fn an_export_side_refuses_a_key_twice_and_counts_without_an_index() {
        let mut side = side_of(&[item("a", "1")]);
        let err = side.add(&item("a", "2"), NAMES, true).unwrap_err();
        assert!(
            err.to_string().contains("the same key appears twice"),
            "{err}"
        );

        let mut counted = ExportSide::default();
        counted.add(&item("a", "1"), NAMES, false).unwrap();
        counted.add(&item("a", "1"), NAMES, false).unwrap();
        assert_eq!(counted.items, 2);
        assert!(counted.index.is_empty());
    }

    #[test]
    fn a_replayed_export_side_holds_what_its_windows_leave() {
        let mut side = side_of(&[item("a", "1"), item("b", "2")]);
        side.apply(Record::Put(item("a", "10")), NAMES);
        side.apply(Record::Put(item("c", "3")), NAMES);
        side.apply(Record::Delete(key("b")), NAMES);
        side.settle();
        assert_eq!(side.items, 2);
        let want = side_of(&[item("a", "10"), item("c", "3")]);
        assert_eq!(side.digest.to_hex(), want.digest.to_hex());
    }

    #[test]
    fn a_verdict_matches_only_when_counts_and_every_item_agree() {
        assert!(Verdict::counted("T", 3, 3).matches);
        assert!(!Verdict::counted("T", 3, 2).matches);
        let digest = SetDigest::default();
        let same = Verdict::counted("T", 3, 3).compared(&digest, Tally::default(), 0, vec![]);
        assert!(same.matches);
        assert_eq!(
            same.export_digest.as_deref(),
            Some(digest.to_hex().as_str())
        );
        assert_eq!(
            (same.differing, same.missing, same.extra),
            (Some(0), Some(0), Some(0))
        );

        let tally = Tally {
            differing: 1,
            extra: 0,
            examples: vec!["differs: k1".into()],
        };
        let v = Verdict::counted("T", 3, 3).compared(&digest, tally, 0, vec![]);
        assert!(!v.matches, "same count, one item differs");

        let v =
            Verdict::counted("T", 3, 2).compared(&digest, Tally::default(), 1, vec!["k2".into()]);
        assert!(!v.matches);
        assert_eq!(v.missing, Some(1));
        assert_eq!(v.examples, ["missing: k2"]);
    }

    #[test]
    fn an_incremental_export_alone_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = TableSource {
            dir: crate::store::Storage::default()
                .open(dir.path().to_str().unwrap())
                .unwrap(),
            table: None,
            format: crate::plan::DataFormat::DynamodbJson,
            files: Vec::new(),
            schema: None,
            expected_items: None,
            changes: false,
        };
        refuse_incremental(&src).unwrap();
        src.changes = true;
        let err = refuse_incremental(&src).unwrap_err();
        assert!(
            matches!(err, Error::Usage(_)) && err.to_string().contains("--until"),
            "{err}"
        );
    }
}
