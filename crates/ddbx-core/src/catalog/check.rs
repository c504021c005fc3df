//! Whether an app's backups are healthy, for a scheduler or a monitoring check
//! (`ddbx check`): the newest run must be a success that started within `max_age`. A run
//! still in progress is left to end while it is younger than `max_running` (the run
//! before it is judged meanwhile), and reported once it is older. Only flags are read,
//! as `list` reads them; with `deep`, the success's restore plan and manifests too (each
//! manifest against its checksum file), and every data file they list is looked up.

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Serialize;

use super::{list, one_region, Filter, RunEntry, Status};
use crate::format::source;
use crate::plan::DataFormat;
use crate::store::Location;
use crate::Result;

/// What is checked.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The newest success must have started at most this long ago.
    pub max_age: Duration,
    /// A run in progress for longer than this is reported.
    pub max_running: Duration,
    /// Look up every file of the newest success.
    pub deep: bool,
    /// Now (injected in tests).
    pub now: DateTime<Utc>,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// The newest run succeeded, within the limits.
    Ok,
    /// The newest success is older than `max_age`, or there is none.
    Stale,
    /// The newest run that ended failed (or was interrupted).
    Failed,
    /// The newest run never ended (killed), left no flag, cannot be read, or (`deep`) lacks
    /// files.
    Incomplete,
    /// A run has been in progress for longer than `max_running`.
    RunningTooLong,
}

impl Health {
    /// The word said first on the verdict's line.
    pub fn word(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Stale => "stale",
            Health::Failed => "failed",
            Health::Incomplete => "incomplete",
            Health::RunningTooLong => "running too long",
        }
    }
}

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The verdict.
    pub health: Health,
    /// Why, in one line.
    pub reason: String,
    /// The app.
    pub app: String,
    /// Its region.
    pub region: String,
    /// The run judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunEntry>,
    /// The newest successful run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<RunEntry>,
    /// A run in progress, left to end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<RunEntry>,
    /// Data files looked up (`deep`).
    pub files_checked: u64,
}

/// `2026-12-01 03:00:00 UTC (5h 10m ago)`.
fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        "{} UTC ({} ago)",
        t.format("%Y-%m-%d %H:%M:%S"),
        span(now - t)
    )
}

/// `1d 2h`, `5h 10m`, `3m 2s`.
pub fn span(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, minutes, seconds) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// Check the app's runs under `base` (in the one region holding the app, or `region`).
pub async fn check(
    base: &Location,
    app: &str,
    region: Option<&str>,
    limits: &Limits,
) -> Result<Report> {
    let runs = list(base, &Filter::app(app, None)).await?;
    let mut report = Report {
        health: Health::Stale,
        reason: format!("{}: no run of app {app:?} in any region", base.url()),
        app: app.to_string(),
        region: region.unwrap_or_default().to_string(),
        run: None,
        last_success: None,
        running: None,
        files_checked: 0,
    };
    if runs.is_empty() {
        return Ok(report);
    }
    report.region = one_region(&runs, base, app, region)?;
    let mut in_region = Vec::new();
    for r in runs.iter() {
        let r = r?;
        if r.region == report.region {
            in_region.push(r);
        }
    }
    let runs: Vec<RunEntry> = in_region;
    report.last_success = runs
        .iter()
        .find(|r| r.backup.status == Status::Success)
        .cloned();
    let mut newest = runs.iter();
    let mut judged = newest.next();
    if let Some(r) = judged.filter(|r| r.backup.status == Status::Running) {
        if limits.now - r.time > limits.max_running {
            report.health = Health::RunningTooLong;
            report.reason = format!(
                "the run started {} is still running, longer than --max-running {}: {}",
                when(r.time, limits.now),
                span(limits.max_running),
                r.run_root
            );
            report.run = Some(r.clone());
            return Ok(report);
        }
        report.running = Some(r.clone());
        judged = newest.next();
    }
    let Some(run) = judged else {
        report.reason = format!(
            "no run of app {app:?} has ended yet (one is running: {})",
            report.running.as_ref().map_or("", |r| r.run_root.as_str())
        );
        return Ok(report);
    };
    report.run = Some(run.clone());
    (report.health, report.reason) = verdict(run, limits);
    if report.health == Health::Ok && limits.deep {
        deep(base, run, &mut report).await;
    }
    Ok(report)
}

/// The verdict on the newest run that ended, from its flags.
fn verdict(run: &RunEntry, limits: &Limits) -> (Health, String) {
    let b = &run.backup;
    let at = when(run.time, limits.now);
    let root = &run.run_root;
    match b.status {
        Status::Success if limits.now - run.time > limits.max_age => (
            Health::Stale,
            format!(
                "the newest backup, started {at}, is older than --max-age {}: {root}",
                span(limits.max_age)
            ),
        ),
        Status::Success => (
            Health::Ok,
            format!(
                "the newest backup, started {at}, succeeded: {} tables, {} items: {root}",
                b.tables, b.items
            ),
        ),
        Status::Failed | Status::Interrupted => (
            Health::Failed,
            format!(
                "the newest run, started {at}, {}: {} of {} tables failed{}: {root}",
                if b.status == Status::Interrupted {
                    "was interrupted"
                } else {
                    "failed"
                },
                b.tables_failed,
                b.tables,
                b.errors
                    .first()
                    .map(|e| format!(" ({})", crate::text::cut(e)))
                    .unwrap_or_default()
            ),
        ),
        Status::Crashed | Status::Running => (
            Health::Incomplete,
            format!("the newest run, started {at}, was killed while running (its RUNNING flag is up and no run holds the lock): `ddbx export --resume {root}` continues it"),
        ),
        Status::Incomplete => (
            Health::Incomplete,
            format!("the newest run, started {at}, left no flag (it died before its first, or its flags were removed): {root}"),
        ),
        Status::Unknown => (
            Health::Incomplete,
            format!(
                "the newest run, started {at}, cannot be read ({}): {root}",
                b.problem.as_deref().unwrap_or("its flags")
            ),
        ),
    }
}

