//! DynamoDB calls made here rather than by the SDK's orchestrator: signed with `aws-sigv4`,
//! sent over the SDK's own HTTP client (`aws-smithy-http-client`'s connector, as the SDK
//! builds it), and answered as the SDK would answer them ([`SdkError`], so that
//! classifying, retrying, first contact and the errors said stay in one place).
//!
//! Why: an import's only frequent call is BatchWriteItem, and a profile of an import against
//! the canned endpoint (`docs/BENCHMARKS.md`, issue 26) put 37 % of its CPU under the SDK's
//! orchestrator, of which less than half was signing and the HTTP exchange: the rest was
//! its interceptors, config bags, endpoint resolution and serialisation, for every call.
//!
//! What is kept from the SDK: the endpoint (the one the SDK's client itself sent its
//! requests to, as [`Contact`] saw them: custom endpoints, FIPS, dual stack and account
//! endpoints alike; until the client has made a call there is none, and the caller uses the
//! SDK), the credentials (its provider chain, kept by [`Cached`] for the SDK's client and
//! for these calls, until a minute before they expire), SigV4 as the SDK signs DynamoDB
//! (the same crate and settings: no payload hash header, double-encoded path, session token
//! signed), the connect and attempt timeouts, and its clock skew correction (a `Date`
//! answered more than a minute off is taken as the signing clock). Retries are not here:
//! the caller's [`Aws::call`](super::Aws::call).
//!
//! The connector is a second pool of connections to DynamoDB, beside the client's: the
//! client's own is built inside its orchestrator, out of reach.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SigningInstructions, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::date_time::{DateTime, Format};
use aws_smithy_types::error::ErrorMetadata;
use aws_types::sdk_config::SharedTimeSource;
use bytes::Bytes;

use super::contact::Contact;

/// Credentials are fetched again when they expire within this.
const REFRESH_BEFORE: Duration = Duration::from_secs(60);

/// A clock this far from DynamoDB's is corrected for (the SDK corrects any skew; DynamoDB
/// refuses a signature more than 5 minutes off).
const SKEW_TOLERATED: Duration = Duration::from_secs(60);

/// DynamoDB's JSON calls, made without the SDK's orchestrator.
#[derive(Debug)]
pub struct Direct {
    http: SharedHttpConnector,
    credentials: SharedCredentialsProvider,
    region: String,
    attempt_timeout: Duration,
    time: SharedTimeSource,
    /// DynamoDB's clock minus ours, in milliseconds, once answers said it is off.
    skew_ms: AtomicI64,
    contact: Arc<Contact>,
}

/// The user agent of these calls.
const USER_AGENT: &str = concat!("ddbx/", env!("CARGO_PKG_VERSION"));

impl Direct {
    /// Calls in `region` as `credentials`, each attempt given `attempt_timeout`, to the
    /// endpoint `contact` saw the SDK's client use, signing at `time`'s now.
    pub fn new(
        http: SharedHttpConnector,
        credentials: SharedCredentialsProvider,
        region: String,
        attempt_timeout: Duration,
        time: SharedTimeSource,
        contact: Arc<Contact>,
    ) -> Self {
        Self {
            http,
            credentials,
            region,
            attempt_timeout,
            time,
            skew_ms: AtomicI64::new(0),
            contact,
        }
    }

    /// Calls as `credentials` (the DynamoDB client's own: [`Cached`]), over the HTTP
    /// connector the SDK would build, with DynamoDB's client's timeouts.
    pub fn for_sdk(
        sdk: &aws_types::SdkConfig,
        credentials: SharedCredentialsProvider,
        region: String,
        attempt_timeout: Duration,
        contact: Arc<Contact>,
    ) -> crate::Result<Self> {
        let connect = HttpConnectorSettings::builder()
            .connect_timeout(super::CONNECT_TIMEOUT)
            .build();
        let http = aws_smithy_http_client::default_connector(&connect, sdk.sleep_impl())
            .ok_or_else(|| crate::Error::Config("this build of ddbx has no HTTPS client".into()))?;
        let time = sdk.time_source().unwrap_or_default();
        Ok(Self::new(
            http,
            credentials,
            region,
            attempt_timeout,
            time,
            contact,
        ))
    }

