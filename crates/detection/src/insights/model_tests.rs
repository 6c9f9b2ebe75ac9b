//! The model's settings: CloudTrail's type names, defaults, ranges, and overrides resolved most
//! specific first.

use super::model::{
    lookback_minutes, InsightModel, InsightModelError, InsightOverride, InsightOverrideScope,
    InsightTuning, InsightType, Seasonality,
};

fn scope(account: Option<&str>, source: Option<&str>, name: Option<&str>) -> InsightOverrideScope {
    InsightOverrideScope {
        account_id: account.map(str::to_string),
        event_source: source.map(str::to_string),
        event_name: name.map(str::to_string),
    }
}

fn sensitivity(scope: InsightOverrideScope, threshold_sigma: f64) -> InsightOverride {
    InsightOverride {
        scope,
        threshold_sigma: Some(threshold_sigma),
        min_rate_per_minute: None,
    }
}

#[test]
fn insight_types_have_cloudtrails_names_both_ways() {
    for insight_type in InsightType::ALL {
        assert_eq!(
            insight_type.as_str().parse::<InsightType>(),
            Ok(insight_type)
        );
        let json = serde_json::to_string(&insight_type).unwrap();
        assert_eq!(json, format!("\"{}\"", insight_type.as_str()));
    }
    assert!("ApiCallRate".parse::<InsightType>().is_err());
}

#[test]
fn an_empty_object_is_the_default_model_and_unknown_fields_are_refused() {
    let model: InsightModel = serde_json::from_str("{}").unwrap();
    assert_eq!(model, InsightModel::default());
    assert_eq!(model.validate(), Ok(()));
    assert_eq!(model.baseline_days, 7);
    assert_eq!(model.seasonality, Seasonality::TimeOfDayAndWeekday);
    let seasonal: InsightModel =
        serde_json::from_str(r#"{"seasonality": "time_of_day", "baseline_days": 28}"#).unwrap();
    assert_eq!(seasonal.seasonality, Seasonality::TimeOfDay);
    assert!(serde_json::from_str::<InsightModel>(r#"{"sensitivity": 3}"#).is_err());
}

#[test]
fn each_setting_out_of_range_is_refused_by_name() {
    let refused = [
        InsightModel {
            baseline_days: 0,
            ..InsightModel::default()
        },
        InsightModel {
            min_history_days: 0,
            ..InsightModel::default()
        },
        InsightModel {
            threshold_sigma: f64::NAN,
            ..InsightModel::default()
        },
        InsightModel {
            threshold_sigma: 0.5,
            ..InsightModel::default()
        },
        InsightModel {
            min_rate_per_minute: 0.0,
            ..InsightModel::default()
        },
        InsightModel {
            min_increase_factor: 0.9,
            ..InsightModel::default()
        },
        InsightModel {
            recurring_peak_days: 8,
            ..InsightModel::default()
        },
        InsightModel {
            quiet_minutes: 0,
            ..InsightModel::default()
        },
        InsightModel {
            max_insight_minutes: 5,
            ..InsightModel::default()
        },
    ];
    for model in refused {
        assert!(model.validate().is_err(), "{model:?}");
    }
    let error = InsightModel {
        threshold_sigma: 0.5,
        ..InsightModel::default()
    }
    .validate();
    assert_eq!(
        error.unwrap_err().to_string(),
        "threshold_sigma must be a number between 1 and 20, found 0.5"
    );
}

#[test]
fn the_most_specific_override_wins_setting_by_setting() {
    let tuning = InsightTuning {
        overrides: vec![
            sensitivity(scope(Some("111111111111"), None, None), 6.0),
            sensitivity(scope(None, Some("ec2.amazonaws.com"), None), 7.0),
            sensitivity(
                scope(None, Some("ec2.amazonaws.com"), Some("RunInstances")),
                8.0,
            ),
            InsightOverride {
                scope: scope(Some("111111111111"), None, None),
                threshold_sigma: None,
                min_rate_per_minute: Some(50.0),
            },
        ],
    };
    // Two entries with the same scope: refused.
    assert!(matches!(
        tuning.validate(),
        Err(InsightModelError::DuplicateOverrideScope(_))
    ));
    let tuning = InsightTuning {
        overrides: vec![
            InsightOverride {
                scope: scope(Some("111111111111"), None, None),
                threshold_sigma: Some(6.0),
                min_rate_per_minute: Some(50.0),
            },
            sensitivity(scope(None, Some("ec2.amazonaws.com"), None), 7.0),
            sensitivity(
                scope(None, Some("ec2.amazonaws.com"), Some("RunInstances")),
                8.0,
            ),
        ],
    };
    assert_eq!(tuning.validate(), Ok(()));
    let model = InsightModel::default();
    let resolved = |account, source, name| model.with_overrides(&tuning, account, source, name);
    let api = resolved("111111111111", "ec2.amazonaws.com", "RunInstances");
    assert_eq!((api.threshold_sigma, api.min_rate_per_minute), (8.0, 50.0));
    let source = resolved("111111111111", "ec2.amazonaws.com", "StopInstances");
    assert_eq!(
        (source.threshold_sigma, source.min_rate_per_minute),
        (7.0, 50.0)
    );
    let account = resolved("111111111111", "iam.amazonaws.com", "CreateUser");
    assert_eq!(
        (account.threshold_sigma, account.min_rate_per_minute),
        (6.0, 50.0)
    );
    let other = resolved("222222222222", "iam.amazonaws.com", "CreateUser");
    assert_eq!(other, model);
}

#[test]
fn overrides_are_checked_like_the_model() {
    let no_source = InsightTuning {
        overrides: vec![sensitivity(scope(None, None, Some("RunInstances")), 6.0)],
    };
    assert!(no_source.validate().is_err());
    let nothing = InsightTuning {
        overrides: vec![InsightOverride {
            scope: scope(Some("111111111111"), None, None),
            threshold_sigma: None,
            min_rate_per_minute: None,
        }],
    };
    assert!(nothing.validate().is_err());
    let out_of_range = InsightTuning {
        overrides: vec![sensitivity(scope(Some("111111111111"), None, None), 50.0)],
    };
    assert_eq!(
        out_of_range.validate().unwrap_err().to_string(),
        "override for account 111111111111, * *: threshold_sigma must be a number between 1 \
         and 20, found 50"
    );
    let parsed: InsightTuning = serde_json::from_str(
        r#"{"overrides": [{"scope": {"account_id": "111111111111"}, "min_rate_per_minute": 20}]}"#,
    )
    .unwrap();
    assert_eq!(parsed.validate(), Ok(()));
    assert!(serde_json::from_str::<InsightTuning>(
        r#"{"overrides": [{"scope": {"account": "111111111111"}, "min_rate_per_minute": 20}]}"#,
    )
    .is_err());
}

#[test]
fn the_lookback_covers_the_baseline_the_longest_insight_and_its_quiet_minutes() {
    let model = InsightModel::default();
    assert_eq!(lookback_minutes(&model), 8 * 1_440 + 1_440 + 10);
}
