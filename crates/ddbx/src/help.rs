//! The command line as clap shows it, built from the flags in `args.rs`: the version
//! with the commit it was built from, and help that says what a person needs first.
//! `-h` is the short form (the flags a first run needs, an example); `--help` is the
//! reference (every flag). Completions and the man page are generated from the same
//! definitions (`manual.rs`).

use clap::{Arg, Command, CommandFactory};

use crate::args::Cli;

/// `0.1.0 (commit 591e10f1a2b3 2026-12-05)`: the commit comes from build.rs.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DDBX_COMMIT"),
    ")"
);

/// The flags of every command that `-h` shows (all are in `--help`).
const SHORT_GLOBALS: &[&str] = &["profile", "region", "output", "verbose"];

/// The export flags `-h` shows.
const SHORT_EXPORT: &[&str] = &[
    "app",
    "tables",
    "table_names",
    "to",
    "excludes",
    "read_ratio",
    "dry_run",
    "resume",
];

const EXPORT_ABOUT: &str = "Export every selected table of an app to a dated run folder";

const EXPORT_LONG_ABOUT: &str = "\
Export every selected table of an app to a dated run folder, <to>/<region>/<app>/YYYY/MM/DD/HH_MM.SS.

A first export needs three flags:
  --app NAME               a name for the set of tables (one run per app at a time)
  --tables PREFIX_OR_GLOB  which tables: BILLING_ takes every table whose name starts with it, 'BILLING_*' is a glob
  --to LOCATION            where the runs go: a folder, or s3://bucket/prefix

Example:
  ddbx export --app billing --tables BILLING_ --to s3://backups/ddb

The AWS account and region are the standard chain's (environment, ~/.aws files, SSO, instance role), or --profile and --region. Add --dry-run to see the plan first. Each table is read at --read-ratio (0.5) of its read capacity.";

const EXPORT_AFTER_SHORT: &str = "\
Example:
  ddbx export --app billing --tables BILLING_ --to s3://backups/ddb

`ddbx export --help` lists every flag: formats, rate, capacity spikes, engines, locks, metrics.";

const EXPORT_AFTER_LONG: &str = "\
More examples:
  ddbx export --app billing --tables BILLING_ --exclude BILLING_tmp --to ./backups --dry-run
  ddbx export --app billing --table BILLING_orders --table BILLING_users --to s3://backups/ddb --read-ratio 0.25
  ddbx export --resume s3://backups/ddb/us-east-1/billing/2026/11/24/03_00.00
  ddbx export --engine native --app billing --tables BILLING_ --to s3://backups/ddb --incremental

Exit codes: 0 every table exported, 1 usage or configuration, 2 the app's lock is held or the run root is taken, 3 nothing to export, 4 a table failed.";

/// The whole command line: `args.rs`'s flags, with the version and the help above.
pub fn command() -> Command {
    Cli::command()
        .version(VERSION)
        .mut_args(|a| short_unless(a, SHORT_GLOBALS))
        .mut_subcommand("export", |c| {
            c.about(EXPORT_ABOUT)
                .long_about(EXPORT_LONG_ABOUT)
                .after_help(EXPORT_AFTER_SHORT)
                .after_long_help(EXPORT_AFTER_LONG)
                .mut_args(|a| short_unless(a, SHORT_EXPORT))
        })
}

/// `a`, left out of `-h` unless it is one of `shown`.
fn short_unless(a: Arg, shown: &[&str]) -> Arg {
    let keep = shown.contains(&a.get_id().as_str());
    a.hide_short_help(!keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn help(args: &[&str]) -> String {
        let err = command().try_get_matches_from(args).unwrap_err();
        err.render().to_string()
    }

    #[test]
    fn the_command_line_is_consistent_and_names_what_it_shows() {
        let c = command();
        c.clone().debug_assert();
        let export = c.find_subcommand("export").unwrap();
        let ids: Vec<&str> = export
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .collect();
        for id in SHORT_EXPORT {
            assert!(ids.contains(id), "export has no flag {id}: {ids:?}");
        }
        let globals: Vec<&str> = c.get_arguments().map(|a| a.get_id().as_str()).collect();
        for id in SHORT_GLOBALS {
            assert!(globals.contains(id), "no global flag {id}: {globals:?}");
        }
    }

    #[test]
    fn export_help_opens_with_the_three_flags_and_an_example() {
        let long = help(&["ddbx", "export", "--help"]);
        let first: Vec<&str> = long.lines().take(8).collect();
        let first = first.join("\n");
        for flag in ["--app NAME", "--tables PREFIX_OR_GLOB", "--to LOCATION"] {
            assert!(
                first.contains(flag),
                "{flag} not among the first lines:\n{first}"
            );
        }
        assert!(long.find("ddbx export --app billing").unwrap() < long.find("Usage:").unwrap());
        // The reference: every flag, the engine's and the globals' too.
        for flag in [
            "--segments",
            "--max-jobs",
            "--s3-endpoint-url",
            "--metrics-file",
        ] {
            assert!(long.contains(flag), "--help lacks {flag}");
        }
        let short = help(&["ddbx", "export", "-h"]);
        assert!(
            short.contains("--app") && short.contains("--to <LOCATION>"),
            "{short}"
        );
        assert!(
            short.contains("ddbx export --app billing --tables BILLING_ --to"),
            "{short}"
        );
        for flag in [
            "--segments",
            "--max-jobs",
            "--s3-endpoint-url",
            "--file-bytes",
        ] {
            assert!(!short.contains(flag), "-h shows {flag}:\n{short}");
        }
        assert!(
            short.lines().count() * 2 < long.lines().count(),
            "-h is the short form"
        );
    }

    #[test]
    fn the_version_names_the_commit() {
        let v = help(&["ddbx", "--version"]);
        assert!(
            v.starts_with(&format!("ddbx {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{v}"
        );
    }
}
