//! Where a run is stored: a local folder, a `file://` URL or `s3://bucket/prefix`, all
//! behind one `object_store` handle so that every part of ddbx reads and writes alike.
//!
//! S3 uses the run's one AWS configuration: the SDK's credential chain (profiles, SSO,
//! instance roles...) is bridged into `object_store` rather than resolved a second time,
//! and each bucket gets one client for the whole run ([`Storage`]).

use std::path::PathBuf;

use bytes::Bytes;
use futures::TryStreamExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use http::{HeaderMap, HeaderValue};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::path::Path;
use object_store::ClientOptions;
use object_store::{CredentialProvider, ObjectStore, PutPayload};

use crate::{Error, Result};

mod body;
mod class;
pub mod errors;
pub(crate) mod local;
pub mod retention;
pub(crate) mod s3;
pub(crate) mod versions;

pub use body::Body;

/// An object's bytes as a stream (a local file's in large reads).
pub(crate) use local::stream_of;

/// The most bytes a control file (a plan, a manifest, a flag, a lock, a checkpoint,
/// `table.json`) may hold: they are read whole, and a padded one must not take the
/// memory of the machine (a restore plan of 10,000 tables is about 3 MB).
pub const MAX_CONTROL_BYTES: u64 = 64 * 1024 * 1024;

/// A storage location: a handle and the prefix inside it.
#[derive(Debug, Clone)]
pub struct Location {
    /// The storage (one bucket, or a local folder).
    pub store: Arc<dyn ObjectStore>,
    /// The prefix within the store (empty for the store's root).
    pub prefix: Path,
    /// How to name the store's root in URLs: `s3://bucket` or `file:///abs/folder`.
    pub root_url: String,
    /// The bucket, for S3.
    pub bucket: Option<String>,
    /// Server-side encryption of what is written (S3 only).
    pub encryption: Option<Encryption>,
    /// The bucket through the AWS SDK, for what `object_store` cannot do (S3 only).
    pub s3: Option<Arc<s3::Bucket>>,
}

fn sse_key() -> AmazonS3ConfigKey {
    "aws_server_side_encryption"
        .parse()
        .expect("object_store knows this key")
}

/// S3 server-side encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// SSE-S3 (`AES256`).
    S3,
    /// SSE-KMS, with a key id or ARN (else the account's AWS managed key).
    Kms(Option<String>),
}

impl Encryption {
    /// Parse `--sse` (`AES256` or `aws:kms`) with `--sse-kms-key-id`.
    pub fn parse(sse: &str, kms_key_id: Option<String>) -> Result<Self> {
        match (sse, kms_key_id) {
            ("AES256", None) => Ok(Encryption::S3),
            ("AES256", Some(_)) => Err(Error::Usage("--sse-kms-key-id needs --sse aws:kms".into())),
            ("aws:kms", key) => Ok(Encryption::Kms(key)),
            (other, _) => Err(Error::Usage(format!(
                "--sse {other:?}: use AES256 or aws:kms"
            ))),
        }
    }

    /// The algorithm's name as AWS's export manifests write it (`AES256`, `KMS`).
    pub fn manifest_name(&self) -> &'static str {
        match self {
            Encryption::S3 => "AES256",
            Encryption::Kms(_) => "KMS",
        }
    }
}

impl Location {
    /// The path of `rel` (slash-separated, relative) under this location.
    pub fn join(&self, rel: &str) -> Path {
        join(&self.prefix, rel)
    }

    /// The same store at a deeper prefix.
    pub fn child(&self, rel: &str) -> Location {
        Location {
            prefix: self.join(rel),
            ..self.clone()
        }
    }

    /// The URL of a path in this store.
    pub fn url_of(&self, path: &Path) -> String {
        if path.as_ref().is_empty() {
            self.root_url.clone()
        } else {
            format!("{}/{}", self.root_url, path)
        }
    }

    /// The URL of this location.
    pub fn url(&self) -> String {
        self.url_of(&self.prefix)
    }

