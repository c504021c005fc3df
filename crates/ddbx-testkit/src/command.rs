//! `ddbx` as a test runs it: a builder of its command line that reads like the command a
//! user types, and an outcome whose exit code has a name ([`Exit`]) and whose `--output
//! json` summary is the library's own [`RunSummary`] (a field renamed or retyped there is a
//! compile error here, not a `null` compared with a number).
//!
//! ```ignore
//! let summary = env
//!     .cmd()
//!     .export()
//!     .app("app")
//!     .tables(&env.prefix)
//!     .to(&base)
//!     .run()
//!     .expect(Exit::Ok)
//!     .summary();
//! assert_eq!(summary.items, 40);
//! ```

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use ddbx_core::report::{RunSummary, TableReport, TableStatus};
use ddbx_core::verify::Verdict;
use serde::Deserialize;

/// How `ddbx` ended: its exit codes, by the names the README gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every table succeeded (verify: every table matches).
    Ok,
    /// 1: a usage or configuration error.
    Usage,
    /// 2: another run of the app holds the lock, or the run root already holds a run.
    Locked,
    /// 3: nothing to export or import, or planning failed.
    Plan,
    /// 4: one or more tables failed (verify: differ), or the run could not write its files.
    TablesFailed,
    /// 130: a second stop signal aborted it at once.
    Aborted,
    /// Ended by a signal (SIGKILL), no code.
    Killed,
    /// Any other code (never documented: always a bug).
    Other(i32),
}

impl Exit {
    /// The exit of a finished process.
    pub fn of(status: std::process::ExitStatus) -> Self {
        match status.code() {
            Some(0) => Exit::Ok,
            Some(1) => Exit::Usage,
            Some(2) => Exit::Locked,
            Some(3) => Exit::Plan,
            Some(4) => Exit::TablesFailed,
            Some(130) => Exit::Aborted,
            Some(n) => Exit::Other(n),
            None => Exit::Killed,
        }
    }

    /// The documented code (`None` for [`Exit::Killed`]).
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Ok => Some(0),
            Exit::Usage => Some(1),
            Exit::Locked => Some(2),
            Exit::Plan => Some(3),
            Exit::TablesFailed => Some(4),
            Exit::Aborted => Some(130),
            Exit::Other(n) => Some(n),
            Exit::Killed => None,
        }
    }
}

/// A `ddbx` command line being built. Every method appends what its name says; the
/// subcommands ([`export`](Self::export), ...) come after the global flags the
/// constructor gave.
pub struct Ddbx {
    cmd: Command,
    shown: Vec<String>,
}

impl Ddbx {
    /// `ddbx` aimed at these DynamoDB and S3 endpoints, with test credentials and `home` as
    /// its HOME ([`crate::ddbx_command`]).
    pub fn new(dynamodb: &str, s3: &str, home: &Path) -> Self {
        Self::from_command(crate::ddbx_command(dynamodb, s3, home))
    }

    /// A builder continuing a prepared command.
    pub fn from_command(cmd: Command) -> Self {
        Self {
            cmd,
            shown: Vec::new(),
        }
    }

