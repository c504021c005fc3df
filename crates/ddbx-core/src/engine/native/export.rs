//! A native export run: point-in-time recovery checked (or turned on, recorded, and off
//! again after) for every table; one instant chosen for the whole run (the latest every
//! table can export, or `--export-time`) and recorded before any export starts; then per
//! table a full export at that instant, or with `--incremental` the windows since its
//! chain's last point, at most `max_jobs` tables at a time; each export checked, the
//! table's `table.json` written and its chain extended.

use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use super::job::{self, JobSpec, Target};
use super::{pitr, NativeEngine};
use crate::aws::Aws;
use crate::capacity::{self, Spike};
use crate::engine::interface::ExportWork;
use crate::engine::local::for_each_limited;
use crate::format::chain::{self, Chain, Link, LinkKind, Next};
use crate::plan::table_folder;
use crate::progress::Phase;
use crate::report::{TableReport, TableStatus};
use crate::store::Location;
use crate::table::TableSchema;
use crate::{Error, Result};

/// `_export/native.json`: the run's instant, chosen once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInstant {
    /// Every table's export (or window end) is this instant.
    pub export_time: DateTime<Utc>,
}

pub(super) async fn export_tables(
    engine: &NativeEngine,
    work: &ExportWork<'_>,
) -> Result<Vec<TableReport>> {
    let (aws, run_dir) = (work.aws, work.run_dir);
    let mut reports = Vec::new();
    // Tables turned on by an earlier attempt of this run are turned off by this one.
    let recorded: Vec<Spike> = capacity::unrestored(run_dir)
        .await?
        .into_iter()
        .filter(|s| s.dimension == capacity::Dimension::Pitr)
        .collect();
    let mut ready: Vec<(&TableSchema, Option<Spike>)> = Vec::new();
    for schema in work.schemas {
        let table = &schema.table_name;
        let counters = work.progress.table(table);
        counters.set_state("checking point-in-time recovery".to_string());
        let earlier = recorded.iter().find(|s| &s.table == table).cloned();
        match pitr(aws, table).await {
            Ok(p) if p.enabled => ready.push((schema, earlier)),
            Ok(_) if engine.enable_pitr => {
                let spike = Spike::pitr(table);
                match capacity::apply_or_undo(aws, run_dir, &spike).await {
                    Ok(()) => ready.push((schema, Some(spike))),
                    Err(e) => reports.push(failed(work, table, format!("turning point-in-time recovery on: {e}"))),
                }
            }
            Ok(_) => reports.push(failed(
                work,
                table,
                format!("point-in-time recovery is off for table {table}, and DynamoDB exports only tables that have it: turn it on, or pass --enable-pitr (on for the export, off after)"),
            )),
            Err(e) => reports.push(failed(work, table, e.to_string())),
        }
    }
    if ready.is_empty() {
        return Ok(reports);
    }
    let names: Vec<String> = ready.iter().map(|(s, _)| s.table_name.clone()).collect();
    let instant = match run_instant(engine, aws, run_dir, &names, work.stop).await {
        Ok(t) => t,
        Err(e) => {
            for (schema, spike) in &ready {
                let mut r = failed(work, &schema.table_name, e.to_string());
                put_back(aws, run_dir, spike.as_ref(), &mut r).await;
                reports.push(r);
            }
            return Ok(reports);
        }
    };
    tracing::info!(export_time = %instant, tables = names.len(), "every table is exported as of one instant");
    let done = for_each_limited(ready, engine.max_jobs, |(schema, spike)| async move {
        let started = aws.clock.now();
        let mut r = match export_table(engine, work, schema, instant).await {
            Ok(r) => r,
            Err(e) => failed(work, &schema.table_name, e.to_string()),
        };
        r.seconds = aws.clock.now().duration_since(started).as_secs_f64();
        put_back(aws, run_dir, spike.as_ref(), &mut r).await;
        r
    })
    .await;
    reports.extend(done);
    Ok(reports)
}

/// Point-in-time recovery back off, for a table that had it turned on: a failure fails the
/// table, saying how to retry.
async fn put_back(aws: &Aws, run_dir: &Location, spike: Option<&Spike>, r: &mut TableReport) {
    let Some(spike) = spike else { return };
    if let Err(e) = capacity::restore(aws, run_dir, spike).await {
        r.status = TableStatus::Failed;
        r.error = Some(match r.error.take() {
            Some(before) => format!("{before}; and {e}"),
            None => format!("the export is complete, but {e}"),
        });
    }
}

fn failed(work: &ExportWork<'_>, table: &str, error: String) -> TableReport {
    work.progress.table(table).fail(&error);
    tracing::error!(%table, %error, "table failed");
    TableReport::failed(table, error)
}

/// The run's instant: recorded by an earlier attempt, or `--export-time`, or the latest
/// time every table restores to (waiting, up to `instant_wait`, while a table whose
/// recovery was just turned on has no such time yet). Recorded before any export.
async fn run_instant(
    engine: &NativeEngine,
    aws: &Aws,
    run_dir: &Location,
    tables: &[String],
    stop: &crate::run::stop::StopSignal,
) -> Result<DateTime<Utc>> {
    let state = run_dir.child("_export");
    if let Some(b) = state.get_optional(&state.join("native.json")).await? {
        let r: RunInstant = serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
            file: state.url_of(&state.join("native.json")),
            message: format!("not the run's instant: {e}"),
        })?;
        return Ok(r.export_time);
    }
    let instant = match engine.export_time {
        Some(t) => t,
        None => common_instant(engine, aws, tables, stop).await?,
    };
    state
        .put_json(
            "native.json",
            &RunInstant {
                export_time: instant,
            },
        )
        .await?;
    Ok(instant)
}