    /// The folder `levels` above this one, in the same store, or (a local folder opened
    /// below where it must go) a local folder opened there: a run root given as a path is
    /// its store's root, and its app's folder is above it.
    pub fn up(&self, levels: usize) -> Location {
        let parts: Vec<_> = self.prefix.parts().collect();
        if parts.len() >= levels || !self.root_url.starts_with("file://") {
            let keep = parts.len().saturating_sub(levels);
            return Location {
                prefix: Path::from_iter(parts[..keep].iter().cloned()),
                ..self.clone()
            };
        }
        let mut root = PathBuf::from(self.root_url.trim_start_matches("file://"));
        for _ in parts.len()..levels {
            root.pop();
        }
        match local::NoLinks::new(root.clone()) {
            Ok(store) => Location {
                store: Arc::new(store),
                prefix: Path::default(),
                root_url: format!("file://{}", root.display()),
                bucket: None,
                encryption: None,
                s3: None,
            },
            // (The folder above a run that exists exists: this cannot fail.)
            Err(_) => Location {
                prefix: Path::default(),
                ..self.clone()
            },
        }
    }
}

/// Join a relative, slash-separated path onto `base`, refusing `.` and `..` segments.
pub fn join(base: &Path, rel: &str) -> Path {
    let mut parts: Vec<object_store::path::PathPart<'_>> = base.parts().collect();
    for seg in rel.split('/').filter(|s| !s.is_empty()) {
        parts.push(object_store::path::PathPart::from(seg));
    }
    Path::from_iter(parts)
}

/// How S3 is reached: where, as whom, and what every request carries.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// An S3-compatible endpoint (a local store in tests).
    pub endpoint_url: Option<String>,
    /// The bucket's region, when it is not the run's.
    pub region: Option<String>,
    /// Server-side encryption of what is written.
    pub encryption: Option<Encryption>,
    /// The account that must own the bucket (`x-amz-expected-bucket-owner` on every request).
    pub expected_bucket_owner: Option<String>,
    /// How long one attempt of one request may take (default: object_store's).
    pub request_timeout: Option<Duration>,
    /// The storage class of every object written (`--storage-class`; default: STANDARD).
    pub storage_class: Option<String>,
}

/// Every storage location of a run, opened from URLs: one S3 client per bucket, built once
/// and shared (cloning a `Storage` shares them too), and local folders.
#[derive(Clone, Default)]
pub struct Storage {
    settings: S3Settings,
    /// The run's region, the default for buckets.
    region: String,
    /// The SDK's credential chain, bridged into `object_store` (none: object_store's own),
    /// one for every client: one role session, however many buckets and probes.
    credentials: Option<Arc<SdkCredentials>>,
    buckets: Arc<Mutex<std::collections::HashMap<String, OpenBucket>>>,
    /// The SDK's client for what object_store cannot do, built on first use.
    sdk: Arc<std::sync::OnceLock<aws_sdk_s3::Client>>,
    /// Reads see each object's newest version that is not deleted (past delete markers).
    recovering: bool,
}

/// One bucket's clients: object_store's, and the SDK's.
#[derive(Clone)]
struct OpenBucket {
    store: Arc<dyn ObjectStore>,
    sdk: Arc<s3::Bucket>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("settings", &self.settings)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Storage for a run in `region`, reaching S3 with `credentials` as `settings` say.
    pub fn new(
        settings: S3Settings,
        region: &str,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        Self {
            settings,
            region: region.to_string(),
            credentials: credentials.map(|p| Arc::new(SdkCredentials::new(p))),
            buckets: Arc::default(),
            sdk: Arc::default(),
            recovering: false,
        }
    }

    /// The same storage (its clients shared), reading S3 past delete markers: each object
    /// is its newest version that is not deleted (see [`versions`]); it writes nothing.
    pub fn recovering(&self) -> Self {
        Self {
            recovering: true,
            ..self.clone()
        }
    }

    /// Whether reads go past delete markers ([`Storage::recovering`]).
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// The storage class of what is written (`--storage-class`), if given.
    pub fn storage_class(&self) -> Option<&str> {
        self.settings.storage_class.as_deref()
    }

    /// The account that must own the buckets (`--expected-bucket-owner`), if given.
    pub fn expected_bucket_owner(&self) -> Option<&str> {
        self.settings.expected_bucket_owner.as_deref()
    }

    /// Open a location given as a local path, a `file://` URL or an `s3://` URL, to
    /// write into: a local folder is created if missing.
    pub fn open(&self, location: &str) -> Result<Location> {
        self.open_as(location, true)
    }

    /// Open a location to read from (an export, a base to list): a local folder that does
    /// not exist is an error, never created.
    pub fn open_existing(&self, location: &str) -> Result<Location> {
        self.open_as(location, false)
    }

