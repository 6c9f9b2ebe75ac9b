//! Property-based fuzzing of what hostile input reaches first: the log file reader (any
//! bytes, gzip'd or not, and real CloudTrail files mutated byte by byte), the record parser,
//! and the lookup inputs (attributes, filters, page tokens). None may panic or hang; what the
//! reader yields must account for what it read.
//!
//! `PROPTEST_CASES=N cargo test --release -p orgtrail-domain --test fuzz` runs N inputs per
//! property (256 by default, which is what `cargo xtask test` runs).

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use orgtrail_domain::log_file::{read_log_file, LogFileItem, ReadLimits};
use orgtrail_domain::lookup::{
    decode_page_token, LookupAttribute, LookupAttributeKey, LookupParameters, LookupQuery,
};
use orgtrail_domain::parse_record;
use proptest::prelude::*;

fn samples() -> Vec<Vec<u8>> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/cloudtrail/aws-docs-examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(".json.gz"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
                .read_to_end(&mut text)
                .unwrap();
            text
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Reads a file, parses every record it yields, and checks the reader's accounting.
fn read_and_parse(bytes: &[u8]) {
    let limits = ReadLimits {
        max_decompressed_bytes: 1 << 20,
        max_record_bytes: 64 << 10,
        max_record_bytes_in_memory: 256 << 10,
    };
    let mut indexes = Vec::new();
    let read = read_log_file(bytes, limits, |item| {
        match item {
            LogFileItem::Record { index, json } => {
                indexes.push(index);
                let _ = parse_record(json, None);
            }
            LogFileItem::Rejected { index, reason } => {
                assert!(!reason.is_empty());
                indexes.push(index);
            }
        }
        ControlFlow::Continue(())
    });
    assert!(
        indexes.windows(2).all(|pair| pair[0] < pair[1]),
        "{indexes:?}"
    );
    assert_eq!(read.records_read as usize, indexes.len());
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip(at, byte)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'{'),
                    Just(b'}'),
                    Just(b'['),
                    Just(b']'),
                    Just(b'"'),
                    Just(b'\\'),
                    Just(b','),
                    Just(b':'),
                    Just(0u8),
                    Just(0xff),
                    any::<u8>()
                ],
                1..16
            )
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..64).prop_map(|(at, length)| Mutation::Delete(at, length)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        match mutation {
            Mutation::Flip(at, byte) => {
                let at = at % bytes.len();
                bytes[at] = *byte;
            }
            Mutation::Truncate(at) => bytes.truncate(at % bytes.len()),
            Mutation::Insert(at, insert) => {
                let at = at % bytes.len();
                bytes.splice(at..at, insert.iter().copied());
            }
            Mutation::Delete(at, length) => {
                let at = at % bytes.len();
                let end = (at + length).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

proptest! {
    #[test]
    fn the_reader_survives_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048), compress in any::<bool>()) {
        let input = if compress { gzip(&bytes) } else { bytes };
        read_and_parse(&input);
    }

    #[test]
    fn the_reader_and_parser_survive_mutated_real_files(
        file in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
        compress in any::<bool>(),
    ) {
        let samples = samples();
        let original = samples[file.index(samples.len())].clone();
        let mutated = apply(original, &mutations);
        let input = if compress { gzip(&mutated) } else { mutated };
        read_and_parse(&input);
    }

    #[test]
    fn mutated_gzip_streams_end_in_a_fault_not_a_panic(
        file in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let samples = samples();
        let compressed = gzip(&samples[file.index(samples.len())]);
        read_and_parse(&apply(compressed, &mutations));
    }

    #[test]
    fn lookup_inputs_are_validated_never_panic(
        key in 0usize..8,
        value in ".{0,300}",
        accounts in prop::collection::vec(".{0,20}", 0..4),
        regions in prop::collection::vec(".{0,20}", 0..4),
        categories in prop::collection::vec(".{0,16}", 0..3),
        max_results in any::<u32>(),
        start in any::<i64>(),
        span in any::<i64>(),
        token in ".{0,200}",
    ) {
        let keys = LookupAttributeKey::ALL;
        let attributes: Vec<LookupAttribute> =
            LookupAttribute::new(keys[key], &value).into_iter().collect();
        let start_time = Utc.timestamp_opt(start % 10_000_000_000, 0).single();
        let end_time = start_time.and_then(|start| start.checked_add_signed(chrono::Duration::seconds(span % 10_000_000_000)));
        let query = LookupQuery::new(LookupParameters {
            start_time,
            end_time,
            attributes,
            accounts,
            regions,
            categories,
            verified_only: max_results % 2 == 0,
            max_results,
        });
        if let Ok(query) = query {
            let _ = decode_page_token(&token, &query);
        }
    }
}
