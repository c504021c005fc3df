//! Local folders that never follow a symbolic link below their root.
//!
//! `object_store`'s `LocalFileSystem` follows links: a data file linked to a file outside
//! the run is read as data, an `_import` folder linked elsewhere is written through, and
//! deleting through a linked folder deletes what it points at (its own documentation says
//! so), which let `ddbx prune` empty a folder outside the base. Here every path is checked
//! one component at a time from the root (which may itself be a link: an operator's choice
//! of disk) and refused when one is a link; listings leave linked entries out, saying so,
//! and a recursive listing fails on one, so that what lists a run to delete it never
//! deletes through one.

use std::path::PathBuf;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// A local folder whose paths never go through a symbolic link.
#[derive(Debug)]
pub struct NoLinks {
    inner: LocalFileSystem,
    root: PathBuf,
}

impl NoLinks {
    /// The folder `root` (canonical: the links above it are resolved once, here).
    pub fn new(root: PathBuf) -> Result<Self> {
        Ok(Self {
            inner: LocalFileSystem::new_with_prefix(&root)?,
            root,
        })
    }

    /// The first component of `location` (from the root) that is a symbolic link.
    pub fn link_in(&self, location: &Path) -> Option<PathBuf> {
        link_in(&self.root, location)
    }

    fn check(&self, location: &Path) -> Result<()> {
        match self.link_in(location) {
            None => Ok(()),
            Some(link) => Err(refused(location, &link)),
        }
    }
}

/// The first component of `location` under `root` that is a symbolic link.
///
/// On Linux, one `openat2` with `RESOLVE_NO_SYMLINKS` answers for the whole path (the
/// kernel walks it and refuses any link on the way), and only a path it refuses is walked
/// again to name the link: the component walk costs a `statx` per component, which made it
/// a tenth of a fleet export's CPU and nearly a third of a prune's (docs/BENCHMARKS.md,
/// issue 26). Where `openat2` is missing or refused (old kernels, seccomp), the walk.
fn link_in(root: &std::path::Path, location: &Path) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    match no_links_beneath(root, location) {
        Resolved::NoLink => return None,
        Resolved::Link => {
            return walk_for_link(root, location).or_else(|| Some(root.join(location.as_ref())))
        }
        Resolved::Unknown => {}
    }
    walk_for_link(root, location)
}

/// What `openat2` said of a path.
#[cfg(target_os = "linux")]
#[derive(Debug, PartialEq)]
enum Resolved {
    /// Every component up to the first missing one is no link.
    NoLink,
    /// A component is a link.
    Link,
    /// It could not tell.
    Unknown,
}

#[cfg(target_os = "linux")]
fn no_links_beneath(root: &std::path::Path, location: &Path) -> Resolved {
    use rustix::fs::{OFlags, ResolveFlags};
    use rustix::io::Errno;
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    // The root is opened for each check, not once: object_store writes by path, so the
    // check must see the folder the path names now (a root replaced mid-run included).
    let Ok(dir) = rustix::fs::open(root, flags | OFlags::DIRECTORY, rustix::fs::Mode::empty())
    else {
        return Resolved::Unknown;
    };
    let relative: PathBuf = location.parts().map(|p| p.as_ref().to_string()).collect();
    if relative.as_os_str().is_empty() {
        return Resolved::NoLink;
    }
    match rustix::fs::openat2(
        &dir,
        &relative,
        flags,
        rustix::fs::Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    ) {
        Ok(_) => Resolved::NoLink,
        // The kernel resolves components in order: a missing one, or a file where a folder
        // would be, is reached only past components that are no links (as the walk stops).
        Err(Errno::NOENT | Errno::NOTDIR) => Resolved::NoLink,
        Err(Errno::LOOP) => Resolved::Link,
        Err(_) => Resolved::Unknown,
    }
}

/// [`link_in`] one component at a time.
fn walk_for_link(root: &std::path::Path, location: &Path) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for part in location.parts() {
        path.push(part.as_ref());
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Some(path),
            Ok(_) => {}
            // Nothing there (yet): nothing below can be a link either.
            Err(_) => return None,
        }
    }
    None
}

/// How much of a local file one blocking read takes when it is streamed.
const READ_CHUNK: u64 = 256 * 1024;

