//! A native export run: point-in-time recovery checked (or turned on, recorded, and off
//! again after, never while an export of the table may still run) for every table; one
//! instant chosen for the whole run (the latest every table can export, or
//! `--export-time`) and recorded before any export starts; then per table a full export
//! at that instant, or with `--incremental` the windows since its chain's last point, at
//! most `max_jobs` tables at a time; each export checked, the table's `table.json`
//! written, what it did recorded, and its chain extended. A resumed run takes a table an
//! earlier attempt finished from that record, so it is neither exported again nor lost.

use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use std::sync::atomic::{AtomicBool, Ordering};

use super::job::{self, JobSpec, Jobs, Target};
use super::quota::Quota;
use super::{pitr, NativeEngine};
use crate::aws::Aws;
use crate::capacity::{self, Spike};
use crate::concurrent::for_each_limited;
use crate::engine::interface::ExportWork;
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

/// `_export/<table>/native-done.json`: what a table's exports did, written once they are
/// all checked and before its chain is extended, so that a resumed run reports the table
/// as it was (and extends the chain, if the attempt stopped before it did).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableDone {
    report: TableReport,
    links: Vec<Link>,
}

pub(super) async fn export_tables(
    engine: &NativeEngine,
    work: &ExportWork<'_>,
) -> Result<Vec<TableReport>> {
    let (aws, run_dir) = (work.aws, work.run_dir);
    let schemas = work.schemas.all()?;
    let (ready, mut reports) = check_pitr(engine, work, &schemas).await?;
    if ready.is_empty() {
        return Ok(reports);
    }
    let names: Vec<String> = ready.iter().map(|(s, _)| s.table_name.clone()).collect();
    let (instant, unready) = match run_instant(engine, aws, run_dir, &names, work.stop).await {
        Ok(t) => t,
        Err(e) => {
            for (schema, spike) in &ready {
                let mut r = failed(work, &schema.table_name, &e);
                put_back(aws, run_dir, spike.as_ref(), false, &mut r).await;
                reports.push(r);
            }
            return Ok(reports);
        }
    };
    let mut going = Vec::new();
    for (schema, spike) in ready {
        match unready.iter().find(|(t, _)| *t == schema.table_name) {
            Some((table, why)) => {
                let mut r = failed(work, table, &Error::Failed(why.clone()));
                put_back(aws, run_dir, spike.as_ref(), false, &mut r).await;
                reports.push(r);
            }
            None => going.push((schema, spike)),
        }
    }
    tracing::info!(export_time = %instant, tables = going.len(), "every table is exported as of one instant");
    let quota = Quota::new(engine.max_wait, engine.poll);
    let jobs = Jobs {
        aws,
        engine,
        stop: work.stop,
        quota: &quota,
    };
    let jobs = &jobs;
    let done = for_each_limited(going, engine.max_jobs, |(schema, spike)| async move {
        let started = aws.clock.now();
        let running = AtomicBool::new(false);
        let mut r = match export_table(jobs, work, schema, instant, &running).await {
            Ok(r) => r,
            Err(e) => failed(work, &schema.table_name, &e),
        };
        r.seconds = aws.clock.now().duration_since(started).as_secs_f64();
        if spike.is_some() && engine.incremental && r.status == TableStatus::Succeeded {
            // Turning recovery off resets the table's window: its chain cannot go on.
            let said = "point-in-time recovery is turned off again after this export (--enable-pitr), so the next incremental run exports this table in full: turn it on for good to chain its exports";
            r.note = Some(match r.note.take() {
                Some(n) => format!("{n}; {said}"),
                None => said.to_string(),
            });
        }
        put_back(
            aws,
            run_dir,
            spike.as_ref(),
            running.load(Ordering::SeqCst),
            &mut r,
        )
        .await;
        r
    })
    .await;
    reports.extend(done);
    Ok(reports)
}

