//! The flags of `insights …` as parsed by clap and turned into requests.

use clap::Parser;

use super::*;
use crate::insights_command::{InsightSettingsCommand, InsightsCommand};
use crate::{Arguments, Command};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_default()
}

fn parse(words: &[&str]) -> InsightsCommand {
    let mut all = vec!["orgtrail", "insights"];
    all.extend_from_slice(words);
    match Arguments::try_parse_from(all) {
        Ok(Arguments {
            command: Command::Insights(command),
            ..
        }) => command,
        Ok(_) => panic!("not an insights command"),
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn the_list_filter_takes_accounts_a_type_and_a_since() {
    let InsightsCommand::List(arguments) = parse(&[
        "list",
        "--account",
        "111111111111",
        "--account",
        "222222222222",
        "--type",
        "ApiErrorRateInsight",
        "--since",
        "7d",
        "--include-superseded",
        "--output",
        "jsonl",
    ]) else {
        panic!("not list");
    };
    assert_eq!(arguments.output, InsightListFormat::Jsonl);
    let request = list_insights_request(&arguments, now()).unwrap();
    assert_eq!(request.accounts, ["111111111111", "222222222222"]);
    assert_eq!(request.insight_type, "ApiErrorRateInsight");
    assert_eq!(
        request.since.map(|since| since.seconds),
        Some(now().timestamp() - 7 * 86_400)
    );
    assert!(request.include_superseded);
    assert!(request.next_token.is_empty());
}

#[test]
fn the_list_without_flags_asks_for_everything() {
    let InsightsCommand::List(arguments) = parse(&["list"]) else {
        panic!("not list");
    };
    let request = list_insights_request(&arguments, now()).unwrap();
    assert!(request.accounts.is_empty());
    assert!(request.insight_type.is_empty());
    assert!(request.since.is_none());
    assert!(!request.include_superseded);
    assert_eq!(arguments.output, InsightListFormat::Table);
}

#[test]
fn an_unknown_type_or_a_bad_time_is_refused() {
    let refused = Arguments::try_parse_from(["orgtrail", "insights", "list", "--type", "Calls"]);
    assert!(refused.is_err());
    let InsightsCommand::List(arguments) = parse(&["list", "--since", "last week"]) else {
        panic!("not list");
    };
    let error = list_insights_request(&arguments, now()).unwrap_err();
    assert!(error.to_string().contains("is not a time"), "{error}");
}

#[test]
fn a_replay_covers_whole_days_given_as_dates() {
    let InsightsCommand::Replay(arguments) =
        parse(&["replay", "--start", "2026-11-01", "--end", "2026-11-02"])
    else {
        panic!("not replay");
    };
    let request = replay_insights_request(&arguments, now()).unwrap();
    let start = request.start_time.unwrap();
    let end = request.end_time.unwrap();
    assert_eq!(start.seconds, 1_793_491_200);
    assert_eq!(end.seconds, 1_793_491_200 + 2 * 86_400 - 1);
    assert_eq!(end.nanos, 999_999_000);
}

#[test]
fn a_setting_names_its_scope_and_what_it_changes() {
    let InsightsCommand::Settings(InsightSettingsCommand::Set(arguments)) = parse(&[
        "settings",
        "set",
        "--account",
        "111111111111",
        "--event-source",
        "ec2.amazonaws.com",
        "--event-name",
        "RunInstances",
        "--threshold-sigma",
        "6.5",
        "--min-rate",
        "20",
    ]) else {
        panic!("not settings set");
    };
    let setting = set_insight_setting_request(&arguments)
        .unwrap()
        .setting
        .unwrap();
    assert_eq!(setting.account_id, "111111111111");
    assert_eq!(setting.event_source, "ec2.amazonaws.com");
    assert_eq!(setting.event_name, "RunInstances");
    assert_eq!(setting.threshold_sigma, Some(6.5));
    assert_eq!(setting.min_rate_per_minute, Some(20.0));
    assert!(!setting.disabled);
}

#[test]
fn a_setting_that_changes_nothing_or_an_api_without_its_source_is_refused() {
    let InsightsCommand::Settings(InsightSettingsCommand::Set(arguments)) =
        parse(&["settings", "set", "--account", "111111111111"])
    else {
        panic!("not settings set");
    };
    let error = set_insight_setting_request(&arguments).unwrap_err();
    assert!(
        error.to_string().contains("would change nothing"),
        "{error}"
    );

    let InsightsCommand::Settings(InsightSettingsCommand::Set(arguments)) = parse(&[
        "settings",
        "set",
        "--event-name",
        "RunInstances",
        "--disabled",
    ]) else {
        panic!("not settings set");
    };
    let error = set_insight_setting_request(&arguments).unwrap_err();
    assert!(
        error.to_string().contains("needs --event-source"),
        "{error}"
    );

    let InsightsCommand::Settings(InsightSettingsCommand::Delete(scope)) =
        parse(&["settings", "delete", "--event-name", "RunInstances"])
    else {
        panic!("not settings delete");
    };
    assert!(delete_insight_setting_request(&scope).is_err());
}

#[test]
fn a_delete_without_flags_is_the_setting_of_everything() {
    let InsightsCommand::Settings(InsightSettingsCommand::Delete(scope)) =
        parse(&["settings", "delete"])
    else {
        panic!("not settings delete");
    };
    let request = delete_insight_setting_request(&scope).unwrap();
    assert_eq!(
        (
            request.account_id.as_str(),
            request.event_source.as_str(),
            request.event_name.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(scope_text("", "", ""), "everything");
    assert_eq!(
        scope_text("111111111111", "ec2.amazonaws.com", "RunInstances"),
        "account 111111111111, ec2.amazonaws.com RunInstances"
    );
    assert_eq!(scope_text("", "iam.amazonaws.com", ""), "iam.amazonaws.com");
}
