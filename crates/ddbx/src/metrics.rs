//! `--metrics-file PATH`: a run's outcome in the Prometheus text exposition format, as
//! node_exporter's textfile collector reads it (one file per job: `billing-export.prom`).
//!
//! Written atomically (a temporary file beside it, renamed over it), so the collector
//! never reads half a file, whatever the outcome: a run that could not even start writes
//! `ddbx_run_success 0`. The last success time is this run's end when it succeeded, else
//! carried over from the file it replaces, so an alert on its age keeps working through
//! failed nights.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use ddbx_core::catalog::check::{Health, Report};
use ddbx_core::report::{RunSummary, TableStatus};

/// The labels of a metric, as `{a="x",b="y"}`.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A label value as the format wants it: `\`, `"` and line ends escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text of one metrics file: each family once, with its HELP and TYPE and then all
/// its samples (the format wants a family's samples together), in the order of their
/// first sample.
#[derive(Default)]
struct Text {
    families: Vec<(&'static str, String, String)>,
}

impl Text {
    /// One sample of the gauge `name`.
    fn gauge(&mut self, name: &'static str, help: &str, labels: &str, value: f64) {
        let at = match self.families.iter().position(|(n, _, _)| *n == name) {
            Some(i) => i,
            None => {
                self.families.push((name, help.to_string(), String::new()));
                self.families.len() - 1
            }
        };
        let _ = writeln!(self.families[at].2, "{name}{labels} {value}");
    }

    /// The file's text.
    fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, samples) in &self.families {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{samples}");
        }
        out
    }
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

const LAST_SUCCESS: &str = "ddbx_last_success_timestamp_seconds";

/// The last success time the file at `path` holds for `job` and `app`, if it does.
fn previous_success(path: &Path, job: &str, app: &str) -> Option<f64> {
    let old = std::fs::read_to_string(path).ok()?;
    let job = format!("command=\"{}\"", escape(job));
    let app = format!("app=\"{}\"", escape(app));
    old.lines()
        .filter(|l| l.starts_with(LAST_SUCCESS) && l.contains(&job) && l.contains(&app))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// What a run of `job` (`export`, `import`) did: its summary, or `None` when it ended
/// before it had one (a usage or configuration error).
pub struct Run<'a> {
    pub job: &'a str,
    pub app: &'a str,
    pub region: &'a str,
    pub summary: Option<&'a RunSummary>,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
}

/// Each table's items, bytes, seconds and success.
fn table_gauges(t: &mut Text, r: &Run<'_>, app: &str, region: &str) {
    let reports = r.summary.map(|s| s.table_reports.iter());
    for tr in reports.into_iter().flatten() {
        let tr = match tr {
            Ok(tr) => tr,
            Err(e) => {
                tracing::warn!(error = %e, "the metrics file lists no more tables");
                break;
            }
        };
        let l = labels(&[
            ("command", r.job),
            ("app", app),
            ("region", region),
            ("table", &tr.table),
        ]);
        t.gauge(
            "ddbx_table_items",
            "Items the table's job read and stored (export) or wrote (import) in the run.",
            &l,
            tr.items as f64,
        );
        t.gauge(
            "ddbx_table_bytes",
            "Bytes of the table's items (DynamoDB's sizes) in the run.",
            &l,
            tr.bytes as f64,
        );
        t.gauge(
            "ddbx_table_duration_seconds",
            "Seconds the table's job took.",
            &l,
            tr.seconds,
        );
        let ok = !matches!(tr.status, TableStatus::Failed);
        t.gauge(
            "ddbx_table_success",
            "1 when the table succeeded (or was deferred by design), 0 when it failed.",
            &l,
            f64::from(u8::from(ok)),
        );
    }
}

