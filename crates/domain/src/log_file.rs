//! Reading a CloudTrail log file — a JSON object `{"Records":[…]}`, gzip'd or plain — as a
//! stream: each record is handed on as soon as it is read, so memory stays bounded by one
//! record however large the file is (CloudTrail's files reach 50 MB compressed).
//!
//! A record that is not an object is rejected alone; a fault in the file itself (a truncated
//! gzip stream, text that is not JSON, `Records` that is not an array) stops the reading, and
//! the records read before it stand.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::record::{json_kind, RecordError};

/// Where a log file came from. Bucket, key and ETag identify it in the aggregator's ledger;
/// a local file has no bucket, its path as key and the MD5 of its bytes as ETag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogFileOrigin {
    /// The configured source that read it (a collector source, or `local` for a backfill).
    pub source: String,
    pub bucket: String,
    pub object_key: String,
    pub etag: String,
    /// When the object was created in S3 (`LastModified`); `None` for a local file.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Display for LogFileOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.bucket.is_empty() {
            write!(f, "{}", self.object_key)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.object_key)
        }
    }
}

/// Bounds on what one file may cost to read.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    /// Decompressed bytes per file; beyond this the file is a fault (a gzip bomb).
    pub max_decompressed_bytes: u64,
    /// A record larger than this is rejected on its own; the file goes on.
    pub max_record_bytes: usize,
    /// A record is read into memory whole before it can be rejected for its size; one larger
    /// than this stops the file instead.
    pub max_record_bytes_in_memory: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_decompressed_bytes: 4 << 30,
            max_record_bytes: 1 << 20,
            max_record_bytes_in_memory: 64 << 20,
        }
    }
}

/// What reading a file yields, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFileItem {
    /// A record that is a JSON object, with its original text.
    Record { index: u32, json: String },
    /// A record that cannot be used, with the reason.
    Rejected { index: u32, reason: String },
}

/// How the reading of a file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFileRead {
    /// Elements of `Records` read (records and rejections).
    pub records_read: u32,
    /// What stopped the reading before the end of the file.
    pub fault: Option<LogFileFault>,
    /// The consumer asked to stop.
    pub stopped: bool,
    /// SHA-256 of the file's content, uncompressed (what a CloudTrail digest's `hashValue` is
    /// of), when it was read to its end without a fault.
    pub content_sha256: Option<[u8; 32]>,
}

/// A fault in a log file as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogFileFault {
    #[error("file is empty")]
    Empty,
    #[error("gzip stream is corrupt or truncated after {records_read} records: {detail}")]
    CorruptGzip { records_read: u32, detail: String },
    #[error("file is not JSON: {detail}")]
    NotJson { detail: String },
    #[error("file is not valid JSON after {records_read} records: {detail}")]
    InvalidJson { records_read: u32, detail: String },
    #[error("file is not a CloudTrail log file: its top level is {found}, not an object")]
    NotAnObject { found: &'static str },
    #[error("file has no Records array")]
    MissingRecords,
    #[error("Records is not an array: {detail}")]
    RecordsNotAnArray { detail: String },
    #[error("Records appears twice in the file")]
    DuplicateRecords,
    #[error("file decompresses to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("record {index} is larger than {limit} bytes")]
    RecordTooLarge { index: u32, limit: u64 },
    #[error("data follows the log file object: {detail}")]
    TrailingData { detail: String },
    #[error("could not read the file after {records_read} records: {detail}")]
    Read { records_read: u32, detail: String },
}