    fn open_as(&self, location: &str, create: bool) -> Result<Location> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Usage(format!("{location}: no bucket name")));
            }
            let inner = prefix.strip_suffix('/').unwrap_or(prefix);
            if !inner.is_empty()
                && inner
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..")
            {
                return Err(Error::Usage(format!(
                    "{location}: a prefix with an empty, `.` or `..` part names another place than it seems; write it without"
                )));
            }
            let open = self.bucket(bucket, location)?;
            let store: Arc<dyn ObjectStore> = if self.recovering {
                Arc::new(versions::Recovered::new(open.store, open.sdk.clone()))
            } else {
                open.store
            };
            return Ok(Location {
                store,
                prefix: join(&Path::default(), prefix),
                root_url: format!("s3://{bucket}"),
                bucket: Some(bucket.to_string()),
                encryption: self.settings.encryption.clone(),
                s3: Some(open.sdk),
            });
        }
        if self.recovering {
            return Err(Error::Usage(format!(
                "{location}: a folder keeps no versions of what was deleted: --recover-deleted and --include-deleted read S3 buckets with versioning"
            )));
        }
        open_folder(location, create)
    }

    /// The shared clients of one bucket, built on first use.
    fn bucket(&self, bucket: &str, location: &str) -> Result<OpenBucket> {
        let mut buckets = self.buckets.lock().unwrap();
        if let Some(open) = buckets.get(bucket) {
            return Ok(open.clone());
        }
        let store = self.client(bucket, location, None)?;
        let s = &self.settings;
        let provider = self.credentials.as_ref().map(|c| c.provider.clone());
        let client = self
            .sdk
            .get_or_init(|| s3::client(s, &self.region, provider))
            .clone();
        let open = OpenBucket {
            store,
            sdk: Arc::new(s3::Bucket::new(client, bucket, s)),
        };
        buckets.insert(bucket.to_string(), open.clone());
        Ok(open)
    }

    /// A client of one bucket; `quick` replaces object_store's retry policy (ten retries
    /// over up to three minutes) and its timeouts.
    fn client(
        &self,
        bucket: &str,
        location: &str,
        quick: Option<(object_store::RetryConfig, Duration)>,
    ) -> Result<Arc<dyn ObjectStore>> {
        let s = &self.settings;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(s.region.as_deref().unwrap_or(&self.region));
        if let Some(credentials) = &self.credentials {
            builder = builder.with_credentials(credentials.clone());
        }
        match &s.encryption {
            Some(Encryption::S3) => builder = builder.with_config(sse_key(), "AES256"),
            Some(Encryption::Kms(Some(key))) => builder = builder.with_sse_kms_encryption(key),
            Some(Encryption::Kms(None)) => builder = builder.with_config(sse_key(), "aws:kms"),
            None => {}
        }
        let mut options = ClientOptions::new();
        if let Some(timeout) = s.request_timeout {
            options = options.with_timeout(timeout);
        }
        if let Some((retry, timeout)) = quick {
            builder = builder.with_retry(retry);
            options = options
                .with_timeout(timeout)
                .with_connect_timeout(Duration::from_secs(3));
        }
        if let Some(owner) = &s.expected_bucket_owner {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-amz-expected-bucket-owner",
                HeaderValue::from_str(owner).map_err(|_| {
                    Error::Usage(format!(
                        "--expected-bucket-owner {owner:?}: not an account id"
                    ))
                })?,
            );
            options = options.with_default_headers(headers);
        }
        builder = builder.with_client_options(options);
        if let Some(endpoint) = &s.endpoint_url {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let s3 = builder
            .build()
            .map_err(|e| Error::Usage(format!("{location}: {e}")))?;
        Ok(match &s.storage_class {
            Some(class) => Arc::new(class::WithStorageClass::new(s3, class)),
            None => Arc::new(s3),
        })
    }

    /// First contact with an `s3://` location, before a command uses it (anything else
    /// passes): one small read of a key that need not exist, with a few quick retries, at
    /// most [`FIRST_CONTACT`](crate::diagnosis::FIRST_CONTACT) in all. A bucket that
    /// does not exist or lives in another region, credentials S3 refuses or finds
    /// expired, and an endpoint that cannot be reached are said in one line
    /// ([`Error::Config`]); an access denied is left to the command's own calls, which
    /// say which action it needed.
    pub async fn reach(&self, location: &str) -> Result<()> {
        use errors::Problem;
        let opened = self.open_existing(location)?;
        let Some(bucket) = opened.bucket.clone() else {
            return Ok(());
        };
        let quick = object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 5,
            retry_timeout: Duration::from_secs(8),
        };
        let probe = self.client(&bucket, location, Some((quick, Duration::from_secs(5))))?;
        let key = opened.join(".ddbx-first-contact");
        let region = self.settings.region.as_deref().unwrap_or(&self.region);
        let host = match &self.settings.endpoint_url {
            Some(url) => crate::diagnosis::authority(url).unwrap_or_else(|| url.clone()),
            None => format!("s3.{region}.amazonaws.com"),
        };
        let limit = crate::diagnosis::FIRST_CONTACT;
        let answer = match tokio::time::timeout(limit, probe.get(&key)).await {
            Err(_) => {
                return Err(Error::Config(format!(
                    "cannot reach {host}: no answer within {} s",
                    limit.as_secs()
                )))
            }
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e,
        };
        let said = errors::describe(&answer);
        match errors::classify(&answer) {
            Problem::NoSuchBucket => Err(Error::Config(format!(
                "{location}: the bucket {bucket} does not exist (S3 answered NoSuchBucket): create it, or check the bucket's name"
            ))),
            Problem::OtherRegion(said) => {
                let found = match said {
                    Some(r) => Some(r),
                    None => {
                        let endpoint = self.settings.endpoint_url.as_deref();
                        bucket_region(endpoint, region, &bucket).await
                    }
                };
                Err(Error::Config(format!(
                "{location}: the bucket {bucket} is not in {region}{}: pass --s3-region {}",
                match &found {
                    Some(r) => format!(" but in {r}"),
                    None => " (S3 answered 301 PermanentRedirect)".into(),
                },
                found.as_deref().unwrap_or("with the bucket's region (`aws s3api get-bucket-location --bucket BUCKET` says it)")
            )))
            }
            Problem::Credentials(line) => Err(Error::Config(format!("{location}: {line}"))),
            Problem::Unreachable { host, cause } => {
                Err(Error::Config(format!("cannot reach {host}: {cause}")))
            }
            Problem::Denied(_) | Problem::Other(_) => {
                tracing::debug!(%location, answer = %said, "first contact with S3: answered");
                Ok(())
            }
        }
    }
}

