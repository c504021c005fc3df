//! What a base holds: every run of every app ([`list`]), the newest successful one
//! ([`latest`]), and deleting old ones ([`prune`]).
//!
//! A run is found by its path alone (`<region>/<app>/YYYY/MM/DD/HH_MM.SS`), one listing
//! per folder level, never object by object; what it is comes from its flags, whose
//! JSON summary says everything [`list`] shows. Its data is never read. The runs found wait
//! in a [`Spool`], newest first, each read back when it is looked at: a base of ten
//! thousand runs is listed, and pruned, in the memory of a few.

pub mod check;
mod delete;
pub mod prune;
mod versioned;

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::report::{RunSummary, TableStatus};
use crate::run::lock::{Held, LockBody, LockSettings};
use crate::run::status::Job;
use crate::spool::Spool;
use crate::store::retention::{is_backup_object, ObjectLock};
use crate::store::Location;
use crate::{Error, Result};

/// Listings (and flag reads) in flight at once.
const PARALLEL: usize = 16;

/// The most bytes a status flag holds (a summary of thousands of tables is a few MB); a
/// larger one is not read, and its run is `unknown`.
const MAX_FLAG_BYTES: u64 = 16 * 1024 * 1024;

/// How a run's job stands, from its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its RUNNING flag is up and its run holds the app's lock: in progress.
    Running,
    /// Its RUNNING flag is up but no live run holds the app's lock for it: the run was
    /// killed (or its host died); `export --resume` continues it.
    Crashed,
    /// Every table succeeded.
    Success,
    /// Some table failed.
    Failed,
    /// Stopped by Ctrl-C or SIGTERM (a FAILED flag whose tables say "interrupted").
    Interrupted,
    /// No flag at all: the run died before its first one, or its flags were removed.
    Incomplete,
    /// Its flags or its folder cannot be read (a flag that is not a ddbx summary, a key
    /// the store cannot name): see `problem`.
    Unknown,
}

impl Status {
    /// The word `ddbx list` prints.
    pub fn word(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Crashed => "crashed",
            Status::Success => "success",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
            Status::Incomplete => "incomplete",
            Status::Unknown => "unknown",
        }
    }
}

/// One job (the export, or an import from it) of a run root, as its flag tells it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEntry {
    /// `backup` (the export) or `restore` (an import that kept its state here).
    pub job: String,
    /// From the flags.
    pub status: Status,
    /// The engine (absent in runs of ddbx before 0.3, and without a flag).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub engine: Option<String>,
    /// Tables in the run.
    pub tables: usize,
    /// Tables that failed.
    pub tables_failed: usize,
    /// Items (a lower bound when `itemsUnknown`).
    pub items: u64,
    /// Some engine could not count the items.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub items_unknown: bool,
    /// Item bytes.
    pub bytes: u64,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// The one instant of a native export.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub as_of: Option<DateTime<Utc>>,
    /// The runs an incremental run continues.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub continues: Vec<String>,
    /// How its backup objects are retained (S3 Object Lock), as its flag records it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub object_lock: Option<ObjectLock>,
    /// The run it is a copy of (`ddbx copy`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub copied_from: Option<String>,
    /// Why its status is `unknown`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub problem: Option<String>,
    /// The first errors its flag records (one per failed table, at most three).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<String>,
}

impl JobEntry {
    /// A job that left no flag (nothing known of it).
    pub fn incomplete(job: &'static str) -> Self {
        Self {
            job: job.to_string(),
            status: Status::Incomplete,
            engine: None,
            tables: 0,
            tables_failed: 0,
            items: 0,
            items_unknown: false,
            bytes: 0,
            ended_at: None,
            as_of: None,
            continues: Vec::new(),
            object_lock: None,
            copied_from: None,
            problem: None,
            errors: Vec::new(),
        }
    }

    /// A job whose flags could not be read, and why.
    pub fn unknown(job: &'static str, problem: String) -> Self {
        Self {
            status: Status::Unknown,
            problem: Some(problem),
            ..Self::incomplete(job)
        }
    }

    /// Whether its RUNNING flag is up (in progress or crashed).
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Crashed)
    }
}

