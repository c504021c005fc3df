//! One run per app at a time: a lock object at `<base>/<region>/<app>/_LOCK`, created
//! atomically (create-if-absent), refreshed while its run lives, and taken over only when
//! its owner stopped refreshing it long ago and the user asked for that.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Location;
use crate::{Error, Result};

/// How the lock behaves.
#[derive(Debug, Clone)]
pub struct LockSettings {
    /// How often the owner rewrites the lock.
    pub refresh_every: Duration,
    /// A lock not refreshed for this long is stale.
    pub stale_after: Duration,
    /// Take over a stale lock.
    pub break_stale: bool,
    /// A resumed run: take over a lock held for this same run (`LockBody::run`) when it is
    /// stale or its owner process, on this host, is gone.
    pub takeover_run: Option<String>,
}

impl Default for LockSettings {
    fn default() -> Self {
        Self {
            refresh_every: Duration::from_secs(60),
            stale_after: Duration::from_secs(15 * 60),
            break_stale: false,
            takeover_run: None,
        }
    }
}

impl LockSettings {
    /// Check the stale period against its range (`crate::bounds`): a lock stale sooner
    /// than its owner refreshes it would be taken from a live run.
    pub fn validate(&self) -> Result<()> {
        crate::bounds::STALE_LOCK_MINUTES.check(self.stale_after.as_secs() / 60)?;
        Ok(())
    }
}

/// What the lock object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockBody {
    /// `host:pid` of the owner.
    pub owner: String,
    /// What the owner is doing (`export`, `import`) and where.
    pub run: String,
    /// A random token telling this owner from any other.
    pub token: String,
    /// When the lock was taken.
    pub acquired_at: DateTime<Utc>,
    /// When the owner last rewrote it.
    pub refreshed_at: DateTime<Utc>,
}

/// A held lock; refreshed in the background until [`RunLock::release`].
#[derive(Debug)]
pub struct RunLock {
    location: Location,
    path: Path,
    token: String,
    stop: watch::Sender<bool>,
    refresher: JoinHandle<()>,
}

impl RunLock {
    /// Take the lock at `rel` under `base`, describing the run as `run`.
    pub async fn acquire(
        base: &Location,
        rel: &str,
        run: &str,
        settings: LockSettings,
    ) -> Result<Self> {
        let path = base.join(rel);
        let url = base.url_of(&path);
        let now = Utc::now();
        let body = LockBody {
            owner: format!("{}:{}", hostname(), std::process::id()),
            run: run.to_string(),
            token: uuid::Uuid::new_v4().to_string(),
            acquired_at: now,
            refreshed_at: now,
        };
        let mut tried_breaking = false;
        loop {
            let put = base
                .store
                .put_opts(&path, payload(&body), PutOptions::from(PutMode::Create))
                .await;
            match put {
                Ok(_) => break,
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let held = read(base, &path).await?;
                    let age = Utc::now().signed_duration_since(held.refreshed_at);
                    let stale = age
                        .to_std()
                        .map(|a| a > settings.stale_after)
                        .unwrap_or(false);
                    let ours = settings.takeover_run.as_deref() == Some(held.run.as_str())
                        && (stale || owner_is_gone(&held.owner));
                    if (ours || (stale && settings.break_stale)) && !tried_breaking {
                        tracing::warn!(lock = %url, owner = %held.owner, refreshed_at = %held.refreshed_at, "taking over a stale lock");
                        match base.store.delete(&path).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                            Err(e) => return Err(Error::store(&url, e)),
                        }
                        tried_breaking = true;
                        continue;
                    }
                    let hint = if stale {
                        format!("it has not been refreshed for {} minutes; pass --break-stale-lock to take it over", age.num_minutes())
                    } else {
                        "wait for that run to finish".to_string()
                    };
                    return Err(Error::Locked(format!(
                        "another run of this app holds the lock {url}: {} ({}), since {}, last refreshed {}; {hint}",
                        held.owner, held.run, held.acquired_at, held.refreshed_at
                    )));
                }
                Err(e) => return Err(Error::store(&url, e)),
            }
        }
        let (stop, mut stopped) = watch::channel(false);
        let refresher = {
            let location = base.clone();
            let path = path.clone();
            let mut body = body.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(settings.refresh_every) => {}
                        _ = stopped.changed() => return,
                    }
                    match read(&location, &path).await {
                        Ok(held) if held.token == body.token => {
                            body.refreshed_at = Utc::now();
                            if let Err(e) = location.store.put(&path, payload(&body)).await {
                                tracing::warn!(lock = %location.url_of(&path), error = %e, "could not refresh the lock");
                            }
                        }
                        Ok(held) => {
                            tracing::error!(lock = %location.url_of(&path), owner = %held.owner, "the lock was taken over by another run");
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "could not read the lock"),
                    }
                }
            })
        };
        Ok(Self {
            location: base.clone(),
            path,
            token: body.token,
            stop,
            refresher,
        })
    }

    /// Stop refreshing and remove the lock (if it is still ours).
    pub async fn release(self) -> Result<()> {
        let _ = self.stop.send(true);
        let _ = self.refresher.await;
        let url = self.location.url_of(&self.path);
        match read(&self.location, &self.path).await {
            Ok(held) if held.token == self.token => {
                match self.location.store.delete(&self.path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(Error::store(url, e)),
                }
            }
            Ok(_) => {
                tracing::warn!(lock = %url, "the lock belongs to another run now; leaving it");
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }
}

fn payload(body: &LockBody) -> PutPayload {
    PutPayload::from(Bytes::from(
        serde_json::to_vec_pretty(body).expect("lock serializes"),
    ))
}

async fn read(base: &Location, path: &Path) -> Result<LockBody> {
    let url = base.url_of(path);
    let bytes = base
        .store
        .get(path)
        .await
        .map_err(|e| Error::store(&url, e))?
        .bytes()
        .await
        .map_err(|e| Error::store(&url, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        file: url,
        message: format!("not a ddbx lock: {e}"),
    })
}

/// Whether `host:pid` names a process of this host that no longer runs.
fn owner_is_gone(owner: &str) -> bool {
    match owner.rsplit_once(':') {
        Some((host, pid)) if host == hostname() => pid
            .parse::<u32>()
            .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()),
        _ => false,
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}
