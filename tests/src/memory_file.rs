//! Log files held in memory, sent under any origin (bad input, organization-trail keys).

use std::io::Read;
use std::sync::Arc;

use orgtrail_client::{LogFileOrigin, LogFileReader};

pub struct MemoryLogFile {
    pub origin: LogFileOrigin,
    pub bytes: Arc<Vec<u8>>,
}

impl MemoryLogFile {
    /// A file of `bytes` under `key` in `bucket`, its ETag derived from its content.
    pub fn shared(bucket: &str, key: &str, bytes: Vec<u8>) -> Arc<dyn LogFileReader> {
        let etag = format!("{:016x}", fnv1a(&bytes));
        Arc::new(MemoryLogFile {
            origin: LogFileOrigin {
                source: "test".into(),
                bucket: bucket.into(),
                object_key: key.into(),
                etag,
                last_modified: None,
            },
            bytes: Arc::new(bytes),
        })
    }
}

impl LogFileReader for MemoryLogFile {
    fn origin(&self) -> &LogFileOrigin {
        &self.origin
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(
            Arc::clone(&self.bytes).to_vec(),
        )))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `{"Records":[…]}` of the given record texts.
pub fn log_file_json(records: &[&str]) -> Vec<u8> {
    format!("{{\"Records\":[{}]}}", records.join(",")).into_bytes()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_else(|error| panic!("cannot gzip: {error}"))
}
