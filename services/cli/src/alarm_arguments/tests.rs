//! Flags → requests of `alarms create|update` and `filters test`, parsed by the real command
//! line (`crate::Arguments`), so the wiring in `main.rs` is tested too.

use chrono::TimeZone;
use clap::Parser;

use super::*;
use crate::alarms_command::{AlarmsCommand, FiltersCommand};
use crate::{Arguments, Command};

fn parse(words: &[&str]) -> Result<Command, clap::Error> {
    Arguments::try_parse_from(std::iter::once("orgtrail").chain(words.iter().copied()))
        .map(|arguments| arguments.command)
}

fn create_request(words: &[&str]) -> pb::CreateAlarmRequest {
    let mut all = vec!["alarms", "create", "root-login", "--pattern", "{ $.a = 1 }"];
    all.extend_from_slice(words);
    match parse(&all) {
        Ok(Command::Alarms(AlarmsCommand::Create(arguments))) => create_alarm_request(&arguments),
        Ok(_) => panic!("{all:?} is not alarms create"),
        Err(error) => panic!("{all:?}: {error}"),
    }
}

fn create_definition(words: &[&str]) -> pb::AlarmDefinition {
    create_request(words)
        .definition
        .expect("create sends a definition")
}

fn update_arguments(words: &[&str]) -> UpdateAlarmArguments {
    let mut all = vec!["alarms", "update", "root-login"];
    all.extend_from_slice(words);
    match parse(&all) {
        Ok(Command::Alarms(AlarmsCommand::Update(arguments))) => arguments,
        Ok(_) => panic!("{all:?} is not alarms update"),
        Err(error) => panic!("{all:?}: {error}"),
    }
}

/// An alarm as the server would answer it, every field set to something other than a default.
fn current_alarm() -> pb::Alarm {
    pb::Alarm {
        name: "root-login".into(),
        version: 3,
        definition: Some(pb::AlarmDefinition {
            description: "root signs in".into(),
            filter_pattern: r#"{ $.userIdentity.type = "Root" }"#.into(),
            scope: Some(pb::AlarmScope {
                accounts: vec!["111111111111".into()],
                regions: vec!["eu-west-1".into(), "us-east-1".into()],
                event_categories: vec!["Management".into()],
            }),
            period_seconds: 600,
            evaluation_periods: 3,
            datapoints_to_alarm: 2,
            threshold: 4.0,
            comparison_operator: "GreaterThanThreshold".into(),
            treat_missing_data: "breaching".into(),
            notify_on: vec!["ALARM".into(), "OK".into()],
            destinations: vec!["ops-webhook".into()],
            enabled: true,
            finding_level: "high".into(),
        }),
        cis_id: String::new(),
        cis_title: String::new(),
        state: "OK".into(),
        ..Default::default()
    }
}

#[test]
fn comparison_operators_are_read_as_symbols_and_as_cloudwatch_names() {
    for operator in ComparisonOperator::ALL {
        for spelling in [operator.symbol(), operator.cloudwatch_name()] {
            assert_eq!(
                create_definition(&["--comparison", spelling]).comparison_operator,
                operator.cloudwatch_name(),
                "--comparison {spelling}"
            );
        }
    }
    assert_eq!(
        create_definition(&["--comparison", "<="]).comparison_operator,
        "LessThanOrEqualToThreshold"
    );
    for wrong in ["=>", "==", "greaterthanthreshold", "GreaterThan", ""] {
        assert!(ComparisonOperator::parse(wrong).is_err(), "{wrong:?}");
        let words = [
            "alarms",
            "create",
            "x",
            "--pattern",
            "{ $.a = 1 }",
            "--comparison",
            wrong,
        ];
        assert!(parse(&words).is_err(), "--comparison {wrong:?} is taken");
    }
}

#[test]
fn create_uses_cloudwatch_defaults_for_what_is_not_given() {
    let request = create_request(&[]);
    assert_eq!(request.name, "root-login");
    let definition = request.definition.expect("create sends a definition");
    assert_eq!(
        definition,
        pb::AlarmDefinition {
            description: String::new(),
            filter_pattern: "{ $.a = 1 }".into(),
            scope: Some(pb::AlarmScope::default()),
            period_seconds: 300,
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            threshold: 1.0,
            comparison_operator: "GreaterThanOrEqualToThreshold".into(),
            treat_missing_data: "missing".into(),
            notify_on: Vec::new(),
            destinations: Vec::new(),
            enabled: true,
            finding_level: "medium".into(),
        }
    );
}

