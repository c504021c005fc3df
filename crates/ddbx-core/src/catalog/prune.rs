//! Deleting an app's old runs, under the app's lock, never one that is still wanted.
//!
//! Kept, whatever the retention says: every run while none has succeeded yet; the newest
//! successful run; every run its flag says is retained by S3 Object Lock until after now; every run with a RUNNING flag (an export or an import in progress, or
//! one that crashed and may be resumed); every run newer than the newest successful one
//! (it may yet be resumed); and every run whose export a kept incremental run builds on
//! (back to that chain's full export).
//! Retention keeps the `keep_last` newest successful runs and every run younger than
//! `keep_days`. The rest go, eight runs at a time: each run's flags and the app's leases
//! read once more, its objects listed and deleted in batches (S3's
//! DeleteObjects, through `object_store`; in a bucket with Object Lock, every version, once
//! none is retained: [`super::versioned`]), then the app's chains forget the links of the
//! runs that went.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::delete::{delete_run, Deleted};
use super::{list, one_region, run_entry, versioned, Filter, RunEntry, Runs, Status};
use crate::concurrent::each_limited;
use crate::format::chain::{self, Chain, LinkKind};
use crate::run::lock::{live_leases, LockBody, LockSettings, RunLock};
use crate::spool::Spool;
use crate::store::Location;
use crate::{Error, Result};

/// Runs deleted at once.
const RUNS_AT_ONCE: usize = 8;

/// What to keep.
#[derive(Debug, Clone)]
pub struct Retention {
    /// The newest successful runs kept (at least 1).
    pub keep_last: usize,
    /// Runs younger than this many days are kept too.
    pub keep_days: Option<u32>,
    /// Show what would go; delete nothing.
    pub dry_run: bool,
    /// Now (injected in tests).
    pub now: DateTime<Utc>,
}

/// What happens to one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// URL of the run root.
    pub run_root: String,
    /// When it started.
    pub time: DateTime<Utc>,
    /// Its export's status.
    pub status: Status,
    /// Deleted (or, in a dry run, would be).
    pub delete: bool,
    /// Why it is kept.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub kept_because: Vec<String>,
    /// Its objects (counted for the runs that go).
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// What a prune did (or would do).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// The app's folder.
    pub app_dir: String,
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Every run of the app, newest first (each read back when looked at: a prune of ten
    /// thousand runs holds the decisions of none).
    pub runs: Spool<Decision>,
    /// Runs deleted (or that would be).
    pub runs_deleted: usize,
    /// Objects deleted (or that would be).
    pub objects: u64,
    /// Bytes freed (or that would be).
    pub bytes: u64,
    /// Chains whose links to deleted runs were dropped.
    pub chains_updated: Vec<String>,
    /// What failed (the prune stopped at the first failed delete; the runs before it are
    /// gone, as `runs` says).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Prune the runs of `app` under `base` (in the one region holding it, or in `region` when
/// several do). A run that cannot be deleted safely (it holds a symbolic link, a key the
/// store cannot name, or changed since it was listed) is kept, with why; a delete that
/// fails stops the prune, and the report still says what went (its `errors`).
pub async fn prune(
    base: &Location,
    app: &str,
    region: Option<&str>,
    retention: &Retention,
    lock: LockSettings,
) -> Result<PruneReport> {
    if retention.keep_last == 0 {
        return Err(Error::Usage(
            "--keep-last must be at least 1 (the newest successful run is always kept)".into(),
        ));
    }
    // Strict about the region (unlike `latest`): a prune never touches another region's runs.
    let region = one_region(
        &list(base, &Filter::app(app, region)).await?,
        base,
        app,
        region,
    )?;
    let app_rel = format!("{region}/{app}");
    let app_dir = base.child(&app_rel);
    let owner = format!("prune {}", app_dir.url());
    let stale_after = lock.stale_after;
    let held = RunLock::acquire(base, &format!("{app_rel}/_LOCK"), &owner, lock).await?;
    let pruning = Pruning {
        base,
        app_dir: &app_dir,
        region: &region,
        app,
        retention,
        stale_after,
    };
    let result = pruning.locked().await;
    let released = held.release().await;
    let report = result?;
    released?;
    Ok(report)
}

/// One prune of one app, under its lock.
struct Pruning<'a> {
    base: &'a Location,
    app_dir: &'a Location,
    region: &'a str,
    app: &'a str,
    retention: &'a Retention,
    stale_after: std::time::Duration,
}

