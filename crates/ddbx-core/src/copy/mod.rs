//! `ddbx copy`: a run copied to another bucket, account, region or folder, into the same
//! dated layout under the target base (`<region>/<app>/YYYY/MM/DD/HH_MM.SS`), so that it
//! imports and verifies there like its source; or, for an app, every successful run the
//! target lacks, oldest first (a sync for disaster recovery: an incremental chain's runs
//! arrive whole and in order, and the target's chains name the copies).
//!
//! A copy is never a success half-way: the run's body (data files, manifests and their
//! `.md5`, `table.json`) goes first, is checked on the target (every object's size, every
//! manifest against its `.md5`, every data file's MD5 against its manifest's), and only
//! then the plans and, last, the final flag, which says what it is a copy of. The copy's
//! own record (`_copy/copy.json`, a working file) makes a rerun continue it (the objects
//! already there with their size are not copied again) and keeps its retention date.
//! The target app's lock is held throughout, so no prune or export there races it.

pub(crate) mod objects;

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::catalog::{self, Filter, Status};
use crate::format::chain::{self, Chain};
use crate::run::lock::{LockSettings, RunLock};
use crate::store::retention::{self, is_backup_object, LockRequest, ObjectLock};
use crate::store::{Location, Storage};
use crate::{Error, Result};

use objects::Object;
pub use objects::Transfer;

/// What to copy, and how.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// A run root (`--from`), or an app's runs under a base (`--app`, `--from-base`).
    pub source: CopySource,
    /// The target base.
    pub to: String,
    /// Retain the copy's backup objects on the target (`--object-lock`, `--retain`).
    pub object_lock: Option<LockRequest>,
    /// Objects copied at once.
    pub workers: usize,
    /// Say what would be copied; copy nothing.
    pub dry_run: bool,
    /// The target app's lock.
    pub lock: LockSettings,
    /// Server-side, or streamed (see [`Transfer`]); a local folder on either side streams.
    pub transfer: Transfer,
    /// With `--app`: the region whose runs are copied, when the base holds several.
    pub region: Option<String>,
}

/// What a copy copies.
#[derive(Debug, Clone)]
pub enum CopySource {
    /// One run root.
    Run(String),
    /// Every successful run of `app` under `base` that the target lacks.
    App {
        /// The app.
        app: String,
        /// The base its runs are under.
        base: String,
    },
}

/// What became of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCopy {
    /// The source run root.
    pub from: String,
    /// The copy's run root.
    pub to: String,
    /// `copied`, `present` (the target has it), or `would copy` (a dry run).
    pub status: String,
    /// Objects copied now.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects a previous, interrupted copy had already put there.
    pub already_there: u64,
    /// Data files whose MD5 was checked on the target.
    pub files_checked: u64,
    /// Server-side or streamed.
    pub server_side: bool,
}

/// What a copy did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyReport {
    /// Nothing was copied.
    pub dry_run: bool,
    /// Each run, oldest first.
    pub runs: Vec<RunCopy>,
}

/// The copy's record in the target run root (`_copy/copy.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    /// The source run root.
    source: String,
    /// The copy's retention, fixed by its first attempt.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    object_lock: Option<ObjectLock>,
}

const RECORD: &str = "_copy/copy.json";

/// Run a copy: the source read through `source`, the target written through `target`.
pub async fn run(
    source: &Storage,
    target: &Storage,
    settings: &CopySettings,
) -> Result<CopyReport> {
    crate::bounds::RETAIN_DAYS.check_opt(settings.object_lock.map(|l| l.days))?;
    let to = target.open(&settings.to)?;
    if let Some(lock) = settings.object_lock {
        retention::check_bucket(&to, lock).await?;
    }
    let runs: Vec<(Location, String)> = match &settings.source {
        CopySource::Run(root) => {
            let from = source.open_existing(root)?;
            let rel = run_rel(&from)?;
            vec![(from, rel)]
        }
        CopySource::App { app, base } => {
            let base = source.open_existing(base)?;
            missing_runs(&base, &to, app, settings.region.as_deref()).await?
        }
    };
    let mut report = CopyReport {
        dry_run: settings.dry_run,
        runs: Vec::new(),
    };
    // One app a copy, under the target app's lock (a rerun takes over its own).
    let Some(app_rel) = runs.first().map(|(_, rel)| app_of(rel)) else {
        return Ok(report);
    };
    let owner = format!("copy into {}", to.child(&app_rel).url());
    let held = if settings.dry_run {
        None
    } else {
        let lock = LockSettings {
            takeover_run: Some(owner.clone()),
            ..settings.lock.clone()
        };
        Some(RunLock::acquire(&to, &format!("{app_rel}/_LOCK"), &owner, lock).await?)
    };
    let copied = async {
        for (from, rel) in &runs {
            report.runs.push(copy_run(from, &to, rel, settings).await?);
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Some(h) = held {
        h.release().await?;
    }
    copied?;
    Ok(report)
}

/// A run root's path under its base: its last six parts,
/// `<region>/<app>/YYYY/MM/DD/HH_MM.SS`.
fn run_rel(root: &Location) -> Result<String> {
    let url = root.url();
    let parts: Vec<&str> = url.trim_end_matches('/').rsplit('/').take(6).collect();
    let dated = parts.len() == 6
        && parts[1..4]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_digit()))
        && parts[0].len() == 8;
    if !dated {
        return Err(Error::Usage(format!(
            "{url}: not a run root (<base>/<region>/<app>/YYYY/MM/DD/HH_MM.SS)"
        )));
    }
    Ok(parts.into_iter().rev().collect::<Vec<_>>().join("/"))
}