/// Every file of `run` looked up: its restore plan, each table's manifests (against
/// their checksum files, which ddbx's native-format exports always have) and data files.
async fn deep(base: &Location, run: &RunEntry, report: &mut Report) {
    let root = base.child(run.run_dir());
    let opened = match source::open(root.clone(), None).await {
        Ok(s) => s,
        Err(e) => {
            report.health = Health::Incomplete;
            report.reason = format!("the newest backup cannot be read (--deep): {e}");
            return;
        }
    };
    let mut missing: Vec<String> = Vec::new();
    let mut files = Vec::new();
    for (_, table) in opened.tables {
        match table {
            Ok(t) => {
                if matches!(t.format, DataFormat::DynamodbJson | DataFormat::Ion) {
                    missing.extend(checksum_files(&t).await);
                }
                files.extend(t.files.into_iter().map(|f| (t.dir.clone(), f)));
            }
            Err(e) => missing.push(e.to_string()),
        }
    }
    report.files_checked = files.len() as u64;
    let lookups = futures::stream::iter(files.into_iter().map(|(dir, f)| async move {
        match dir.store.head(&f.path).await {
            Ok(_) => None,
            Err(object_store::Error::NotFound { .. }) => Some(format!("{}: missing", f.url)),
            Err(e) => Some(crate::Error::store(&f.url, e).to_string()),
        }
    }))
    .buffer_unordered(16)
    .filter_map(|m| async move { m })
    .collect::<Vec<String>>()
    .await;
    missing.extend(lookups);
    if missing.is_empty() {
        report.reason.push_str(&format!(
            "; --deep: its manifests match their checksums and its {} data files are there",
            report.files_checked
        ));
        return;
    }
    missing.sort();
    report.health = Health::Incomplete;
    report.reason = format!(
        "the newest backup, {}, lacks {} of its files (--deep), first {}",
        run.run_root,
        missing.len(),
        missing[0]
    );
}

/// The `.md5` files beside a native export's manifests that are not there.
async fn checksum_files(t: &source::TableSource) -> Vec<String> {
    // Data files are `<id>/data/<name>`: the manifests are in `<id>/`.
    let Some(first) = t.files.first() else {
        return Vec::new();
    };
    let parts: Vec<_> = first.path.parts().collect();
    if parts.len() < 2 || parts[parts.len() - 2].as_ref() != "data" {
        return Vec::new();
    }
    let id_dir = object_store::path::Path::from_iter(parts[..parts.len() - 2].iter().cloned());
    let mut missing = Vec::new();
    for name in ["manifest-summary.md5", "manifest-files.md5"] {
        let path = crate::store::join(&id_dir, name);
        match t.dir.store.head(&path).await {
            Ok(_) => {}
            Err(_) => missing.push(format!("{}: missing", t.dir.url_of(&path))),
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::JobEntry;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn run(time: &str, status: Status) -> RunEntry {
        RunEntry {
            time: at(time),
            region: "r".into(),
            app: "a".into(),
            run_root: format!("root-{time}"),
            backup: JobEntry {
                status,
                tables: 2,
                tables_failed: if status == Status::Failed { 1 } else { 0 },
                errors: vec!["T1: AccessDeniedException".into()],
                ..JobEntry::incomplete("backup")
            },
            restore: None,
            deleted: None,
            dir: String::new(),
        }
    }

    fn limits(now: &str) -> Limits {
        Limits {
            max_age: Duration::hours(26),
            max_running: Duration::hours(12),
            deep: false,
            now: at(now),
        }
    }

    #[test]
    fn a_verdict_for_each_state() {
        let l = limits("2026-12-02T05:00:00Z");
        let cases = [
            (
                Status::Success,
                "2026-12-02T03:00:00Z",
                Health::Ok,
                "succeeded: 2 tables",
            ),
            (
                Status::Success,
                "2026-12-01T02:00:00Z",
                Health::Stale,
                "older than --max-age 1d 2h",
            ),
            (
                Status::Failed,
                "2026-12-02T03:00:00Z",
                Health::Failed,
                "1 of 2 tables failed (T1: AccessDeniedException)",
            ),
            (
                Status::Interrupted,
                "2026-12-02T03:00:00Z",
                Health::Failed,
                "was interrupted",
            ),
            (
                Status::Crashed,
                "2026-12-02T03:00:00Z",
                Health::Incomplete,
                "export --resume",
            ),
            (
                Status::Incomplete,
                "2026-12-02T03:00:00Z",
                Health::Incomplete,
                "left no flag",
            ),
            (
                Status::Unknown,
                "2026-12-02T03:00:00Z",
                Health::Incomplete,
                "cannot be read",
            ),
        ];
        for (status, time, health, words) in cases {
            let (h, reason) = verdict(&run(time, status), &l);
            assert_eq!(h, health, "{status:?}: {reason}");
            assert!(reason.contains(words), "{status:?}: {reason}");
            assert!(
                reason.contains("2h 0m ago") || reason.contains("1d 3h ago"),
                "{reason}"
            );
        }
    }

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(span(Duration::seconds(42)), "42s");
        assert_eq!(span(Duration::seconds(3 * 60 + 2)), "3m 2s");
        assert_eq!(span(Duration::minutes(310)), "5h 10m");
        assert_eq!(span(Duration::hours(26)), "1d 2h");
    }
}