    /// One argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.shown.push(a.as_ref().to_string_lossy().into_owned());
        self.cmd.arg(a);
        self
    }

    /// Arguments.
    pub fn args<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Self::arg)
    }

    /// A flag and its value (`--app`, `app`).
    pub fn flag(self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.arg(name).arg(value)
    }

    /// An environment variable of the process.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// An environment variable the process does not get.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// `export`.
    pub fn export(self) -> Self {
        self.arg("export")
    }

    /// `import`.
    pub fn import(self) -> Self {
        self.arg("import")
    }

    /// `verify`.
    pub fn verify(self) -> Self {
        self.arg("verify")
    }

    /// `list`.
    pub fn list(self) -> Self {
        self.arg("list")
    }

    /// `prune`.
    pub fn prune(self) -> Self {
        self.arg("prune")
    }

    /// `--app APP`.
    pub fn app(self, app: &str) -> Self {
        self.flag("--app", app)
    }

    /// `--tables PATTERN`.
    pub fn tables(self, pattern: &str) -> Self {
        self.flag("--tables", pattern)
    }

    /// `--table NAME`.
    pub fn table(self, name: &str) -> Self {
        self.flag("--table", name)
    }

    /// `--to BASE`.
    pub fn to(self, base: impl AsRef<OsStr>) -> Self {
        self.flag("--to", base)
    }

    /// `--from RUN`.
    pub fn from(self, run: impl AsRef<OsStr>) -> Self {
        self.flag("--from", run)
    }

    /// `--resume RUN`.
    pub fn resume(self, run: impl AsRef<OsStr>) -> Self {
        self.flag("--resume", run)
    }

    /// `--table-map FROM=TO`.
    pub fn table_map(self, from: &str, to: &str) -> Self {
        self.flag("--table-map", format!("{from}={to}"))
    }

    /// `--create-missing`.
    pub fn create_missing(self) -> Self {
        self.arg("--create-missing")
    }

    /// `--deep`.
    pub fn deep(self) -> Self {
        self.arg("--deep")
    }

    /// `--keep-last N`.
    pub fn keep_last(self, n: usize) -> Self {
        self.flag("--keep-last", n.to_string())
    }

    /// `--keep-days D`.
    pub fn keep_days(self, days: u32) -> Self {
        self.flag("--keep-days", days.to_string())
    }

    /// `--dry-run`.
    pub fn dry_run(self) -> Self {
        self.arg("--dry-run")
    }

    /// `--run-time TIME` (RFC 3339, to the second).
    pub fn run_time(self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.flag(
            "--run-time",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    }

    /// `--output json`: the outcome's [`summary`](Outcome::summary) is then readable.
    pub fn json(self) -> Self {
        self.flag("--output", "json")
    }

    /// The command line as typed (for messages).
    pub fn shown(&self) -> String {
        self.shown.join(" ")
    }

    /// Run it to its end; its output is logged (shown when the test fails).
    pub fn run(mut self) -> Outcome {
        let output = self.cmd.output().expect("run ddbx");
        let outcome = Outcome {
            exit: Exit::of(output.status),
            command: self.shown(),
            output,
        };
        eprintln!("{outcome:?}");
        outcome
    }

    /// Start it and leave it running, for a test that stops or kills it; its output goes
    /// to temporary files that [`Running::wait`] reads.
    pub fn spawn(mut self) -> Running {
        let stdout = tempfile::NamedTempFile::new().expect("a file for stdout");
        let stderr = tempfile::NamedTempFile::new().expect("a file for stderr");
        let child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(stdout.reopen().expect("stdout"))
            .stderr(stderr.reopen().expect("stderr"))
            .spawn()
            .expect("start ddbx");
        Running {
            child,
            command: self.shown(),
            stdout,
            stderr,
        }
    }
}

/// A `ddbx` left running.
pub struct Running {
    child: Child,
    command: String,
    stdout: tempfile::NamedTempFile,
    stderr: tempfile::NamedTempFile,
}

impl Running {
    /// Poll until `ready()` holds while it still runs ([`crate::wait_for`]): a test waits
    /// for an observable state of the process, never for a time.
    #[track_caller]
    pub fn wait_for(&mut self, what: &str, ready: impl FnMut() -> bool) {
        crate::wait_for(&mut self.child, what, ready)
    }

    /// [`wait_for`](Self::wait_for) with another limit.
    #[track_caller]
    pub fn wait_within(
        &mut self,
        what: &str,
        within: std::time::Duration,
        ready: impl FnMut() -> bool,
    ) {
        crate::wait_within(&mut self.child, what, within, ready)
    }

    /// SIGTERM, as cron's timeout or an operator sends it (the run stops cleanly).
    pub fn sigterm(&self) {
        crate::sigterm(&self.child)
    }

    /// SIGKILL (no flag, no checkpoint, no cleanup), and wait for it to end.
    pub fn kill(mut self) -> Outcome {
        let _ = self.child.kill();
        self.wait()
    }

