//! `ddbx import` and `ddbx verify`: flags to settings, run, summary.

use ddbx_core::engine::local::LocalEngine;
use ddbx_core::engine::EngineChoice;
use ddbx_core::format::source::Selection;
use ddbx_core::import::{self, ImportSettings};
use ddbx_core::progress::RunProgress;
use ddbx_core::stop::StopSignal;
use ddbx_core::verify::{self, VerifySettings};

use crate::args::{Global, ImportArgs, SourceArgs, VerifyArgs};
use crate::catalog::resolve_from;
use crate::connect::load_aws;
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

/// Run `ddbx import` and return the exit code.
pub async fn run(g: &Global, a: ImportArgs, stop: StopSignal) -> u8 {
    let ready = async {
        let aws = load_aws(g).await?;
        let from = resolve_from(&aws, g, &a.source).await?;
        Ok::<_, ddbx_core::Error>((settings(&a, from, stop)?, aws))
    };
    let (settings, aws) = match ready.await {
        Ok(s) => s,
        Err(e) => return output::fail(&e),
    };
    let runs = RunProgress::default();
    let renderer = progress::start(runs.clone(), !g.no_progress, "write");
    let result = import::run(&aws, &settings, &runs).await;
    renderer.stop().await;
    match result {
        Ok(report) if settings.dry_run => {
            output::import_plan(g.output, &report.steps);
            exit_code(Ok(&report.summary))
        }
        Ok(report) => {
            output::summary(g.output, &report.summary);
            exit_code(Ok(&report.summary))
        }
        Err(e) => output::fail(&e),
    }
}

/// Run `ddbx verify` and return the exit code.
pub async fn verify(g: &Global, a: VerifyArgs, stop: StopSignal) -> u8 {
    let ready = async {
        let aws = load_aws(g).await?;
        let from = resolve_from(&aws, g, &a.source).await?;
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
    match result {
        Ok(report) => {
            output::verdicts(g.output, &report.verdicts);
            exit_code(Ok(&report.summary))
        }
        Err(e) => output::fail(&e),
    }
}
