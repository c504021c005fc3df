//! The local engine: every table's work in this process. Tables run `parallel_tables` at a
//! time and draw on one shared pool of `workers` (the seed's "one cluster for all
//! tables"): an export's Scan segments ([`scan`], [`export`]), an import's batch writers
//! ([`import`], [`batch`]), each with its checkpoints ([`checkpoint`], [`tracker`]).

pub(crate) mod batch;
mod check;
mod export;
mod import;
pub(crate) mod pool;
pub(crate) mod positions;
pub(crate) mod scan;
pub(crate) mod tracker;

pub use pool::WorkerPool;

use futures::StreamExt;

use crate::concurrent::{each_limited, for_each_limited};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::capacity;
use crate::engine::interface::{Engine, ExportWork, ImportWork, SourceCheck, SourceChecked};
use crate::plan::DataFormat;
use crate::progress::{Phase, TableProgress};
use crate::report::{Reports, TableReport, TableStatus};
use crate::Result;

/// Limits of the in-process engine.
#[derive(Debug, Clone, Copy)]
pub struct LocalEngine {
    /// Tables worked on at once.
    pub parallel_tables: usize,
    /// Segment (or writer) tasks running at once, across all tables.
    pub workers: usize,
}

impl Default for LocalEngine {
    fn default() -> Self {
        Self {
            parallel_tables: 4,
            workers: 8,
        }
    }
}

impl LocalEngine {
    /// Check the limits against their ranges (`crate::bounds`).
    pub fn validate(&self) -> Result<()> {
        crate::bounds::PARALLEL_TABLES.check(self.parallel_tables)?;
        crate::bounds::WORKERS.check(self.workers)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Engine for LocalEngine {
    fn name(&self) -> &'static str {
        "local"
    }

    fn export_format(&self, asked: Option<DataFormat>) -> Result<DataFormat> {
        Ok(asked.unwrap_or_default())
    }

    fn resumes_exports(&self) -> bool {
        true
    }

    fn replays_changes(&self) -> bool {
        true
    }

    async fn check_source(&self, check: SourceCheck<'_>) -> Result<SourceChecked> {
        check::check_source(check).await
    }

    async fn export_tables(&self, work: ExportWork<'_>) -> Result<Reports> {
        let pool = WorkerPool::new(self.workers);
        let work = &work;
        // Each table's plan and description are read back when its turn comes, and its
        // report is kept aside as it ends (`Spool`, `Schemas`, `Reports`).
        let mut ended = each_limited(0..work.plan.tables.len(), self.parallel_tables, |i| {
            let pool = pool.clone();
            async move {
                let started = Instant::now();
                let (planned, schema) = match work.plan.tables.get(i).and_then(|p| {
                    let schema = work.schemas.get(i)?;
                    Ok((p, schema))
                }) {
                    Ok(both) => both,
                    Err(e) => {
                        let table = format!("table {} of the plan", i + 1);
                        let counters = work.progress.table(&table);
                        return report(&table, &counters, started, Err(e));
                    }
                };
                let counters = work.progress.table(&planned.table);
                let schema = &schema;
                counters.set_phase(Phase::Running);
                counters.expect(
                    schema.item_count.max(0) as u64,
                    schema.table_size_bytes.max(0) as u64,
                );
                let result = capacity::during(
                    work.aws,
                    work.run_dir,
                    planned.capacity_spike.as_ref(),
                    export::export_table(
                        work,
                        schema,
                        &planned,
                        counters.clone(),
                        &pool,
                        self.workers,
                    ),
                )
                .await;
                report(&schema.table_name, &counters, started, result)
            }
        });
        let mut reports = Reports::default();
        while let Some(r) = ended.next().await {
            reports.push(r)?;
        }
        Ok(reports)
    }

    async fn import_tables(&self, work: ImportWork<'_>) -> Result<Vec<TableReport>> {
        let tables: Vec<_> = work
            .tables
            .iter()
            .map(|t| (t, work.progress.table(&t.step.target_table)))
            .collect();
        let work = &work;
        Ok(for_each_limited(
            tables,
            self.parallel_tables,
            |(table, counters)| async move {
                let started = Instant::now();
                counters.set_phase(Phase::Running);
                let mut notes = Vec::new();
                let result = match &table.ready {
                    Ok(ready) => {
                        notes.extend(duplicate_note(&ready.checked));
                        let write = import::TableWrite {
                            work,
                            step: &table.step,
                            ready,
                            counters: &counters,
                            units: import::Rate {
                                units: table.write_units(work.max_write_units),
                                start: table.write_start().filter(|_| work.ramp),
                            },
                            writers: self.workers,
                        };
                        capacity::during(
                            work.aws,
                            work.state,
                            ready.spike.as_ref(),
                            write.write_chain(),
                        )
                        .await
                        .map(|written| {
                            notes.extend(written.notes);
                            (
                                table.step.files as u64,
                                written.items,
                                counters.bytes.load(Ordering::Relaxed),
                            )
                        })
                    }
                    Err(e) => {
                        counters.fail(&e.to_string());
                        return TableReport {
                            files: table.step.files as u64,
                            ..TableReport::of_error(&table.step.target_table, e)
                        };
                    }
                };
                let mut r = report(&table.step.target_table, &counters, started, result);
                if !notes.is_empty() {
                    r.note = Some(notes.join("; "));
                }
                // A failed import reports what it did write, and its files.
                r.files = table.step.files as u64;
                if r.is_failure() {
                    r.items = counters.items.load(Ordering::Relaxed);
                    r.bytes = counters.bytes.load(Ordering::Relaxed);
                }
                r
            },
        )
        .await)
    }
}

/// What the report says of keys an export holds twice (which a real export never does).
fn duplicate_note(checked: &SourceChecked) -> Option<String> {
    let checked_up_to = checked
        .duplicates_checked_up_to
        .map(|n| format!(" (keys compared for the first {n} items only)"))
        .unwrap_or_default();
    (checked.duplicate_keys > 0).then(|| {
        format!(
            "{} items have the key of an earlier item of the export: the table keeps the last of each, so it holds that many fewer items than were written{checked_up_to}",
            checked.duplicate_keys
        )
    })
}

/// A table's report from its result (files, items, bytes), and its progress phase.
fn report(
    table: &str,
    counters: &Arc<TableProgress>,
    started: Instant,
    result: Result<(u64, u64, u64)>,
) -> TableReport {
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((files, items, bytes)) => {
            counters.set_phase(Phase::Done);
            TableReport {
                status: TableStatus::Succeeded,
                items,
                bytes,
                files,
                units: counters.units(),
                seconds,
                ..TableReport::planned(table)
            }
        }
        Err(e) => {
            counters.fail(&e.to_string());
            TableReport {
                seconds,
                units: counters.units(),
                ..TableReport::of_error(table, &e)
            }
        }
    }
}