/// The bytes of `got` as a stream; a local file's read [`READ_CHUNK`] at a time on a
/// blocking thread. Why: `GetResult::into_stream` reads a local file 8 KiB at a time, each
/// on a blocking thread, and an import reading its data files (twice: the check, then the
/// writing) paid a thread hand-off per 8 KiB (docs/BENCHMARKS.md, issue 26).
pub fn stream_of(got: GetResult) -> BoxStream<'static, Result<bytes::Bytes>> {
    let GetResultPayload::File(file, path) = got.payload else {
        return got.into_stream();
    };
    let (start, remaining) = (got.range.start, got.range.end - got.range.start);
    futures::stream::try_unfold(
        (file, path, remaining, Some(start)),
        |(mut file, path, remaining, seek)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Seek};
                let failed = |e: std::io::Error| object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: format!("{}: {e}", path.display()).into(),
                };
                if let Some(at) = seek {
                    file.seek(std::io::SeekFrom::Start(at)).map_err(failed)?;
                }
                let want = remaining.min(READ_CHUNK);
                let mut chunk = Vec::with_capacity(want as usize);
                let read = (&mut file)
                    .take(want)
                    .read_to_end(&mut chunk)
                    .map_err(failed)? as u64;
                if read == 0 {
                    return Err(failed(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the file ended {remaining} bytes early"),
                    )));
                }
                let next = (file, path, remaining - read, None);
                Ok(Some((bytes::Bytes::from(chunk), next)))
            })
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: e.into(),
            })?
        },
    )
    .boxed()
}

fn refused(location: &Path, link: &std::path::Path) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: location.to_string(),
        source: format!(
            "{} is a symbolic link: ddbx does not follow links inside a base or a run",
            link.display()
        )
        .into(),
    }
}

impl std::fmt::Display for NoLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (no links followed)", self.inner)
    }
}

#[async_trait]
impl ObjectStore for NoLinks {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> Result<()> {
        self.check(location)?;
        self.inner.delete(location).await
    }