/// Reads the log file in `input` (gzip'd or plain, told by its first bytes), handing each
/// record to `on_item`. Returning `Break` from `on_item` stops the reading.
pub fn read_log_file<R: Read>(
    input: R,
    limits: ReadLimits,
    mut on_item: impl FnMut(LogFileItem) -> ControlFlow<()>,
) -> LogFileRead {
    let mut buffered = BufReader::new(input);
    let compressed = match buffered.fill_buf() {
        Ok(head) => head.starts_with(&[0x1f, 0x8b]),
        Err(error) => {
            return fault_before_records(LogFileFault::Read {
                records_read: 0,
                detail: error.to_string(),
            })
        }
    };
    let decompressed: Box<dyn Read> = if compressed {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let state = Rc::new(ReadState {
        limits,
        consumed: Cell::new(0),
        record_start: Cell::new(None),
        records_read: Cell::new(0),
        exceeded: Cell::new(None),
        duplicate_records: Cell::new(false),
        stopped: Cell::new(false),
        in_records: Cell::new(false),
        content: RefCell::new(Sha256::new()),
    });
    let mut json_input = BufReader::new(CountingReader {
        inner: decompressed,
        state: Rc::clone(&state),
    });

    match first_significant_byte(&mut json_input) {
        Ok(Some(b'{')) => {}
        Ok(Some(byte)) => {
            let kind = json_kind(std::str::from_utf8(&[byte]).unwrap_or("?"));
            let fault = if matches!(byte, b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') {
                LogFileFault::NotAnObject { found: kind }
            } else {
                LogFileFault::NotJson {
                    detail: format!("it starts with byte 0x{byte:02x}"),
                }
            };
            return fault_before_records(fault);
        }
        Ok(None) => return fault_before_records(LogFileFault::Empty),
        Err(error) => {
            let fault = classify_io_error(&state, compressed, error.to_string());
            return fault_before_records(fault);
        }
    }

    let mut deserializer = serde_json::Deserializer::from_reader(&mut json_input);
    let visitor = EnvelopeVisitor {
        on_item: &mut on_item,
        state: &state,
    };
    let outcome = de::Deserializer::deserialize_map(&mut deserializer, visitor)
        .and_then(|saw_records| deserializer.end().map(|()| saw_records));
    let records_read = state.records_read.get();
    let fault = match outcome {
        Ok(true) => None,
        Ok(false) => Some(LogFileFault::MissingRecords),
        Err(_) if state.stopped.get() => None,
        Err(error) => Some(classify_json_error(&state, compressed, &error)),
    };
    let complete = fault.is_none() && !state.stopped.get();
    LogFileRead {
        records_read,
        fault,
        stopped: state.stopped.get(),
        content_sha256: complete.then(|| state.content.take().finalize().into()),
    }
}

fn fault_before_records(fault: LogFileFault) -> LogFileRead {
    LogFileRead {
        records_read: 0,
        fault: Some(fault),
        stopped: false,
        content_sha256: None,
    }
}

/// Skips leading white space and returns the first byte after it, without consuming it.
fn first_significant_byte(input: &mut impl BufRead) -> io::Result<Option<u8>> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
            Some(position) => {
                let byte = buffer[position];
                input.consume(position);
                return Ok(Some(byte));
            }
            None => {
                let length = buffer.len();
                input.consume(length);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Exceeded {
    File,
    Record { index: u32 },
}

/// Shared between the reader (which counts bytes) and the visitor (which knows where records
/// start).
struct ReadState {
    limits: ReadLimits,
    consumed: Cell<u64>,
    record_start: Cell<Option<u64>>,
    records_read: Cell<u32>,
    exceeded: Cell<Option<Exceeded>>,
    duplicate_records: Cell<bool>,
    stopped: Cell<bool>,
    in_records: Cell<bool>,
    /// Every decompressed byte read, hashed.
    content: RefCell<Sha256>,
}

struct CountingReader<R> {
    inner: R,
    state: Rc<ReadState>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        let state = &self.state;
        state.content.borrow_mut().update(&buffer[..read]);
        let consumed = state.consumed.get() + read as u64;
        state.consumed.set(consumed);
        if consumed > state.limits.max_decompressed_bytes {
            state.exceeded.set(Some(Exceeded::File));
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        if let Some(start) = state.record_start.get() {
            // The reader runs ahead of the parser by at most one buffer.
            let slack = 64 * 1024;
            if consumed.saturating_sub(start) > state.limits.max_record_bytes_in_memory + slack {
                state.exceeded.set(Some(Exceeded::Record {
                    index: state.records_read.get(),
                }));
                return Err(io::Error::other("record size limit exceeded"));
            }
        }
        Ok(read)
    }
}

fn classify_io_error(state: &ReadState, compressed: bool, detail: String) -> LogFileFault {
    let records_read = state.records_read.get();
    match state.exceeded.get() {
        Some(Exceeded::File) => LogFileFault::TooLarge {
            limit: state.limits.max_decompressed_bytes,
        },
        Some(Exceeded::Record { index }) => LogFileFault::RecordTooLarge {
            index,
            limit: state.limits.max_record_bytes_in_memory,
        },
        None if compressed => LogFileFault::CorruptGzip {
            records_read,
            detail,
        },
        None => LogFileFault::Read {
            records_read,
            detail,
        },
    }
}

fn classify_json_error(
    state: &ReadState,
    compressed: bool,
    error: &serde_json::Error,
) -> LogFileFault {
    if state.duplicate_records.get() {
        return LogFileFault::DuplicateRecords;
    }
    if error.is_io() {
        return classify_io_error(state, compressed, error.to_string());
    }
    let records_read = state.records_read.get();
    if state.in_records.get() && records_read == 0 && error.is_data() {
        return LogFileFault::RecordsNotAnArray {
            detail: error.to_string(),
        };
    }
    if error.is_syntax() && error.to_string().starts_with("trailing characters") {
        return LogFileFault::TrailingData {
            detail: error.to_string(),
        };
    }
    LogFileFault::InvalidJson {
        records_read,
        detail: error.to_string(),
    }
}

struct EnvelopeVisitor<'a> {
    on_item: &'a mut dyn FnMut(LogFileItem) -> ControlFlow<()>,
    state: &'a ReadState,
}

impl<'de> Visitor<'de> for EnvelopeVisitor<'_> {
    /// Whether a `Records` array was read.
    type Value = bool;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a CloudTrail log file object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut saw_records = false;
        while let Some(key) = map.next_key::<String>()? {
            if key != "Records" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if saw_records {
                self.state.duplicate_records.set(true);
                return Err(de::Error::custom("Records appears twice"));
            }
            saw_records = true;
            self.state.in_records.set(true);
            map.next_value_seed(RecordsSeed {
                on_item: &mut *self.on_item,
                state: self.state,
            })?;
            self.state.in_records.set(false);
        }
        Ok(saw_records)
    }
}

