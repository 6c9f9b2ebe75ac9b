//! `cargo xtask demo`: orgtrail's main job on a local sample organization. moto's S3/STS server
//! stands in for AWS, seeded with an organization built from the real sample records (three
//! member accounts with two regions each, their account trails and an organization trail
//! holding the same files); the collector assumes a role into each account and reads it; the
//! aggregator dedupes and stores everything in a throwaway PostgreSQL. Then the consolidated
//! view: source status, a summary per account, region and category, and lookups; then the
//! alarms on those records and a notification end to end (`demo_alarms`); then the Sigma
//! rules' findings on them, triage, a rule of the team's own and replays (`demo_findings`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::demo_alarms::{show_alarms, show_notification, EVALUATION_INTERVAL_SECONDS};
use crate::demo_cloudtrail_api::show_cloudtrail_api;
use crate::demo_findings::show_findings;
use crate::moto::ensure_moto_server;
use crate::postgres::ThrowawayPostgres;
use crate::processes::{
    build_binaries, start_aggregator, start_moto, Profile, Security, COLLECTOR_ENVIRONMENT,
};

/// The lookups shown, as (what it shows, `orgtrail events lookup` arguments).
const LOOKUPS: &[(&str, &[&str])] = &[
    (
        "Console sign-ins anywhere in the organization (CloudTrail's EventName attribute)",
        &["--attr", "EventName=ConsoleLogin", "--max", "10"],
    ),
    (
        "What the root user did, in every account (Username)",
        &["--attr", "Username=root", "--max", "5"],
    ),
    (
        "Write calls to IAM in one account, beyond CloudTrail: attributes combined with a filter",
        &[
            "--attr",
            "EventSource=iam.amazonaws.com",
            "--attr",
            "ReadOnly=false",
            "--account",
            "123837392027",
            "--max",
            "8",
        ],
    ),
    (
        "Activity on S3 buckets (ResourceType)",
        &["--attr", "ResourceType=AWS::S3::Bucket", "--max", "5"],
    ),
    (
        "Insights events (read from the CloudTrail-Insight folder)",
        &["--category", "Insight"],
    ),
    (
        "One event's original record, byte for byte (EventId, --output jsonl)",
        &[
            "--attr",
            "EventId=293ba626-3be5-4a26-ab1b-0f4c54f49959",
            "--output",
            "jsonl",
        ],
    ),
];