/// Each table's point-in-time recovery: on, or turned on (`--enable-pitr`, recorded
/// first); a table without it fails alone. Tables an earlier attempt of the run turned it
/// on for carry that record, so that this attempt turns it off.
async fn check_pitr<'s>(
    engine: &NativeEngine,
    work: &ExportWork<'_>,
    schemas: &'s [TableSchema],
) -> Result<(Vec<(&'s TableSchema, Option<Spike>)>, Vec<TableReport>)> {
    let (aws, run_dir) = (work.aws, work.run_dir);
    let mut reports = Vec::new();
    let recorded: Vec<Spike> = capacity::unrestored(run_dir)
        .await?
        .into_iter()
        .filter(|s| s.dimension == capacity::Dimension::Pitr)
        .collect();
    let mut ready: Vec<(&TableSchema, Option<Spike>)> = Vec::new();
    for schema in schemas {
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
                    Err(e) => reports.push(failed(work, table, &Error::Failed(format!("turning point-in-time recovery on: {e}")))),
                }
            }
            Ok(_) => reports.push(failed(
                work,
                table,
                &Error::Failed(format!("point-in-time recovery is off for table {table}, and DynamoDB exports only tables that have it: turn it on, or pass --enable-pitr (on for the export, off after)")),
            )),
            Err(e) => reports.push(failed(work, table, &e)),
        }
    }
    Ok((ready, reports))
}

/// Point-in-time recovery back off, for a table that had it turned on: a failure fails the
/// table, saying how to retry. Never while an export of the table may still run (the run
/// was interrupted, or lost sight of it): it stays on and recorded, and the table says so.
async fn put_back(
    aws: &Aws,
    run_dir: &Location,
    spike: Option<&Spike>,
    running: bool,
    r: &mut TableReport,
) {
    let Some(spike) = spike else { return };
    if running {
        let record = run_dir.child("_capacity").url();
        let left = format!(
            "point-in-time recovery is left on, since its export may still be running (recorded in {record}): `ddbx export --resume {}` takes the export up and turns recovery off after it, or `ddbx capacity restore --from {}` turns it off once the export ended",
            run_dir.url(),
            run_dir.url()
        );
        r.error = Some(match r.error.take() {
            Some(before) => format!("{before}; {left}"),
            None => left,
        });
        return;
    }
    if let Err(e) = capacity::restore(aws, run_dir, spike).await {
        r.status = TableStatus::Failed;
        r.error = Some(match r.error.take() {
            Some(before) => format!("{before}; and {e}"),
            None => format!("the export is complete, but {e}"),
        });
    }
}

/// The report of a table that did not end well: interrupted when it was stopped, else
/// failed.
fn failed(work: &ExportWork<'_>, table: &str, error: &Error) -> TableReport {
    work.progress.table(table).fail(&error.to_string());
    TableReport::of_error(table, error)
}

/// The run's instant: recorded by an earlier attempt, or `--export-time` (to the second),
/// or the latest time every table restores to (waiting, up to `instant_wait`, while a
/// table whose recovery was just turned on has no such time yet). Recorded before any
/// export. With it, the tables that cannot be exported at it, each with why.
async fn run_instant(
    engine: &NativeEngine,
    aws: &Aws,
    run_dir: &Location,
    tables: &[String],
    stop: &crate::stop::StopSignal,
) -> Result<(DateTime<Utc>, Vec<(String, String)>)> {
    let state = run_dir.child("_export");
    if let Some(b) = state.get_optional(&state.join("native.json")).await? {
        let r: RunInstant = serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
            file: state.url_of(&state.join("native.json")),
            message: format!("not the run's instant: {e}"),
        })?;
        if let Some(t) = engine
            .export_time
            .filter(|t| to_second(*t) != r.export_time)
        {
            return Err(Error::Usage(format!(
                "--export-time {t} contradicts the run being resumed: it exports as of {} ({})",
                r.export_time,
                state.url_of(&state.join("native.json"))
            )));
        }
        return Ok((r.export_time, Vec::new()));
    }
    let (instant, unready) = match engine.export_time {
        Some(t) => (to_second(t), Vec::new()),
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
    Ok((instant, unready))
}

/// `t` to the whole second (DynamoDB's exports are asked and recorded to the second).
fn to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(ChronoDuration::seconds(1)).unwrap_or(t)
}