struct RecordsSeed<'a> {
    on_item: &'a mut dyn FnMut(LogFileItem) -> ControlFlow<()>,
    state: &'a ReadState,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.state;
        loop {
            state.record_start.set(Some(state.consumed.get()));
            let Some(raw) = seq.next_element::<Box<RawValue>>()? else {
                break;
            };
            let index = state.records_read.get();
            state.records_read.set(index + 1);
            let item = record_item(index, raw, &state.limits);
            if (self.on_item)(item).is_break() {
                state.stopped.set(true);
                return Err(de::Error::custom("reading stopped by the consumer"));
            }
        }
        state.record_start.set(None);
        Ok(())
    }
}

fn record_item(index: u32, raw: Box<RawValue>, limits: &ReadLimits) -> LogFileItem {
    let size = raw.get().len();
    let found = json_kind(raw.get());
    let rejection = if found != "an object" {
        Some(RecordError::NotAnObject { found })
    } else if size > limits.max_record_bytes {
        Some(RecordError::TooLarge {
            size,
            limit: limits.max_record_bytes,
        })
    } else {
        None
    };
    match rejection {
        Some(reason) => LogFileItem::Rejected {
            index,
            reason: reason.to_string(),
        },
        None => {
            let text: Box<str> = raw.into();
            LogFileItem::Record {
                index,
                json: text.into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read_all(bytes: &[u8], limits: ReadLimits) -> (Vec<LogFileItem>, LogFileRead) {
        let mut items = Vec::new();
        let read = read_log_file(bytes, limits, |item| {
            items.push(item);
            ControlFlow::Continue(())
        });
        (items, read)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    const FILE: &str =
        r#"{"Records":[{"eventID":"a","n":{"x":[1,2]}}, 7, {"eventID":"b"}], "other": {"k": 1}}"#;

    #[test]
    fn a_file_read_to_its_end_has_the_sha256_of_its_uncompressed_content() {
        let content = format!("  {FILE}\n");
        let expected: [u8; 32] = Sha256::digest(content.as_bytes()).into();
        for bytes in [content.as_bytes().to_vec(), gzip(content.as_bytes())] {
            let (_, read) = read_all(&bytes, ReadLimits::default());
            assert_eq!(read.content_sha256, Some(expected));
        }
        // Not read to its end: a fault, or the consumer stopped.
        let gzipped = gzip(FILE.as_bytes());
        let (_, truncated) = read_all(&gzipped[..gzipped.len() - 12], ReadLimits::default());
        assert!(truncated.fault.is_some());
        assert_eq!(truncated.content_sha256, None);
        let (_, trailing) = read_all(format!("{FILE} x").as_bytes(), ReadLimits::default());
        assert_eq!(trailing.content_sha256, None);
        let stopped = read_log_file(FILE.as_bytes(), ReadLimits::default(), |_| {
            ControlFlow::Break(())
        });
        assert!(stopped.stopped);
        assert_eq!(stopped.content_sha256, None);
    }

    #[test]
    fn records_are_read_in_order_with_their_exact_text_plain_or_gzipped() {
        for bytes in [FILE.as_bytes().to_vec(), gzip(FILE.as_bytes())] {
            let (items, read) = read_all(&bytes, ReadLimits::default());
            assert_eq!(
                items,
                vec![
                    LogFileItem::Record {
                        index: 0,
                        json: r#"{"eventID":"a","n":{"x":[1,2]}}"#.into()
                    },
                    LogFileItem::Rejected {
                        index: 1,
                        reason: "record is not a JSON object but a number".into()
                    },
                    LogFileItem::Record {
                        index: 2,
                        json: r#"{"eventID":"b"}"#.into()
                    },
                ]
            );
            assert_eq!(read.records_read, 3);
            assert_eq!(read.fault, None);
        }
    }

    #[test]
    fn a_truncated_gzip_keeps_the_records_before_the_cut() {
        let mut records = Vec::new();
        for index in 0..2000 {
            records.push(format!(
                r#"{{"eventID":"id-{index}","eventTime":"2020-01-01T00:00:00Z","pad":"{}"}}"#,
                "x".repeat(index % 50)
            ));
        }
        let file = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let compressed = gzip(file.as_bytes());
        let truncated = &compressed[..compressed.len() / 2];
        let (items, read) = read_all(truncated, ReadLimits::default());
        assert!(
            matches!(read.fault, Some(LogFileFault::CorruptGzip { .. })),
            "{:?}",
            read.fault
        );
        assert!(!items.is_empty() && items.len() < 2000);
        for (position, item) in items.iter().enumerate() {
            let LogFileItem::Record { index, json } = item else {
                panic!("{item:?}")
            };
            assert_eq!(*index as usize, position);
            assert_eq!(json, &records[position]);
        }
        assert!(read.fault.unwrap().to_string().starts_with(&format!(
            "gzip stream is corrupt or truncated after {} records",
            items.len()
        )));
    }

    #[test]
    fn file_level_faults_are_named() {
        let cases: [(&[u8], &str); 8] = [
            (b"", "file is empty"),
            (b"   \n", "file is empty"),
            (b"hello", "file is not JSON: it starts with byte 0x68"),
            (b"[1,2]", "file is not a CloudTrail log file: its top level is an array, not an object"),
            (b"{\"x\":1}", "file has no Records array"),
            (b"{\"Records\":{\"a\":1}}", "Records is not an array: invalid type: map, expected an array of records at line 1 column 12"),
            (b"{\"Records\":[],\"Records\":[]}", "Records appears twice in the file"),
            (b"{\"Records\":[]} x", "data follows the log file object: trailing characters at line 1 column 16"),
        ];
        for (bytes, message) in cases {
            let (_, read) = read_all(bytes, ReadLimits::default());
            assert_eq!(
                read.fault.map(|fault| fault.to_string()).as_deref(),
                Some(message)
            );
        }
    }

    #[test]
    fn invalid_json_in_the_middle_keeps_the_records_before_it() {
        let (items, read) = read_all(
            br#"{"Records":[{"eventID":"a"},{"eventID":}]}"#,
            ReadLimits::default(),
        );
        assert_eq!(items.len(), 1);
        assert_eq!(
            read.fault.unwrap().to_string(),
            "file is not valid JSON after 1 records: expected value at line 1 column 40"
        );
    }

    #[test]
    fn oversized_records_are_rejected_alone_and_huge_ones_stop_the_file() {
        let big = format!(r#"{{"eventID":"big","pad":"{}"}}"#, "x".repeat(2000));
        let file = format!(r#"{{"Records":[{{"eventID":"a"}},{big},{{"eventID":"c"}}]}}"#);
        let limits = ReadLimits {
            max_record_bytes: 1000,
            ..ReadLimits::default()
        };
        let (items, read) = read_all(file.as_bytes(), limits);
        assert_eq!(read.fault, None);
        assert_eq!(
            items[1],
            LogFileItem::Rejected {
                index: 1,
                reason: format!(
                    "record is {} bytes, over the limit of 1000 bytes",
                    big.len()
                )
            }
        );
        assert!(matches!(items[2], LogFileItem::Record { index: 2, .. }));

        let huge = format!(
            r#"{{"Records":[{{"eventID":"a"}},{{"pad":"{}"}}]}}"#,
            "x".repeat(300_000)
        );
        let limits = ReadLimits {
            max_record_bytes_in_memory: 100_000,
            ..ReadLimits::default()
        };
        let (items, read) = read_all(huge.as_bytes(), limits);
        assert_eq!(items.len(), 1);
        assert_eq!(
            read.fault,
            Some(LogFileFault::RecordTooLarge {
                index: 1,
                limit: 100_000
            })
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_decompressed_limit() {
        let file = format!(r#"{{"Records":[{{"pad":"{}"}}]}}"#, "0".repeat(5_000_000));
        let compressed = gzip(file.as_bytes());
        let limits = ReadLimits {
            max_decompressed_bytes: 1_000_000,
            ..ReadLimits::default()
        };
        let (items, read) = read_all(&compressed, limits);
        assert!(items.is_empty());
        assert_eq!(
            read.fault,
            Some(LogFileFault::TooLarge { limit: 1_000_000 })
        );
    }

    #[test]
    fn the_consumer_can_stop_the_reading() {
        let mut seen = 0;
        let read = read_log_file(FILE.as_bytes(), ReadLimits::default(), |_| {
            seen += 1;
            ControlFlow::Break(())
        });
        assert_eq!(seen, 1);
        assert!(read.stopped);
        assert_eq!(read.fault, None);
    }
}
