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

use serde::Serialize;

use crate::aws::Aws;
use crate::concurrent::for_each_limited;
use crate::engine::local::scan::{scan_segment, PageSink, ScanJob, ScanKey};
use crate::engine::local::{LocalEngine, WorkerPool};
use crate::format::reader::ItemReader;
use crate::format::select;
use crate::format::source::{self, Selection, TableSource};
use crate::item::canonical::{item_digest, key_digest};
use crate::item::{dynamodb_json, Item, Record};
use crate::plan::default_segments;
use crate::plan::RunLayout;
use crate::progress::{Phase, RunProgress};
use crate::rate::RateLimiter;
use crate::report::{RunSummary, TableReport, TableStatus};
use crate::run::lifecycle::{Outcome, Run};
use crate::stop::StopSignal;
use crate::table::KeyAttribute;
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone)]
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
        .execute(Vec::new(), Vec::new(), async { Ok(()) }, work)
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

/// Exported items by key digest: (item digest, key as text).
/// The export's items by the digest of their key: the digest of each item, nothing more
/// (about 40 bytes an item, whatever its key's size). The keys of missing items are found
/// again, by reading the export once more, only when some are missing.
type ExportIndex = HashMap<[u8; 16], [u8; 16]>;

struct Compare {
    names: Vec<String>,
    expected: Arc<Mutex<ExportIndex>>,
    differing: Arc<Mutex<(u64, u64, Vec<String>)>>,
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
        let mut diff = self.differing.lock().unwrap();
        for item in items {
            let kd = key_digest(item, &names);
            match expected.remove(&kd) {
                Some(d) => {
                    if d != item_digest(item) {
                        diff.0 += 1;
                        if diff.2.len() < EXAMPLES * 2 {
                            diff.2.push(format!("differs: {}", key_text(item, &names)));
                        }
                    }
                }
                None => {
                    diff.1 += 1;
                    if diff.2.len() < EXAMPLES * 3 {
                        diff.2.push(format!("extra: {}", key_text(item, &names)));
                    }
                }
            }
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

async fn verify_table(
    aws: &Aws,
    settings: &VerifySettings,
    pool: &WorkerPool,
    target: &str,
    key: Option<Vec<KeyAttribute>>,
    export: Export<'_>,
    counters: Arc<crate::progress::TableProgress>,
) -> Result<Verdict> {
    let src = export.base;
    if src.changes {
        return Err(Error::Usage(format!(
            "{}: an incremental export holds changes, not the table: verify its chain with --until TIME (from the run of its full export) or --at TIME (from the app's folder)",
            src.dir.url()
        )));
    }
    let replay = !export.changes.is_empty();
    let described = aws.describe_table(target).await?;
    let key = key
        .or_else(|| src.schema.as_ref().map(|s| s.key()))
        .unwrap_or_else(|| described.key());
    let names: Vec<String> = key.iter().map(|k| k.attribute_name.clone()).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();

    // The export's side: counts (and digests, when deep), reading every file.
    let mut index = ExportIndex::new();
    let mut export_items = 0u64;
    let mut digest = crate::item::canonical::SetDigest::default();
    let needs_reading = settings.deep || replay || src.expected_items.is_none();
    if needs_reading {
        // Every item must carry the key, as an import checks it.
        let key_check = Some(Arc::new(crate::table::key_check(&key)));
        for f in &src.files {
            let mut r = ItemReader::open(&src.dir, f, src.format)
                .await?
                .with_key(key_check.clone());
            while let Some((line, item)) = r.next().await? {
                export_items += 1;
                if settings.deep || replay {
                    let d = item_digest(&item);
                    digest.add(d);
                    let kd = key_digest(&item, &name_refs);
                    if index.insert(kd, d).is_some() {
                        return Err(Error::Item {
                            file: r.url().to_string(),
                            line,
                            source: crate::item::ItemError::Shape(
                                "the same key appears twice in the export".into(),
                            ),
                        });
                    }
                }
            }
        }
        // The chain's windows, in order, over the export: the table as of the replay's time.
        for window in export.changes {
            let superseded = crate::format::replay::superseded(window).await?;
            for (i, f) in window.files.iter().enumerate() {
                let mut r = ItemReader::open(&window.dir, f, window.format)
                    .await?
                    .changes(true);
                while let Some((line, record)) = r.next_record().await? {
                    if superseded.skips(i, line) {
                        continue;
                    }
                    match record {
                        Record::Put(item) => {
                            let kd = key_digest(&item, &name_refs);
                            index.insert(kd, item_digest(&item));
                        }
                        Record::Delete(keys) => {
                            index.remove(&key_digest(&keys, &name_refs));
                        }
                    }
                }
            }
        }
        if replay {
            export_items = index.len() as u64;
            digest = crate::item::canonical::SetDigest::default();
            for d in index.values() {
                digest.add(*d);
            }
        }
    } else {
        export_items = src.expected_items.unwrap_or(0);
    }
    counters
        .expected_items
        .store(export_items, Ordering::Relaxed);

    // The table's side: a parallel scan at the chosen read rate.
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
        progress: counters.clone(),
        cancelled: AtomicBool::new(false),
        stop: settings.stop.clone(),
    });
    let expected = Arc::new(Mutex::new(index));
    let differing = Arc::new(Mutex::new((0u64, 0u64, Vec::new())));
    let handles: Vec<_> = (0..segments)
        .map(|segment| {
            let job = job.clone();
            let mut sink = Compare {
                names: names.clone(),
                expected: expected.clone(),
                differing: differing.clone(),
            };
            let deep = settings.deep;
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
    job.limiter.drain().await?;
    let table_items = counters.items.load(Ordering::Relaxed);
    let mut v = Verdict {
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
    };
    if settings.deep {
        let missing = std::mem::take(&mut *expected.lock().unwrap());
        let (diff, extra, mut examples) = differing.lock().unwrap().clone();
        if !missing.is_empty() {
            let keys = missing_keys(export, &missing, &name_refs).await?;
            examples.extend(keys.into_iter().map(|k| format!("missing: {k}")));
        }
        v.export_digest = Some(digest.to_hex());
        v.differing = Some(diff);
        v.missing = Some(missing.len() as u64);
        v.extra = Some(extra);
        v.matches = v.matches && diff == 0 && extra == 0 && missing.is_empty();
        v.examples = examples;
    }
    Ok(v)
}