/// The latest instant every table restores to, waiting (up to `instant_wait`) for one;
/// and the tables that still say no LatestRestorableDateTime after that wait (left out of
/// the run's instant, never replaced by this machine's clock).
async fn common_instant(
    engine: &NativeEngine,
    aws: &Aws,
    tables: &[String],
    stop: &crate::stop::StopSignal,
) -> Result<(DateTime<Utc>, Vec<(String, String)>)> {
    let started = aws.clock.now();
    loop {
        let waited = aws.clock.now().duration_since(started);
        let out_of_time = waited >= engine.instant_wait;
        let mut earliest: Option<(DateTime<Utc>, &str)> = None;
        let mut latest: Option<(DateTime<Utc>, &str)> = None;
        let mut unready = Vec::new();
        for t in tables {
            let p = pitr(aws, t).await?;
            if let Some(e) = p.earliest {
                if earliest.is_none_or(|(x, _)| e > x) {
                    earliest = Some((e, t));
                }
            }
            match p.latest {
                Some(l) if latest.is_none_or(|(x, _)| l < x) => latest = Some((l, t)),
                Some(_) => {}
                None => unready.push((t.clone(), format!(
                    "DynamoDB gives no latest restorable time for table {t} after {} s (point-in-time recovery just turned on?): it cannot be exported as of the run's instant; export it again later",
                    waited.as_secs()
                ))),
            }
        }
        let wait_for = match (latest, earliest) {
            _ if !unready.is_empty() && !out_of_time => {
                Some("a latest restorable time".to_string())
            }
            (None, _) => None,
            (Some((l, _)), Some((e, of))) if to_second(l) < e => {
                if out_of_time {
                    return Err(Error::Failed(format!(
                        "the tables have no instant in common to export at after {} s: {of} restores from {e}, {} only to {l}",
                        waited.as_secs(),
                        latest.map_or("?", |(_, t)| t)
                    )));
                }
                Some(format!(
                    "{of} to restore from {e} (the tables restore to {l})"
                ))
            }
            (Some((l, _)), _) => return Ok((to_second(l), unready)),
        };
        let Some(why) = wait_for else {
            return Err(Error::Usage(match unready.first() {
                Some((_, why)) => why.clone(),
                None => "no table to export".into(),
            }));
        };
        tracing::info!(waiting_for = %why, "waiting for a common restorable instant");
        tokio::select! {
            _ = aws.clock.sleep(engine.poll.first) => {}
            _ = stop.stopped() => return Err(Error::Interrupted),
        }
    }
}

/// What a table's incremental run exports, and what its report says of it.
enum Plan {
    /// These exports (`(from, to)`, a full export when `from` is none).
    Exports {
        windows: Vec<(Option<DateTime<Utc>>, DateTime<Utc>)>,
        note: String,
        continues: Option<String>,
    },
    /// Nothing this run (why).
    Deferred(String),
}

async fn plan(
    engine: &NativeEngine,
    aws: &Aws,
    chain: &Chain,
    instant: DateTime<Utc>,
) -> Result<Plan> {
    if !engine.incremental {
        return Ok(Plan::Exports {
            windows: vec![(None, instant)],
            note: String::new(),
            continues: None,
        });
    }
    let earliest = pitr(aws, &chain.table).await?.earliest;
    let last = (!chain.links.is_empty()).then_some(chain);
    Ok(match chain::next(last, earliest, instant) {
        Next::Full(why) => Plan::Exports {
            windows: vec![(None, instant)],
            note: format!("exported in full: {why}"),
            continues: None,
        },
        Next::Windows(w) => Plan::Exports {
            note: format!(
                "{} incremental window{} from {} (continuing {})",
                w.len(),
                if w.len() == 1 { "" } else { "s" },
                w[0].0,
                chain.links.last().map_or("?", |l| l.run.as_str())
            ),
            continues: chain.links.last().map(|l| l.run.clone()),
            windows: w.into_iter().map(|(f, t)| (Some(f), t)).collect(),
        },
        Next::Deferred(why) => Plan::Deferred(why),
    })
}

