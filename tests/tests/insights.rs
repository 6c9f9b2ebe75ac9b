//! orgtrail's own Insights against a running aggregator, through the `orgtrail insights …`
//! commands. Two weeks of background for a few APIs of two accounts — re-timed copies of real
//! sample records, with a daily shape — and two injected bursts of known start, length and
//! size (write calls to one API; errors of another) are ingested as log files. Live evaluation
//! (a pinned clock, a short settle time) finds each burst on time, writes its Start and End
//! Insight events (found by a lookup of category Insight, written under the ledger source
//! `orgtrail-insights`), raises an insight finding each, and explains the minutes behind it. A
//! second stack with Insights off, the same files and `insights replay` writes the same Insight
//! events byte for byte, and a second replay writes nothing. The tuning per scope is set,
//! listed and deleted (audited), and a reader lists but neither replays nor tunes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc, Weekday};
use orgtrail_client::{LogFileReader, SenderSettings};
use orgtrail_tests::cli_process::{
    orgtrail_at, orgtrail_json_at, orgtrail_ok_at, run_orgtrail_with,
};
use orgtrail_tests::memory_file::{gzip, log_file_json, MemoryLogFile};
use orgtrail_tests::pki::{cli_environment, ClientIdentity};
use orgtrail_tests::samples::sample_files_of;
use orgtrail_tests::{send_all, StackOptions, TestStack, WAIT};
use serde_json::Value;

/// The bound of one CLI call.
const BOUND: Duration = Duration::from_secs(180);
/// The first minute of the background (a Sunday), and the minute after its last.
const HISTORY_START: &str = "2026-11-15T00:00:00Z";
const HISTORY_END: &str = "2026-11-30T00:00:00Z";
/// Where the Insight events are looked up, and the replay's window (dates: whole days).
const LOOKUP_START: &str = "2026-11-01";
const LOOKUP_END: &str = "2026-11-30";
const REPLAY_START: &str = "2026-11-15";
const REPLAY_END: &str = "2026-11-29";

const INVICTUS: &str = "invictus-ir-aws_dataset";
const INVICTUS_ACCOUNT: &str = "123837392027";
const GRYCAP: &str = "grycap-cloudtrail-tracker";
const GRYCAP_ACCOUNT: &str = "974349055189";

/// One account/region/API series of the background.
struct SeriesShape {
    data_set: &'static str,
    account_id: &'static str,
    aws_region: &'static str,
    event_source: &'static str,
    event_name: &'static str,
    /// Calls a minute at the day's quietest, before the daily shape.
    calls_per_minute: f64,
    /// The share of calls that return an error.
    error_share: f64,
}

const BACKGROUND: [SeriesShape; 5] = [
    SeriesShape {
        data_set: INVICTUS,
        account_id: INVICTUS_ACCOUNT,
        aws_region: "us-east-1",
        event_source: "ssm.amazonaws.com",
        event_name: "PutParameter",
        calls_per_minute: 0.2,
        error_share: 0.01,
    },
    SeriesShape {
        data_set: INVICTUS,
        account_id: INVICTUS_ACCOUNT,
        aws_region: "us-east-1",
        event_source: "ec2.amazonaws.com",
        event_name: "DescribeRouteTables",
        calls_per_minute: 0.4,
        error_share: 0.0,
    },
    SeriesShape {
        data_set: INVICTUS,
        account_id: INVICTUS_ACCOUNT,
        aws_region: "us-east-1",
        event_source: "kms.amazonaws.com",
        event_name: "Decrypt",
        calls_per_minute: 0.3,
        error_share: 0.02,
    },
    SeriesShape {
        data_set: INVICTUS,
        account_id: INVICTUS_ACCOUNT,
        aws_region: "us-east-1",
        event_source: "ssm.amazonaws.com",
        event_name: "DeleteParameter",
        calls_per_minute: 0.1,
        error_share: 0.0,
    },
    SeriesShape {
        data_set: GRYCAP,
        account_id: GRYCAP_ACCOUNT,
        aws_region: "sa-east-1",
        event_source: "opsworks.amazonaws.com",
        event_name: "DescribeStacks",
        calls_per_minute: 0.3,
        error_share: 0.01,
    },
];