/// The file's text for a run.
fn run_text(r: &Run<'_>, previous: Option<f64>) -> String {
    let mut t = Text::default();
    let (app, region) = match r.summary {
        Some(s) if !s.app.is_empty() => (s.app.as_str(), s.region.as_str()),
        _ => (r.app, r.region),
    };
    let run = labels(&[("command", r.job), ("app", app), ("region", region)]);
    table_gauges(&mut t, r, app, region);
    let succeeded = r.summary.is_some_and(|s| s.succeeded());
    // This process's own clock: a run's time (its folder's name, `--run-time`) may be
    // another, and a resumed run's summary starts with its first attempt.
    let (started, ended) = (r.started, r.ended);
    t.gauge("ddbx_run_success", "1 when every table of the run succeeded, 0 otherwise (a run that could not start included).", &run, f64::from(u8::from(succeeded)));
    t.gauge(
        "ddbx_run_start_timestamp_seconds",
        "When the run started (Unix time).",
        &run,
        seconds(started),
    );
    t.gauge(
        "ddbx_run_end_timestamp_seconds",
        "When the run ended (Unix time).",
        &run,
        seconds(ended),
    );
    t.gauge(
        "ddbx_run_duration_seconds",
        "Seconds the run took.",
        &run,
        (ended - started).num_milliseconds() as f64 / 1000.0,
    );
    if let Some(s) = r.summary {
        t.gauge(
            "ddbx_run_tables",
            "Tables in the run.",
            &run,
            s.tables as f64,
        );
        t.gauge(
            "ddbx_run_tables_failed",
            "Tables of the run that failed.",
            &run,
            s.tables_failed as f64,
        );
        t.gauge(
            "ddbx_run_items",
            "Items of every table of the run.",
            &run,
            s.items as f64,
        );
        t.gauge(
            "ddbx_run_bytes",
            "Bytes of every table of the run.",
            &run,
            s.bytes as f64,
        );
    }
    let last = if succeeded {
        Some(seconds(ended))
    } else {
        previous
    };
    if let Some(last) = last {
        t.gauge(
            LAST_SUCCESS,
            "When the app's last successful run of this command ended (Unix time).",
            &run,
            last,
        );
    }
    t.render()
}

/// The file's text for a check: its verdict, and the newest success's time, age and
/// duration from the catalog.
fn check_text(r: &Report, exit_code: u8, now: DateTime<Utc>) -> String {
    let mut t = Text::default();
    let app = labels(&[("app", &r.app), ("region", &r.region)]);
    let healthy = r.health == Health::Ok;
    t.gauge(
        "ddbx_check_healthy",
        "1 when the app's newest backup is a success within --max-age (and, with --deep, whole).",
        &app,
        f64::from(u8::from(healthy)),
    );
    t.gauge(
        "ddbx_check_exit_code",
        "The exit code of ddbx check: 0 ok, 5 stale, 6 failed, 7 incomplete, 8 running too long.",
        &app,
        f64::from(exit_code),
    );
    t.gauge(
        "ddbx_check_timestamp_seconds",
        "When the check ran (Unix time).",
        &app,
        seconds(now),
    );
    // Names of their own: node_exporter refuses a series two files both hold, and the
    // export's file holds ddbx_last_success_timestamp_seconds{command="export",...}.
    if let Some(s) = &r.last_success {
        let ended = s.backup.ended_at.unwrap_or(s.time);
        t.gauge(
            "ddbx_check_last_success_timestamp_seconds",
            "When the app's newest successful backup ended (Unix time), from its flags.",
            &app,
            seconds(ended),
        );
        t.gauge(
            "ddbx_check_last_success_duration_seconds",
            "Seconds from the newest successful backup's run time (its folder's name: when it was scheduled) to its end.",
            &app,
            (ended - s.time).num_milliseconds() as f64 / 1000.0,
        );
        t.gauge(
            "ddbx_backup_age_seconds",
            "Seconds since the app's newest successful backup started.",
            &app,
            (now - s.time).num_milliseconds() as f64 / 1000.0,
        );
    }
    t.render()
}

/// Write `text` to `path` atomically: a temporary file beside it (the textfile collector
/// reads only `*.prom`), flushed, then renamed over it.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "metrics".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Run `run` (a command's work: its exit code and its summary when it got that far) and,
/// with a `path`, write its metrics there, timed on this process's clock; returns the
/// exit code.
pub async fn measured(
    job: &str,
    path: Option<std::path::PathBuf>,
    app: &str,
    g: &crate::args::Global,
    run: impl std::future::Future<Output = (u8, Option<RunSummary>)>,
) -> u8 {
    let started = Utc::now();
    let (code, summary) = run.await;
    if let Some(path) = path {
        let region = g.region.clone().unwrap_or_default();
        let run = Run {
            job,
            app,
            region: &region,
            summary: summary.as_ref(),
            started,
            ended: Utc::now(),
        };
        write_run(&path, &run);
    }
    code
}

