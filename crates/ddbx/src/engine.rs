//! The engine flags (`--engine` and each engine's own), and `ddbx emr init`.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use ddbx_core::engine::emr::{config::EXAMPLE, EmrConfig, EmrEngine, OnInterrupt};
use ddbx_core::engine::local::LocalEngine;
use ddbx_core::engine::native::NativeEngine;
use ddbx_core::engine::native::Poll;
use ddbx_core::engine::EngineChoice;
use ddbx_core::Error;

use crate::args::{EngineArg, EngineArgs, OnInterruptArg};
use crate::exit;

/// The run's engine from its flags: the local engine with `local`'s limits, or EMR with
/// its settings. `to` is the run's location (EMR needs S3).
pub fn choice(a: &EngineArgs, local: LocalEngine, to: Option<&str>) -> Result<EngineChoice, Error> {
    let engine = a.engine.unwrap_or(EngineArg::Local);
    refuse_other_engines_flags(a, engine)?;
    match engine {
        EngineArg::Local => return Ok(EngineChoice::Local(local)),
        EngineArg::Native => {
            let defaults = NativeEngine::default();
            let poll = a.poll_seconds.map(Duration::from_secs_f64);
            return Ok(EngineChoice::Native(NativeEngine {
                max_jobs: a.max_jobs.map_or(defaults.max_jobs, usize::from),
                poll: Poll {
                    first: poll.unwrap_or(defaults.poll.first),
                    max: poll.map_or(defaults.poll.max, |p| p.max(defaults.poll.max)),
                },
                max_wait: a.max_wait.unwrap_or(defaults.max_wait),
                ..defaults
            }));
        }
        EngineArg::Emr => {}
    }
    let cluster_name = a
        .cluster_name
        .clone()
        .ok_or_else(|| Error::Usage("--engine emr needs --cluster-name".into()))?;
    if let Some(to) = to.filter(|t| !t.starts_with("s3://")) {
        return Err(Error::Usage(format!(
            "{to}: EMR clusters read and write S3; with --engine emr the location must be s3://"
        )));
    }
    let config = EmrConfig::load_with(a.emr_config.as_deref(), &a.emr_set)?;
    let on_interrupt = match a.on_interrupt.unwrap_or(OnInterruptArg::Ask) {
        OnInterruptArg::Terminate => OnInterrupt::Terminate,
        OnInterruptArg::Leave => OnInterrupt::Leave,
        OnInterruptArg::Ask if std::io::stdin().is_terminal() => OnInterrupt::Ask(Arc::new(ask)),
        // Nobody to ask (cron): a cluster left behind would go on loading the tables.
        OnInterruptArg::Ask => OnInterrupt::Terminate,
    };
    Ok(EngineChoice::Emr(Box::new(EmrEngine {
        config,
        cluster_name,
        clusters: usize::from(a.clusters.unwrap_or(1)),
        on_interrupt,
    })))
}

/// A flag of another engine than the run's would be ignored: refused, naming each.
fn refuse_other_engines_flags(a: &EngineArgs, engine: EngineArg) -> Result<(), Error> {
    let wrong: Vec<String> = a
        .given()
        .into_iter()
        .filter(|(_, of)| *of != engine)
        .map(|(flag, of)| format!("{flag} is for --engine {}", of.name()))
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{} (this run's engine is {}: it would ignore {})",
        wrong.join(", "),
        engine.name(),
        if wrong.len() == 1 { "it" } else { "them" }
    )))
}

fn ask(clusters: &[String]) -> bool {
    eprint!(
        "\nInterrupted. Terminate the EMR clusters {}? Their unfinished tables fail. [Y/n] ",
        clusters.join(", ")
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return true;
    }
    !answer.trim().eq_ignore_ascii_case("n") && !answer.trim().eq_ignore_ascii_case("no")
}

/// `ddbx emr init PATH`: write the commented example settings.
pub fn init(path: &std::path::Path, force: bool) -> u8 {
    if path.exists() && !force {
        eprintln!(
            "ddbx: {} exists; pass --force to replace it",
            path.display()
        );
        return exit::USAGE;
    }
    match std::fs::write(path, EXAMPLE) {
        Ok(()) => {
            eprintln!(
                "wrote {}: edit it, then pass --engine emr --emr-config {}",
                path.display(),
                path.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("ddbx: {}: {e}", path.display());
            exit::USAGE
        }
    }
}
