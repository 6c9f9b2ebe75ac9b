//! The archive's bucket, the aggregator's one home of S3: a client from the archive's settings
//! (the default credential chain; path-style with an endpoint), objects put with the
//! configured server-side encryption (and a signature in their metadata, for digests), and
//! small objects read back (the published public keys).

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use crate::config::ArchiveSettings;

/// Why the bucket refused or failed a call: the key and S3's answer.
#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {detail}")]
pub struct BucketError {
    pub bucket: String,
    pub key: String,
    pub detail: String,
}

#[derive(Clone)]
pub struct ArchiveBucket {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// `AES256`, or `aws:kms` with this key (none: the bucket's default key).
    server_side_encryption: String,
    kms_key_id: Option<String>,
}

impl ArchiveBucket {
    pub async fn connect(settings: &ArchiveSettings, bucket: String) -> ArchiveBucket {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let base = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&base)
            .force_path_style(settings.endpoint_url.is_some())
            .build();
        ArchiveBucket {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket,
            server_side_encryption: settings.server_side_encryption.clone(),
            kms_key_id: settings.kms_key_id.clone(),
        }
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// Puts `bytes` at `key`, encrypted as configured; `signature` goes in
    /// `x-amz-meta-signature` (with `signature-algorithm` SHA256withRSA), as CloudTrail's
    /// digests carry theirs.
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        signature: Option<&str>,
    ) -> Result<(), BucketError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        if let Some(signature) = signature {
            request = request
                .metadata("signature", signature)
                .metadata("signature-algorithm", "SHA256withRSA");
        }
        request = match self.server_side_encryption.as_str() {
            "AES256" => request.server_side_encryption(ServerSideEncryption::Aes256),
            _ => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(self.kms_key_id.clone()),
        };
        request
            .send()
            .await
            .map_err(|error| self.error(key, DisplayErrorContext(&error).to_string()))?;
        Ok(())
    }

    /// A small object's bytes; `None` when there is no such key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BucketError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => Ok(Some(
                output
                    .body
                    .collect()
                    .await
                    .map_err(|error| self.error(key, error.to_string()))?
                    .into_bytes()
                    .to_vec(),
            )),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.error(key, DisplayErrorContext(&error).to_string())),
        }
    }

    fn error(&self, key: &str, detail: String) -> BucketError {
        BucketError {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            detail,
        }
    }
}