/// Write a run's metrics to `path`; a failure to write is said, never fatal.
pub fn write_run(path: &Path, run: &Run<'_>) {
    let previous = previous_success(path, run.job, run.app);
    write_said(path, &run_text(run, previous));
}

/// Write a check's metrics to `path`.
pub fn write_check(path: &Path, report: &Report, exit_code: u8) {
    write_said(path, &check_text(report, exit_code, Utc::now()));
}

fn write_said(path: &Path, text: &str) {
    if let Err(e) = write_atomically(path, text) {
        eprintln!(
            "ddbx: cannot write the metrics file {}: {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ddbx_core::plan::RunLayout;
    use ddbx_core::report::TableReport;

    fn summary(failed: bool) -> RunSummary {
        let t0: DateTime<Utc> = "2026-12-01T03:00:00Z".parse().unwrap();
        let layout = RunLayout {
            region: "us-east-1".into(),
            app: "bill\"ing".into(),
            started: t0,
        };
        let mut ok = TableReport::planned("T1");
        ok.status = TableStatus::Succeeded;
        ok.items = 10;
        ok.seconds = 1.5;
        let other = if failed {
            TableReport::failed("T2", "boom")
        } else {
            TableReport {
                status: TableStatus::Succeeded,
                ..TableReport::planned("T2")
            }
        };
        RunSummary::for_job(
            "export",
            &layout,
            "root".into(),
            vec![ok, other].into(),
            Some(t0 + chrono::Duration::seconds(90)),
        )
    }

    fn run<'a>(s: Option<&'a RunSummary>) -> Run<'a> {
        // The process's own clock: 90 s, whatever the summary says.
        let started: DateTime<Utc> = "2026-12-01T03:05:00Z".parse().unwrap();
        Run {
            job: "export",
            app: "bill\"ing",
            region: "us-east-1",
            summary: s,
            started,
            ended: started + chrono::Duration::seconds(90),
        }
    }

    #[test]
    fn a_success_sets_the_last_success_and_a_failure_carries_it_over() {
        let ok = summary(false);
        let text = run_text(&run(Some(&ok)), Some(1.0));
        assert!(text.contains("ddbx_table_items{command=\"export\",app=\"bill\\\"ing\",region=\"us-east-1\",table=\"T1\"} 10\n"), "{text}");
        assert!(text.contains("ddbx_run_duration_seconds{command=\"export\",app=\"bill\\\"ing\",region=\"us-east-1\"} 90\n"), "{text}");
        assert_eq!(
            text.matches("# TYPE ddbx_table_items gauge").count(),
            1,
            "{text}"
        );
        let last = format!("{LAST_SUCCESS}{{command=\"export\",app=\"bill\\\"ing\",region=\"us-east-1\"}} 1796094390\n");
        assert!(text.contains(&last), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        write_atomically(&path, &text).unwrap();
        assert_eq!(
            previous_success(&path, "export", "bill\"ing"),
            Some(1796094390.0)
        );
        let failed = summary(true);
        let text = run_text(
            &run(Some(&failed)),
            previous_success(&path, "export", "bill\"ing"),
        );
        assert!(
            text.contains(
                "ddbx_run_success{command=\"export\",app=\"bill\\\"ing\",region=\"us-east-1\"} 0\n"
            ),
            "{text}"
        );
        assert!(text.contains("table=\"T2\"} 0\n"), "{text}");
        assert!(text.contains(&last), "carried over: {text}");
        // A run that never started: its failure, and nothing invented.
        let text = run_text(&run(None), None);
        assert!(
            text.contains(
                "ddbx_run_success{command=\"export\",app=\"bill\\\"ing\",region=\"us-east-1\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains(LAST_SUCCESS) && !text.contains("ddbx_table_"),
            "{text}"
        );
        // Only the file is left, never its temporary.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("m.prom")]);
    }
}
