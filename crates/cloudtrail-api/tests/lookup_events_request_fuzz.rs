//! The LookupEvents parser never panics: on any target, content type and body it returns a
//! request within CloudTrail's bounds or an error with a code, a message and a 4xx status.

use orgtrail_cloudtrail_api::{
    parse_lookup_events_request, ApiError, LookupEventsRequest, CONTENT_TYPE, LOOKUP_EVENTS_TARGET,
    MAX_LOOKUP_ATTRIBUTES,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn check_outcome(outcome: Result<LookupEventsRequest, ApiError>) -> Result<(), TestCaseError> {
    match outcome {
        Ok(request) => {
            prop_assert!((1..=50).contains(&request.max_results));
            prop_assert!(request.attributes.len() <= MAX_LOOKUP_ATTRIBUTES);
            if let (Some(start), Some(end)) = (request.start_time, request.end_time) {
                prop_assert!(start <= end);
            }
        }
        Err(error) => {
            prop_assert!(error.code().ends_with("Exception"));
            prop_assert!(!error.to_string().is_empty());
            prop_assert!((400..500).contains(&error.http_status()));
            let body: Value = serde_json::from_slice(&error.to_json_body()).unwrap();
            prop_assert_eq!(body["__type"].as_str(), Some(error.code()));
        }
    }
    Ok(())
}

/// JSON values of every kind, the kinds the members expect among them.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| json!(number)),
        (0u64..100).prop_map(Value::from),
        (-1e12f64..4e9).prop_map(|number| json!(number)),
        ".{0,40}".prop_map(Value::from),
        prop::sample::select(vec![
            "insight",
            "EventName",
            "ReadOnly",
            "true",
            "EventId",
            "Username",
            "",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "AttributeKey",
                        "AttributeValue",
                        "LookupAttributes",
                        "x"
                    ]),
                    inner
                ),
                0..4
            )
            .prop_map(|members| Value::Object(
                members
                    .into_iter()
                    .map(|(name, value)| (name.to_string(), value))
                    .collect()
            )),
        ]
    })
}

fn any_request_body() -> impl Strategy<Value = Value> {
    let member = prop::sample::select(vec![
        "LookupAttributes",
        "StartTime",
        "EndTime",
        "EventCategory",
        "MaxResults",
        "NextToken",
        "Other",
    ]);
    prop::collection::vec((member, any_value()), 0..7).prop_map(|members| {
        Value::Object(
            members
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..300),
        target in prop::option::of(".{0,80}"),
        content_type in prop::option::of(".{0,40}"),
    ) {
        check_outcome(parse_lookup_events_request(
            target.as_deref(), content_type.as_deref(), &body))?;
        check_outcome(parse_lookup_events_request(
            Some(LOOKUP_EVENTS_TARGET), Some(CONTENT_TYPE), &body))?;
    }

    #[test]
    fn arbitrary_json_bodies_never_panic(body in any_request_body()) {
        let bytes = serde_json::to_vec(&body).unwrap();
        check_outcome(parse_lookup_events_request(
            Some(LOOKUP_EVENTS_TARGET), Some(CONTENT_TYPE), &bytes))?;
    }
}
