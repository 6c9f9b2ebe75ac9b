//! `orgtrail`: the operator's command line over the aggregator's gRPC API.

mod events_command;
mod ingest_command;
mod retention_command;
mod sources_command;
mod time_argument;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use orgtrail_client::ClientSettings;

/// orgtrail: one consolidated, searchable CloudTrail view of every account and region of an
/// AWS Organization.
#[derive(Parser)]
#[command(name = "orgtrail", version)]
struct Arguments {
    /// The aggregator's gRPC endpoint.
    #[arg(
        long,
        global = true,
        env = "ORGTRAIL_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    endpoint: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send local CloudTrail log files (plain or gzip'd, or directories of .json.gz files) to the
    /// aggregator: a backfill. Exits 0 when every file was delivered cleanly, 2 when some
    /// records or files were rejected as bad input, 1 when files could not be delivered.
    Ingest(IngestArguments),
    /// Look up and summarise stored events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The collectors' sources: what each account and region delivered last, errors, lag.
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Retention policies: how long each kind of event is kept; enforcement.
    #[command(subcommand)]
    Retention(retention_command::RetentionCommand),
    /// Legal holds: nothing they cover is deleted.
    #[command(subcommand)]
    Holds(retention_command::HoldsCommand),
    /// The audit log of policy and hold changes and enforcement runs.
    #[command(subcommand)]
    Audit(retention_command::AuditCommand),
}

#[derive(Subcommand)]
pub enum SourcesCommand {
    /// Status per source, account and region.
    List(SourcesListArguments),
}

#[derive(Args)]
pub struct SourcesListArguments {
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub output: SummaryFormat,
}

#[derive(Args)]
pub struct IngestArguments {
    /// Log files, or directories searched recursively for *.json.gz files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The source name recorded in the file ledger.
    #[arg(long, default_value = "local")]
    pub source: String,
    /// Ingest streams side by side.
    #[arg(long, default_value_t = 4)]
    pub streams: usize,
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Events newest first, filtered like CloudTrail's Event history, across every account.
    Lookup(LookupArguments),
    /// Event counts per account, region and category.
    Summary(SummaryArguments),
}

#[derive(Args)]
pub struct LookupArguments {
    /// From (inclusive): RFC 3339, a date, or a span before now (7d, 12h).
    #[arg(long)]
    pub start: Option<String>,
    /// To (inclusive), in the same forms.
    #[arg(long)]
    pub end: Option<String>,
    /// Only these accounts (repeatable).
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// Only these regions (repeatable).
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Only these categories: Management, Data, Insight, NetworkActivity (repeatable).
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// A lookup attribute Key=Value, keys as CloudTrail spells them: EventId, EventName,
    /// ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId (repeatable;
    /// all must match).
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    pub attributes: Vec<String>,
    /// At most this many events (default 50; every match for jsonl).
    #[arg(long)]
    pub max: Option<u64>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Args)]
pub struct SummaryArguments {
    #[arg(long)]
    pub start: Option<String>,
    #[arg(long)]
    pub end: Option<String>,
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub output: SummaryFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line per event.
    Table,
    /// A JSON array of events: their searchable fields and their original record.
    Json,
    /// The original record of every matching event, one per line, across all pages.
    Jsonl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Table,
    Json,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let settings = ClientSettings::new(arguments.endpoint);
    let outcome = runtime.block_on(async {
        match arguments.command {
            Command::Ingest(ingest) => ingest_command::run_ingest(&settings, ingest).await,
            Command::Events(EventsCommand::Lookup(lookup)) => {
                events_command::run_lookup(&settings, lookup).await
            }
            Command::Events(EventsCommand::Summary(summary)) => {
                events_command::run_summary(&settings, summary).await
            }
            Command::Sources(SourcesCommand::List(list)) => {
                sources_command::run_sources_list(&settings, list).await
            }
            Command::Retention(command) => {
                retention_command::run_retention(&settings, command).await
            }
            Command::Holds(command) => retention_command::run_holds(&settings, command).await,
            Command::Audit(command) => retention_command::run_audit(&settings, command).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
