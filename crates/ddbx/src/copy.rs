//! `ddbx copy`: a run (or an app's runs) to another bucket, account, region or folder.

use ddbx_core::copy::{self, CopySettings, CopySource, Transfer};
use ddbx_core::run::lock::LockSettings;

use crate::args::{lock_request, CopyArgs, Global, Output};
use crate::connect::load_aws;
use crate::progress::human_bytes;
use crate::{exit, output};

/// Run `ddbx copy`; returns the exit code.
pub async fn run(g: &Global, a: CopyArgs) -> u8 {
    let done = async {
        // The source is read as the run's credentials reach S3 (--profile, --role-arn);
        // the target is written with --s3-profile / --s3-role-arn when given, in
        // --to-region when given.
        let source_g = Global {
            s3_profile: None,
            s3_role_arn: None,
            s3_external_id: None,
            ..g.clone()
        };
        let target_g = Global {
            s3_region: a.to_region.clone().or(g.s3_region.clone()),
            ..g.clone()
        };
        let source = load_aws(&source_g).await?;
        let target = load_aws(&target_g).await?;
        let same_identity = g.s3_profile.is_none() && g.s3_role_arn.is_none();
        let same_region = a
            .to_region
            .as_ref()
            .is_none_or(|r| *r == g.s3_region.clone().unwrap_or_else(|| source.region.clone()));
        let transfer = if same_identity && same_region && !a.recover_deleted {
            Transfer::ServerSide
        } else {
            Transfer::Streamed
        };
        let reading = if a.recover_deleted {
            source.storage.recovering()
        } else {
            source.storage.clone()
        };
        let settings =
            CopySettings {
                source: match (&a.from, &a.app, &a.from_base) {
                    (Some(run), _, _) => CopySource::Run(run.clone()),
                    (None, Some(app), Some(base)) => CopySource::App {
                        app: app.clone(),
                        base: base.clone(),
                    },
                    _ => return Err(ddbx_core::Error::Usage(
                        "name the run (--from RUN_ROOT) or the app (--app APP --from-base BASE)"
                            .into(),
                    )),
                },
                to: a.to.clone(),
                object_lock: lock_request(&a.lock),
                workers: a.workers,
                dry_run: a.dry_run,
                lock: LockSettings {
                    break_stale: a.break_stale_lock,
                    ..LockSettings::default()
                },
                transfer,
                region: g.region.clone(),
            };
        copy::run(&reading, &target.storage, &settings).await
    };
    let report = match done.await {
        Ok(r) => r,
        Err(e) => return output::fail(&e),
    };
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("reports serialize")
        );
        return exit::OK;
    }
    if report.runs.is_empty() {
        println!("nothing to copy: the target has every successful run");
    }
    for r in &report.runs {
        let how = if r.server_side {
            "server-side"
        } else {
            "streamed"
        };
        match r.status.as_str() {
            "present" => println!("{:<11} {} (already there)", "present", r.to),
            _ => println!(
                "{:<11} {} -> {}  {} objects, {} ({how}; {} data files checked, {} already there)",
                r.status,
                r.from,
                r.to,
                r.objects,
                human_bytes(r.bytes),
                r.files_checked,
                r.already_there
            ),
        }
    }
    exit::OK
}
