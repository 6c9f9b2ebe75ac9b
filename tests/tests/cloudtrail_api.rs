//! The CloudTrail-compatible endpoint with the clients people already use — the AWS CLI and
//! boto3 from PyPI, over TLS with the test CA, signing with keys made by `orgtrail tokens
//! create --aws-credentials` — against a running aggregator holding the real sample records.
//! What each lookup should return is computed from the sample files directly
//! (`samples::expected_store`), never from orgtrail's answers.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use orgtrail_tests::aws_clients::{
    aws_cli_lookup_events, boto3_calls, create_access_key, endpoint_environment, test_sdk_client,
    AccessKey,
};
use orgtrail_tests::cli_process::{orgtrail_ok_at, run_orgtrail, CLI_BOUND};
use orgtrail_tests::samples::{
    expected_store, record_event_id, sample_files, values_by_frequency, ExpectedEvent,
    ExpectedStore,
};
use orgtrail_tests::stack::free_port;
use orgtrail_tests::{ingest_sample_files, StackOptions, TestStack};

/// The values of one lookup attribute in an expected event.
type Field = Box<dyn Fn(&ExpectedEvent) -> Vec<String>>;

/// A stack serving the endpoint, with the sample records stored.
async fn stack_with_samples(environment: Vec<(String, String)>) -> (TestStack, u16, ExpectedStore) {
    let port = free_port();
    let mut options = StackOptions {
        environment: endpoint_environment(port),
        ..Default::default()
    };
    options.environment.extend(environment);
    let stack = TestStack::start_with(options).await;
    let files = sample_files();
    let expected = expected_store(&files);
    ingest_sample_files(&stack, &files).await;
    (stack, port, expected)
}

/// The ids of the expected events of `category` that `keep` selects.
fn expected_ids(
    expected: &ExpectedStore,
    category: &str,
    keep: impl Fn(&ExpectedEvent) -> bool,
) -> BTreeSet<String> {
    expected
        .events
        .values()
        .filter(|event| event.event_category == category && keep(event))
        .map(|event| event.event_id.clone())
        .collect()
}

/// Checks a list of returned events: newest first, none twice, each `CloudTrailEvent` the
/// stored record (as JSON) and `EventId` its eventID; returns their ids.
fn checked_ids(expected: &ExpectedStore, events: &[Value]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut previous: Option<i64> = None;
    for event in events {
        let id = event["EventId"].as_str().expect("EventId").to_string();
        let record = event["CloudTrailEvent"]
            .as_str()
            .expect("CloudTrailEvent is a string");
        assert_eq!(record_event_id(record), id);
        let wanted = expected
            .events
            .get(&id)
            .unwrap_or_else(|| panic!("event {id} is not in the samples"));
        let returned: Value = serde_json::from_str(record).expect("CloudTrailEvent parses");
        let original: Value = serde_json::from_str(&wanted.record).unwrap();
        assert_eq!(
            returned, original,
            "event {id}: CloudTrailEvent is not the stored record"
        );
        let time = event["EventTime"].as_i64().expect("EventTime");
        assert_eq!(time, wanted.event_time.timestamp_millis(), "event {id}");
        if let Some(previous) = previous {
            assert!(previous >= time, "not newest first at {id}");
        }
        previous = Some(time);
        assert!(ids.insert(id.clone()), "event {id} came twice");
    }
    ids
}

/// The AWS CLI's events (it paginates by itself), with their EventTime as epoch milliseconds
/// as the boto3 runs give them.
fn cli_events(output: &Value) -> Vec<Value> {
    output["Events"]
        .as_array()
        .expect("Events")
        .iter()
        .map(|event| {
            let mut event = event.clone();
            let seconds = event["EventTime"]
                .as_f64()
                .or_else(|| {
                    event["EventTime"].as_str().and_then(|text| {
                        DateTime::parse_from_rfc3339(text)
                            .ok()
                            .map(|time| time.timestamp_millis() as f64 / 1000.0)
                    })
                })
                .expect("EventTime");
            event["EventTime"] = json!((seconds * 1000.0).round() as i64);
            event
        })
        .collect()
}