/// One run root.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEntry {
    /// When the run started (from its path).
    pub time: DateTime<Utc>,
    /// Region of its tables.
    pub region: String,
    /// App.
    pub app: String,
    /// URL of the run root.
    pub run_root: String,
    /// The export.
    pub backup: JobEntry,
    /// An import from it that kept its flags in the run root.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restore: Option<JobEntry>,
    /// With `--include-deleted`: how many of its backup objects were deleted since it
    /// ended (their current version is a delete marker), of how many.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deleted: Option<DeletedObjects>,
    /// Its path relative to the base, as listed (`<region>/<app>/YYYY/MM/DD/HH_MM.SS`).
    pub dir: String,
}

impl RunEntry {
    /// Its path relative to the base, as listed (`<region>/<app>/YYYY/MM/DD/HH_MM.SS`).
    pub fn run_dir(&self) -> &str {
        &self.dir
    }

    /// Whether its export is an incremental one (it continues another run).
    pub fn is_incremental(&self) -> bool {
        !self.backup.continues.is_empty()
    }
}

/// A run's deleted objects (see [`list_including_deleted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedObjects {
    /// Backup objects whose current version is a delete marker placed after the run ended.
    pub objects: u64,
    /// The run's backup objects (each key's newest version that holds data).
    pub of: u64,
}

/// Which runs [`list`] looks at.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this app.
    pub app: Option<String>,
    /// Only this region.
    pub region: Option<String>,
}

impl Filter {
    /// The runs of `app` (in `region`, when given).
    pub fn app(app: &str, region: Option<&str>) -> Self {
        Self {
            app: Some(app.to_string()),
            region: region.map(str::to_string),
        }
    }
}

/// Every run under `base`, newest first. A folder that cannot be listed (a key the store
/// cannot name in it) is left out, said in the log; a run whose flags cannot be read is
/// `unknown`: one bad object never fails the whole listing.
pub async fn list(base: &Location, filter: &Filter) -> Result<Runs> {
    list_runs(base, base, filter).await
}

/// The runs a listing found, newest first (then by run root), each read back when asked.
pub type Runs = Spool<RunEntry>;

/// Every run under `base` (opened from a storage reading past delete markers,
/// `Storage::recovering`) as it was before its objects were deleted, with how many of its
/// backup objects were deleted since it ended; `current` is the same base as it is now
/// (whose locks say which runs are live). A run nothing of which was deleted has none.
pub async fn list_including_deleted(
    recovered: &Location,
    current: &Location,
    filter: &Filter,
) -> Result<Runs> {
    let listed = list_runs(recovered, current, filter).await?;
    let mut counted = futures::stream::iter(listed.iter().map(|run| async move {
        let mut run = run?;
        match deleted_objects(recovered.child(run.run_dir())).await {
            Ok(d) => run.deleted = d,
            Err(e) => {
                tracing::warn!(run = %run.run_root, error = %e, "could not count its deleted objects")
            }
        }
        Ok::<_, Error>(run)
    }))
    .buffered(PARALLEL);
    let mut runs = Runs::new(RUNS);
    while let Some(run) = counted.next().await {
        runs.push(&run?)?;
    }
    Ok(runs)
}

/// What a [`Runs`] holds, for its errors.
const RUNS: &str = "the runs listed";

/// A run root's backup objects deleted since the run ended (its final flag's newest
/// version): the working files a run removes itself, and what it removed before its end
/// (a resumed run's stray files, an earlier attempt's flag), are not counted.
async fn deleted_objects(root: Location) -> Result<Option<DeletedObjects>> {
    let Some(bucket) = &root.s3 else {
        return Ok(None);
    };
    let prefix = format!("{}/", root.prefix);
    let versions = bucket
        .versions(&prefix, None)
        .await
        .map_err(|e| Error::store(root.url(), e))?;
    let ended = versions
        .entries
        .iter()
        .filter(|v| !v.delete_marker && v.key[prefix.len()..].starts_with("BACKUP_COMPLETE_"))
        .map(|v| v.last_modified)
        .max();
    let (mut deleted, mut of) = (0, 0);
    // Each key's entries, newest first.
    for key in versions.entries.chunk_by(|a, b| a.key == b.key) {
        let rel = key[0].key.get(prefix.len()..).unwrap_or_default();
        if !is_backup_object(rel) || key.iter().all(|v| v.delete_marker) {
            continue;
        }
        of += 1;
        let latest = &key[0];
        // (S3 times are to the second, or the millisecond: a delete in the second the run
        // ended counts.)
        if latest.delete_marker && ended.is_none_or(|e| latest.last_modified >= e) {
            deleted += 1;
        }
    }
    Ok((deleted > 0).then_some(DeletedObjects {
        objects: deleted,
        of,
    }))
}

