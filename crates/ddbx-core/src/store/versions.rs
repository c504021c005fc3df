//! Reading a bucket past its delete markers: the ransomware case, where the current
//! objects of a run were deleted (a delete without a version only hides a version behind
//! a marker on a versioned bucket, and Object Lock keeps the version). [`Recovered`] is a
//! read-only store in which each key is its newest version that is not a delete marker,
//! found with ListObjectVersions (which `object_store` does not call) and read with
//! `versionId` (which it does); every other part of ddbx (list, import, verify, copy)
//! reads through it unchanged (`Storage::recovering`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use super::s3::{Bucket, Version, Versions};

/// A bucket as it was before its objects were deleted: each key's newest version that is
/// not a delete marker (keys whose every version is a marker are gone). Writes are
/// refused: a recovery never writes into what it recovers.
#[derive(Debug)]
pub struct Recovered {
    inner: Arc<dyn ObjectStore>,
    bucket: Arc<Bucket>,
    /// The version each key listed so far reads.
    known: Known,
}

type Known = Arc<Mutex<HashMap<String, String>>>;

impl Recovered {
    /// `inner` (the bucket's `object_store` client) read past delete markers.
    pub fn new(inner: Arc<dyn ObjectStore>, bucket: Arc<Bucket>) -> Self {
        Self {
            inner,
            bucket,
            known: Known::default(),
        }
    }

    /// The version `location` reads: the one listed, else its newest that holds data.
    async fn version_of(&self, location: &Path) -> object_store::Result<String> {
        let key = location.to_string();
        if let Some(v) = self.known.lock().expect("not poisoned").get(&key) {
            return Ok(v.clone());
        }
        let versions = self.bucket.versions(&key, None).await?;
        versions
            .entries
            .iter()
            .find(|v| v.key == key && !v.delete_marker)
            .map(|v| v.version_id.clone())
            .ok_or_else(|| object_store::Error::NotFound {
                path: key.clone(),
                source: "no version of it holds data (never written, or deleted for good)".into(),
            })
    }
}

/// The objects `versions` leaves, each key's newest version that holds data; each
/// remembered in `known` for the reads that follow.
fn newest(versions: &Versions, known: &Known) -> object_store::Result<Vec<ObjectMeta>> {
    let mut out = Vec::new();
    let mut last_key: Option<&str> = None;
    for v in &versions.entries {
        if last_key == Some(v.key.as_str()) || v.delete_marker {
            continue;
        }
        last_key = Some(v.key.as_str());
        out.push(meta(v)?);
    }
    let mut known = known.lock().expect("not poisoned");
    for m in &out {
        if let Some(v) = &m.version {
            known.insert(m.location.to_string(), v.clone());
        }
    }
    Ok(out)
}

fn meta(v: &Version) -> object_store::Result<ObjectMeta> {
    Ok(ObjectMeta {
        location: Path::parse(&v.key)
            .map_err(|e| object_store::Error::InvalidPath { source: e })?,
        last_modified: v.last_modified,
        size: v.size,
        e_tag: v.e_tag.clone(),
        version: Some(v.version_id.clone()),
    })
}

fn under(prefix: Option<&Path>) -> String {
    match prefix {
        Some(p) if !p.as_ref().is_empty() => format!("{p}/"),
        _ => String::new(),
    }
}

fn read_only(location: &Path) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: location.to_string(),
        source: "a recovery reads past delete markers and writes nothing there".into(),
    }
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (past delete markers)", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Recovered {
    async fn put_opts(
        &self,
        location: &Path,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(read_only(location))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only(location))
    }

    async fn get_opts(
        &self,
        location: &Path,
        mut options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.version.is_none() {
            options.version = Some(self.version_of(location).await?);
        }
        self.inner.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        Err(read_only(location))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let prefix = under(prefix);
        let bucket = self.bucket.clone();
        let known = self.known.clone();
        futures::stream::once(async move {
            let versions = bucket.versions(&prefix, None).await?;
            newest(&versions, &known)
        })
        .flat_map(|listed| match listed {
            Ok(objects) => futures::stream::iter(objects.into_iter().map(Ok)).boxed(),
            Err(e) => futures::stream::iter([Err(e)]).boxed(),
        })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let versions = self.bucket.versions(&under(prefix), Some("/")).await?;
        let objects = newest(&versions, &self.known)?;
        let common_prefixes = versions
            .folders
            .iter()
            .map(|f| {
                Path::parse(f.trim_end_matches('/'))
                    .map_err(|e| object_store::Error::InvalidPath { source: e })
            })
            .collect::<object_store::Result<Vec<_>>>()?;
        Ok(ListResult {
            common_prefixes,
            objects,
        })
    }

    async fn copy(&self, _from: &Path, to: &Path) -> object_store::Result<()> {
        Err(read_only(to))
    }

    async fn copy_if_not_exists(&self, _from: &Path, to: &Path) -> object_store::Result<()> {
        Err(read_only(to))
    }
}
