//! The event summary, from the rollups: counts per account, region and category within a
//! window of event time, with each group's oldest and newest event — exact, and a bounded
//! number of index reads however many events the window holds.
//!
//! The window `[start, end)` is cut into parts: the whole UTC days inside it (`day_counts`),
//! the whole hours outside those (`hour_counts`, at most two ranges of under a day), the whole
//! minutes outside those (`minute_counts`, at most two ranges of under an hour), and the events
//! outside those minutes (`events`, at most two ranges of under a minute). A group's oldest
//! event is in the oldest bucket it has events in: an event of the seconds' ranges is itself; a
//! day is narrowed to its oldest hour of the group (`event_hours_group`), and an hour or minute
//! to its oldest event of the group with one index scan of `events` by account and time (the
//! group has events there, so the scan stops at the first of them). The newest likewise.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use orgtrail_domain::lookup::EventCount;
use orgtrail_domain::EventCategory;
use sqlx::{Postgres, QueryBuilder};

use super::{convert_sqlx_error, PgStore, StoreError};

/// `[from, to)`; empty when `from >= to`.
type Range = (DateTime<Utc>, DateTime<Utc>);

/// The parts of a window.
#[derive(Debug, PartialEq)]
struct WindowParts {
    days: Option<Range>,
    hours: Vec<Range>,
    minutes: Vec<Range>,
    seconds: Vec<Range>,
}

impl WindowParts {
    /// The length of the buckets of the part `time` (a bucket's start) lies in; `None` in the
    /// seconds' ranges (a bucket there is an event's time).
    fn bucket_length(&self, time: DateTime<Utc>) -> Option<TimeDelta> {
        let within = |ranges: &[Range]| ranges.iter().any(|(from, to)| time >= *from && time < *to);
        if self
            .days
            .is_some_and(|(from, to)| time >= from && time < to)
        {
            Some(TimeDelta::days(1))
        } else if within(&self.hours) {
            Some(TimeDelta::hours(1))
        } else if within(&self.minutes) {
            Some(TimeDelta::minutes(1))
        } else {
            None
        }
    }
}

/// A part of a window still to cut: its sides (`None` open) and the index of the unit to cut
/// it in.
type Uncut = (Option<DateTime<Utc>>, Option<DateTime<Utc>>, usize);

fn trunc(time: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    time.duration_trunc(unit).unwrap_or(time)
}

/// The first boundary of `unit` at or after `time`.
fn ceil(time: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    let floor = trunc(time, unit);
    if floor == time {
        time
    } else {
        floor + unit
    }
}