#[test]
fn datapoints_to_alarm_defaults_to_the_evaluation_periods() {
    let definition = create_definition(&["--evaluation-periods", "5"]);
    assert_eq!(
        (
            definition.evaluation_periods,
            definition.datapoints_to_alarm
        ),
        (5, 5)
    );
    let definition =
        create_definition(&["--evaluation-periods", "5", "--datapoints-to-alarm", "2"]);
    assert_eq!(
        (
            definition.evaluation_periods,
            definition.datapoints_to_alarm
        ),
        (5, 2)
    );
}

#[test]
fn create_takes_every_flag_and_repeats_scope_and_notification_flags() {
    let definition = create_definition(&[
        "--description",
        "CIS-like",
        "--period",
        "60",
        "--threshold",
        "2.5",
        "--treat-missing-data",
        "notBreaching",
        "--account",
        "111111111111",
        "--account",
        "222222222222",
        "--region",
        "eu-west-1",
        "--category",
        "Management",
        "--category",
        "Data",
        "--notify-on",
        "ALARM",
        "--notify-on",
        "insufficient_data",
        "--destination",
        "ops",
        "--destination",
        "slack",
        "--disabled",
        "--finding-level",
        "critical",
    ]);
    assert_eq!(definition.description, "CIS-like");
    assert_eq!(definition.finding_level, "critical");
    assert_eq!(definition.period_seconds, 60);
    assert_eq!(definition.threshold, 2.5);
    assert_eq!(definition.treat_missing_data, "notBreaching");
    assert_eq!(
        definition.scope,
        Some(pb::AlarmScope {
            accounts: vec!["111111111111".into(), "222222222222".into()],
            regions: vec!["eu-west-1".into()],
            event_categories: vec!["Management".into(), "Data".into()],
        })
    );
    assert_eq!(definition.notify_on, vec!["ALARM", "INSUFFICIENT_DATA"]);
    assert_eq!(definition.destinations, vec!["ops", "slack"]);
    assert!(!definition.enabled);
    for (spelling, expected) in [
        ("missing", "missing"),
        ("breaching", "breaching"),
        ("ignore", "ignore"),
    ] {
        assert_eq!(
            create_definition(&["--treat-missing-data", spelling]).treat_missing_data,
            expected
        );
    }
    assert!(parse(&[
        "alarms",
        "create",
        "x",
        "--pattern",
        "{ $.a = 1 }",
        "--treat-missing-data",
        "zero"
    ])
    .is_err());
    assert!(
        parse(&["alarms", "create", "x"]).is_err(),
        "create without --pattern is taken"
    );
}

#[test]
fn an_update_changes_only_the_given_fields_and_expects_the_version_read() {
    let current = current_alarm();
    let arguments = update_arguments(&[
        "--threshold",
        "10",
        "--comparison",
        ">=",
        "--account",
        "333333333333",
        "--notify-on",
        "OK",
        "--disable",
        "--finding-level",
        "low",
    ]);
    let request = merge_alarm_update(current.clone(), &arguments).expect("the update merges");
    let mut expected = current
        .definition
        .clone()
        .expect("the alarm has a definition");
    expected.threshold = 10.0;
    expected.comparison_operator = "GreaterThanOrEqualToThreshold".into();
    if let Some(scope) = expected.scope.as_mut() {
        scope.accounts = vec!["333333333333".into()];
    }
    expected.notify_on = vec!["OK".into()];
    expected.enabled = false;
    expected.finding_level = "low".into();
    assert_eq!(request.name, current.name);
    assert_eq!(request.definition, Some(expected));
    assert_eq!(request.expected_version, Some(current.version));
}

#[test]
fn an_update_of_the_evaluation_periods_leaves_the_datapoints_as_they_were() {
    let current = current_alarm();
    let request = merge_alarm_update(
        current.clone(),
        &update_arguments(&["--evaluation-periods", "5"]),
    )
    .expect("the update merges");
    let definition = request.definition.expect("a definition");
    let before = current.definition.expect("a definition");
    assert_eq!(definition.evaluation_periods, 5);
    assert_eq!(definition.datapoints_to_alarm, before.datapoints_to_alarm);
}

