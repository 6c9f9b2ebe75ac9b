//! The Start and End records against CloudTrail's format (reference §4.2 and the User Guide's
//! example pair in `data/cloudtrail/aws-docs-examples/`).

use serde_json::Value;

use super::{
    attributions, end_record, insight_event_id, insight_records, is_orgtrail_insight,
    shared_event_id, start_record, AttributionCounts, Episode, InsightSeries, InsightState,
    InsightType, ValueCounts, NO_ERROR_CODE,
};

fn series() -> InsightSeries {
    InsightSeries {
        recipient_account_id: "123456789012".to_string(),
        aws_region: "us-east-1".to_string(),
        event_source: "ssm.amazonaws.com".to_string(),
        event_name: "UpdateInstanceInformation".to_string(),
        insight_type: InsightType::ApiCallRate,
    }
}

/// 2019-11-14T00:51:00Z, the start of the User Guide's example.
const START: i64 = 1_573_692_660 / 60;

fn episode(closed: bool) -> Episode {
    Episode {
        start_minute: START,
        end_minute: START + 3,
        closed,
        baseline_average: 85.420_238_095_238_1,
        baseline_duration_minutes: 10_080,
        start_average: 664.0,
        insight_average: 600.0,
        expected_average: 85.0,
        peak: 664,
        total: 1_800,
        unusual_minutes: 3,
    }
}

fn text<'a>(record: &'a Value, pointer: &str) -> &'a str {
    record
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {record}"))
}

#[test]
fn start_and_end_share_the_shared_event_id_and_not_the_event_id() {
    let (start, end) = insight_records(&series(), &episode(true), &[], &[]);
    let end = end.expect("a closed episode has an End record");
    assert_eq!(text(&start, "/sharedEventID"), text(&end, "/sharedEventID"));
    assert_ne!(text(&start, "/eventID"), text(&end, "/eventID"));
    assert_eq!(text(&start, "/insightDetails/state"), "Start");
    assert_eq!(text(&end, "/insightDetails/state"), "End");
    assert_eq!(text(&start, "/eventTime"), "2019-11-14T00:51:00Z");
    assert_eq!(text(&end, "/eventTime"), "2019-11-14T00:54:00Z");
    let statistics = "/insightDetails/insightContext/statistics";
    assert_eq!(
        start.pointer(&format!("{statistics}/insightDuration")),
        Some(&Value::from(1))
    );
    assert_eq!(
        end.pointer(&format!("{statistics}/insightDuration")),
        Some(&Value::from(3))
    );
    assert_eq!(
        end.pointer(&format!("{statistics}/baselineDuration")),
        Some(&Value::from(10_080))
    );
    assert_eq!(
        start.pointer(&format!("{statistics}/insight/average")),
        Some(&Value::from(664.0))
    );
    assert_eq!(
        end.pointer(&format!("{statistics}/insight/average")),
        Some(&Value::from(600.0))
    );
    assert_eq!(
        end.pointer(&format!("{statistics}/baseline/average")),
        Some(&Value::from(85.420_238_095_2))
    );
}

#[test]
fn an_open_episode_has_a_start_record_only_and_it_does_not_change_when_it_closes() {
    assert_eq!(end_record(&series(), &episode(false), &[]), None);
    let mut longer = episode(true);
    longer.end_minute += 40;
    longer.insight_average = 7.0;
    assert_eq!(
        start_record(&series(), &episode(false), &[]),
        start_record(&series(), &longer, &[])
    );
}