/// One table: what an earlier attempt of the run finished, or its exports (full, or its
/// windows), each checked; its `table.json`; what it did recorded; its chain extended.
/// `running` is set while an export of the table may be running.
async fn export_table(
    jobs: &Jobs<'_>,
    work: &ExportWork<'_>,
    schema: &TableSchema,
    instant: DateTime<Utc>,
    running: &AtomicBool,
) -> Result<TableReport> {
    let run_dir = work.run_dir;
    let table = schema.table_name.as_str();
    let counters = work.progress.table(table);
    counters.set_phase(Phase::Running);
    let arn = schema
        .table_arn
        .clone()
        .ok_or_else(|| Error::Failed(format!("table {table}: DescribeTable gave no ARN")))?;
    let app = chain::app_dir_of_run(run_dir);
    let mut chain = Chain::load(&app, table).await?.unwrap_or_else(|| Chain {
        table: table.to_string(),
        links: Vec::new(),
    });
    let records = run_dir.child(&format!("_export/{table}"));
    if let Some(done) = finished_earlier(&records).await? {
        tracing::info!(%table, "exported by an earlier attempt of this run");
        chain.extend(done.links);
        chain.save(&app).await?;
        counters.add(done.report.items, done.report.bytes, 0.0);
        counters.set_phase(Phase::Done);
        return Ok(done.report);
    }
    let (windows, note, continues) = match plan(jobs.engine, jobs.aws, &chain, instant).await? {
        Plan::Exports {
            windows,
            note,
            continues,
        } => (windows, note, continues),
        Plan::Deferred(why) => {
            counters.set_phase(Phase::Done);
            return Ok(TableReport {
                status: TableStatus::Deferred,
                note: Some(why),
                ..TableReport::planned(table)
            });
        }
    };
    let folder = run_dir.child(&table_folder(table));
    let target = Target {
        folder: &folder,
        format: work.plan.format,
        bucket_owner: jobs.aws.storage.expected_bucket_owner(),
    };
    let mut report = TableReport {
        status: TableStatus::Succeeded,
        note: (!note.is_empty()).then_some(note),
        as_of: Some(instant),
        continues,
        ..TableReport::planned(table)
    };
    let exports = Exports {
        jobs,
        work,
        table,
        arn: &arn,
        target: &target,
        records: &records,
        counters: &counters,
        running,
    };
    let links = exports.run(windows, instant, &mut report).await?;
    // What DynamoDB wrote is retained now, as the objects ddbx writes are when written.
    crate::store::retention::retain_written(&folder).await?;
    folder.put_json("table.json", schema).await?;
    records
        .put_json(
            "native-done.json",
            &TableDone {
                report: report.clone(),
                links: links.clone(),
            },
        )
        .await?;
    chain.extend(links);
    chain.save(&app).await?;
    counters.set_phase(Phase::Done);
    Ok(report)
}

/// What an earlier attempt of the run recorded of a table it finished.
async fn finished_earlier(records: &Location) -> Result<Option<TableDone>> {
    let path = records.join("native-done.json");
    match records.get_optional(&path).await? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                file: records.url_of(&path),
                message: format!("not a record of a table's exports: {e}"),
            }),
    }
}

/// A table's exports, one after another.
struct Exports<'a> {
    jobs: &'a Jobs<'a>,
    work: &'a ExportWork<'a>,
    table: &'a str,
    arn: &'a str,
    target: &'a Target<'a>,
    records: &'a Location,
    counters: &'a crate::progress::TableProgress,
    running: &'a AtomicBool,
}

