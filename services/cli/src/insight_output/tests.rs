//! Insights, an explanation, settings and a replay as printed, from proto values.

use super::*;
use crate::output_tests::{at, cells};

const ATTRIBUTIONS: &str = r#"[{"attribute":"userIdentityArn","insight":[{"value":"arn:aws:iam::111111111111:user/ci","average":31.5}],"baseline":[{"value":"arn:aws:iam::111111111111:user/ci","average":0.25},{"value":"arn:aws:iam::111111111111:user/alice","average":0.05}]},{"attribute":"errorCode","insight":[{"value":"null","average":31.5}],"baseline":[]}]"#;

/// An ended call-rate Insight of 23 minutes with its finding.
fn ended_insight() -> pb::Insight {
    pb::Insight {
        insight_id: "6f1c5a8e-2d7b-5c1e-9a3f-0b4d2e6f8a1c".into(),
        account_id: "111111111111".into(),
        aws_region: "us-east-1".into(),
        event_source: "ec2.amazonaws.com".into(),
        event_name: "CreateTags".into(),
        insight_type: "ApiCallRateInsight".into(),
        start_time: at(1_796_222_820),
        end_time: at(1_796_222_820 + 23 * 60),
        insight_duration_minutes: 23,
        baseline_duration_minutes: 10_080,
        baseline_average: 0.304_563_492_1,
        start_average: 28.0,
        insight_average: 31.478_260_869_6,
        peak: 44,
        start_event_id: "0e3a7c9b-1f2d-5e4a-8b6c-9d0e1f2a3b4c".into(),
        end_event_id: "7a8b9c0d-1e2f-5a3b-8c4d-5e6f7a8b9c0d".into(),
        attributions_json: ATTRIBUTIONS.into(),
        finding_id: 17,
        superseded_at: None,
    }
}

/// An error-rate Insight still going on, without a finding shown.
fn open_insight() -> pb::Insight {
    pb::Insight {
        insight_id: "1b2c3d4e-5f6a-5b7c-8d9e-0f1a2b3c4d5e".into(),
        account_id: "222222222222".into(),
        aws_region: "eu-west-1".into(),
        event_source: "s3.amazonaws.com".into(),
        event_name: "GetBucketPolicy".into(),
        insight_type: "ApiErrorRateInsight".into(),
        start_time: at(1_796_300_000),
        insight_duration_minutes: 135,
        ..Default::default()
    }
}

#[test]
fn the_list_shows_each_insight_with_its_start_end_and_statistics() {
    let mut superseded = ended_insight();
    superseded.superseded_at = at(1_796_230_000);
    let rows = cells(&insights_table(&[
        ended_insight(),
        open_insight(),
        superseded,
    ]));
    assert_eq!(
        rows[0],
        [
            "ID",
            "ACCOUNT",
            "REGION",
            "API",
            "TYPE",
            "START",
            "END",
            "DURATION",
            "BASELINE AVG",
            "INSIGHT AVG",
            "PEAK",
            "FINDING",
            "STATE"
        ]
    );
    assert_eq!(
        rows[1],
        [
            "6f1c5a8e-2d7b-5c1e-9a3f-0b4d2e6f8a1c",
            "111111111111",
            "us-east-1",
            "ec2:CreateTags",
            "ApiCallRateInsight",
            "2026-12-02T14:47:00Z",
            "2026-12-02T15:10:00Z",
            "23m",
            "0.30",
            "31.48",
            "44",
            "17",
            "ended"
        ]
    );
    assert_eq!(rows[2][6], "-", "an open Insight has no end yet");
    assert_eq!(rows[2][7], "2h15m");
    assert_eq!(rows[2][11], "-");
    assert_eq!(rows[2][12], "open");
    assert_eq!(rows[3][12], "superseded");
}

#[test]
fn insights_in_json_carry_the_api_fields_and_attributions_as_json() {
    let ended = insight_json(&ended_insight());
    assert_eq!(ended["insightId"], "6f1c5a8e-2d7b-5c1e-9a3f-0b4d2e6f8a1c");
    assert_eq!(ended["startTime"], "2026-12-02T14:47:00Z");
    assert_eq!(ended["endTime"], "2026-12-02T15:10:00Z");
    assert_eq!(ended["insightDurationMinutes"], 23);
    assert_eq!(ended["baselineDurationMinutes"], 10_080);
    assert_eq!(ended["peak"], 44);
    assert_eq!(ended["findingId"], 17);
    assert_eq!(
        ended["attributions"][0]["insight"][0]["value"],
        "arn:aws:iam::111111111111:user/ci"
    );
    let open = insight_json(&open_insight());
    assert!(open["endTime"].is_null());
    assert!(open["endEventId"].is_null());
    assert!(open["findingId"].is_null());
    assert!(open["attributions"].is_null());
}

fn explanation() -> pb::ExplainInsightResponse {
    let minute = |offset: i64, count: u64, threshold: f64, unusual: bool| pb::InsightMinute {
        minute: at(1_796_222_820 + offset * 60),
        count,
        expected: 0.42,
        threshold,
        unusual,
    };
    pb::ExplainInsightResponse {
        insight: Some(ended_insight()),
        minutes: vec![
            minute(-1, 0, 9.0, false),
            minute(0, 28, 9.0, true),
            minute(1, 35, 9.0, true),
            minute(30, 1, 0.0, false),
        ],
        model_json: r#"{"baseline_days":7,"threshold_sigma":5.0}"#.into(),
    }
}