/// Cuts `[start, end)` (either side open) into whole days, whole hours, whole minutes and the
/// rest: at each unit, the whole units inside what is left, and the two edges left over go to
/// the next unit.
fn window_parts(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> WindowParts {
    // Beyond any event time, within PostgreSQL's range (4713 BC to 294276 AD).
    let far_past = DateTime::<Utc>::from_timestamp(-200_000_000_000, 0).unwrap_or_default();
    let far_future = DateTime::<Utc>::from_timestamp(3_000_000_000_000, 0).unwrap_or_default();
    let units = [
        TimeDelta::days(1),
        TimeDelta::hours(1),
        TimeDelta::minutes(1),
    ];
    let mut whole: [Vec<Range>; 3] = Default::default();
    let mut seconds = Vec::new();
    // What is left to cut, with the unit to cut it in.
    let mut left: Vec<Uncut> = vec![(start, end, 0)];
    while let Some((from, to, level)) = left.pop() {
        let Some(unit) = units.get(level) else {
            // Under a minute: an open side always holds whole minutes, so both are set.
            if let (Some(from), Some(to)) = (from, to) {
                if from < to {
                    seconds.push((from, to));
                }
            }
            continue;
        };
        let inner_from = from.map_or(far_past, |from| ceil(from, *unit));
        let inner_to = to.map_or(far_future, |to| trunc(to, *unit));
        if inner_from < inner_to {
            whole[level].push((inner_from, inner_to));
            if from.is_some_and(|from| from < inner_from) {
                left.push((from, Some(inner_from), level + 1));
            }
            if to.is_some_and(|to| inner_to < to) {
                left.push((Some(inner_to), to, level + 1));
            }
        } else {
            left.push((from, to, level + 1));
        }
    }
    let [days, hours, minutes] = whole.map(|mut ranges| {
        ranges.sort();
        ranges
    });
    seconds.sort();
    WindowParts {
        days: days.first().copied(),
        hours,
        minutes,
        seconds,
    }
}

/// A group of the summary.
type Group = (String, String, String);

/// A group's count and the oldest and newest thing the parts know of it: a bucket's start.
struct Counted {
    events: i64,
    oldest: DateTime<Utc>,
    newest: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct CountRow {
    account_id: String,
    aws_region: String,
    event_category: String,
    events: i64,
    oldest: DateTime<Utc>,
    newest: DateTime<Utc>,
}

impl PgStore {
    /// Event counts per account, region and category within `[start, end]` (either side
    /// open), with the oldest and newest event of each.
    pub async fn summarize_events(
        &self,
        start_time: Option<DateTime<Utc>>,
        end_time: Option<DateTime<Utc>>,
    ) -> Result<Vec<EventCount>, StoreError> {
        let end = end_time.map(|end| end + TimeDelta::microseconds(1));
        let parts = window_parts(start_time, end);
        let counted = self.count_parts(&parts).await?;
        let (oldest, newest) = self.narrow(&parts, &counted).await?;
        counted
            .into_iter()
            .map(|(group, counted)| {
                let (Some(oldest), Some(newest)) = (oldest.get(&group), newest.get(&group)) else {
                    // The rollups and the events change in the same transactions and each
                    // statement reads committed data: a counted group always has events, unless
                    // retention deleted them between two statements.
                    return Err(StoreError::Conflict(sqlx::Error::Protocol(format!(
                        "the events of {}/{}/{} changed while they were summarised",
                        group.0, group.1, group.2
                    ))));
                };
                Ok(EventCount {
                    account_id: Some(group.0).filter(|text| !text.is_empty()),
                    aws_region: Some(group.1).filter(|text| !text.is_empty()),
                    event_category: EventCategory::parse(&group.2),
                    events: u64::try_from(counted.events).unwrap_or(0),
                    oldest_event_time: *oldest,
                    newest_event_time: *newest,
                })
            })
            .collect()
    }

    /// Counts per group over the parts, with the oldest and newest bucket of each.
    async fn count_parts(
        &self,
        parts: &WindowParts,
    ) -> Result<BTreeMap<Group, Counted>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT account_id, aws_region, event_category, sum(events)::bigint AS events,
                    min(bucket) AS oldest, max(bucket) AS newest FROM (SELECT NULL::text AS account_id,
                    NULL::text AS aws_region, NULL::text AS event_category, 0::bigint AS events,
                    NULL::timestamptz AS bucket WHERE false",
        );
        if let Some((from, to)) = parts.days {
            sql.push(
                " UNION ALL SELECT account_id, aws_region, event_category, events, day
                  FROM day_counts WHERE events > 0 AND day >= ",
            )
            .push_bind(from)
            .push(" AND day < ")
            .push_bind(to);
        }
        for (from, to) in &parts.hours {
            sql.push(
                " UNION ALL SELECT account_id, aws_region, event_category, events, hour
                  FROM hour_counts WHERE events > 0 AND hour >= ",
            )
            .push_bind(*from)
            .push(" AND hour < ")
            .push_bind(*to);
        }
        for (from, to) in &parts.minutes {
            sql.push(
                " UNION ALL SELECT s.account_id, s.aws_region, s.event_category, m.events, m.minute
                  FROM minute_counts AS m JOIN rollup_series AS s USING (series_id)
                  WHERE m.events > 0 AND m.minute >= ",
            )
            .push_bind(*from)
            .push(" AND m.minute < ")
            .push_bind(*to);
        }
        for (from, to) in &parts.seconds {
            sql.push(
                " UNION ALL SELECT coalesce(account_id, ''), coalesce(aws_region, ''), event_category, 1, event_time
                  FROM events WHERE event_time >= ",
            )
            .push_bind(*from)
            .push(" AND event_time < ")
            .push_bind(*to);
        }
        sql.push(") AS parts GROUP BY 1, 2, 3 HAVING sum(events) > 0");
        let rows: Vec<CountRow> = sql
            .build_query_as()
            .fetch_all(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                (
                    (row.account_id, row.aws_region, row.event_category),
                    Counted {
                        events: row.events,
                        oldest: row.oldest,
                        newest: row.newest,
                    },
                )
            })
            .collect())
    }

    /// Each group's oldest and newest event, from its oldest and newest bucket.
    async fn narrow(
        &self,
        parts: &WindowParts,
        counted: &BTreeMap<Group, Counted>,
    ) -> Result<
        (
            BTreeMap<Group, DateTime<Utc>>,
            BTreeMap<Group, DateTime<Utc>>,
        ),
        StoreError,
    > {
        let mut ends = Vec::new();
        for (newest, pick) in [(false, Pick::Oldest), (true, Pick::Newest)] {
            let mut found = BTreeMap::new();
            // Buckets narrowed to their group's event; a bucket of the seconds is the event.
            let mut buckets = Vec::new();
            let mut days = Vec::new();
            for (group, counted) in counted {
                let bucket = if newest {
                    counted.newest
                } else {
                    counted.oldest
                };
                match parts.bucket_length(bucket) {
                    Some(length) if length == TimeDelta::days(1) => {
                        days.push((group.clone(), bucket));
                    }
                    Some(length) => buckets.push((group.clone(), (bucket, bucket + length))),
                    None => {
                        found.insert(group.clone(), bucket);
                    }
                }
            }
            // A day to its hour first: an account's day can hold many events of its other
            // groups before the first of this one.
            let hour = TimeDelta::hours(1);
            buckets.extend(
                self.narrow_days(&days, pick)
                    .await?
                    .into_iter()
                    .map(|(group, start)| (group, (start, start + hour))),
            );
            found.extend(self.narrow_to_events(&buckets, pick).await?);
            ends.push(found);
        }
        let newest = ends.pop().unwrap_or_default();
        let oldest = ends.pop().unwrap_or_default();
        Ok((oldest, newest))
    }

    /// For each (group, day): the group's oldest (newest) hour with events in the day.
    async fn narrow_days(
        &self,
        days: &[(Group, DateTime<Utc>)],
        pick: Pick,
    ) -> Result<Vec<(Group, DateTime<Utc>)>, StoreError> {
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let GroupColumns {
            accounts,
            regions,
            categories,
            times: starts,
        } = columns(days);
        let rows: Vec<(String, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(&format!(
            "SELECT g.account_id, g.aws_region, g.event_category, found.hour
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                  AS g (account_id, aws_region, event_category, day)
             CROSS JOIN LATERAL (
                 SELECT {aggregate}(h.hour) AS hour FROM hour_counts AS h
                 WHERE h.account_id = g.account_id AND h.aws_region = g.aws_region
                   AND h.event_category = g.event_category AND h.events > 0
                   AND h.hour >= g.day AND h.hour < g.day + interval '1 day'
             ) AS found",
            aggregate = pick.aggregate()
        ))
        .bind(&accounts)
        .bind(&regions)
        .bind(&categories)
        .bind(&starts)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|(account, region, category, hour)| {
                hour.map(|hour| ((account, region, category), hour))
            })
            .collect())
    }

    /// For each (group, range): the group's oldest (newest) event in the range.
    /// The ranges are grouped by UTC day (a bucket never crosses midnight) and each day is read
    /// in one statement bounded by the day, so that only the day's partition is planned.
    async fn narrow_to_events(
        &self,
        ranges: &[(Group, Range)],
        pick: Pick,
    ) -> Result<Vec<(Group, DateTime<Utc>)>, StoreError> {
        let mut days: BTreeMap<DateTime<Utc>, Vec<(Group, Range)>> = BTreeMap::new();
        for (group, range) in ranges {
            days.entry(trunc(range.0, TimeDelta::days(1)))
                .or_default()
                .push((group.clone(), *range));
        }
        let mut found = Vec::new();
        for (day, ranges) in days {
            found.extend(self.narrow_in_day(day, &ranges, pick).await?);
        }
        Ok(found)
    }

    /// [`PgStore::narrow_to_events`] for ranges within the UTC day starting at `day`.
    async fn narrow_in_day(
        &self,
        day: DateTime<Utc>,
        ranges: &[(Group, Range)],
        pick: Pick,
    ) -> Result<Vec<(Group, DateTime<Utc>)>, StoreError> {
        let starts: Vec<(Group, DateTime<Utc>)> = ranges
            .iter()
            .map(|(group, (from, _))| (group.clone(), *from))
            .collect();
        let GroupColumns {
            accounts,
            regions,
            categories,
            times: froms,
        } = columns(&starts);
        let tos: Vec<DateTime<Utc>> = ranges.iter().map(|(_, (_, to))| *to).collect();
        let rows: Vec<(String, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(&format!(
            "SELECT g.account_id, g.aws_region, g.event_category, found.event_time
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
                  AS g (account_id, aws_region, event_category, range_from, range_to)
             CROSS JOIN LATERAL (
                 SELECT {aggregate}(event_time) AS event_time FROM (
                     -- By account and time (`events_account_id`): the scan stops at the
                     -- group's first event, which the rollups say is there.
                     (SELECT e.event_time FROM events AS e
                      WHERE e.account_id = g.account_id
                        AND e.event_time >= $6 AND e.event_time < $7
                        AND e.event_time >= g.range_from AND e.event_time < g.range_to
                        AND coalesce(e.aws_region, '') = g.aws_region
                        AND e.event_category = g.event_category
                      ORDER BY e.event_time {order} LIMIT 1)
                     UNION ALL
                     -- The group of the records without an account.
                     (SELECT e.event_time FROM events AS e
                      WHERE g.account_id = '' AND e.account_id IS NULL
                        AND e.event_time >= $6 AND e.event_time < $7
                        AND e.event_time >= g.range_from AND e.event_time < g.range_to
                        AND coalesce(e.aws_region, '') = g.aws_region
                        AND e.event_category = g.event_category
                      ORDER BY e.event_time {order} LIMIT 1)
                 ) AS candidates
             ) AS found",
            aggregate = pick.aggregate(),
            order = pick.order(),
        ))
        .bind(&accounts)
        .bind(&regions)
        .bind(&categories)
        .bind(&froms)
        .bind(&tos)
        .bind(day)
        .bind(day + TimeDelta::days(1))
        // An unnamed statement, planned for these values every time: a prepared one would
        // turn to a generic plan, which keeps every partition of `events`, each planned and
        // opened (tens of milliseconds with a few months of days).
        .persistent(false)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|(account, region, category, time)| {
                time.map(|time| ((account, region, category), time))
            })
            .collect())
    }
}

