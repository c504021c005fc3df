//! As whom a run talks to AWS: the standard chain (or `--profile`), a role assumed for the
//! run (`--role-arn`), and S3's own credentials when the bucket lives in another account
//! (`--s3-profile`, `--s3-role-arn`). Every role goes through the SDK's own STS provider,
//! whose credentials the clients' identity cache (and S3's bridge, see `store`) renew
//! before they expire, so a run may outlast a role session. STS is reached where the SDK
//! says (`AWS_ENDPOINT_URL_STS` for a test service).

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;

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
