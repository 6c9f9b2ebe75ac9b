//! The alarm, filter, destination and notification commands of `orgtrail` against a running
//! aggregator: the built-in CIS alarms listed with their states; a custom alarm created, read,
//! disabled, its history read and deleted (tables and `--output json`); refusals printed as
//! the server words them (a pattern's column, a built-in alarm, a destination still named);
//! a backtest and a CIS alarm's history over ingested sample files, equal to what the files
//! say; destinations made, listed without their secrets, tested against a webhook receiver
//! that checks the signature, and the outbox listed.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::alarm_service_client::AlarmServiceClient;
use orgtrail_tests::cli_process::run_orgtrail;
use orgtrail_tests::receiver::{verify_signature, NotificationReceiver};
use orgtrail_tests::samples::{data_dir, sample_files_of};
use orgtrail_tests::{StackOptions, TestStack, WAIT};
use serde_json::Value;

/// A bound on every command (an ingest of one data set included).
const BOUND: Duration = Duration::from_secs(180);
/// The data set ingested for the backtest and the CIS alarm's history.
const DATA_SET: &str = "invictus-ir-aws_dataset";
/// CloudWatch's period, and the CLI's default for `filters test`.
const PERIOD_SECONDS: i64 = 300;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `orgtrail --endpoint <stack> ARGS…` as the tests' admin.
fn orgtrail(stack: &TestStack, arguments: &[&str]) -> Output {
    let endpoint = stack.endpoint();
    let mut all = vec!["--endpoint", endpoint.as_str()];
    all.extend_from_slice(arguments);
    run_orgtrail(&all, BOUND)
}

/// Runs it and expects success; its standard output.
fn orgtrail_ok(stack: &TestStack, arguments: &[&str]) -> String {
    let output = orgtrail(stack, arguments);
    assert!(
        output.status.success(),
        "orgtrail {arguments:?} failed ({}):\n{}{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs it with `--output json` and parses what it printed.
fn orgtrail_json(stack: &TestStack, arguments: &[&str]) -> Value {
    let mut all = arguments.to_vec();
    all.extend_from_slice(&["--output", "json"]);
    let stdout = orgtrail_ok(stack, &all);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("orgtrail {all:?} printed no JSON ({error}):\n{stdout}"))
}

/// Runs it and expects it refused (a non-zero exit); its standard error.
fn orgtrail_refused(stack: &TestStack, arguments: &[&str]) -> String {
    let output = orgtrail(stack, arguments);
    assert!(
        !output.status.success(),
        "orgtrail {arguments:?} succeeded:\n{}",
        text(&output.stdout)
    );
    text(&output.stderr)
}

/// The rows of a table (its header left out) whose first cell is `first`.
fn rows_named<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().next() == Some(first))
        .collect()
}

/// A row's cells (none of them holds a space).
fn cells(row: &str) -> Vec<String> {
    row.split_whitespace().map(str::to_string).collect()
}