/// `<region>/<app>` of a run's path.
fn app_of(rel: &str) -> String {
    rel.splitn(3, '/').take(2).collect::<Vec<_>>().join("/")
}

/// The successful runs of `app` under `base` that `to` has not as successes, oldest first.
async fn missing_runs(
    base: &Location,
    to: &Location,
    app: &str,
    region: Option<&str>,
) -> Result<Vec<(Location, String)>> {
    let filter = Filter::app(app, region);
    let found = catalog::list(base, &filter).await?;
    catalog::one_region(&found, base, app, region)?;
    let there: BTreeSet<String> = catalog::list(to, &filter)
        .await?
        .to_vec()?
        .into_iter()
        .filter(|r| r.backup.status == Status::Success)
        .map(|r| r.run_dir().to_string())
        .collect();
    Ok(found
        .to_vec()?
        .into_iter()
        .rev()
        .filter(|r| r.backup.status == Status::Success && !there.contains(r.run_dir()))
        .map(|r| (base.child(r.run_dir()), r.run_dir().to_string()))
        .collect())
}

/// Whether `rel` is written last: the plans, then the final flag.
fn last(rel: &str) -> Option<u8> {
    match rel {
        "export-plan.json" | "restore-plan.json" => Some(0),
        r if r.starts_with("BACKUP_COMPLETE_") => Some(1),
        _ => None,
    }
}

/// Copy one run (see the module).
async fn copy_run(
    from: &Location,
    to_base: &Location,
    rel: &str,
    settings: &CopySettings,
) -> Result<RunCopy> {
    let flag = from
        .get_optional(&from.join("BACKUP_COMPLETE_SUCCESS"))
        .await?;
    let Some(flag) = flag else {
        return Err(Error::Usage(format!(
            "{}: no BACKUP_COMPLETE_SUCCESS: only a run that succeeded is copied",
            from.url()
        )));
    };
    let plain = to_base.child(rel);
    let server_side =
        settings.transfer == Transfer::ServerSide && from.s3.is_some() && plain.s3.is_some();
    let mut done = RunCopy {
        from: from.url(),
        to: plain.url(),
        status: "copied".into(),
        objects: 0,
        bytes: 0,
        already_there: 0,
        files_checked: 0,
        server_side,
    };
    if plain.exists("BACKUP_COMPLETE_SUCCESS").await? {
        done.status = "present".into();
        return Ok(done);
    }
    let body: Vec<Object> = objects::listed(from)
        .await?
        .into_iter()
        .filter(|o| is_backup_object(&o.rel))
        .collect();
    if settings.dry_run {
        done.status = "would copy".into();
        done.objects = body.len() as u64;
        done.bytes = body.iter().map(|o| o.size).sum();
        return Ok(done);
    }
    let record = claim(&plain, from, settings.object_lock).await?;
    let to = match &record.object_lock {
        Some(lock) => plain.retained(lock)?,
        None => plain.clone(),
    };
    let there: BTreeMap<String, u64> = objects::listed(&plain)
        .await?
        .into_iter()
        .map(|o| (o.rel, o.size))
        .collect();
    let how = if server_side {
        Transfer::ServerSide
    } else {
        Transfer::Streamed
    };
    let (first, mut ending): (Vec<&Object>, Vec<&Object>) =
        body.iter().partition(|o| last(&o.rel).is_none());
    let todo: Vec<&Object> = first
        .iter()
        .copied()
        .filter(|o| there.get(&o.rel) != Some(&o.size))
        .collect();
    done.already_there = (first.len() - todo.len()) as u64;
    done.objects = todo.len() as u64;
    done.bytes = todo.iter().map(|o| o.size).sum();
    futures::stream::iter(todo.into_iter().map(|o| objects::copy(from, &to, o, how)))
        .buffer_unordered(settings.workers.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    done.files_checked = check(&plain, &first).await?;
    ending.sort_by_key(|o| last(&o.rel));
    for o in ending.iter().filter(|o| last(&o.rel) == Some(0)) {
        objects::copy(from, &to, o, how).await?;
    }
    write_flag(&to, &flag, from, &record).await?;
    chains(from, to_base, rel).await?;
    let path = plain.join(RECORD);
    if let Err(e) = plain.store.delete(&path).await {
        tracing::warn!(file = %plain.url_of(&path), error = %e, "could not remove the copy's record");
    }
    done.objects += ending.len() as u64;
    Ok(done)
}

/// The copy's record at the target run root: written by its first attempt, the same
/// source found by a rerun; a run root that holds anything else is refused.
async fn claim(plain: &Location, from: &Location, asked: Option<LockRequest>) -> Result<Record> {
    let path = plain.join(RECORD);
    if let Some(bytes) = plain.get_optional(&path).await? {
        let r: Record = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            file: plain.url_of(&path),
            message: format!("not a copy's record: {e}"),
        })?;
        if r.source != from.url() {
            return Err(Error::RunRootTaken(format!(
                "{}: a copy of {} is under way there, not of {}",
                plain.url(),
                r.source,
                from.url()
            )));
        }
        if asked.is_some_and(|a| r.object_lock.as_ref().map(ObjectLock::request) != Some(a)) {
            return Err(Error::Usage(format!(
                "{}: this copy was started with another --object-lock ({}): rerun it as it was",
                plain.url(),
                r.object_lock
                    .map(|l| format!("{} for {} days", l.mode.name(), l.days))
                    .unwrap_or("none".into())
            )));
        }
        return Ok(r);
    }
    if !objects::listed(plain).await?.is_empty() {
        return Err(Error::RunRootTaken(format!(
            "{}: the target run root holds objects that are not a copy of {}: nothing copied",
            plain.url(),
            from.url()
        )));
    }
    let r = Record {
        source: from.url(),
        object_lock: asked.map(|a| a.from(Utc::now())),
    };
    plain.put_json(RECORD, &r).await?;
    Ok(r)
}

