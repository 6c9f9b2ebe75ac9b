//! CloudTrail's `attributions`: for the caller identities (`userIdentityArn`), user agents and
//! error codes behind an Insight, the top values in the Insight and in the baseline with their
//! per-minute averages. The caller counts the values (by SQL over the stored events); this
//! turns the counts into the block CloudTrail writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::InsightType;

/// The `errorCode` value of calls that returned no error, as CloudTrail writes it.
pub const NO_ERROR_CODE: &str = "null";
/// At most this many values of each attribute, in the Insight and in the baseline.
pub const MAX_ATTRIBUTION_VALUES: usize = 5;

/// The attributes CloudTrail attributes an Insight to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttributeName {
    UserIdentityArn,
    UserAgent,
    ErrorCode,
}

/// How often each value of one attribute occurred: among the Insight's events and among the
/// baseline's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValueCounts {
    pub insight: BTreeMap<String, u64>,
    pub baseline: BTreeMap<String, u64>,
}

/// The counts behind one record's attributions. Calls without an error count under
/// `NO_ERROR_CODE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributionCounts {
    pub user_identity_arn: ValueCounts,
    pub user_agent: ValueCounts,
    pub error_code: ValueCounts,
}

/// One attribute's block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub attribute: AttributeName,
    pub insight: Vec<AttributedValue>,
    pub baseline: Vec<AttributedValue>,
}

/// One value and its calls (or errors) per minute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributedValue {
    pub value: String,
    pub average: f64,
}

/// The attributions of an Insight of `insight_type` whose counts were taken over
/// `insight_minutes` minutes of the Insight and `baseline_minutes` of its baseline: the top
/// `MAX_ATTRIBUTION_VALUES` values of each attribute, by average (count / minutes) descending,
/// ties by value; error codes only for call-rate Insights, as CloudTrail shows them; an
/// attribute with no value at all is left out.
pub fn attributions(
    insight_type: InsightType,
    counts: &AttributionCounts,
    insight_minutes: i64,
    baseline_minutes: i64,
) -> Vec<Attribution> {
    let mut attributed = vec![
        (AttributeName::UserIdentityArn, &counts.user_identity_arn),
        (AttributeName::UserAgent, &counts.user_agent),
    ];
    if insight_type == InsightType::ApiCallRate {
        attributed.push((AttributeName::ErrorCode, &counts.error_code));
    }
    attributed
        .into_iter()
        .filter(|(_, values)| !(values.insight.is_empty() && values.baseline.is_empty()))
        .map(|(attribute, values)| Attribution {
            attribute,
            insight: top_values(&values.insight, insight_minutes),
            baseline: top_values(&values.baseline, baseline_minutes),
        })
        .collect()
}

/// The `errorCode` attribution value of a call: its error code, or `"null"`.
pub fn error_code_value(error_code: Option<&str>) -> &str {
    error_code.unwrap_or(NO_ERROR_CODE)
}

fn top_values(counts: &BTreeMap<String, u64>, minutes: i64) -> Vec<AttributedValue> {
    let minutes = minutes.max(1) as f64;
    let mut values: Vec<(&String, u64)> = counts
        .iter()
        .filter(|(_, &count)| count > 0)
        .map(|(value, &count)| (value, count))
        .collect();
    // Averages share one denominator, so ordering by count is ordering by average.
    values.sort_by(|(a_value, a_count), (b_value, b_count)| {
        b_count.cmp(a_count).then_with(|| a_value.cmp(b_value))
    });
    values
        .into_iter()
        .take(MAX_ATTRIBUTION_VALUES)
        .map(|(value, count)| AttributedValue {
            value: value.clone(),
            average: count as f64 / minutes,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{attributions, AttributeName, AttributionCounts, ValueCounts, NO_ERROR_CODE};
    use crate::insights::InsightType;

    fn counts(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
        pairs
            .iter()
            .map(|(value, count)| (value.to_string(), *count))
            .collect()
    }

    #[test]
    fn the_top_five_values_come_by_average_with_ties_by_value() {
        let counts = AttributionCounts {
            user_identity_arn: ValueCounts {
                insight: counts(&[
                    ("arn:f", 1),
                    ("arn:e", 2),
                    ("arn:d", 3),
                    ("arn:c", 3),
                    ("arn:b", 5),
                    ("arn:a", 9),
                    ("arn:zero", 0),
                ]),
                baseline: counts(&[("arn:a", 100)]),
            },
            ..AttributionCounts::default()
        };
        let blocks = attributions(InsightType::ApiCallRate, &counts, 10, 10_080);
        assert_eq!(blocks.len(), 1);
        let values: Vec<(&str, f64)> = blocks[0]
            .insight
            .iter()
            .map(|value| (value.value.as_str(), value.average))
            .collect();
        assert_eq!(
            values,
            [
                ("arn:a", 0.9),
                ("arn:b", 0.5),
                ("arn:c", 0.3),
                ("arn:d", 0.3),
                ("arn:e", 0.2)
            ]
        );
        assert_eq!(blocks[0].baseline[0].average, 100.0 / 10_080.0);
    }

    #[test]
    fn error_codes_are_attributed_on_call_rate_insights_only() {
        let counts = AttributionCounts {
            user_agent: ValueCounts {
                insight: counts(&[("aws-cli/2", 6)]),
                baseline: counts(&[("aws-cli/2", 1)]),
            },
            error_code: ValueCounts {
                insight: counts(&[(NO_ERROR_CODE, 6)]),
                baseline: counts(&[(NO_ERROR_CODE, 1)]),
            },
            ..AttributionCounts::default()
        };
        let call_rate = attributions(InsightType::ApiCallRate, &counts, 5, 11_336);
        let names: Vec<AttributeName> = call_rate.iter().map(|block| block.attribute).collect();
        assert_eq!(names, [AttributeName::UserAgent, AttributeName::ErrorCode]);
        assert_eq!(call_rate[1].insight[0].value, "null");
        let error_rate = attributions(InsightType::ApiErrorRate, &counts, 5, 11_336);
        let names: Vec<AttributeName> = error_rate.iter().map(|block| block.attribute).collect();
        assert_eq!(names, [AttributeName::UserAgent]);
    }
}