impl Pruning<'_> {
    async fn locked(&self) -> Result<PruneReport> {
        // Listed again under the lock: no export can start or end a run meanwhile.
        let runs = list(self.base, &Filter::app(self.app, Some(self.region))).await?;
        let mut chains = Vec::new();
        for table in chain::chained_tables(self.app_dir).await? {
            if let Some(c) = Chain::load(self.app_dir, &table).await? {
                chains.push(c);
            }
        }
        let mut kept = decide(&runs, &chains, self.retention)?;
        // The runs live imports read are kept too, and the rest go: one pass.
        let leases = live_leases(self.app_dir, self.stale_after).await?;
        let mut going = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            let run = run?;
            for why in self.leased(&leases, &run) {
                kept.entry(run.run_root.clone()).or_default().push(why);
            }
            if !kept.contains_key(&run.run_root) {
                going.push(i);
            }
        }
        let outcomes = self.delete_runs(&runs, going).await?;
        let (mut report, gone) = self.report(&runs, kept, outcomes, &chains)?;
        report.chains_updated = self.forget(chains, &gone, &mut report.errors).await;
        Ok(report)
    }

    /// Delete the runs at the places `going` of the listing: several runs at once (each is
    /// a few requests to S3 in a row: leases, flags, a listing, the deletes), none started
    /// after one failed. (Each run is read back at its place: no search of the runs for it.)
    async fn delete_runs(&self, runs: &Runs, going: Vec<usize>) -> Result<Outcomes> {
        // In a bucket with Object Lock, runs go version by version, none still retained.
        let locked = versioned::locked_bucket(self.app_dir).await?;
        let failed = std::cell::Cell::new(false);
        let mut ended = each_limited(going, RUNS_AT_ONCE, |i| {
            let (locked, failed) = (locked.as_ref(), &failed);
            async move {
                if failed.get() {
                    let why = "not reached: an earlier delete failed".to_string();
                    return (i, Ok(Deleted::Kept(why)));
                }
                let outcome = match runs.get(i) {
                    Ok(run) => self.delete_one(&run, locked).await,
                    Err(e) => Err(e),
                };
                if matches!(outcome, Err(_) | Ok(Deleted::Failed(_))) {
                    failed.set(true);
                }
                (i, outcome)
            }
        });
        let mut outcomes = Outcomes::default();
        while let Some((i, outcome)) = ended.next().await {
            match outcome {
                Ok(Deleted::Gone { objects, bytes }) => outcomes.went.push((i, objects, bytes)),
                outcome => {
                    outcomes.other.insert(i, outcome);
                }
            }
        }
        outcomes.went.sort_unstable();
        Ok(outcomes)
    }

    /// Each run's decision, in the listing's order, kept as it is made, with the runs the
    /// chains link to that went.
    fn report(
        &self,
        runs: &Runs,
        mut kept: BTreeMap<String, Vec<String>>,
        outcomes: Outcomes,
        chains: &[Chain],
    ) -> Result<(PruneReport, BTreeSet<String>)> {
        let linked: BTreeSet<&str> = chains
            .iter()
            .flat_map(|c| c.links.iter().map(|l| l.run.as_str()))
            .collect();
        let mut gone = BTreeSet::new();
        let mut report = PruneReport {
            app_dir: self.app_dir.url(),
            dry_run: self.retention.dry_run,
            runs: Spool::new("the prune's decisions"),
            runs_deleted: 0,
            objects: 0,
            bytes: 0,
            chains_updated: Vec::new(),
            errors: Vec::new(),
        };
        let Outcomes { went, mut other } = outcomes;
        let mut went = went.into_iter().peekable();
        let mut first_error = None;
        for (i, run) in runs.iter().enumerate() {
            let run = run?;
            let kept_because = kept.remove(&run.run_root).unwrap_or_default();
            let mut d = Decision {
                delete: kept_because.is_empty(),
                run_root: run.run_root,
                time: run.time,
                status: run.backup.status,
                kept_because,
                objects: 0,
                bytes: 0,
            };
            let outcome = match went.next_if(|(at, ..)| *at == i) {
                Some((_, objects, bytes)) => Some(Ok(Deleted::Gone { objects, bytes })),
                None => other.remove(&i),
            };
            match outcome {
                None => {}
                Some(Ok(Deleted::Gone { objects, bytes })) => {
                    d.objects = objects;
                    d.bytes = bytes;
                }
                Some(Ok(Deleted::Kept(why))) => {
                    d.delete = false;
                    d.kept_because.push(why);
                }
                Some(Ok(Deleted::Failed(e))) => {
                    d.delete = false;
                    d.kept_because.push(format!("its delete failed: {e}"));
                    report.errors.push(format!("{}: {e}", d.run_root));
                }
                Some(Err(e)) => {
                    first_error.get_or_insert(e);
                }
            }
            if d.delete {
                report.runs_deleted += 1;
                report.objects += d.objects;
                report.bytes += d.bytes;
                if linked.contains(d.run_root.as_str()) {
                    gone.insert(d.run_root.clone());
                }
            }
            report.runs.push(&d)?;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok((report, gone)),
        }
    }

    /// One run that the retention lets go: checked once more, then deleted (or counted).
    async fn delete_one(
        &self,
        run: &RunEntry,
        locked: Option<&std::sync::Arc<crate::store::s3::Bucket>>,
    ) -> Result<Deleted> {
        if let Some(why) = self.still_to_delete(run).await? {
            return Ok(Deleted::Kept(why));
        }
        let root = self.base.child(run.run_dir());
        let deleted = match locked {
            Some(bucket) => {
                versioned::delete_run(bucket, &root, self.retention.dry_run, self.retention.now)
                    .await
                    .map(|o| match o {
                        versioned::Outcome::Gone { objects, bytes } => {
                            Deleted::Gone { objects, bytes }
                        }
                        versioned::Outcome::Retained(why) => Deleted::Kept(why),
                    })
            }
            None => delete_run(&root, self.app_dir, self.retention.dry_run).await,
        };
        Ok(deleted.unwrap_or_else(Deleted::Failed))
    }

    /// Why `run` is kept for the live imports that read it (`leases`), if any does.
    fn leased(&self, leases: &[LockBody], run: &RunEntry) -> Vec<String> {
        leases
            .iter()
            .filter(|lease| {
                let reads = lease.reads.as_deref().unwrap_or_default();
                // A replay reads the app's folder: every run of its chains, so every run.
                run.run_root == reads || reads == self.app_dir.url()
            })
            .map(|lease| {
                format!(
                    "an import from it is running ({}, {}, last refreshed {})",
                    lease.run, lease.owner, lease.refreshed_at
                )
            })
            .collect()
    }

    /// Just before a run goes: its flags read again, and the leases; why it must stay now,
    /// if it must (an import started reading it, a run resumed it, a flag changed).
    async fn still_to_delete(&self, run: &RunEntry) -> Result<Option<String>> {
        let leases = live_leases(self.app_dir, self.stale_after).await?;
        if let Some(why) = self.leased(&leases, run).pop() {
            return Ok(Some(why));
        }
        let Some(now) = run_entry(self.base, run.run_dir(), &Default::default()).await else {
            return Ok(Some("it can no longer be listed".into()));
        };
        let restoring = now.restore.as_ref().is_some_and(|j| j.is_running());
        let changed = now.backup.status != run.backup.status
            && !(now.backup.is_running() && run.backup.is_running());
        Ok(if restoring {
            Some("an import from it started (RESTORE_RUNNING)".into())
        } else if changed {
            Some(format!(
                "its export changed since it was listed ({} now)",
                now.backup.status.word()
            ))
        } else {
            None
        })
    }

    /// The app's chains forget the links of the runs that went.
    async fn forget(
        &self,
        chains: Vec<Chain>,
        gone: &BTreeSet<String>,
        errors: &mut Vec<String>,
    ) -> Vec<String> {
        let mut updated = Vec::new();
        for mut c in chains {
            let before = c.links.len();
            c.links.retain(|l| !gone.contains(l.run.as_str()));
            if c.links.len() == before {
                continue;
            }
            updated.push(c.table.clone());
            if self.retention.dry_run {
                continue;
            }
            let saved = if c.links.is_empty() {
                let dir = chain::chains_dir(self.app_dir);
                let path = dir.join(&format!("{}.json", c.table));
                dir.store
                    .delete(&path)
                    .await
                    .map_err(|e| Error::store(dir.url_of(&path), e))
            } else {
                c.save(self.app_dir).await
            };
            if let Err(e) = saved {
                errors.push(format!("chain of {}: {e}", c.table));
            }
        }
        updated
    }
}