/// The region S3 says a bucket is in: the `x-amz-bucket-region` header of its answer to
/// an unsigned HEAD of the bucket (S3 gives it with the 301 of a bucket in another region,
/// to anyone), which object_store's error leaves out. `None` when no answer says it.
async fn bucket_region(endpoint: Option<&str>, region: &str, bucket: &str) -> Option<String> {
    let url = match endpoint {
        Some(e) => format!("{}/{bucket}", e.trim_end_matches('/')),
        None => format!("https://s3.{region}.amazonaws.com/{bucket}"),
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let answer = client.head(&url).send().await.ok()?;
    let found = answer.headers().get("x-amz-bucket-region")?.to_str().ok()?;
    (!found.is_empty() && found != region).then(|| found.to_string())
}

/// Open a local folder (a path or a `file://` URL), creating it if missing when asked.
fn open_folder(location: &str, create: bool) -> Result<Location> {
    let folder = match location.strip_prefix("file://") {
        Some(p) => PathBuf::from(p),
        None if location.contains("://") => {
            return Err(Error::Usage(format!(
                "{location}: unsupported location (use a folder, file:// or s3://)"
            )))
        }
        None => PathBuf::from(location),
    };
    if create {
        std::fs::create_dir_all(&folder).map_err(|e| {
            Error::Usage(format!("{}: cannot create folder: {e}", folder.display()))
        })?;
    } else if !folder.is_dir() {
        return Err(Error::Usage(format!(
            "{}: no such folder",
            folder.display()
        )));
    }
    let folder = folder
        .canonicalize()
        .map_err(|e| Error::Usage(format!("{}: {e}", folder.display())))?;
    let store = local::NoLinks::new(folder.clone())
        .map_err(|e| Error::Usage(format!("{}: {e}", folder.display())))?;
    Ok(Location {
        store: Arc::new(store),
        prefix: Path::default(),
        root_url: format!("file://{}", folder.display()),
        bucket: None,
        encryption: None,
        s3: None,
    })
}

/// Reading and writing the small documents a run keeps beside its data.
impl Location {
    /// Write a JSON document (pretty, with a final newline) at `rel`.
    pub async fn put_json(&self, rel: &str, value: &impl serde::Serialize) -> Result<()> {
        self.put_document(rel, Body::json(rel, value)?).await
    }

    /// Write `body` at `rel`.
    pub(crate) async fn put_body(&self, rel: &str, body: Bytes) -> Result<()> {
        let path = self.join(rel);
        self.store
            .put(&path, PutPayload::from(body))
            .await
            .map_err(|e| Error::store(self.url_of(&path), e))?;
        Ok(())
    }

    /// Read a control file whole (at most [`MAX_CONTROL_BYTES`]), or `None` if it is not
    /// there.
    pub async fn get_optional(&self, path: &Path) -> Result<Option<Bytes>> {
        self.get_capped(path, MAX_CONTROL_BYTES).await
    }

    /// Read a small object whole, or `None` if it is not there; one of more than `max`
    /// bytes is refused before its body is read.
    pub async fn get_capped(&self, path: &Path, max: u64) -> Result<Option<Bytes>> {
        let got = match self.store.get(path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Error::store(self.url_of(path), e)),
        };
        if got.meta.size > max {
            return Err(Error::Corrupt {
                file: self.url_of(path),
                message: format!(
                    "{} bytes: more than any file of its kind holds ({max} at most), not read",
                    got.meta.size
                ),
            });
        }
        Ok(Some(
            got.bytes()
                .await
                .map_err(|e| Error::store(self.url_of(path), e))?,
        ))
    }

    /// Whether `rel` exists.
    pub async fn exists(&self, rel: &str) -> Result<bool> {
        let path = self.join(rel);
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::store(self.url_of(&path), e)),
        }
    }

    /// What lies directly in this location: its objects, and its sub-folders as prefixes.
    pub async fn list_folder(&self) -> Result<object_store::ListResult> {
        self.store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| Error::store(self.url(), e))
    }

    /// Every object under this location.
    pub async fn list_all(&self) -> Result<Vec<Path>> {
        self.store
            .list(Some(&self.prefix))
            .map_ok(|o| o.location)
            .try_collect()
            .await
            .map_err(|e| Error::store(self.url(), e))
    }
}