pub fn run_demo(interrupted: &AtomicBool) -> anyhow::Result<()> {
    let bin_dir = build_binaries(Profile::Debug)?;
    let moto_server = ensure_moto_server()?;
    let work = std::env::temp_dir().join(format!("orgtrail-demo-{}", crate::unique_suffix()));
    std::fs::create_dir_all(&work)?;
    let postgres = ThrowawayPostgres::start()?;
    let (_moto, moto_endpoint) = start_moto(&moto_server, &work.join("moto.log"))?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let security = Security::Tls(&pki);
    let geoip_database = crate::geoip::ensure_geoip_database()?;
    let geoip_file = geoip_database.display().to_string();
    // Alarms are evaluated every minute by default; the demo has no minute to spare.
    let evaluation_interval = EVALUATION_INTERVAL_SECONDS.to_string();
    // The CloudTrail-compatible endpoint on a port of its own.
    let cloudtrail_api_listen = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port")?
            .port()
    );
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("postgres"),
        &work.join("aggregator.log"),
        &[
            (
                "ORGTRAIL_ALARMS__EVALUATION_INTERVAL_SECONDS",
                &evaluation_interval,
            ),
            ("ORGTRAIL_CLOUDTRAIL_API__LISTEN", &cloudtrail_api_listen),
            ("ORGTRAIL_QUERY__GEOIP_FILE", &geoip_file),
        ],
        security,
    )?;
    let endpoint = security.endpoint(address);
    heading(&format!(
        "orgtrail demo: aggregator at {endpoint}, PostgreSQL at {}, AWS (moto) at {moto_endpoint}; logs in {}",
        postgres.url("postgres"),
        work.display()
    ));

    heading("1. A sample organization in S3, built from real CloudTrail files (2014-2024)");
    let collector_config = work.join("collector.toml");
    let seeded = Command::new(bin_dir.join("orgtrail-sample-organization"))
        .args([
            "--moto",
            &moto_endpoint,
            "--aggregator",
            &endpoint,
            "--config-out",
        ])
        .arg(&collector_config)
        .env("ORGTRAIL_TEST_PKI", &pki.dir)
        .status()
        .context("cannot run orgtrail-sample-organization")?;
    if !seeded.success() {
        bail!("the sample organization could not be put into moto");
    }
    println!("three member accounts × two regions, each with its own trail bucket (AWSLogs/<account>/…),");
    println!("and an organization trail bucket holding the same files (AWSLogs/o-orgtrail001/<account>/…)");

    heading(
        "2. The collector: one pass, assuming a role into each account (orgtrail-collector --once)",
    );
    collect_once(&bin_dir, &collector_config, &work)?;
    check_interrupted(interrupted)?;

    heading("3. A second pass: listing resumes where the ledger left off; nothing is new");
    collect_once(&bin_dir, &collector_config, &work)?;
    check_interrupted(interrupted)?;

    let ingest_finished = Instant::now();

    let cli = DemoCli {
        bin_dir: &bin_dir,
        endpoint: &endpoint,
        security,
    };
    heading("4. Source status per account and region: last file taken, lag, freshness, errors");
    cli.show(&["sources", "list"])?;

    heading("5. The consolidated view, per account, region and event category (the organization trail's copies stored once)");
    cli.show(&["events", "summary"])?;

    let mut step = 5;
    for (title, arguments) in LOOKUPS {
        check_interrupted(interrupted)?;
        step += 1;
        heading(&format!("{step}. {title}"));
        let mut command = vec!["events", "lookup"];
        command.extend_from_slice(arguments);
        cli.show(&command)?;
    }
    check_interrupted(interrupted)?;
    step += 1;
    show_cloudtrail_api(&cli, &cloudtrail_api_listen, &pki, step)?;
    check_interrupted(interrupted)?;
    step += 1;
    show_sql(&cli, step)?;
    check_interrupted(interrupted)?;
    let step = show_alarms(&cli, ingest_finished, step + 1, interrupted)?;
    check_interrupted(interrupted)?;
    let step = step + 1;
    show_notification(&cli, step)?;
    check_interrupted(interrupted)?;
    show_findings(&cli, &work, step + 1, interrupted)?;
    aggregator.stop();
    heading("Done: the aggregator drained and stopped; PostgreSQL and moto are removed.");
    Ok(())
}

/// SQL over the whole history: two questions of `docs/sql-cookbook.md`.
fn show_sql(cli: &DemoCli<'_>, step: usize) -> anyhow::Result<()> {
    heading(&format!(
        "{step}. SQL over the whole history (docs/sql-cookbook.md): console sign-ins by country \
         (GeoIP: IP Geolocation by DB-IP, CC BY 4.0), and the CIS question on unauthorized calls"
    ));
    cli.show(&[
        "query",
        "SELECT ip_country(sourceipaddress) AS country, count(*) AS logins, \
         sum(CASE WHEN json_extract_scalar(responseelements, '$.ConsoleLogin') = 'Failure' \
         THEN 1 ELSE 0 END) AS failures, count(DISTINCT useridentity.arn) AS principals \
         FROM events WHERE eventname = 'ConsoleLogin' \
         GROUP BY ip_country(sourceipaddress) ORDER BY logins DESC, country",
    ])?;
    cli.show(&[
        "query",
        "SELECT recipientaccountid AS account, errorcode, count(*) AS calls \
         FROM events WHERE errorcode LIKE '%UnauthorizedOperation' \
         OR (errorcode LIKE 'AccessDenied%' AND sourceipaddress <> 'delivery.logs.amazonaws.com' \
         AND eventname <> 'HeadBucket') \
         GROUP BY recipientaccountid, errorcode ORDER BY calls DESC, account, errorcode",
    ])
}

