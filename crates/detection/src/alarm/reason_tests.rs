//! `StateReason` tests. Where CloudWatch's own text for the same window is known (notifications
//! quoted in `docs/alarms.md`), the expected string is CloudWatch's, byte for byte; the other
//! forms are orgtrail's, written in the same style.

use chrono::{DateTime, Utc};

use super::{
    evaluate_alarm, period_of, AlarmRule, AlarmState, ComparisonOperator, Datapoints, PeriodIndex,
    TreatMissingData,
};

fn rule(
    period_seconds: u32,
    evaluation_periods: u32,
    datapoints_to_alarm: u32,
    threshold: f64,
    comparison_operator: ComparisonOperator,
    treat_missing_data: TreatMissingData,
) -> AlarmRule {
    let rule = AlarmRule {
        period_seconds,
        evaluation_periods,
        datapoints_to_alarm,
        threshold,
        comparison_operator,
        treat_missing_data,
    };
    assert_eq!(rule.validate(), Ok(()));
    rule
}

/// The reason of the transition out of `before` when the alarm is evaluated on the period
/// starting at `evaluated` (UTC, `dd/mm/yy HH:MM:SS` as in the reasons), with `points` as
/// (period start, value).
fn reason_at(
    rule: &AlarmRule,
    before: AlarmState,
    points: &[(&str, f64)],
    evaluated: &str,
) -> String {
    let period = |text: &str| {
        let time = DateTime::parse_from_str(&format!("{text} +0000"), "%d/%m/%y %H:%M:%S %z")
            .unwrap()
            .with_timezone(&Utc);
        period_of(time, rule.period_seconds)
    };
    let datapoints: Datapoints = points
        .iter()
        .map(|&(start, value)| (period(start), value))
        .collect();
    let evaluated: PeriodIndex = period(evaluated);
    let transitions = evaluate_alarm(rule, before, &datapoints, evaluated, evaluated);
    assert_eq!(transitions.len(), 1, "{transitions:?}");
    transitions[0].reason.clone()
}

use AlarmState::{Alarm, InsufficientData, Ok as Fine};
use ComparisonOperator::{GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold};
use TreatMissingData::{Breaching, Missing, NotBreaching};

#[test]
fn alarm_lists_the_breaching_datapoints_newest_first_as_cloudwatch_does() {
    let rule = rule(60, 2, 2, 1.0, GreaterThanOrEqualToThreshold, Missing);
    let points = [("02/06/23 12:20:00", 1.0), ("02/06/23 12:21:00", 1.0)];
    assert_eq!(
        reason_at(&rule, Fine, &points, "02/06/23 12:21:00"),
        "Threshold Crossed: 2 out of the last 2 datapoints [1.0 (02/06/23 12:21:00), 1.0 \
         (02/06/23 12:20:00)] were greater than or equal to the threshold (1.0) (minimum 2 \
         datapoints for OK -> ALARM transition)."
    );
    let rule = self::rule(300, 3, 2, 1.0, GreaterThanOrEqualToThreshold, Missing);
    let points = [("30/11/26 12:00:00", 3.0), ("30/11/26 12:05:00", 5.0)];
    assert_eq!(
        reason_at(&rule, Fine, &points, "30/11/26 12:05:00"),
        "Threshold Crossed: 2 out of the last 3 datapoints [5.0 (30/11/26 12:05:00), 3.0 \
         (30/11/26 12:00:00)] were greater than or equal to the threshold (1.0) (minimum 2 \
         datapoints for OK -> ALARM transition)."
    );
    let rule = self::rule(60, 1, 1, 5.0, GreaterThanThreshold, Missing);
    assert_eq!(
        reason_at(
            &rule,
            InsufficientData,
            &[("25/09/22 18:49:00", 6.0)],
            "25/09/22 18:49:00"
        ),
        "Threshold Crossed: 1 out of the last 1 datapoints [6.0 (25/09/22 18:49:00)] was greater \
         than the threshold (5.0) (minimum 1 datapoint for OK -> ALARM transition)."
    );
}