/// The SDK's credential chain, as `object_store` wants it, cached until near expiry.
#[derive(Debug)]
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        if let Some((cred, expiry)) = self.cached.lock().unwrap().as_ref() {
            let fresh = expiry.is_none_or(|e| e > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(cred.clone());
            }
        }
        let c = self.provider.provide_credentials().await.map_err(|e| {
            // The whole chain of causes (STS's answer, the profile's problem), not its top.
            let why = crate::error::chain(&e);
            object_store::Error::Generic {
                store: "S3",
                source: why.into(),
            }
        })?;
        let cred = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *self.cached.lock().unwrap() = Some((cred.clone(), c.expiry()));
        Ok(cred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future::ProvideCredentials as Future;
    use aws_credential_types::Credentials;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Hands out a new session each call, valid for `lasts`.
    #[derive(Debug)]
    struct Sessions {
        calls: Arc<AtomicU32>,
        lasts: Duration,
    }

    impl ProvideCredentials for Sessions {
        fn provide_credentials<'a>(&'a self) -> Future<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Future::ready(Ok(Credentials::new(
                format!("ASIA{n}"),
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.lasts),
                "test",
            )))
        }
    }

    async fn keys_of_three_requests(lasts: Duration) -> (Vec<String>, u32) {
        let calls = Arc::new(AtomicU32::new(0));
        let bridge = SdkCredentials::new(SharedCredentialsProvider::new(Sessions {
            calls: calls.clone(),
            lasts,
        }));
        let mut keys = Vec::new();
        for _ in 0..3 {
            keys.push(bridge.get_credential().await.unwrap().key_id.clone());
        }
        (keys, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn s3_renews_a_session_before_it_expires_and_keeps_a_fresh_one() {
        // An hour-long session serves every request.
        let (keys, calls) = keys_of_three_requests(Duration::from_secs(3600)).await;
        assert_eq!((keys, calls), (vec!["ASIA0".to_string(); 3], 1));
        // One that ends within five minutes is renewed before the next request.
        let (keys, calls) = keys_of_three_requests(Duration::from_secs(120)).await;
        assert_eq!(
            (keys, calls),
            (vec!["ASIA0".into(), "ASIA1".into(), "ASIA2".into()], 3)
        );
    }
}
