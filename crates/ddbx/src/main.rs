//! `ddbx`: back up and restore fleets of DynamoDB tables to S3 or a local folder.
//!
//! The binary is a thin skin: it parses flags into the library's settings, renders
//! progress and the final summary, and maps the outcome to an exit code.

mod args;
mod export;
mod import;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if cli.global.verbose {
            "ddbx=debug,ddbx_core=debug"
        } else {
            "ddbx=info,ddbx_core=info"
        })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::LogWriter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ddbx: cannot start the runtime: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Export(a) => export::run(&cli.global, a).await,
            Command::Import(a) => import::run(&cli.global, a).await,
            Command::Verify(a) => import::verify(&cli.global, a).await,
        }
    });
    ExitCode::from(code)
}

/// The exit code for a library error that ended a run.
pub fn code_for(err: &ddbx_core::Error) -> u8 {
    use ddbx_core::Error;
    match err {
        Error::Invalid(_) => exit::USAGE,
        Error::Locked(_) => exit::LOCKED,
        Error::Plan(_) => exit::PLAN,
        _ => exit::TABLES_FAILED,
    }
}