/// A burst injected on top of the background: every minute of it adds 25 to 35 calls.
struct Burst {
    insight_type: &'static str,
    event_source: &'static str,
    event_name: &'static str,
    start: &'static str,
    minutes: i64,
    /// The burst's calls return errors.
    errors: bool,
}

const BURSTS: [Burst; 2] = [
    // A Friday afternoon: write calls.
    Burst {
        insight_type: "ApiCallRateInsight",
        event_source: "ssm.amazonaws.com",
        event_name: "PutParameter",
        start: "2026-11-27T14:07:00Z",
        minutes: 23,
        errors: false,
    },
    // A Saturday morning: a read API failing.
    Burst {
        insight_type: "ApiErrorRateInsight",
        event_source: "kms.amazonaws.com",
        event_name: "Decrypt",
        start: "2026-11-28T09:41:00Z",
        minutes: 17,
        errors: true,
    },
];

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// SplitMix64: the same organization on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Poisson (Knuth's method: the rates here are small).
    fn poisson(&mut self, mean: f64) -> u64 {
        let limit = (-mean).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit {
            count += 1;
            product *= self.unit();
        }
        count
    }

    fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

/// Office hours: quiet at night, busiest at 14:00 UTC, weekends at half the level.
fn daily_shape(minute: DateTime<Utc>) -> f64 {
    let hour = f64::from(minute.hour()) + f64::from(minute.minute()) / 60.0;
    let day = 1.0 + 3.0 * (-(hour - 14.0).powi(2) / (2.0 * 3.0_f64.powi(2))).exp();
    match minute.weekday() {
        Weekday::Sat | Weekday::Sun => day * 0.5,
        _ => day,
    }
}

/// The first real record of a data set for an API, without an error.
fn template(data_set: &str, event_source: &str, event_name: &str) -> Value {
    sample_files_of(data_set)
        .iter()
        .flat_map(|file| &file.records)
        .filter_map(|record| serde_json::from_str::<Value>(record).ok())
        .find(|record| {
            record["eventSource"] == event_source
                && record["eventName"] == event_name
                && record.get("errorCode").is_none()
        })
        .unwrap_or_else(|| panic!("no {event_source} {event_name} record in {data_set}"))
}

