//! `orgtrail rules list|show|add|enable|disable|delete|test` and `orgtrail detections replay`:
//! the client of `RuleService` — Sigma rules (SigmaHQ's CloudTrail rules built in, and the
//! team's own), backtests of a rule file over stored events, and replays of the enabled rules
//! over a window of event time. `detection_arguments.rs` turns flags into requests,
//! `detection_output.rs` prints the answers.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::rule_service_client::RuleServiceClient;
use orgtrail_client::{connect, AuthChannel, ClientSettings};

use crate::detection_arguments::{
    read_rule_files, replay_request, test_rule_request, AddRulesArguments, ReplayArguments,
    TestRuleArguments,
};
use crate::detection_output::{
    added_rules_json, added_rules_text, print_replay, print_rule, print_rule_test, print_rules,
};
use crate::grpc_call::{status_error, with_actor};
use crate::retention_command::OutputArguments;
use crate::SummaryFormat;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Every Sigma rule: SigmaHQ's built-in CloudTrail rules and those added, with level,
    /// author, origin, whether enabled, version and ATT&CK techniques.
    List(OutputArguments),
    /// One rule, every field, then its YAML.
    Show {
        /// The Sigma rule's id.
        rule_id: String,
        /// An earlier version.
        #[arg(long, value_name = "N")]
        version: Option<i32>,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// Adds Sigma rules, or new versions of rules whose id exists. All or nothing: a file
    /// that does not parse, is a correlation, or reads a field CloudTrail records never have
    /// is refused, naming the file and the reason, and nothing is added.
    Add(AddRulesArguments),
    /// Evaluates a rule again on newly stored events (a new version).
    Enable {
        /// The Sigma rule's id.
        rule_id: String,
    },
    /// Stops evaluating a rule (a new version; its findings stay).
    Disable {
        /// The Sigma rule's id.
        rule_id: String,
    },
    /// Removes a rule added by the team (a built-in rule can be disabled, not deleted); its
    /// versions and findings stay.
    Delete {
        /// The Sigma rule's id.
        rule_id: String,
    },
    /// Runs a rule file over stored events, raising nothing: the matches per day, the first
    /// matching events, and how many events were scanned and matched — a backtest before
    /// `rules add`.
    Test(TestRuleArguments),
}

#[derive(Subcommand)]
pub enum DetectionsCommand {
    /// Raises what live ingest would have raised over a window of event time with the rules
    /// and suppressions as they are now: findings not raised before (a second replay raises
    /// none). Prints the events scanned, matches, findings raised and suppressed.
    Replay(ReplayArguments),
}

pub async fn run_rules(
    settings: &ClientSettings,
    command: RulesCommand,
) -> anyhow::Result<ExitCode> {
    // Files are read before connecting: one that cannot be read stops everything.
    let (files, test_yaml) = match &command {
        RulesCommand::Add(arguments) => (read_rule_files(&arguments.paths)?, None),
        RulesCommand::Test(arguments) => {
            let yaml = std::fs::read_to_string(&arguments.file)
                .with_context(|| format!("cannot read {}", arguments.file.display()))?;
            (Vec::new(), Some(yaml))
        }
        _ => (Vec::new(), None),
    };
    let mut client = rule_client(settings).await?;
    match command {
        RulesCommand::List(output) => {
            let rules = client
                .list_rules(with_actor(pb::ListRulesRequest {}))
                .await
                .map_err(status_error("cannot list rules"))?
                .into_inner()
                .rules;
            print_rules(&rules, output.output)?;
        }
        RulesCommand::Show {
            rule_id,
            version,
            output,
        } => {
            let request = pb::GetRuleRequest {
                rule_id,
                version: version.unwrap_or(0),
            };
            let rule = client
                .get_rule(with_actor(request))
                .await
                .map_err(status_error("cannot read the rule"))?
                .into_inner();
            print_rule(&rule, output.output)?;
        }
        RulesCommand::Add(arguments) => {
            let request = pb::AddRulesRequest {
                files,
                disabled: arguments.disabled,
            };
            let response = client
                .add_rules(with_actor(request))
                .await
                .map_err(status_error("cannot add the rules"))?
                .into_inner();
            match arguments.output.output {
                SummaryFormat::Table => print!("{}", added_rules_text(&response)),
                SummaryFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&added_rules_json(&response))?
                ),
            }
        }
        RulesCommand::Enable { rule_id } => {
            let rule = client
                .enable_rule(with_actor(pb::EnableRuleRequest { rule_id }))
                .await
                .map_err(status_error("cannot enable the rule"))?
                .into_inner();
            println!(
                "rule {} ({}) enabled, version {}",
                rule.rule_id, rule.title, rule.version
            );
        }
        RulesCommand::Disable { rule_id } => {
            let rule = client
                .disable_rule(with_actor(pb::DisableRuleRequest { rule_id }))
                .await
                .map_err(status_error("cannot disable the rule"))?
                .into_inner();
            println!(
                "rule {} ({}) disabled, version {}",
                rule.rule_id, rule.title, rule.version
            );
        }
        RulesCommand::Delete { rule_id } => {
            client
                .delete_rule(with_actor(pb::DeleteRuleRequest {
                    rule_id: rule_id.clone(),
                }))
                .await
                .map_err(status_error("cannot delete the rule"))?;
            println!("rule {rule_id} deleted");
        }
        RulesCommand::Test(arguments) => {
            let request = test_rule_request(&arguments, test_yaml.unwrap_or_default(), Utc::now())?;
            let response = client
                .test_rule(with_actor(request))
                .await
                .map_err(|status| {
                    anyhow::anyhow!(
                        "cannot test {}: {}",
                        arguments.file.display(),
                        status.message()
                    )
                })?
                .into_inner();
            print_rule_test(&response, arguments.output.output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_detections(
    settings: &ClientSettings,
    command: DetectionsCommand,
) -> anyhow::Result<ExitCode> {
    let DetectionsCommand::Replay(arguments) = command;
    let request = replay_request(&arguments, Utc::now())?;
    let report = rule_client(settings)
        .await?
        .replay_detections(with_actor(request))
        .await
        .map_err(status_error("cannot replay the detections"))?
        .into_inner();
    print_replay(&report, arguments.output.output)?;
    Ok(ExitCode::SUCCESS)
}

async fn rule_client(settings: &ClientSettings) -> anyhow::Result<RuleServiceClient<AuthChannel>> {
    Ok(RuleServiceClient::new(connect(settings).await?))
}
