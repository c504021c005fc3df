//! `ddbx check`: is the app's newest backup a success young enough? One line on stdout
//! (`ok: ...`, `stale: ...`) or the report as JSON, and an exit code per verdict, for
//! cron, systemd `OnFailure=` and monitoring checks.

use ddbx_core::catalog::check::{self, Health, Limits};

use crate::args::{CheckArgs, Global, Output};
use crate::connect::{load_aws_for, reach};
use crate::{exit, metrics, output};

/// The exit code of a verdict (the README's table; 2, 3 and 4 keep their meaning
/// elsewhere and are not used here).
pub fn code(h: Health) -> u8 {
    match h {
        Health::Ok => exit::OK,
        Health::Stale => exit::STALE,
        Health::Failed => exit::FAILED,
        Health::Incomplete => exit::INCOMPLETE,
        Health::RunningTooLong => exit::RUNNING_TOO_LONG,
    }
}

fn duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Run `ddbx check`; returns the exit code.
pub async fn run(g: &Global, a: CheckArgs) -> u8 {
    let limits = Limits {
        max_age: duration(a.max_age),
        max_running: duration(a.max_running),
        deep: a.deep,
        now: chrono::Utc::now(),
    };
    let found = async {
        let aws = load_aws_for(g, &a.to).await?;
        reach(&aws, &[Some(&a.to)]).await?;
        let base = aws.storage.open_existing(&a.to)?;
        check::check(&base, &a.app, g.region.as_deref(), &limits).await
    };
    let report = match found.await {
        Ok(r) => r,
        Err(e) => {
            let code = output::fail(&e);
            if let Some(path) = &a.metrics_file {
                let unknown = check::Report {
                    health: Health::Incomplete,
                    reason: e.to_string(),
                    app: a.app.clone(),
                    region: g.region.clone().unwrap_or_default(),
                    run: None,
                    last_success: None,
                    running: None,
                    files_checked: 0,
                };
                metrics::write_check(path, &unknown, code);
            }
            return code;
        }
    };
    let code = code(report.health);
    if g.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("reports serialize")
        );
    } else {
        println!("{}: {}", report.health.word(), report.reason);
    }
    if let Some(path) = &a.metrics_file {
        metrics::write_check(path, &report, code);
    }
    code
}
