//! `orgtrail`: the operator's command line over the aggregator's gRPC API.

mod alarm_arguments;
mod alarm_output;
mod alarms_command;
mod detection_arguments;
mod detection_output;
mod events_command;
mod finding_output;
mod findings_command;
mod grpc_call;
mod ingest_command;
mod insight_arguments;
mod insight_output;
mod insights_command;
mod keys_command;
mod notifications_command;
#[cfg(test)]
mod output_tests;
mod quarantine_command;
mod query_command;
mod retention_command;
mod rules_command;
mod sources_command;
mod time_argument;
mod tokens_command;
mod verify_aws;
mod verify_command;
mod verify_output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use orgtrail_client::{ClientSettings, TlsFiles, Transport};

/// orgtrail: one consolidated, searchable CloudTrail view of every account and region of an
/// AWS Organization.
#[derive(Parser)]
#[command(name = "orgtrail", version)]
struct Arguments {
    /// The aggregator's gRPC endpoint: host:port, or a URL (https://, or http:// with
    /// --insecure).
    #[arg(
        long,
        global = true,
        env = "ORGTRAIL_ENDPOINT",
        default_value = "127.0.0.1:50051"
    )]
    endpoint: String,
    /// The CA of the aggregator's certificate (PEM); without it, the public web PKI.
    #[arg(long, global = true, env = "ORGTRAIL_CA")]
    ca: Option<PathBuf>,
    /// A client certificate (PEM), for mutual TLS; with --key.
    #[arg(long, global = true, env = "ORGTRAIL_CERT")]
    cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, global = true, env = "ORGTRAIL_KEY")]
    key: Option<PathBuf>,
    /// The name the aggregator's certificate must carry, when not the endpoint's host.
    #[arg(long, global = true, env = "ORGTRAIL_TLS_DOMAIN")]
    tls_domain: Option<String>,
    /// A bearer token (`orgtrail tokens create`); better given as ORGTRAIL_TOKEN, which keeps
    /// it out of `ps`.
    #[arg(long, global = true, env = "ORGTRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Plaintext gRPC, without TLS: only for an aggregator started with --insecure.
    #[arg(long, global = true)]
    insecure: bool,
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
    /// Bearer tokens of API callers (admins only).
    #[command(subcommand)]
    Tokens(tokens_command::TokensCommand),
    /// The data keys that seal stored records: rotation, re-encryption (admins only).
    #[command(subcommand)]
    Keys(keys_command::KeysCommand),
    /// Input the aggregator refused: records and file faults, with the reason.
    #[command(subcommand)]
    Quarantine(quarantine_command::QuarantineCommand),
    /// Alarms on CloudWatch Logs metric filters (the CIS benchmark set built in): their
    /// definitions, states and history.
    #[command(subcommand)]
    Alarms(alarms_command::AlarmsCommand),
    /// Filter patterns tried on stored events, raising nothing.
    #[command(subcommand)]
    Filters(alarms_command::FiltersCommand),
    /// Where alarm and finding notifications go: webhooks, Slack, Amazon SNS.
    #[command(subcommand)]
    Destinations(notifications_command::DestinationsCommand),
    /// The notifications sent, pending and failed.
    #[command(subcommand)]
    Notifications(notifications_command::NotificationsCommand),
    /// Sigma rules evaluated on every newly stored event: SigmaHQ's CloudTrail rules built
    /// in, and the team's own; backtests of a rule file.
    #[command(subcommand)]
    Rules(rules_command::RulesCommand),
    /// Replays of the enabled rules over stored history.
    #[command(subcommand)]
    Detections(rules_command::DetectionsCommand),
    /// The findings queue: Sigma matches and alarm transitions, each with its rule's author;
    /// triage.
    #[command(subcommand)]
    Findings(findings_command::FindingsCommand),
    /// Suppressions: known-good activity whose matches are kept and counted, not notified.
    #[command(subcommand)]
    Suppressions(findings_command::SuppressionsCommand),
    /// orgtrail's own CloudTrail Insights: unusual rates of write calls and of errors per
    /// account, region and API; why each was raised; replays; the tuning per scope.
    #[command(subcommand)]
    Insights(insights_command::InsightsCommand),
    /// Verify a CloudTrail trail's log files against its digest files (signatures, the chain,
    /// every log file's SHA-256), straight from its S3 bucket. Exits 0 when clean, 1 when
    /// problems were found, 2 when nothing could be verified.
    Verify(verify_command::VerifyArguments),
    /// SQL over the whole history, as CloudTrail Lake answers it: one table, `events`, in
    /// Lake's columns, over the Parquet archive and the events not archived yet (reader role;
    /// read-only; every query audited).
    Query(query_command::QueryArguments),
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
    /// Only events whose log file was verified against its CloudTrail digest.
    #[arg(long)]
    pub verified_only: bool,
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
    let transport = if arguments.insecure {
        eprintln!("warning: plaintext gRPC (--insecure): credentials and events cross the network in the clear");
        Transport::Insecure
    } else {
        Transport::Tls(TlsFiles {
            ca: arguments.ca,
            cert: arguments.cert,
            key: arguments.key,
            domain: arguments.tls_domain,
        })
    };
    let settings = ClientSettings::new(arguments.endpoint, transport).with_token(arguments.token);
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
            Command::Tokens(command) => tokens_command::run_tokens(&settings, command).await,
            Command::Keys(command) => keys_command::run_keys(&settings, command).await,
            Command::Quarantine(command) => {
                quarantine_command::run_quarantine(&settings, command).await
            }
            Command::Alarms(command) => alarms_command::run_alarms(&settings, command).await,
            Command::Filters(command) => alarms_command::run_filters(&settings, command).await,
            Command::Destinations(command) => {
                notifications_command::run_destinations(&settings, command).await
            }
            Command::Notifications(command) => {
                notifications_command::run_notifications(&settings, command).await
            }
            Command::Rules(command) => rules_command::run_rules(&settings, command).await,
            Command::Detections(command) => rules_command::run_detections(&settings, command).await,
            Command::Findings(command) => findings_command::run_findings(&settings, command).await,
            Command::Suppressions(command) => {
                findings_command::run_suppressions(&settings, command).await
            }
            Command::Insights(command) => insights_command::run_insights(&settings, command).await,
            Command::Verify(arguments) => verify_command::run_verify(arguments).await,
            Command::Query(arguments) => query_command::run_query(&settings, arguments).await,
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
