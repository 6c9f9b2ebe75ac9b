//! A trail's integrity objects as S3 holds them, read for `orgtrail_integrity`'s chain walk:
//! listings by start-after that stop past a window, digests with their
//! `x-amz-meta-signature`, log files hashed as they stream (gunzip into SHA-256, never held
//! whole), the walk driven over a scope ([`read_chain`], [`hash_log_files`]), and CloudTrail's
//! public keys (`ListPublicKeys`). Used by `orgtrail verify` and by the collector, which
//! validates every source whose trail writes digests.

use std::future::Future;
use std::io::{Read, Write};

use anyhow::{anyhow, bail, Context};
use aws_sdk_s3::error::DisplayErrorContext;
use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use orgtrail_integrity::{
    ChainWalk, ContentHasher, DigestKey, DigestRead, KeyLayout, LogFileRead, PublicKey, PublicKeys,
    S3Location, Sha256Hash,
};

/// A digest names its log files; it is small. Anything this large is not a digest.
const MAX_DIGEST_BYTES: u64 = 64 << 20;

/// Digests read ahead of the walk.
const DIGESTS_IN_FLIGHT: usize = 8;

/// An object found by listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedKey {
    pub key: String,
    /// Without S3's quotes.
    pub etag: String,
    pub last_modified: Option<DateTime<Utc>>,
}

/// S3 as the reader of a trail's bucket reaches it.
#[derive(Clone)]
pub struct TrailS3 {
    s3: aws_sdk_s3::Client,
}

impl TrailS3 {
    pub fn new(s3: aws_sdk_s3::Client) -> TrailS3 {
        TrailS3 { s3 }
    }

    /// The digest keys of `layout`'s scope ending from `from` to `until`, oldest first, of
    /// every trail delivering there (the caller picks one: [`trails_of`]).
    pub async fn list_digest_keys(
        &self,
        bucket: &str,
        layout: &impl KeyLayout,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<DigestKey>> {
        let keys = self
            .list_keys(
                bucket,
                &layout.digest_prefix(),
                &layout.digest_start_after(from),
                |key| layout.is_listed_after(key, until),
            )
            .await?;
        let mut digests: Vec<DigestKey> = keys
            .iter()
            .filter_map(|listed| layout.parse_digest_key(&listed.key))
            .filter(|key| key.end_time >= from && key.end_time <= until)
            .collect();
        digests.sort_by_key(|key| key.end_time);
        Ok(digests)
    }

    /// The log files of `layout`'s scope present, delivered from `from` to `until`, with their
    /// ETags.
    pub async fn list_log_files(
        &self,
        bucket: &str,
        layout: &impl KeyLayout,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ListedKey>> {
        let from = from - Duration::minutes(1);
        let keys = self
            .list_keys(
                bucket,
                &layout.log_file_prefix(),
                &layout.log_file_start_after(from),
                |key| layout.is_listed_after(key, until),
            )
            .await?;
        Ok(keys
            .into_iter()
            .filter(|listed| {
                layout
                    .log_file_delivery_time(&listed.key)
                    .is_some_and(|delivered| delivered >= from && delivered <= until)
            })
            .collect())
    }

    /// Keys under `prefix` after `start_after`, page by page, until `past_the_end` says a key is
    /// beyond what is wanted.
    async fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        past_the_end: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<ListedKey>> {
        let mut keys = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .start_after(start_after)
                .set_continuation_token(continuation)
                .send()
                .await
                .map_err(|error| {
                    anyhow!(
                        "cannot list s3://{bucket}/{prefix}: {}",
                        DisplayErrorContext(&error)
                    )
                })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if past_the_end(key) {
                    return Ok(keys);
                }
                keys.push(ListedKey {
                    key: key.to_string(),
                    etag: object
                        .e_tag()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_string(),
                    last_modified: object.last_modified().and_then(|time| {
                        DateTime::from_timestamp(time.secs(), time.subsec_nanos())
                    }),
                });
            }
            continuation = page.next_continuation_token().map(str::to_string);
            if continuation.is_none() || page.is_truncated() != Some(true) {
                return Ok(keys);
            }
        }
    }

