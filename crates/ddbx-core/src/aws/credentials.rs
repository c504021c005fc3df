//! As whom a run talks to AWS: the standard chain (or `--profile`), a role assumed for the
//! run (`--role-arn`), and S3's own credentials when the bucket lives in another account
//! (`--s3-profile`, `--s3-role-arn`). Every role goes through the SDK's own STS provider,
//! whose credentials the clients' identity cache (and S3's bridge, see `store`) renew
//! before they expire, so a run may outlast a role session. STS is reached where the SDK
//! says (`AWS_ENDPOINT_URL_STS` for a test service).
//!
//! The caller's own credentials are found before any call, within [`FIND_WITHIN`]: the
//! instance metadata service, last in the chain, is asked with short timeouts (a machine
//! that is no EC2 instance never answers it), and a run without credentials is told so in
//! one line naming where they were looked for.

use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::{Error, Result};

/// The most time finding the caller's credentials may take before the run is told there
/// are none.
pub const FIND_WITHIN: Duration = Duration::from_millis(4500);

/// An instance metadata client that gives up quickly where there is no instance: one
/// second to connect, one to answer, two attempts (the SDK's default takes four).
fn imds() -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .read_timeout(Duration::from_secs(1))
        .max_attempts(2)
        .build()
}

/// The SDK's region chain (environment, profile, instance metadata), the last asked with
/// [`imds`]'s short timeouts.
pub async fn default_region(profile: Option<&str>) -> Option<Region> {
    let mut from_profile = ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        from_profile = from_profile.profile_name(p);
    }
    RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(from_profile.build())
        .or_else(ImdsRegionProvider::builder().imds_client(imds()).build())
        .region()
        .await
}

/// The SDK's credential chain (environment, profile with SSO and roles, web identity,
/// container, instance metadata), the last asked with [`imds`]'s short timeouts.
pub async fn default_chain(profile: Option<&str>, region: &Region) -> DefaultCredentialsChain {
    let mut chain = DefaultCredentialsChain::builder()
        .imds_client(imds())
        .region(region.clone());
    if let Some(p) = profile {
        chain = chain.profile_name(p);
    }
    chain.build().await
}

/// Find `conf`'s credentials now, within [`FIND_WITHIN`], or say in one line where they
/// were looked for and how to give them.
pub async fn find(conf: &SdkConfig, profile: Option<&str>) -> Result<()> {
    let Some(provider) = conf.credentials_provider() else {
        return Err(Error::Config(
            "no AWS credential provider is configured".into(),
        ));
    };
    let looked = || {
        let files = super::profile::Files::locate();
        let profile = profile.unwrap_or("default");
        format!(
            "looked in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), profile {profile:?} of {}, a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), a container's endpoint (AWS_CONTAINER_CREDENTIALS_*) and the instance metadata service; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile NAME (`aws configure`, or `aws sso login` for SSO)",
            files.said()
        )
    };
    match tokio::time::timeout(FIND_WITHIN, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(CredentialsError::CredentialsNotLoaded(_))) => {
            Err(Error::Config(format!("no AWS credentials: {}", looked())))
        }
        Ok(Err(e)) => Err(Error::Config(format!(
            "no AWS credentials ({}): {}",
            crate::error::chain(&e),
            looked()
        ))),
        Err(_) => Err(Error::Config(format!(
            "no AWS credentials within {:.1} s (the instance metadata service, last in the chain, did not answer): {}",
            FIND_WITHIN.as_secs_f64(),
            looked()
        ))),
    }
}

/// A role to assume.
#[derive(Debug, Clone, Default)]
pub struct Role {
    /// Its ARN.
    pub arn: String,
    /// The external id its trust policy asks for.
    pub external_id: Option<String>,
}

/// S3's own credentials, when they are not the run's.
#[derive(Debug, Clone, Default)]
pub struct S3Identity {
    /// A profile of the shared config files whose credentials S3 uses.
    pub profile: Option<String>,
    /// A role S3 assumes (from the profile's credentials, or the run's).
    pub role: Option<Role>,
}

/// The name every session ddbx opens carries (CloudTrail shows it).
const SESSION_NAME: &str = "ddbx";

/// `conf` with credentials that assume `role` with `conf`'s.
pub async fn assume(conf: &SdkConfig, role: &Role) -> SdkConfig {
    let mut builder = AssumeRoleProvider::builder(&role.arn)
        .session_name(SESSION_NAME)
        .configure(conf);
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.build().await;
    conf.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// The credentials S3 uses: the run's (`run`'s, its role included), or those `s3` names
/// (a profile, and a role assumed from it or from the caller's own credentials, `base`'s:
/// never from the run's role, so each role's trust names the caller, not another role).
pub async fn for_s3(
    base: &SdkConfig,
    run: &SdkConfig,
    s3: &S3Identity,
) -> Option<SharedCredentialsProvider> {
    if s3.profile.is_none() && s3.role.is_none() {
        return run.credentials_provider();
    }
    let mut base = base.clone();
    if let Some(profile) = &s3.profile {
        let provider = ProfileFileCredentialsProvider::builder()
            .profile_name(profile)
            .build();
        base = base
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
    }
    if let Some(role) = &s3.role {
        base = assume(&base, role).await;
    }
    base.credentials_provider()
}