async fn common_instant(
    engine: &NativeEngine,
    aws: &Aws,
    tables: &[String],
    stop: &crate::run::stop::StopSignal,
) -> Result<DateTime<Utc>> {
    let started = aws.clock.now();
    loop {
        let mut earliest: Option<(DateTime<Utc>, &str)> = None;
        let mut latest: Option<(DateTime<Utc>, &str)> = None;
        for t in tables {
            let p = pitr(aws, t).await?;
            if let Some(e) = p.earliest {
                if earliest.is_none_or(|(x, _)| e > x) {
                    earliest = Some((e, t));
                }
            }
            let l = p.latest.unwrap_or_else(Utc::now);
            if latest.is_none_or(|(x, _)| l < x) {
                latest = Some((l, t));
            }
        }
        let (latest, latest_of) = latest.expect("at least one table");
        let instant = latest
            .duration_trunc(ChronoDuration::seconds(1))
            .unwrap_or(latest);
        match earliest {
            Some((e, of)) if instant < e => {
                let waited = aws.clock.now().duration_since(started);
                if waited >= engine.instant_wait {
                    return Err(Error::Invalid(format!(
                        "the tables have no instant in common to export at after {} s: {of} restores from {e}, {latest_of} only to {latest}",
                        waited.as_secs()
                    )));
                }
                tracing::info!(table = %of, earliest = %e, latest = %latest, "waiting for a common restorable instant");
                tokio::select! {
                    _ = aws.clock.sleep(engine.poll.first) => {}
                    _ = stop.stopped() => return Err(Error::Interrupted),
                }
            }
            _ => return Ok(instant),
        }
    }
}

/// One table: its exports (full, or its windows), each checked; its `table.json`; its
/// chain extended.
async fn export_table(
    engine: &NativeEngine,
    work: &ExportWork<'_>,
    schema: &TableSchema,
    instant: DateTime<Utc>,
) -> Result<TableReport> {
    let (aws, run_dir) = (work.aws, work.run_dir);
    let table = schema.table_name.as_str();
    let counters = work.progress.table(table);
    counters.set_phase(Phase::Running);
    let arn = schema
        .table_arn
        .clone()
        .ok_or_else(|| Error::Invalid(format!("table {table}: DescribeTable gave no ARN")))?;
    let app = chain::app_dir_of_run(run_dir);
    let mut chain = Chain::load(&app, table).await?.unwrap_or_else(|| Chain {
        table: table.to_string(),
        links: Vec::new(),
    });
    let mut note = None;
    let mut continues = None;
    let windows: Vec<(Option<DateTime<Utc>>, DateTime<Utc>)> = if engine.incremental {
        let earliest = pitr(aws, table).await?.earliest;
        let last = (!chain.links.is_empty()).then_some(&chain);
        match chain::next(last, earliest, instant) {
            Next::Full(why) => {
                note = Some(format!("exported in full: {why}"));
                vec![(None, instant)]
            }
            Next::Windows(w) => {
                continues = chain.links.last().map(|l| l.run.clone());
                note = Some(format!(
                    "{} incremental window{} from {} (continuing {})",
                    w.len(),
                    if w.len() == 1 { "" } else { "s" },
                    w[0].0,
                    chain.links.last().map_or("?", |l| l.run.as_str())
                ));
                w.into_iter().map(|(f, t)| (Some(f), t)).collect()
            }
            Next::Deferred(why) => {
                counters.set_phase(Phase::Done);
                return Ok(TableReport {
                    status: TableStatus::Deferred,
                    note: Some(why),
                    ..TableReport::planned(table)
                });
            }
        }
    } else {
        vec![(None, instant)]
    };
    let folder = run_dir.child(&table_folder(table));
    let target = Target {
        folder: &folder,
        format: work.plan.format,
        bucket_owner: aws.storage.expected_bucket_owner(),
    };
    let records = run_dir.child(&format!("_export/{table}"));
    let mut report = TableReport {
        status: TableStatus::Succeeded,
        note,
        as_of: Some(instant),
        continues,
        ..TableReport::planned(table)
    };
    let mut links = Vec::new();
    for (n, (from, to)) in windows.into_iter().enumerate() {
        if work.stop.is_stopped() {
            return Err(Error::Interrupted);
        }
        let spec = JobSpec::new(&run_dir.url(), table, &arn, from, to);
        let name = format!("native-{:02}.json", n + 1);
        let export_arn = job::start(aws, &spec, &target, &records, &name).await?;
        let done = job::finish(
            aws,
            &spec,
            &export_arn,
            &target,
            engine,
            work.stop,
            &counters,
        )
        .await?;
        counters.add(done.items, done.billed_bytes, 0.0);
        report.items += done.items;
        report.bytes += done.billed_bytes;
        report.files += done.files;
        links.push(Link {
            kind: if from.is_some() {
                LinkKind::Incremental
            } else {
                LinkKind::Full
            },
            run: run_dir.url(),
            from,
            to,
            export: done.folder.url(),
            export_arn: done.export_arn,
        });
    }
    folder.put_json("table.json", schema).await?;
    chain.extend(links);
    chain.save(&app).await?;
    counters.set_phase(Phase::Done);
    Ok(report)
}