    /// An object's bytes, as they are (a small one: a public-key file).
    pub async fn read_object(&self, bucket: &str, key: &str) -> anyhow::Result<Vec<u8>> {
        let output = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| {
                anyhow!(
                    "cannot read s3://{bucket}/{key}: {}",
                    DisplayErrorContext(&error)
                )
            })?;
        Ok(output
            .body
            .collect()
            .await
            .with_context(|| format!("cannot read s3://{bucket}/{key}"))?
            .into_bytes()
            .to_vec())
    }

    /// A digest object: its content gunzipped and its `x-amz-meta-signature`; no content when
    /// it is gone.
    pub async fn read_digest(&self, bucket: &str, key: &str) -> anyhow::Result<DigestRead> {
        let location = S3Location::new(bucket, key);
        let output = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(output) => output,
            Err(error) if is_no_such_key(&error) => {
                return Ok(DigestRead {
                    location,
                    content: None,
                    metadata_signature: None,
                })
            }
            Err(error) => bail!(
                "cannot read digest {location}: {}",
                DisplayErrorContext(&error)
            ),
        };
        let metadata_signature = output
            .metadata()
            .and_then(|metadata| metadata.get("signature"))
            .cloned();
        let bytes = output
            .body
            .collect()
            .await
            .with_context(|| format!("cannot read digest {location}"))?
            .into_bytes();
        let mut content = Vec::new();
        if bytes.starts_with(&GZIP_MAGIC) {
            flate2::read::MultiGzDecoder::new(bytes.as_ref())
                .take(MAX_DIGEST_BYTES)
                .read_to_end(&mut content)
                .with_context(|| format!("digest {location} is not valid gzip"))?;
        } else {
            content = bytes.to_vec();
        }
        Ok(DigestRead {
            location,
            content: Some(content),
            metadata_signature,
        })
    }

    /// SHA-256 of a log file's uncompressed content, streamed: each piece of the body is
    /// gunzipped into the hasher as it arrives.
    pub async fn hash_log_file(&self, location: &S3Location) -> anyhow::Result<LogFileRead> {
        let output = match self
            .s3
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if is_no_such_key(&error) => return Ok(LogFileRead::Missing),
            Err(error) => bail!(
                "cannot read log file {location}: {}",
                DisplayErrorContext(&error)
            ),
        };
        let mut body = output.body;
        let mut sink = HashSink::new();
        while let Some(piece) = body
            .try_next()
            .await
            .with_context(|| format!("cannot read log file {location}"))?
        {
            sink.write(&piece)
                .with_context(|| format!("log file {location} is not valid gzip"))?;
        }
        let hash = sink
            .finish()
            .with_context(|| format!("log file {location} is not valid gzip"))?;
        Ok(LogFileRead::Hashed(hash))
    }
}

/// The trails whose digests `keys` are, sorted.
pub fn trails_of(keys: &[DigestKey]) -> Vec<&str> {
    let mut trails: Vec<&str> = keys.iter().map(|key| key.trail_name.as_str()).collect();
    trails.sort_unstable();
    trails.dedup();
    trails
}

/// Reads the digests of `keys` (oldest first, as listed) newest → oldest, a few ahead, into
/// the walk; answers the log files they list, to be hashed.
pub async fn read_chain<L: KeyLayout>(
    s3: &TrailS3,
    walk: &mut ChainWalk<L>,
    bucket: &str,
    keys: &[DigestKey],
) -> anyhow::Result<Vec<S3Location>> {
    let mut to_hash = Vec::new();
    let mut digests = futures::stream::iter(keys.iter().rev())
        .map(|key| s3.read_digest(bucket, &key.key))
        .buffered(DIGESTS_IN_FLIGHT);
    while let Some(read) = digests.next().await {
        to_hash.extend(walk.accept_digest(read?));
    }
    Ok(to_hash)
}

