//! One run per app at a time: a lock object at `<base>/<region>/<app>/_LOCK`, created
//! atomically (create-if-absent), refreshed while its run lives, and taken over only when
//! its owner is gone (a process of this host that no longer runs), it stopped refreshing
//! it long ago, or it cannot be read, and the user asked for that (or a run resumes
//! itself).
//!
//! Imports that read a run of the app hold it shared instead ([`SharedLock`]): a lease
//! under `<base>/<region>/<app>/_LEASES/`, refreshed alike, which `ddbx prune` reads
//! before deleting anything (it keeps the run a live lease names), while an import that
//! finds a prune holding the lock waits for it to end before it reads.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::stop::StopSignal;
use crate::store::Location;
use crate::{Error, Result};

/// How far ahead of this host's clock a lock may have been refreshed before it is taken
/// for clock skew rather than a live owner's.
const SKEW: Duration = Duration::from_secs(5 * 60);

/// Where the leases of the imports reading an app's runs are, under the app's folder.
pub const LEASES: &str = "_LEASES";

/// How the lock behaves.
#[derive(Debug, Clone)]
pub struct LockSettings {
    /// How often the owner rewrites the lock.
    pub refresh_every: Duration,
    /// A lock not refreshed for this long is stale.
    pub stale_after: Duration,
    /// Take over a stale lock (one not refreshed for `stale_after`, whose owner on this
    /// host is gone, that cannot be read, or refreshed in the future).
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

/// What the lock object (and a lease) holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockBody {
    /// `host:pid` of the owner.
    pub owner: String,
    /// What the owner is doing (`export`, `import`, `prune`) and where.
    pub run: String,
    /// A random token telling this owner from any other.
    pub token: String,
    /// When the lock was taken.
    pub acquired_at: DateTime<Utc>,
    /// When the owner last rewrote it.
    pub refreshed_at: DateTime<Utc>,
    /// For a lease: the run (or app folder, for a replay of its chains) the import reads.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reads: Option<String>,
}

/// Why a lock found held may (or may not) be taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Its owner refreshes it.
    Live,
    /// Not refreshed for this many minutes.
    Stale(i64),
    /// Its owner was a process of this host that no longer runs.
    OwnerGone,
    /// Refreshed later than this host's clock says is now (clock skew between hosts).
    Future,
    /// It is not a ddbx lock (empty, truncated, a folder...).
    Unreadable(String),
}

impl Held {
    /// How a lock (body, or why it could not be read) stands.
    pub fn of(body: &std::result::Result<LockBody, String>, stale_after: Duration) -> Self {
        let held = match body {
            Ok(b) => b,
            Err(why) => return Held::Unreadable(why.clone()),
        };
        if owner_is_gone(&held.owner) {
            return Held::OwnerGone;
        }
        let age = Utc::now().signed_duration_since(held.refreshed_at);
        match age.to_std() {
            Ok(a) if a > stale_after => Held::Stale(age.num_minutes()),
            Ok(_) => Held::Live,
            Err(_) if (-age).to_std().is_ok_and(|ahead| ahead > SKEW) => Held::Future,
            Err(_) => Held::Live,
        }
    }

    /// Whether it is still its owner's.
    pub fn is_live(&self) -> bool {
        *self == Held::Live
    }