/// A copy of a real record at another time, with an eventID of its own, failing or not.
fn retimed(template: &Value, at: DateTime<Utc>, error: bool, random: &mut Random) -> String {
    let mut record = template.clone();
    let Some(fields) = record.as_object_mut() else {
        panic!("a sample record is not an object");
    };
    fields.insert(
        "eventTime".into(),
        Value::String(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    fields.insert("eventID".into(), Value::String(random.uuid()));
    if fields.contains_key("requestID") {
        fields.insert("requestID".into(), Value::String(random.uuid()));
    }
    fields.remove("errorCode");
    fields.remove("errorMessage");
    if error {
        fields.insert("errorCode".into(), Value::String("AccessDenied".into()));
        fields.insert(
            "errorMessage".into(),
            Value::String("User is not authorized to perform this operation".into()),
        );
    }
    record.to_string()
}

/// Calls and errors of one API in one minute, as generated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct MinuteCount {
    calls: u64,
    errors: u64,
}

/// The generated organization: one log file per account and region (so each scope's history
/// arrives in one transaction), and every API's counts per minute.
struct Organization {
    /// One call a day of another account's region, sent first (a quiet scope beside the
    /// busy ones).
    first_file: (String, Vec<u8>),
    files: Vec<(String, Vec<u8>)>,
    counts: BTreeMap<(String, String, i64), MinuteCount>,
    records: usize,
}

fn build_organization() -> Organization {
    let mut random = Random(0x1a51_6475);
    let start = time(HISTORY_START);
    let end = time(HISTORY_END);
    let mut counts: BTreeMap<(String, String, i64), MinuteCount> = BTreeMap::new();
    let mut by_scope: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    let templates: Vec<Value> = BACKGROUND
        .iter()
        .map(|series| template(series.data_set, series.event_source, series.event_name))
        .collect();
    let mut minute = start;
    while minute < end {
        let shape = daily_shape(minute);
        for (series, template) in BACKGROUND.iter().zip(&templates) {
            let calls = random.poisson(series.calls_per_minute * shape);
            for _ in 0..calls {
                let error = random.unit() < series.error_share;
                let at = minute + TimeDelta::seconds((random.next() % 60) as i64);
                by_scope
                    .entry((series.account_id, series.aws_region))
                    .or_default()
                    .push(retimed(template, at, error, &mut random));
                let count = counts
                    .entry((
                        series.event_source.to_string(),
                        series.event_name.to_string(),
                        minute.timestamp() / 60,
                    ))
                    .or_default();
                count.calls += 1;
                count.errors += u64::from(error);
            }
        }
        minute += TimeDelta::minutes(1);
    }
    for burst in &BURSTS {
        let (series, template) = BACKGROUND
            .iter()
            .zip(&templates)
            .find(|(series, _)| {
                series.event_source == burst.event_source && series.event_name == burst.event_name
            })
            .unwrap_or_else(|| panic!("no background series for {}", burst.event_name));
        for offset in 0..burst.minutes {
            let minute = time(burst.start) + TimeDelta::minutes(offset);
            let calls = 25 + random.next() % 11;
            for _ in 0..calls {
                let at = minute + TimeDelta::seconds((random.next() % 60) as i64);
                by_scope
                    .entry((series.account_id, series.aws_region))
                    .or_default()
                    .push(retimed(template, at, burst.errors, &mut random));
            }
            let count = counts
                .entry((
                    burst.event_source.to_string(),
                    burst.event_name.to_string(),
                    minute.timestamp() / 60,
                ))
                .or_default();
            count.calls += calls;
            count.errors += if burst.errors { calls } else { 0 };
        }
    }
    let mut daily = Vec::new();
    let mut day = start + TimeDelta::hours(12);
    while day < end {
        let mut record: Value =
            serde_json::from_str(&retimed(&templates[4], day, false, &mut random))
                .unwrap_or_default();
        record["awsRegion"] = Value::String("us-west-2".into());
        daily.push(record.to_string());
        day += TimeDelta::days(1);
    }
    let daily_texts: Vec<&str> = daily.iter().map(String::as_str).collect();
    let first_file = (
        format!("AWSLogs/{GRYCAP_ACCOUNT}/CloudTrail/us-west-2/2026/11/30/{GRYCAP_ACCOUNT}_CloudTrail_us-west-2_20261130T0000Z_daily.json.gz"),
        gzip(&log_file_json(&daily_texts)),
    );
    let mut records = daily.len();
    let files = by_scope
        .into_iter()
        .map(|((account, region), scope_records)| {
            records += scope_records.len();
            let texts: Vec<&str> = scope_records.iter().map(String::as_str).collect();
            (
                format!(
                    "AWSLogs/{account}/CloudTrail/{region}/2026/11/30/{account}_CloudTrail_{region}_20261130T0000Z_insights.json.gz"
                ),
                gzip(&log_file_json(&texts)),
            )
        })
        .collect();
    Organization {
        first_file,
        files,
        counts,
        records,
    }
}

/// Sends the organization's files through the normal ingest path; every record is stored.
/// The small file of every day goes first; each scope's history is one file of many batches,
/// spanning days whose partitions it makes as it goes.
async fn ingest(stack: &TestStack, organization: &Organization) {
    let sender = stack.ingest_sender(SenderSettings::default()).await;
    let mut accepted = 0;
    for files in [
        std::slice::from_ref(&organization.first_file),
        &organization.files[..],
    ] {
        let readers: Vec<Arc<dyn LogFileReader>> = files
            .iter()
            .map(|(key, bytes)| MemoryLogFile::shared("orgtrail-test-insights", key, bytes.clone()))
            .collect();
        for result in send_all(&sender, readers).await {
            let report = result
                .result
                .unwrap_or_else(|error| panic!("{}: {error}", result.origin));
            assert_eq!(report.rejected, 0, "{:?}", report.rejections);
            accepted += report.accepted as usize;
        }
    }
    assert_eq!(accepted, organization.records);
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

/// Insights on, evaluated every second, minutes settled a minute after they end.
fn live_options() -> StackOptions {
    StackOptions {
        environment: vec![
            ("ORGTRAIL_INSIGHTS__ENABLED".into(), "true".into()),
            ("ORGTRAIL_INSIGHTS__SETTLE_SECONDS".into(), "60".into()),
            (
                "ORGTRAIL_INSIGHTS__EVALUATION_INTERVAL_SECONDS".into(),
                "1".into(),
            ),
        ],
        ..StackOptions::default()
    }
}

/// Waits (bounded) until `count` Insights have ended, and returns the list.
async fn wait_for_ended_insights(stack: &TestStack, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = orgtrail_json_at(stack, &["insights", "list", "--max", "1000"]);
        let insights = listed.as_array().cloned().unwrap_or_default();
        let ended = insights
            .iter()
            .filter(|insight| !insight["endTime"].is_null())
            .count();
        if ended >= count {
            return insights;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} Insights did not end within {WAIT:?}: {listed:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every Insight event's record (compact, as stored), sorted by eventID.
fn insight_records(stack: &TestStack) -> Vec<String> {
    let stdout = orgtrail_ok_at(
        stack,
        &[
            "events",
            "lookup",
            "--category",
            "Insight",
            "--start",
            LOOKUP_START,
            "--end",
            LOOKUP_END,
            "--output",
            "jsonl",
        ],
    );
    let mut records: Vec<(String, String)> = stdout
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a record ({error}): {line}"));
            (
                record["eventID"].as_str().unwrap_or_default().to_string(),
                line.to_string(),
            )
        })
        .collect();
    records.sort();
    records.into_iter().map(|(_, line)| line).collect()
}

/// An Insight as both stacks must agree on it: everything but the ids of their databases.
fn comparable(insight: &Value) -> Value {
    let mut insight = insight.clone();
    if let Some(fields) = insight.as_object_mut() {
        fields.remove("findingId");
    }
    insight
}

fn minutes_between(a: &Value, b: DateTime<Utc>) -> i64 {
    let a = time(a.as_str().unwrap_or_else(|| panic!("not a time: {a}")));
    (a - b).num_minutes().abs()
}

/// The arguments of `orgtrail insights replay` over the replayed month.
const REPLAY_MONTH: [&str; 6] = [
    "insights",
    "replay",
    "--start",
    REPLAY_START,
    "--end",
    REPLAY_END,
];

/// `orgtrail insights replay` over the replayed month, as JSON.
fn replay_month(stack: &TestStack) -> Value {
    orgtrail_json_at(stack, &REPLAY_MONTH)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_found_live_explained_raised_and_replayed_into_the_same_insight_events() {
    let organization = build_organization();
    let live = TestStack::start_with(live_options()).await;
    ingest(&live, &organization).await;

    // Live: each burst found on time, and nothing else in this background.
    let insights = wait_for_ended_insights(&live, BURSTS.len()).await;
    assert_eq!(insights.len(), BURSTS.len(), "{insights:#?}");
    let mut found = Vec::new();
    for burst in &BURSTS {
        let insight = insights
            .iter()
            .find(|insight| {
                insight["insightType"] == burst.insight_type
                    && insight["eventSource"] == burst.event_source
                    && insight["eventName"] == burst.event_name
            })
            .unwrap_or_else(|| {
                panic!(
                    "no Insight for the {} burst: {insights:#?}",
                    burst.event_name
                )
            });
        let start = time(burst.start);
        let end = start + TimeDelta::minutes(burst.minutes);
        assert!(
            minutes_between(&insight["startTime"], start) <= 2,
            "{} starts at {} (the burst at {start})",
            burst.event_name,
            insight["startTime"]
        );
        assert!(
            minutes_between(&insight["endTime"], end) <= 5,
            "{} ends at {} (the burst at {end})",
            burst.event_name,
            insight["endTime"]
        );
        assert_eq!(insight["accountId"], INVICTUS_ACCOUNT);
        assert_eq!(insight["awsRegion"], "us-east-1");
        assert!(insight["peak"].as_u64().unwrap_or(0) >= 25, "{insight:#}");
        assert!(insight["baselineDurationMinutes"] == 10_080, "{insight:#}");
        found.push(insight.clone());
    }

    // The table shows them too.
    let table = orgtrail_ok_at(&live, &["insights", "list"]);
    for insight in &found {
        assert!(
            table.contains(insight["insightId"].as_str().unwrap_or("?")),
            "{table}"
        );
    }
    assert!(
        table.contains("ssm:PutParameter") && table.contains("kms:Decrypt"),
        "{table}"
    );
    let errors_only = orgtrail_json_at(
        &live,
        &["insights", "list", "--type", "ApiErrorRateInsight"],
    );
    assert_eq!(
        errors_only.as_array().map(Vec::len),
        Some(1),
        "{errors_only:#}"
    );
    let other_account = orgtrail_json_at(&live, &["insights", "list", "--account", GRYCAP_ACCOUNT]);
    assert_eq!(other_account.as_array().map(Vec::len), Some(0));

    // Each is a Start and an End Insight event, in CloudTrail's format, written by orgtrail.
    let records = insight_records(&live);
    assert_eq!(records.len(), 2 * BURSTS.len(), "{records:#?}");
    for insight in &found {
        let id = insight["insightId"].as_str().unwrap_or_default();
        let events: Vec<Value> = records
            .iter()
            .map(|line| serde_json::from_str::<Value>(line).unwrap_or_default())
            .filter(|record| record["sharedEventID"] == id)
            .collect();
        let states: Vec<&str> = events
            .iter()
            .map(|record| record["insightDetails"]["state"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(events.len(), 2, "{id}: {events:#?}");
        assert!(
            states.contains(&"Start") && states.contains(&"End"),
            "{states:?}"
        );
        for record in &events {
            assert_eq!(record["eventType"], "AwsCloudTrailInsight");
            assert_eq!(record["eventCategory"], "Insight");
            assert_eq!(record["recipientAccountId"], INVICTUS_ACCOUNT);
            assert_eq!(
                record["insightDetails"]["insightType"],
                insight["insightType"]
            );
            assert_eq!(record["insightDetails"]["eventName"], insight["eventName"]);
            let duration =
                &record["insightDetails"]["insightContext"]["statistics"]["insightDuration"];
            match record["insightDetails"]["state"].as_str() {
                Some("Start") => {
                    assert_eq!(record["eventID"], insight["startEventId"]);
                    assert_eq!(record["eventTime"], insight["startTime"]);
                    assert_eq!(duration, 1);
                }
                _ => {
                    assert_eq!(record["eventID"], insight["endEventId"]);
                    assert_eq!(record["eventTime"], insight["endTime"]);
                    assert_eq!(duration, &insight["insightDurationMinutes"]);
                }
            }
        }
    }
    let pool = live.pool().await;
    let ledgers: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT l.source, l.bucket FROM events AS e JOIN log_files AS l USING (log_file_id)
         WHERE e.event_category = 'Insight'",
    )
    .fetch_all(&pool)
    .await
    .unwrap_or_else(|error| panic!("cannot read the ledger: {error}"));
    assert_eq!(
        ledgers,
        [(
            "orgtrail-insights".to_string(),
            "orgtrail-insights".to_string()
        )]
    );
    pool.close().await;

    // One insight finding each, behind the Insight's Start event.
    let findings = orgtrail_json_at(&live, &["findings", "list", "--kind", "insight"]);
    let findings = findings.as_array().cloned().unwrap_or_default();
    assert_eq!(findings.len(), BURSTS.len(), "{findings:#?}");
    for insight in &found {
        let finding = findings
            .iter()
            .find(|finding| finding["findingId"] == insight["findingId"])
            .unwrap_or_else(|| panic!("no finding {} listed: {findings:#?}", insight["findingId"]));
        assert_eq!(finding["kind"], "insight");
        assert_eq!(finding["ruleId"], insight["insightType"]);
        assert_eq!(finding["eventIds"][0], insight["startEventId"]);
        assert_eq!(finding["eventTime"], insight["startTime"]);
    }

    // Explained: the minutes behind each, their counts the ones generated, the burst's unusual.
    for (burst, insight) in BURSTS.iter().zip(&found) {
        let id = insight["insightId"].as_str().unwrap_or_default();
        let explained = orgtrail_json_at(&live, &["insights", "explain", id]);
        assert_eq!(explained["insight"]["insightId"], id);
        let minutes = explained["minutes"].as_array().cloned().unwrap_or_default();
        assert!(
            minutes.len() >= burst.minutes as usize + 60,
            "{}",
            minutes.len()
        );
        let mut unusual = 0;
        for minute in &minutes {
            let at = time(minute["minute"].as_str().unwrap_or_default());
            let generated = organization
                .counts
                .get(&(
                    burst.event_source.to_string(),
                    burst.event_name.to_string(),
                    at.timestamp() / 60,
                ))
                .copied()
                .unwrap_or_default();
            let expected = if burst.errors {
                generated.errors
            } else {
                generated.calls
            };
            assert_eq!(minute["count"], expected, "{id} at {at}");
            let in_burst = at >= time(burst.start)
                && at < time(burst.start) + TimeDelta::minutes(burst.minutes);
            assert_eq!(minute["unusual"], in_burst, "{id} at {at}: {minute}");
            unusual += usize::from(in_burst);
        }
        assert_eq!(unusual, burst.minutes as usize);
        let shown = orgtrail_ok_at(&live, &["insights", "explain", id]);
        assert!(shown.contains("minutes (event time)"), "{shown}");
        assert!(
            shown.contains(&format!("insight             {id}")),
            "{shown}"
        );
    }

    // A replay over what live evaluation already wrote writes nothing.
    let replayed = replay_month(&live);
    assert_eq!(replayed["insightsFound"], BURSTS.len(), "{replayed:#}");
    assert_eq!(replayed["insightsWritten"], 0, "{replayed:#}");

    // Another stack, Insights off: the same files, then a replay, write the same events.
    let replay = TestStack::start_with(StackOptions {
        environment: vec![("ORGTRAIL_INSIGHTS__ENABLED".into(), "false".into())],
        ..StackOptions::default()
    })
    .await;
    ingest(&replay, &organization).await;
    assert!(
        insight_records(&replay).is_empty(),
        "nothing is evaluated with Insights off"
    );
    let first = replay_month(&replay);
    assert_eq!(first["insightsFound"], BURSTS.len(), "{first:#}");
    assert_eq!(first["insightsWritten"], BURSTS.len(), "{first:#}");
    assert!(first["seriesEvaluated"].as_u64().unwrap_or(0) >= BACKGROUND.len() as u64);
    assert_eq!(insight_records(&replay), records, "live and replay differ");
    let replayed_insights = orgtrail_json_at(&replay, &["insights", "list"]);
    let replayed_insights: Vec<Value> = replayed_insights
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(comparable)
        .collect();
    let live_insights: Vec<Value> = insights.iter().map(comparable).collect();
    assert_eq!(replayed_insights, live_insights);
    let second = replay_month(&replay);
    assert_eq!(second["insightsFound"], BURSTS.len(), "{second:#}");
    assert_eq!(second["insightsWritten"], 0, "{second:#}");
    assert_eq!(insight_records(&replay), records);
    let findings = orgtrail_json_at(&replay, &["findings", "list", "--kind", "insight"]);
    assert_eq!(findings.as_array().map(Vec::len), Some(BURSTS.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_set_listed_and_deleted_audited_and_readers_only_read() {
    let stack = TestStack::start_with(StackOptions {
        environment: vec![("ORGTRAIL_INSIGHTS__ENABLED".into(), "false".into())],
        ..StackOptions::default()
    })
    .await;
    let scope = [
        "--account",
        INVICTUS_ACCOUNT,
        "--event-source",
        "ssm.amazonaws.com",
        "--event-name",
        "PutParameter",
    ];
    let mut set = vec!["insights", "settings", "set"];
    set.extend_from_slice(&scope);
    set.extend_from_slice(&["--threshold-sigma", "6.5", "--min-rate", "20"]);
    let stored = orgtrail_json_at(&stack, &set);
    assert_eq!(stored["thresholdSigma"], 6.5);
    assert_eq!(stored["minRatePerMinute"], 20.0);
    assert_eq!(stored["disabled"], false);
    let disable = [
        "insights",
        "settings",
        "set",
        "--event-source",
        "sts.amazonaws.com",
        "--disabled",
    ];
    orgtrail_ok_at(&stack, &disable);

    let listed = orgtrail_json_at(&stack, &["insights", "settings", "list"]);
    let settings = listed["settings"].as_array().cloned().unwrap_or_default();
    assert_eq!(settings.len(), 2, "{listed:#}");
    assert!(settings
        .iter()
        .any(|setting| setting["eventName"] == "PutParameter"
            && setting["thresholdSigma"] == 6.5
            && setting["accountId"] == INVICTUS_ACCOUNT));
    assert!(settings
        .iter()
        .any(|setting| setting["eventSource"] == "sts.amazonaws.com"
            && setting["disabled"] == true
            && setting["thresholdSigma"].is_null()));
    assert_eq!(listed["defaults"]["threshold_sigma"], 5.0, "{listed:#}");
    let table = orgtrail_ok_at(&stack, &["insights", "settings", "list"]);
    assert!(
        table.contains(&format!(
            "account {INVICTUS_ACCOUNT}, ssm.amazonaws.com PutParameter"
        )),
        "{table}"
    );

    // Refused with the server's reason: an out-of-range sensitivity.
    let refused = orgtrail_at(
        &stack,
        &[
            "insights",
            "settings",
            "set",
            "--event-source",
            "ec2.amazonaws.com",
            "--threshold-sigma=-1",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).starts_with("error: cannot set the Insight setting: "),
        "{}",
        text(&refused.stderr)
    );

    // A reader lists Insights and settings; replays and tuning are the admins'.
    let endpoint = stack.endpoint();
    let reader = cli_environment(ClientIdentity::Reader);
    let as_reader = |arguments: &[&str]| {
        let mut all = vec!["--endpoint", endpoint.as_str()];
        all.extend_from_slice(arguments);
        run_orgtrail_with(&reader, &all, BOUND)
    };
    assert!(as_reader(&["insights", "list"]).status.success());
    assert!(as_reader(&["insights", "settings", "list"])
        .status
        .success());
    for arguments in [
        &REPLAY_MONTH[..],
        &[
            "insights",
            "settings",
            "set",
            "--event-source",
            "iam.amazonaws.com",
            "--disabled",
        ][..],
        &[
            "insights",
            "settings",
            "delete",
            "--event-source",
            "sts.amazonaws.com",
        ][..],
    ] {
        let refused = as_reader(arguments);
        assert!(!refused.status.success(), "a reader ran {arguments:?}");
        assert!(
            text(&refused.stderr).contains("has the role reader"),
            "{arguments:?}: {}",
            text(&refused.stderr)
        );
    }

    let mut delete = vec!["insights", "settings", "delete"];
    delete.extend_from_slice(&scope);
    let deleted = orgtrail_ok_at(&stack, &delete);
    assert!(deleted.contains("deleted"), "{deleted}");
    let again = orgtrail_at(&stack, &delete);
    assert!(
        !again.status.success(),
        "a deleted setting is deleted again"
    );
    let listed = orgtrail_json_at(&stack, &["insights", "settings", "list"]);
    assert_eq!(
        listed["settings"].as_array().map(Vec::len),
        Some(1),
        "{listed:#}"
    );

    // Audited: each change with the admin behind it, before and after.
    let audited = orgtrail_json_at(&stack, &["audit", "list", "--action", "insights."]);
    let mut entries = audited.as_array().cloned().unwrap_or_default();
    entries.sort_by_key(|entry| entry["auditId"].as_i64());
    let actions: Vec<&str> = entries
        .iter()
        .map(|entry| entry["action"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        actions,
        [
            "insights.setting.set",
            "insights.setting.set",
            "insights.setting.delete"
        ],
        "{audited:#}"
    );
    let subject = format!("{INVICTUS_ACCOUNT}/ssm.amazonaws.com/PutParameter");
    assert_eq!(entries[0]["subject"], subject.as_str());
    assert!(entries[0]["before"].is_null());
    assert_eq!(entries[0]["after"]["thresholdSigma"], 6.5);
    assert_eq!(entries[1]["subject"], "*/sts.amazonaws.com/*");
    assert_eq!(entries[2]["subject"], subject.as_str());
    assert_eq!(entries[2]["before"]["minRatePerMinute"], 20.0);
    assert!(entries[2]["after"].is_null());
    for entry in &entries {
        assert!(
            entry["actor"]
                .as_str()
                .unwrap_or_default()
                .contains("[stated: "),
            "{entry:#}"
        );
    }
}