#[test]
fn clear_flags_empty_their_list_and_nothing_else() {
    let current = current_alarm();
    let arguments = update_arguments(&[
        "--clear-accounts",
        "--clear-categories",
        "--clear-notify-on",
        "--clear-destinations",
        "--pattern",
        "{ $.b = 2 }",
    ]);
    let definition = merge_alarm_update(current.clone(), &arguments)
        .expect("the update merges")
        .definition
        .expect("a definition");
    let before = current.definition.expect("a definition");
    let scope = definition.scope.clone().expect("a scope");
    assert!(scope.accounts.is_empty());
    assert!(scope.event_categories.is_empty());
    assert_eq!(
        scope.regions,
        before.scope.expect("a scope").regions,
        "regions were not cleared"
    );
    assert!(definition.notify_on.is_empty());
    assert!(definition.destinations.is_empty());
    assert_eq!(definition.filter_pattern, "{ $.b = 2 }");
    assert_eq!(definition.description, before.description);
    assert_eq!(definition.enabled, before.enabled);
    assert_eq!(
        definition.finding_level, before.finding_level,
        "the finding level stays unless given"
    );
}

#[test]
fn contradicting_update_flags_are_refused_by_the_command_line() {
    for words in [
        &["--clear-accounts", "--account", "1"][..],
        &["--clear-regions", "--region", "eu-west-1"][..],
        &["--clear-destinations", "--destination", "ops"][..],
        &["--enable", "--disable"][..],
    ] {
        let mut all = vec!["alarms", "update", "x"];
        all.extend_from_slice(words);
        assert!(parse(&all).is_err(), "{words:?} is taken");
    }
}

#[test]
fn an_update_that_changes_nothing_is_recognised() {
    assert!(!update_arguments(&[]).changes_anything());
    assert!(!update_arguments(&["--expected-version", "3"]).changes_anything());
    for words in [
        &["--enable"][..],
        &["--description", ""][..],
        &["--clear-regions"][..],
        &["--destination", "ops"][..],
        &["--pattern", "{ $.a = 1 }"][..],
        &["--finding-level", "high"][..],
    ] {
        assert!(update_arguments(words).changes_anything(), "{words:?}");
    }
}

#[test]
fn an_update_expecting_another_version_is_refused_before_it_is_sent() {
    let current = current_alarm();
    let error = merge_alarm_update(
        current.clone(),
        &update_arguments(&["--enable", "--expected-version", "2"]),
    )
    .expect_err("version 2 is not current");
    assert!(error.to_string().contains("version 3, not 2"), "{error}");
    let request = merge_alarm_update(
        current,
        &update_arguments(&["--enable", "--expected-version", "3"]),
    )
    .expect("version 3 is current");
    assert_eq!(request.expected_version, Some(3));
}

#[test]
fn an_alarm_answered_without_its_definition_is_not_overwritten_with_defaults() {
    let current = pb::Alarm {
        definition: None,
        ..current_alarm()
    };
    assert!(merge_alarm_update(current, &update_arguments(&["--enable"])).is_err());
}

#[test]
fn a_filter_test_sends_its_range_scope_and_sizes() {
    let words = [
        "filters",
        "test",
        r#"{ $.eventName = "ConsoleLogin" }"#,
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-01",
        "--account",
        "111111111111",
        "--region",
        "us-east-1",
        "--category",
        "Management",
        "--period",
        "3600",
        "--events",
        "25",
    ];
    let Ok(Command::Filters(FiltersCommand::Test(arguments))) = parse(&words) else {
        panic!("{words:?} is not filters test");
    };
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let request = test_filter_request(&arguments, now).expect("the times parse");
    let day = Utc
        .with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    assert_eq!(
        request.filter_pattern,
        r#"{ $.eventName = "ConsoleLogin" }"#
    );
    assert_eq!(request.start_time.map(|time| time.seconds), Some(day));
    assert_eq!(
        request.end_time.map(|time| time.seconds),
        Some(day + 86_399)
    );
    assert_eq!(
        request.scope,
        Some(pb::AlarmScope {
            accounts: vec!["111111111111".into()],
            regions: vec!["us-east-1".into()],
            event_categories: vec!["Management".into()],
        })
    );
    assert_eq!((request.period_seconds, request.max_events), (3600, 25));

    let Ok(Command::Filters(FiltersCommand::Test(arguments))) =
        parse(&["filters", "test", "{ $.a = 1 }", "--start", "7d"])
    else {
        panic!("filters test with --start 7d is not taken");
    };
    let request = test_filter_request(&arguments, now).expect("the times parse");
    assert_eq!(
        request.start_time.map(|time| time.seconds),
        Some(now.timestamp() - 7 * 86_400)
    );
    assert_eq!(request.end_time, None);
    assert_eq!(
        (request.period_seconds, request.max_events),
        (0, 0),
        "the server's defaults"
    );
    assert_eq!(request.scope, Some(pb::AlarmScope::default()));
}
