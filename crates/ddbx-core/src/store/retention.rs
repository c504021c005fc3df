//! Object Lock (`--object-lock compliance|governance --retain DAYS`): every object that
//! makes a backup is written with `ObjectLockMode` and `RetainUntilDate`, so that nobody
//! (the credentials that wrote it included) deletes its data before that date: a delete
//! without a version only hides it behind a delete marker, which `--recover-deleted`
//! reads past.
//!
//! What must stay replaceable is written as before, unretained: the app's lock and the
//! imports' leases (above the run root), and in a run root its working files (the
//! `BACKUP_RUNNING` flag, removed when the run ends; `_export/` checkpoints and records,
//! `_capacity/`, `_import/`, `_emr/`, `_copy/`; an import's `RESTORE_*` flags).
//!
//! [`Retained`] wraps a run root's store: its backup objects go through the AWS SDK
//! ([`super::s3`]: `object_store` cannot send the lock headers), everything else through
//! the store it wraps. What another writer made in the run (AWS's export service, an EMR
//! cluster) is retained after it was written ([`retain_written`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use serde::{Deserialize, Serialize};

use super::s3::{Bucket, BucketLock, Retention};
use super::Location;
use crate::{Error, Result};

/// The two retention modes of S3 Object Lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockMode {
    /// Nobody, the account's root user included, deletes a version or shortens its
    /// retention before its date.
    Compliance,
    /// Only a principal with `s3:BypassGovernanceRetention`, asking for it, can.
    Governance,
}

impl LockMode {
    /// The name S3 knows it by.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

/// What `--object-lock MODE --retain DAYS` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRequest {
    /// The mode.
    pub mode: LockMode,
    /// Days from the run's start.
    pub days: u32,
}

impl LockRequest {
    /// The retention of a run starting (or a copy made) at `start`: `days` later, rounded
    /// up to the second (what S3 keeps).
    pub fn from(self, start: DateTime<Utc>) -> ObjectLock {
        let until = start + chrono::Duration::days(i64::from(self.days));
        let secs = until.timestamp() + i64::from(until.timestamp_subsec_nanos() > 0);
        ObjectLock {
            mode: self.mode,
            days: self.days,
            retain_until: DateTime::from_timestamp(secs, 0).unwrap_or(until),
        }
    }
}

/// A run's retention, as `export-plan.json` and its flags record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectLock {
    /// The mode.
    pub mode: LockMode,
    /// Days asked for.
    pub days: u32,
    /// Every backup object of the run is retained until then (to the second).
    pub retain_until: DateTime<Utc>,
}

impl ObjectLock {
    /// As S3 takes it.
    pub fn retention(&self) -> Retention {
        Retention {
            mode: self.mode.name().into(),
            until: self.retain_until,
        }
    }

    /// The request it answers.
    pub fn request(&self) -> LockRequest {
        LockRequest {
            mode: self.mode,
            days: self.days,
        }
    }
}

/// The folders of a run root that hold its working files, never retained.
pub const WORKING_FOLDERS: [&str; 5] = ["_export", "_capacity", "_import", "_emr", "_copy"];

/// Whether the object at `rel` (relative to a run root) is part of the backup, and so
/// retained: everything but the working files.
pub fn is_backup_object(rel: &str) -> bool {
    let first = rel.split('/').next().unwrap_or_default();
    !(WORKING_FOLDERS.contains(&first)
        || rel == "BACKUP_RUNNING"
        || (first == rel && rel.starts_with("RESTORE_")))
}

/// Check, before anything is written, that the bucket of `loc` takes what is asked:
/// Object Lock enabled (else refused, naming the bucket and the fix). Returns the
/// bucket's configuration.
pub async fn check_bucket(loc: &Location, asked: LockRequest) -> Result<BucketLock> {
    let Some(bucket) = &loc.s3 else {
        return Err(Error::Usage(format!(
            "{}: --object-lock is S3 Object Lock: the destination must be an s3:// bucket that has it",
            loc.url()
        )));
    };
    let lock = bucket.object_lock().await.map_err(|e| {
        Error::store(
            format!(
                "s3://{} (its Object Lock configuration, s3:GetBucketObjectLockConfiguration)",
                bucket.name
            ),
            e,
        )
    })?;
    if !lock.enabled {
        return Err(Error::Usage(format!(
            "s3://{b}: Object Lock is not enabled on this bucket, so --object-lock {} cannot retain anything; nothing was written. \
             Enable it (versioning first): `aws s3api put-bucket-versioning --bucket {b} --versioning-configuration Status=Enabled` then \
             `aws s3api put-object-lock-configuration --bucket {b} --object-lock-configuration ObjectLockEnabled=Enabled` \
             (or create the bucket with --object-lock-enabled-for-bucket), or write to a bucket that has it",
            asked.mode.name().to_lowercase(),
            b = bucket.name
        )));
    }
    Ok(lock)
}

