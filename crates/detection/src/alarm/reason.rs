//! The `StateReason` of a transition, in CloudWatch's words. The forms follow reasons CloudWatch
//! wrote into alarm notifications (quoted in `docs/alarms.md`): datapoints newest first as
//! `value (dd/MM/yy HH:mm:ss)` with the period's start in UTC, values and the threshold as Java
//! prints a double (`5.0`, `0.25`, `1.0E7`), "1 datapoint was" / "2 datapoints were", and the clause on
//! missing datapoints for `breaching` and `notBreaching`.

use std::fmt::Write;

use super::evaluate::WindowPoint;
use super::period::period_start;
use super::rule::AlarmRule;
use super::state::{AlarmState, TreatMissingData};

/// How many datapoints a reason lists inline (`[a, b, c] were …`); past this, CloudWatch's
/// longer form lists the most recent ones after the sentence.
pub const MAX_LISTED_DATAPOINTS: usize = 5;

/// The reason for a transition into `new_state` over `window` (oldest first, as in
/// `Transition::window`), e.g. `Threshold Crossed: 2 out of the last 3 datapoints [5.0
/// (30/11/26 12:05:00), 3.0 (30/11/26 12:00:00)] were greater than or equal to the threshold
/// (1.0) (minimum 2 datapoints for OK -> ALARM transition).` or `Insufficient Data: 3
/// datapoints were unknown.`
pub fn state_reason(rule: &AlarmRule, new_state: AlarmState, window: &[WindowPoint]) -> String {
    let window_length = rule.evaluation_periods.max(1);
    let newest_first = || window.iter().rev().filter(|point| point.value.is_some());
    let breaching: Vec<&WindowPoint> = newest_first().filter(|point| point.breaching).collect();
    let not_breaching: Vec<&WindowPoint> =
        newest_first().filter(|point| !point.breaching).collect();
    let present = count(breaching.len() + not_breaching.len());
    let missing = window_length.saturating_sub(present);
    let treated_as = match rule.treat_missing_data {
        TreatMissingData::Breaching => Some("Breaching"),
        TreatMissingData::NotBreaching => Some("NonBreaching"),
        TreatMissingData::Missing | TreatMissingData::Ignore => None,
    };
    let missing_clause = match treated_as {
        Some(treated_as) if missing > 0 => format!(
            " and {missing} missing {} treated as [{treated_as}]",
            datapoints_were(missing)
        ),
        _ => String::new(),
    };

    if new_state == AlarmState::InsufficientData {
        return format!(
            "Insufficient Data: {missing} {} unknown.",
            datapoints_were(missing)
        );
    }
    // No breaching datapoint at all, and the state comes from the treated missing ones.
    let from_missing_only = treated_as.is_some()
        && breaching.is_empty()
        && (new_state == AlarmState::Alarm || not_breaching.is_empty());
    if from_missing_only {
        let received = if present == 0 {
            "no datapoints were".to_owned()
        } else {
            format!("{present} {}", datapoints_were(present))
        };
        return format!(
            "Threshold Crossed: {received} received for {window_length} {}{missing_clause}.",
            plural(window_length, "period", "periods")
        );
    }
    let sentence = if new_state == AlarmState::Ok && !not_breaching.is_empty() {
        Sentence {
            points: &not_breaching,
            negated: true,
            minimum: (window_length + 1).saturating_sub(rule.datapoints_to_alarm),
            transition: "ALARM -> OK",
        }
    } else {
        // ALARM; or OK with every datapoint present breaching, but fewer than needed.
        Sentence {
            points: &breaching,
            negated: false,
            minimum: rule.datapoints_to_alarm,
            transition: "OK -> ALARM",
        }
    };
    sentence.write(rule, window_length, &missing_clause)
}

/// `Threshold Crossed: {count} out of the last {N} datapoints [...] were [not] {operator} the
/// threshold ({threshold}){missing clause} (minimum {minimum} datapoints for {transition}
/// transition).`
struct Sentence<'a> {
    points: &'a [&'a WindowPoint],
    negated: bool,
    minimum: u32,
    transition: &'static str,
}

impl Sentence<'_> {
    fn write(&self, rule: &AlarmRule, window_length: u32, missing_clause: &str) -> String {
        let listed = count(self.points.len());
        let not = if self.negated { "not " } else { "" };
        let comparison = format!(
            "{not}{} the threshold ({})",
            rule.comparison_operator.phrase(),
            java_double(rule.threshold)
        );
        let minimum = format!(
            "(minimum {} {} for {} transition)",
            self.minimum,
            plural(self.minimum, "datapoint", "datapoints"),
            self.transition
        );
        let mut text =
            format!("Threshold Crossed: {listed} out of the last {window_length} datapoints ");
        if self.points.len() <= MAX_LISTED_DATAPOINTS {
            let _ = write!(
                text,
                "[{}] {} {comparison}{missing_clause} {minimum}.",
                list(rule, self.points),
                plural(listed, "was", "were"),
            );
        } else {
            let most_recent = self
                .points
                .get(..MAX_LISTED_DATAPOINTS)
                .unwrap_or(self.points);
            let which = if self.negated {
                ""
            } else {
                " which crossed the threshold"
            };
            let _ = write!(
                text,
                "were {comparison}{missing_clause}. The most recent datapoints{which}: [{}] \
                 {minimum}.",
                list(rule, most_recent),
            );
        }
        text
    }
}

/// `5.0 (30/11/26 12:05:00), 3.0 (30/11/26 12:00:00)`: each value with its period's start.
fn list(rule: &AlarmRule, points: &[&WindowPoint]) -> String {
    let mut text = String::new();
    for (position, point) in points.iter().enumerate() {
        if position > 0 {
            text.push_str(", ");
        }
        let start = period_start(point.period, rule.period_seconds);
        let _ = write!(
            text,
            "{} ({})",
            java_double(point.value.unwrap_or(f64::NAN)),
            start.format("%d/%m/%y %H:%M:%S")
        );
    }
    text
}

/// A double as CloudWatch (Java's `Double.toString`) prints it in reasons: the shortest digits
/// that read back to the same value, with at least one decimal (`1.0`, `0.25`, `613.0`), and in
/// scientific notation below 10^-3 and from 10^7 on (`1.0E7`, `2.5E-4`).
fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        // Rust's `{:?}` is the shortest round-trip text with at least one decimal, and stays
        // positional up to 10^16.
        return format!("{value:?}");
    }
    // `{:e}` is the shortest round-trip mantissa: `1e7`, `1.5e-4`.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

fn datapoints_were(count: u32) -> &'static str {
    plural(count, "datapoint was", "datapoints were")
}

fn plural(count: u32, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 {
        one
    } else {
        many
    }
}

fn count(length: usize) -> u32 {
    u32::try_from(length).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::java_double;

    #[test]
    fn doubles_print_as_java_prints_them() {
        let cases = [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (613.0, "613.0"),
            (0.25, "0.25"),
            (-2.5, "-2.5"),
            (8.891518474692088, "8.891518474692088"),
            (0.001, "0.001"),
            (9_999_999.0, "9999999.0"),
            (1e7, "1.0E7"),
            (12_345_678.0, "1.2345678E7"),
            (2.5e-4, "2.5E-4"),
            (-1e-5, "-1.0E-5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, text) in cases {
            assert_eq!(java_double(value), text, "{value:?}");
        }
    }
}
