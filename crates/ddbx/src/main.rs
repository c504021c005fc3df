//! `ddbx`: back up and restore fleets of DynamoDB tables to S3 or a local folder.
//!
//! The binary is a thin skin: it parses flags into the library's settings, renders
//! progress and the final summary, and maps the outcome to an exit code.

mod args;
mod capacity;
mod catalog;
mod check;
mod connect;
mod copy;
mod engine;
mod export;
mod help;
mod import;
mod manual;
mod metrics;
mod output;
mod progress;

use std::process::ExitCode;

/// jemalloc rather than the system allocator: glibc's malloc and free, with threads
/// waiting on its arena locks, were a fifth of an import's CPU against the canned
/// endpoint (profiles in docs/BENCHMARKS.md, issue 16; mimalloc, also tried, doubled an
/// export's memory).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::FromArgMatches;
use ddbx_core::stop::StopSignal;

use args::{Cli, Command};

/// Exit codes, as documented in the README.
pub mod exit {
    /// Everything succeeded.
    pub const OK: u8 = 0;
    /// Usage or configuration error.
    pub const USAGE: u8 = 1;
    /// Another run of this app holds the lock.
    pub const LOCKED: u8 = 2;
    /// Nothing to do, or planning failed.
    pub const PLAN: u8 = 3;
    /// One or more tables failed.
    pub const TABLES_FAILED: u8 = 4;
    /// `check`: the newest success is older than `--max-age`, or there is none.
    pub const STALE: u8 = 5;
    /// `check`: the newest run that ended failed.
    pub const FAILED: u8 = 6;
    /// `check`: the newest run never ended, left no flag or lacks files.
    pub const INCOMPLETE: u8 = 7;
    /// `check`: a run has been going for longer than `--max-running`.
    pub const RUNNING_TOO_LONG: u8 = 8;
}

/// Threads of tokio's blocking pool. object_store's local folders run each file operation
/// there, and the pool otherwise grows a thread for every operation that waits (to 23 in an
/// export of 10,000 tables to a folder; bounded, that export's peak RSS is 5 MB less:
/// docs/BENCHMARKS.md, issue 26); the operations are short writes, renames and reads,
/// which a few threads keep up with.
const BLOCKING_THREADS: usize = 8;

fn main() -> ExitCode {
    // A command line clap refuses is a usage error (exit 1, as the README says), never
    // clap's own 2, which means "another run holds the lock" here; --help and --version
    // exit 0.
    let parsed = help::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if cli.global.verbose {
            "ddbx=debug,ddbx_core=debug"
        } else {
            "ddbx=info,ddbx_core=info"
        })
    });
    // At trace level the SDK logs every request and answer whole: Scan pages and
    // BatchWriteItem bodies, which are customer data. Kept out unless asked for.
    let tracing_all = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("trace"));
    if tracing_all && std::env::var_os("DDBX_TRACE_BODIES").is_none() {
        if let Ok(d) = "aws_smithy_runtime::client::orchestrator=debug".parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::LogWriter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ddbx: cannot start the runtime: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let stop = StopSignal::default();
    let code = runtime.block_on(async {
        tokio::spawn(watch_signals(stop.clone()));
        match cli.command {
            Command::Export(a) => export::run(&cli.global, a, stop).await,
            Command::Import(a) => import::run(&cli.global, a, stop).await,
            Command::Verify(a) => import::verify(&cli.global, a, stop).await,
            Command::Emr(args::EmrCommand::Init { path, force }) => engine::init(&path, force),
            Command::Capacity(args::CapacityCommand::Restore { from }) => {
                capacity::restore(&cli.global, &from).await
            }
            Command::List(a) => catalog::list(&cli.global, a).await,
            Command::Prune(a) => catalog::prune(&cli.global, a).await,
            Command::Copy(a) => copy::run(&cli.global, a).await,
            Command::Check(a) => check::run(&cli.global, a).await,
            Command::Completions { shell } => manual::completions(shell),
            Command::Man { out_dir } => manual::man(out_dir.as_deref()),
        }
    });
    ExitCode::from(code)
}

/// The exit code of a command, in one place: a run's summary (every table succeeded, or
/// matched, or it was only planned: 0; else 4), or the error that ended it.
pub fn exit_code(outcome: Result<&ddbx_core::report::RunSummary, &ddbx_core::Error>) -> u8 {
    use ddbx_core::ErrorKind;
    match outcome {
        Ok(summary) if summary.succeeded() => exit::OK,
        Ok(_) => exit::TABLES_FAILED,
        Err(e) => match e.kind() {
            ErrorKind::Usage => exit::USAGE,
            ErrorKind::Held => exit::LOCKED,
            ErrorKind::Plan => exit::PLAN,
            ErrorKind::Interrupted | ErrorKind::Failed => exit::TABLES_FAILED,
        },
    }
}

/// The first Ctrl-C, SIGTERM, SIGHUP (a dropped SSH session) or SIGQUIT stops the run
/// cleanly (checkpoints, flags, lock); a second one ends the process at once.
async fn watch_signals(stop: StopSignal) {
    use tokio::signal::unix::{signal, SignalKind};
    let watch = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch {name}");
            None
        }
    };
    let (Some(mut term), Some(mut hup), Some(mut quit)) = (
        watch(SignalKind::terminate(), "SIGTERM"),
        watch(SignalKind::hangup(), "SIGHUP"),
        watch(SignalKind::quit(), "SIGQUIT"),
    ) else {
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
            _ = quit.recv() => {}
        }
        if n == 0 {
            tracing::warn!("stopping: finishing the work in hand, writing checkpoints and flags (again to abort at once)");
            stop.stop();
        } else {
            eprintln!("ddbx: aborted");
            std::process::exit(130);
        }
    }
}
