//! `orgtrail destinations list|create|delete|test` and `orgtrail notifications list`: where
//! alarm and finding notifications go (webhooks, Slack, Amazon SNS) and what was sent there. A webhook's
//! signing secret is printed once, when it is made, and never again.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::notification_service_client::NotificationServiceClient;
use orgtrail_client::table::{render_table, truncate_cell};
use orgtrail_client::{connect, AuthChannel, ClientSettings};
use serde_json::{json, Value};

use crate::detection_arguments::FindingLevel;
use crate::events_command::{format_optional_time, format_time, or_dash};
use crate::grpc_call::{status_error, with_actor};
use crate::retention_command::OutputArguments;
use crate::SummaryFormat;

/// Notifications asked for per call while paging (the API's maximum).
const NOTIFICATION_PAGE_SIZE: u32 = 1000;
/// Characters of a delivery error shown in `notifications list`.
const ERROR_COLUMN_CHARS: usize = 60;

#[derive(Subcommand)]
pub enum DestinationsCommand {
    /// Where notifications go: kind, target (never a URL's path or secrets), whether it takes
    /// every alarm, and the findings it takes.
    List(OutputArguments),
    /// A new destination. A webhook's signing secret is printed once, on standard output;
    /// what was made goes to standard error then.
    Create(CreateDestinationArguments),
    /// Removes a destination.
    Delete {
        /// The destination's name.
        name: String,
    },
    /// Sends a test message and waits (bounded) for its delivery; exits 1 unless it was
    /// delivered.
    Test {
        /// The destination's name.
        name: String,
        #[command(flatten)]
        output: OutputArguments,
    },
}

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// Notifications newest first: where each went, about what, its state, attempts and last
    /// error.
    List {
        /// Only the failed ones: those given up on after the configured attempts.
        #[arg(long)]
        failed: bool,
        /// At most this many notifications (fetched page by page).
        #[arg(long, default_value_t = 50)]
        max: u32,
        #[command(flatten)]
        output: OutputArguments,
    },
}

#[derive(Args)]
pub struct CreateDestinationArguments {
    /// The destination's name: letters, digits and - _ . (1 to 64).
    pub name: String,
    #[command(flatten)]
    pub target: DestinationTargetArguments,
    /// Takes the state changes of every alarm (else only of alarms naming it with
    /// --destination).
    #[arg(long)]
    pub every_alarm: bool,
    /// Takes the findings (Sigma matches) at or above this level; without it, none.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub finding_level: Option<FindingLevel>,
    #[command(flatten)]
    pub output: OutputArguments,
}

/// Exactly one: the kind of destination and where it goes. A URL is a credential (whoever has
/// it can post there) and a command line is visible in `ps`: the `…-from-env` forms keep it out.
#[derive(Args, Default)]
#[group(required = true, multiple = false)]
pub struct DestinationTargetArguments {
    /// A webhook: a JSON POST, signed with HMAC-SHA256, to this URL (https, or http to a
    /// loopback address). Visible in `ps`: prefer --webhook-from-env.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// A webhook whose URL is in this environment variable.
    #[arg(long, value_name = "VAR")]
    pub webhook_from_env: Option<String>,
    /// A Slack incoming webhook URL. Visible in `ps`: prefer --slack-from-env.
    #[arg(long, value_name = "URL")]
    pub slack: Option<String>,
    /// A Slack incoming webhook whose URL is in this environment variable.
    #[arg(long, value_name = "VAR")]
    pub slack_from_env: Option<String>,
    /// An Amazon SNS topic, by ARN.
    #[arg(long, value_name = "TOPIC_ARN")]
    pub sns: Option<String>,
}

