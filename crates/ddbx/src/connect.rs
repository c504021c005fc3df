//! The run's one AWS configuration (and S3's settings), from the global flags.

use std::time::Duration;

use ddbx_core::aws::credentials::{Role, S3Identity};
use ddbx_core::aws::{Aws, AwsSettings};
use ddbx_core::store::{Encryption, S3Settings};

use crate::args::Global;

/// Load the run's one AWS configuration from the global flags, for a command that calls
/// AWS: the caller's credentials are found first.
pub async fn load_aws(g: &Global) -> Result<Aws, ddbx_core::Error> {
    load(g, true).await
}

/// The same for a command that works on `location` only (list, prune, check): a local
/// folder needs no credentials.
pub async fn load_aws_for(g: &Global, location: &str) -> Result<Aws, ddbx_core::Error> {
    load(g, location.starts_with("s3://")).await
}

/// First contact with each `s3://` location a command is about to use (the others pass):
/// a missing bucket, a bucket in another region, refused credentials or an endpoint that
/// cannot be reached are said in one line before anything else is done.
pub async fn reach(aws: &Aws, locations: &[Option<&str>]) -> Result<(), ddbx_core::Error> {
    for location in locations.iter().flatten() {
        if location.starts_with("s3://") {
            aws.storage.reach(location).await?;
        }
    }
    Ok(())
}

async fn load(g: &Global, find_credentials: bool) -> Result<Aws, ddbx_core::Error> {
    let s3_encryption = match &g.sse {
        Some(sse) => Some(Encryption::parse(sse, g.sse_kms_key_id.clone())?),
        None if g.sse_kms_key_id.is_some() => {
            return Err(ddbx_core::Error::Usage(
                "--sse-kms-key-id needs --sse aws:kms".into(),
            ))
        }
        None => None,
    };
    let timeout = g.request_timeout.map(Duration::from_secs_f64);
    Aws::load(
        AwsSettings {
            profile: g.profile.clone(),
            region: g.region.clone(),
            endpoint_url: g.endpoint_url.clone(),
            request_timeout: timeout,
            emr_endpoint_url: g.emr_endpoint_url.clone(),
            autoscaling_endpoint_url: g.autoscaling_endpoint_url.clone(),
            role: g.role_arn.as_ref().map(|arn| Role {
                arn: arn.clone(),
                external_id: g.external_id.clone(),
            }),
            s3: S3Identity {
                profile: g.s3_profile.clone(),
                role: g.s3_role_arn.as_ref().map(|arn| Role {
                    arn: arn.clone(),
                    external_id: g.s3_external_id.clone(),
                }),
            },
            find_credentials,
        },
        S3Settings {
            endpoint_url: g.s3_endpoint_url.clone(),
            region: g.s3_region.clone(),
            encryption: s3_encryption,
            expected_bucket_owner: g.expected_bucket_owner.clone(),
            request_timeout: timeout,
            storage_class: g.storage_class.map(|c| c.name().to_string()),
        },
        ddbx_core::clock::system(),
    )
    .await
}