impl Location {
    /// This location (a run root) writing its backup objects retained as `lock` says
    /// (S3 only: a folder is refused).
    pub fn retained(&self, lock: &ObjectLock) -> Result<Location> {
        let Some(bucket) = &self.s3 else {
            return Err(Error::Usage(format!(
                "{}: Object Lock retains objects in S3, not in a folder",
                self.url()
            )));
        };
        let mut retaining = Bucket::clone(bucket);
        retaining.retain = Some((lock.retention(), self.prefix.to_string()));
        let retaining = Arc::new(retaining);
        Ok(Location {
            store: Arc::new(Retained {
                inner: self.store.clone(),
                bucket: retaining.clone(),
                root: self.prefix.clone(),
            }),
            s3: Some(retaining),
            ..self.clone()
        })
    }
}

/// Retain every object under `dir` that another writer made (AWS's export service, an
/// EMR cluster), when `dir` is in a retained run; returns how many. A no-op elsewhere.
pub async fn retain_written(dir: &Location) -> Result<u64> {
    let Some((bucket, retention)) = dir
        .s3
        .as_ref()
        .and_then(|b| b.retains().map(|r| (b, r.clone())))
    else {
        return Ok(0);
    };
    let objects: Vec<ObjectMeta> = dir
        .store
        .list(Some(&dir.prefix))
        .try_collect()
        .await
        .map_err(|e| Error::store(dir.url(), e))?;
    let count = objects.len() as u64;
    let puts: Vec<_> = objects
        .into_iter()
        .map(|o| {
            let (bucket, retention) = (bucket.clone(), retention.clone());
            let url = dir.url_of(&o.location);
            async move {
                bucket
                    .put_retention(o.location.as_ref(), &retention)
                    .await
                    .map_err(|e| Error::store(url, e))
            }
        })
        .collect();
    futures::stream::iter(puts)
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(count)
}

/// A run root's store whose backup objects are written retained (see the module).
#[derive(Debug)]
pub struct Retained {
    inner: Arc<dyn ObjectStore>,
    bucket: Arc<Bucket>,
    root: Path,
}

impl Retained {
    /// How `location` is written retained, if it is a backup object of the run.
    fn retention(&self, location: &Path) -> Option<&Retention> {
        let rel = location.prefix_match(&self.root)?;
        let rel: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
        if rel.is_empty() || !is_backup_object(&rel.join("/")) {
            return None;
        }
        self.bucket.retains()
    }
}

impl std::fmt::Display for Retained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (Object Lock)", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Retained {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        match self.retention(location) {
            Some(r) => {
                self.bucket
                    .put_retained(location.as_ref(), payload, &opts.mode, r)
                    .await
            }
            None => self.inner.put_opts(location, payload, opts).await,
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        match self.retention(location) {
            Some(r) => self.bucket.upload_retained(location.as_ref(), r).await,
            None => self.inner.put_multipart_opts(location, opts).await,
        }
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.inner.delete(location).await
    }

    fn delete_stream<'a>(
        &'a self,
        locations: BoxStream<'a, object_store::Result<Path>>,
    ) -> BoxStream<'a, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backup_is_retained_and_the_working_files_are_not() {
        for kept in [
            "BACKUP_COMPLETE_SUCCESS",
            "BACKUP_COMPLETE_FAILED",
            "export-plan.json",
            "restore-plan.json",
            "orders/table.json",
            "orders/AWSDynamoDB/01-x/data/a.json.gz",
            "orders/AWSDynamoDB/01-x/manifest-files.md5",
            "_tables/_export/table.json",
            "exportSteps_01.json",
        ] {
            assert!(is_backup_object(kept), "{kept}");
        }
        for working in [
            "BACKUP_RUNNING",
            "RESTORE_RUNNING",
            "RESTORE_COMPLETE_SUCCESS",
            "_export/orders/segment-00001.json",
            "_export/native.json",
            "_capacity/orders-read.json",
            "_import/orders/checkpoint.json",
            "_emr/export-orders.q",
            "_copy/source.json",
        ] {
            assert!(!is_backup_object(working), "{working}");
        }
    }

    #[test]
    fn the_retention_runs_from_the_start_to_the_second() {
        let start: DateTime<Utc> = "2026-12-01T03:00:00.750Z".parse().unwrap();
        let lock = LockRequest {
            mode: LockMode::Compliance,
            days: 30,
        }
        .from(start);
        assert_eq!(lock.retain_until.to_rfc3339(), "2026-12-31T03:00:01+00:00");
        assert_eq!(lock.retention().mode, "COMPLIANCE");
        let json = serde_json::to_value(&lock).unwrap();
        assert_eq!(json["mode"], "COMPLIANCE");
        assert_eq!(json["days"], 30);
        assert!(json["retainUntil"].is_string());
    }
}
