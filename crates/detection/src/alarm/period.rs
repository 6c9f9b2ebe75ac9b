//! Periods of event time: the `period_seconds`-long spans, aligned on the Unix epoch, that an
//! alarm's datapoints stand for. A period is named by its index, `floor(unix seconds /
//! period_seconds)`, floored towards minus infinity so that times before 1970 fall in negative
//! periods of the same length.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The index of a period: the period holds the times `t` with
/// `floor(t.timestamp() / period_seconds) == index`. Meaningful only with the period length it
/// was computed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeriodIndex(pub i64);

/// The period `time` falls in. A time exactly on a boundary starts its period; sub-second
/// parts are floored with the rest, so `1969-12-31T23:59:59.5Z` is in period −1 of 60 s.
/// A `period_seconds` of 0 is taken as 1 (a validated rule never has one).
pub fn period_of(time: DateTime<Utc>, period_seconds: u32) -> PeriodIndex {
    // `timestamp()` is already floored: chrono keeps a non-negative sub-second part.
    PeriodIndex(time.timestamp().div_euclid(period_length(period_seconds)))
}

/// When period `index` starts. Indexes beyond chrono's range (about ±262,000 years) saturate
/// to its first or last instant.
pub fn period_start(index: PeriodIndex, period_seconds: u32) -> DateTime<Utc> {
    index
        .0
        .checked_mul(period_length(period_seconds))
        .and_then(|seconds| Utc.timestamp_opt(seconds, 0).single())
        .unwrap_or(if index.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// When period `index` ends: the start of the next one (the end is not part of the period).
/// This is when an alarm evaluated on the period changes state.
pub fn period_end(index: PeriodIndex, period_seconds: u32) -> DateTime<Utc> {
    period_start(PeriodIndex(index.0.saturating_add(1)), period_seconds)
}

fn period_length(period_seconds: u32) -> i64 {
    i64::from(period_seconds.max(1))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::{period_end, period_of, period_start, PeriodIndex};

    fn time(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_period_holds_its_start_and_not_its_end() {
        let start = time("2026-11-30T12:05:00Z");
        let index = period_of(start, 300);
        assert_eq!(index, PeriodIndex(start.timestamp() / 300));
        assert_eq!(period_of(time("2026-11-30T12:09:59.999Z"), 300), index);
        assert_eq!(
            period_of(time("2026-11-30T12:10:00Z"), 300),
            PeriodIndex(index.0 + 1)
        );
        assert_eq!(period_start(index, 300), start);
        assert_eq!(period_end(index, 300), time("2026-11-30T12:10:00Z"));
        assert_eq!(
            period_of(time("1970-01-01T00:00:00Z"), 86_400),
            PeriodIndex(0)
        );
    }

    #[test]
    fn times_before_1970_fall_in_negative_periods_floored_not_truncated() {
        assert_eq!(period_of(time("1969-12-31T23:59:59Z"), 60), PeriodIndex(-1));
        assert_eq!(
            period_of(time("1969-12-31T23:59:59.5Z"), 60),
            PeriodIndex(-1)
        );
        assert_eq!(period_of(time("1969-12-31T23:59:00Z"), 60), PeriodIndex(-1));
        assert_eq!(period_of(time("1969-12-31T23:58:59Z"), 60), PeriodIndex(-2));
        assert_eq!(
            period_start(PeriodIndex(-1), 60),
            time("1969-12-31T23:59:00Z")
        );
        assert_eq!(
            period_end(PeriodIndex(-1), 60),
            time("1970-01-01T00:00:00Z")
        );
        let moon_landing = time("1969-07-20T20:17:40Z");
        let index = period_of(moon_landing, 300);
        assert!(index.0 < 0);
        assert!(period_start(index, 300) <= moon_landing);
        assert!(moon_landing < period_end(index, 300));
        assert_eq!(period_start(index, 300), time("1969-07-20T20:15:00Z"));
    }

    #[test]
    fn indexes_beyond_chronos_range_saturate_instead_of_panicking() {
        assert_eq!(
            period_start(PeriodIndex(i64::MAX), 60),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            period_end(PeriodIndex(i64::MAX), 60),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            period_start(PeriodIndex(i64::MIN), 86_400),
            DateTime::<Utc>::MIN_UTC
        );
        assert_eq!(
            period_of(DateTime::<Utc>::MIN_UTC, 0).0,
            DateTime::<Utc>::MIN_UTC.timestamp()
        );
    }
}
