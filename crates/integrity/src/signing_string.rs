//! The string CloudTrail signs for a digest (reference §3.2; CLI `Sha256RSADigestValidator`):
//!
//! ```text
//! <digestEndTime>\n<digestS3Bucket>/<digestS3Object>\n<hex SHA-256 of the uncompressed digest>\n<previousDigestSignature or null>
//! ```

use crate::digest::Digest;

pub fn signing_string(digest: &Digest) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        digest.digest_end_time_text,
        digest.location.bucket,
        digest.location.key,
        digest.content_hash.to_hex(),
        digest
            .previous
            .as_ref()
            .map(|previous| previous.signature.as_str())
            .unwrap_or("null")
    )
}
