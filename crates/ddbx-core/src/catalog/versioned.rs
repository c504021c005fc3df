//! Pruning a run in a bucket with Object Lock: there a delete without a version only hides
//! the data behind a delete marker (the bytes stay, and are paid for), and a retained
//! version cannot be deleted at all. So such a run goes version by version, after every
//! version was found past its retention: a run any version of which is still retained
//! (by its own `--object-lock`, a bucket's default retention, or a retention set later)
//! is kept whole, with the date, and a prune never stops half-way on S3's AccessDenied.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::store::s3::{Bucket, Retention, Version, DELETE_BATCH};
use crate::store::Location;
use crate::{Error, Result};

/// What became of a run in a bucket with Object Lock.
pub(super) enum Outcome {
    /// Every version and delete marker went (or, in a dry run, would): how many, and
    /// the bytes of the versions.
    Gone { objects: u64, bytes: u64 },
    /// A version is retained past `now`: nothing of the run was deleted.
    Retained(String),
}

/// Whether `root` is in a bucket with Object Lock enabled (so pruned by versions).
pub(super) async fn locked_bucket(root: &Location) -> Result<Option<Arc<Bucket>>> {
    let Some(bucket) = &root.s3 else {
        return Ok(None);
    };
    let lock = bucket.object_lock().await.map_err(|e| {
        Error::store(
            format!("s3://{} (its Object Lock configuration)", bucket.name),
            e,
        )
    })?;
    Ok(lock.enabled.then(|| bucket.clone()))
}

/// Delete every version and delete marker under the run root `root` of `bucket`, once
/// none is retained past `now` (a dry run only checks and counts).
pub(super) async fn delete_run(
    bucket: &Bucket,
    root: &Location,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let prefix = format!("{}/", root.prefix);
    let versions = bucket
        .versions(&prefix, None)
        .await
        .map_err(|e| Error::store(root.url(), e))?
        .entries;
    if let Some((v, r)) = retained(bucket, &versions, now).await? {
        return Ok(Outcome::Retained(format!(
            "retained until {} (Object Lock {}, {} and maybe more): kept whole",
            r.until.format("%Y-%m-%d %H:%M:%S UTC"),
            r.mode,
            root.url_of(&object_store::path::Path::from(v.key.as_str()))
        )));
    }
    let objects = versions.len() as u64;
    let bytes = versions.iter().map(|v| v.size).sum();
    if !dry_run {
        for batch in versions.chunks(DELETE_BATCH) {
            let named: Vec<(String, String)> = batch
                .iter()
                .map(|v| (v.key.clone(), v.version_id.clone()))
                .collect();
            let refused = bucket
                .delete_versions(&named)
                .await
                .map_err(|e| Error::store(root.url(), e))?;
            if let Some((key, why)) = refused.first() {
                return Err(Error::Failed(format!(
                    "s3://{}/{key}: S3 refused to delete it ({why}); {} versions of the run refused in all",
                    bucket.name,
                    refused.len()
                )));
            }
        }
    }
    Ok(Outcome::Gone { objects, bytes })
}

/// The first version (in key order) retained past `now`, with its retention.
async fn retained<'a>(
    bucket: &Bucket,
    versions: &'a [Version],
    now: DateTime<Utc>,
) -> Result<Option<(&'a Version, Retention)>> {
    let found: Vec<Option<(&Version, Retention)>> = futures::stream::iter(
        versions
            .iter()
            .filter(|v| !v.delete_marker)
            .map(|v| async move {
                let r = bucket
                    .retention(&v.key, Some(&v.version_id))
                    .await
                    .map_err(|e| Error::store(format!("s3://{}/{}", bucket.name, v.key), e))?;
                Ok::<_, Error>(r.filter(|r| r.until > now).map(|r| (v, r)))
            }),
    )
    .buffered(16)
    .try_collect()
    .await?;
    Ok(found.into_iter().flatten().next())
}