async fn list_runs(base: &Location, locks_in: &Location, filter: &Filter) -> Result<Runs> {
    let regions = folders(base, |n| !n.starts_with(['_', '.'])).await?;
    let regions: Vec<String> = regions
        .into_iter()
        .filter(|r| filter.region.as_ref().is_none_or(|f| f == r))
        .collect();
    let mut apps = Vec::new();
    for r in &regions {
        for a in readable(
            &base.child(r),
            folders(&base.child(r), |n| !n.starts_with(['_', '.'])).await,
        ) {
            if filter.app.as_ref().is_none_or(|f| *f == a) {
                apps.push(format!("{r}/{a}"));
            }
        }
    }
    // Each level of YYYY/MM/DD/HH_MM.SS, listed in parallel.
    let patterns: [fn(&str) -> bool; 4] = [
        |n| n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()),
        |n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()),
        |n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()),
        // Exactly HH_MM.SS (chrono alone would take `3_0.0` too, which names another run).
        |n| {
            let b = n.as_bytes();
            b.len() == 8
                && [0, 1, 3, 4, 6, 7].iter().all(|i| b[*i].is_ascii_digit())
                && b[2] == b'_'
                && b[5] == b'.'
                && NaiveDateTime::parse_from_str(&format!("2000/01/01/{n}"), "%Y/%m/%d/%H_%M.%S")
                    .is_ok()
        },
    ];
    let mut level = apps;
    for keep in patterns {
        let found: Vec<Vec<String>> = futures::stream::iter(level.iter().map(|dir| async move {
            let names = readable(&base.child(dir), folders(&base.child(dir), keep).await);
            names.into_iter().map(|n| format!("{dir}/{n}")).collect()
        }))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
        level = found.into_iter().flatten().collect();
    }
    let locks = app_locks(locks_in, &level).await;
    let locks = &locks;
    // Newest first, then by run root (which, under one base, orders as the path does):
    // the order is known from the paths, so each run is kept as it is read.
    level.sort_by(|a, b| time_of(b).cmp(time_of(a)).then_with(|| a.cmp(b)));
    let mut entries = futures::stream::iter(
        level
            .iter()
            .map(|dir| async move { run_entry(base, dir, locks).await }),
    )
    .buffered(PARALLEL);
    let mut runs = Runs::new(RUNS);
    while let Some(entry) = entries.next().await {
        if let Some(run) = entry {
            runs.push(&run)?;
        }
    }
    Ok(runs)
}

/// The `YYYY/MM/DD/HH_MM.SS` of a run's path: its time, in an order that sorts as times
/// do (every part is of fixed width).
fn time_of(dir: &str) -> &str {
    dir.splitn(3, '/').nth(2).unwrap_or(dir)
}

/// The folders a listing found, or none (said) when it failed.
fn readable(dir: &Location, listed: Result<Vec<String>>) -> Vec<String> {
    listed.unwrap_or_else(|e| {
        tracing::warn!(folder = %dir.url(), error = %e, "left out: this folder cannot be listed");
        Vec::new()
    })
}

/// The lock of each app holding one of `runs` (`<region>/<app>/...`), as `run` names its
/// holder (`export <run root>`), when a live run holds it.
async fn app_locks(base: &Location, runs: &[String]) -> std::collections::HashMap<String, String> {
    let mut apps: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let mut parts = r.splitn(3, '/');
            Some(format!("{}/{}", parts.next()?, parts.next()?))
        })
        .collect();
    apps.sort();
    apps.dedup();
    let mut locks = std::collections::HashMap::new();
    for app in apps {
        let path = base.join(&format!("{app}/_LOCK"));
        let body = match base.get_capped(&path, 64 * 1024).await {
            Ok(Some(b)) => serde_json::from_slice::<LockBody>(&b).map_err(|e| e.to_string()),
            Ok(None) => continue,
            Err(e) => Err(e.to_string()),
        };
        if Held::of(&body, LockSettings::default().stale_after).is_live() {
            if let Ok(b) = body {
                locks.insert(app, b.run);
            }
        }
    }
    locks
}

/// The names of the folders directly under `dir` that `keep` accepts.
async fn folders(dir: &Location, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let listed = dir.list_folder().await?;
    let mut names: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .filter(|n| keep(n))
        .collect();
    names.sort();
    Ok(names)
}