/// A line of `alarms get`: its label in a column of 18.
fn detail(label: &str, value: &str) -> String {
    format!("{label:<18}{value}\n")
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn time(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a time"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

fn period_start(time: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = time.timestamp().div_euclid(PERIOD_SECONDS) * PERIOD_SECONDS;
    DateTime::from_timestamp(seconds, 0).unwrap_or_else(|| panic!("{seconds} is not a time"))
}

/// The data set's distinct records (the first of each eventID) as JSON, read straight from
/// the files.
fn data_set_records() -> Vec<Value> {
    let mut seen = BTreeSet::new();
    sample_files_of(DATA_SET)
        .iter()
        .flat_map(|file| &file.records)
        .map(|record| serde_json::from_str::<Value>(record).unwrap())
        .filter(|record| seen.insert(record["eventID"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cis_alarms_are_listed_and_a_custom_alarm_is_created_read_disabled_and_deleted() {
    let stack = TestStack::start().await;

    // The 15 built-in CIS alarms, none evaluated yet: no data, no state.
    let alarms = orgtrail_json(&stack, &["alarms", "list"]);
    let alarms = alarms.as_array().unwrap();
    let cis: Vec<&Value> = alarms
        .iter()
        .filter(|alarm| !alarm["cisId"].as_str().unwrap().is_empty())
        .collect();
    assert_eq!(cis.len(), 15, "{alarms:#?}");
    let table = orgtrail_ok(&stack, &["alarms", "list"]);
    assert!(table.starts_with("NAME "), "{table}");
    for alarm in &cis {
        let cis_id = alarm["cisId"].as_str().unwrap();
        let name = format!("cis-{cis_id}");
        assert_eq!(alarm["name"], name.as_str());
        assert_eq!(alarm["state"], "INSUFFICIENT_DATA");
        assert!(alarm["definition"]["enabled"].as_bool().unwrap());
        let rows = rows_named(&table, &name);
        assert_eq!(rows.len(), 1, "{name} in:\n{table}");
        let cells: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(cells[1], "INSUFFICIENT_DATA", "{}", rows[0]);
        assert_eq!(cells.last(), Some(&cis_id), "{}", rows[0]);
    }

    // A pattern the server cannot parse: refused, the server's message with its column.
    let refused = orgtrail_refused(
        &stack,
        &[
            "alarms",
            "create",
            "broken",
            "--pattern",
            "{ $.eventName = }",
        ],
    );
    assert!(
        refused.contains("cannot create the alarm: filter pattern: column 17:"),
        "{refused}"
    );

    // A custom alarm, every part of its definition given.
    let created = orgtrail_json(
        &stack,
        &[
            "alarms",
            "create",
            "root-activity",
            "--pattern",
            r#"{ $.userIdentity.type = "Root" }"#,
            "--description",
            "the root user did something",
            "--period",
            "600",
            "--evaluation-periods",
            "3",
            "--datapoints-to-alarm",
            "2",
            "--threshold",
            "2",
            "--comparison",
            ">",
            "--treat-missing-data",
            "notBreaching",
            "--region",
            "eu-west-1",
            "--notify-on",
            "ALARM",
            "--notify-on",
            "OK",
        ],
    );
    assert_eq!(created["name"], "root-activity");
    assert_eq!(created["version"], 1);
    assert_eq!(created["state"], "INSUFFICIENT_DATA");
    assert_eq!(created["cisId"], "");
    let definition = &created["definition"];
    assert_eq!(
        definition["filterPattern"],
        r#"{ $.userIdentity.type = "Root" }"#
    );
    assert_eq!(definition["periodSeconds"], 600);
    assert_eq!(definition["evaluationPeriods"], 3);
    assert_eq!(definition["datapointsToAlarm"], 2);
    assert_eq!(definition["threshold"], 2.0);
    assert_eq!(definition["comparisonOperator"], "GreaterThanThreshold");
    assert_eq!(definition["treatMissingData"], "notBreaching");
    assert_eq!(
        definition["scope"]["regions"],
        serde_json::json!(["eu-west-1"])
    );
    assert_eq!(definition["notifyOn"], serde_json::json!(["ALARM", "OK"]));
    assert_eq!(definition["enabled"], true);
    assert_eq!(
        orgtrail_json(&stack, &["alarms", "get", "root-activity"])["definition"],
        *definition
    );
    let details = orgtrail_ok(&stack, &["alarms", "get", "root-activity"]);
    assert!(
        details.contains(&detail("rule", "> 2 for 2/3 of 600s")),
        "{details}"
    );
    assert!(
        details.contains(&detail("scope", "regions=eu-west-1")),
        "{details}"
    );

    // Disabled: a new version, nothing else changed; the first version stays readable.
    let disabled = orgtrail_json(&stack, &["alarms", "update", "root-activity", "--disable"]);
    assert_eq!(disabled["version"], 2);
    let mut expected = definition.clone();
    expected["enabled"] = Value::Bool(false);
    assert_eq!(disabled["definition"], expected);
    let first = orgtrail_json(
        &stack,
        &["alarms", "get", "root-activity", "--version", "1"],
    );
    assert_eq!(first["definition"], *definition);
    let details = orgtrail_ok(&stack, &["alarms", "get", "root-activity"]);
    assert!(details.contains(&detail("enabled", "no")), "{details}");

    // No history: never evaluated.
    assert_eq!(
        orgtrail_json(&stack, &["alarms", "history", "root-activity"]),
        serde_json::json!([])
    );
    let history = orgtrail_ok(&stack, &["alarms", "history", "root-activity"]);
    assert_eq!(history.lines().count(), 1, "only the header: {history}");
    assert!(history.starts_with("PERIOD END"), "{history}");

    // Deleted; a built-in alarm is not.
    assert_eq!(
        orgtrail_ok(&stack, &["alarms", "delete", "root-activity"]),
        "alarm root-activity deleted\n"
    );
    let refused = orgtrail_refused(&stack, &["alarms", "get", "root-activity"]);
    assert!(refused.contains("does not exist"), "{refused}");
    let refused = orgtrail_refused(&stack, &["alarms", "delete", "cis-4.3"]);
    assert!(
        refused.contains("cannot delete the alarm: alarm cis-4.3 is the built-in CIS 4.3 alarm"),
        "{refused}"
    );
    assert!(refused.contains("--disable"), "{refused}");
    assert_eq!(
        orgtrail_json(&stack, &["alarms", "get", "cis-4.3"])["name"],
        "cis-4.3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_and_a_cis_alarms_history_over_ingested_files_agree_with_the_files() {
    let stack = TestStack::start_with(StackOptions {
        environment: vec![(
            "ORGTRAIL_ALARMS__EVALUATION_INTERVAL_SECONDS".into(),
            "1".into(),
        )],
        ..StackOptions::default()
    })
    .await;
    let directory = data_dir().join(DATA_SET);
    let output = orgtrail(&stack, &["ingest", &directory.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let records = data_set_records();

    // The data set's most frequent event name, counted per period from the files.
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &records {
        *names
            .entry(record["eventName"].as_str().unwrap())
            .or_default() += 1;
    }
    let (name, count) = names
        .iter()
        .max_by_key(|(name, count)| (**count, std::cmp::Reverse(**name)))
        .map(|(name, count)| (name.to_string(), *count))
        .unwrap();
    let mut periods: BTreeMap<DateTime<Utc>, u64> = BTreeMap::new();
    for record in records
        .iter()
        .filter(|record| record["eventName"] == name.as_str())
    {
        *periods
            .entry(period_start(time(&record["eventTime"])))
            .or_default() += 1;
    }
    let pattern = format!(r#"{{ $.eventName = "{name}" }}"#);
    let report = orgtrail_json(&stack, &["filters", "test", &pattern, "--events", "100"]);
    assert_eq!(report["eventsScanned"], records.len());
    assert_eq!(report["eventsMatched"], count);
    let got: BTreeMap<DateTime<Utc>, u64> = report["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|period| {
            (
                time(&period["periodStart"]),
                period["matches"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, periods, "matches per period of {pattern}");
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), count.min(100));
    assert!(events
        .iter()
        .all(|event| event["eventName"] == name.as_str()));
    let table = orgtrail_ok(&stack, &["filters", "test", &pattern]);
    assert!(
        table.contains(&format!(
            "{} events scanned, {count} matched\npattern: ",
            records.len()
        )),
        "{table}"
    );
    // The periods' table comes first, then a blank line and the events'.
    let periods_table = table.split("\n\n").next().unwrap();
    assert_eq!(periods_table.lines().count(), periods.len() + 1, "{table}");
    for (start, matches) in &periods {
        let row = rows_named(periods_table, &rfc3339(*start));
        assert_eq!(
            row.iter().map(|row| cells(row)).collect::<Vec<_>>(),
            vec![vec![rfc3339(*start), matches.to_string()]],
            "the period {start} in:\n{table}"
        );
    }

    // CIS 4.13 (route tables) over the same events: its transitions are those of its matches
    // per period as the independent evaluator lists them — ALARM in each run of periods with
    // matches, OK in the period after (notBreaching between them).
    let expected_ids: BTreeSet<String> = serde_json::from_str::<Value>(
        &std::fs::read_to_string(data_dir().join("../cis/EXPECTED.json")).unwrap(),
    )
    .unwrap()["patterns"]["4.13"]["eventIDs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    let breaching: BTreeSet<i64> = records
        .iter()
        .filter(|record| expected_ids.contains(record["eventID"].as_str().unwrap()))
        .map(|record| {
            time(&record["eventTime"])
                .timestamp()
                .div_euclid(PERIOD_SECONDS)
        })
        .collect();
    assert!(
        !breaching.is_empty(),
        "CIS 4.13 matches records of {DATA_SET}"
    );
    let mut expected: Vec<(DateTime<Utc>, String, String)> = Vec::new();
    let mut state = "INSUFFICIENT_DATA";
    let (first, last) = (*breaching.first().unwrap(), *breaching.last().unwrap() + 1);
    for period in first..=last {
        let next = if breaching.contains(&period) {
            "ALARM"
        } else {
            "OK"
        };
        if next != state {
            let end = DateTime::from_timestamp((period + 1) * PERIOD_SECONDS, 0).unwrap();
            expected.push((end, state.to_string(), next.to_string()));
            state = next;
        }
    }
    // Evaluated every second; late files re-evaluate the periods they change.
    let deadline = tokio::time::Instant::now() + WAIT;
    let live = loop {
        let history = orgtrail_json(&stack, &["alarms", "history", "cis-4.13", "--max", "1000"]);
        let mut live: Vec<(DateTime<Utc>, String, String)> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|transition| transition["supersededAt"].is_null())
            .map(|transition| {
                (
                    time(&transition["periodEnd"]),
                    transition["oldState"].as_str().unwrap().to_string(),
                    transition["newState"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        live.sort();
        if live == expected || tokio::time::Instant::now() > deadline {
            break live;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(live, expected, "cis-4.13's live transitions");

    // Newest first by the period where the state changed, though the files came in another
    // order; page by page the same.
    let history = orgtrail_json(&stack, &["alarms", "history", "cis-4.13", "--max", "1000"]);
    let history = history.as_array().unwrap();
    let ends: Vec<DateTime<Utc>> = history
        .iter()
        .map(|transition| time(&transition["periodEnd"]))
        .collect();
    assert!(
        ends.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {ends:?}"
    );
    let one_page: Vec<i64> = history
        .iter()
        .map(|transition| transition["transitionId"].as_i64().unwrap())
        .collect();
    let mut client = AlarmServiceClient::new(stack.channel().await);
    let mut paged = Vec::new();
    let mut next_token = String::new();
    for _ in 0..=one_page.len() {
        let page = client
            .get_alarm_history(pb::GetAlarmHistoryRequest {
                name: "cis-4.13".into(),
                max_results: 2,
                next_token,
            })
            .await
            .unwrap()
            .into_inner();
        paged.extend(
            page.transitions
                .iter()
                .map(|transition| transition.transition_id),
        );
        next_token = page.next_token;
        if next_token.is_empty() {
            break;
        }
    }
    assert_eq!(paged, one_page, "two per page");
    let history = orgtrail_ok(&stack, &["alarms", "history", "cis-4.13", "--max", "1000"]);
    assert!(history.starts_with("PERIOD END "), "{history}");
    assert!(history.contains(" → ALARM "), "{history}");
    assert!(
        history.contains("the period ended more than 24 h before it was evaluated"),
        "old periods are recorded, not notified:\n{history}"
    );
    let newest = orgtrail_ok(&stack, &["alarms", "history", "cis-4.13", "--max", "3"]);
    assert_eq!(newest.lines().count(), 4, "the header and 3:\n{newest}");
    // The state `alarms list` shows is the last transition's.
    let (since, _, last_state) = expected.last().unwrap();
    let alarm = orgtrail_json(&stack, &["alarms", "get", "cis-4.13"]);
    assert_eq!(alarm["state"], last_state.as_str());
    assert_eq!(time(&alarm["stateSince"]), *since);
    let table = orgtrail_ok(&stack, &["alarms", "list"]);
    let row = cells(rows_named(&table, "cis-4.13")[0]);
    assert_eq!(row[1..3], [last_state.clone(), rfc3339(*since)], "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_made_listed_without_secrets_tested_signed_and_kept_while_named() {
    let receiver = NotificationReceiver::start().await;
    let refusing = NotificationReceiver::start().await;
    refusing.refuse_all(true);
    let stack = TestStack::start_with(StackOptions {
        environment: vec![(
            "ORGTRAIL_NOTIFICATIONS__POLL_INTERVAL_MILLISECONDS".into(),
            "100".into(),
        )],
        ..StackOptions::default()
    })
    .await;

    // The signing secret alone on standard output, once; what was made on standard error.
    let output = orgtrail(
        &stack,
        &[
            "destinations",
            "create",
            "hooks",
            "--webhook",
            &receiver.url(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let secret = text(&output.stdout).trim().to_string();
    assert!(
        secret.starts_with("whsec_") && !secret.contains(char::is_whitespace),
        "standard output is the secret alone: {secret:?}"
    );
    let shown = format!("http://{}/…", receiver.address());
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&shown), "{stderr}");
    assert!(stderr.contains("shown once"), "{stderr}");
    assert!(
        !stderr.contains(&secret) && !stderr.contains("/notifications"),
        "{stderr}"
    );

    // Listed by scheme and host only, never the secret.
    let listed = orgtrail_ok(&stack, &["destinations", "list"]);
    let rows = rows_named(&listed, "hooks");
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(
        cells(rows[0])[..6],
        ["hooks", "webhook", shown.as_str(), "alarms", "naming", "it"],
        "{listed}"
    );
    assert!(
        !listed.contains("/notifications") && !listed.contains(&secret),
        "{listed}"
    );
    let listed = orgtrail_json(&stack, &["destinations", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "hooks");
    assert_eq!(listed[0]["kind"], "webhook");
    assert_eq!(listed[0]["target"], shown.as_str());
    assert_eq!(listed[0]["everyAlarm"], false);

    // A test message reaches the receiver, signed with that secret.
    let tested = orgtrail_json(&stack, &["destinations", "test", "hooks"]);
    assert_eq!(tested["state"], "delivered", "{tested:#}");
    assert_eq!(tested["kind"], "destination.test");
    assert_eq!(tested["attempts"], 1);
    let requests = receiver.wait_for(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/notifications");
    assert!(verify_signature(request, &secret), "{request:#?}");
    assert!(!verify_signature(request, "whsec_another"));
    assert_eq!(
        request.header("x-orgtrail-notification-id"),
        Some(tested["notificationId"].to_string().as_str())
    );
    let body = request.json();
    assert_eq!(body["kind"], "destination.test");
    assert_eq!(body["subject"], "hooks");
    assert_eq!(body["notificationId"], tested["notificationId"]);

    // A destination that refuses: the test says so and exits 1.
    orgtrail_ok(
        &stack,
        &[
            "destinations",
            "create",
            "refusing",
            "--webhook",
            &refusing.url(),
        ],
    );
    let output = orgtrail(&stack, &["destinations", "test", "refusing"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("state         pending\n"), "{stdout}");
    assert!(stdout.contains("HTTP 503"), "{stdout}");
    assert!(
        text(&output.stderr).contains("the test message was not delivered (state pending)"),
        "{}",
        text(&output.stderr)
    );
    refusing.wait_for(1, WAIT).await;

    // Kept while an alarm names it.
    orgtrail_ok(
        &stack,
        &[
            "alarms",
            "create",
            "console-logins",
            "--pattern",
            r#"{ $.eventName = "ConsoleLogin" }"#,
            "--destination",
            "hooks",
        ],
    );
    let refused = orgtrail_refused(&stack, &["destinations", "delete", "hooks"]);
    assert!(
        refused.contains(
            "cannot delete the destination: destination hooks is named by alarms console-logins"
        ),
        "{refused}"
    );

    // Nothing failed; the outbox lists what was sent, newest first.
    assert_eq!(
        orgtrail_json(&stack, &["notifications", "list", "--failed"]),
        serde_json::json!([])
    );
    let failed = orgtrail_ok(&stack, &["notifications", "list", "--failed"]);
    assert_eq!(failed.lines().count(), 1, "only the header: {failed}");
    let notifications = orgtrail_json(&stack, &["notifications", "list"]);
    let notifications = notifications.as_array().unwrap();
    assert_eq!(notifications.len(), 2, "{notifications:#?}");
    assert_eq!(notifications[0]["destination"], "refusing");
    assert_eq!(notifications[1]["destination"], "hooks");
    assert_eq!(notifications[1]["state"], "delivered");
    assert_eq!(notifications[1]["notificationId"], tested["notificationId"]);
    let table = orgtrail_ok(&stack, &["notifications", "list"]);
    let row = cells(rows_named(&table, &tested["notificationId"].to_string())[0]);
    assert_eq!(
        row[2..],
        ["hooks", "destination.test", "hooks", "delivered", "1", "-"],
        "{table}"
    );

    // Once no alarm names it, it goes.
    orgtrail_ok(&stack, &["alarms", "delete", "console-logins"]);
    assert_eq!(
        orgtrail_ok(&stack, &["destinations", "delete", "hooks"]),
        "destination hooks deleted\n"
    );
    let names: Vec<Value> = orgtrail_json(&stack, &["destinations", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|destination| destination["name"].clone())
        .collect();
    assert_eq!(names, vec![Value::from("refusing")]);
}