/// The request of `destinations create`; `environment` reads a variable (the process's
/// environment, or a test's).
pub fn create_destination_request(
    arguments: &CreateDestinationArguments,
    environment: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<pb::CreateDestinationRequest> {
    let from_env = |flag: &str, variable: &str| -> anyhow::Result<String> {
        let value = environment(variable)
            .with_context(|| format!("{flag}: the environment variable {variable} is not set"))?;
        let value = value.trim();
        if value.is_empty() {
            bail!("{flag}: the environment variable {variable} is empty");
        }
        Ok(value.to_string())
    };
    let target = &arguments.target;
    let (kind, target) = match (
        &target.webhook,
        &target.webhook_from_env,
        &target.slack,
        &target.slack_from_env,
        &target.sns,
    ) {
        (Some(url), None, None, None, None) => ("webhook", url.clone()),
        (None, Some(variable), None, None, None) => {
            ("webhook", from_env("--webhook-from-env", variable)?)
        }
        (None, None, Some(url), None, None) => ("slack", url.clone()),
        (None, None, None, Some(variable), None) => {
            ("slack", from_env("--slack-from-env", variable)?)
        }
        (None, None, None, None, Some(topic_arn)) => ("sns", topic_arn.clone()),
        _ => bail!(
            "give exactly one of --webhook, --webhook-from-env, --slack, --slack-from-env, --sns"
        ),
    };
    Ok(pb::CreateDestinationRequest {
        name: arguments.name.clone(),
        kind: kind.to_string(),
        target,
        every_alarm: arguments.every_alarm,
        finding_level: arguments
            .finding_level
            .map(|level| level.as_str().to_string())
            .unwrap_or_default(),
    })
}

pub async fn run_destinations(
    settings: &ClientSettings,
    command: DestinationsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        DestinationsCommand::List(output) => {
            let destinations = notification_client(settings)
                .await?
                .list_destinations(with_actor(pb::ListDestinationsRequest {}))
                .await
                .map_err(status_error("cannot list destinations"))?
                .into_inner()
                .destinations;
            match output.output {
                SummaryFormat::Table => print!("{}", destinations_table(&destinations)),
                SummaryFormat::Json => {
                    let rows: Vec<Value> = destinations.iter().map(destination_json).collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
            }
        }
        DestinationsCommand::Create(arguments) => {
            let request =
                create_destination_request(&arguments, |variable| std::env::var(variable).ok())?;
            let response = notification_client(settings)
                .await?
                .create_destination(with_actor(request))
                .await
                .map_err(status_error("cannot create the destination"))?
                .into_inner();
            print_created_destination(&response, arguments.output.output)?;
        }
        DestinationsCommand::Delete { name } => {
            notification_client(settings)
                .await?
                .delete_destination(with_actor(pb::DeleteDestinationRequest {
                    name: name.clone(),
                }))
                .await
                .map_err(status_error("cannot delete the destination"))?;
            println!("destination {name} deleted");
        }
        DestinationsCommand::Test { name, output } => {
            let notification = notification_client(settings)
                .await?
                .test_destination(with_actor(pb::TestDestinationRequest { name }))
                .await
                .map_err(status_error("cannot test the destination"))?
                .into_inner();
            match output.output {
                SummaryFormat::Table => print!("{}", notification_details(&notification)),
                SummaryFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&notification_json(&notification))?
                ),
            }
            if notification.state != "delivered" {
                eprintln!(
                    "the test message was not delivered (state {})",
                    or_dash(&notification.state)
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_notifications(
    settings: &ClientSettings,
    command: NotificationsCommand,
) -> anyhow::Result<ExitCode> {
    let NotificationsCommand::List {
        failed,
        max,
        output,
    } = command;
    let mut client = notification_client(settings).await?;
    let mut notifications = Vec::new();
    let mut next_token = String::new();
    while notifications.len() < max as usize {
        let remaining = u32::try_from(max as usize - notifications.len()).unwrap_or(u32::MAX);
        let request = pb::ListNotificationsRequest {
            failed_only: failed,
            max_results: remaining.min(NOTIFICATION_PAGE_SIZE),
            next_token,
        };
        let page = client
            .list_notifications(with_actor(request))
            .await
            .map_err(status_error("cannot list notifications"))?
            .into_inner();
        if page.notifications.is_empty() && !page.next_token.is_empty() {
            bail!("the server answered an empty page of notifications with a next token");
        }
        notifications.extend(page.notifications);
        if page.next_token.is_empty() {
            break;
        }
        next_token = page.next_token;
    }
    notifications.truncate(max as usize);
    match output.output {
        SummaryFormat::Table => print!("{}", notifications_table(&notifications)),
        SummaryFormat::Json => {
            let rows: Vec<Value> = notifications.iter().map(notification_json).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn notification_client(
    settings: &ClientSettings,
) -> anyhow::Result<NotificationServiceClient<AuthChannel>> {
    Ok(NotificationServiceClient::new(connect(settings).await?))
}

/// The destination made, and its signing secret once: the secret alone on standard output
/// (or inside the JSON), everything else on standard error, so `… > secret` keeps just it.
fn print_created_destination(
    response: &pb::CreateDestinationResponse,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    let destination = response.destination.clone().unwrap_or_default();
    let has_secret = !response.signing_secret.is_empty();
    match format {
        SummaryFormat::Json => {
            let mut value = json!({ "destination": destination_json(&destination) });
            if has_secret {
                value["signingSecret"] = json!(response.signing_secret);
                eprintln!(
                    "destination {} created; its signing secret is shown once",
                    destination.name
                );
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        SummaryFormat::Table if has_secret => {
            eprint!("{}", destinations_table(std::slice::from_ref(&destination)));
            eprintln!(
                "destination {} created; its signing secret (the HMAC-SHA256 key receivers verify signatures with) is shown once:",
                destination.name
            );
            println!("{}", response.signing_secret);
        }
        SummaryFormat::Table => {
            print!("{}", destinations_table(std::slice::from_ref(&destination)))
        }
    }
    Ok(())
}

pub fn destinations_table(destinations: &[pb::Destination]) -> String {
    let rows: Vec<Vec<String>> = destinations
        .iter()
        .map(|destination| {
            vec![
                destination.name.clone(),
                or_dash(&destination.kind),
                or_dash(&destination.target),
                if destination.every_alarm {
                    "every alarm"
                } else {
                    "alarms naming it"
                }
                .to_string(),
                findings_taken(destination),
                format_time(destination.created_at.as_ref()),
                or_dash(&destination.created_by),
            ]
        })
        .collect();
    render_table(
        &[
            "NAME", "KIND", "TARGET", "TAKES", "FINDINGS", "CREATED", "BY",
        ],
        &rows,
    )
}

/// The findings a destination takes: `high and above`, or `-` for none.
fn findings_taken(destination: &pb::Destination) -> String {
    if destination.finding_level.is_empty() {
        "-".into()
    } else {
        format!("{} and above", destination.finding_level)
    }
}

pub fn notifications_table(notifications: &[pb::Notification]) -> String {
    let rows: Vec<Vec<String>> = notifications
        .iter()
        .map(|notification| {
            vec![
                notification.notification_id.to_string(),
                format_time(notification.created_at.as_ref()),
                or_dash(&notification.destination),
                or_dash(&notification.kind),
                or_dash(&notification.subject),
                or_dash(&notification.state),
                notification.attempts.to_string(),
                or_dash(&truncate_cell(&notification.last_error, ERROR_COLUMN_CHARS)),
            ]
        })
        .collect();
    render_table(
        &[
            "ID",
            "CREATED",
            "DESTINATION",
            "KIND",
            "SUBJECT",
            "STATE",
            "ATTEMPTS",
            "LAST ERROR",
        ],
        &rows,
    )
}

/// `destinations test`: what became of the test message.
fn notification_details(notification: &pb::Notification) -> String {
    let lines = [
        ("notification", notification.notification_id.to_string()),
        ("destination", or_dash(&notification.destination)),
        ("state", or_dash(&notification.state)),
        ("attempts", notification.attempts.to_string()),
        ("last error", or_dash(&notification.last_error)),
        ("created", format_time(notification.created_at.as_ref())),
        ("delivered", format_time(notification.delivered_at.as_ref())),
        // Only a pending notification has a next attempt.
        (
            "next attempt",
            if notification.state == "pending" {
                format_time(notification.next_attempt_at.as_ref())
            } else {
                "-".to_string()
            },
        ),
    ];
    lines
        .iter()
        .map(|(label, value)| format!("{label:<14}{value}\n"))
        .collect()
}

fn destination_json(destination: &pb::Destination) -> Value {
    json!({
        "name": destination.name,
        "kind": destination.kind,
        "target": destination.target,
        "everyAlarm": destination.every_alarm,
        "findingLevel": destination.finding_level,
        "createdAt": format_optional_time(destination.created_at.as_ref()),
        "createdBy": destination.created_by,
    })
}

fn notification_json(notification: &pb::Notification) -> Value {
    // The body is the JSON sent; shown as JSON when it is, else as the text it is.
    let body = serde_json::from_str::<Value>(&notification.body)
        .unwrap_or_else(|_| Value::String(notification.body.clone()));
    json!({
        "notificationId": notification.notification_id,
        "destination": notification.destination,
        "kind": notification.kind,
        "subject": notification.subject,
        "state": notification.state,
        "attempts": notification.attempts,
        "lastError": notification.last_error,
        "createdAt": format_optional_time(notification.created_at.as_ref()),
        "nextAttemptAt": format_optional_time(notification.next_attempt_at.as_ref()),
        "deliveredAt": format_optional_time(notification.delivered_at.as_ref()),
        "body": body,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Arguments, Command};

    fn create_arguments(words: &[&str]) -> Result<CreateDestinationArguments, clap::Error> {
        let all = ["orgtrail", "destinations", "create", "ops"]
            .into_iter()
            .chain(words.iter().copied());
        match Arguments::try_parse_from(all)?.command {
            Command::Destinations(DestinationsCommand::Create(arguments)) => Ok(arguments),
            _ => panic!("{words:?} is not destinations create"),
        }
    }

    fn destination_request(
        words: &[&str],
        environment: &[(&str, &str)],
    ) -> anyhow::Result<pb::CreateDestinationRequest> {
        let arguments = create_arguments(words)
            .unwrap_or_else(|error| panic!("{words:?} does not parse: {error}"));
        create_destination_request(&arguments, |variable| {
            environment
                .iter()
                .find(|(name, _)| *name == variable)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn each_target_flag_gives_its_kind() {
        for (words, kind, target) in [
            (
                &["--webhook", "https://hooks.example/x"][..],
                "webhook",
                "https://hooks.example/x",
            ),
            (
                &["--slack", "https://hooks.slack.com/services/T/B/x"][..],
                "slack",
                "https://hooks.slack.com/services/T/B/x",
            ),
            (
                &["--sns", "arn:aws:sns:eu-west-1:111111111111:alarms"][..],
                "sns",
                "arn:aws:sns:eu-west-1:111111111111:alarms",
            ),
        ] {
            let request = destination_request(words, &[]).expect("the request is made");
            assert_eq!(request.name, "ops");
            assert_eq!(
                (request.kind.as_str(), request.target.as_str()),
                (kind, target)
            );
            assert!(!request.every_alarm);
        }
        let request = destination_request(&["--sns", "arn:x", "--every-alarm"], &[]).expect("made");
        assert!(request.every_alarm);
        assert_eq!(request.finding_level, "", "no findings unless asked");
    }

    #[test]
    fn a_finding_level_takes_findings_at_or_above_it() {
        for (level, expected) in [
            ("informational", "informational"),
            ("low", "low"),
            ("medium", "medium"),
            ("high", "high"),
            ("critical", "critical"),
        ] {
            let request =
                destination_request(&["--webhook", "https://a", "--finding-level", level], &[])
                    .expect("made");
            assert_eq!(request.finding_level, expected);
        }
        assert!(
            create_arguments(&["--webhook", "https://a", "--finding-level", "severe"]).is_err()
        );
    }

    #[test]
    fn the_destination_list_shows_the_findings_each_takes() {
        let destinations = [
            pb::Destination {
                name: "team-webhook".into(),
                kind: "webhook".into(),
                target: "https://hooks.example".into(),
                every_alarm: true,
                finding_level: "high".into(),
                created_by: "cert:admin".into(),
                ..Default::default()
            },
            pb::Destination {
                name: "alarms-only".into(),
                kind: "sns".into(),
                target: "arn:aws:sns:eu-west-1:111111111111:alarms".into(),
                ..Default::default()
            },
        ];
        let rows = crate::output_tests::cells(&destinations_table(&destinations));
        assert_eq!(
            rows[0],
            ["NAME", "KIND", "TARGET", "TAKES", "FINDINGS", "CREATED", "BY"]
        );
        assert_eq!(
            rows[1],
            [
                "team-webhook",
                "webhook",
                "https://hooks.example",
                "every alarm",
                "high and above",
                "-",
                "cert:admin"
            ]
        );
        assert_eq!(rows[2][3..5], ["alarms naming it", "-"]);
        assert_eq!(destination_json(&destinations[0])["findingLevel"], "high");
    }

    #[test]
    fn urls_are_read_from_the_environment_variable_named() {
        let environment = [
            ("HOOK_URL", "https://hooks.example/secret-path\n"),
            ("SLACK_URL", "https://hooks.slack.com/services/T/B/x"),
        ];
        let request =
            destination_request(&["--webhook-from-env", "HOOK_URL"], &environment).expect("made");
        assert_eq!(
            (request.kind.as_str(), request.target.as_str()),
            ("webhook", "https://hooks.example/secret-path")
        );
        let request =
            destination_request(&["--slack-from-env", "SLACK_URL"], &environment).expect("made");
        assert_eq!(
            (request.kind.as_str(), request.target.as_str()),
            ("slack", environment[1].1)
        );
        let error = destination_request(&["--webhook-from-env", "MISSING"], &environment)
            .expect_err("a missing variable is refused");
        assert!(error.to_string().contains("MISSING is not set"), "{error}");
        let error = destination_request(&["--slack-from-env", "EMPTY"], &[("EMPTY", " ")])
            .expect_err("an empty variable is refused");
        assert!(error.to_string().contains("EMPTY is empty"), "{error}");
    }

    #[test]
    fn exactly_one_target_is_taken() {
        assert!(create_arguments(&[]).is_err(), "no target is taken");
        assert!(create_arguments(&["--webhook", "https://a", "--sns", "arn:x"]).is_err());
        assert!(create_arguments(&["--webhook", "https://a", "--webhook-from-env", "X"]).is_err());
        assert!(create_arguments(&["--slack-from-env", "X", "--slack", "https://a"]).is_err());
    }

    #[test]
    fn a_test_message_shows_its_next_attempt_only_while_pending() {
        let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let mut notification = pb::Notification {
            notification_id: 3,
            destination: "ops".into(),
            state: "delivered".into(),
            attempts: 1,
            created_at: at(1_411_800_300),
            delivered_at: at(1_411_800_301),
            next_attempt_at: at(1_411_800_301),
            ..Default::default()
        };
        let text = notification_details(&notification);
        assert!(
            text.contains("delivered     2014-09-27T06:45:01Z\n"),
            "{text}"
        );
        assert!(text.contains("next attempt  -\n"), "{text}");
        notification.state = "pending".into();
        notification.delivered_at = None;
        notification.next_attempt_at = at(1_411_800_311);
        let text = notification_details(&notification);
        assert!(text.contains("delivered     -\n"), "{text}");
        assert!(
            text.contains("next attempt  2014-09-27T06:45:11Z\n"),
            "{text}"
        );
    }

    #[test]
    fn the_notification_list_shows_delivery_state_and_a_cut_error() {
        let long_error = "connection refused ".repeat(10);
        let notifications = [pb::Notification {
            notification_id: 12,
            destination: "ops".into(),
            kind: "alarm.state_change".into(),
            subject: "root-login".into(),
            state: "failed".into(),
            attempts: 8,
            last_error: long_error.clone(),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_411_800_311,
                nanos: 0,
            }),
            ..Default::default()
        }];
        let text = notifications_table(&notifications);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID  CREATED"));
        assert!(lines[1].starts_with("12  2014-09-27T06:45:11Z  ops "));
        assert!(lines[1].contains("alarm.state_change  root-login  failed  8 "));
        assert!(lines[1].ends_with(&truncate_cell(&long_error, ERROR_COLUMN_CHARS)));
        assert!(lines[1].ends_with('…'));
    }
}
