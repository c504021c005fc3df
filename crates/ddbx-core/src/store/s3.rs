//! S3 through the AWS SDK, for what `object_store` cannot do. `object_store` 0.12 writes
//! only the headers it knows (storage class, content type, user metadata, SSE), signs
//! those alone, and has no call for versions, Object Lock or copies between buckets; so,
//! and only for these, one SDK client of the storage's (shared by its buckets) is used:
//!
//! - writes carrying `x-amz-object-lock-mode` and `-retain-until-date` (PutObject and
//!   multipart uploads, with a CRC32 checksum on every body, which S3 requires of them);
//! - a bucket's Object Lock configuration, an object version's retention (HeadObject);
//! - ListObjectVersions and DeleteObjects naming versions (past delete markers);
//! - CopyObject and UploadPartCopy from another bucket.
//!
//! Errors come back as `object_store` errors (404 `NotFound`, 403 `PermissionDenied`,
//! 412 `Precondition`), so that a caller treats both clients' alike.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectIdentifier, ObjectLockMode,
    ServerSideEncryption, StorageClass,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use object_store::{MultipartUpload, PutMode, PutPayload, PutResult, UploadPart};

use super::{class, Encryption, S3Settings};

/// The SDK's view of one bucket: its client and what every request to it carries.
#[derive(Debug, Clone)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    /// The bucket's name.
    pub name: String,
    settings: S3Settings,
    /// The retention of what a location writes under `retain.1`: a run root whose
    /// backup objects are retained (`Location::retained`).
    pub(super) retain: Option<(Retention, String)>,
}

/// How an object version is retained (Object Lock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub mode: String,
    /// Until when.
    pub until: DateTime<Utc>,
}

/// A bucket's Object Lock configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketLock {
    /// Object Lock is enabled (and with it versioning).
    pub enabled: bool,
    /// The default retention of new objects: mode and days.
    pub default: Option<(String, u32)>,
}

/// One entry of a version listing: a version of an object, or a delete marker.
#[derive(Debug, Clone)]
pub struct Version {
    /// The object's key.
    pub key: String,
    /// The version's id (`null` for one written before versioning was enabled).
    pub version_id: String,
    /// A delete marker rather than data.
    pub delete_marker: bool,
    /// The current version of its key.
    pub is_latest: bool,
    /// Bytes (0 for a delete marker).
    pub size: u64,
    /// When it was written.
    pub last_modified: DateTime<Utc>,
    /// Its ETag.
    pub e_tag: Option<String>,
}

/// What ListObjectVersions found under a prefix.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    /// Versions and delete markers, each key's newest first, keys in order.
    pub entries: Vec<Version>,
    /// Sub-folders (with a delimiter).
    pub folders: Vec<String>,
}

/// The most versions one DeleteObjects call names (S3's limit).
pub const DELETE_BATCH: usize = 1000;

/// Where a server-side copy switches from one CopyObject to UploadPartCopy, and the size
/// of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySizes {
    /// The largest object copied in one CopyObject.
    pub single_max: u64,
    /// Bytes a part past it (S3 takes 5 MiB to 5 GiB; the last part may be smaller).
    pub part: u64,
}

impl CopySizes {
    /// S3's own limit for one CopyObject (5 GiB), and parts of 512 MiB past it.
    pub const S3: CopySizes = CopySizes {
        single_max: 5 * 1024 * 1024 * 1024,
        part: 512 * 1024 * 1024,
    };
}

/// One SDK client for a storage's buckets, as `settings` say (region, endpoint, timeout)
/// with `credentials`, its retries the SDK's standard ones (as many attempts as
/// `object_store` makes).
pub fn client(
    settings: &S3Settings,
    region: &str,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion};
    let mut timeouts = TimeoutConfig::builder().connect_timeout(std::time::Duration::from_secs(10));
    if let Some(t) = settings.request_timeout {
        timeouts = timeouts.operation_attempt_timeout(t);
    }
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(
            settings
                .region
                .clone()
                .unwrap_or_else(|| region.to_string()),
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(10))
        .timeout_config(timeouts.build());
    if let Some(c) = credentials {
        conf = conf.credentials_provider(c);
    }
    if let Some(endpoint) = &settings.endpoint_url {
        conf = conf.endpoint_url(endpoint).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(conf.build())
}

