//! `ddbx import` and `ddbx verify`: flags to settings, run, summary.

use ddbx_core::aws::Aws;
use ddbx_core::catalog;
use ddbx_core::engine::local::LocalEngine;
use ddbx_core::engine::EngineChoice;
use ddbx_core::format::source::Selection;
use ddbx_core::import::{self, ImportSettings};
use ddbx_core::progress::RunProgress;
use ddbx_core::report::RunSummary;
use ddbx_core::stop::StopSignal;
use ddbx_core::verify::{self, VerifySettings};

use crate::args::{Global, ImportArgs, SourceArgs, VerifyArgs};
use crate::catalog::resolve_from;
use crate::connect::{load_aws, reach};
use crate::{exit_code, output, progress};

/// The export and its tables, from the flags import and verify share.
fn selection(
    s: &SourceArgs,
    (from, at): (String, Option<chrono::DateTime<chrono::Utc>>),
) -> Result<Selection, ddbx_core::Error> {
    let table_map = s
        .table_map
        .iter()
        .map(|m| {
            m.split_once('=')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| ddbx_core::Error::Usage(format!("--table-map {m:?}: use SRC=DST")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Selection {
        from,
        tables: s.tables.clone(),
        excludes: s.excludes.clone(),
        table_map,
        target_table: s.target_table.clone(),
        format: s.format,
        at,
        recover_deleted: s.recover_deleted,
    })
}

fn local(s: &SourceArgs) -> LocalEngine {
    LocalEngine {
        parallel_tables: s.parallel_tables,
        workers: s.workers,
    }
}

fn settings(
    a: &ImportArgs,
    from: (String, Option<chrono::DateTime<chrono::Utc>>),
    stop: StopSignal,
) -> Result<ImportSettings, ddbx_core::Error> {
    let engine = crate::engine::choice(&a.engine, local(&a.source), Some(&from.0))?;
    if let EngineChoice::Native(n) = &engine {
        if n.max_jobs > ddbx_core::engine::native::quota::MAX_IMPORT_JOBS {
            return Err(ddbx_core::Error::Usage(format!(
                "--max-jobs {}: DynamoDB runs {} imports at once per account at most",
                n.max_jobs,
                ddbx_core::engine::native::quota::MAX_IMPORT_JOBS
            )));
        }
    }
    if a.source.recover_deleted && !matches!(engine, EngineChoice::Local(_)) {
        return Err(ddbx_core::Error::Usage(
            "--recover-deleted reads past delete markers in this process; EMR and DynamoDB's import service read S3 themselves: use --engine local, or `ddbx copy --recover-deleted` the run to a bucket first".into(),
        ));
    }
    if matches!(engine, EngineChoice::Emr(_)) && a.resume {
        return Err(ddbx_core::Error::Usage(
            "--resume continues local-engine imports; rerun an EMR import".into(),
        ));
    }
    Ok(ImportSettings {
        source: selection(&a.source, from)?,
        write_ratio: a.write_ratio,
        max_write_units: a.max_write_units,
        create_missing: a.create_missing,
        no_settings: a.no_settings,
        no_ramp: a.no_ramp,
        engine,
        dry_run: a.dry_run,
        resume: a.resume,
        no_validate_first: a.no_validate_first,
        stop,
        spike_write_units: a.spike_write_units,
        state_to: a.state_to.clone(),
    })
}

/// Run `ddbx import` and return the exit code (and write `--metrics-file`).
pub async fn run(g: &Global, a: ImportArgs, stop: StopSignal) -> u8 {
    let metrics_file = a.metrics_file.clone().filter(|_| !a.dry_run);
    let app = a.source.app.clone().unwrap_or_default();
    crate::metrics::measured("import", metrics_file, &app, g, execute(g, a, stop)).await
}

/// The AWS clients of an import or a verify, once the locations it reads answer, and
/// the export it takes (`--from latest` resolved).
async fn connect(g: &Global, s: &SourceArgs) -> Result<(Aws, FromRun), ddbx_core::Error> {
    let aws = load_aws(g).await?;
    let from = (!catalog::is_latest(&s.from)).then_some(s.from.as_str());
    reach(&aws, &[from, s.to.as_deref()]).await?;
    let from = resolve_from(&aws, g, s).await?;
    Ok((aws, from))
}

/// `--from` resolved, with the instant to replay to.
type FromRun = (String, Option<chrono::DateTime<chrono::Utc>>);

/// The import itself: its exit code, and its summary when it got that far.
async fn execute(g: &Global, a: ImportArgs, stop: StopSignal) -> (u8, Option<RunSummary>) {
    let ready = async {
        let (aws, from) = connect(g, &a.source).await?;
        reach(&aws, &[a.state_to.as_deref()]).await?;
        Ok::<_, ddbx_core::Error>((settings(&a, from, stop)?, aws))
    };
    let (settings, aws) = match ready.await {
        Ok(s) => s,
        Err(e) => return (output::fail(&e), None),
    };
    let runs = RunProgress::default();
    let renderer = progress::start(runs.clone(), !g.no_progress, "write");
    let result = import::run(&aws, &settings, &runs).await;
    renderer.stop().await;
    // Credentials refused or the endpoint never reached: one line, not a failure per table.
    if let Some(e) = aws.stopped() {
        return (output::fail(&e), result.ok().map(|r| r.summary));
    }
    match result {
        Ok(report) if settings.dry_run => {
            output::import_plan(g.output, &report.steps);
            (exit_code(Ok(&report.summary)), None)
        }
        Ok(report) => {
            output::summary(g.output, &report.summary);
            (exit_code(Ok(&report.summary)), Some(report.summary))
        }
        Err(e) => (output::fail(&e), None),
    }
}

/// Run `ddbx verify` and return the exit code.
pub async fn verify(g: &Global, a: VerifyArgs, stop: StopSignal) -> u8 {
    let ready = async {
        let (aws, from) = connect(g, &a.source).await?;
        Ok::<_, ddbx_core::Error>((selection(&a.source, from)?, aws))
    };
    let (source, aws) = match ready.await {
        Ok(s) => s,
        Err(e) => return output::fail(&e),
    };
    let settings = VerifySettings {
        source,
        read_ratio: a.read_ratio,
        max_read_units: a.max_read_units,
        deep: a.deep,
        engine: local(&a.source),
        stop,
    };
    let runs = RunProgress::default();
    let renderer = progress::start(runs.clone(), !g.no_progress, "read");
    let result = verify::run(&aws, &settings, &runs).await;
    renderer.stop().await;
    if let Some(e) = aws.stopped() {
        return output::fail(&e);
    }
    match result {
        Ok(report) => {
            output::verdicts(g.output, &report.verdicts);
            exit_code(Ok(&report.summary))
        }
        Err(e) => output::fail(&e),
    }
}
