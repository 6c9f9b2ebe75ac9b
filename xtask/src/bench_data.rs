//! The data the ingest and filter benchmarks share, generated from the shapes of the real
//! samples: each record is a real sample record with a fresh eventID, an eventTime spread over
//! 30 days, and one of 100 accounts and 4 regions; files hold R records (CloudTrail's own hold
//! tens to hundreds), in CloudTrail's key layout. Generation is deterministic and cached under
//! target/bench, so every benchmark of the same N and R reads the very same records.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::workspace_root;

const ACCOUNTS: usize = 100;
pub const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"];
const DAYS: u64 = 30;
/// 2026-10-01T00:00:00Z.
const FIRST_DAY_UNIX: u64 = 1_790_812_800;

/// Where in time a file's records lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTimes {
    /// Each record anywhere in the 30 days, whatever its file (the ingest benchmark's).
    SpreadOverDays,
    /// A file's records within this many minutes from a time of the file's own, as CloudTrail
    /// writes them (a file every 5 minutes per account and region): what the rollups see.
    FileWindowMinutes(u64),
    /// As CloudTrail delivers a busy organization: each account and region's files one after
    /// the other, this many minutes each, from the first day on (12 files an hour of 5
    /// minutes): what the archive's hourly objects see.
    ConsecutiveFiles(u64),
}

/// Generates (once) `events` records in files of `records_per_file`; returns the directory.
/// Data sets of different `seed`s share no eventID.
pub fn generate_bench_data(
    events: usize,
    records_per_file: usize,
    seed: u64,
) -> anyhow::Result<PathBuf> {
    generate_bench_data_with(events, records_per_file, seed, EventTimes::SpreadOverDays)
}

/// [`generate_bench_data`] with the records' times laid out as `times` says.
pub fn generate_bench_data_with(
    events: usize,
    records_per_file: usize,
    seed: u64,
    times: EventTimes,
) -> anyhow::Result<PathBuf> {
    let mut name = format!("target/bench/ingest-{events}-{records_per_file}");
    if seed != 0 {
        name.push_str(&format!("-seed{seed}"));
    }
    match times {
        EventTimes::SpreadOverDays => {}
        EventTimes::FileWindowMinutes(minutes) => name.push_str(&format!("-files-of-{minutes}min")),
        EventTimes::ConsecutiveFiles(minutes) => {
            name.push_str(&format!("-consecutive-files-of-{minutes}min"))
        }
    }
    let root = workspace_root().join(name);
    let data = root.join("AWSLogs");
    let complete = root.join("complete");
    if complete.exists() {
        eprintln!(
            "bench: using the data generated before in {}",
            root.display()
        );
        return Ok(data);
    }
    let _ = std::fs::remove_dir_all(&root);
    let samples = sample_records()?;
    eprintln!(
        "bench: generating {events} events from {} sample records into {}",
        samples.len(),
        root.display()
    );
    let files = events.div_ceil(records_per_file);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers = 2;
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let samples = &samples;
                let data = &data;
                scope.spawn(move || -> anyhow::Result<()> {
                    for file in (worker..files).step_by(workers) {
                        let first = file * records_per_file;
                        let last = (first + records_per_file).min(events);
                        write_bench_file(data, samples, file, first..last, seed, times)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a generator thread panicked"))??;
        }
        Ok(())
    })?;
    std::fs::write(&complete, b"")?;
    Ok(data)
}

fn write_bench_file(
    data: &Path,
    samples: &[Value],
    file: usize,
    records: std::ops::Range<usize>,
    seed: u64,
    times: EventTimes,
) -> anyhow::Result<()> {
    let account = format!("{:012}", 100_000_000_000 + (file % ACCOUNTS) as u64 * 7_919);
    let region = REGIONS[(file / ACCOUNTS) % REGIONS.len()];
    let mut generated = Vec::with_capacity(records.len());
    let mut newest = 0;
    for number in records {
        let mut record = samples[number % samples.len()].clone();
        let mixed = mix(number as u64);
        let time = match times {
            EventTimes::SpreadOverDays => FIRST_DAY_UNIX + mixed % (DAYS * 86_400),
            EventTimes::FileWindowMinutes(minutes) => {
                let window = minutes.max(1) * 60;
                let file_start =
                    FIRST_DAY_UNIX + mix(file as u64 ^ 0xf11e) % (DAYS * 86_400 - window);
                file_start + mixed % window
            }
            EventTimes::ConsecutiveFiles(minutes) => {
                let window = minutes.max(1) * 60;
                // The account and region repeat every ACCOUNTS × REGIONS files.
                let turn = (file / (ACCOUNTS * REGIONS.len())) as u64;
                FIRST_DAY_UNIX + (turn * window) % (DAYS * 86_400) + mixed % window
            }
        };
        newest = newest.max(time);
        let object = record
            .as_object_mut()
            .context("a sample record is not an object")?;
        object.insert(
            "eventID".into(),
            Value::from(event_id(number as u64 + (seed << 40))),
        );
        object.insert("eventTime".into(), Value::from(format_time(time)));
        object.insert("recipientAccountId".into(), Value::from(account.clone()));
        object.insert("awsRegion".into(), Value::from(region));
        generated.push(serde_json::to_string(&record)?);
    }
    let day = format_time(newest);
    let (date, _) = day.split_once('T').unwrap_or((&day, ""));
    let folder = data.join(format!(
        "{account}/CloudTrail/{region}/{}",
        date.replace('-', "/")
    ));
    std::fs::create_dir_all(&folder)?;
    let stamp = day.replace(['-', ':'], "");
    let name = format!(
        "{account}_CloudTrail_{region}_{}Z_{file:016}.json.gz",
        &stamp[..13]
    );
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(folder.join(name))?,
        flate2::Compression::fast(),
    );
    write!(encoder, "{{\"Records\":[{}]}}", generated.join(","))?;
    encoder.finish()?;
    Ok(())
}

/// Every record of the sample data that has an eventID and an eventTime.
pub fn sample_records() -> anyhow::Result<Vec<Value>> {
    let mut paths = Vec::new();
    collect_gz(&workspace_root().join("data/cloudtrail"), &mut paths)?;
    paths.sort();
    let mut records = Vec::new();
    for path in paths {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path)?).read_to_string(&mut text)?;
        let file: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        for record in file["Records"].as_array().cloned().unwrap_or_default() {
            if record.get("eventID").is_some() && record.get("eventTime").is_some() {
                records.push(record);
            }
        }
    }
    if records.is_empty() {
        bail!("no sample records under data/cloudtrail");
    }
    Ok(records)
}

/// Every `.json.gz` file under `directory`, depth first.
pub fn collect_gz(directory: &Path, paths: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_gz(&path, paths)?;
        } else if path.to_string_lossy().ends_with(".json.gz") {
            paths.push(path);
        }
    }
    Ok(())
}

/// SplitMix64: a fixed, well-spread sequence, so every run generates the same data.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A version-4-shaped GUID derived from `number`.
pub fn event_id(number: u64) -> String {
    let high = mix(number ^ 0x5555_5555);
    let low = mix(number);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        0x8000 | (low >> 48) & 0x3fff,
        low & 0xffff_ffff_ffff
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (civil-from-days, proleptic Gregorian).
pub fn format_time(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_times_and_ids_are_well_formed() {
        assert_eq!(format_time(FIRST_DAY_UNIX), "2026-10-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_411_800_311), "2014-09-27T06:45:11Z");
        let id = event_id(7);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(event_id(7), event_id(8));
    }
}