/// Runs one collector pass; its summary table on stdout, its log in the work folder.
fn collect_once(
    bin_dir: &std::path::Path,
    config: &std::path::Path,
    work: &std::path::Path,
) -> anyhow::Result<()> {
    println!("$ orgtrail-collector --config collector.toml --once");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(work.join("collector.log"))?;
    let status = Command::new(bin_dir.join("orgtrail-collector"))
        .arg("--config")
        .arg(config)
        .arg("--once")
        .envs(COLLECTOR_ENVIRONMENT)
        .stderr(Stdio::from(log))
        .status()
        .context("cannot run orgtrail-collector")?;
    if !status.success() {
        bail!(
            "the collector's pass failed ({status}); see {}",
            work.join("collector.log").display()
        );
    }
    Ok(())
}

/// The `orgtrail` command line, as the demo's admin.
pub struct DemoCli<'a> {
    pub bin_dir: &'a Path,
    pub endpoint: &'a str,
    pub security: Security<'a>,
}

impl DemoCli<'_> {
    /// Prints `$ orgtrail ARGS…` and runs it, its output on the terminal; fails unless it
    /// succeeds.
    pub fn show(&self, arguments: &[&str]) -> anyhow::Result<()> {
        println!("$ orgtrail {}", shell_words(arguments));
        let status = self
            .command(arguments)
            .status()
            .context("cannot run orgtrail")?;
        if !status.success() {
            bail!("orgtrail {} failed ({status})", shell_words(arguments));
        }
        Ok(())
    }

    /// As [`DemoCli::show`], run in `directory` (so the paths shown are short).
    pub fn show_in(&self, directory: &Path, arguments: &[&str]) -> anyhow::Result<()> {
        println!("$ orgtrail {}", shell_words(arguments));
        let status = self
            .command(arguments)
            .current_dir(directory)
            .status()
            .context("cannot run orgtrail")?;
        if !status.success() {
            bail!("orgtrail {} failed ({status})", shell_words(arguments));
        }
        Ok(())
    }

    /// As [`DemoCli::show`], only the first `lines` lines of its output shown and the rest
    /// counted as `what`.
    pub fn show_head(&self, arguments: &[&str], lines: usize, what: &str) -> anyhow::Result<()> {
        println!("$ orgtrail {}", shell_words(arguments));
        let output = self.output(arguments)?;
        for line in output.lines().take(lines) {
            println!("{line}");
        }
        let rest = output.lines().count().saturating_sub(lines);
        if rest > 0 {
            println!("… ({rest} more {what})");
        }
        Ok(())
    }

    /// As [`DemoCli::show`], its standard error on the terminal and its standard output
    /// returned (e.g. a secret printed once).
    pub fn show_capturing_stdout(&self, arguments: &[&str]) -> anyhow::Result<String> {
        println!("$ orgtrail {}", shell_words(arguments));
        self.output(arguments)
    }

    /// Runs `orgtrail ARGS…`, its standard error on the terminal; its standard output.
    pub fn output(&self, arguments: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command(arguments)
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run orgtrail")?;
        if !output.status.success() {
            bail!(
                "orgtrail {} failed ({})",
                shell_words(arguments),
                output.status
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn command(&self, arguments: &[&str]) -> Command {
        let mut command = self.security.orgtrail(self.bin_dir, self.endpoint);
        command.args(arguments);
        command
    }
}

/// Arguments as a shell would take them back: quoted when they hold anything but plain
/// word characters.
fn shell_words(arguments: &[&str]) -> String {
    arguments
        .iter()
        .map(|argument| {
            let plain = !argument.is_empty()
                && argument
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.,/:=@+".contains(c));
            if plain {
                argument.to_string()
            } else {
                format!("'{}'", argument.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn heading(text: &str) {
    println!("\n=== {text}");
}

pub use crate::check_interrupted;