fn cli_lookup(port: u16, key: &AccessKey, arguments: &[&str]) -> Vec<Value> {
    let (code, output, stderr) = aws_cli_lookup_events(port, key, arguments);
    assert_eq!(
        code, 0,
        "aws cloudtrail lookup-events {arguments:?}: {stderr}"
    );
    cli_events(&output)
}

fn boto3_events(result: &Value) -> Vec<Value> {
    assert!(result.get("error").is_none(), "boto3 failed: {result}");
    result["events"].as_array().expect("events").clone()
}

fn error_code(result: &Value) -> (String, u64, String) {
    let error = result
        .get("error")
        .unwrap_or_else(|| panic!("the call was served: {result}"));
    assert!(result.get("events").is_none());
    assert!(
        error["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "no x-amzn-RequestId: {result}"
    );
    (
        error["code"].as_str().unwrap_or_default().to_string(),
        error["status"].as_u64().unwrap_or_default(),
        error["exception"].as_str().unwrap_or_default().to_string(),
    )
}

fn epoch(time: DateTime<Utc>) -> String {
    time.timestamp().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_and_boto3_read_the_organization_as_cloudtrail() {
    let (stack, port, expected) = stack_with_samples(Vec::new()).await;
    let key = create_access_key(&stack, "aws-cli-reader", &[]);

    // ConsoleLogin, five a page: the CLI follows NextToken to the last page.
    let console_logins = expected_ids(&expected, "Management", |event| {
        event.event_name.as_deref() == Some("ConsoleLogin")
    });
    assert!(
        console_logins.len() > 5,
        "the samples hold few ConsoleLogins"
    );
    let events = cli_lookup(
        port,
        &key,
        &[
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=ConsoleLogin",
            "--page-size",
            "5",
        ],
    );
    assert_eq!(checked_ids(&expected, &events), console_logins);

    // Every attribute key, with its most frequent value among management events.
    let management = || {
        expected
            .events
            .values()
            .filter(|event| event.event_category == "Management")
    };
    let keys: [(&str, Field); 8] = [
        ("EventId", Box::new(|event| vec![event.event_id.clone()])),
        (
            "EventName",
            Box::new(|event| event.event_name.iter().cloned().collect()),
        ),
        (
            "ReadOnly",
            Box::new(|event| {
                event
                    .read_only
                    .iter()
                    .map(|flag| flag.to_string())
                    .collect()
            }),
        ),
        (
            "Username",
            Box::new(|event| event.username.iter().cloned().collect()),
        ),
        (
            "ResourceType",
            Box::new(|event| event.resource_types.clone()),
        ),
        (
            "ResourceName",
            Box::new(|event| event.resource_names.clone()),
        ),
        (
            "EventSource",
            Box::new(|event| event.event_source.iter().cloned().collect()),
        ),
        (
            "AccessKeyId",
            Box::new(|event| event.access_key_id.iter().cloned().collect()),
        ),
    ];
    for (attribute, field) in &keys {
        let (value, _) = values_by_frequency(management(), field)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {attribute} in the samples"));
        let wanted = expected_ids(&expected, "Management", |event| {
            field(event).contains(&value)
        });
        let events = cli_lookup(
            port,
            &key,
            &[
                "--lookup-attributes",
                &format!("AttributeKey={attribute},AttributeValue={value}"),
            ],
        );
        assert_eq!(
            checked_ids(&expected, &events),
            wanted,
            "{attribute} = {value}"
        );
    }

    // A time window (inclusive at both ends), across accounts and regions.
    let mut times: Vec<DateTime<Utc>> = management().map(|event| event.event_time).collect();
    times.sort();
    let (start, end) = (times[times.len() / 4], times[times.len() / 2]);
    let start = DateTime::from_timestamp(start.timestamp(), 0).unwrap();
    let end = DateTime::from_timestamp(end.timestamp() + 1, 0).unwrap();
    let events = cli_lookup(
        port,
        &key,
        &["--start-time", &epoch(start), "--end-time", &epoch(end)],
    );
    let wanted = expected_ids(&expected, "Management", |event| {
        event.event_time >= start && event.event_time <= end
    });
    assert!(!wanted.is_empty());
    assert_eq!(checked_ids(&expected, &events), wanted);

    // Insight events, and only with EventCategory insight.
    let insights = expected_ids(&expected, "Insight", |_| true);
    assert!(!insights.is_empty(), "the samples hold no Insight events");
    let events = cli_lookup(port, &key, &["--event-category", "insight"]);
    assert_eq!(checked_ids(&expected, &events), insights);
    let events = cli_lookup(
        port,
        &key,
        &[
            "--event-category",
            "insight",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=UpdateInstanceInformation",
        ],
    );
    assert_eq!(checked_ids(&expected, &events), insights);

    // boto3's paginator over everything, record for record what `orgtrail events lookup
    // --output jsonl` prints for the same question.
    let results = boto3_calls(
        port,
        &key,
        vec![
            json!({"paginate": {}, "page_size": 50}),
            // orgtrail's extensions: several attributes at once (all must match), and the
            // account of the event.
            json!({"paginate": {"LookupAttributes": [
                {"AttributeKey": "EventSource", "AttributeValue": "signin.amazonaws.com"},
                {"AttributeKey": "ReadOnly", "AttributeValue": "false"}]}}),
        ],
    );
    let everything = boto3_events(&results[0]);
    assert!(results[0]["pages"].as_u64().unwrap() > 1);
    let stdout = orgtrail_ok_at(
        &stack,
        &[
            "events",
            "lookup",
            "--category",
            "Management",
            "--output",
            "jsonl",
        ],
    );
    let cli_records: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let boto3_records: Vec<Value> = everything
        .iter()
        .map(|event| serde_json::from_str(event["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(boto3_records.len(), cli_records.len());
    assert!(
        boto3_records == cli_records,
        "boto3 and orgtrail events lookup differ"
    );
    assert_eq!(
        checked_ids(&expected, &everything),
        expected_ids(&expected, "Management", |_| true)
    );
    let both = expected_ids(&expected, "Management", |event| {
        event.event_source.as_deref() == Some("signin.amazonaws.com")
            && event.read_only == Some(false)
    });
    assert!(!both.is_empty());
    assert_eq!(checked_ids(&expected, &boto3_events(&results[1])), both);

    // The AWS SDK for Rust (a Smithy SDK: another X-Amz-Target spelling, its own SigV4 and
    // parser) pages through the same ConsoleLogins.
    let client = test_sdk_client(port, &key);
    let mut pages = client
        .lookup_events()
        .lookup_attributes(
            aws_sdk_cloudtrail::types::LookupAttribute::builder()
                .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::EventName)
                .attribute_value("ConsoleLogin")
                .build()
                .unwrap(),
        )
        .max_results(5)
        .into_paginator()
        .send();
    let mut sdk_ids = BTreeSet::new();
    while let Some(page) = pages.next().await {
        for event in page.expect("the SDK's page").events.unwrap_or_default() {
            let id = event.event_id.expect("EventId");
            let record = event.cloud_trail_event.expect("CloudTrailEvent");
            assert_eq!(record_event_id(&record), id);
            let time = event.event_time.expect("EventTime");
            assert_eq!(
                time.to_millis().unwrap(),
                expected.events[&id].event_time.timestamp_millis()
            );
            assert!(sdk_ids.insert(id));
        }
    }
    assert_eq!(sdk_ids, console_logins);

    // The account extension, and the shape of each Event beyond the record.
    let by_account: BTreeMap<String, usize> = management()
        .filter_map(|event| event.account_id.clone())
        .fold(BTreeMap::new(), |mut counts, account| {
            *counts.entry(account).or_default() += 1;
            counts
        });
    let (account, _) = by_account.iter().max_by_key(|(_, count)| **count).unwrap();
    let results = boto3_calls(
        port,
        &key,
        vec![json!({"paginate": {"LookupAttributes": [
            {"AttributeKey": "AccountId", "AttributeValue": account}]}})],
    );
    let events = boto3_events(&results[0]);
    assert_eq!(
        checked_ids(&expected, &events),
        expected_ids(&expected, "Management", |event| event.account_id.as_ref()
            == Some(account))
    );
    for event in &events {
        let wanted = &expected.events[event["EventId"].as_str().unwrap()];
        assert_eq!(event["EventName"].as_str(), wanted.event_name.as_deref());
        assert_eq!(
            event["EventSource"].as_str(),
            wanted.event_source.as_deref()
        );
        assert_eq!(event["Username"].as_str(), wanted.username.as_deref());
        // CloudTrail writes "" for console sessions: no AccessKeyId.
        assert_eq!(
            event["AccessKeyId"].as_str(),
            wanted.access_key_id.as_deref().filter(|id| !id.is_empty())
        );
        assert_eq!(
            event["ReadOnly"].as_str(),
            wanted
                .read_only
                .map(|flag| if flag { "true" } else { "false" })
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_callers_and_bad_requests_get_cloudtrails_errors() {
    let (stack, port, expected) = stack_with_samples(Vec::new()).await;
    let reader = create_access_key(&stack, "reader", &[]);
    let accounts: BTreeSet<String> = expected
        .events
        .values()
        .filter(|event| event.event_category == "Management")
        .filter_map(|event| event.account_id.clone())
        .collect();
    let mut accounts = accounts.into_iter();
    let (own, other) = (accounts.next().unwrap(), accounts.next().unwrap());
    let scoped = create_access_key(&stack, "team-a", &["--account", &own]);
    let revoked = create_access_key(&stack, "revoked", &[]);
    orgtrail_ok_at(&stack, &["tokens", "revoke", "revoked"]);
    let expired = create_access_key(&stack, "expired", &["--expires-in-days", "1"]);
    sqlx::query("UPDATE api_tokens SET expires_at = $1::timestamptz - interval '1 hour' WHERE name = 'expired'")
        .bind(orgtrail_tests::TEST_NOW)
        .execute(&stack.pool().await)
        .await
        .unwrap();
    // Keys are for reading events, scoped to well-formed accounts.
    for arguments in [&["--role", "ingest"][..], &["--account", "12345"][..]] {
        let endpoint = stack.endpoint();
        let mut all = vec![
            "--endpoint",
            endpoint.as_str(),
            "tokens",
            "create",
            "--name",
            "refused",
            "--aws-credentials",
        ];
        all.extend_from_slice(arguments);
        let output = run_orgtrail(&all, CLI_BOUND);
        assert!(!output.status.success(), "{arguments:?} made a key");
    }

    let wrong_secret = AccessKey {
        access_key_id: reader.access_key_id.clone(),
        secret_access_key: "A".repeat(40),
    };
    let unknown = AccessKey {
        access_key_id: "OTKAAAAAAAAAAAAAAAAA".into(),
        secret_access_key: reader.secret_access_key.clone(),
    };
    let lookup = json!({"call": "lookup_events", "params": {"MaxResults": 5}});
    let as_key = |key: &AccessKey, call: &Value| {
        let mut call = call.clone();
        call["access_key_id"] = json!(key.access_key_id);
        call["secret_access_key"] = json!(key.secret_access_key);
        call
    };
    let mut signed_early = lookup.clone();
    signed_early["signed_minutes_ago"] = json!(20);
    let other_account = json!({"call": "lookup_events", "params": {"LookupAttributes": [
        {"AttributeKey": "AccountId", "AttributeValue": other}]}});
    let results = boto3_calls(
        port,
        &reader,
        vec![
            as_key(&wrong_secret, &lookup),
            as_key(&unknown, &lookup),
            as_key(&revoked, &lookup),
            as_key(&expired, &lookup),
            signed_early,
            as_key(&scoped, &other_account),
            json!({"call": "lookup_events", "unsigned": true}),
            // Served: the scoped key sees its own account only.
            as_key(&scoped, &json!({"paginate": {}})),
        ],
    );
    let codes: Vec<(String, u64, String)> = results[..7].iter().map(error_code).collect();
    assert_eq!(
        codes,
        vec![
            (
                "InvalidSignatureException".into(),
                403,
                "ClientError".into()
            ),
            (
                "UnrecognizedClientException".into(),
                403,
                "ClientError".into()
            ),
            (
                "UnrecognizedClientException".into(),
                403,
                "ClientError".into()
            ),
            ("ExpiredTokenException".into(), 403, "ClientError".into()),
            (
                "InvalidSignatureException".into(),
                403,
                "ClientError".into()
            ),
            // CloudTrail's model names these two: botocore raises its own classes.
            (
                "AccessDeniedException".into(),
                403,
                "AccessDeniedException".into()
            ),
            (
                "MissingAuthenticationTokenException".into(),
                403,
                "ClientError".into()
            ),
        ]
    );
    assert!(
        results[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        results[4]
    );
    let own_events = boto3_events(&results[7]);
    assert_eq!(
        checked_ids(&expected, &own_events),
        expected_ids(&expected, "Management", |event| event.account_id.as_ref()
            == Some(&own))
    );

    // Refusals are audited, with who and why.
    let refusals: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, details->>'code' FROM audit_log
         WHERE action = 'call.refused' AND subject = 'CloudTrail_20131101.LookupEvents'",
    )
    .fetch_all(&stack.pool().await)
    .await
    .unwrap();
    let actors: BTreeSet<String> = refusals
        .iter()
        .map(|(actor, _)| actor.split(' ').next().unwrap_or_default().to_string())
        .collect();
    for actor in [
        "token:reader",
        "token:revoked",
        "token:expired",
        "token:team-a",
    ] {
        assert!(
            actors.contains(actor),
            "no audited refusal of {actor}: {refusals:?}"
        );
    }
    assert!(refusals
        .iter()
        .any(|(actor, code)| actor.starts_with("token:team-a") && code == "PermissionDenied"));

    // Bad requests: each a 4xx in the AWS shape, with a request id.
    let first_page = boto3_calls(
        port,
        &reader,
        vec![json!({"call": "lookup_events", "params": {"MaxResults": 2}})],
    );
    let token = first_page[0]["next_token"]
        .as_str()
        .expect("a NextToken")
        .to_string();
    let results = boto3_calls(
        port,
        &reader,
        vec![
            json!({"call": "lookup_events", "params": {"NextToken": "not-a-token"}}),
            // A token of another query.
            json!({"call": "lookup_events", "params": {"NextToken": token, "LookupAttributes": [
                {"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}]}}),
            json!({"call": "lookup_events", "params": {"MaxResults": 51}}),
            json!({"call": "lookup_events", "params": {"StartTime": 1_700_000_000, "EndTime": 1_600_000_000}}),
            json!({"call": "lookup_events", "params": {"LookupAttributes": [
                {"AttributeKey": "Colour", "AttributeValue": "blue"}]}}),
            json!({"call": "lookup_events", "params": {"EventCategory": "insight", "LookupAttributes": [
                {"AttributeKey": "Username", "AttributeValue": "alice"}]}}),
            json!({"call": "lookup_events", "params": {"EventCategory": "data"}}),
            // Another CloudTrail operation.
            json!({"call": "describe_trails"}),
            json!({"call": "list_trails"}),
        ],
    );
    let codes: Vec<(String, u64)> = results
        .iter()
        .map(|result| {
            let (code, status, _) = error_code(result);
            (code, status)
        })
        .collect();
    let expected_codes = [
        "InvalidNextTokenException",
        "InvalidNextTokenException",
        "InvalidMaxResultsException",
        "InvalidTimeRangeException",
        "InvalidLookupAttributesException",
        "InvalidLookupAttributesException",
        "InvalidEventCategoryException",
        "UnsupportedOperationException",
        "UnsupportedOperationException",
    ];
    assert_eq!(
        codes,
        expected_codes
            .iter()
            .map(|code| (code.to_string(), 400))
            .collect::<Vec<_>>()
    );
    // botocore raises CloudTrail's modelled errors as their own exception classes.
    assert_eq!(error_code(&results[2]).2, "InvalidMaxResultsException");
    assert_eq!(error_code(&results[0]).2, "InvalidNextTokenException");

    // What no client method sends: botocore builds, signs and sends it as is.
    let target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
    let raw = |target: &str, content_type: Option<&str>, body: String| json!({"raw": {"target": target, "content_type": content_type, "body": body}});
    let json_type = Some("application/x-amz-json-1.1");
    let results = boto3_calls(
        port,
        &reader,
        vec![
            raw(target, json_type, "{\"MaxResults\": ".into()),
            raw(target, json_type, "[1, 2]".into()),
            raw(target, json_type, "{\"MaxResults\": \"ten\"}".into()),
            raw(target, json_type, "{\"MaxResults\": 0}".into()),
            raw("DynamoDB_20120810.ListTables", json_type, "{}".into()),
            raw(target, Some("text/plain"), "{}".into()),
            raw(
                target,
                json_type,
                format!("{{\"NextToken\": \"{}\"}}", "x".repeat(70 * 1024)),
            ),
            raw(target, json_type, "{}".into()),
        ],
    );
    let answers: Vec<(u64, String)> = results
        .iter()
        .map(|result| {
            let raw = &result["raw"];
            assert!(
                raw["request_id"].as_str().is_some_and(|id| !id.is_empty()),
                "no x-amzn-RequestId: {result}"
            );
            assert_eq!(raw["content_type"], "application/x-amz-json-1.1");
            (
                raw["status"].as_u64().unwrap(),
                raw["body"]["__type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        vec![
            (400, "SerializationException".into()),
            (400, "SerializationException".into()),
            (400, "SerializationException".into()),
            (400, "InvalidMaxResultsException".into()),
            (400, "UnknownOperationException".into()),
            (400, "SerializationException".into()),
            (413, "RequestEntityTooLargeException".into()),
            (200, "".into()),
        ]
    );
    assert_eq!(
        results[7]["raw"]["body"]["Events"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_access_key_is_rate_limited_on_its_own() {
    let port = free_port();
    let mut options = StackOptions {
        environment: endpoint_environment(port),
        ..Default::default()
    };
    options.environment.extend([
        (
            "ORGTRAIL_SERVER__PER_CALLER_REQUESTS_PER_SECOND".into(),
            "0.1".into(),
        ),
        ("ORGTRAIL_SERVER__PER_CALLER_BURST".into(), "6".into()),
    ]);
    let stack = TestStack::start_with(options).await;
    let busy = create_access_key(&stack, "busy", &[]);
    let calm = create_access_key(&stack, "calm", &[]);
    let lookup = json!({"call": "lookup_events", "params": {"MaxResults": 1}});
    let results = boto3_calls(port, &busy, vec![lookup.clone(); 8]);
    let throttled = results
        .iter()
        .filter(|result| result.get("error").is_some())
        .map(error_code)
        .collect::<Vec<_>>();
    assert_eq!(
        throttled,
        vec![
            (
                "ThrottlingException".to_string(),
                400,
                "ThrottlingException".to_string()
            );
            2
        ],
        "{results:?}"
    );
    // Another key has its own allowance.
    let results = boto3_calls(port, &calm, vec![lookup.clone()]);
    assert!(results[0].get("error").is_none(), "{results:?}");

    // A key rotation with re-encryption re-seals the secrets too, and they still verify.
    orgtrail_ok_at(&stack, &["keys", "rotate", "--reencrypt"]);
    let pool = stack.pool().await;
    let deadline = std::time::Instant::now() + orgtrail_tests::WAIT;
    loop {
        let stale: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_tokens
             WHERE key_id IS DISTINCT FROM (SELECT max(key_id) FROM data_keys)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if stale == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stale} access keys not re-sealed under the new data key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let results = boto3_calls(port, &calm, vec![lookup]);
    assert!(results[0].get("error").is_none(), "{results:?}");

    let listed = orgtrail_ok_at(&stack, &["tokens", "list", "--output", "json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let busy_row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["name"] == "busy")
        .unwrap();
    assert_eq!(busy_row["accessKeyId"], json!(busy.access_key_id));
    assert!(!listed.to_string().contains(&busy.secret_access_key));
}

/// Lake's rows of a `(text, count)` query as a map.
fn lake_counts(result: &Value) -> BTreeMap<String, i64> {
    assert_eq!(result["status"], "FINISHED", "{result}");
    result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let cells: Vec<&str> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|cell| {
                    cell.as_object()
                        .unwrap()
                        .values()
                        .next()
                        .unwrap()
                        .as_str()
                        .unwrap()
                })
                .collect();
            (cells[0].to_string(), cells[1].parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn lakes_queries_run_through_boto3_and_the_aws_cli_within_the_keys_scope() {
    let (stack, port, expected) = stack_with_samples(Vec::new()).await;
    let everyone = create_access_key(&stack, "analyst", &[]);
    let mut per_account: BTreeMap<String, i64> = BTreeMap::new();
    let mut per_name: BTreeMap<String, i64> = BTreeMap::new();
    for event in expected.events.values() {
        *per_account
            .entry(event.account_id.clone().unwrap_or_default())
            .or_default() += 1;
        *per_name
            .entry(event.event_name.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let (own, own_count) = per_account
        .iter()
        .filter(|(account, _)| !account.is_empty())
        .max_by_key(|(_, count)| **count)
        .map(|(account, count)| (account.clone(), *count))
        .unwrap();
    let scoped = create_access_key(&stack, "team-b", &["--account", &own]);

    // The whole organization, in pages of 7 rows; Lake's FROM names the event data store.
    let results = boto3_calls(
        port,
        &everyone,
        vec![json!({
            "lake": "SELECT coalesce(eventname, '') AS name, count(*) AS n FROM orgtrail GROUP BY 1",
            "page_size": 7
        })],
    );
    assert!(results[0]["pages"].as_u64().unwrap() > 1);
    assert_eq!(lake_counts(&results[0]), per_name);
    let query_id = results[0]["query_id"].as_str().unwrap().to_string();

    // The scoped key reads its account, whatever it asks; it cannot see the other's query.
    let results = boto3_calls(
        port,
        &scoped,
        vec![
            json!({"lake": "SELECT recipientaccountid, count(*) FROM events GROUP BY 1"}),
            json!({"call": "describe_query", "params": {"QueryId": query_id}}),
        ],
    );
    assert_eq!(
        lake_counts(&results[0]),
        BTreeMap::from([(own.clone(), own_count)])
    );
    assert_eq!(error_code(&results[1]).0, "QueryIdNotFoundException");

    // A failed statement, listing, cancelling a finished query, and a write refused.
    let results = boto3_calls(
        port,
        &everyone,
        vec![
            json!({"lake": "DELETE FROM events"}),
            json!({"call": "list_queries", "params": {"EventDataStore": "orgtrail"}}),
            json!({"call": "cancel_query", "params": {"QueryId": query_id}}),
            json!({"call": "get_query_results", "params": {"QueryId": query_id, "NextToken": "bogus"}}),
            json!({"call": "list_queries", "params": {"EventDataStore": "another"}}),
        ],
    );
    assert_eq!(results[0]["status"], "FAILED", "{}", results[0]);
    assert!(results[0]["error"].as_str().unwrap().contains("refused"));
    assert_eq!(error_code(&results[2]).0, "InactiveQueryException");
    assert_eq!(error_code(&results[3]).0, "InvalidNextTokenException");
    assert_eq!(error_code(&results[4]).0, "EventDataStoreNotFoundException");

    // And the AWS CLI, unchanged: start-query, then get-query-results.
    let python = std::env::var(orgtrail_tests::aws_clients::AWS_PYTHON_VARIABLE).unwrap();
    let run = |arguments: &[&str]| -> Value {
        let mut command = std::process::Command::new(&python);
        command
            .args(["-m", "awscli", "cloudtrail"])
            .args(arguments)
            .args([
                "--endpoint-url",
                &format!("https://127.0.0.1:{port}"),
                "--region",
                "eu-west-1",
                "--output",
                "json",
            ])
            .arg("--ca-bundle")
            .arg(orgtrail_tests::pki::ca_file())
            .env("AWS_ACCESS_KEY_ID", &everyone.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &everyone.secret_access_key)
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
        let output = orgtrail_tests::cli_process::run_bounded(command, None, CLI_BOUND);
        assert!(
            output.status.success(),
            "aws {arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let started = run(&[
        "start-query",
        "--query-statement",
        "SELECT count(*) AS n FROM orgtrail",
    ]);
    let query_id = started["QueryId"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + orgtrail_tests::WAIT;
    let results = loop {
        let results = run(&["get-query-results", "--query-id", &query_id]);
        if results["QueryStatus"] != "RUNNING" {
            break results;
        }
        assert!(std::time::Instant::now() < deadline, "{results}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(results["QueryStatus"], "FINISHED", "{results}");
    assert_eq!(
        results["QueryResultRows"][0][0]["n"],
        json!(expected.events.len().to_string())
    );
}
