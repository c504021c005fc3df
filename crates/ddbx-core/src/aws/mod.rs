//! AWS access: one SDK configuration and one client per service for a whole run (S3's
//! are the run's [`Storage`]), plus the single place that decides which AWS errors are
//! worth retrying.

#[cfg(test)]
pub(crate) mod canned;
pub mod contact;
pub mod credentials;
pub(crate) mod direct;
pub(crate) mod dynamodb;
mod error;
pub mod profile;
pub(crate) mod settings;

pub use error::{classify, ErrorClass};

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::clock::Clock;
use crate::rate::RateLimiter;
use crate::retry::{Backoff, RetryPolicy};
use crate::store::{S3Settings, Storage};
use crate::{Error, Result};

/// Where and as whom to talk to AWS. Every field is optional: the standard chain
/// (environment, profile files, SSO, instance roles) fills in what is not given.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// A named profile from the shared config files.
    pub profile: Option<String>,
    /// The region of the tables.
    pub region: Option<String>,
    /// A DynamoDB-compatible endpoint (a local emulator, ScyllaDB Alternator).
    pub endpoint_url: Option<String>,
    /// How long one attempt of one request may take before it is abandoned and retried
    /// (default: 60 s).
    pub request_timeout: Option<Duration>,
    /// An EMR-compatible endpoint (a test service).
    pub emr_endpoint_url: Option<String>,
    /// An Application Auto Scaling-compatible endpoint (a test service).
    pub autoscaling_endpoint_url: Option<String>,
    /// A role the run assumes (DynamoDB, EMR, auto scaling; S3 too unless `s3` says).
    pub role: Option<credentials::Role>,
    /// S3's own credentials (a bucket in another account).
    pub s3: credentials::S3Identity,
    /// Find the caller's credentials before any call (a command that reaches AWS), and
    /// say at once when there are none; a command on local folders only needs none.
    pub find_credentials: bool,
}

/// The AWS clients of one run.
#[derive(Debug, Clone)]
pub struct Aws {
    /// The loaded SDK configuration (credentials, region).
    pub sdk: SdkConfig,
    /// The DynamoDB client, with the SDK's own retries off: ours tell the rate limiter.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// BatchWriteItem without the SDK's orchestrator, to the endpoint `dynamodb` uses.
    pub direct: Arc<direct::Direct>,
    /// The EMR client (used by `--engine emr`), with the SDK's own retries off.
    pub emr: aws_sdk_emr::Client,
    /// The Application Auto Scaling client (capacity spikes on tables that autoscale).
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    /// Where runs are stored (S3 through the same credentials, and local folders).
    pub storage: Storage,
    /// The region the run works in.
    pub region: String,
    /// The settings it was built from.
    pub settings: AwsSettings,
    /// The retry policy for every call.
    pub retry: RetryPolicy,
    /// The clock used for backoff.
    pub clock: Arc<dyn Clock>,
    /// What the run knows of its DynamoDB endpoint: reached yet, and an error that
    /// stops the run.
    pub contact: Arc<contact::Contact>,
}

/// The region the clients of a command on local folders only are built with when none is
/// set (they make no call).
const LOCAL_ONLY_REGION: &str = "us-east-1";