    /// What to do about it, for the message of a run that found it held.
    fn hint(&self) -> String {
        match self {
            Held::Live => "wait for that run to finish".into(),
            Held::Stale(minutes) => format!("it has not been refreshed for {minutes} minutes (its owner died?); pass --break-stale-lock to take it over"),
            Held::OwnerGone => "its owner process (on this host) is gone: continue its run with --resume RUN_ROOT, or pass --break-stale-lock to take the lock over".into(),
            Held::Future => "it was refreshed later than this host's clock says is now (clock skew between hosts?); pass --break-stale-lock to take it over".into(),
            Held::Unreadable(why) => format!("it is not a ddbx lock ({why}); pass --break-stale-lock to replace it"),
        }
    }
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
        let body = LockBody::new(run, None);
        let mut tried_breaking = false;
        loop {
            let put = base
                .store
                .put_opts(&path, payload(&body), PutOptions::from(PutMode::Create))
                .await;
            match put {
                Ok(_) => break,
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let held = read(base, &path).await;
                    let state = Held::of(&held, settings.stale_after);
                    let ours = held.as_ref().is_ok_and(|h| {
                        settings.takeover_run.as_deref() == Some(h.run.as_str())
                            && matches!(state, Held::Stale(_) | Held::OwnerGone)
                    });
                    if (ours || (!state.is_live() && settings.break_stale)) && !tried_breaking {
                        tracing::warn!(lock = %url, state = ?state, "taking over a lock its owner no longer holds");
                        match base.store.delete(&path).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                            Err(e) => return Err(Error::store(&url, e)),
                        }
                        tried_breaking = true;
                        continue;
                    }
                    let who = match &held {
                        Ok(h) => format!(
                            ": {} ({}), since {}, last refreshed {}",
                            h.owner, h.run, h.acquired_at, h.refreshed_at
                        ),
                        Err(_) => String::new(),
                    };
                    return Err(Error::Locked(format!(
                        "another run of this app holds the lock {url}{who}; {}",
                        state.hint()
                    )));
                }
                Err(e) => return Err(Error::store(&url, e)),
            }
        }
        Ok(Self::keep(base, path, body, settings.refresh_every))
    }

    /// Refresh the lock (or lease) at `path`, written as `body`, until released.
    fn keep(base: &Location, path: Path, body: LockBody, every: Duration) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let refresher = {
            let location = base.clone();
            let path = path.clone();
            let mut body = body.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
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
        Self {
            location: base.clone(),
            path,
            token: body.token,
            stop,
            refresher,
        }
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

/// An app's lock held shared: an import's lease naming the run it reads, so that no
/// prune deletes that run meanwhile.
#[derive(Debug)]
pub struct SharedLock(RunLock);

impl SharedLock {
    /// Take a lease under `app_dir` for an import (`run`, for messages) reading `reads`
    /// (a run root, or the app folder itself for a replay of its chains). A prune holding
    /// the app's lock is waited for (it may be deleting `reads`); `stop` ends the wait.
    pub async fn acquire(
        app_dir: &Location,
        run: &str,
        reads: &str,
        settings: &LockSettings,
        stop: &StopSignal,
    ) -> Result<Self> {
        let body = LockBody::new(run, Some(reads.to_string()));
        let path = app_dir.join(&format!("{LEASES}/{}.json", body.token));
        app_dir
            .store
            .put_opts(&path, payload(&body), PutOptions::from(PutMode::Create))
            .await
            .map_err(|e| Error::store(app_dir.url_of(&path), e))?;
        let lease = Self(RunLock::keep(app_dir, path, body, settings.refresh_every));
        // Written first, read second (as prune takes the lock first and reads the leases
        // second): of two that start together, at least one sees the other.
        let lock = app_dir.join("_LOCK");
        loop {
            let held = match app_dir.get_optional(&lock).await {
                Ok(Some(b)) => serde_json::from_slice::<LockBody>(&b).map_err(|e| e.to_string()),
                Ok(None) => break,
                Err(e) => Err(e.to_string()),
            };
            let pruning = held.as_ref().is_ok_and(|h| h.run.starts_with("prune "));
            if !pruning || !Held::of(&held, settings.stale_after).is_live() {
                break;
            }
            tracing::info!(lock = %app_dir.url_of(&lock), "a prune of this app is running: waiting for it to end before reading");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.stopped() => {
                    let _ = lease.release().await;
                    return Err(Error::Interrupted);
                }
            }
        }
        Ok(lease)
    }

    /// Give the lease back.
    pub async fn release(self) -> Result<()> {
        self.0.release().await
    }
}