/// The run at `dir` (relative to `base`), from the flags directly in its root; `locks`
/// says which runs hold their app's lock (a RUNNING one that does not has crashed).
pub(crate) async fn run_entry(
    base: &Location,
    dir: &str,
    locks: &std::collections::HashMap<String, String>,
) -> Option<RunEntry> {
    let parts: Vec<&str> = dir.split('/').collect();
    let [region, app, y, m, d, hms] = parts[..] else {
        return None;
    };
    let time =
        NaiveDateTime::parse_from_str(&format!("{y}/{m}/{d}/{hms}"), "%Y/%m/%d/%H_%M.%S").ok()?;
    let root = base.child(dir);
    let (backup, restore) = match root.list_folder().await {
        Ok(listed) => {
            let names: Vec<String> = listed
                .objects
                .iter()
                .filter_map(|o| o.location.filename().map(str::to_string))
                .collect();
            let mut backup = job_entry(&root, Job::Backup, &names).await;
            let holder = locks.get(&format!("{region}/{app}"));
            if backup.status == Status::Running && !holder.is_some_and(|r| r.ends_with(dir)) {
                backup.status = Status::Crashed;
            }
            let restore = if names.iter().any(|n| n.starts_with("RESTORE_")) {
                Some(job_entry(&root, Job::Restore, &names).await)
            } else {
                None
            };
            (backup, restore)
        }
        Err(e) => (JobEntry::unknown("backup", e.to_string()), None),
    };
    Some(RunEntry {
        time: time.and_utc(),
        region: region.to_string(),
        app: app.to_string(),
        run_root: root.url(),
        backup,
        restore,
        deleted: None,
        dir: dir.to_string(),
    })
}

/// One job's state from its flags: a final flag wins over RUNNING (a run that crashed
/// between writing the one and removing the other ended). A flag that cannot be read is an
/// `unknown` job.
async fn job_entry(root: &Location, job: Job, names: &[String]) -> JobEntry {
    let has = |flag: String| names.contains(&flag).then_some(flag);
    let flag = has(job.success())
        .or_else(|| has(job.failed()))
        .or_else(|| has(job.running()));
    let word = match job {
        Job::Backup => "backup",
        Job::Restore => "restore",
    };
    let mut entry = JobEntry::incomplete(word);
    let Some(flag) = flag else {
        return entry;
    };
    let path = root.join(&flag);
    let summary: Option<RunSummary> = match root.get_capped(&path, MAX_FLAG_BYTES).await {
        // Removed between the listing and now: the run moved on; say what the name says.
        Ok(None) => None,
        Ok(Some(body)) if body.is_empty() => None,
        Ok(Some(body)) => match serde_json::from_slice(&body) {
            Ok(s) => Some(s),
            Err(e) => {
                return JobEntry::unknown(
                    word,
                    format!("{}: not a ddbx run summary: {e}", root.url_of(&path)),
                )
            }
        },
        Err(e) => return JobEntry::unknown(word, e.to_string()),
    };
    entry.status = if flag == job.running() {
        Status::Running
    } else if flag == job.success() {
        Status::Success
    } else {
        // (Flags of ddbx before tables had an interrupted status say so in the error.)
        let interrupted = summary.as_ref().is_some_and(|s| {
            s.table_reports.iter().flatten().any(|t| {
                t.status == TableStatus::Interrupted || t.error.as_deref() == Some("interrupted")
            })
        });
        if interrupted {
            Status::Interrupted
        } else {
            Status::Failed
        }
    };
    if let Some(s) = summary {
        entry.engine = s.engine;
        entry.tables = s.tables;
        entry.tables_failed = s.tables_failed;
        entry.items = s.items;
        entry.items_unknown = s.items_unknown;
        entry.bytes = s.bytes;
        entry.ended_at = s.ended_at;
        entry.as_of = s.as_of;
        entry.continues = s.continues;
        entry.object_lock = s.object_lock;
        entry.copied_from = s.copied_from;
        entry.errors = s.errors.into_iter().take(3).collect();
    }
    entry
}

/// What `--from latest` resolved to.
#[derive(Debug, Clone)]
pub struct Latest {
    /// The newest successful export of the app.
    pub run: RunEntry,
    /// Set when that run is incremental: replay the app's chains to this instant (its
    /// export time) with `--from <app folder> --at`.
    pub replay_at: Option<DateTime<Utc>>,
    /// The app's folder.
    pub app_dir: String,
}

/// Whether a `--from` names the newest successful run (`latest`, `latest-success`).
pub fn is_latest(from: &str) -> bool {
    matches!(from, "latest" | "latest-success")
}

