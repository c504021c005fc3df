//! The seed's status flags (`BACKUP_RUNNING`, `BACKUP_COMPLETE_SUCCESS`,
//! `BACKUP_COMPLETE_FAILED`, and the same for restores), each holding a small JSON summary.

use serde::Serialize;

use crate::store::{Body, Location};
use crate::{Error, Result};

/// Which job the flags are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// An export: `BACKUP_*`.
    Backup,
    /// An import: `RESTORE_*`.
    Restore,
}

impl Job {
    fn word(self) -> &'static str {
        match self {
            Job::Backup => "BACKUP",
            Job::Restore => "RESTORE",
        }
    }

    /// The flag present while the job runs.
    pub fn running(self) -> String {
        format!("{}_RUNNING", self.word())
    }

    /// The flag written when every table succeeded.
    pub fn success(self) -> String {
        format!("{}_COMPLETE_SUCCESS", self.word())
    }

    /// The flag written when any table failed.
    pub fn failed(self) -> String {
        format!("{}_COMPLETE_FAILED", self.word())
    }
}

/// The flags of one run root.
#[derive(Debug, Clone)]
pub struct Flags {
    run: Location,
    job: Job,
}

impl Flags {
    /// Flags for `job` at the run root `run`.
    pub fn new(run: Location, job: Job) -> Self {
        Self { run, job }
    }

    /// Write the RUNNING flag and remove stale completion flags of an earlier attempt:
    /// only those there (a new run root deletes nothing, so a writer that may delete only
    /// its working files starts it); one this writer may not delete (a retained run's,
    /// under a policy that keeps what it wrote) stays, said in the log: the final flag of
    /// this attempt is read before it.
    pub async fn start(&self, summary: &impl Serialize) -> Result<()> {
        for old in [self.job.success(), self.job.failed()] {
            if !self.run.exists(&old).await? {
                continue;
            }
            match self.remove(&old).await {
                Err(Error::Store {
                    source: object_store::Error::PermissionDenied { .. },
                    path,
                    ..
                }) => {
                    tracing::warn!(flag = %path, "this writer may not delete an earlier attempt's flag: it stays");
                }
                done => done?,
            }
        }
        self.put(&self.job.running(), summary).await
    }

    /// Write the final flag (SUCCESS or FAILED), then remove RUNNING.
    pub async fn finish(&self, success: bool, summary: &impl Serialize) -> Result<()> {
        let name = if success {
            self.job.success()
        } else {
            self.job.failed()
        };
        self.put(&name, summary).await?;
        self.remove(&self.job.running()).await
    }

    async fn put(&self, name: &str, summary: &impl Serialize) -> Result<()> {
        self.run
            .put_document(name, Body::json(name, summary)?)
            .await
    }

    async fn remove(&self, name: &str) -> Result<()> {
        let path = self.run.join(name);
        match self.run.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::store(self.run.url_of(&path), e)),
        }
    }
}