/// How long a connection to DynamoDB may take to open.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Aws {
    /// Load the configuration once for the run and build the clients (S3's as `s3` says).
    ///
    /// Before any call: a profile named that the config files do not hold is refused, the
    /// region and the caller's credentials are found (within
    /// [`credentials::FIND_WITHIN`]), and what is missing is said in one line.
    pub async fn load(
        settings: AwsSettings,
        s3: S3Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if let Some(p) = &settings.profile {
            profile::check(p, "--profile (or AWS_PROFILE)").await?;
        }
        if let Some(p) = &settings.s3.profile {
            profile::check(p, "--s3-profile").await?;
        }
        let profile = settings.profile.as_deref();
        let region =
            match &settings.region {
                Some(r) => Region::new(r.clone()),
                None => match credentials::default_region(profile).await {
                    Some(r) => r,
                    // A command on local folders only makes no AWS call: its clients need a
                    // region to be built, not one the caller must name.
                    None if !settings.find_credentials => Region::from_static(LOCAL_ONLY_REGION),
                    None => return Err(Error::Config(
                        "no AWS region: pass --region, set AWS_REGION, or set one in the profile"
                            .into(),
                    )),
                },
            };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials::default_chain(profile, &region).await);
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        let base = loader.load().await;
        if settings.find_credentials {
            credentials::find(&base, profile).await?;
        }
        let sdk = match &settings.role {
            Some(role) => credentials::assume(&base, role).await,
            None => base.clone(),
        };
        let s3_credentials = credentials::for_s3(&base, &sdk, &settings.s3).await;
        let region = region.to_string();
        let contact = Arc::new(contact::Contact::default());
        let attempt_timeout = settings.request_timeout.unwrap_or(Duration::from_secs(60));
        // One session for the client and for `direct`.
        let credentials = direct::Cached::for_sdk(&sdk)?;
        let direct = direct::Direct::for_sdk(
            &sdk,
            credentials.clone(),
            region.to_string(),
            attempt_timeout,
            contact.clone(),
        )?;
        let mut ddb = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .credentials_provider(credentials)
            .retry_config(RetryConfig::disabled())
            .interceptor(contact.watch())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(attempt_timeout)
                    .build(),
            );
        if let Some(url) = &settings.endpoint_url {
            ddb = ddb.endpoint_url(url);
        }
        let mut emr =
            aws_sdk_emr::config::Builder::from(&sdk).retry_config(RetryConfig::disabled());
        if let Some(url) = &settings.emr_endpoint_url {
            emr = emr.endpoint_url(url);
        }
        let mut scaling = aws_sdk_applicationautoscaling::config::Builder::from(&sdk)
            .retry_config(RetryConfig::disabled());
        if let Some(url) = &settings.autoscaling_endpoint_url {
            scaling = scaling.endpoint_url(url);
        }
        Ok(Self {
            storage: Storage::new(s3, &region, s3_credentials),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(ddb.build()),
            direct: Arc::new(direct),
            autoscaling: aws_sdk_applicationautoscaling::Client::from_conf(scaling.build()),
            emr: aws_sdk_emr::Client::from_conf(emr.build()),
            sdk,
            region,
            settings,
            retry: RetryPolicy::default(),
            clock,
            contact,
        })
    }

    /// The error that stops the run (an endpoint never reached, credentials refused or
    /// expired), once a call met one: every table would fail with it.
    pub fn stopped(&self) -> Option<Error> {
        self.contact.stopped().map(Error::Config)
    }

    /// Run `op` once, for a call that must not be repeated blindly (it is not idempotent,
    /// such as RunJobFlow): the caller decides what a failure means and how to retry.
    pub async fn call_once<T, E, Fut>(&self, context: impl Fn() -> String, op: Fut) -> Result<T>
    where
        Fut: std::future::Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(e) = self.stopped() {
            return Err(e);
        }
        op.await
            .map_err(|err| error::final_error(context(), &err, classify(&err), 1, &self.contact))
    }

    /// Run `op` until it succeeds, fails permanently, or the retry policy gives up.
    ///
    /// Throttles are reported to `limiter` (which slows down); `context` names what was
    /// being done for the error message.
    pub async fn call<T, E, F, Fut>(
        &self,
        context: impl Fn() -> String,
        limiter: Option<&RateLimiter>,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(e) = self.stopped() {
            return Err(e);
        }
        let started = self.clock.now();
        let mut backoff = Backoff::new(self.retry, started);
        loop {
            // Until the endpoint first answers, an attempt may take what is left of
            // FIRST_CONTACT, no more (in real time: it bounds a wait on the network).
            let attempt = if self.contact.answered() {
                Some(op().await)
            } else {
                let left = contact::FIRST_CONTACT.saturating_sub(self.clock.now() - started);
                tokio::time::timeout(left, op()).await.ok()
            };
            let Some(result) = attempt else {
                let line = format!(
                    "cannot reach {}: no answer within {} s",
                    self.contact.host(),
                    contact::FIRST_CONTACT.as_secs()
                );
                self.contact.stop(&line);
                return Err(Error::Config(line));
            };
            let err = match result {
                Ok(v) => {
                    if let Some(l) = limiter {
                        l.succeeded();
                    }
                    return Ok(v);
                }
                Err(err) => err,
            };
            let class = classify(&err);
            if class == ErrorClass::Throttled {
                if let Some(l) = limiter {
                    l.throttled();
                }
            }
            let now = self.clock.now();
            let first_contact = !self.contact.answered() && error::no_answer(&err);
            let delay = match class {
                ErrorClass::Permanent => None,
                _ => backoff.next_delay(now),
            }
            .filter(|d| !first_contact || now - started + *d < contact::FIRST_CONTACT);
            match delay {
                Some(d) => {
                    tracing::debug!(what = %context(), ?class, attempt = backoff.attempts(), delay_ms = d.as_millis() as u64, error = %error::describe(&err), "retrying");
                    self.clock.sleep(d).await;
                }
                None => {
                    return Err(error::final_error(
                        context(),
                        &err,
                        class,
                        backoff.attempts(),
                        &self.contact,
                    ))
                }
            }
        }
    }
}
