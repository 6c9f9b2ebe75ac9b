//! `orgtrail-sample-organization`: puts the sample organization (or a generated one) into a
//! running moto server and writes a collector configuration that reads it. Used by
//! `cargo xtask demo` and `cargo xtask bench collect`, with the same code the tests use.
//!
//! ```text
//! orgtrail-sample-organization --moto URL --aggregator URL --config-out FILE
//!                              [--generated ACCOUNTS REGIONS FILES_PER_REGION RECORDS_PER_FILE LARGE_FILE_RECORDS]
//! ```

use anyhow::{bail, Context};
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::organization::SampleOrganization;

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| orgtrail_tests::flag_value(&arguments, flag);
    let moto = MotoServer::attach(&value("--moto")?).map_err(anyhow::Error::msg)?;
    let aggregator = value("--aggregator")?;
    let config_out = value("--config-out")?;
    let (organization, config) = match arguments
        .iter()
        .position(|argument| argument == "--generated")
    {
        Some(position) => {
            let numbers: Vec<usize> = arguments[position + 1..]
                .iter()
                .take(5)
                .map(|number| number.parse())
                .collect::<Result<_, _>>()
                .context("--generated takes ACCOUNTS REGIONS FILES_PER_REGION RECORDS_PER_FILE LARGE_FILE_RECORDS")?;
            let [accounts, regions, files, records, large] = numbers[..] else {
                bail!("--generated takes ACCOUNTS REGIONS FILES_PER_REGION RECORDS_PER_FILE LARGE_FILE_RECORDS");
            };
            if regions == 0 || regions > REGIONS.len() {
                bail!("REGIONS must be 1 to {}", REGIONS.len());
            }
            let organization = SampleOrganization::seed_generated(
                &moto,
                accounts,
                &REGIONS[..regions],
                files,
                records,
                large,
            )
            .await;
            let config = organization.account_trails_config("collector-1", &aggregator, &[]);
            (organization, config)
        }
        None => {
            let organization = SampleOrganization::seed(&moto).await;
            let config = organization.collector_config("collector-1", &aggregator, &[]);
            (organization, config)
        }
    };
    std::fs::write(&config_out, config).with_context(|| format!("cannot write {config_out}"))?;
    let records: usize = organization
        .files
        .iter()
        .map(|file| file.records.len())
        .sum();
    let largest = organization
        .files
        .iter()
        .map(|file| file.bytes.len())
        .max()
        .unwrap_or(0);
    println!(
        "sample organization: {} accounts, {} log files, {} records, the largest file {:.1} MB compressed",
        organization.accounts.len(),
        organization.files.len(),
        records,
        largest as f64 / 1e6
    );
    Ok(())
}
