//! The public keys digests are verified with: CloudTrail's (`ListPublicKeys`: a DER PKCS#1
//! `RSAPublicKey`, a fingerprint and a validity window) or orgtrail's own, as a set keyed by
//! fingerprint. The file format for offline use is the JSON `aws cloudtrail list-public-keys`
//! prints, so `aws cloudtrail list-public-keys > keys.json` gives a usable file.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::Value;

use crate::digest::Digest;
use crate::hash_value::decode_hex;
use crate::signing_string::signing_string;

/// A digest is signed when it is delivered, a little after its `digestEndTime`: a key is
/// accepted for digests ending up to this long outside its validity window.
pub const VALIDITY_TOLERANCE: Duration = Duration::hours(1);

/// One RSA public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// Lowercase hex, as digests name it in `digestPublicKeyFingerprint`.
    pub fingerprint: String,
    /// DER of a PKCS#1 `RSAPublicKey`.
    pub der: Vec<u8>,
    /// `None`: valid since ever / for ever.
    pub validity_start: Option<DateTime<Utc>>,
    pub validity_end: Option<DateTime<Utc>>,
}

impl PublicKey {
    fn is_valid_at(&self, time: DateTime<Utc>) -> bool {
        self.validity_start
            .is_none_or(|start| time >= start - VALIDITY_TOLERANCE)
            && self
                .validity_end
                .is_none_or(|end| time <= end + VALIDITY_TOLERANCE)
    }
}

/// Public keys by fingerprint (a fingerprint may come with several validity windows).
#[derive(Clone, Debug, Default)]
pub struct PublicKeys {
    by_fingerprint: BTreeMap<String, Vec<PublicKey>>,
}

/// Why a digest's signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("no public key has fingerprint {fingerprint}")]
    UnknownKey { fingerprint: String },
    #[error("the public key {fingerprint} is not valid at {at} (valid {window})")]
    KeyNotValidAt {
        fingerprint: String,
        at: DateTime<Utc>,
        window: String,
    },
    #[error("the signature is not hex")]
    NotHex,
    #[error("the signature does not verify with public key {fingerprint}")]
    DoesNotVerify { fingerprint: String },
}

impl PublicKeys {
    pub fn new() -> PublicKeys {
        PublicKeys::default()
    }

    pub fn insert(&mut self, key: PublicKey) {
        let mut key = key;
        key.fingerprint = key.fingerprint.to_ascii_lowercase();
        let keys = self
            .by_fingerprint
            .entry(key.fingerprint.clone())
            .or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    pub fn contains(&self, fingerprint: &str) -> bool {
        self.by_fingerprint
            .contains_key(&fingerprint.to_ascii_lowercase())
    }

    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.by_fingerprint.values().flatten()
    }

    /// Checks `signature_hex` over the digest's signing string (RSA PKCS#1 v1.5, SHA-256) with
    /// the key it names, valid at its `digestEndTime`.
    pub fn verify_digest(
        &self,
        digest: &Digest,
        signature_hex: &str,
    ) -> Result<(), SignatureProblem> {
        let fingerprint = digest.public_key_fingerprint.to_ascii_lowercase();
        let keys =
            self.by_fingerprint
                .get(&fingerprint)
                .ok_or_else(|| SignatureProblem::UnknownKey {
                    fingerprint: fingerprint.clone(),
                })?;
        let at = digest.digest_end_time;
        let Some(key) = keys.iter().find(|key| key.is_valid_at(at)) else {
            let window = keys
                .iter()
                .map(|key| format!("{} to {}", show(key.validity_start), show(key.validity_end)))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(SignatureProblem::KeyNotValidAt {
                fingerprint,
                at,
                window,
            });
        };
        let signature = decode_hex(signature_hex.trim()).ok_or(SignatureProblem::NotHex)?;
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.der)
            .verify(signing_string(digest).as_bytes(), &signature)
            .map_err(|_| SignatureProblem::DoesNotVerify { fingerprint })
    }

    /// Reads the JSON of `aws cloudtrail list-public-keys` (or a `ListPublicKeys` answer):
    /// `{"PublicKeyList": [{"Value": base64 DER, "ValidityStartTime": …, "ValidityEndTime": …,
    /// "Fingerprint": hex}]}`. Times are RFC 3339 (CLI v2) or epoch seconds (CLI v1, the wire).
    pub fn from_list_public_keys_json(text: &[u8]) -> Result<PublicKeys, PublicKeyFileError> {
        let value: Value = serde_json::from_slice(text).map_err(|error| PublicKeyFileError {
            field: "(file)".into(),
            reason: format!("not JSON: {error}"),
        })?;
        let Some(list) = value.get("PublicKeyList").and_then(Value::as_array) else {
            return Err(PublicKeyFileError {
                field: "PublicKeyList".into(),
                reason: "missing or not an array".into(),
            });
        };
        let mut keys = PublicKeys::new();
        for (position, item) in list.iter().enumerate() {
            let field = |name: &str| format!("PublicKeyList[{position}].{name}");
            let error = |name: &str, reason: &str| PublicKeyFileError {
                field: field(name),
                reason: reason.to_string(),
            };
            let der = item
                .get("Value")
                .and_then(Value::as_str)
                .ok_or_else(|| error("Value", "missing or not a string"))?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(der.trim())
                .map_err(|_| error("Value", "not base64"))?;
            let fingerprint = item
                .get("Fingerprint")
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .ok_or_else(|| error("Fingerprint", "missing or not a string"))?;
            let time = |name: &str| match item.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => parse_key_time(value)
                    .map(Some)
                    .ok_or_else(|| error(name, "not an RFC 3339 time nor epoch seconds")),
            };
            keys.insert(PublicKey {
                fingerprint: fingerprint.to_string(),
                der,
                validity_start: time("ValidityStartTime")?,
                validity_end: time("ValidityEndTime")?,
            });
        }
        Ok(keys)
    }

    /// The same JSON shape, to publish keys (orgtrail's own) or keep CloudTrail's offline.
    pub fn to_list_public_keys_json(&self) -> String {
        let list: Vec<Value> = self
            .keys()
            .map(|key| {
                serde_json::json!({
                    "Value": base64::engine::general_purpose::STANDARD.encode(&key.der),
                    "ValidityStartTime": key.validity_start.map(|time| time.to_rfc3339()),
                    "ValidityEndTime": key.validity_end.map(|time| time.to_rfc3339()),
                    "Fingerprint": key.fingerprint,
                })
            })
            .collect();
        let document = serde_json::json!({ "PublicKeyList": list });
        serde_json::to_string_pretty(&document).unwrap_or_default()
    }
}

/// A public-key file that cannot be used, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("public keys: {field}: {reason}")]
pub struct PublicKeyFileError {
    pub field: String,
    pub reason: String,
}

fn parse_key_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|time| time.with_timezone(&Utc))
            .or_else(|| text.parse::<f64>().ok().and_then(epoch_time)),
        Value::Number(number) => number.as_f64().and_then(epoch_time),
        _ => None,
    }
}

fn epoch_time(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    Utc.timestamp_millis_opt((seconds * 1000.0) as i64).single()
}

fn show(time: Option<DateTime<Utc>>) -> String {
    time.map(|time| time.to_rfc3339())
        .unwrap_or_else(|| "-".into())
}
