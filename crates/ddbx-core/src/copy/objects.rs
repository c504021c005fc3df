//! One object of a run copied to the target, and the target's data checked.
//!
//! Server-side (CopyObject; UploadPartCopy in parts past 5 GiB) when the target's bucket
//! is reached by the credentials that read the source, in the same region; streamed
//! otherwise (read from the source, written to the target in parts of 8 MiB), which is
//! also how a local folder on either side is copied. Either way the target writes it
//! retained when the copy asks for Object Lock (`Location::retained`).

use futures::TryStreamExt;
use md5::{Digest, Md5};
use object_store::{PutPayload, WriteMultipart};

use crate::format::source::SourceFile;
use crate::store::s3::CopySizes;
use crate::store::Location;
use crate::{Error, Result};

/// Bytes an object is streamed in, and the part size of a streamed multipart upload.
const PART: usize = 8 * 1024 * 1024;

/// One object of the source run: its path relative to the run root, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    pub rel: String,
    pub size: u64,
}

/// How objects go from the source to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// S3 copies them (CopyObject, UploadPartCopy).
    ServerSide,
    /// They are read here and written there.
    Streamed,
}

/// Copy `o` from the run root `from` to the run root `to`.
pub(super) async fn copy(from: &Location, to: &Location, o: &Object, how: Transfer) -> Result<()> {
    copy_sized(from, to, o, how, CopySizes::S3).await
}

/// [`copy`], a server-side one switching to parts past `sizes` (tests take that path with
/// megabytes, not S3's 5 GiB: `testing::copy_server_side_in_parts`).
pub(crate) async fn copy_sized(
    from: &Location,
    to: &Location,
    o: &Object,
    how: Transfer,
    sizes: CopySizes,
) -> Result<()> {
    let (src, dst) = (from.join(&o.rel), to.join(&o.rel));
    if let (Transfer::ServerSide, Some(sb), Some(db)) = (how, &from.s3, &to.s3) {
        db.copy_from(sb, src.as_ref(), o.size, dst.as_ref(), db.retains(), sizes)
            .await
            .map_err(|e| Error::store(to.url_of(&dst), e))?;
        return Ok(());
    }
    let got = from
        .store
        .get(&src)
        .await
        .map_err(|e| Error::store(from.url_of(&src), e))?;
    if o.size <= PART as u64 {
        let body = got
            .bytes()
            .await
            .map_err(|e| Error::store(from.url_of(&src), e))?;
        to.store
            .put(&dst, PutPayload::from(body))
            .await
            .map_err(|e| Error::store(to.url_of(&dst), e))?;
        return Ok(());
    }
    let mut stream = crate::store::stream_of(got);
    let upload = to
        .store
        .put_multipart(&dst)
        .await
        .map_err(|e| Error::store(to.url_of(&dst), e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    let streamed = async {
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| Error::store(from.url_of(&src), e))?
        {
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| Error::store(to.url_of(&dst), e))?;
            writer.write(&chunk);
        }
        Ok::<_, Error>(())
    };
    match streamed.await {
        Ok(()) => {
            writer
                .finish()
                .await
                .map_err(|e| Error::store(to.url_of(&dst), e))?;
            Ok(())
        }
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// Read `file` at `dir`'s store whole and check its MD5 against the manifest's.
pub(super) async fn check_md5(dir: &Location, file: &SourceFile) -> Result<()> {
    let Some(want) = &file.md5 else {
        return Ok(());
    };
    let got = dir
        .store
        .get(&file.path)
        .await
        .map_err(|e| Error::store(&file.url, e))?;
    let mut stream = crate::store::stream_of(got);
    let mut h = Md5::new();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| Error::store(&file.url, e))?
    {
        h.update(&chunk);
    }
    use base64::Engine as _;
    let got = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    if &got != want {
        return Err(Error::Corrupt {
            file: file.url.clone(),
            message: format!(
                "its MD5 on the target is {got}, the manifest's {want}: the copy differs"
            ),
        });
    }
    Ok(())
}

/// Every object under `root` (a run root), relative to it, with its size.
pub(super) async fn listed(root: &Location) -> Result<Vec<Object>> {
    let prefix = root.prefix.clone();
    let found: Vec<object_store::ObjectMeta> = root
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::store(root.url(), e))?;
    let mut objects: Vec<Object> = found
        .into_iter()
        .filter_map(|m| {
            let rel: Vec<String> = m
                .location
                .prefix_match(&prefix)?
                .map(|p| p.as_ref().to_string())
                .collect();
            Some(Object {
                rel: rel.join("/"),
                size: m.size,
            })
        })
        .collect();
    objects.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(objects)
}
