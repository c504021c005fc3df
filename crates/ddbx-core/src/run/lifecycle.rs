//! The one lifecycle of a run, whatever the job (export, import, verify) and the engine:
//!
//! 1. take the lock (when the job has one), and refuse a run root that already holds a run
//!    (a new export);
//! 2. the job's checks (nothing is written yet: a refusal leaves no trace);
//! 3. the RUNNING flag, with every table planned, then the plan files;
//! 4. the work (the engine), which returns a report per table and the files to end with;
//! 5. those files, then the final flag (SUCCESS or FAILED, with the summary);
//! 6. the lock released, whatever happened.
//!
//! An interrupted run is one whose tables report "interrupted": it ends the same way, with
//! its FAILED flag saying so and its lock released. The exit code follows from the summary
//! (the binary maps it, in one place).

use chrono::{DateTime, Utc};

use crate::report::{Reports, RunSummary};
use crate::run::lock::{LockSettings, RunLock, SharedLock};
use crate::run::status::{Flags, Job};
use crate::stop::StopSignal;
use crate::store::{Body, Location};
use crate::{Error, Result};

/// The lock a run holds: one run per app at a time.
#[derive(Debug, Clone)]
pub struct LockSpec<'a> {
    /// The base location the lock is under.
    pub base: &'a Location,
    /// The lock object, relative to `base` (`<region>/<app>/_LOCK`).
    pub path: String,
    /// Who holds it (the run), for the messages of those who find it held.
    pub owner: String,
    /// Stale locks and takeover.
    pub settings: LockSettings,
}

/// The app's lock held shared: an import's lease on the run (or app folder) it reads.
#[derive(Debug, Clone)]
pub struct LeaseSpec<'a> {
    /// The app's folder (`<base>/<region>/<app>`).
    pub app_dir: Location,
    /// What the import reads (a run root, or the app folder for a replay).
    pub reads: String,
    /// Ends a wait for a prune.
    pub stop: &'a StopSignal,
}

/// A run about to start.
pub struct Run<'a> {
    /// The flags it raises (`BACKUP_*`, `RESTORE_*`); none for a verify.
    pub flags: Option<Job>,
    /// Where the flags and plan files go.
    pub root: &'a Location,
    /// The lock to hold, if any.
    pub lock: Option<LockSpec<'a>>,
    /// The app's lock to hold shared, if any (taken before `lock`).
    pub lease: Option<LeaseSpec<'a>>,
    /// Refuse a root that already holds anything (a new export's run root).
    pub fresh: bool,
    /// Makes the summary of the table reports (`None`: still running).
    pub summarize: &'a (dyn Fn(Reports, Option<DateTime<Utc>>) -> RunSummary + Sync),
}

/// What the work of a run ends with.
#[derive(Debug)]
pub struct Outcome<T> {
    /// One report per table.
    pub reports: Reports,
    /// Documents to write at the run root before the final flag (the restore plan).
    pub files: Vec<Document>,
    /// What else the job returns (verify's verdicts).
    pub extra: T,
}

impl Run<'_> {
    /// Go through the lifecycle: `tables` are the planned tables (for the RUNNING flag),
    /// `plan_files` are written once the run is RUNNING, `check` runs before anything is
    /// written and `work` does the work.
    pub async fn execute<T>(
        self,
        tables: Reports,
        plan_files: Vec<Document>,
        check: impl std::future::Future<Output = Result<()>>,
        work: impl std::future::Future<Output = Result<Outcome<T>>>,
    ) -> Result<(RunSummary, T)> {
        let lease = match &self.lease {
            Some(l) => self.lease(l).await?,
            None => None,
        };
        let lock = match &self.lock {
            Some(l) => RunLock::acquire(l.base, &l.path, &l.owner, l.settings.clone())
                .await
                .map(Some),
            None => Ok(None),
        };
        let lock = match lock {
            Ok(lock) => lock,
            Err(e) => {
                if let Some(l) = lease {
                    let _ = l.release().await;
                }
                return Err(e);
            }
        };
        let result = self.locked(tables, plan_files, check, work).await;
        let released = match lock {
            Some(l) => l.release().await,
            None => Ok(()),
        };
        if let Some(l) = lease {
            if let Err(e) = l.release().await {
                tracing::warn!(error = %e, "could not give back the lease on the app's runs");
            }
        }
        let done = result?;
        released?;
        Ok(done)
    }

    /// Take the app's lock shared; a place this run may not write (a bucket it may only
    /// read) gets none, said so.
    async fn lease(&self, l: &LeaseSpec<'_>) -> Result<Option<SharedLock>> {
        let owner = self.lock.as_ref().map_or("a run", |l| l.owner.as_str());
        let settings = self
            .lock
            .as_ref()
            .map(|l| l.settings.clone())
            .unwrap_or_default();
        match SharedLock::acquire(&l.app_dir, owner, &l.reads, &settings, l.stop).await {
            Ok(lease) => Ok(Some(lease)),
            Err(Error::Store { path, source, .. }) => {
                tracing::warn!(lease = %path, error = %source, "could not hold the app's lock shared (a folder this run may not write?): a prune of the app may delete this run meanwhile");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn locked<T>(
        &self,
        tables: Reports,
        plan_files: Vec<Document>,
        check: impl std::future::Future<Output = Result<()>>,
        work: impl std::future::Future<Output = Result<Outcome<T>>>,
    ) -> Result<(RunSummary, T)> {
        if self.fresh {
            refuse_existing_run(self.root).await?;
        }
        check.await?;
        let flags = self.flags.map(|job| Flags::new(self.root.clone(), job));
        if let Some(f) = &flags {
            f.start(&(self.summarize)(tables, None)).await?;
        }
        // Each document dropped once written: a fleet's plan is megabytes.
        for doc in plan_files {
            doc.write(self.root).await?;
        }
        let outcome = work.await?;
        for doc in outcome.files {
            doc.write(self.root).await?;
        }
        let mut reports = outcome.reports;
        reports.sort_by_table();
        let summary = (self.summarize)(reports, Some(Utc::now()));
        if let Some(f) = &flags {
            f.finish(summary.succeeded(), &summary).await?;
        }
        Ok((summary, outcome.extra))
    }
}

/// A new run never writes into a run root that holds anything: an earlier run's files are
/// never overwritten or mixed with this one's. (Checked under the app's lock.)
async fn refuse_existing_run(run_dir: &Location) -> Result<()> {
    use futures::StreamExt;
    let mut listing = run_dir.store.list(Some(&run_dir.prefix));
    if let Some(first) = listing.next().await {
        let found = first.map_err(|e| Error::store(run_dir.url(), e))?;
        return Err(Error::RunRootTaken(format!(
            "{} already holds a run ({} exists); nothing was written. Continue it with --resume {}, or pick another --run-time",
            run_dir.url(),
            run_dir.url_of(&found.location),
            run_dir.url()
        )));
    }
    Ok(())
}

/// A document for [`Outcome::files`] or a plan file, held as the bytes it is written as
/// (a fleet's plan as a tree of JSON values took ten times its size, for the whole run),
/// in a temporary file when large (`store::Body`).
#[derive(Debug)]
pub struct Document {
    name: String,
    body: Body,
}

impl Document {
    async fn write(self, root: &Location) -> Result<()> {
        root.put_document(&self.name, self.body).await
    }
}

/// `value` as the document `name` (pretty JSON, as [`Location::put_json`] writes it).
pub fn document(name: &str, value: &impl serde::Serialize) -> Result<Document> {
    Ok(Document {
        name: name.to_string(),
        body: Body::json(name, value)?,
    })
}
