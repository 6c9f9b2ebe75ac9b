//! The event summary, from the rollups: counts per account, region and category within a
//! window of event time, with each group's oldest and newest event — exact, and a bounded
//! number of index reads however many events the window holds.
//!
//! The window `[start, end)` is cut into parts: the whole hours inside it (`event_hours`), the
//! whole minutes outside those (`event_minutes`, at most two ranges of under an hour), and the
//! events outside those minutes (`events`, at most two ranges of under a minute). A group's
//! oldest event is in the oldest part it has events in: an event of the seconds' ranges is
//! itself; a minute is narrowed to its oldest event; an hour to its oldest minute, then to the
//! event. The newest likewise.

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
    hours: Option<Range>,
    minutes: Vec<Range>,
    seconds: Vec<Range>,
}

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

/// Cuts `[start, end)` (either side open) into whole hours, whole minutes and the rest.
fn window_parts(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> WindowParts {
    let (hour, minute) = (TimeDelta::hours(1), TimeDelta::minutes(1));
    let hours_from = start.map(|start| ceil(start, hour));
    let hours_to = end.map(|end| trunc(end, hour));
    let minutes_from = start.map(|start| ceil(start, minute));
    let minutes_to = end.map(|end| trunc(end, minute));
    let nonempty = |(from, to): Range| (from < to).then_some((from, to));
    // Beyond any event time, within PostgreSQL's range (4713 BC to 294276 AD).
    let far_past = DateTime::<Utc>::from_timestamp(-200_000_000_000, 0).unwrap_or_default();
    let far_future = DateTime::<Utc>::from_timestamp(3_000_000_000_000, 0).unwrap_or_default();
    let hours = nonempty((
        hours_from.unwrap_or(far_past),
        hours_to.unwrap_or(far_future),
    ));
    let (minutes_from, minutes_to) = (
        minutes_from.unwrap_or(far_past),
        minutes_to.unwrap_or(far_future),
    );
    let minutes = match hours {
        Some((hours_from, hours_to)) => vec![(minutes_from, hours_from), (hours_to, minutes_to)],
        None => vec![(minutes_from, minutes_to)],
    };
    let whole_minutes = nonempty((minutes_from, minutes_to));
    let seconds = match (whole_minutes, start, end) {
        (Some(_), start, end) => {
            let mut ranges = Vec::new();
            if let Some(start) = start {
                ranges.push((start, minutes_from));
            }
            if let Some(end) = end {
                ranges.push((minutes_to, end));
            }
            ranges
        }
        (None, Some(start), Some(end)) => vec![(start, end)],
        // One side open always holds whole minutes.
        (None, _, _) => Vec::new(),
    };
    WindowParts {
        hours,
        minutes: minutes.into_iter().filter_map(nonempty).collect(),
        seconds: seconds.into_iter().filter_map(nonempty).collect(),
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
        if let Some((from, to)) = parts.hours {
            sql.push(
                " UNION ALL SELECT account_id, aws_region, event_category, events, hour
                  FROM event_hours WHERE events > 0 AND hour >= ",
            )
            .push_bind(from)
            .push(" AND hour < ")
            .push_bind(to);
        }
        for (from, to) in &parts.minutes {
            sql.push(
                " UNION ALL SELECT s.account_id, s.aws_region, s.event_category, m.events, m.minute
                  FROM event_minutes AS m JOIN rollup_series AS s USING (series_id)
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
        let in_hours = |time: DateTime<Utc>| {
            parts
                .hours
                .is_some_and(|(from, to)| time >= from && time < to)
        };
        let in_minutes = |time: DateTime<Utc>| {
            parts
                .minutes
                .iter()
                .any(|(from, to)| time >= *from && time < *to)
        };
        let mut ends = Vec::new();
        for (newest, pick) in [(false, Pick::Oldest), (true, Pick::Newest)] {
            let mut found = BTreeMap::new();
            // Hours narrowed to minutes, then minutes (those and the minute buckets) to events.
            let mut hours = Vec::new();
            let mut minutes = Vec::new();
            for (group, counted) in counted {
                let bucket = if newest {
                    counted.newest
                } else {
                    counted.oldest
                };
                if in_hours(bucket) {
                    hours.push((group.clone(), bucket));
                } else if in_minutes(bucket) {
                    minutes.push((group.clone(), bucket));
                } else {
                    found.insert(group.clone(), bucket);
                }
            }
            minutes.extend(self.narrow_hours(&hours, pick).await?);
            let window = |minute: DateTime<Utc>| (minute, minute + TimeDelta::minutes(1));
            let events = self
                .narrow_to_events(
                    &minutes
                        .iter()
                        .map(|(group, minute)| (group.clone(), window(*minute)))
                        .collect::<Vec<_>>(),
                    pick,
                )
                .await?;
            found.extend(events);
            ends.push(found);
        }
        let newest = ends.pop().unwrap_or_default();
        let oldest = ends.pop().unwrap_or_default();
        Ok((oldest, newest))
    }

    /// For each (group, hour): the group's oldest (newest) minute with events in the hour.
    async fn narrow_hours(
        &self,
        hours: &[(Group, DateTime<Utc>)],
        pick: Pick,
    ) -> Result<Vec<(Group, DateTime<Utc>)>, StoreError> {
        if hours.is_empty() {
            return Ok(Vec::new());
        }
        let GroupColumns {
            accounts,
            regions,
            categories,
            times: starts,
        } = columns(hours);
        let rows: Vec<(String, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(&format!(
            "SELECT g.account_id, g.aws_region, g.event_category, found.minute
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                  AS g (account_id, aws_region, event_category, hour)
             CROSS JOIN LATERAL (
                 SELECT {aggregate}(m.minute) AS minute
                 FROM rollup_series AS s JOIN event_minutes AS m USING (series_id)
                 WHERE s.account_id = g.account_id AND s.aws_region = g.aws_region
                   AND s.event_category = g.event_category AND m.events > 0
                   AND m.minute >= g.hour AND m.minute < g.hour + interval '1 hour'
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
            .filter_map(|(account, region, category, minute)| {
                minute.map(|minute| ((account, region, category), minute))
            })
            .collect())
    }

    /// For each (group, range): the group's oldest (newest) event in the range.
    async fn narrow_to_events(
        &self,
        ranges: &[(Group, Range)],
        pick: Pick,
    ) -> Result<Vec<(Group, DateTime<Utc>)>, StoreError> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
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
                 SELECT {aggregate}(e.event_time) AS event_time FROM events AS e
                 WHERE e.event_time >= g.range_from AND e.event_time < g.range_to
                   AND coalesce(e.account_id, '') = g.account_id
                   AND coalesce(e.aws_region, '') = g.aws_region
                   AND e.event_category = g.event_category
             ) AS found",
            aggregate = pick.aggregate()
        ))
        .bind(&accounts)
        .bind(&regions)
        .bind(&categories)
        .bind(&froms)
        .bind(&tos)
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
    fn a_window_is_cut_into_whole_hours_whole_minutes_and_the_rest() {
        let parts = window_parts(
            Some(at("2024-01-01T10:15:30Z")),
            Some(at("2024-01-01T13:40:10Z")),
        );
        assert_eq!(
            parts,
            WindowParts {
                hours: Some((at("2024-01-01T11:00:00Z"), at("2024-01-01T13:00:00Z"))),
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
                hours: Some((at("2024-01-01T10:00:00Z"), at("2024-01-01T12:00:00Z"))),
                minutes: vec![],
                seconds: vec![],
            }
        );
        let open = window_parts(None, None);
        assert_eq!(open.minutes, vec![]);
        assert_eq!(open.seconds, vec![]);
        assert!(open.hours.is_some());
        let inside = window_parts(
            Some(at("2024-01-01T10:15:10Z")),
            Some(at("2024-01-01T10:15:50Z")),
        );
        assert_eq!(
            inside,
            WindowParts {
                hours: None,
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
    }
}