impl Exports<'_> {
    /// Export `windows` in order (a full export: one, from none), each started, polled
    /// and checked, adding to `report`; the chain's links, with the instants DynamoDB
    /// says it exported. A window that ends elsewhere than asked moves the rest.
    async fn run(
        &self,
        mut windows: Vec<(Option<DateTime<Utc>>, DateTime<Utc>)>,
        instant: DateTime<Utc>,
        report: &mut TableReport,
    ) -> Result<Vec<Link>> {
        let (jobs, run_dir) = (self.jobs, self.work.run_dir);
        let mut links: Vec<Link> = Vec::new();
        let mut n = 0;
        while n < windows.len() {
            if jobs.stop.is_stopped() {
                return Err(Error::Interrupted);
            }
            let (from, to) = windows[n];
            let spec = JobSpec::new(&run_dir.url(), self.table, self.arn, from, to);
            let name = format!("native-{:02}.json", n + 1);
            let started =
                job::start(jobs, &spec, self.target, self.records, &name, self.counters).await?;
            self.running.store(true, Ordering::SeqCst);
            let ended = job::wait(jobs, &started.spec, &started.arn, self.counters).await?;
            self.running.store(false, Ordering::SeqCst);
            jobs.quota.job_ended();
            let done = job::check(jobs, &started.spec, &ended?, self.target, self.counters).await?;
            if !started.earlier.is_empty() {
                let said = format!("started again after {}", started.earlier.join("; "));
                report.note = Some(match report.note.take() {
                    Some(n) => format!("{n}; {said}"),
                    None => said,
                });
            }
            self.counters.add(done.items, done.billed_bytes, 0.0);
            report.items += done.items;
            report.bytes += done.billed_bytes;
            report.files += done.files;
            if from.is_none() {
                report.as_of = Some(done.to);
            }
            links.push(Link {
                kind: if from.is_some() {
                    LinkKind::Incremental
                } else {
                    LinkKind::Full
                },
                run: run_dir.url(),
                from: done.from,
                to: done.to,
                export: done.folder.url(),
                export_arn: done.export_arn,
            });
            if from.is_some() && done.to != to && n + 1 < windows.len() {
                // DynamoDB's window ended elsewhere: the rest follow on from where it did
                // (or, under 15 minutes from the instant, wait for the next run).
                windows.truncate(n + 1);
                if instant - done.to >= chain::MIN_WINDOW {
                    let rest = chain::windows(done.to, instant);
                    windows.extend(rest.into_iter().map(|(f, t)| (Some(f), t)));
                }
            }
            n += 1;
        }
        Ok(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::canned::Canned;
    use crate::clock::ManualClock;

    fn backups(earliest: f64, latest: Option<f64>) -> (u16, String) {
        let latest = latest.map_or(String::new(), |l| {
            format!(r#","LatestRestorableDateTime":{l}"#)
        });
        (
            200,
            format!(
                r#"{{"ContinuousBackupsDescription":{{"ContinuousBackupsStatus":"ENABLED","PointInTimeRecoveryDescription":{{"PointInTimeRecoveryStatus":"ENABLED","EarliestRestorableDateTime":{earliest}{latest}}}}}}}"#
            ),
        )
    }

    #[tokio::test]
    async fn a_table_without_a_latest_restorable_time_is_waited_for_then_left_out() {
        let tables = ["A".to_string(), "B".to_string()];
        // B says no latest time at first, then does: the run waits for it.
        let canned = Canned::start(vec![
            backups(1_000.0, Some(2_000.5)),
            backups(1_000.0, None),
            backups(1_000.0, Some(2_010.5)),
            backups(1_000.0, Some(2_005.0)),
        ])
        .await;
        let clock = ManualClock::default();
        let aws = Aws::for_tests(&canned.url, clock.clone());
        let stop = crate::stop::StopSignal::default();
        let engine = NativeEngine::default();
        let (instant, unready) = common_instant(&engine, &aws, &tables, &stop).await.unwrap();
        assert_eq!(
            instant.timestamp(),
            2_005,
            "the earliest latest, to the second"
        );
        assert!(unready.is_empty());
        assert_eq!(clock.sleeps().len(), 1);

        // Still none after the wait: B is left out, saying why; A is exported as of its own.
        let canned = Canned::start(vec![
            backups(1_000.0, Some(2_000.5)),
            backups(1_000.0, None),
        ])
        .await;
        let aws = Aws::for_tests(&canned.url, ManualClock::default());
        let engine = NativeEngine {
            instant_wait: std::time::Duration::ZERO,
            ..NativeEngine::default()
        };
        let (instant, unready) = common_instant(&engine, &aws, &tables, &stop).await.unwrap();
        assert_eq!(instant.timestamp(), 2_000);
        assert_eq!(unready.len(), 1);
        assert_eq!(unready[0].0, "B");
        assert!(
            unready[0].1.contains("no latest restorable time"),
            "{}",
            unready[0].1
        );
    }
}