#[test]
fn the_records_have_cloudtrails_fields_and_nothing_else() {
    let (start, end) = insight_records(&series(), &episode(true), &[], &[]);
    let documented = [
        "eventVersion",
        "eventTime",
        "awsRegion",
        "eventID",
        "eventType",
        "recipientAccountId",
        "sharedEventID",
        "insightDetails",
        "eventCategory",
    ];
    for record in [&start, end.as_ref().unwrap()] {
        let keys: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted_documented = documented.to_vec();
        sorted_documented.sort_unstable();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        assert_eq!(sorted_keys, sorted_documented);
        assert_eq!(text(record, "/eventType"), "AwsCloudTrailInsight");
        assert_eq!(text(record, "/eventCategory"), "Insight");
        assert_eq!(text(record, "/eventVersion"), "1.07");
        assert_eq!(text(record, "/awsRegion"), "us-east-1");
        assert_eq!(text(record, "/recipientAccountId"), "123456789012");
        assert_eq!(
            text(record, "/insightDetails/eventSource"),
            "ssm.amazonaws.com"
        );
        assert_eq!(
            text(record, "/insightDetails/eventName"),
            "UpdateInstanceInformation"
        );
        assert_eq!(
            text(record, "/insightDetails/insightType"),
            "ApiCallRateInsight"
        );
        let details: Vec<&String> = record["insightDetails"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(details.len(), 5, "{details:?}");
    }
}

#[test]
fn the_ids_are_name_based_and_stable() {
    let shared = shared_event_id(&series(), START);
    assert_eq!(shared.get_version_num(), 5);
    assert_eq!(shared, shared_event_id(&series(), START));
    assert_ne!(shared, shared_event_id(&series(), START + 1));
    let mut other_type = series();
    other_type.insight_type = InsightType::ApiErrorRate;
    assert_ne!(shared, shared_event_id(&other_type, START));
    assert_ne!(
        insight_event_id(&series(), START, InsightState::Start),
        insight_event_id(&series(), START, InsightState::End)
    );
}

#[test]
fn orgtrails_insights_are_recognised_and_cloudtrails_are_not() {
    let (start, end) = insight_records(&series(), &episode(true), &[], &[]);
    assert!(is_orgtrail_insight(&start));
    assert!(is_orgtrail_insight(end.as_ref().unwrap()));
    let mut tampered = start.clone();
    tampered["awsRegion"] = Value::from("us-west-2");
    assert!(!is_orgtrail_insight(&tampered));
    // The User Guide's pair, as CloudTrail wrote it.
    let cloudtrails: Value = serde_json::from_str(
        r#"{"eventVersion":"1.07","eventTime":"2019-11-14T00:51:00Z","awsRegion":"us-east-1",
            "eventID":"EXAMPLE8-9621-4d00-b913-beca2EXAMPLE","eventType":"AwsCloudTrailInsight",
            "recipientAccountId":"123456789012","sharedEventID":"EXAMPLE2-1729-42f1-b735-5d8c0EXAMPLE",
            "insightDetails":{"state":"Start","eventSource":"ssm.amazonaws.com",
            "eventName":"UpdateInstanceInformation","insightType":"ApiCallRateInsight",
            "insightContext":{"statistics":{"baseline":{"average":85.4202380952},
            "insight":{"average":664}}}},"eventCategory":"Insight"}"#,
    )
    .unwrap();
    assert!(!is_orgtrail_insight(&cloudtrails));
}

#[test]
fn attributions_appear_in_cloudtrails_shape() {
    let counts = AttributionCounts {
        user_identity_arn: ValueCounts {
            insight: [(
                "arn:aws:sts::012345678901:assumed-role/CodeDeployRole1".to_string(),
                3,
            )]
            .into(),
            baseline: [(
                "arn:aws:sts::012345678901:assumed-role/CodeDeployRole1".to_string(),
                1,
            )]
            .into(),
        },
        error_code: ValueCounts {
            insight: [(NO_ERROR_CODE.to_string(), 3)].into(),
            baseline: [(NO_ERROR_CODE.to_string(), 1)].into(),
        },
        ..AttributionCounts::default()
    };
    let blocks = attributions(InsightType::ApiCallRate, &counts, 5, 11_336);
    let start = start_record(&series(), &episode(false), &blocks);
    let attributions = start
        .pointer("/insightDetails/insightContext/attributions")
        .and_then(Value::as_array)
        .expect("attributions");
    assert_eq!(attributions.len(), 2);
    assert_eq!(attributions[0]["attribute"], "userIdentityArn");
    assert_eq!(attributions[0]["insight"][0]["average"], 0.6);
    assert_eq!(attributions[0]["baseline"][0]["average"], 0.000_088_214_5);
    assert_eq!(attributions[1]["attribute"], "errorCode");
    assert_eq!(attributions[1]["insight"][0]["value"], "null");
}

#[test]
fn orgtrails_records_parse_as_cloudtrail_records() {
    let (start, end) = insight_records(&series(), &episode(true), &[], &[]);
    for record in [start, end.unwrap()] {
        let text = record.to_string();
        let event = orgtrail_domain::record::parse_record(text.clone(), None);
        assert!(event.is_ok(), "{text}: {event:?}");
    }
}
