//! orgtrail's digests of its archive, in CloudTrail's digest format, so the verifier that proves
//! CloudTrail's trails proves the archive too (`orgtrail verify --archive`). One replica at a
//! time (a session lock) writes one digest every `archive.digest_interval_seconds` of
//! wall-clock time: it lists every archive object recorded since the digest before (each
//! object in exactly one digest) with its SHA-256, links to the digest before (its SHA-256 and
//! signature), is signed with RSA-SHA256 by a local key or an asymmetric KMS key, and is put
//! gzip'd beside the archive with its signature in `x-amz-meta-signature`. Empty intervals get
//! a digest too, as CloudTrail's hours do, so a deleted digest shows as a gap. The public keys
//! are published beside the archive (`public-keys.json`, in `list-public-keys`' shape).
//!
//! A crash between a digest's upload and its record leaves a digest nothing links to; the
//! next round writes it again under the same key.

use std::io::Write;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use chrono::{DateTime, TimeDelta, Utc};
use md5::{Digest as _, Md5};
use orgtrail_integrity::{
    signing_string, unsigned_digest, ArchiveLayout, DigestDraft, DigestLogFile, DigestSigner,
    PreviousDigest, PublicKey, PublicKeys, S3Location, Sha256Hash, SignedDigest,
};
use x509_parser::prelude::FromDer;

use crate::archive::ArchiveError;
use crate::config::ArchiveSettings;
use crate::store::{PgStore, StoredArchiveDigest, ARCHIVE_DIGEST_LOCK};

/// Digests written per round at most (an aggregator down for days catches up over rounds).
const DIGESTS_PER_ROUND: usize = 48;

/// What signs the archive's digests.
pub enum ArchiveSigner {
    Local(DigestSigner),
    Kms {
        client: aws_sdk_kms::Client,
        key_id: String,
        public_key: PublicKey,
    },
}

impl ArchiveSigner {
    /// The configured signer: the key file read, or the KMS key's public key fetched.
    pub async fn from_settings(settings: &ArchiveSettings) -> Result<ArchiveSigner, String> {
        if let Some(path) = &settings.signing_key_file {
            let pem = std::fs::read_to_string(path)
                .map_err(|error| format!("archive.signing_key_file {}: {error}", path.display()))?;
            let signer = DigestSigner::from_pem(&pem)
                .map_err(|error| format!("archive.signing_key_file {}: {error}", path.display()))?;
            return Ok(ArchiveSigner::Local(signer));
        }
        let key_id = settings
            .signing_kms_key_id
            .clone()
            .ok_or("archive: no signing key")?;
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if let Some(region) = settings
            .signing_kms_region
            .as_ref()
            .or(settings.region.as_ref())
        {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.signing_kms_endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let client = aws_sdk_kms::Client::new(&loader.load().await);
        let answer = client
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|error| {
                format!(
                    "kms:GetPublicKey of the archive's signing key {key_id}: {}",
                    DisplayErrorContext(&error)
                )
            })?;
        let spki = answer
            .public_key()
            .ok_or_else(|| format!("kms:GetPublicKey of {key_id} answered no key"))?;
        let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki.as_ref())
            .map_err(|error| format!("the public key of {key_id} is not DER: {error}"))?;
        // The RSAPublicKey inside, as CloudTrail's public keys are given.
        let der = info.subject_public_key.data.to_vec();
        let public_key = PublicKey {
            fingerprint: hex(&Md5::digest(&der)),
            der,
            validity_start: None,
            validity_end: None,
        };
        Ok(ArchiveSigner::Kms {
            client,
            key_id,
            public_key,
        })
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            ArchiveSigner::Local(signer) => signer.public_key(None, None),
            ArchiveSigner::Kms { public_key, .. } => public_key.clone(),
        }
    }

    async fn sign(&self, draft: &DigestDraft) -> Result<SignedDigest, String> {
        match self {
            ArchiveSigner::Local(signer) => {
                signer.sign_digest(draft).map_err(|error| error.to_string())
            }
            ArchiveSigner::Kms {
                client,
                key_id,
                public_key,
            } => {
                let (content, digest) = unsigned_digest(draft, &public_key.fingerprint)
                    .map_err(|error| error.to_string())?;
                let answer = client
                    .sign()
                    .key_id(key_id)
                    .message(aws_sdk_kms::primitives::Blob::new(
                        signing_string(&digest).into_bytes(),
                    ))
                    .message_type(aws_sdk_kms::types::MessageType::Raw)
                    .signing_algorithm(
                        aws_sdk_kms::types::SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
                    )
                    .send()
                    .await
                    .map_err(|error| {
                        format!("kms:Sign with {key_id}: {}", DisplayErrorContext(&error))
                    })?;
                let signature = answer
                    .signature()
                    .ok_or_else(|| format!("kms:Sign with {key_id} answered no signature"))?;
                Ok(SignedDigest {
                    content,
                    signature: hex(signature.as_ref()),
                    digest,
                })
            }
        }
    }
}

/// The digest writer of the archive.
pub struct ArchiveDigests {
    pub store: PgStore,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub settings: ArchiveSettings,
    pub signer: ArchiveSigner,
}

impl ArchiveDigests {
    fn layout(&self) -> ArchiveLayout {
        ArchiveLayout::new(&self.settings.prefix, self.interval())
    }

    fn interval(&self) -> TimeDelta {
        TimeDelta::seconds(i64::try_from(self.settings.digest_interval_seconds).unwrap_or(3600))
    }

