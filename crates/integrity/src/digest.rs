//! CloudTrail's digest file (`CloudTrail-Digest/…json.gz`, uncompressed here): every field of
//! the format, checked field by field so that a malformed digest is refused with the name of
//! the field at fault. A starting digest has `null` for every `previousDigest*` field; an hour
//! without log files has `logFiles: []` and `null` event times.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::hash_value::{decode_hex, Sha256Hash};

/// The only algorithms CloudTrail uses, as it spells them.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
pub const HASH_ALGORITHM: &str = "SHA-256";

/// An S3 object: where a digest or log file is, or claims to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> S3Location {
        S3Location {
            bucket: bucket.into(),
            key: key.into(),
        }
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "s3://{}/{}", self.bucket, self.key)
    }
}

/// One digest file, parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    pub aws_account_id: String,
    pub digest_start_time: DateTime<Utc>,
    pub digest_end_time: DateTime<Utc>,
    /// `digestEndTime` exactly as written: the signing string uses the text, not the time.
    pub digest_end_time_text: String,
    /// `digestS3Bucket`/`digestS3Object`: where CloudTrail wrote it.
    pub location: S3Location,
    pub public_key_fingerprint: String,
    pub signature_algorithm: String,
    pub newest_event_time: Option<DateTime<Utc>>,
    pub oldest_event_time: Option<DateTime<Utc>>,
    /// `None` in a starting digest.
    pub previous: Option<PreviousDigest>,
    pub log_files: Vec<DigestLogFile>,
    /// SHA-256 of the uncompressed bytes the digest was parsed from (the signing string's
    /// third line, and what the next digest's `previousDigestHashValue` holds).
    pub content_hash: Sha256Hash,
}

impl Digest {
    /// Parses the uncompressed bytes of a digest file.
    pub fn parse(content: &[u8]) -> Result<Digest, DigestError> {
        let value: Value = serde_json::from_slice(content).map_err(|error| DigestError::Json {
            detail: error.to_string(),
        })?;
        let Value::Object(fields) = value else {
            return Err(DigestError::NotAnObject);
        };
        let fields = Fields {
            object: &fields,
            path: String::new(),
        };
        let aws_account_id = fields.string("awsAccountId")?;
        if !orgtrail_domain::s3_key::is_account_id(&aws_account_id) {
            return Err(fields.invalid("awsAccountId", "not a 12-digit account id"));
        }
        let digest_start_time = fields.time("digestStartTime")?;
        let digest_end_time_text = fields.string("digestEndTime")?;
        let digest_end_time = parse_time(&digest_end_time_text)
            .ok_or_else(|| fields.invalid("digestEndTime", "not an RFC 3339 time"))?;
        if digest_end_time < digest_start_time {
            return Err(fields.invalid("digestEndTime", "before digestStartTime"));
        }
        let location = S3Location::new(
            fields.string("digestS3Bucket")?,
            fields.string("digestS3Object")?,
        );
        let public_key_fingerprint = fields.string("digestPublicKeyFingerprint")?;
        if public_key_fingerprint.is_empty() {
            return Err(fields.invalid("digestPublicKeyFingerprint", "empty"));
        }
        let signature_algorithm = fields.string("digestSignatureAlgorithm")?;
        if signature_algorithm != SIGNATURE_ALGORITHM {
            return Err(fields.invalid(
                "digestSignatureAlgorithm",
                &format!("{signature_algorithm:?}, not {SIGNATURE_ALGORITHM}"),
            ));
        }
        let previous = previous_digest(&fields)?;
        let log_files = match fields.object.get("logFiles") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(position, item)| log_file(item, position))
                .collect::<Result<Vec<_>, _>>()?,
            None | Some(Value::Null) => return Err(fields.missing("logFiles")),
            Some(_) => return Err(fields.invalid("logFiles", "not an array")),
        };
        Ok(Digest {
            aws_account_id,
            digest_start_time,
            digest_end_time,
            digest_end_time_text,
            location,
            public_key_fingerprint,
            signature_algorithm,
            newest_event_time: fields.optional_time("newestEventTime")?,
            oldest_event_time: fields.optional_time("oldestEventTime")?,
            previous,
            log_files,
            content_hash: Sha256Hash::of(content),
        })
    }

    /// A starting digest: the first of a chain (validation or logging (re)started).
    pub fn is_starting_digest(&self) -> bool {
        self.previous.is_none()
    }
}