    fn delete_stream<'a>(
        &'a self,
        locations: BoxStream<'a, Result<Path>>,
    ) -> BoxStream<'a, Result<Path>> {
        locations
            .then(move |l| async move {
                let l = l?;
                self.delete(&l).await.map(|()| l)
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let root = self.root.clone();
        if let Some(link) = prefix.and_then(|p| link_in(&root, p)) {
            let p = prefix.cloned().unwrap_or_default();
            return futures::stream::once(async move { Err(refused(&p, &link)) }).boxed();
        }
        self.inner
            .list(prefix)
            .map(move |entry| {
                let entry = entry?;
                match link_in(&root, &entry.location) {
                    None => Ok(entry),
                    Some(link) => Err(refused(&entry.location, &link)),
                }
            })
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let root = self.root.clone();
        self.inner
            .list_with_offset(prefix, offset)
            .map(move |entry| {
                let entry = entry?;
                match link_in(&root, &entry.location) {
                    None => Ok(entry),
                    Some(link) => Err(refused(&entry.location, &link)),
                }
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        if let Some(p) = prefix {
            self.check(p)?;
        }
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        let root = &self.root;
        let keep = |p: &Path| match link_in(root, p) {
            None => true,
            Some(link) => {
                tracing::warn!(link = %link.display(), "left out: a symbolic link (ddbx does not follow links inside a base)");
                false
            }
        };
        listed.objects.retain(|o| keep(&o.location));
        listed.common_prefixes.retain(keep);
        Ok(listed)
    }

    async fn copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.copy(from, to).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.rename(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.copy_if_not_exists(from, to).await
    }

    async fn rename_if_not_exists(&self, from: &Path, to: &Path) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.rename_if_not_exists(from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_kernel_check_names_the_link_the_walk_names() {
        let (base, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let root = base.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/b/file"), "x").unwrap();
        symlink(outside.path(), root.join("a/out")).unwrap();
        symlink(root.join("a/b"), root.join("a/b/c/back")).unwrap();
        symlink(root.join("nowhere"), root.join("a/dangling")).unwrap();
        let cases = [
            ("", None),
            ("a", None),
            ("a/b/c", None),
            ("a/b/file", None),
            ("a/b/file/below", None),
            ("a/missing/x/y", None),
            ("a/out", Some("a/out")),
            ("a/out/x/y.json", Some("a/out")),
            ("a/b/c/back", Some("a/b/c/back")),
            ("a/b/c/back/c/back/file", Some("a/b/c/back")),
            ("a/dangling", Some("a/dangling")),
            ("a/dangling/x", Some("a/dangling")),
        ];
        for (path, link) in cases {
            let location = Path::from(path);
            let expected = link.map(|l| root.join(l));
            assert_eq!(walk_for_link(&root, &location), expected, "walk: {path}");
            // Where the kernel answers (openat2 is there and allowed), it answers the same.
            #[cfg(target_os = "linux")]
            match no_links_beneath(&root, &location) {
                Resolved::Unknown => eprintln!("openat2 did not answer for {path}: the walk did"),
                kernel => assert_eq!(
                    kernel,
                    if link.is_some() {
                        Resolved::Link
                    } else {
                        Resolved::NoLink
                    },
                    "openat2: {path}"
                ),
            }
            assert_eq!(link_in(&root, &location), expected, "{path}");
        }
    }

    #[tokio::test]
    async fn a_local_file_streams_in_large_reads_whole_or_in_part() {
        let base = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(base.path().join("f"), &bytes).unwrap();
        let store = NoLinks::new(base.path().canonicalize().unwrap()).unwrap();
        let chunks = |got| async move {
            stream_of(got)
                .try_collect::<Vec<bytes::Bytes>>()
                .await
                .unwrap()
        };
        let whole = chunks(store.get(&Path::from("f")).await.unwrap()).await;
        assert_eq!(whole.len(), 3, "256 KiB a read");
        assert_eq!(whole.concat(), bytes);
        let options = GetOptions {
            range: Some((100_000..600_001).into()),
            ..Default::default()
        };
        let part = chunks(store.get_opts(&Path::from("f"), options).await.unwrap()).await;
        assert_eq!(part.concat(), &bytes[100_000..600_001]);
        // A file cut short while it is read is an error, not a short read.
        let got = store.get(&Path::from("f")).await.unwrap();
        std::fs::write(base.path().join("f"), &bytes[..300_000]).unwrap();
        let err = stream_of(got).try_collect::<Vec<_>>().await.unwrap_err();
        assert!(err.to_string().contains("early"), "{err}");
    }

    #[tokio::test]
    async fn nothing_is_read_written_listed_or_deleted_through_a_link() {
        let (base, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(outside.path().join("precious.txt"), "precious").unwrap();
        let run = base.path().join("run");
        std::fs::create_dir_all(run.join("data")).unwrap();
        std::fs::write(run.join("data/a.json"), "a").unwrap();
        symlink(outside.path(), run.join("linkdir")).unwrap();
        symlink(outside.path().join("precious.txt"), run.join("data/b.json")).unwrap();
        let store = NoLinks::new(base.path().canonicalize().unwrap()).unwrap();
        let p = |s: &str| Path::from(s);
        // Reads and writes through a link are refused, naming it.
        let e = store.get(&p("run/linkdir/precious.txt")).await.unwrap_err();
        assert!(e.to_string().contains("linkdir is a symbolic link"), "{e}");
        assert!(store.get(&p("run/data/b.json")).await.is_err());
        assert!(store
            .put(&p("run/linkdir/new.txt"), PutPayload::from("x"))
            .await
            .is_err());
        assert!(!outside.path().join("new.txt").exists());
        assert_eq!(
            store
                .get(&p("run/data/a.json"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
            "a"
        );
        // A recursive listing fails on the links rather than walking through them...
        let listed: Vec<Result<ObjectMeta>> = store.list(Some(&p("run"))).collect().await;
        assert!(listed.iter().any(|r| r.is_err()));
        assert!(store
            .list(Some(&p("run")))
            .try_collect::<Vec<_>>()
            .await
            .is_err());
        // ...and a folder listing leaves them out.
        let level = store.list_with_delimiter(Some(&p("run"))).await.unwrap();
        assert_eq!(level.common_prefixes, vec![p("run/data")]);
        // Deleting through a link deletes nothing outside.
        assert!(store.delete(&p("run/linkdir/precious.txt")).await.is_err());
        let paths =
            futures::stream::iter([Ok(p("run/data/b.json")), Ok(p("run/data/a.json"))]).boxed();
        let deleted: Vec<Result<Path>> = store.delete_stream(paths).collect().await;
        assert!(deleted[0].is_err() && deleted[1].is_ok());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("precious.txt")).unwrap(),
            "precious"
        );
    }
}