/// The copied body checked on the target: every object there with its size, every
/// manifest against its `.md5` and every data file it lists read whole against its MD5.
/// Returns how many data files were checked.
async fn check(plain: &Location, body: &[&Object]) -> Result<u64> {
    let there: BTreeMap<String, u64> = objects::listed(plain)
        .await?
        .into_iter()
        .map(|o| (o.rel, o.size))
        .collect();
    for o in body {
        if there.get(&o.rel) != Some(&o.size) {
            return Err(Error::Failed(format!(
                "{}: {} bytes at the source, {} on the target after the copy",
                plain.url_of(&plain.join(&o.rel)),
                o.size,
                there
                    .get(&o.rel)
                    .map_or("none".to_string(), |s| s.to_string())
            )));
        }
    }
    let mut checked = 0;
    for o in body
        .iter()
        .filter(|o| o.rel.ends_with("/manifest-files.json"))
    {
        let id_dir = plain.child(o.rel.trim_end_matches("/manifest-files.json"));
        let opened = crate::format::source::open(id_dir.clone(), None).await?;
        for (_, table) in opened.tables {
            let table = table?;
            futures::stream::iter(
                table
                    .files
                    .iter()
                    .map(|f| objects::check_md5(&table.dir, f)),
            )
            .buffer_unordered(4)
            .try_collect::<Vec<()>>()
            .await?;
            checked += table.files.len() as u64;
        }
    }
    Ok(checked)
}

/// The final flag: the source's summary, naming the copy's root, its retention, and the
/// run it is a copy of.
async fn write_flag(to: &Location, flag: &[u8], from: &Location, record: &Record) -> Result<()> {
    let mut summary: serde_json::Value =
        serde_json::from_slice(flag).map_err(|e| Error::Corrupt {
            file: from.url_of(&from.join("BACKUP_COMPLETE_SUCCESS")),
            message: format!("not a run summary: {e}"),
        })?;
    if let Some(s) = summary.as_object_mut() {
        s.insert("runRoot".into(), to.url().into());
        s.insert("copiedFrom".into(), from.url().into());
        match &record.object_lock {
            Some(l) => s.insert(
                "objectLock".into(),
                serde_json::to_value(l).expect("serializes"),
            ),
            None => s.remove("objectLock"),
        };
    }
    to.put_json("BACKUP_COMPLETE_SUCCESS", &summary).await
}

/// The target app's chains gain the copied run's links (its native exports), naming the
/// copy: a replay on the target reads the target.
async fn chains(from: &Location, to_base: &Location, rel: &str) -> Result<()> {
    let from_app = chain::app_dir_of_run(from);
    let to_app = to_base.child(&app_of(rel));
    let (src_root, dst_root) = (from.url(), to_base.child(rel).url());
    for table in chain::chained_tables(&from_app).await? {
        let Some(c) = Chain::load(&from_app, &table).await? else {
            continue;
        };
        let links: Vec<chain::Link> = c
            .links
            .into_iter()
            .filter(|l| l.run == src_root)
            .map(|mut l| {
                l.run = dst_root.clone();
                l.export = l.export.replacen(&src_root, &dst_root, 1);
                l
            })
            .collect();
        if links.is_empty() {
            continue;
        }
        let mut target = Chain::load(&to_app, &table).await?.unwrap_or(Chain {
            table: table.clone(),
            links: Vec::new(),
        });
        target.links.retain(|l| l.run != dst_root);
        target.links.extend(links);
        target.links.sort_by_key(|l| (l.to, l.from.is_some()));
        target.save(&to_app).await?;
    }
    Ok(())
}