/// The link to the digest before, all five `previousDigest*` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousDigest {
    pub location: S3Location,
    /// SHA-256 of the previous digest's uncompressed content.
    pub hash_value: Sha256Hash,
    /// The previous digest's signature, hex as written.
    pub signature: String,
}

/// One `logFiles[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestLogFile {
    pub location: S3Location,
    /// SHA-256 of the uncompressed log file.
    pub hash_value: Sha256Hash,
    pub newest_event_time: Option<DateTime<Utc>>,
    pub oldest_event_time: Option<DateTime<Utc>>,
}

/// Why a digest file was refused; the field is named as CloudTrail spells it
/// (`logFiles[2].hashValue`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not JSON: {detail}")]
    Json { detail: String },
    #[error("not a JSON object")]
    NotAnObject,
    #[error("field {field} is missing")]
    MissingField { field: String },
    #[error("field {field} is invalid: {reason}")]
    InvalidField { field: String, reason: String },
}

fn previous_digest(fields: &Fields<'_>) -> Result<Option<PreviousDigest>, DigestError> {
    const NAMES: [&str; 5] = [
        "previousDigestS3Bucket",
        "previousDigestS3Object",
        "previousDigestHashValue",
        "previousDigestHashAlgorithm",
        "previousDigestSignature",
    ];
    let present: Vec<&str> = NAMES
        .into_iter()
        .filter(|name| !matches!(fields.object.get(*name), None | Some(Value::Null)))
        .collect();
    if present.is_empty() {
        return Ok(None);
    }
    if let Some(absent) = NAMES.into_iter().find(|name| !present.contains(name)) {
        return Err(fields.invalid(
            absent,
            "null while other previousDigest fields are set (a starting digest has them all null)",
        ));
    }
    let algorithm = fields.string("previousDigestHashAlgorithm")?;
    if algorithm != HASH_ALGORITHM {
        return Err(fields.invalid(
            "previousDigestHashAlgorithm",
            &format!("{algorithm:?}, not {HASH_ALGORITHM}"),
        ));
    }
    let signature = fields.string("previousDigestSignature")?;
    if signature.is_empty() || decode_hex(&signature).is_none() {
        return Err(fields.invalid("previousDigestSignature", "not hex"));
    }
    Ok(Some(PreviousDigest {
        location: S3Location::new(
            fields.string("previousDigestS3Bucket")?,
            fields.string("previousDigestS3Object")?,
        ),
        hash_value: fields.hash("previousDigestHashValue")?,
        signature,
    }))
}

fn log_file(item: &Value, position: usize) -> Result<DigestLogFile, DigestError> {
    let path = format!("logFiles[{position}].");
    let Value::Object(object) = item else {
        return Err(DigestError::InvalidField {
            field: format!("logFiles[{position}]"),
            reason: "not an object".into(),
        });
    };
    let fields = Fields { object, path };
    let algorithm = fields.string("hashAlgorithm")?;
    if algorithm != HASH_ALGORITHM {
        return Err(fields.invalid(
            "hashAlgorithm",
            &format!("{algorithm:?}, not {HASH_ALGORITHM}"),
        ));
    }
    Ok(DigestLogFile {
        location: S3Location::new(fields.string("s3Bucket")?, fields.string("s3Object")?),
        hash_value: fields.hash("hashValue")?,
        newest_event_time: fields.optional_time("newestEventTime")?,
        oldest_event_time: fields.optional_time("oldestEventTime")?,
    })
}

/// The fields of one JSON object, read by name with errors that name them.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    /// `""` at the top, `logFiles[3].` inside a log file entry.
    path: String,
}

impl Fields<'_> {
    fn string(&self, name: &str) -> Result<String, DigestError> {
        match self.object.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            None | Some(Value::Null) => Err(self.missing(name)),
            Some(_) => Err(self.invalid(name, "not a string")),
        }
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, DigestError> {
        let text = self.string(name)?;
        parse_time(&text).ok_or_else(|| self.invalid(name, "not an RFC 3339 time"))
    }

    fn optional_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, DigestError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.time(name).map(Some),
        }
    }

    fn hash(&self, name: &str) -> Result<Sha256Hash, DigestError> {
        let text = self.string(name)?;
        Sha256Hash::from_hex(&text).ok_or_else(|| self.invalid(name, "not 64 hex digits"))
    }

    fn missing(&self, name: &str) -> DigestError {
        DigestError::MissingField {
            field: format!("{}{name}", self.path),
        }
    }

    fn invalid(&self, name: &str, reason: &str) -> DigestError {
        DigestError::InvalidField {
            field: format!("{}{name}", self.path),
            reason: reason.to_string(),
        }
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}