#[derive(Clone, Copy)]
enum Pick {
    Oldest,
    Newest,
}

impl Pick {
    fn aggregate(self) -> &'static str {
        match self {
            Pick::Oldest => "min",
            Pick::Newest => "max",
        }
    }

    fn order(self) -> &'static str {
        match self {
            Pick::Oldest => "ASC",
            Pick::Newest => "DESC",
        }
    }
}

/// Groups and times as one array per column, for UNNEST.
struct GroupColumns<'a> {
    accounts: Vec<&'a str>,
    regions: Vec<&'a str>,
    categories: Vec<&'a str>,
    times: Vec<DateTime<Utc>>,
}

fn columns(rows: &[(Group, DateTime<Utc>)]) -> GroupColumns<'_> {
    GroupColumns {
        accounts: rows
            .iter()
            .map(|((account, ..), _)| account.as_str())
            .collect(),
        regions: rows
            .iter()
            .map(|((_, region, _), _)| region.as_str())
            .collect(),
        categories: rows
            .iter()
            .map(|((.., category), _)| category.as_str())
            .collect(),
        times: rows.iter().map(|(_, time)| *time).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_window_is_cut_into_whole_days_hours_minutes_and_the_rest() {
        let parts = window_parts(
            Some(at("2024-01-01T10:15:30Z")),
            Some(at("2024-01-03T13:40:10Z")),
        );
        assert_eq!(
            parts,
            WindowParts {
                days: Some((at("2024-01-02T00:00:00Z"), at("2024-01-03T00:00:00Z"))),
                hours: vec![
                    (at("2024-01-01T11:00:00Z"), at("2024-01-02T00:00:00Z")),
                    (at("2024-01-03T00:00:00Z"), at("2024-01-03T13:00:00Z")),
                ],
                minutes: vec![
                    (at("2024-01-01T10:16:00Z"), at("2024-01-01T11:00:00Z")),
                    (at("2024-01-03T13:00:00Z"), at("2024-01-03T13:40:00Z")),
                ],
                seconds: vec![
                    (at("2024-01-01T10:15:30Z"), at("2024-01-01T10:16:00Z")),
                    (at("2024-01-03T13:40:00Z"), at("2024-01-03T13:40:10Z")),
                ],
            }
        );
        assert_eq!(
            parts.bucket_length(at("2024-01-02T00:00:00Z")),
            Some(TimeDelta::days(1))
        );
        assert_eq!(
            parts.bucket_length(at("2024-01-03T12:00:00Z")),
            Some(TimeDelta::hours(1))
        );
        assert_eq!(
            parts.bucket_length(at("2024-01-01T10:59:00Z")),
            Some(TimeDelta::minutes(1))
        );
        assert_eq!(parts.bucket_length(at("2024-01-01T10:15:31Z")), None);
    }

    #[test]
    fn a_window_within_a_day_has_no_days() {
        let parts = window_parts(
            Some(at("2024-01-01T10:15:30Z")),
            Some(at("2024-01-01T13:40:10Z")),
        );
        assert_eq!(
            parts,
            WindowParts {
                days: None,
                hours: vec![(at("2024-01-01T11:00:00Z"), at("2024-01-01T13:00:00Z"))],
                minutes: vec![
                    (at("2024-01-01T10:16:00Z"), at("2024-01-01T11:00:00Z")),
                    (at("2024-01-01T13:00:00Z"), at("2024-01-01T13:40:00Z")),
                ],
                seconds: vec![
                    (at("2024-01-01T10:15:30Z"), at("2024-01-01T10:16:00Z")),
                    (at("2024-01-01T13:40:00Z"), at("2024-01-01T13:40:10Z")),
                ],
            }
        );
    }

    #[test]
    fn aligned_windows_open_ones_and_one_within_a_minute_have_no_empty_parts() {
        let aligned = window_parts(
            Some(at("2024-01-01T10:00:00Z")),
            Some(at("2024-01-01T12:00:00Z")),
        );
        assert_eq!(
            aligned,
            WindowParts {
                days: None,
                hours: vec![(at("2024-01-01T10:00:00Z"), at("2024-01-01T12:00:00Z"))],
                minutes: vec![],
                seconds: vec![],
            }
        );
        let days = window_parts(
            Some(at("2024-01-01T00:00:00Z")),
            Some(at("2024-01-03T00:00:00Z")),
        );
        assert_eq!(
            days,
            WindowParts {
                days: Some((at("2024-01-01T00:00:00Z"), at("2024-01-03T00:00:00Z"))),
                hours: vec![],
                minutes: vec![],
                seconds: vec![],
            }
        );
        let open = window_parts(None, None);
        assert_eq!(open.hours, vec![]);
        assert_eq!(open.minutes, vec![]);
        assert_eq!(open.seconds, vec![]);
        assert!(open.days.is_some());
        let inside = window_parts(
            Some(at("2024-01-01T10:15:10Z")),
            Some(at("2024-01-01T10:15:50Z")),
        );
        assert_eq!(
            inside,
            WindowParts {
                days: None,
                hours: vec![],
                minutes: vec![],
                seconds: vec![(at("2024-01-01T10:15:10Z"), at("2024-01-01T10:15:50Z"))],
            }
        );
        let from = window_parts(Some(at("2024-01-01T10:15:10Z")), None);
        assert_eq!(
            from.seconds,
            vec![(at("2024-01-01T10:15:10Z"), at("2024-01-01T10:16:00Z"))]
        );
        assert_eq!(
            from.minutes,
            vec![(at("2024-01-01T10:16:00Z"), at("2024-01-01T11:00:00Z"))]
        );
        assert_eq!(
            from.hours,
            vec![(at("2024-01-01T11:00:00Z"), at("2024-01-02T00:00:00Z"))]
        );
        assert_eq!(
            from.days.map(|(from, _)| from),
            Some(at("2024-01-02T00:00:00Z"))
        );
    }
}