#[test]
fn an_explanation_shows_the_fields_the_attributions_and_the_minutes_marked() {
    let text = explanation_text(&explanation());
    assert!(
        text.contains("insight             6f1c5a8e-2d7b-5c1e-9a3f-0b4d2e6f8a1c\n"),
        "{text}"
    );
    assert!(
        text.contains("baseline            0.3046 a minute over 7d\n"),
        "{text}"
    );
    assert!(
        text.contains("peak                44 in a minute\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  userIdentityArn\n    insight   arn:aws:iam::111111111111:user/ci (31.50/min)\n"
        ),
        "{text}"
    );
    assert!(text.contains("    baseline  arn:aws:iam::111111111111:user/ci (0.25/min), arn:aws:iam::111111111111:user/alice (0.05/min)\n"), "{text}");
    assert!(
        text.contains("  errorCode\n    insight   null (31.50/min)\n    baseline  -\n"),
        "{text}"
    );
    let minutes: Vec<Vec<String>> = cells(text.split("minutes (event time)\n").nth(1).unwrap());
    assert_eq!(
        minutes[0],
        ["MINUTE", "COUNT", "EXPECTED", "THRESHOLD", "UNUSUAL"]
    );
    assert_eq!(minutes[1], ["2026-12-02T14:46:00Z", "0", "0.42", "9"]);
    assert_eq!(minutes[2], ["2026-12-02T14:47:00Z", "28", "0.42", "9", "*"]);
    assert_eq!(minutes[3], ["2026-12-02T14:48:00Z", "35", "0.42", "9", "*"]);
    assert_eq!(
        minutes[4],
        ["2026-12-02T15:17:00Z", "1", "0.42", "-"],
        "no threshold: nothing could be raised"
    );
}

#[test]
fn an_open_insight_says_its_attributions_come_at_its_end() {
    let text = explanation_text(&pb::ExplainInsightResponse {
        insight: Some(open_insight()),
        ..Default::default()
    });
    assert!(
        text.contains("end                 - (still unusual)\n"),
        "{text}"
    );
    assert!(
        text.contains("attributions\n  - (known once the Insight has ended)\n"),
        "{text}"
    );
}

#[test]
fn an_explanation_in_json_has_the_minutes_and_the_model() {
    let json = explanation_json(&explanation()).unwrap();
    assert_eq!(
        json["insight"]["insightId"],
        "6f1c5a8e-2d7b-5c1e-9a3f-0b4d2e6f8a1c"
    );
    assert_eq!(json["minutes"].as_array().unwrap().len(), 4);
    assert_eq!(json["minutes"][1]["minute"], "2026-12-02T14:47:00Z");
    assert_eq!(json["minutes"][1]["count"], 28);
    assert_eq!(json["minutes"][1]["unusual"], true);
    assert_eq!(json["minutes"][1]["threshold"], 9.0);
    assert!(json["minutes"][3]["threshold"].is_null());
    assert_eq!(json["model"]["baseline_days"], 7);
    let mut broken = explanation();
    broken.model_json = "{".into();
    assert!(explanation_json(&broken).is_err());
}

#[test]
fn settings_show_their_scope_values_and_the_defaults() {
    let listed = pb::ListInsightSettingsResponse {
        settings: vec![
            pb::InsightSetting {
                account_id: "111111111111".into(),
                event_source: "ec2.amazonaws.com".into(),
                event_name: "RunInstances".into(),
                threshold_sigma: Some(6.5),
                min_rate_per_minute: None,
                disabled: false,
                updated_at: at(1_796_040_000),
                updated_by: "cert:admin [stated: alice@laptop]".into(),
            },
            pb::InsightSetting {
                event_source: "sts.amazonaws.com".into(),
                disabled: true,
                ..Default::default()
            },
        ],
        defaults_json: r#"{"threshold_sigma":5.0,"min_rate_per_minute":5.0}"#.into(),
    };
    let text = settings_text(&listed);
    let rows = cells(&text);
    assert_eq!(
        rows[0],
        [
            "SCOPE",
            "THRESHOLD SIGMA",
            "MIN RATE",
            "DISABLED",
            "UPDATED",
            "BY"
        ]
    );
    assert_eq!(
        rows[1],
        [
            "account 111111111111, ec2.amazonaws.com RunInstances",
            "6.5",
            "-",
            "no",
            "2026-11-30T12:00:00Z",
            "cert:admin [stated: alice@laptop]"
        ]
    );
    assert_eq!(rows[2], ["sts.amazonaws.com", "-", "-", "yes", "-", "-"]);
    assert!(text.ends_with(
        "\ndefaults (insights.model): {\"threshold_sigma\":5.0,\"min_rate_per_minute\":5.0}\n"
    ));
    let json = settings_json(&listed).unwrap();
    assert_eq!(json["settings"][0]["thresholdSigma"], 6.5);
    assert!(json["settings"][0]["minRatePerMinute"].is_null());
    assert_eq!(json["settings"][1]["disabled"], true);
    assert_eq!(json["defaults"]["threshold_sigma"], 5.0);
}

#[test]
fn a_replay_says_what_it_evaluated_found_and_wrote() {
    let text = replay_text(&pb::ReplayInsightsResponse {
        series_evaluated: 12,
        insights_found: 2,
        insights_written: 0,
    });
    assert_eq!(
        text,
        "series evaluated    12\ninsights found      2\ninsights written    0 (the rest were written before)\n"
    );
}

#[test]
fn durations_read_in_minutes_hours_and_days() {
    assert_eq!(duration_text(0), "-");
    assert_eq!(duration_text(1), "1m");
    assert_eq!(duration_text(60), "1h00m");
    assert_eq!(duration_text(1_439), "23h59m");
    assert_eq!(duration_text(10_080), "7d");
    assert_eq!(duration_text(1_441), "1d00h01m");
    assert_eq!(
        api_text("ec2.amazonaws.com", "RunInstances"),
        "ec2:RunInstances"
    );
    assert_eq!(api_text("", ""), "-");
}