/// An SDK error as `object_store` says it, about `path`.
pub fn store_error<E>(path: &str, e: SdkError<E, HttpResponse>) -> object_store::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().unwrap_or_default().to_string();
    let why = format!(
        "{}{}",
        aws_smithy_types::error::display::DisplayErrorContext(&e),
        status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
    );
    let path = path.to_string();
    let source = why.into();
    match (status, code.as_str()) {
        (Some(404), _) | (_, "NoSuchKey" | "NoSuchVersion") => {
            object_store::Error::NotFound { path, source }
        }
        (Some(403), _) | (_, "AccessDenied") => {
            object_store::Error::PermissionDenied { path, source }
        }
        (Some(412), _) => object_store::Error::Precondition { path, source },
        _ => object_store::Error::Generic {
            store: "S3",
            source,
        },
    }
}

/// What every write to a bucket carries: the retention asked, the storage class, the
/// bucket's encryption. PutObject, CreateMultipartUpload and CopyObject share the setters
/// but no trait, hence a macro.
macro_rules! written {
    ($req:expr, $bucket:expr, $retention:expr, $class:expr) => {{
        let mut req = $req;
        if let Some(r) = $retention {
            req = req
                .object_lock_mode(ObjectLockMode::from(r.mode.as_str()))
                .object_lock_retain_until_date(sdk_time(r.until));
        }
        if let Some(c) = $class {
            req = req.storage_class(StorageClass::from(c));
        }
        match &$bucket.settings.encryption {
            Some(Encryption::S3) => req.server_side_encryption(ServerSideEncryption::Aes256),
            Some(Encryption::Kms(k)) => req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(k.clone()),
            None => req,
        }
    }};
}