    /// Whether a call can be made here: the SDK's client has shown the endpoint.
    pub fn ready(&self) -> bool {
        self.contact.endpoint().is_some()
    }

    /// One attempt of the JSON call `target` (`DynamoDB_20120810.BatchWriteItem`) with
    /// `body`: the answer's body, or the error as the SDK's orchestrator gives it (`error`
    /// makes the operation's error from an error answer's code and message). `None`
    /// before the endpoint is known ([`Direct::ready`]).
    pub async fn call<E>(
        &self,
        target: &str,
        body: Bytes,
        error: fn(ErrorMetadata) -> E,
    ) -> Option<Result<Bytes, SdkError<E, HttpResponse>>> {
        let endpoint = self.contact.endpoint()?;
        let attempt = async {
            let request = self.signed(endpoint, target, body).await?;
            let response = self
                .http
                .call(request)
                .await
                .map_err(SdkError::dispatch_failure)?;
            self.contact.answered_now();
            self.read(response, error).await
        };
        match tokio::time::timeout(self.attempt_timeout, attempt).await {
            Ok(answer) => Some(answer),
            Err(_) => Some(Err(SdkError::timeout_error(format!(
                "no answer within {} s",
                self.attempt_timeout.as_secs()
            )))),
        }
    }

    /// The request, signed. Credentials that cannot be had fail as the SDK fails them
    /// (before sending: a dispatch failure).
    async fn signed<E>(
        &self,
        endpoint: &str,
        target: &str,
        body: Bytes,
    ) -> Result<HttpRequest, SdkError<E, HttpResponse>> {
        let not_sent = |e: BoxError| SdkError::dispatch_failure(ConnectorError::other(e, None));
        let credentials = self.credentials.provide_credentials().await;
        let identity: Identity = credentials.map_err(|e| not_sent(e.into()))?.into();
        let host = crate::diagnosis::authority(endpoint).unwrap_or_default();
        let length = body.len().to_string();
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("host", host.as_str()),
            ("x-amz-target", target),
            ("content-length", length.as_str()),
        ];
        let instructions = self
            .instructions(&identity, self.now(), endpoint, &headers, &body)
            .map_err(not_sent)?;
        let mut request = http::Request::builder()
            .method("POST")
            .uri(endpoint)
            .header("user-agent", USER_AGENT);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request
            .body(SdkBody::from(body))
            .map_err(|e| not_sent(e.into()))?;
        instructions.apply_to_request_http1x(&mut request);
        HttpRequest::try_from(request).map_err(|e| not_sent(e.into()))
    }

    /// The headers SigV4 adds to a request of `headers` and `body` to `endpoint`, signed
    /// as at `time`: as the SDK signs DynamoDB's calls (`SigningSettings::default()` is its
    /// setting for every service but S3).
    pub(crate) fn instructions(
        &self,
        identity: &Identity,
        time: SystemTime,
        endpoint: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<SigningInstructions, BoxError> {
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name("dynamodb")
            .time(time)
            .settings(SigningSettings::default())
            .build()?
            .into();
        let signable = SignableRequest::new(
            "POST",
            endpoint,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )?;
        Ok(sign(signable, &params)?.into_parts().0)
    }

    /// The answer's body when it is a success; else the error it names.
    async fn read<E>(
        &self,
        response: HttpResponse,
        error: fn(ErrorMetadata) -> E,
    ) -> Result<Bytes, SdkError<E, HttpResponse>> {
        let status = response.status();
        if let Some(date) = response.headers().get("date") {
            self.saw_date(date);
        }
        let headers = response.headers().clone();
        let answer = |body: SdkBody| {
            let mut raw = HttpResponse::new(status, body);
            *raw.headers_mut() = headers.clone();
            raw
        };
        // As the SDK has it: an answer whose body breaks off is a response error.
        let body = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| SdkError::response_error(e, answer(SdkBody::empty())))?
            .into_bytes();
        if status.is_success() {
            return Ok(body);
        }
        let meta = error_metadata(headers.get("x-amzn-errortype"), &body);
        Err(SdkError::service_error(
            error(meta),
            answer(SdkBody::from(body)),
        ))
    }

    /// The signing time: ours, corrected by the skew answers showed.
    fn now(&self) -> SystemTime {
        let skew = self.skew_ms.load(Ordering::Relaxed);
        let now = self.time.now();
        if skew >= 0 {
            now + Duration::from_millis(skew as u64)
        } else {
            now - Duration::from_millis(skew.unsigned_abs())
        }
    }

    /// Keeps DynamoDB's clock when an answer's `Date` is far from ours.
    fn saw_date(&self, date: &str) {
        let Ok(theirs) = DateTime::from_str(date, Format::HttpDate) else {
            return;
        };
        let Ok(theirs) = SystemTime::try_from(theirs) else {
            return;
        };
        let ours = self.time.now();
        let skew_ms = match theirs.duration_since(ours) {
            Ok(ahead) => ahead.as_millis() as i64,
            Err(behind) => -(behind.duration().as_millis() as i64),
        };
        let far = skew_ms.unsigned_abs() > SKEW_TOLERATED.as_millis() as u64;
        self.skew_ms
            .store(if far { skew_ms } else { 0 }, Ordering::Relaxed);
    }
}

