//! Deleting one run's objects from a store without versions (a local folder, an S3 bucket
//! without Object Lock; [`super::versioned`] deletes from one with it): only what the run's
//! listing holds, never through a symbolic link, and the folders a local run leaves.

use futures::{StreamExt, TryStreamExt};

use crate::store::Location;
use crate::{Error, Result};

/// What became of a run prune meant to delete.
pub(super) enum Deleted {
    /// Its objects went (or, in a dry run, would).
    Gone { objects: u64, bytes: u64 },
    /// It could not be deleted safely, and why.
    Kept(String),
    /// Its delete failed part-way.
    Failed(Error),
}

/// Delete every object of a run root (in batches), or only count them in a dry run: only
/// objects it listed, each under the app's folder, never through a symbolic link (a local
/// run holding one, or anything but files and folders, is kept whole); a run that cannot
/// be listed whole is kept whole.
pub(super) async fn delete_run(
    root: &Location,
    app_dir: &Location,
    dry_run: bool,
) -> Result<Deleted> {
    if let Some(odd) = local_oddity(root) {
        return Ok(Deleted::Kept(format!(
            "it holds {odd}: delete it by hand (ddbx never follows links, nor deletes through them)"
        )));
    }
    let listed: std::result::Result<Vec<object_store::ObjectMeta>, _> =
        root.store.list(Some(&root.prefix)).try_collect().await;
    let objects = match listed {
        Ok(o) => o,
        Err(e) => {
            return Ok(Deleted::Kept(format!(
                "it cannot be listed whole ({e}): delete it by hand"
            )))
        }
    };
    let outside = objects.iter().find(|o| {
        !o.location.prefix_matches(&app_dir.prefix) || !o.location.prefix_matches(&root.prefix)
    });
    if let Some(o) = outside {
        return Ok(Deleted::Kept(format!(
            "its listing holds {}, outside it: nothing of it deleted",
            root.url_of(&o.location)
        )));
    }
    let count = objects.len() as u64;
    let bytes = objects.iter().map(|o| o.size).sum();
    if dry_run || objects.is_empty() {
        return Ok(Deleted::Gone {
            objects: count,
            bytes,
        });
    }
    let paths = futures::stream::iter(objects.into_iter().map(|o| Ok(o.location))).boxed();
    root.store
        .delete_stream(paths)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| Error::store(root.url(), e))?;
    remove_empty_folders(root);
    Ok(Deleted::Gone {
        objects: count,
        bytes,
    })
}

/// In a local run, the first entry that is neither a file nor a folder (a symbolic link,
/// even a broken one, which listings do not show; a socket; a device), if any.
fn local_oddity(root: &Location) -> Option<String> {
    let dir = root.root_url.strip_prefix("file://")?;
    let mut path = std::path::PathBuf::from(dir);
    path.extend(root.prefix.parts().map(|p| p.as_ref().to_string()));
    let mut todo = vec![path];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(t) if t.is_file() => {}
                Ok(t) if t.is_symlink() => {
                    return Some(format!("a symbolic link, {}", e.path().display()))
                }
                _ => return Some(format!("{}, which is not a file", e.path().display())),
            }
        }
    }
    None
}

/// A local run leaves empty folders behind its files: remove them, and the date folders
/// above it that became empty (never the app's folder).
fn remove_empty_folders(root: &Location) {
    let Some(dir) = root.root_url.strip_prefix("file://") else {
        return;
    };
    let mut path = std::path::PathBuf::from(dir);
    path.extend(root.prefix.parts().map(|p| p.as_ref().to_string()));
    remove_tree_if_empty(&path);
    for _ in 0..3 {
        let Some(parent) = path.parent() else { return };
        path = parent.to_path_buf();
        if std::fs::remove_dir(&path).is_err() {
            return;
        }
    }
}

/// Remove `dir` and its subfolders if they hold no file.
fn remove_tree_if_empty(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree_if_empty(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