/// What the deletes did: the sizes of the runs that went (most of them, 24 bytes each),
/// and the rest whole, by their place in the listing.
#[derive(Default)]
struct Outcomes {
    went: Vec<(usize, u64, u64)>,
    other: BTreeMap<usize, Result<Deleted>>,
}

/// Why `r` is kept when its flag says it is retained (S3 Object Lock) past `now`.
fn retained(r: &RunEntry, now: DateTime<Utc>) -> Option<String> {
    let l = r
        .backup
        .object_lock
        .as_ref()
        .filter(|l| l.retain_until > now)?;
    Some(format!(
        "retained until {} (Object Lock {})",
        l.retain_until.format("%Y-%m-%d %H:%M:%S UTC"),
        l.mode.name()
    ))
}

/// Which runs are kept, each with its reasons (runs newest first): two passes over the
/// listing, the first to find the newest success.
fn decide(
    runs: &Runs,
    chains: &[Chain],
    retention: &Retention,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut keep = |run: &str, why: String| kept.entry(run.to_string()).or_default().push(why);
    let mut newest = None;
    for r in runs.iter() {
        let r = r?;
        if r.backup.status == Status::Success {
            newest = Some((r.run_root, r.time));
            break;
        }
    }
    let since = retention
        .keep_days
        .map(|days| (days, retention.now - Duration::days(i64::from(days))));
    let mut successes = 0;
    for r in runs.iter() {
        let r = r?;
        let root = &r.run_root;
        match &newest {
            None => keep(root, "no run has succeeded yet: none is pruned".into()),
            Some((n, _)) if n == root => keep(root, "the newest successful run".into()),
            // (Newest first: these are the runs before it.)
            Some((_, time)) if r.time > *time => keep(
                root,
                "newer than the newest successful run (it may be resumed)".into(),
            ),
            Some(_) => {}
        }
        if r.backup.status == Status::Success {
            successes += 1;
            if successes <= retention.keep_last {
                keep(
                    root,
                    format!("one of the {} newest successful runs", retention.keep_last),
                );
            }
        }
        if let Some((days, since)) = since {
            if r.time >= since {
                keep(root, format!("younger than {days} days"));
            }
        }
        if let Some(why) = retained(&r, retention.now) {
            keep(root, why);
        }
        match r.backup.status {
            Status::Running => keep(root, "its export is RUNNING".into()),
            Status::Crashed => keep(
                root,
                "its export crashed (RUNNING, no live lock): export --resume continues it".into(),
            ),
            Status::Unknown => keep(
                root,
                format!(
                    "its flags cannot be read ({})",
                    r.backup.problem.as_deref().unwrap_or("unknown")
                ),
            ),
            _ => {}
        }
        if r.restore.as_ref().is_some_and(|j| j.is_running()) {
            keep(root, "an import from it is RUNNING (or crashed)".into());
        }
    }
    // A kept run's incremental windows need every link back to their chain's full export.
    loop {
        let mut added = Vec::new();
        for c in chains {
            for (i, link) in c.links.iter().enumerate() {
                if link.kind != LinkKind::Incremental || !kept.contains_key(&link.run) {
                    continue;
                }
                for earlier in c.links[..i].iter().rev() {
                    if earlier.run != link.run && !kept.contains_key(&earlier.run) {
                        added.push((earlier.run.clone(), link.run.clone(), c.table.clone()));
                    }
                    if earlier.kind == LinkKind::Full {
                        break;
                    }
                }
            }
        }
        if added.is_empty() {
            break;
        }
        for (run, by, table) in added {
            let why = format!("table {table} of kept run {by} builds on it");
            let reasons = kept.entry(run).or_default();
            if !reasons.contains(&why) {
                reasons.push(why);
            }
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::JobEntry;
    use crate::format::chain::Link;

    fn at(day: u32) -> DateTime<Utc> {
        format!("2026-11-{day:02}T02:00:00Z").parse().unwrap()
    }

    fn run(day: u32, status: Status) -> RunEntry {
        RunEntry {
            time: at(day),
            region: "r".into(),
            app: "a".into(),
            run_root: format!("run{day:02}"),
            backup: JobEntry {
                status,
                tables: 1,
                ..JobEntry::incomplete("backup")
            },
            restore: None,
            deleted: None,
            dir: format!("r/a/{day:02}"),
        }
    }

    fn link(day: u32, kind: LinkKind) -> Link {
        Link {
            kind,
            run: format!("run{day:02}"),
            from: None,
            to: at(day),
            export: format!("e{day}"),
            export_arn: String::new(),
        }
    }

    fn retention(keep_last: usize, keep_days: Option<u32>) -> Retention {
        Retention {
            keep_last,
            keep_days,
            dry_run: true,
            now: at(30),
        }
    }

    fn listed(runs: &[RunEntry]) -> Runs {
        runs.iter().cloned().collect()
    }

    fn kept(runs: &[RunEntry], chains: &[Chain], r: &Retention) -> Vec<String> {
        decide(&listed(runs), chains, r)
            .unwrap()
            .into_keys()
            .collect()
    }

    #[test]
    fn a_run_retained_past_now_is_kept_and_one_whose_retention_ended_is_not() {
        use crate::store::retention::{LockMode, LockRequest};
        let lock = |days| {
            Some(
                LockRequest {
                    mode: LockMode::Governance,
                    days,
                }
                .from(at(1)),
            )
        };
        let mut runs: Vec<RunEntry> = (1..=3).rev().map(|d| run(d, Status::Success)).collect();
        runs[2].backup.object_lock = lock(30); // day 1 + 30 days: past now (day 30)
        runs[1].backup.object_lock = lock(10); // day 1 + 10 days: ended
        let r = retention(1, None);
        let kept = decide(&listed(&runs), &[], &r).unwrap();
        assert_eq!(
            kept.get("run01").unwrap(),
            &vec!["retained until 2026-12-01 02:00:00 UTC (Object Lock GOVERNANCE)".to_string()]
        );
        assert!(!kept.contains_key("run02"));
    }

    #[test]
    fn keeps_the_newest_successes_and_what_they_need() {
        // Days 1..=30, newest first; day 30 failed, 29 running; a chain: full on day 20,
        // windows on 21..=29.
        let mut runs: Vec<RunEntry> = (1..=28).rev().map(|d| run(d, Status::Success)).collect();
        runs.insert(0, run(29, Status::Running));
        runs.insert(0, run(30, Status::Failed));
        let mut links = vec![link(10, LinkKind::Full), link(20, LinkKind::Full)];
        links.extend((21..=28).map(|d| link(d, LinkKind::Incremental)));
        let chains = [Chain {
            table: "t".into(),
            links,
        }];
        let k = kept(&runs, &chains, &retention(3, None));
        // 30 and 29 are newer than the newest success (28); 26..28 the newest three; the
        // windows of 26 need 21..25 and the full export of 20; not 10.
        let want: Vec<String> = (20..=30).map(|d| format!("run{d:02}")).collect();
        assert_eq!(k, want);
    }

    #[test]
    fn keep_days_and_the_newest_success_when_everything_since_failed() {
        let mut runs: Vec<RunEntry> = (11..=30).rev().map(|d| run(d, Status::Failed)).collect();
        runs.push(run(5, Status::Success));
        runs.push(run(4, Status::Success));
        let k = kept(&runs, &[], &retention(1, Some(2)));
        // Everything newer than day 5 may be resumed; days 28..30 are young; 4 goes.
        assert!(k.contains(&"run05".to_string()));
        assert!(!k.contains(&"run04".to_string()));
        assert_eq!(k.len(), 21);
    }

    #[test]
    fn the_region_is_the_only_one_holding_the_app_or_the_one_named() {
        let base = crate::store::Storage::default().open("/tmp").unwrap();
        let mut runs = vec![run(1, Status::Success)];
        // An import into eu-west-1 still finds the app's only region.
        assert_eq!(
            crate::catalog::one_region(&listed(&runs), &base, "a", Some("eu-west-1")).unwrap(),
            "r"
        );
        runs.push(RunEntry {
            region: "s".into(),
            ..run(2, Status::Success)
        });
        assert_eq!(
            crate::catalog::one_region(&listed(&runs), &base, "a", Some("s")).unwrap(),
            "s"
        );
        let why = crate::catalog::one_region(&listed(&runs), &base, "a", None).unwrap_err();
        assert!(why.to_string().contains("r, s"), "{why}");
    }

    #[test]
    fn nothing_is_pruned_before_a_first_success() {
        let runs: Vec<RunEntry> = (1..=9).rev().map(|d| run(d, Status::Failed)).collect();
        assert_eq!(kept(&runs, &[], &retention(1, None)).len(), 9);
    }

    #[test]
    fn an_import_running_from_an_old_run_keeps_it() {
        let mut runs: Vec<RunEntry> = (1..=5).rev().map(|d| run(d, Status::Success)).collect();
        runs[4].restore = Some(JobEntry {
            job: "restore".into(),
            status: Status::Running,
            ..runs[4].backup.clone()
        });
        let k = kept(&runs, &[], &retention(1, None));
        assert_eq!(k, vec!["run01", "run05"]);
    }
}