/// Credentials fetched once and kept until a minute before they expire, for the SDK's
/// DynamoDB client and [`Direct`] alike: one session for both (an assumed role is assumed
/// once, not once by each).
#[derive(Debug)]
pub struct Cached {
    inner: SharedCredentialsProvider,
    time: SharedTimeSource,
    kept: tokio::sync::Mutex<Option<Credentials>>,
}

impl Cached {
    /// `inner`'s credentials, kept; `time` says when they expire.
    pub fn new(inner: SharedCredentialsProvider, time: SharedTimeSource) -> Self {
        Self {
            inner,
            time,
            kept: tokio::sync::Mutex::new(None),
        }
    }

    /// `sdk`'s credentials provider, kept, as a provider to share.
    pub fn for_sdk(sdk: &aws_types::SdkConfig) -> crate::Result<SharedCredentialsProvider> {
        let inner = sdk
            .credentials_provider()
            .ok_or_else(|| crate::Error::Config("no AWS credentials provider".into()))?;
        let time = sdk.time_source().unwrap_or_default();
        Ok(SharedCredentialsProvider::new(Self::new(inner, time)))
    }

    async fn get(&self) -> aws_credential_types::provider::Result {
        let mut kept = self.kept.lock().await;
        if let Some(c) = kept.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|e| e > self.time.now() + REFRESH_BEFORE);
            if fresh {
                return Ok(c.clone());
            }
        }
        let fetched = self.inner.provide_credentials().await?;
        *kept = Some(fetched.clone());
        Ok(fetched)
    }
}

impl ProvideCredentials for Cached {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(self.get())
    }
}

