//! The Insights model's settings: the two Insight types, `InsightModel` (baseline, history,
//! threshold, minimum rate, seasonality, how episodes end) with its validation, and the
//! operators' overrides per account, event source or API (`InsightTuning`), resolved for one
//! series by `InsightModel::with_overrides`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Minutes in a UTC day: baselines are made of whole days.
pub const MINUTES_PER_DAY: i64 = 1_440;
/// The longest baseline orgtrail accepts (CloudTrail's current baseline is 28 days).
pub const MAX_BASELINE_DAYS: u32 = 90;

/// CloudTrail's two Insight types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InsightType {
    /// Unusual numbers of calls to a write management API (all calls, failed or not).
    #[serde(rename = "ApiCallRateInsight")]
    ApiCallRate,
    /// Unusual numbers of management calls (read or write) that returned an error.
    #[serde(rename = "ApiErrorRateInsight")]
    ApiErrorRate,
}

impl InsightType {
    pub const ALL: [InsightType; 2] = [InsightType::ApiCallRate, InsightType::ApiErrorRate];

    /// CloudTrail's spelling: `ApiCallRateInsight` or `ApiErrorRateInsight`.
    pub fn as_str(self) -> &'static str {
        match self {
            InsightType::ApiCallRate => "ApiCallRateInsight",
            InsightType::ApiErrorRate => "ApiErrorRateInsight",
        }
    }
}

impl fmt::Display for InsightType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not `ApiCallRateInsight` or `ApiErrorRateInsight`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown insight type {0:?}, expected ApiCallRateInsight or ApiErrorRateInsight")]
pub struct UnknownInsightType(pub String);

impl FromStr for InsightType {
    type Err = UnknownInsightType;

    fn from_str(text: &str) -> Result<InsightType, UnknownInsightType> {
        match text {
            "ApiCallRateInsight" => Ok(InsightType::ApiCallRate),
            "ApiErrorRateInsight" => Ok(InsightType::ApiErrorRate),
            _ => Err(UnknownInsightType(text.to_string())),
        }
    }
}

/// Which regularities of time the expected rate follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// One rate for every minute: the baseline's average.
    None,
    /// The rate of the hour of the day (UTC), smoothed over the neighbouring hours.
    TimeOfDay,
    /// The hour of the day, scaled by the level of the same kind of day (weekday or weekend)
    /// in the baseline.
    #[default]
    TimeOfDayAndWeekday,
}

/// How minutes are judged and episodes formed; `docs/insights.md` says why each default is
/// what it is. Every field has a default, so `{}` is the default model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightModel {
    /// How many whole UTC days before a minute's day make its baseline (CloudTrail: 7).
    pub baseline_days: u32,
    /// How many days the series' scope (its account and region) must have had data before
    /// anything is raised: until then the baseline is too short to say what is unusual.
    pub min_history_days: u32,
    /// The sensitivity, in standard deviations of a normal distribution: a minute is unusual
    /// when a count at least as high is no more likely, under the baseline's distribution for
    /// that time, than a normal variable `threshold_sigma` deviations above its mean
    /// (5 → a one-sided tail of 2.9 × 10⁻⁷ per minute). Larger raises fewer Insights.
    pub threshold_sigma: f64,
    /// The least count in a minute that can be unusual, whatever the baseline: a quiet API
    /// going from 0 to 2 calls is not an Insight.
    pub min_rate_per_minute: f64,
    /// How many times the expected count a minute must reach: a change too small to matter is
    /// not an Insight however regular the series.
    pub min_increase_factor: f64,
    /// A count the series reached, at this time of day (±1 hour), on at least this many days
    /// of its baseline is normal for it (a daily job), however far above the average.
    pub recurring_peak_days: u32,
    pub seasonality: Seasonality,
    /// An Insight ends after this many minutes in a row that are not unusual; unusual minutes
    /// closer together than that belong to one Insight.
    pub quiet_minutes: u32,
    /// The longest Insight: an unusual run that goes on longer ends its Insight here and raises
    /// no other until it has been quiet for `quiet_minutes`.
    pub max_insight_minutes: u32,
}

impl Default for InsightModel {
    fn default() -> InsightModel {
        InsightModel {
            baseline_days: 7,
            min_history_days: 7,
            threshold_sigma: 5.0,
            min_rate_per_minute: 5.0,
            min_increase_factor: 2.0,
            recurring_peak_days: 2,
            seasonality: Seasonality::TimeOfDayAndWeekday,
            quiet_minutes: 10,
            max_insight_minutes: 1_440,
        }
    }
}

