//! `ddbx completions SHELL` and `ddbx man`: shell completions (clap_complete) and the
//! manual pages (clap_mangen), generated from the same command line the binary parses
//! (`help::command`), so they never fall behind the flags.

use std::io::Write;
use std::path::Path;

use crate::exit;

/// Print the completion script of `shell`.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut cmd = crate::help::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ddbx", &mut out);
    emit(&out)
}

/// Print ddbx(1), or write it and one page per command (ddbx-export(1), ...) into `dir`.
pub fn man(dir: Option<&Path>) -> u8 {
    let cmd = crate::help::command();
    let done = match dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|_| clap_mangen::generate_to(cmd, dir))
            .map(|_| {
                eprintln!("manual pages written to {}", dir.display());
                Vec::new()
            }),
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).map(|_| out)
        }
    };
    match done {
        Ok(out) => emit(&out),
        Err(e) => {
            eprintln!("ddbx: error: {e}");
            exit::USAGE
        }
    }
}

/// Write to stdout; a closed pipe (`ddbx man | head`) is no error.
fn emit(bytes: &[u8]) -> u8 {
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("ddbx: error: {e}");
            exit::USAGE
        }
    }
}