/// An error answer's code and message, as the SDK's awsJson1.0 reader finds them: the
/// code from `x-amzn-ErrorType` or the body's `__type` (`code`), without its namespace
/// (`com.amazonaws.dynamodb.v20120810#`) or its `:` suffix; the message from `message`
/// or `Message`.
pub(crate) fn error_metadata(header: Option<&str>, body: &[u8]) -> ErrorMetadata {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |k: &str| json.get(k).and_then(|v| v.as_str());
    let code = header
        .or_else(|| text("__type"))
        .or_else(|| text("code"))
        .map(|c| {
            let c = c.split(':').next().unwrap_or(c);
            c.rsplit('#').next().unwrap_or(c).to_string()
        });
    let mut meta = ErrorMetadata::builder();
    if let Some(c) = code {
        meta = meta.code(c);
    }
    if let Some(m) = text("message").or_else(|| text("Message")) {
        meta = meta.message(m);
    }
    meta.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future::ProvideCredentials as Provided;
    use std::sync::atomic::AtomicU32;
    use std::time::UNIX_EPOCH;

    const AT: Duration = Duration::from_secs(1_765_000_000);

    #[derive(Debug)]
    struct Fixed;

    impl aws_types::sdk_config::TimeSource for Fixed {
        fn now(&self) -> SystemTime {
            UNIX_EPOCH + AT
        }
    }

    /// Credentials expiring `lasting` after [`AT`], counting how often they are asked for.
    #[derive(Debug)]
    struct Counting {
        asked: Arc<AtomicU32>,
        lasting: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> Provided<'a>
        where
            Self: 'a,
        {
            self.asked.fetch_add(1, Ordering::SeqCst);
            let expiry = UNIX_EPOCH + AT + self.lasting;
            Provided::ready(Ok(Credentials::new("a", "b", None, Some(expiry), "t")))
        }
    }

    fn direct(lasting: Duration) -> (Direct, Arc<AtomicU32>) {
        let asked = Arc::new(AtomicU32::new(0));
        let http = aws_smithy_http_client::default_connector(&Default::default(), None).unwrap();
        let time = SharedTimeSource::new(Fixed);
        let counting = SharedCredentialsProvider::new(Counting {
            asked: asked.clone(),
            lasting,
        });
        let credentials = SharedCredentialsProvider::new(Cached::new(counting, time.clone()));
        let d = Direct::new(http, credentials, "r".into(), AT, time, Arc::default());
        (d, asked)
    }

    #[tokio::test]
    async fn credentials_are_kept_until_a_minute_before_they_expire() {
        let (d, asked) = direct(Duration::from_secs(3600));
        for _ in 0..3 {
            d.credentials.provide_credentials().await.unwrap();
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        let (d, asked) = direct(Duration::from_secs(30));
        for _ in 0..3 {
            d.credentials.provide_credentials().await.unwrap();
        }
        assert_eq!(asked.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_clock_far_from_dynamodbs_is_corrected_and_a_near_one_is_not() {
        let (d, _) = direct(Duration::ZERO);
        let date = |secs: u64| {
            let t = DateTime::from(UNIX_EPOCH + AT + Duration::from_secs(secs));
            t.fmt(Format::HttpDate).unwrap()
        };
        d.saw_date(&date(600));
        assert_eq!(d.now(), UNIX_EPOCH + AT + Duration::from_secs(600));
        d.saw_date(&date(20));
        assert_eq!(d.now(), UNIX_EPOCH + AT);
        d.saw_date(
            &DateTime::from(UNIX_EPOCH + AT - Duration::from_secs(400))
                .fmt(Format::HttpDate)
                .unwrap(),
        );
        assert_eq!(d.now(), UNIX_EPOCH + AT - Duration::from_secs(400));
        d.saw_date("not a date");
        assert_eq!(d.now(), UNIX_EPOCH + AT - Duration::from_secs(400));
    }

    #[test]
    fn error_codes_are_read_as_the_sdk_reads_them() {
        let m = error_metadata(
            None,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow"}"#,
        );
        assert_eq!(m.code(), Some("ProvisionedThroughputExceededException"));
        assert_eq!(m.message(), Some("slow"));
        let m = error_metadata(
            Some("ThrottlingException:http://internal"),
            br#"{"Message":"x"}"#,
        );
        assert_eq!(m.code(), Some("ThrottlingException"));
        assert_eq!(m.message(), Some("x"));
        let m = error_metadata(None, b"<html>bad gateway</html>");
        assert_eq!((m.code(), m.message()), (None, None));
    }
}