/// Why a model was refused. Each message names the field and the range it must be in.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InsightModelError {
    #[error("baseline_days must be between 1 and {MAX_BASELINE_DAYS}, found {0}")]
    BaselineDays(u32),
    #[error("min_history_days must be between 1 and {MAX_BASELINE_DAYS}, found {0}")]
    MinHistoryDays(u32),
    #[error("threshold_sigma must be a number between 1 and 20, found {0}")]
    ThresholdSigma(f64),
    #[error("min_rate_per_minute must be a number between 1 and 1000000, found {0}")]
    MinRatePerMinute(f64),
    #[error("min_increase_factor must be a number between 1 and 1000, found {0}")]
    MinIncreaseFactor(f64),
    #[error(
        "recurring_peak_days must be between 1 and baseline_days ({baseline_days}), found {found}"
    )]
    RecurringPeakDays { found: u32, baseline_days: u32 },
    #[error("quiet_minutes must be between 1 and 1440, found {0}")]
    QuietMinutes(u32),
    #[error("max_insight_minutes must be between quiet_minutes ({quiet_minutes}) and 10080, found {found}")]
    MaxInsightMinutes { found: u32, quiet_minutes: u32 },
    #[error("an insight override names an event name without its event source ({0:?})")]
    OverrideEventNameWithoutSource(String),
    #[error("an insight override changes nothing (scope {0})")]
    OverrideChangesNothing(String),
    #[error("two insight overrides have the same scope ({0})")]
    DuplicateOverrideScope(String),
    #[error("override for {scope}: {source}")]
    Override {
        scope: String,
        source: Box<InsightModelError>,
    },
}

impl InsightModel {
    /// Checks every field against its range (a sigma of 1 to 20, a minimum rate of at least
    /// one call a minute, whole-day baselines of 1 to 90 days, …).
    pub fn validate(&self) -> Result<(), InsightModelError> {
        if !(1..=MAX_BASELINE_DAYS).contains(&self.baseline_days) {
            return Err(InsightModelError::BaselineDays(self.baseline_days));
        }
        if !(1..=MAX_BASELINE_DAYS).contains(&self.min_history_days) {
            return Err(InsightModelError::MinHistoryDays(self.min_history_days));
        }
        check_threshold_sigma(self.threshold_sigma)?;
        check_min_rate(self.min_rate_per_minute)?;
        if !(1.0..=1_000.0).contains(&self.min_increase_factor) {
            return Err(InsightModelError::MinIncreaseFactor(
                self.min_increase_factor,
            ));
        }
        if !(1..=self.baseline_days).contains(&self.recurring_peak_days) {
            return Err(InsightModelError::RecurringPeakDays {
                found: self.recurring_peak_days,
                baseline_days: self.baseline_days,
            });
        }
        if !(1..=1_440).contains(&self.quiet_minutes) {
            return Err(InsightModelError::QuietMinutes(self.quiet_minutes));
        }
        if !(self.quiet_minutes..=10_080).contains(&self.max_insight_minutes) {
            return Err(InsightModelError::MaxInsightMinutes {
                found: self.max_insight_minutes,
                quiet_minutes: self.quiet_minutes,
            });
        }
        Ok(())
    }

    /// The model for one series: each overridable setting from the most specific override of
    /// `tuning` whose scope covers the series and that sets it (an API over its event source
    /// over its account; an override naming the account too beats the same one without), or
    /// this model's own value where none does.
    pub fn with_overrides(
        &self,
        tuning: &InsightTuning,
        account_id: &str,
        event_source: &str,
        event_name: &str,
    ) -> InsightModel {
        let mut covering: Vec<&InsightOverride> = tuning
            .overrides
            .iter()
            .filter(|entry| entry.scope.covers(account_id, event_source, event_name))
            .collect();
        // Least specific first, so the most specific setting is applied last and wins.
        covering.sort_by_key(|entry| entry.scope.specificity());
        let mut model = self.clone();
        for entry in covering {
            if let Some(threshold_sigma) = entry.threshold_sigma {
                model.threshold_sigma = threshold_sigma;
            }
            if let Some(min_rate_per_minute) = entry.min_rate_per_minute {
                model.min_rate_per_minute = min_rate_per_minute;
            }
        }
        model
    }
}