#[test]
fn ok_lists_the_datapoints_within_the_threshold_with_the_minimum_for_alarm_to_ok() {
    // N = 2, D = 2: one datapoint within the threshold is enough to leave ALARM.
    let rule = rule(60, 2, 2, 1.0, GreaterThanOrEqualToThreshold, Missing);
    assert_eq!(
        reason_at(
            &rule,
            Alarm,
            &[("02/06/23 12:28:00", 0.0)],
            "02/06/23 12:28:00"
        ),
        "Threshold Crossed: 1 out of the last 2 datapoints [0.0 (02/06/23 12:28:00)] was not \
         greater than or equal to the threshold (1.0) (minimum 1 datapoint for ALARM -> OK \
         transition)."
    );
    // N = 5, D = 3: three needed.
    let rule = self::rule(60, 5, 3, 0.0, GreaterThanThreshold, Missing);
    let points = [
        ("21/12/21 06:42:00", 0.0),
        ("21/12/21 06:44:00", 0.0),
        ("21/12/21 06:45:00", 0.0),
    ];
    assert_eq!(
        reason_at(&rule, Alarm, &points, "21/12/21 06:45:00"),
        "Threshold Crossed: 3 out of the last 5 datapoints [0.0 (21/12/21 06:45:00), 0.0 \
         (21/12/21 06:44:00), 0.0 (21/12/21 06:42:00)] were not greater than the threshold (0.0) \
         (minimum 3 datapoints for ALARM -> OK transition)."
    );
}

#[test]
fn treated_missing_datapoints_are_counted_in_a_clause() {
    let rule = rule(300, 20, 1, 1.0, GreaterThanOrEqualToThreshold, NotBreaching);
    assert_eq!(
        reason_at(
            &rule,
            Fine,
            &[("16/03/24 12:15:00", 613.0)],
            "16/03/24 12:15:00"
        ),
        "Threshold Crossed: 1 out of the last 20 datapoints [613.0 (16/03/24 12:15:00)] was \
         greater than or equal to the threshold (1.0) and 19 missing datapoints were treated as \
         [NonBreaching] (minimum 1 datapoint for OK -> ALARM transition)."
    );
    // OK under breaching: orgtrail keeps "out of the last" and the minimum, where CloudWatch
    // has been seen to write "1 datapoint [...] was not less than ... [Breaching]." alone.
    let rule = self::rule(60, 3, 3, 1.0, LessThanThreshold, Breaching);
    assert_eq!(
        reason_at(
            &rule,
            Alarm,
            &[("26/08/26 16:16:00", 1.0)],
            "26/08/26 16:16:00"
        ),
        "Threshold Crossed: 1 out of the last 3 datapoints [1.0 (26/08/26 16:16:00)] was not \
         less than the threshold (1.0) and 2 missing datapoints were treated as [Breaching] \
         (minimum 1 datapoint for ALARM -> OK transition)."
    );
    let rule = self::rule(300, 3, 2, 1.0, GreaterThanOrEqualToThreshold, Breaching);
    assert_eq!(
        reason_at(
            &rule,
            Fine,
            &[("30/11/26 12:05:00", 5.0)],
            "30/11/26 12:05:00"
        ),
        "Threshold Crossed: 1 out of the last 3 datapoints [5.0 (30/11/26 12:05:00)] was greater \
         than or equal to the threshold (1.0) and 2 missing datapoints were treated as \
         [Breaching] (minimum 2 datapoints for OK -> ALARM transition)."
    );
}

#[test]
fn a_state_decided_by_missing_datapoints_alone_says_what_was_received() {
    let breaching = rule(60, 2, 2, 1.0, GreaterThanOrEqualToThreshold, Breaching);
    assert_eq!(
        reason_at(&breaching, Fine, &[], "02/06/23 12:28:00"),
        "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints \
         were treated as [Breaching]."
    );
    let not_breaching = rule(60, 1, 1, 1.0, GreaterThanOrEqualToThreshold, NotBreaching);
    assert_eq!(
        reason_at(&not_breaching, Alarm, &[], "02/06/23 12:28:00"),
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint \
         was treated as [NonBreaching]."
    );
    let three = rule(300, 3, 2, 1.0, GreaterThanOrEqualToThreshold, Breaching);
    assert_eq!(
        reason_at(
            &three,
            Fine,
            &[("30/11/26 12:00:00", 0.0)],
            "30/11/26 12:05:00"
        ),
        "Threshold Crossed: 1 datapoint was received for 3 periods and 2 missing datapoints \
         were treated as [Breaching]."
    );
}