    /// Wait for it to end.
    pub fn wait(mut self) -> Outcome {
        let status = self.child.wait().expect("wait for ddbx");
        let read = |f: &tempfile::NamedTempFile| std::fs::read(f.path()).unwrap_or_default();
        let outcome = Outcome {
            exit: Exit::of(status),
            command: self.command.clone(),
            output: Output {
                status,
                stdout: read(&self.stdout),
                stderr: read(&self.stderr),
            },
        };
        eprintln!("{outcome:?}");
        outcome
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that fails while it runs leaves no ddbx behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A finished `ddbx`: how it ended and what it printed.
pub struct Outcome {
    /// Its exit code, named.
    pub exit: Exit,
    /// The command line, as typed.
    pub command: String,
    /// Its stdout and stderr.
    pub output: Output,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ddbx {} -> {:?}\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.exit,
            String::from_utf8_lossy(&self.output.stdout),
            self.stderr()
        )
    }
}

impl Outcome {
    /// It ended as `exit`, or the test fails showing the command and its stderr.
    #[track_caller]
    pub fn expect(self, exit: Exit) -> Self {
        assert_eq!(
            self.exit,
            exit,
            "ddbx {} ended {:?}, not {exit:?}:\n{}",
            self.command,
            self.exit,
            self.stderr()
        );
        self
    }

    /// Its stderr (the log and any error), as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Its stdout as JSON (`--output json`).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        self.read()
    }

    /// Its `--output json` summary (export, import, verify), as the library's type.
    #[track_caller]
    pub fn summary(&self) -> RunSummary {
        self.read()
    }

    /// Its `--output json` verdicts (`ddbx verify`), one per table.
    #[track_caller]
    pub fn verdicts(&self) -> Vec<Verdict> {
        self.read()
    }

    /// Its `--output json` listing (`ddbx list`).
    #[track_caller]
    pub fn listed(&self) -> Vec<ListedRun> {
        self.read()
    }

    /// Its `--output json` report (`ddbx prune`).
    #[track_caller]
    pub fn pruned(&self) -> Pruned {
        self.read()
    }

    #[track_caller]
    fn read<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.output.stdout).unwrap_or_else(|e| {
            panic!(
                "ddbx {}: stdout is not the JSON expected ({e}):\n{}",
                self.command,
                String::from_utf8_lossy(&self.output.stdout)
            )
        })
    }
}

/// What a test reads of a summary's tables.
pub trait SummaryExt {
    /// The report of `table`, or the test fails naming the tables there are.
    fn report(&self, table: &str) -> TableReport;

    /// The tables whose report has this status, sorted.
    fn tables_with(&self, status: TableStatus) -> Vec<String>;
}

impl SummaryExt for RunSummary {
    #[track_caller]
    fn report(&self, table: &str) -> TableReport {
        let reports = self.table_reports.to_vec().expect("reports read back");
        let names: Vec<_> = reports.iter().map(|r| r.table.clone()).collect();
        reports
            .into_iter()
            .find(|r| r.table == table)
            .unwrap_or_else(|| panic!("no report for {table} in the summary (it has {names:?})"))
    }

    fn tables_with(&self, status: TableStatus) -> Vec<String> {
        let mut t: Vec<_> = self
            .table_reports
            .to_vec()
            .expect("reports read back")
            .into_iter()
            .filter(|r| r.status == status)
            .map(|r| r.table.clone())
            .collect();
        t.sort();
        t
    }
}

/// One run as `ddbx list --output json` prints it (the fields the README documents and
/// the tests read; the catalog's own types are written, never read, by ddbx).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedRun {
    /// When the run started (from its path).
    pub time: chrono::DateTime<chrono::Utc>,
    /// The run root's URL.
    pub run_root: String,
    /// The app.
    pub app: String,
    /// The region.
    pub region: String,
    /// Its export.
    pub backup: ListedJob,
    /// An import from it that kept its flags in the run root.
    #[serde(default)]
    pub restore: Option<ListedJob>,
}