/// Operators' overrides of the sensitivity and the minimum rate, per account, event source or
/// API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightTuning {
    pub overrides: Vec<InsightOverride>,
}

/// One override: the series it covers and the settings it changes (at least one), e.g.
/// `{"scope": {"account_id": "111111111111"}, "min_rate_per_minute": 20}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightOverride {
    #[serde(default)]
    pub scope: InsightOverrideScope,
    #[serde(default)]
    pub threshold_sigma: Option<f64>,
    #[serde(default)]
    pub min_rate_per_minute: Option<f64>,
}

/// Which series an override covers: every named field must match; an absent one matches
/// anything. An event name needs its event source (an API is the pair).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightOverrideScope {
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub event_source: Option<String>,
    #[serde(default)]
    pub event_name: Option<String>,
}

impl InsightTuning {
    /// Checks each override's values with the model's own ranges, that each names an event
    /// source with its event name and changes something, and that no two share a scope (so the
    /// most specific one is always unique).
    pub fn validate(&self) -> Result<(), InsightModelError> {
        let mut seen = std::collections::BTreeSet::new();
        for entry in &self.overrides {
            let scope = entry.scope.to_string();
            if entry.scope.event_name.is_some() && entry.scope.event_source.is_none() {
                return Err(InsightModelError::OverrideEventNameWithoutSource(
                    entry.scope.event_name.clone().unwrap_or_default(),
                ));
            }
            if entry.threshold_sigma.is_none() && entry.min_rate_per_minute.is_none() {
                return Err(InsightModelError::OverrideChangesNothing(scope));
            }
            let in_scope = |source: InsightModelError| InsightModelError::Override {
                scope: scope.clone(),
                source: Box::new(source),
            };
            if let Some(threshold_sigma) = entry.threshold_sigma {
                check_threshold_sigma(threshold_sigma).map_err(in_scope)?;
            }
            if let Some(min_rate_per_minute) = entry.min_rate_per_minute {
                check_min_rate(min_rate_per_minute).map_err(in_scope)?;
            }
            if !seen.insert(entry.scope.clone().into_key()) {
                return Err(InsightModelError::DuplicateOverrideScope(scope));
            }
        }
        Ok(())
    }
}

impl InsightOverrideScope {
    /// Whether the scope covers the series of this account and API.
    pub fn covers(&self, account_id: &str, event_source: &str, event_name: &str) -> bool {
        let matches =
            |field: &Option<String>, value: &str| field.as_deref().is_none_or(|f| f == value);
        matches(&self.account_id, account_id)
            && matches(&self.event_source, event_source)
            && matches(&self.event_name, event_name)
    }

    /// Orders scopes from least to most specific: an API beats an event source beats an
    /// account, and naming the account breaks the tie.
    fn specificity(&self) -> (bool, bool, bool) {
        (
            self.event_name.is_some(),
            self.event_source.is_some(),
            self.account_id.is_some(),
        )
    }

    fn into_key(self) -> (Option<String>, Option<String>, Option<String>) {
        (self.account_id, self.event_source, self.event_name)
    }
}

impl fmt::Display for InsightOverrideScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |value: &Option<String>| value.clone().unwrap_or_else(|| "*".to_string());
        write!(
            f,
            "account {}, {} {}",
            part(&self.account_id),
            part(&self.event_source),
            part(&self.event_name)
        )
    }
}

/// How many minutes before a window's start the caller must supply counts for, so that
/// `detect_episodes` sees every minute that decides the window: an Insight still open at the
/// window's start began at most `max_insight_minutes` before it, whether it began a run needs
/// the `quiet_minutes` before that, and each of those minutes is judged against the
/// `baseline_days` whole days before its own day.
pub fn lookback_minutes(model: &InsightModel) -> i64 {
    (i64::from(model.baseline_days) + 1) * MINUTES_PER_DAY
        + i64::from(model.max_insight_minutes)
        + i64::from(model.quiet_minutes)
}

fn check_threshold_sigma(threshold_sigma: f64) -> Result<(), InsightModelError> {
    if (1.0..=20.0).contains(&threshold_sigma) {
        Ok(())
    } else {
        Err(InsightModelError::ThresholdSigma(threshold_sigma))
    }
}

fn check_min_rate(min_rate_per_minute: f64) -> Result<(), InsightModelError> {
    if (1.0..=1_000_000.0).contains(&min_rate_per_minute) {
        Ok(())
    } else {
        Err(InsightModelError::MinRatePerMinute(min_rate_per_minute))
    }
}