/// The newest successful export of `app` under `base` (in the one region holding the app,
/// or in `region` when several do).
pub async fn latest(base: &Location, app: &str, region: Option<&str>) -> Result<Latest> {
    let runs = list(base, &Filter::app(app, None)).await?;
    let region = one_region(&runs, base, app, region)?;
    let run = runs
        .iter()
        .find(|r| {
            r.as_ref()
                .map_or(true, |r| r.region == region && r.backup.status == Status::Success)
        })
        .transpose()?
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}/{region}/{app}: no successful export (ddbx list --to {} --app {app} shows the runs)",
                base.url(),
                base.url()
            ))
        })?;
    let replay_at = if run.is_incremental() {
        run.backup.as_of.or(Some(run.time))
    } else {
        None
    };
    Ok(Latest {
        app_dir: base.child(&format!("{region}/{app}")).url(),
        run,
        replay_at,
    })
}

/// The region of an app's runs: the only one holding it, or, when several do, the one
/// asked for (`--region`, which for an import also names the target's region: a run of
/// another region is still found when the app has runs in one region only).
pub fn one_region(runs: &Runs, base: &Location, app: &str, asked: Option<&str>) -> Result<String> {
    let mut regions = std::collections::BTreeSet::new();
    for r in runs.iter() {
        regions.insert(r?.region);
    }
    let regions: Vec<&str> = regions.iter().map(String::as_str).collect();
    match (&regions[..], asked) {
        ([one], _) => Ok(one.to_string()),
        ([], _) => Err(Error::Usage(format!(
            "{}: no runs of app {app:?} in any region",
            base.url()
        ))),
        (_, Some(r)) if regions.contains(&r) => Ok(r.to_string()),
        _ => Err(Error::Usage(format!(
            "{}: app {app:?} has runs in {}; name one with --region",
            base.url(),
            regions.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::retention::LockMode;

    #[test]
    fn a_run_reads_back_from_the_listing_as_it_was_found() {
        let at = |s| DateTime::from_timestamp(s, 0).unwrap();
        let full = JobEntry {
            status: Status::Failed,
            engine: Some("native".into()),
            tables: 3,
            tables_failed: 1,
            items: 7,
            items_unknown: true,
            bytes: 70,
            ended_at: Some(at(2)),
            as_of: Some(at(1)),
            continues: vec!["s3://b/r/a/2026/01/01/00_00.00".into()],
            object_lock: Some(ObjectLock {
                mode: LockMode::Compliance,
                days: 30,
                retain_until: at(3),
            }),
            copied_from: Some("s3://c/r/a/2026/01/01/00_00.00".into()),
            problem: Some("odd".into()),
            errors: vec!["T: broke".into()],
            ..JobEntry::incomplete("backup")
        };
        let runs = [
            RunEntry {
                time: at(0),
                region: "eu-west-1".into(),
                app: "billing".into(),
                run_root: "s3://b/eu-west-1/billing/1970/01/01/00_00.00".into(),
                backup: full.clone(),
                restore: Some(JobEntry {
                    job: "restore".into(),
                    ..full
                }),
                deleted: Some(DeletedObjects { objects: 2, of: 9 }),
                dir: "eu-west-1/billing/1970/01/01/00_00.00".into(),
            },
            RunEntry {
                time: at(0),
                region: "r".into(),
                app: "a".into(),
                run_root: "file:///b/r/a/1970/01/01/00_00.00".into(),
                backup: JobEntry::incomplete("backup"),
                restore: None,
                deleted: None,
                dir: "r/a/1970/01/01/00_00.00".into(),
            },
        ];
        let kept: Runs = runs.iter().cloned().collect();
        for (i, run) in runs.iter().enumerate() {
            let back = kept.get(i).unwrap();
            assert_eq!(format!("{back:?}"), format!("{run:?}"));
        }
    }

    #[test]
    fn runs_sort_newest_first_by_their_paths() {
        let mut dirs = vec![
            "r/b/2026/01/02/00_00.00",
            "r/a/2025/12/31/23_59.59",
            "q/a/2026/01/02/00_00.00",
            "r/a/2026/01/02/00_00.01",
        ];
        dirs.sort_by(|a, b| time_of(b).cmp(time_of(a)).then_with(|| a.cmp(b)));
        assert_eq!(
            dirs,
            [
                "r/a/2026/01/02/00_00.01",
                "q/a/2026/01/02/00_00.00",
                "r/b/2026/01/02/00_00.00",
                "r/a/2025/12/31/23_59.59",
            ]
        );
    }
}
