//! Times on the command line: RFC 3339 (`2024-05-01T12:00:00Z`), a UTC date (`2024-05-01`),
//! or a span before now (`90m`, `12h`, `7d`); an expiry is a future time, or a span from now
//! (`+7d`).

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

/// Which end of a range a date names: a date as `--start` is its first instant, as `--end`
/// its last, so `--start 2024-05-01 --end 2024-05-01` is that whole day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeEnd {
    Start,
    End,
}

pub fn parse_time(text: &str, end: RangeEnd, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let time = match end {
            RangeEnd::Start => NaiveTime::MIN,
            RangeEnd::End => {
                NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or(NaiveTime::MIN)
            }
        };
        return Ok(date.and_time(time).and_utc());
    }
    if let Some(span) = parse_span(text) {
        return Ok(now - span);
    }
    Err(format!(
        "{text:?} is not a time: give RFC 3339 (2024-05-01T12:00:00Z), a date (2024-05-01) or a span before now (90m, 12h, 7d)"
    ))
}

/// An optional time argument as the API's timestamp (absent: absent).
pub fn timestamp_argument(
    text: Option<&str>,
    end: RangeEnd,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<prost_types::Timestamp>> {
    let Some(text) = text else { return Ok(None) };
    let time = parse_time(text, end, now).map_err(|message| anyhow::anyhow!(message))?;
    Ok(Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }))
}

/// An expiry: RFC 3339, a date (its last instant), or a span from now (`+90m`, `+12h`,
/// `+7d`); it must be after `now`. A bare span (`7d`) is refused: elsewhere it means before now.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(span) = text.strip_prefix('+') {
        return match parse_span(span) {
            Some(span) if span > Duration::zero() => Ok(now + span),
            _ => Err(format!(
                "{text:?} is not a span from now: give a number and a unit, e.g. +90m, +12h, +7d"
            )),
        };
    }
    if parse_span(text).is_some() {
        return Err(format!(
            "{text:?} is a span before now, and an expiry is in the future: write +{text} for {text} from now"
        ));
    }
    let time = parse_time(text, RangeEnd::End, now).map_err(|_| {
        format!(
            "{text:?} is not an expiry: give RFC 3339 (2024-05-01T12:00:00Z), a date (2024-05-01) or a span from now (+12h, +7d)"
        )
    })?;
    if time <= now {
        return Err(format!("{text:?} is not in the future"));
    }
    Ok(time)
}

/// An expiry as the API's timestamp.
pub fn expiry_argument(text: &str, now: DateTime<Utc>) -> anyhow::Result<prost_types::Timestamp> {
    let time = parse_expiry(text, now).map_err(|message| anyhow::anyhow!(message))?;
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

fn parse_span(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let amount: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    if amount < 0 {
        return None;
    }
    match unit {
        's' => Duration::try_seconds(amount),
        'm' => Duration::try_minutes(amount),
        'h' => Duration::try_hours(amount),
        'd' => Duration::try_days(amount),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_dates_and_spans_are_read() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let parse = |text, end| parse_time(text, end, now).map(|time| time.to_rfc3339());
        assert_eq!(
            parse("2014-09-27T06:45:11Z", RangeEnd::Start).unwrap(),
            "2014-09-27T06:45:11+00:00"
        );
        assert_eq!(
            parse("2014-09-27", RangeEnd::Start).unwrap(),
            "2014-09-27T00:00:00+00:00"
        );
        assert_eq!(
            parse("2014-09-27", RangeEnd::End).unwrap(),
            "2014-09-27T23:59:59.999999+00:00"
        );
        assert_eq!(
            parse("7d", RangeEnd::Start).unwrap(),
            "2026-11-19T12:00:00+00:00"
        );
        assert_eq!(
            parse("90m", RangeEnd::Start).unwrap(),
            "2026-11-26T10:30:00+00:00"
        );
        assert!(parse("yesterday", RangeEnd::Start).is_err());
        assert!(parse("-5d", RangeEnd::Start).is_err());
    }

    #[test]
    fn expiries_are_future_times_or_spans_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let parse = |text| parse_expiry(text, now).map(|time| time.to_rfc3339());
        assert_eq!(parse("+7d").unwrap(), "2026-12-03T12:00:00+00:00");
        assert_eq!(parse("+90m").unwrap(), "2026-11-26T13:30:00+00:00");
        assert_eq!(
            parse("2026-12-31").unwrap(),
            "2026-12-31T23:59:59.999999+00:00"
        );
        assert_eq!(
            parse("2027-01-01T00:00:00Z").unwrap(),
            "2027-01-01T00:00:00+00:00"
        );
        // The day of `now` is still in the future until its last instant.
        assert_eq!(
            parse("2026-11-26").unwrap(),
            "2026-11-26T23:59:59.999999+00:00"
        );
        let bare = parse("7d").unwrap_err();
        assert!(bare.contains("write +7d"), "{bare}");
        assert!(parse("2026-11-25")
            .unwrap_err()
            .contains("not in the future"));
        assert!(parse("+0d").is_err());
        assert!(parse("+-1d").is_err());
        assert!(parse("+7x").is_err());
        assert!(parse("next week").is_err());
        let timestamp = expiry_argument("+1h", now).unwrap();
        assert_eq!(timestamp.seconds, now.timestamp() + 3600);
    }
}