fn sdk_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn chrono_time(t: &aws_smithy_types::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

impl Bucket {
    /// The bucket `name`, reached with `client` as `settings` say.
    pub fn new(client: aws_sdk_s3::Client, name: &str, settings: &S3Settings) -> Self {
        Self {
            client,
            name: name.to_string(),
            settings: settings.clone(),
            retain: None,
        }
    }

    /// The retention this bucket's location writes its backup objects with, if any.
    pub fn retains(&self) -> Option<&Retention> {
        self.retain.as_ref().map(|(r, _)| r)
    }

    /// Retain what is already at `key` (its current version), as `retention` says: for
    /// objects another writer made (AWS's export service, an EMR cluster). Setting the
    /// same or a later date is what S3 allows; an earlier one is refused.
    pub async fn put_retention(
        &self,
        key: &str,
        retention: &Retention,
    ) -> Result<(), object_store::Error> {
        use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
        self.client
            .put_object_retention()
            .bucket(&self.name)
            .key(key)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::from(retention.mode.as_str()))
                    .retain_until_date(sdk_time(retention.until))
                    .build(),
            )
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
            .map_err(|e| store_error(key, e))?;
        Ok(())
    }

    /// Retain an object just completed from parts as its upload asked. S3 applies the
    /// lock headers of CreateMultipartUpload; S3-compatible stores (moto among them) may
    /// not, and setting the same date again is what S3 allows: so a retained object
    /// never depends on the store having honoured them.
    async fn retain_completed(
        &self,
        key: &str,
        retention: &Retention,
    ) -> Result<(), object_store::Error> {
        match self.retention(key, None).await? {
            Some(r) if r.until >= retention.until => Ok(()),
            _ => self.put_retention(key, retention).await,
        }
    }

    fn owner(&self) -> Option<String> {
        self.settings.expected_bucket_owner.clone()
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// The bucket's Object Lock configuration (none: not enabled).
    pub async fn object_lock(&self) -> Result<BucketLock, object_store::Error> {
        let got = self
            .client
            .get_object_lock_configuration()
            .bucket(&self.name)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await;
        let out = match got {
            Ok(o) => o,
            Err(e) if e.code() == Some("ObjectLockConfigurationNotFoundError") => {
                return Ok(BucketLock::default())
            }
            Err(e) => return Err(store_error(&format!("s3://{}", self.name), e)),
        };
        let conf = out.object_lock_configuration();
        let enabled = conf
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| e.as_str() == "Enabled");
        let default = conf
            .and_then(|c| c.rule())
            .and_then(|r| r.default_retention())
            .and_then(|d| {
                let days = d
                    .days()
                    .map(|n| n.max(0) as u32)
                    .or(d.years().map(|y| y.max(0) as u32 * 365))?;
                Some((d.mode()?.as_str().to_string(), days))
            });
        Ok(BucketLock { enabled, default })
    }

    /// Write `body` at `key` retained as `retention` (a single PutObject), as `mode` says
    /// (create-if-absent, overwrite, or update of a given ETag); `class` is the storage
    /// class asked for (objects under 128 KiB stay STANDARD).
    pub async fn put_retained(
        &self,
        key: &str,
        body: PutPayload,
        mode: &PutMode,
        retention: &Retention,
    ) -> Result<PutResult, object_store::Error> {
        let body: Bytes = body.into();
        let len = body.len();
        let mut req = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .set_expected_bucket_owner(self.owner())
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body));
        req = match mode {
            PutMode::Overwrite => req,
            PutMode::Create => req.if_none_match("*"),
            PutMode::Update(v) => req.set_if_match(v.e_tag.clone()),
        };
        req = written!(req, self, Some(retention), self.class_for(len as u64));
        match req.send().await {
            Ok(out) => Ok(PutResult {
                e_tag: out.e_tag().map(str::to_string),
                version: out.version_id().map(str::to_string),
            }),
            Err(e) => Err(match (mode, store_error(key, e)) {
                (PutMode::Create, object_store::Error::Precondition { path, source }) => {
                    object_store::Error::AlreadyExists { path, source }
                }
                (_, e) => e,
            }),
        }
    }

    fn class_for(&self, len: u64) -> Option<&str> {
        self.settings
            .storage_class
            .as_deref()
            .filter(|_| len >= class::SMALLEST as u64)
    }

    /// Start a multipart upload at `key` whose object is retained as `retention`.
    pub async fn upload_retained(
        self: &Arc<Self>,
        key: &str,
        retention: &Retention,
    ) -> Result<Box<dyn MultipartUpload>, object_store::Error> {
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .set_expected_bucket_owner(self.owner())
            .checksum_algorithm(ChecksumAlgorithm::Crc32);
        req = written!(
            req,
            self,
            Some(retention),
            self.settings.storage_class.as_deref()
        );
        let out = req.send().await.map_err(|e| store_error(key, e))?;
        let upload_id = out.upload_id().unwrap_or_default().to_string();
        Ok(Box::new(Upload {
            bucket: self.clone(),
            key: key.to_string(),
            retention: retention.clone(),
            upload_id,
            parts: Arc::default(),
            next: 1,
        }))
    }

    /// How `key` (at `version`, else its current version) is retained, if it is.
    pub async fn retention(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<Retention>, object_store::Error> {
        let out = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
            .map_err(|e| store_error(key, e))?;
        Ok(
            match (out.object_lock_mode(), out.object_lock_retain_until_date()) {
                (Some(m), Some(t)) => Some(Retention {
                    mode: m.as_str().to_string(),
                    until: chrono_time(t),
                }),
                _ => None,
            },
        )
    }

    /// Every version and delete marker under `prefix` (with `delimiter`: those directly in
    /// it, and its sub-folders), every page.
    pub async fn versions(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Versions, object_store::Error> {
        let mut found = Versions::default();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.name)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .set_expected_bucket_owner(self.owner())
                .send()
                .await
                .map_err(|e| store_error(prefix, e))?;
            let mut entries: Vec<Version> = page
                .versions()
                .iter()
                .map(|v| Version {
                    key: v.key().unwrap_or_default().to_string(),
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    delete_marker: false,
                    is_latest: v.is_latest().unwrap_or(false),
                    size: v.size().unwrap_or(0).max(0) as u64,
                    last_modified: v.last_modified().map(chrono_time).unwrap_or_default(),
                    e_tag: v.e_tag().map(str::to_string),
                })
                .collect();
            entries.extend(page.delete_markers().iter().map(|m| Version {
                key: m.key().unwrap_or_default().to_string(),
                version_id: m.version_id().unwrap_or("null").to_string(),
                delete_marker: true,
                is_latest: m.is_latest().unwrap_or(false),
                size: 0,
                last_modified: m.last_modified().map(chrono_time).unwrap_or_default(),
                e_tag: None,
            }));
            found.entries.extend(entries);
            found.folders.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        // Versions and markers come in two lists: each key's newest first again.
        found.entries.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(b.is_latest.cmp(&a.is_latest))
                .then(b.last_modified.cmp(&a.last_modified))
        });
        found.folders.sort();
        found.folders.dedup();
        Ok(found)
    }

    /// Delete these versions (at most [`DELETE_BATCH`]); each one S3 refused, with why.
    pub async fn delete_versions(
        &self,
        versions: &[(String, String)],
    ) -> Result<Vec<(String, String)>, object_store::Error> {
        let objects = versions
            .iter()
            .map(|(k, v)| ObjectIdentifier::builder().key(k).version_id(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: e.into(),
            })?;
        let delete = aws_sdk_s3::types::Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: e.into(),
            })?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.name)
            .delete(delete)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
            .map_err(|e| store_error(&format!("s3://{}", self.name), e))?;
        Ok(out
            .errors()
            .iter()
            .map(|e| {
                (
                    e.key().unwrap_or_default().to_string(),
                    format!(
                        "{}: {}",
                        e.code().unwrap_or("error"),
                        e.message().unwrap_or_default()
                    ),
                )
            })
            .collect())
    }

    /// Copy `source_key` of `source` (in S3, server-side) to `key` here, retained as
    /// `retention` when given: one CopyObject up to `sizes.single_max`, else (or when S3
    /// refuses a retained single copy for want of the source's MD5, as it does of an
    /// object uploaded in parts) UploadPartCopy, `sizes.part` bytes a part.
    pub async fn copy_from(
        self: &Arc<Self>,
        source: &Bucket,
        source_key: &str,
        size: u64,
        key: &str,
        retention: Option<&Retention>,
        sizes: CopySizes,
    ) -> Result<PutResult, object_store::Error> {
        if size <= sizes.single_max {
            match self
                .copy_once(source, source_key, size, key, retention)
                .await
            {
                Err(object_store::Error::Generic { source: why, .. })
                    if retention.is_some() && why.to_string().contains("Content-MD5") =>
                {
                    tracing::debug!(
                        key,
                        "a retained single copy refused for want of a checksum: copying in parts"
                    );
                }
                done => return done,
            }
        }
        self.copy_in_parts(
            source,
            source_key,
            size,
            key,
            retention,
            sizes.part.max(5 << 20),
        )
        .await
    }

    async fn copy_once(
        &self,
        source: &Bucket,
        source_key: &str,
        size: u64,
        key: &str,
        retention: Option<&Retention>,
    ) -> Result<PutResult, object_store::Error> {
        let mut req = self
            .client
            .copy_object()
            .bucket(&self.name)
            .key(key)
            .copy_source(copy_source(source, source_key))
            .set_expected_bucket_owner(self.owner())
            .set_expected_source_bucket_owner(source.owner());
        req = written!(req, self, retention, self.class_for(size));
        let out = req.send().await.map_err(|e| store_error(key, e))?;
        Ok(PutResult {
            e_tag: out
                .copy_object_result()
                .and_then(|r| r.e_tag())
                .map(str::to_string),
            version: out.version_id().map(str::to_string),
        })
    }

    async fn copy_in_parts(
        &self,
        source: &Bucket,
        source_key: &str,
        size: u64,
        key: &str,
        retention: Option<&Retention>,
        part: u64,
    ) -> Result<PutResult, object_store::Error> {
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .set_expected_bucket_owner(self.owner());
        req = written!(req, self, retention, self.settings.storage_class.as_deref());
        let upload = req.send().await.map_err(|e| store_error(key, e))?;
        let id = upload.upload_id().unwrap_or_default().to_string();
        let copied = async {
            let mut parts = Vec::new();
            let mut start = 0;
            while start < size || (size == 0 && parts.is_empty()) {
                let end = (start + part).min(size);
                let n = parts.len() as i32 + 1;
                let mut req = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(&id)
                    .part_number(n)
                    .copy_source(copy_source(source, source_key))
                    .set_expected_bucket_owner(self.owner())
                    .set_expected_source_bucket_owner(source.owner());
                if size > 0 {
                    req = req.copy_source_range(format!("bytes={start}-{}", end - 1));
                }
                let out = req.send().await.map_err(|e| store_error(key, e))?;
                let etag = out.copy_part_result().and_then(|r| r.e_tag());
                parts.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(etag.map(str::to_string))
                        .build(),
                );
                start = end;
                if size == 0 {
                    break;
                }
            }
            let done = self.complete(key, &id, parts).await?;
            if let Some(r) = retention {
                self.retain_completed(key, r).await?;
            }
            Ok(done)
        };
        match copied.await {
            Ok(r) => Ok(r),
            Err(e) => {
                let _ = self.abort(key, &id).await;
                Err(e)
            }
        }
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<PutResult, object_store::Error> {
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
            .map_err(|e| store_error(key, e))?;
        Ok(PutResult {
            e_tag: out.e_tag().map(str::to_string),
            version: out.version_id().map(str::to_string),
        })
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), object_store::Error> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
            .map_err(|e| store_error(key, e))?;
        Ok(())
    }
}

