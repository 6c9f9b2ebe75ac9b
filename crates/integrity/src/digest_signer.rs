//! The writing side, for orgtrail's own digests (its archive): a digest in CloudTrail's format
//! built from its log files and the link to the digest before, signed over the same signing
//! string with a local RSA private key (PKCS#8 or PKCS#1 PEM), so that the verifier that
//! proves CloudTrail's trails proves orgtrail's too.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use md5::{Digest as _, Md5};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Serialize;

use crate::digest::{
    Digest, DigestError, DigestLogFile, PreviousDigest, S3Location, HASH_ALGORITHM,
    SIGNATURE_ALGORITHM,
};
use crate::hash_value::encode_hex;
use crate::public_keys::PublicKey;
use crate::signing_string::signing_string;

/// An RSA private key that signs digests.
pub struct DigestSigner {
    key_pair: RsaKeyPair,
    random: SystemRandom,
}

/// What a new digest is made of.
#[derive(Clone, Debug)]
pub struct DigestDraft {
    pub aws_account_id: String,
    pub digest_start_time: DateTime<Utc>,
    pub digest_end_time: DateTime<Utc>,
    /// Where the digest will be written (`digestS3Bucket`/`digestS3Object`).
    pub location: S3Location,
    /// `None` for a starting digest.
    pub previous: Option<PreviousDigest>,
    pub log_files: Vec<DigestLogFile>,
}

/// A digest ready to write: its uncompressed JSON, and the hex signature that goes in the
/// object's `x-amz-meta-signature` metadata (and in the next digest's
/// `previousDigestSignature`).
#[derive(Clone, Debug)]
pub struct SignedDigest {
    pub content: Vec<u8>,
    pub signature: String,
    /// The content as the verifier reads it back.
    pub digest: Digest,
}

impl SignedDigest {
    /// The link the next digest carries to this one.
    pub fn as_previous(&self) -> PreviousDigest {
        PreviousDigest {
            location: self.digest.location.clone(),
            hash_value: self.digest.content_hash,
            signature: self.signature.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("the private key is not PEM: {reason}")]
    NotPem { reason: String },
    #[error("the private key is {label}; give an unencrypted PKCS#8 (PRIVATE KEY) or PKCS#1 (RSA PRIVATE KEY) PEM")]
    UnsupportedPem { label: String },
    #[error("the private key was refused: {reason}")]
    KeyRejected { reason: String },
    #[error("signing failed")]
    Signing,
    #[error("the digest written does not read back: {0}")]
    DigestReadBack(#[from] DigestError),
}

impl DigestSigner {
    /// From a PEM text: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1), 2048 bits or more.
    pub fn from_pem(pem: &str) -> Result<DigestSigner, SigningError> {
        let (label, der) = decode_pem(pem)?;
        let key_pair = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            _ => return Err(SigningError::UnsupportedPem { label }),
        }
        .map_err(|rejected| SigningError::KeyRejected {
            reason: rejected.to_string(),
        })?;
        Ok(DigestSigner {
            key_pair,
            random: SystemRandom::new(),
        })
    }

    /// DER of the PKCS#1 `RSAPublicKey`, as ListPublicKeys returns CloudTrail's.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key_pair.public().as_ref().to_vec()
    }

    /// Hex MD5 of the public key's DER: the fingerprint orgtrail gives its own keys (CloudTrail's
    /// are 32 hex digits too; the verifier only matches them).
    pub fn fingerprint(&self) -> String {
        encode_hex(&Md5::digest(self.public_key_der()))
    }

    /// The public key, valid over the given window, for a public-key file.
    pub fn public_key(
        &self,
        validity_start: Option<DateTime<Utc>>,
        validity_end: Option<DateTime<Utc>>,
    ) -> PublicKey {
        PublicKey {
            fingerprint: self.fingerprint(),
            der: self.public_key_der(),
            validity_start,
            validity_end,
        }
    }

