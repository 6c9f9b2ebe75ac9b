//! SHA-256 values as CloudTrail writes them (lowercase hex), and hashing of uncompressed
//! content fed in pieces, so a 50 MB log file is hashed as it streams.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// A SHA-256 value: `hashValue`, `previousDigestHashValue`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Hash(pub [u8; 32]);

impl Sha256Hash {
    /// The hash of `content` (uncompressed bytes).
    pub fn of(content: &[u8]) -> Sha256Hash {
        let mut hasher = ContentHasher::new();
        hasher.update(content);
        hasher.finish()
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Sha256Hash> {
        let bytes = decode_hex(text)?;
        <[u8; 32]>::try_from(bytes).ok().map(Sha256Hash)
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl fmt::Display for Sha256Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Sha256Hash({})", self.to_hex())
    }
}

/// SHA-256 over content given in pieces (the gunzipped bytes of a log file as they stream).
#[derive(Clone, Default)]
pub struct ContentHasher {
    hasher: Sha256,
    length: u64,
}

impl ContentHasher {
    pub fn new() -> ContentHasher {
        ContentHasher::default()
    }

    pub fn update(&mut self, piece: &[u8]) {
        self.hasher.update(piece);
        self.length += piece.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn finish(self) -> Sha256Hash {
        Sha256Hash(self.hasher.finalize().into())
    }
}

impl std::io::Write for ContentHasher {
    fn write(&mut self, piece: &[u8]) -> std::io::Result<usize> {
        self.update(piece);
        Ok(piece.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lowercase hex, as CloudTrail writes hashes and signatures.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Hex of either case; `None` for an odd length or a character that is not a hex digit.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    fn digit(byte: u8) -> Option<u8> {
        match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'a'..=b'f' => Some(byte - b'a' + 10),
            b'A'..=b'F' => Some(byte - b'A' + 10),
            _ => None,
        }
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_known_sha256_of_abc() {
        assert_eq!(
            Sha256Hash::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn content_hashed_in_pieces_equals_content_hashed_whole() {
        let mut hasher = ContentHasher::new();
        hasher.update(b"a");
        hasher.update(b"bc");
        assert_eq!(hasher.length(), 3);
        assert_eq!(hasher.finish(), Sha256Hash::of(b"abc"));
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        let hash = Sha256Hash::of(b"x");
        assert_eq!(Sha256Hash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(
            Sha256Hash::from_hex(&hash.to_hex().to_uppercase()),
            Some(hash)
        );
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(Sha256Hash::from_hex("abcd"), None);
    }
}