/// Hashes `locations` through `hash`, `concurrency` at a time, in any order.
pub async fn hash_log_files<H, F>(
    locations: Vec<S3Location>,
    concurrency: usize,
    hash: H,
) -> anyhow::Result<Vec<(S3Location, LogFileRead)>>
where
    H: Fn(S3Location) -> F,
    F: Future<Output = anyhow::Result<(S3Location, LogFileRead)>>,
{
    futures::stream::iter(locations)
        .map(hash)
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// CloudTrail's public keys valid over the window (ListPublicKeys, every page), keyed by
/// fingerprint.
pub async fn list_public_keys(
    cloudtrail: &aws_sdk_cloudtrail::Client,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<PublicKeys> {
    let mut keys = PublicKeys::new();
    let mut next_token = None;
    loop {
        let answer = cloudtrail
            .list_public_keys()
            .start_time(smithy_time(from))
            .end_time(smithy_time(until))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|error| {
                anyhow!(
                    "cloudtrail:ListPublicKeys failed: {}",
                    DisplayErrorContext(&error)
                )
            })?;
        for key in answer.public_key_list() {
            let (Some(value), Some(fingerprint)) = (key.value(), key.fingerprint()) else {
                continue;
            };
            keys.insert(PublicKey {
                fingerprint: fingerprint.to_string(),
                der: value.as_ref().to_vec(),
                validity_start: key.validity_start_time().and_then(chrono_time),
                validity_end: key.validity_end_time().and_then(chrono_time),
            });
        }
        next_token = answer.next_token().map(str::to_string);
        if next_token.is_none() {
            return Ok(keys);
        }
    }
}
/// Where a log file's bytes go: gunzipped into the hasher when they start as gzip, else
/// straight in (CloudTrail's are always gzip'd; plain JSON is hashed as it is). The first two
/// bytes decide, however the body is cut into pieces.
enum HashSink {
    Undecided(Vec<u8>),
    Gzip(Box<flate2::write::MultiGzDecoder<ContentHasher>>),
    Plain(ContentHasher),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl HashSink {
    fn new() -> HashSink {
        HashSink::Undecided(Vec::with_capacity(GZIP_MAGIC.len()))
    }

    fn write(&mut self, piece: &[u8]) -> std::io::Result<()> {
        match self {
            HashSink::Undecided(first) => {
                first.extend_from_slice(piece);
                if first.len() < GZIP_MAGIC.len() {
                    return Ok(());
                }
                let first = std::mem::take(first);
                *self = if first.starts_with(&GZIP_MAGIC) {
                    HashSink::Gzip(Box::new(flate2::write::MultiGzDecoder::new(
                        ContentHasher::new(),
                    )))
                } else {
                    HashSink::Plain(ContentHasher::new())
                };
                self.write(&first)
            }
            HashSink::Gzip(decoder) => decoder.write_all(piece),
            HashSink::Plain(hasher) => {
                hasher.update(piece);
                Ok(())
            }
        }
    }

    fn finish(self) -> std::io::Result<Sha256Hash> {
        Ok(match self {
            HashSink::Gzip(decoder) => decoder.finish()?.finish(),
            HashSink::Plain(hasher) => hasher.finish(),
            HashSink::Undecided(first) => Sha256Hash::of(&first),
        })
    }
}

fn is_no_such_key(
    error: &aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::get_object::GetObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
) -> bool {
    error
        .as_service_error()
        .is_some_and(|service| service.is_no_such_key())
        || error
            .raw_response()
            .is_some_and(|response| response.status().as_u16() == 404)
}

fn smithy_time(time: DateTime<Utc>) -> aws_sdk_cloudtrail::primitives::DateTime {
    aws_sdk_cloudtrail::primitives::DateTime::from_secs(time.timestamp())
}

fn chrono_time(time: &aws_sdk_cloudtrail::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_in_pieces(bytes: &[u8], piece: usize) -> Sha256Hash {
        let mut sink = HashSink::new();
        for chunk in bytes.chunks(piece) {
            sink.write(chunk).unwrap();
        }
        sink.finish().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn log_files_streamed_in_any_pieces_hash_as_their_uncompressed_content() {
        let content = br#"{"Records":[{"eventID":"1"},{"eventID":"2"}]}"#.repeat(200);
        let expected = Sha256Hash::of(&content);
        let compressed = gzip(&content);
        for piece in [1, 7, 4096, compressed.len()] {
            assert_eq!(
                hash_in_pieces(&compressed, piece),
                expected,
                "pieces of {piece}"
            );
        }
        // Two gzip members, as concatenated files are: the content of both.
        let mut two = gzip(&content[..100]);
        two.extend(gzip(&content[100..]));
        assert_eq!(hash_in_pieces(&two, 13), expected);
        // Plain JSON is hashed as it is.
        assert_eq!(hash_in_pieces(&content, 10), expected);
    }

    #[test]
    fn a_truncated_gzip_is_an_error_not_a_hash() {
        let compressed = gzip(&b"{\"Records\":[]}".repeat(50));
        let mut sink = HashSink::new();
        sink.write(&compressed[..compressed.len() / 2]).unwrap();
        assert!(sink.finish().is_err());
    }
}
