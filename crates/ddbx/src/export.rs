//! `ddbx export`: flags to settings, run, summary, exit code.

use std::time::Duration;

use ddbx_core::aws::{Aws, AwsSettings};
use ddbx_core::engine::local::LocalEngine;
use ddbx_core::export::{self, ExportSettings};
use ddbx_core::plan::{Compression, DataFormat};
use ddbx_core::progress::RunProgress;
use ddbx_core::run::lock::LockSettings;
use ddbx_core::run::stop::StopSignal;
use ddbx_core::store::Encryption;

use crate::args::{CompressionArg, ExportArgs, FormatArg, Global};
use crate::{exit, output, progress};

/// Load the run's one AWS configuration from the global flags.
pub async fn load_aws(g: &Global) -> Result<Aws, ddbx_core::Error> {
    let s3_encryption = match &g.sse {
        Some(sse) => Some(Encryption::parse(sse, g.sse_kms_key_id.clone())?),
        None if g.sse_kms_key_id.is_some() => {
            return Err(ddbx_core::Error::Invalid(
                "--sse-kms-key-id needs --sse aws:kms".into(),
            ))
        }
        None => None,
    };
    Aws::load(
        AwsSettings {
            profile: g.profile.clone(),
            region: g.region.clone(),
            endpoint_url: g.endpoint_url.clone(),
            s3_endpoint_url: g.s3_endpoint_url.clone(),
            s3_region: g.s3_region.clone(),
            s3_encryption,
            expected_bucket_owner: g.expected_bucket_owner.clone(),
            request_timeout: g.request_timeout.map(Duration::from_secs_f64),
            emr_endpoint_url: g.emr_endpoint_url.clone(),
            autoscaling_endpoint_url: g.autoscaling_endpoint_url.clone(),
        },
        ddbx_core::clock::system(),
    )
    .await
}

fn settings(a: &ExportArgs, stop: StopSignal) -> Result<ExportSettings, ddbx_core::Error> {
    let emr = crate::emr::emr_run(&a.engine, a.to.as_deref())?;
    if emr.is_some() && a.resume.is_some() {
        return Err(ddbx_core::Error::Invalid(
            "--resume continues local-engine runs; rerun an EMR export".into(),
        ));
    }
    let format = match a.format {
        // EMR clusters write the connector's format.
        _ if emr.is_some() => Some(DataFormat::Emr),
        None => None,
        Some(FormatArg::DynamodbJson) => Some(DataFormat::DynamodbJson),
        Some(FormatArg::Ion) => Some(DataFormat::Ion),
        Some(FormatArg::Emr) => Some(DataFormat::Emr),
    };
    Ok(ExportSettings {
        app: a.app.clone().unwrap_or_default(),
        tables: a.tables.clone(),
        table_names: a.table_names.clone(),
        excludes: a.excludes.clone(),
        exclude_file: a.exclude_file.clone(),
        to: a.to.clone().unwrap_or_default(),
        read_ratio: a.read_ratio,
        max_read_units: a.max_read_units,
        segments: a.segments,
        format,
        compression: a.compression.map(|c| match c {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::None => Compression::None,
        }),
        file_items: a.file_items,
        file_bytes: a.file_bytes,
        engine: LocalEngine {
            parallel_tables: a.parallel_tables.max(1),
            workers: a.workers.max(1),
        },
        dry_run: a.dry_run,
        lock: LockSettings {
            break_stale: a.break_stale_lock,
            stale_after: Duration::from_secs(a.stale_lock_minutes * 60),
            ..LockSettings::default()
        },
        stop,
        resume: a.resume.clone(),
        run_time: a.run_time,
        emr,
        spike_read_units: a.spike_read_units,
    })
}

/// Run `ddbx export` and return the exit code.
pub async fn run(g: &Global, a: ExportArgs, stop: StopSignal) -> u8 {
    let aws = match load_aws(g).await {
        Ok(aws) => aws,
        Err(e) => return output::fail(&e),
    };
    let settings = match settings(&a, stop) {
        Ok(s) => s,
        Err(e) => return output::fail(&e),
    };
    let runs = RunProgress::default();
    let renderer = progress::start(runs.clone(), !g.no_progress, "read");
    let result = export::run(&aws, &settings, &runs).await;
    renderer.stop().await;
    match result {
        Ok(report) => {
            if settings.dry_run {
                output::plan(g.output, &report.plan, &report.summary);
                return if report.summary.succeeded() {
                    exit::OK
                } else {
                    exit::TABLES_FAILED
                };
            }
            output::summary(g.output, &report.summary);
            if report.summary.succeeded() {
                exit::OK
            } else {
                exit::TABLES_FAILED
            }
        }
        Err(e) => output::fail(&e),
    }
}
