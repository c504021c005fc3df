//! `ddbx list`, `ddbx prune`, and `--from latest`: what a base holds.

use ddbx_core::aws::Aws;
use ddbx_core::catalog::{self, prune, RunEntry};
use ddbx_core::run::lock::LockSettings;

use crate::args::{Global, ListArgs, Output, PruneArgs, SourceArgs};
use crate::connect::{load_aws_for, reach};
use crate::progress::human_bytes;
use crate::{exit, output};

/// Run `ddbx list`; returns the exit code.
pub async fn list(g: &Global, a: ListArgs) -> u8 {
    let found = async {
        let aws = load_aws_for(g, &a.to).await?;
        reach(&aws, &[Some(&a.to)]).await?;
        let base = aws.storage.open_existing(&a.to)?;
        let filter = catalog::Filter {
            app: a.app.clone(),
            region: g.region.clone(),
        };
        if a.include_deleted {
            let recovered = aws.storage.recovering().open_existing(&a.to)?;
            catalog::list_including_deleted(&recovered, &base, &filter).await
        } else {
            catalog::list(&base, &filter).await
        }
    };
    let runs = match found.await {
        Ok(r) => r,
        Err(e) => return output::fail(&e),
    };
    if g.output == Output::Json {
        return output::print_json(&runs);
    }
    if runs.is_empty() {
        eprintln!("{}: no runs", a.to);
        return exit::OK;
    }
    println!(
        "{:<20} {:<16} {:<12} {:<7} {:<7} {:<11} {:>6} {:>12} {:>10}  RUN",
        "TIME (UTC)", "APP", "REGION", "JOB", "ENGINE", "STATUS", "TABLES", "ITEMS", "BYTES"
    );
    for r in runs.iter() {
        let r = match r {
            Ok(r) => r,
            Err(e) => return output::fail(&e),
        };
        for job in std::iter::once(&r.backup).chain(&r.restore) {
            let items = if job.items_unknown {
                format!("≥{}", job.items)
            } else {
                job.items.to_string()
            };
            println!(
                "{:<20} {:<16} {:<12} {:<7} {:<7} {:<11} {:>6} {:>12} {:>10}  {}",
                r.time.format("%Y-%m-%d %H:%M:%S"),
                r.app,
                r.region,
                job.job,
                job.engine.as_deref().unwrap_or("-"),
                job.status.word(),
                job.tables,
                items,
                human_bytes(job.bytes),
                r.run_root
            );
            for c in &job.continues {
                println!("{:<20} continues {c}", "");
            }
            if let Some(l) = &job.object_lock {
                let now = chrono::Utc::now();
                let state = if l.retain_until > now {
                    "retained"
                } else {
                    "was retained"
                };
                println!(
                    "{:<20} {state} until {} (Object Lock {}, {} days)",
                    "",
                    l.retain_until.format("%Y-%m-%d %H:%M:%S UTC"),
                    l.mode.name(),
                    l.days
                );
            }
            if let Some(from) = &job.copied_from {
                println!("{:<20} a copy of {from}", "");
            }
            if let Some(p) = &job.problem {
                println!("{:<20} {p}", "");
            }
        }
        if let Some(d) = &r.deleted {
            println!(
                "{:<20} DELETED: {} of its {} objects deleted (delete markers); import --recover-deleted reads them",
                "", d.objects, d.of
            );
        }
    }
    exit::OK
}

/// Run `ddbx prune`; returns the exit code.
pub async fn prune(g: &Global, a: PruneArgs) -> u8 {
    let done = async {
        let aws = load_aws_for(g, &a.to).await?;
        reach(&aws, &[Some(&a.to)]).await?;
        let base = aws.storage.open_existing(&a.to)?;
        let retention = prune::Retention {
            keep_last: a.keep_last as usize,
            keep_days: a.keep_days,
            dry_run: a.dry_run,
            now: chrono::Utc::now(),
        };
        let lock = LockSettings {
            break_stale: a.break_stale_lock,
            ..LockSettings::default()
        };
        prune::prune(&base, &a.app, g.region.as_deref(), &retention, lock).await
    };
    let report = match done.await {
        Ok(r) => r,
        Err(e) => return output::fail(&e),
    };
    let code = if report.errors.is_empty() {
        exit::OK
    } else {
        exit::TABLES_FAILED
    };
    if g.output == Output::Json {
        return match output::print_json(&report) {
            exit::OK => code,
            failed => failed,
        };
    }
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for d in report.runs.iter() {
        let d = match d {
            Ok(d) => d,
            Err(e) => return output::fail(&e),
        };
        if d.delete {
            println!(
                "{verb:<12} {}  {:<11} {} objects, {}",
                d.run_root,
                d.status.word(),
                d.objects,
                human_bytes(d.bytes)
            );
        } else {
            println!(
                "{:<12} {}  {:<11} {}",
                "keep",
                d.run_root,
                d.status.word(),
                d.kept_because.join("; ")
            );
        }
    }
    for t in &report.chains_updated {
        println!("chain of {t}: links to deleted runs dropped");
    }
    println!(
        "{}: {verb} {} of {} runs, {} objects, {}",
        report.app_dir,
        report.runs_deleted,
        report.runs.len(),
        report.objects,
        human_bytes(report.bytes)
    );
    for e in &report.errors {
        println!("error: {e}");
    }
    code
}

/// `--from` as given, or for `latest` the newest successful run (for an incremental one,
/// the app's folder with the instant to replay its chains to). Says which run it took.
pub async fn resolve_from(
    aws: &Aws,
    g: &Global,
    s: &SourceArgs,
) -> Result<(String, Option<chrono::DateTime<chrono::Utc>>), ddbx_core::Error> {
    let at = s.until.or(s.at);
    if !catalog::is_latest(&s.from) {
        if s.to.is_some() || s.app.is_some() {
            return Err(ddbx_core::Error::Usage(
                "--to and --app go with --from latest".into(),
            ));
        }
        return Ok((s.from.clone(), at));
    }
    let (Some(to), Some(app)) = (&s.to, &s.app) else {
        return Err(ddbx_core::Error::Usage(format!(
            "--from {}: name the base and the app with --to BASE --app APP",
            s.from
        )));
    };
    if at.is_some() {
        return Err(ddbx_core::Error::Usage(
            "--from latest takes the newest run as it is; for a point in time use --from <app folder> --at TIME".into(),
        ));
    }
    let storage = if s.recover_deleted {
        aws.storage.recovering()
    } else {
        aws.storage.clone()
    };
    let base = storage.open_existing(to)?;
    let latest = catalog::latest(&base, app, g.region.as_deref()).await?;
    let RunEntry { run_root, time, .. } = &latest.run;
    match latest.replay_at {
        Some(at) => {
            eprintln!(
                "latest successful run: {run_root} ({time}), incremental: replaying {} to {at}",
                latest.app_dir
            );
            Ok((latest.app_dir.clone(), Some(at)))
        }
        None => {
            eprintln!("latest successful run: {run_root} ({time})");
            Ok((run_root.clone(), None))
        }
    }
}
