//! Where an import keeps what it writes besides the tables: its flags (`RESTORE_*`), its
//! checkpoints (`_import/<target>/`) and its capacity records (`_capacity/`).
//!
//! - A ddbx run that this importer may write: the run root, as the seed did.
//! - Anything else (an AWS or connector export, which is not ddbx's to write into, or a
//!   run in a bucket or folder this importer may only read): a state location of its own,
//!   `--state-to LOCATION` or by default `$XDG_STATE_HOME/ddbx/imports/<source as a path>`
//!   (`~/.local/state/ddbx/imports/s3/bucket/prefix/...`). Its `source.json` names the
//!   source, so that one state location never serves two sources.
//!
//! Either way the source is never written.

use bytes::Bytes;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::aws::Aws;
use crate::store::Location;
use crate::{Error, Result};

/// The file in a state location that names its source.
const SOURCE_FILE: &str = "source.json";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceRecord {
    /// The `--from` location, as a URL.
    source: String,
}

/// Where this import's state goes. `is_run` says whether `source` is a ddbx run root (it
/// has a `restore-plan.json`); `state_to` is the user's choice.
pub async fn locate(
    aws: &Aws,
    source: &Location,
    is_run: bool,
    state_to: Option<&str>,
) -> Result<Location> {
    let state = match state_to {
        Some(to) => aws.storage.open(to)?,
        None if is_run && may_write(source).await? => return Ok(source.clone()),
        None => {
            let base = default_base()?;
            let folder = base.join(mirror(&source.url()));
            aws.storage.open(&folder.to_string_lossy())?
        }
    };
    if state.url() == source.url() {
        return Ok(state);
    }
    claim(&state, &source.url()).await?;
    if state_to.is_none() {
        tracing::info!(state = %state.url(), "the source is not a ddbx run this import may write: its flags and checkpoints go here (--state-to names another place)");
    }
    Ok(state)
}

/// `$XDG_STATE_HOME/ddbx/imports`, else `$HOME/.local/state/ddbx/imports`.
fn default_base() -> Result<std::path::PathBuf> {
    let state_home = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| std::path::PathBuf::from(h).join(".local/state"))
        })
        .ok_or_else(|| {
            Error::Usage(
                "the import needs a place for its state (no HOME or XDG_STATE_HOME): pass --state-to LOCATION".into(),
            )
        })?;
    Ok(state_home.join("ddbx/imports"))
}

/// A source URL as a relative folder path: `s3://b/p/q` is `s3/b/p/q`.
fn mirror(url: &str) -> String {
    url.replacen("://", "/", 1)
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect::<Vec<_>>()
        .join("/")
}

/// Make `state` the state location of `source`, or refuse if it holds another source's.
async fn claim(state: &Location, source: &str) -> Result<()> {
    let path = state.join(SOURCE_FILE);
    let record = SourceRecord {
        source: source.to_string(),
    };
    let body = serde_json::to_vec_pretty(&record).expect("serializes");
    match state
        .store
        .put_opts(
            &path,
            PutPayload::from(Bytes::from(body)),
            PutOptions::from(PutMode::Create),
        )
        .await
    {
        Ok(_) => return Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {}
        Err(e) => return Err(Error::store(state.url_of(&path), e)),
    }
    let got = state.get_optional(&path).await?.unwrap_or_default();
    match serde_json::from_slice::<SourceRecord>(&got) {
        Ok(r) if r.source == source => Ok(()),
        Ok(r) => Err(Error::Usage(format!(
            "{} keeps the state of an import from {}, not {source}: pass another --state-to",
            state.url(),
            r.source
        ))),
        Err(e) => Err(Error::Corrupt {
            file: state.url_of(&path),
            message: format!("not a ddbx import state: {e}"),
        }),
    }
}

/// Whether this importer may write into `loc`: a probe object is written and removed. A
/// refusal (403, permission denied, a read-only file system) means no; other errors are
/// errors, so that a passing fault never moves the state elsewhere.
async fn may_write(loc: &Location) -> Result<bool> {
    let probe = loc.join(&format!(
        "_import/.ddbx-write-check-{}",
        uuid::Uuid::new_v4().simple()
    ));
    match loc.store.put(&probe, PutPayload::from_static(b"")).await {
        Ok(_) => {
            if let Err(e) = loc.store.delete(&probe).await {
                tracing::warn!(file = %loc.url_of(&probe), error = %e, "could not remove the write check");
            }
            Ok(true)
        }
        Err(e) if is_refusal(&e) => Ok(false),
        Err(e) => Err(Error::store(loc.url_of(&probe), e)),
    }
}

/// Whether a storage error says "you may not write here".
fn is_refusal(e: &object_store::Error) -> bool {
    if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_mirror_as_folders() {
        assert_eq!(mirror("s3://bucket/a/b"), "s3/bucket/a/b");
        assert_eq!(mirror("file:///tmp/x/../y"), "file/tmp/x/y");
        assert_eq!(mirror("s3://b"), "s3/b");
    }

    #[test]
    fn refusals_are_told_apart() {
        let denied = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        };
        assert!(is_refusal(&denied));
        let other = object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        };
        assert!(!is_refusal(&other));
    }

    #[tokio::test]
    async fn a_state_location_serves_one_source() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::store::Storage::default()
            .open(dir.path().to_str().unwrap())
            .unwrap();
        claim(&state, "s3://a/run").await.unwrap();
        claim(&state, "s3://a/run").await.unwrap();
        let err = claim(&state, "s3://b/other").await.unwrap_err();
        assert!(err.to_string().contains("s3://a/run"), "{err}");
    }

    #[tokio::test]
    async fn a_folder_that_can_be_written_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let loc = crate::store::Storage::default()
            .open(dir.path().to_str().unwrap())
            .unwrap();
        assert!(may_write(&loc).await.unwrap());
        let left: Vec<_> = loc.list_all().await.unwrap();
        assert!(left.is_empty(), "the probe is removed: {left:?}");
    }
}