    /// Adds this signer's public key to the published file, if it is not there.
    pub async fn publish_public_key(&self) -> Result<(), ArchiveError> {
        let key = self.layout().public_keys_key();
        let mut keys = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(output) => {
                let bytes = output
                    .body
                    .collect()
                    .await
                    .map_err(|error| self.upload_error(&key, error.to_string()))?
                    .into_bytes();
                PublicKeys::from_list_public_keys_json(&bytes)
                    .map_err(|error| self.upload_error(&key, error.to_string()))?
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                PublicKeys::new()
            }
            Err(error) => {
                return Err(self.upload_error(&key, DisplayErrorContext(&error).to_string()))
            }
        };
        let public_key = self.signer.public_key();
        if keys.contains(&public_key.fingerprint) {
            return Ok(());
        }
        keys.insert(public_key);
        self.put(
            &key,
            keys.to_list_public_keys_json().into_bytes(),
            "application/json",
            None,
        )
        .await
    }

    /// Writes every digest due (at most [`DIGESTS_PER_ROUND`]), if no other replica is.
    pub async fn round(&self) -> Result<usize, ArchiveError> {
        let Some(lock) = self.store.try_session_lock(ARCHIVE_DIGEST_LOCK).await? else {
            return Ok(0);
        };
        let written = self.round_locked().await;
        lock.release().await;
        written
    }

    async fn round_locked(&self) -> Result<usize, ArchiveError> {
        let interval = self.interval();
        let now = self.store.database_now().await?;
        let mut last = self.store.last_archive_digest().await?;
        let mut next_end = match &last {
            Some(last) => last.end_time + interval,
            None => match self.store.first_undigested_write().await? {
                // The first digest ends at the first interval boundary after the first object.
                Some(first) => {
                    let seconds = interval.num_seconds().max(1);
                    DateTime::from_timestamp((first.timestamp() / seconds + 1) * seconds, 0)
                        .unwrap_or(first)
                }
                None => return Ok(0),
            },
        };
        let mut written = 0;
        while next_end <= now && written < DIGESTS_PER_ROUND {
            let start = last
                .as_ref()
                .map_or(next_end - interval, |last| last.end_time);
            let digest = self.write_digest(start, next_end, last.as_ref()).await?;
            last = Some(digest);
            next_end += interval;
            written += 1;
        }
        Ok(written)
    }

    async fn write_digest(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        previous: Option<&StoredArchiveDigest>,
    ) -> Result<StoredArchiveDigest, ArchiveError> {
        let layout = self.layout();
        let key = layout.digest_key(end);
        let objects = self.store.undigested_objects(end).await?;
        let mut log_files = Vec::with_capacity(objects.len());
        for object in &objects {
            let hash: [u8; 32] =
                object
                    .sha256
                    .as_slice()
                    .try_into()
                    .map_err(|_| ArchiveError::Encode {
                        key: object.object_key.clone(),
                        detail: "its recorded SHA-256 is not 32 bytes".into(),
                    })?;
            log_files.push(DigestLogFile {
                location: S3Location::new(self.bucket.clone(), object.object_key.clone()),
                hash_value: Sha256Hash(hash),
                oldest_event_time: Some(object.hour),
                newest_event_time: Some(object.hour + TimeDelta::hours(1) - TimeDelta::seconds(1)),
            });
        }
        let previous = match previous {
            Some(previous) => Some(PreviousDigest {
                location: S3Location::new(self.bucket.clone(), previous.digest_key.clone()),
                hash_value: Sha256Hash(previous.content_sha256.as_slice().try_into().map_err(
                    |_| ArchiveError::Encode {
                        key: previous.digest_key.clone(),
                        detail: "its recorded SHA-256 is not 32 bytes".into(),
                    },
                )?),
                signature: previous.signature.clone(),
            }),
            None => None,
        };
        let draft = DigestDraft {
            aws_account_id: self.settings.account_id.clone().unwrap_or_default(),
            digest_start_time: start,
            digest_end_time: end,
            location: S3Location::new(self.bucket.clone(), key.clone()),
            previous,
            log_files,
        };
        let signed = self
            .signer
            .sign(&draft)
            .await
            .map_err(|detail| ArchiveError::Encode {
                key: key.clone(),
                detail,
            })?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&signed.content)
            .and_then(|()| gzip.try_finish())
            .map_err(|error| ArchiveError::Encode {
                key: key.clone(),
                detail: error.to_string(),
            })?;
        let compressed = gzip.finish().unwrap_or_default();
        self.put(
            &key,
            compressed,
            "application/json",
            Some(&signed.signature),
        )
        .await?;
        let digest = StoredArchiveDigest {
            digest_key: key,
            start_time: start,
            end_time: end,
            content_sha256: signed.digest.content_hash.0.to_vec(),
            signature: signed.signature,
        };
        let keys: Vec<String> = objects
            .into_iter()
            .map(|object| object.object_key)
            .collect();
        self.store.record_archive_digest(&digest, &keys).await?;
        tracing::info!(digest = %digest.digest_key, objects = keys.len(), "archive digest written");
        Ok(digest)
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        signature: Option<&str>,
    ) -> Result<(), ArchiveError> {
        let mut request = self
            .s3
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
        request = match self.settings.server_side_encryption.as_str() {
            "AES256" => request.server_side_encryption(ServerSideEncryption::Aes256),
            _ => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(self.settings.kms_key_id.clone()),
        };
        request
            .send()
            .await
            .map_err(|error| self.upload_error(key, DisplayErrorContext(&error).to_string()))?;
        Ok(())
    }

    fn upload_error(&self, key: &str, detail: String) -> ArchiveError {
        ArchiveError::Upload {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            detail,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
