//! `ddbx export`: flags to settings, run, summary.

use std::time::Duration;

use ddbx_core::engine::local::LocalEngine;
use ddbx_core::export::{self, ExportSettings};
use ddbx_core::plan::DataFormat;
use ddbx_core::progress::RunProgress;
use ddbx_core::report::RunSummary;
use ddbx_core::run::lock::LockSettings;
use ddbx_core::stop::StopSignal;

use clap::ValueEnum;

use crate::args::{EngineArg, ExportArgs, Global};
use crate::connect::{load_aws, reach};
use crate::{exit_code, output, progress};

fn settings(a: &ExportArgs, stop: StopSignal) -> Result<ExportSettings, ddbx_core::Error> {
    let local = LocalEngine {
        parallel_tables: a.parallel_tables,
        workers: a.workers,
    };
    let mut engine = crate::engine::choice(&a.engine, local, a.to.as_deref())?;
    match &mut engine {
        ddbx_core::engine::EngineChoice::Native(n) => {
            n.enable_pitr = a.enable_pitr;
            n.incremental = a.incremental;
            n.export_time = a.export_time;
            n.deep_check = a.deep;
        }
        _ if a.enable_pitr || a.incremental || a.export_time.is_some() || a.deep => {
            return Err(ddbx_core::Error::Usage(
                "--enable-pitr, --incremental, --export-time and --deep need --engine native"
                    .into(),
            ))
        }
        _ => {}
    }
    if matches!(engine, ddbx_core::engine::EngineChoice::Emr(_))
        && (a.file_items.is_some() || a.file_bytes.is_some())
    {
        return Err(ddbx_core::Error::Usage(
            "--file-items and --file-bytes size the local engine's files; on EMR each map task writes one file (set dynamodb.scan.segments with --segments to have more, smaller ones)".into(),
        ));
    }
    Ok(ExportSettings {
        object_lock: crate::args::lock_request(&a.object_lock),
        resource_policy: a.resource_policy,
        app: a.app.clone().unwrap_or_default(),
        tables: a.tables.clone(),
        table_names: a.table_names.clone(),
        excludes: a.excludes.clone(),
        exclude_file: a.exclude_file.clone(),
        to: a.to.clone().unwrap_or_default(),
        read_ratio: a.read_ratio,
        max_read_units: a.max_read_units,
        segments: a.segments,
        format: a.format.map(DataFormat::from),
        compression: a.compression,
        file_items: a.file_items,
        file_bytes: a.file_bytes,
        engine,
        dry_run: a.dry_run,
        lock: LockSettings {
            break_stale: a.break_stale_lock,
            stale_after: Duration::from_secs(a.stale_lock_minutes * 60),
            ..LockSettings::default()
        },
        stop,
        resume: a.resume.clone(),
        run_time: a.run_time,
        allow_future_run_time: a.allow_future_run_time,
        spike_read_units: a.spike_read_units,
    })
}

/// Run `ddbx export` and return the exit code (and write `--metrics-file`).
pub async fn run(g: &Global, a: ExportArgs, stop: StopSignal) -> u8 {
    // A dry run is no backup: it leaves the metrics of the last real run as they are.
    let metrics_file = a.metrics_file.clone().filter(|_| !a.dry_run);
    let app = a.app.clone().unwrap_or_default();
    crate::metrics::measured("export", metrics_file, &app, g, execute(g, a, stop)).await
}

/// The export itself: its exit code, and its summary when it got that far.
async fn execute(g: &Global, mut a: ExportArgs, stop: StopSignal) -> (u8, Option<RunSummary>) {
    // `--resume RUN` without `--engine`: the engine that made the run, when it resumes its
    // runs (the native engine; the local one is the default; an EMR run is refused as
    // such by the resume itself).
    let mut loaded = None;
    if let (Some(root), None) = (&a.resume, a.engine.engine) {
        let found = match load_aws(g).await {
            Ok(aws) => match reach(&aws, &[Some(root)]).await {
                Ok(()) => export::engine_of(&aws, root).await.map(|e| (aws, e)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match found {
            Ok((aws, name)) => {
                a.engine.engine = EngineArg::from_str(&name, true)
                    .ok()
                    .filter(|e| *e == EngineArg::Native);
                loaded = Some(aws);
            }
            Err(e) => return (output::fail(&e), None),
        }
    }
    let settings = match settings(&a, stop) {
        Ok(s) => s,
        Err(e) => return (output::fail(&e), None),
    };
    let aws = match loaded {
        Some(aws) => aws,
        None => {
            let ready = async {
                let aws = load_aws(g).await?;
                // A dry run writes nothing: its destination need not exist yet.
                let to =
                    a.to.as_deref()
                        .or(a.resume.as_deref())
                        .filter(|_| !a.dry_run);
                reach(&aws, &[to, a.exclude_file.as_deref()]).await?;
                Ok::<_, ddbx_core::Error>(aws)
            };
            match ready.await {
                Ok(aws) => aws,
                Err(e) => return (output::fail(&e), None),
            }
        }
    };
    let runs = RunProgress::default();
    let renderer = progress::start(runs.clone(), !g.no_progress, "read");
    let result = export::run(&aws, &settings, &runs).await;
    renderer.stop().await;
    // Credentials refused or the endpoint never reached: one line, not a failure per table.
    if let Some(e) = aws.stopped() {
        return (output::fail(&e), result.ok().map(|r| r.summary));
    }
    match result {
        Ok(report) if settings.dry_run => {
            output::plan(g.output, &report.plan, &report.summary);
            (exit_code(Ok(&report.summary)), None)
        }
        Ok(report) => {
            output::summary(g.output, &report.summary);
            (exit_code(Ok(&report.summary)), Some(report.summary))
        }
        Err(e) => (output::fail(&e), None),
    }
}
