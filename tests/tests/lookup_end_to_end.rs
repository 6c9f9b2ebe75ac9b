//! Lookups over the ingested samples: every Event history attribute, their combinations and
//! orgtrail's filters return exactly the events a direct scan of the input files selects;
//! pages return each event once, newest first.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, DurationRound, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::event_service_client::EventServiceClient;
use orgtrail_client::AuthChannel;

use orgtrail_tests::samples::{
    expected_store, record_event_id, sample_files, values_by_frequency, ExpectedEvent,
    ExpectedStore,
};
use orgtrail_tests::{ingest_sample_files, test_now, TestStack};
use tonic::Code;

type Predicate = Box<dyn Fn(&ExpectedEvent) -> bool>;

async fn stack_with_samples() -> (TestStack, ExpectedStore) {
    let stack = TestStack::start().await;
    let files = sample_files();
    let expected = expected_store(&files);
    ingest_sample_files(&stack, &files).await;
    (stack, expected)
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

fn attribute(key: pb::LookupAttributeKey, value: &str) -> pb::LookupAttribute {
    pb::LookupAttribute {
        key: key.into(),
        value: value.into(),
    }
}

/// Every page of a lookup; checks that no event comes twice and that the order is newest first.
async fn lookup_all(
    client: &mut EventServiceClient<AuthChannel>,
    mut request: pb::LookupEventsRequest,
    page_size: u32,
) -> Vec<pb::Event> {
    request.max_results = page_size;
    let mut events: Vec<pb::Event> = Vec::new();
    for _page in 0..20_000 {
        let page = client
            .lookup_events(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(page.events.len() <= page_size as usize);
        events.extend(page.events);
        if page.next_token.is_empty() {
            let ids: Vec<&str> = events.iter().map(|event| event.event_id.as_str()).collect();
            let distinct: HashSet<&str> = ids.iter().copied().collect();
            assert_eq!(distinct.len(), ids.len(), "an event came twice");
            for pair in events.windows(2) {
                let key = |event: &pb::Event| {
                    let time = event.event_time.unwrap();
                    (time.seconds, time.nanos, event.event_id.clone())
                };
                assert!(
                    key(&pair[0]) > key(&pair[1]),
                    "not newest first: {:?} then {:?}",
                    key(&pair[0]),
                    key(&pair[1])
                );
            }
            return events;
        }
        request.next_token = page.next_token;
    }
    panic!("more than 20000 pages");
}

fn returned_ids(events: &[pb::Event]) -> HashSet<String> {
    events
        .iter()
        .map(|event| record_event_id(&event.cloud_trail_event))
        .collect()
}

fn expected_ids(
    expected: &ExpectedStore,
    predicate: &dyn Fn(&ExpectedEvent) -> bool,
) -> HashSet<String> {
    expected
        .events
        .values()
        .filter(|event| predicate(event))
        .map(|event| event.event_id.clone())
        .collect()
}

/// Per key: how to read the attribute's values off an expected event.
fn attribute_values(key: pb::LookupAttributeKey, event: &ExpectedEvent) -> Vec<String> {
    match key {
        pb::LookupAttributeKey::EventId => vec![event.event_id.clone()],
        pb::LookupAttributeKey::EventName => event.event_name.iter().cloned().collect(),
        pb::LookupAttributeKey::ReadOnly => event
            .read_only
            .iter()
            .map(|flag| flag.to_string())
            .collect(),
        pb::LookupAttributeKey::Username => event.username.iter().cloned().collect(),
        pb::LookupAttributeKey::ResourceType => event.resource_types.clone(),
        pb::LookupAttributeKey::ResourceName => event.resource_names.clone(),
        pb::LookupAttributeKey::EventSource => event.event_source.iter().cloned().collect(),
        pb::LookupAttributeKey::AccessKeyId => event.access_key_id.iter().cloned().collect(),
        pb::LookupAttributeKey::Unspecified => Vec::new(),
    }
}

const KEYS: [pb::LookupAttributeKey; 8] = [
    pb::LookupAttributeKey::EventId,
    pb::LookupAttributeKey::EventName,
    pb::LookupAttributeKey::ReadOnly,
    pb::LookupAttributeKey::Username,
    pb::LookupAttributeKey::ResourceType,
    pb::LookupAttributeKey::ResourceName,
    pb::LookupAttributeKey::EventSource,
    pb::LookupAttributeKey::AccessKeyId,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lookup_attribute_returns_exactly_what_a_scan_of_the_input_selects() {
    let (stack, expected) = stack_with_samples().await;
    let mut client = stack.events_client().await;
    for key in KEYS {
        let values = values_by_frequency(expected.events.values(), |event| {
            attribute_values(key, event)
        });
        assert!(!values.is_empty(), "the samples have no {key:?}");
        // The most frequent values, the rarest ones, and one that matches nothing.
        let mut chosen: Vec<String> = values
            .iter()
            .take(3)
            .map(|(value, _)| value.clone())
            .collect();
        chosen.extend(values.iter().rev().take(3).map(|(value, _)| value.clone()));
        if key != pb::LookupAttributeKey::ReadOnly {
            chosen.push(if key == pb::LookupAttributeKey::EventId {
                "00000000-0000-4000-8000-000000000000".into()
            } else {
                "no-such-value".into()
            });
        }
        for value in chosen {
            let request = pb::LookupEventsRequest {
                lookup_attributes: vec![attribute(key, &value)],
                ..Default::default()
            };
            let events = lookup_all(&mut client, request, 200).await;
            let want = expected_ids(&expected, &|event| {
                attribute_values(key, event).contains(&value)
            });
            assert_eq!(returned_ids(&events), want, "{key:?}={value}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combinations_of_attributes_and_filters_return_what_a_scan_selects() {
    let (stack, expected) = stack_with_samples().await;
    let mut client = stack.events_client().await;
    let events: Vec<&ExpectedEvent> = expected.events.values().collect();

    // Every pair of attribute keys, with the values of events spread over the input, so the
    // combinations match something.
    let mut checked = 0;
    for (position, first) in KEYS.iter().enumerate() {
        for second in &KEYS[position + 1..] {
            for event in events.iter().step_by(events.len() / 7) {
                let (Some(first_value), Some(second_value)) = (
                    attribute_values(*first, event).into_iter().next(),
                    attribute_values(*second, event).into_iter().next(),
                ) else {
                    continue;
                };
                let request = pb::LookupEventsRequest {
                    lookup_attributes: vec![
                        attribute(*first, &first_value),
                        attribute(*second, &second_value),
                    ],
                    ..Default::default()
                };
                let returned = lookup_all(&mut client, request, 100).await;
                let want = expected_ids(&expected, &|candidate| {
                    attribute_values(*first, candidate).contains(&first_value)
                        && attribute_values(*second, candidate).contains(&second_value)
                });
                assert!(!want.is_empty());
                assert_eq!(
                    returned_ids(&returned),
                    want,
                    "{first:?}={first_value} and {second:?}={second_value}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} combinations were checked");

    // Accounts, regions and categories, alone and with attributes and time ranges.
    let accounts = values_by_frequency(expected.events.values(), |event| {
        event.account_id.iter().cloned().collect()
    });
    let regions = values_by_frequency(expected.events.values(), |event| {
        event.aws_region.iter().cloned().collect()
    });
    let middle = events[events.len() / 2].event_time;
    let mut cases: Vec<(pb::LookupEventsRequest, Predicate)> = Vec::new();
    for (account, _) in accounts.iter().take(4) {
        let account = account.clone();
        let wanted = account.clone();
        cases.push((
            pb::LookupEventsRequest {
                accounts: vec![account],
                ..Default::default()
            },
            Box::new(move |event| event.account_id.as_deref() == Some(wanted.as_str())),
        ));
    }
    let two_accounts = vec![
        accounts[0].0.clone(),
        accounts[accounts.len() - 1].0.clone(),
    ];
    let wanted_accounts = two_accounts.clone();
    cases.push((
        pb::LookupEventsRequest {
            accounts: two_accounts,
            regions: vec![regions[0].0.clone()],
            ..Default::default()
        },
        {
            let region = regions[0].0.clone();
            Box::new(move |event| {
                event
                    .account_id
                    .as_ref()
                    .is_some_and(|account| wanted_accounts.contains(account))
                    && event.aws_region.as_deref() == Some(region.as_str())
            })
        },
    ));
    for category in ["Insight", "management", "Data"] {
        cases.push((
            pb::LookupEventsRequest {
                event_categories: vec![category.into()],
                ..Default::default()
            },
            Box::new(move |event| event.event_category.eq_ignore_ascii_case(category)),
        ));
    }
    cases.push((
        pb::LookupEventsRequest {
            start_time: Some(timestamp(middle)),
            ..Default::default()
        },
        Box::new(move |event| event.event_time >= middle),
    ));
    cases.push((
        pb::LookupEventsRequest {
            end_time: Some(timestamp(middle)),
            lookup_attributes: vec![attribute(pb::LookupAttributeKey::ReadOnly, "false")],
            regions: vec![regions[1].0.clone()],
            ..Default::default()
        },
        {
            let region = regions[1].0.clone();
            Box::new(move |event| {
                event.event_time <= middle
                    && event.read_only == Some(false)
                    && event.aws_region.as_deref() == Some(region.as_str())
            })
        },
    ));
    let day_start = events[100].event_time;
    let day_end = day_start + chrono::Duration::hours(6);
    cases.push((
        pb::LookupEventsRequest {
            start_time: Some(timestamp(day_start)),
            end_time: Some(timestamp(day_end)),
            event_categories: vec!["Management".into()],
            ..Default::default()
        },
        Box::new(move |event| {
            event.event_time >= day_start
                && event.event_time <= day_end
                && event.event_category == "Management"
        }),
    ));
    for (request, predicate) in cases {
        let returned = lookup_all(&mut client, request.clone(), 500).await;
        assert_eq!(
            returned_ids(&returned),
            expected_ids(&expected, &*predicate),
            "{request:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_return_each_event_once_newest_first_with_its_fields_and_original_record() {
    let (stack, expected) = stack_with_samples().await;
    let mut client = stack.events_client().await;

    let everything = lookup_all(&mut client, pb::LookupEventsRequest::default(), 97).await;
    assert_eq!(everything.len(), expected.events.len());
    for event in &everything {
        let id = record_event_id(&event.cloud_trail_event);
        let want = &expected.events[&id];
        assert_eq!(
            event.cloud_trail_event, want.record,
            "the record is returned byte for byte"
        );
        let time = event.event_time.unwrap();
        assert_eq!(
            (time.seconds, time.nanos as u32),
            (
                want.event_time.timestamp(),
                want.event_time.timestamp_subsec_nanos()
            )
        );
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        assert_eq!(event.event_name, text(&want.event_name));
        assert_eq!(event.event_source, text(&want.event_source));
        assert_eq!(event.account_id, text(&want.account_id));
        assert_eq!(event.aws_region, text(&want.aws_region));
        assert_eq!(event.event_category, want.event_category);
        assert_eq!(event.read_only, want.read_only);
        let identity = event.user_identity.clone().unwrap();
        assert_eq!(identity.username, text(&want.username), "{id}");
        assert_eq!(identity.access_key_id, text(&want.access_key_id));
        let types: Vec<String> = event
            .resources
            .iter()
            .filter(|resource| !resource.r#type.is_empty())
            .map(|resource| resource.r#type.clone())
            .collect();
        assert_eq!(types, want.resource_types);
    }

    // One event per page over one account.
    let per_account: BTreeMap<String, usize> =
        expected
            .events
            .values()
            .fold(BTreeMap::new(), |mut counts, event| {
                *counts
                    .entry(event.account_id.clone().unwrap_or_default())
                    .or_default() += 1;
                counts
            });
    let (account, count) = per_account
        .iter()
        .find(|(_, count)| (20..100).contains(*count))
        .unwrap();
    let request = pb::LookupEventsRequest {
        accounts: vec![account.clone()],
        ..Default::default()
    };
    assert_eq!(lookup_all(&mut client, request, 1).await.len(), *count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_lookups_are_refused_with_the_reason() {
    let (stack, _) = stack_with_samples().await;
    let mut client = stack.events_client().await;
    let first = client
        .lookup_events(pb::LookupEventsRequest {
            max_results: 5,
            lookup_attributes: vec![attribute(pb::LookupAttributeKey::ReadOnly, "true")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_token.is_empty());
    let now = test_now();
    let cases = [
        (
            pb::LookupEventsRequest {
                next_token: "garbage".into(),
                ..Default::default()
            },
            "the next token is not valid",
        ),
        (
            pb::LookupEventsRequest {
                next_token: first.next_token.clone(),
                lookup_attributes: vec![attribute(pb::LookupAttributeKey::ReadOnly, "false")],
                ..Default::default()
            },
            "the next token was issued for a query with other filters",
        ),
        (
            pb::LookupEventsRequest {
                start_time: Some(timestamp(now)),
                end_time: Some(timestamp(now - chrono::Duration::days(1))),
                ..Default::default()
            },
            "is after the end time",
        ),
        (
            pb::LookupEventsRequest {
                max_results: 1001,
                ..Default::default()
            },
            "max results 1001 is over the limit of 1000",
        ),
        (
            pb::LookupEventsRequest {
                lookup_attributes: vec![attribute(pb::LookupAttributeKey::ReadOnly, "maybe")],
                ..Default::default()
            },
            "invalid ReadOnly lookup attribute: the value must be true or false",
        ),
        (
            pb::LookupEventsRequest {
                lookup_attributes: vec![pb::LookupAttribute {
                    key: 99,
                    value: "x".into(),
                }],
                ..Default::default()
            },
            "lookup attribute key 99 is not one of CloudTrail's",
        ),
        (
            pb::LookupEventsRequest {
                accounts: vec!["12345".into()],
                ..Default::default()
            },
            "is not a 12-digit AWS account id",
        ),
    ];
    for (request, message) in cases {
        let status = client.lookup_events(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains(message),
            "{:?} does not say {message:?}",
            status.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_events_per_account_region_and_category() {
    let (stack, expected) = stack_with_samples().await;
    let mut client = stack.events_client().await;
    let counts = client
        .summarize_events(pb::SummarizeEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .counts;
    let mut want: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for event in expected.events.values() {
        let key = (
            event.account_id.clone().unwrap_or_default(),
            event.aws_region.clone().unwrap_or_default(),
            event.event_category.clone(),
        );
        *want.entry(key).or_default() += 1;
    }
    let got: BTreeMap<(String, String, String), u64> = counts
        .into_iter()
        .map(|count| {
            (
                (count.account_id, count.aws_region, count.event_category),
                count.events,
            )
        })
        .collect();
    assert_eq!(got, want);
}

/// Per (account, region, category): events, oldest, newest.
type Summary = BTreeMap<(String, String, String), (u64, DateTime<Utc>, DateTime<Utc>)>;
/// A window of event time, either side open.
type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The summary of `[start, end]` as the expectations give it: events, oldest, newest per group.
fn expected_summary(
    expected: &ExpectedStore,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Summary {
    let mut want = Summary::new();
    for event in expected.events.values() {
        let time = event.event_time;
        if start.is_some_and(|start| time < start) || end.is_some_and(|end| time > end) {
            continue;
        }
        let key = (
            event.account_id.clone().unwrap_or_default(),
            event.aws_region.clone().unwrap_or_default(),
            event.event_category.clone(),
        );
        let entry = want.entry(key).or_insert((0, time, time));
        entry.0 += 1;
        entry.1 = entry.1.min(time);
        entry.2 = entry.2.max(time);
    }
    want
}

/// The summary answers from the rollups (whole hours, whole minutes at the edges, the events
/// of the edge minutes): for windows that start and end anywhere — on an event, a second
/// before or after one, on an hour, within one minute, open on either side — its counts and
/// its oldest and newest events are exactly those of the events in the window, after a second
/// delivery of every file too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_of_any_window_is_exact_from_the_rollups() {
    let (stack, expected) = stack_with_samples().await;
    // Every file again: already ingested, nothing counted twice.
    ingest_sample_files(&stack, &sample_files()).await;
    orgtrail_tests::rollups::assert_rollups_match_the_events(&stack.pool().await).await;

    let mut times: Vec<DateTime<Utc>> = expected
        .events
        .values()
        .map(|event| event.event_time)
        .collect();
    times.sort();
    let second = chrono::TimeDelta::seconds(1);
    let hour = |time: DateTime<Utc>| {
        time.duration_trunc(chrono::TimeDelta::hours(1))
            .unwrap_or(time)
    };
    let mut windows: Vec<Window> = vec![
        (None, None),
        (Some(times[100]), None),
        (None, Some(times[5000])),
    ];
    // Deterministic picks across the whole span: a dense hour of Invictus, 2014, 2018, 2024.
    for step in [7usize, 131, 977, 2099, 4001] {
        for offset in (0..times.len().saturating_sub(step)).step_by(times.len() / 6) {
            let (a, b) = (times[offset], times[offset + step]);
            windows.push((Some(a), Some(b)));
            windows.push((Some(a + second), Some(b - second)));
            windows.push((Some(a - second), Some(b + second)));
            windows.push((Some(hour(a)), Some(hour(b))));
            windows.push((Some(a), Some(a + chrono::TimeDelta::milliseconds(1500))));
            windows.push((Some(hour(a) - second), Some(hour(b) + second)));
        }
    }
    let mut client = stack.events_client().await;
    for (start, end) in windows {
        if start.zip(end).is_some_and(|(start, end)| start > end) {
            continue;
        }
        let counts = client
            .summarize_events(pb::SummarizeEventsRequest {
                start_time: start.map(timestamp),
                end_time: end.map(timestamp),
            })
            .await
            .unwrap_or_else(|status| panic!("summary of {start:?}..{end:?}: {status}"))
            .into_inner()
            .counts;
        let got: Summary = counts
            .into_iter()
            .map(|count| {
                let time = |timestamp: Option<prost_types::Timestamp>| {
                    let timestamp = timestamp.unwrap_or_default();
                    DateTime::from_timestamp(timestamp.seconds, timestamp.nanos as u32)
                        .unwrap_or_default()
                };
                (
                    (count.account_id, count.aws_region, count.event_category),
                    (
                        count.events,
                        time(count.oldest_event_time),
                        time(count.newest_event_time),
                    ),
                )
            })
            .collect();
        assert_eq!(
            got,
            expected_summary(&expected, start, end),
            "the summary of {start:?}..{end:?}"
        );
    }
}
