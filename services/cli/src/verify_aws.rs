//! The AWS side of `orgtrail verify`, the CLI's one home of the AWS SDK: S3 and CloudTrail
//! clients as the command reaches them; the reading itself is `orgtrail_trail_s3`'s.

use anyhow::bail;
use aws_config::{BehaviorVersion, Region};
use orgtrail_integrity::{DigestKey, PublicKeys, S3Location};
use orgtrail_trail_s3::{list_public_keys, trails_of, TrailS3};

use crate::verify_command::VerifyScope;

/// S3 and CloudTrail as the command reaches them: credentials the standard way (environment,
/// profile, web identity), path-style addressing with --endpoint-url.
pub struct VerifyAws {
    pub s3: TrailS3,
    cloudtrail: aws_sdk_cloudtrail::Client,
}

impl VerifyAws {
    pub async fn load(endpoint_url: Option<&str>, trail_region: &str) -> VerifyAws {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if let Some(endpoint_url) = endpoint_url {
            loader = loader.endpoint_url(endpoint_url);
        }
        let base = loader.load().await;
        let mut s3 =
            aws_sdk_s3::config::Builder::from(&base).force_path_style(endpoint_url.is_some());
        if base.region().is_none() {
            s3 = s3.region(Region::new(trail_region.to_string()));
        }
        // Public keys are per region: the trail region's.
        let cloudtrail = aws_sdk_cloudtrail::config::Builder::from(&base)
            .region(Region::new(trail_region.to_string()))
            .build();
        VerifyAws {
            s3: TrailS3::new(aws_sdk_s3::Client::from_conf(s3.build())),
            cloudtrail: aws_sdk_cloudtrail::Client::from_conf(cloudtrail),
        }
    }

    /// CloudTrail's public keys valid over the window.
    pub async fn list_public_keys(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<PublicKeys> {
        list_public_keys(&self.cloudtrail, from, until)
            .await
            .map_err(|error| error.context("give --public-keys FILE to verify offline"))
    }

    /// The digest keys of the scope ending in the window, oldest first; one trail's.
    pub async fn list_digest_keys(&self, scope: &VerifyScope) -> anyhow::Result<Vec<DigestKey>> {
        let mut digests = self
            .s3
            .list_digest_keys(
                &scope.bucket,
                &scope.layout,
                scope.start,
                scope.digests_until(),
            )
            .await?;
        match &scope.trail {
            Some(trail) => digests.retain(|key| &key.trail_name == trail),
            None if trails_of(&digests).len() > 1 => bail!(
                "digests of several trails are delivered here ({}): name one with --trail",
                trails_of(&digests).join(", ")
            ),
            None => {}
        }
        Ok(digests)
    }

    /// The log files present, delivered from `from` to `until`.
    pub async fn list_log_files(
        &self,
        scope: &VerifyScope,
        from: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<Vec<S3Location>> {
        Ok(self
            .s3
            .list_log_files(&scope.bucket, &scope.layout, from, until)
            .await?
            .into_iter()
            .map(|listed| S3Location::new(scope.bucket.clone(), listed.key))
            .collect())
    }
}