#[test]
fn insufficient_data_counts_the_unknown_datapoints() {
    let one = rule(60, 1, 1, 1.0, GreaterThanOrEqualToThreshold, Missing);
    assert_eq!(
        reason_at(&one, Fine, &[], "02/06/23 12:28:00"),
        "Insufficient Data: 1 datapoint was unknown."
    );
    let three = rule(300, 3, 2, 1.0, GreaterThanOrEqualToThreshold, Missing);
    assert_eq!(
        reason_at(&three, Alarm, &[], "02/06/23 12:25:00"),
        "Insufficient Data: 3 datapoints were unknown."
    );
}

#[test]
fn ok_with_too_few_breaching_and_nothing_within_lists_the_breaching_ones() {
    let rule = rule(300, 3, 2, 1.0, GreaterThanOrEqualToThreshold, Missing);
    assert_eq!(
        reason_at(
            &rule,
            InsufficientData,
            &[("30/11/26 12:00:00", 5.0)],
            "30/11/26 12:05:00"
        ),
        "Threshold Crossed: 1 out of the last 3 datapoints [5.0 (30/11/26 12:00:00)] was greater \
         than or equal to the threshold (1.0) (minimum 2 datapoints for OK -> ALARM transition)."
    );
}

#[test]
fn more_than_five_datapoints_list_the_five_most_recent_after_the_sentence() {
    let rule = rule(60, 30, 30, 20.0, GreaterThanThreshold, Missing);
    let mut points: Vec<(String, f64)> = (6..=29)
        .map(|minute| (format!("06/12/24 05:{minute:02}:00"), 58.0))
        .collect();
    points.extend([
        ("06/12/24 05:30:00".to_owned(), 59.0),
        ("06/12/24 05:31:00".to_owned(), 59.0),
        ("06/12/24 05:32:00".to_owned(), 59.0),
        ("06/12/24 05:33:00".to_owned(), 60.0),
        ("06/12/24 05:34:00".to_owned(), 60.0),
    ]);
    assert_eq!(points.len() + 1, 30);
    points.push(("06/12/24 05:05:00".to_owned(), 21.5));
    let points: Vec<(&str, f64)> = points
        .iter()
        .map(|(time, value)| (time.as_str(), *value))
        .collect();
    assert_eq!(
        reason_at(&rule, Fine, &points, "06/12/24 05:34:00"),
        "Threshold Crossed: 30 out of the last 30 datapoints were greater than the threshold \
         (20.0). The most recent datapoints which crossed the threshold: [60.0 (06/12/24 \
         05:34:00), 60.0 (06/12/24 05:33:00), 59.0 (06/12/24 05:32:00), 59.0 (06/12/24 \
         05:31:00), 59.0 (06/12/24 05:30:00)] (minimum 30 datapoints for OK -> ALARM \
         transition)."
    );
    let within: Vec<(&str, f64)> = points.iter().map(|&(time, _)| (time, 1.5)).collect();
    assert_eq!(
        reason_at(&rule, Alarm, &within, "06/12/24 05:34:00"),
        "Threshold Crossed: 30 out of the last 30 datapoints were not greater than the threshold \
         (20.0). The most recent datapoints: [1.5 (06/12/24 05:34:00), 1.5 (06/12/24 05:33:00), \
         1.5 (06/12/24 05:32:00), 1.5 (06/12/24 05:31:00), 1.5 (06/12/24 05:30:00)] (minimum 1 \
         datapoint for ALARM -> OK transition)."
    );
}
