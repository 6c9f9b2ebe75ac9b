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

use chrono::{DateTime, TimeDelta, Utc};
use md5::{Digest as _, Md5};
use orgtrail_integrity::{
    signing_string, unsigned_digest, ArchiveLayout, DigestDraft, DigestLogFile, DigestSigner,
    PreviousDigest, PublicKey, PublicKeys, S3Location, Sha256Hash, SignedDigest,
};

use super::s3::ArchiveBucket;
use super::ArchiveError;
use crate::config::ArchiveSettings;
use crate::kms::KmsSigner;
use crate::store::{PgStore, StoredArchiveDigest, ARCHIVE_DIGEST_LOCK};

/// Digests written per round at most (an aggregator down for days catches up over rounds).
const DIGESTS_PER_ROUND: usize = 48;

/// What signs the archive's digests.
pub enum ArchiveSigner {
    Local(DigestSigner),
    Kms(KmsSigner),
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
            .as_deref()
            .ok_or("archive: no signing key")?;
        let region = settings
            .signing_kms_region
            .as_deref()
            .or(settings.region.as_deref());
        let signer =
            KmsSigner::connect(key_id, region, settings.signing_kms_endpoint.as_deref()).await?;
        Ok(ArchiveSigner::Kms(signer))
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            ArchiveSigner::Local(signer) => signer.public_key(None, None),
            ArchiveSigner::Kms(signer) => {
                let der = signer.public_key_der().to_vec();
                PublicKey {
                    fingerprint: hex(&Md5::digest(&der)),
                    der,
                    validity_start: None,
                    validity_end: None,
                }
            }
        }
    }

    async fn sign(&self, draft: &DigestDraft) -> Result<SignedDigest, String> {
        match self {
            ArchiveSigner::Local(signer) => {
                signer.sign_digest(draft).map_err(|error| error.to_string())
            }
            ArchiveSigner::Kms(signer) => {
                let fingerprint = self.public_key().fingerprint;
                let (content, digest) =
                    unsigned_digest(draft, &fingerprint).map_err(|error| error.to_string())?;
                let signature = signer.sign(signing_string(&digest).into_bytes()).await?;
                Ok(SignedDigest {
                    content,
                    signature: hex(&signature),
                    digest,
                })
            }
        }
    }
}

/// The digest writer of the archive.
pub struct ArchiveDigests {
    pub store: PgStore,
    pub bucket: ArchiveBucket,
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
        let mut keys = match self.bucket.get(&key).await? {
            Some(bytes) => PublicKeys::from_list_public_keys_json(&bytes).map_err(|error| {
                ArchiveError::Encode {
                    key: key.clone(),
                    detail: error.to_string(),
                }
            })?,
            None => PublicKeys::new(),
        };
        let public_key = self.signer.public_key();
        if keys.contains(&public_key.fingerprint) {
            return Ok(());
        }
        keys.insert(public_key);
        self.bucket
            .put(
                &key,
                keys.to_list_public_keys_json().into_bytes(),
                "application/json",
                None,
            )
            .await?;
        Ok(())
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
                location: S3Location::new(self.bucket.name(), object.object_key.clone()),
                hash_value: Sha256Hash(hash),
                oldest_event_time: Some(object.hour),
                newest_event_time: Some(object.hour + TimeDelta::hours(1) - TimeDelta::seconds(1)),
            });
        }
        let previous = match previous {
            Some(previous) => Some(PreviousDigest {
                location: S3Location::new(self.bucket.name(), previous.digest_key.clone()),
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
            location: S3Location::new(self.bucket.name(), key.clone()),
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
        let compressed = gzip
            .write_all(&signed.content)
            .and_then(|()| gzip.finish())
            .map_err(|error| ArchiveError::Encode {
                key: key.clone(),
                detail: error.to_string(),
            })?;
        self.bucket
            .put(
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
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
