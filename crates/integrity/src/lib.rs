//! CloudTrail log file integrity, pure: digest files parsed and checked field by field
//! ([`Digest`]), the string CloudTrail signs ([`signing_string`]), RSA PKCS#1 v1.5 SHA-256
//! signatures checked against public keys ([`PublicKeys`], whose file is what
//! `aws cloudtrail list-public-keys` prints), SHA-256 of uncompressed content
//! ([`ContentHasher`]), the chain walk ([`ChainWalk`]) that reports every [`Problem`], and the
//! writing side for orgtrail's own digests ([`DigestSigner`]). No network, no files: the caller
//! reads the objects and hands their bytes in. The reference is
//! `docs/cloudtrail-reference.md` §3 (shared docs) and `docs/integrity.md`.

pub mod archive_layout;
pub mod chain_walk;
pub mod digest;
pub mod digest_key;
pub mod digest_signer;
pub mod hash_value;
pub mod problem;
pub mod public_keys;
pub mod signing_string;

pub use archive_layout::{ArchiveLayout, ARCHIVE_DIGEST_NAME, ARCHIVE_TRAIL};
pub use chain_walk::{ChainWalk, DigestRead, LogFileRead, VerificationReport, DIGEST_INTERVAL};
pub use digest::{Digest, DigestError, DigestLogFile, PreviousDigest, S3Location};
pub use digest_key::{CloudTrailLayout, DigestKey, KeyLayout};
pub use digest_signer::{
    format_digest_time, unsigned_digest, DigestDraft, DigestSigner, SignedDigest, SigningError,
};
pub use hash_value::{ContentHasher, Sha256Hash};
pub use problem::{DigestOutcome, LogFileOutcome, LogFileStatus, Problem};
pub use public_keys::{PublicKey, PublicKeyFileError, PublicKeys, SignatureProblem};
pub use signing_string::signing_string;