/// `x-amz-copy-source`: the bucket and the key, URL-encoded.
fn copy_source(bucket: &Bucket, key: &str) -> String {
    let encoded: String = key
        .split('/')
        .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/");
    format!("{}/{}", bucket.name, encoded.replace('+', "%20"))
}

/// A multipart upload through the SDK (a retained object's): parts numbered in the order
/// they are given, uploaded as they come, completed in order.
struct Upload {
    bucket: Arc<Bucket>,
    key: String,
    retention: Retention,
    upload_id: String,
    parts: Arc<Mutex<Vec<CompletedPart>>>,
    next: i32,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("url", &self.bucket.url(&self.key))
            .field("upload_id", &self.upload_id)
            .finish()
    }
}

#[async_trait::async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let n = self.next;
        self.next += 1;
        let bucket = self.bucket.clone();
        let key = self.key.clone();
        let upload_id = self.upload_id.clone();
        let parts = self.parts.clone();
        let fut: BoxFuture<'static, object_store::Result<()>> = Box::pin(async move {
            let body: Bytes = data.into();
            let out = bucket
                .client
                .upload_part()
                .bucket(&bucket.name)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(n)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(body))
                .set_expected_bucket_owner(bucket.owner())
                .send()
                .await
                .map_err(|e| store_error(&key, e))?;
            let part = CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(str::to_string))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                .build();
            parts.lock().expect("not poisoned").push(part);
            Ok(())
        });
        fut
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let mut parts = std::mem::take(&mut *self.parts.lock().expect("not poisoned"));
        parts.sort_by_key(|p| p.part_number());
        if parts.is_empty() {
            // S3 completes no upload of no part: one empty part, as object_store does.
            self.put_part(PutPayload::default()).await?;
            parts = std::mem::take(&mut *self.parts.lock().expect("not poisoned"));
        }
        let done = self
            .bucket
            .complete(&self.key, &self.upload_id, parts)
            .await?;
        self.bucket
            .retain_completed(&self.key, &self.retention)
            .await?;
        Ok(done)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.bucket.abort(&self.key, &self.upload_id).await
    }
}
