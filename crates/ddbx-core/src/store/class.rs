//! `--storage-class`: the data a run writes to S3 is stored in the class asked for
//! (STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, ...). `object_store` takes a storage
//! class per put as an attribute; this wrapper adds it to one bucket's client, so no writer
//! has to know, and forwards everything else (batch deletes included) untouched.
//!
//! Only objects of [`SMALLEST`] bytes or more get the class (every multipart upload, and
//! data files): those classes bill a smaller object as 128 KiB, for 30 days or more, so the
//! run's small documents (flags that downstream jobs poll, plans, checkpoints, the lock
//! rewritten every minute) stay STANDARD, as restic does with its metadata.

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    Attribute, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Objects smaller than this stay STANDARD (the infrequent-access classes' minimum
/// billable size).
pub const SMALLEST: usize = 128 * 1024;

/// A store whose writes carry a storage class.
#[derive(Debug)]
pub struct WithStorageClass<S> {
    inner: S,
    class: String,
}

impl<S> WithStorageClass<S> {
    /// Every write to `inner` stored as `class`.
    pub fn new(inner: S, class: &str) -> Self {
        Self {
            inner,
            class: class.to_string(),
        }
    }
}

impl<S: ObjectStore> std::fmt::Display for WithStorageClass<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.inner, self.class)
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for WithStorageClass<S> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> Result<PutResult> {
        if payload.content_length() >= SMALLEST {
            opts.attributes
                .insert(Attribute::StorageClass, self.class.clone().into());
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        mut opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        opts.attributes
            .insert(Attribute::StorageClass, self.class.clone().into());
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> Result<()> {
        self.inner.delete(location).await
    }

    fn delete_stream<'a>(
        &'a self,
        locations: BoxStream<'a, Result<Path>>,
    ) -> BoxStream<'a, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}