/// The leases under `app_dir` that their owners still hold, with what each reads.
pub async fn live_leases(app_dir: &Location, stale_after: Duration) -> Result<Vec<LockBody>> {
    let dir = app_dir.child(LEASES);
    let listed: Vec<object_store::ObjectMeta> = dir
        .store
        .list(Some(&dir.prefix))
        .try_collect()
        .await
        .map_err(|e| Error::store(dir.url(), e))?;
    let mut live = Vec::new();
    for meta in listed {
        let body = read(&dir, &meta.location).await;
        match (Held::of(&body, stale_after), body) {
            (Held::Live, Ok(b)) => live.push(b),
            // A lease that cannot be read is one until it is as old as a stale one.
            (Held::Unreadable(_), _)
                if Utc::now().signed_duration_since(meta.last_modified)
                    < chrono::Duration::from_std(stale_after).unwrap_or_default() =>
            {
                live.push(LockBody {
                    reads: Some(app_dir.url()),
                    ..LockBody::new(
                        &format!("an unreadable lease {}", dir.url_of(&meta.location)),
                        None,
                    )
                });
            }
            _ => {}
        }
    }
    Ok(live)
}

impl LockBody {
    fn new(run: &str, reads: Option<String>) -> Self {
        let now = Utc::now();
        Self {
            owner: format!("{}:{}", hostname(), std::process::id()),
            run: run.to_string(),
            token: uuid::Uuid::new_v4().to_string(),
            acquired_at: now,
            refreshed_at: now,
            reads,
        }
    }
}

fn payload(body: &LockBody) -> PutPayload {
    PutPayload::from(Bytes::from(
        serde_json::to_vec_pretty(body).expect("lock serializes"),
    ))
}

/// The lock at `path`, or why it is not one.
async fn read(base: &Location, path: &Path) -> std::result::Result<LockBody, String> {
    match base.get_capped(path, 64 * 1024).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).map_err(|e| format!("{e}")),
        Ok(None) => Err("it is gone".into()),
        Err(e) => Err(e.to_string()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(owner: &str, refreshed: DateTime<Utc>) -> std::result::Result<LockBody, String> {
        Ok(LockBody {
            owner: owner.into(),
            run: "export x".into(),
            token: "t".into(),
            acquired_at: refreshed,
            refreshed_at: refreshed,
            reads: None,
        })
    }

    #[test]
    fn a_lock_is_live_only_while_its_owner_can_be_refreshing_it() {
        let fifteen = Duration::from_secs(15 * 60);
        let now = Utc::now();
        let here = format!("{}:{}", hostname(), std::process::id());
        let elsewhere = "another-host:1";
        assert_eq!(Held::of(&body(&here, now), fifteen), Held::Live);
        assert_eq!(
            Held::of(
                &body(elsewhere, now - chrono::Duration::minutes(3)),
                fifteen
            ),
            Held::Live
        );
        assert_eq!(
            Held::of(
                &body(elsewhere, now - chrono::Duration::minutes(20)),
                fifteen
            ),
            Held::Stale(20)
        );
        // A process of this host that is gone (pid 0 is never a process's).
        let gone = format!("{}:0", hostname());
        assert!(!std::path::Path::new("/proc/0").exists());
        assert_eq!(Held::of(&body(&gone, now), fifteen), Held::OwnerGone);
        assert_eq!(
            Held::of(
                &body(elsewhere, now + chrono::Duration::minutes(30)),
                fifteen
            ),
            Held::Future
        );
        // A minute ahead is clock skew a live owner may have.
        assert_eq!(
            Held::of(
                &body(elsewhere, now + chrono::Duration::minutes(1)),
                fifteen
            ),
            Held::Live
        );
        assert!(matches!(
            Held::of(&Err("EOF while parsing".into()), fifteen),
            Held::Unreadable(_)
        ));
        for state in [
            Held::OwnerGone,
            Held::Stale(20),
            Held::Future,
            Held::Unreadable("x".into()),
        ] {
            assert!(state.hint().contains("--break-stale-lock"), "{state:?}");
        }
        assert!(Held::OwnerGone.hint().contains("--resume"));
    }
}