    /// RSA PKCS#1 v1.5 with SHA-256 over `message`, hex.
    pub fn sign(&self, message: &[u8]) -> Result<String, SigningError> {
        let mut signature = vec![0; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(&RSA_PKCS1_SHA256, &self.random, message, &mut signature)
            .map_err(|_| SigningError::Signing)?;
        Ok(encode_hex(&signature))
    }

    /// The digest's JSON in CloudTrail's format and field order, and its signature.
    pub fn sign_digest(&self, draft: &DigestDraft) -> Result<SignedDigest, SigningError> {
        let (content, digest) = unsigned_digest(draft, &self.fingerprint())?;
        let signature = self.sign(signing_string(&digest).as_bytes())?;
        Ok(SignedDigest {
            content,
            signature,
            digest,
        })
    }
}

/// The digest's JSON naming the key `fingerprint`, and the digest as the verifier reads it:
/// for a signer elsewhere (KMS), which signs `signing_string(&digest)` and makes the
/// [`SignedDigest`] with its signature.
pub fn unsigned_digest(
    draft: &DigestDraft,
    fingerprint: &str,
) -> Result<(Vec<u8>, Digest), SigningError> {
    let content = digest_json(draft, fingerprint);
    let digest = Digest::parse(&content)?;
    Ok((content, digest))
}

/// CloudTrail's time format in digests: `2015-08-17T15:26:10Z`.
pub fn format_digest_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn digest_json(draft: &DigestDraft, fingerprint: &str) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct DigestFile<'a> {
        aws_account_id: &'a str,
        digest_start_time: String,
        digest_end_time: String,
        digest_s3_bucket: &'a str,
        digest_s3_object: &'a str,
        digest_public_key_fingerprint: &'a str,
        digest_signature_algorithm: &'a str,
        newest_event_time: Option<String>,
        oldest_event_time: Option<String>,
        previous_digest_s3_bucket: Option<&'a str>,
        previous_digest_s3_object: Option<&'a str>,
        previous_digest_hash_value: Option<String>,
        previous_digest_hash_algorithm: Option<&'a str>,
        previous_digest_signature: Option<&'a str>,
        log_files: Vec<LogFileEntry<'a>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct LogFileEntry<'a> {
        s3_bucket: &'a str,
        s3_object: &'a str,
        hash_value: String,
        hash_algorithm: &'a str,
        newest_event_time: Option<String>,
        oldest_event_time: Option<String>,
    }
    let previous = draft.previous.as_ref();
    let file = DigestFile {
        aws_account_id: &draft.aws_account_id,
        digest_start_time: format_digest_time(draft.digest_start_time),
        digest_end_time: format_digest_time(draft.digest_end_time),
        digest_s3_bucket: &draft.location.bucket,
        digest_s3_object: &draft.location.key,
        digest_public_key_fingerprint: fingerprint,
        digest_signature_algorithm: SIGNATURE_ALGORITHM,
        newest_event_time: draft
            .log_files
            .iter()
            .filter_map(|file| file.newest_event_time)
            .max()
            .map(format_digest_time),
        oldest_event_time: draft
            .log_files
            .iter()
            .filter_map(|file| file.oldest_event_time)
            .min()
            .map(format_digest_time),
        previous_digest_s3_bucket: previous.map(|previous| previous.location.bucket.as_str()),
        previous_digest_s3_object: previous.map(|previous| previous.location.key.as_str()),
        previous_digest_hash_value: previous.map(|previous| previous.hash_value.to_hex()),
        previous_digest_hash_algorithm: previous.map(|_| HASH_ALGORITHM),
        previous_digest_signature: previous.map(|previous| previous.signature.as_str()),
        log_files: draft
            .log_files
            .iter()
            .map(|file| LogFileEntry {
                s3_bucket: &file.location.bucket,
                s3_object: &file.location.key,
                hash_value: file.hash_value.to_hex(),
                hash_algorithm: HASH_ALGORITHM,
                newest_event_time: file.newest_event_time.map(format_digest_time),
                oldest_event_time: file.oldest_event_time.map(format_digest_time),
            })
            .collect(),
    };
    // A struct of strings and options always serializes.
    serde_json::to_vec(&file).unwrap_or_default()
}

/// The label and DER of the first PEM block of `pem`.
fn decode_pem(pem: &str) -> Result<(String, Vec<u8>), SigningError> {
    let not_pem = |reason: &str| SigningError::NotPem {
        reason: reason.to_string(),
    };
    let begin = pem
        .find("-----BEGIN ")
        .ok_or_else(|| not_pem("no BEGIN line"))?;
    let rest = &pem[begin + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| not_pem("unterminated BEGIN line"))?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + "-----".len()..];
    let end_line = format!("-----END {label}-----");
    let body_end = body.find(&end_line).ok_or_else(|| not_pem("no END line"))?;
    let base64_text: String = body[..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if base64_text.contains(':') {
        return Err(SigningError::UnsupportedPem {
            label: format!("{label} with headers (encrypted?)"),
        });
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .map_err(|_| not_pem("the body is not base64"))?;
    Ok((label, der))
}