/// One job of a listed run.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedJob {
    /// `backup` or `restore`.
    pub job: String,
    /// `running`, `crashed`, `success`, `failed`, `interrupted`, `incomplete`, `unknown`.
    pub status: String,
    /// The engine that made it.
    #[serde(default)]
    pub engine: Option<String>,
    /// Tables.
    pub tables: usize,
    /// Tables that failed.
    pub tables_failed: usize,
    /// Items (a lower bound when `items_unknown`).
    pub items: u64,
    /// The engine could not count them.
    #[serde(default)]
    pub items_unknown: bool,
}

/// What `ddbx prune --output json` reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Every run of the app, newest first.
    pub runs: Vec<PruneDecision>,
    /// Objects deleted.
    pub objects: u64,
    /// What failed.
    #[serde(default)]
    pub errors: Vec<String>,
}

/// One run's fate in a prune.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneDecision {
    /// The run root's URL.
    pub run_root: String,
    /// Deleted (or, in a dry run, would be).
    pub delete: bool,
    /// Why it is kept.
    #[serde(default)]
    pub kept_because: Vec<String>,
}

impl Pruned {
    /// The run roots deleted, newest first.
    pub fn deleted(&self) -> Vec<&str> {
        self.runs
            .iter()
            .filter(|r| r.delete)
            .map(|r| r.run_root.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_named_as_the_readme_names_them() {
        use std::os::unix::process::ExitStatusExt;
        for (code, exit) in [
            (0, Exit::Ok),
            (1, Exit::Usage),
            (2, Exit::Locked),
            (3, Exit::Plan),
            (4, Exit::TablesFailed),
            (130, Exit::Aborted),
            (7, Exit::Other(7)),
        ] {
            let status = std::process::ExitStatus::from_raw(code << 8);
            assert_eq!(Exit::of(status), exit);
            assert_eq!(exit.code(), Some(code));
        }
        let killed = std::process::ExitStatus::from_raw(9);
        assert_eq!(Exit::of(killed), Exit::Killed);
        assert_eq!(Exit::Killed.code(), None);
    }

    #[test]
    fn the_builder_says_the_command_line_as_typed() {
        let d = Ddbx::from_command(Command::new("true"))
            .export()
            .app("app")
            .tables("T_*")
            .to("s3://b/x")
            .table_map("a", "b")
            .json();
        assert_eq!(
            d.shown(),
            "export --app app --tables T_* --to s3://b/x --table-map a=b --output json"
        );
    }

    #[test]
    fn an_outcome_reads_the_summary_as_ddbx_prints_it() {
        // A summary as `ddbx export --output json` printed it (camelCase, a table's status
        // in lower case, optional fields left out).
        let printed = r#"{"job":"export","app":"app","region":"us-east-1","runRoot":"s3://b/r",
            "engine":"local","status":"succeeded","startedAt":"2026-01-02T03:04:05Z",
            "endedAt":"2026-01-02T03:04:09Z","tables":1,"tablesFailed":0,"items":3,"bytes":99,
            "errors":[],"tableReports":[{"table":"t","status":"succeeded","items":3,"bytes":99,
            "files":1,"readUnits":1.5,"seconds":0.25}]}"#;
        let out = Command::new("printf")
            .args(["%s", printed])
            .output()
            .unwrap();
        let outcome = Outcome {
            exit: Exit::of(out.status),
            command: "export".into(),
            output: out,
        }
        .expect(Exit::Ok);
        let read = outcome.summary();
        assert_eq!(read.status, "succeeded");
        assert_eq!(read.engine.as_deref(), Some("local"));
        assert_eq!(read.report("t").items, 3);
        assert_eq!(read.tables_with(TableStatus::Succeeded), vec!["t"]);
        assert!(read.tables_with(TableStatus::Failed).is_empty());
    }

    #[test]
    #[should_panic(expected = "ended Usage, not Ok")]
    fn an_unexpected_exit_fails_naming_both() {
        let out = Command::new("sh").args(["-c", "exit 1"]).output().unwrap();
        let _ = Outcome {
            exit: Exit::of(out.status),
            command: "export".into(),
            output: out,
        }
        .expect(Exit::Ok);
    }
}
