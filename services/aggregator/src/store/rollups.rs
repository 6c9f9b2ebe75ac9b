//! The rollups: events per series per minute (`event_minutes`) and per account, region and
//! category per hour (`event_hours`), added to in the transaction of every file that stores
//! new events and taken from in the transaction of every retention deletion, so they are
//! always the counts of the events stored. The summary reads them; Insights read the minutes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use orgtrail_domain::CloudTrailEvent;
use sqlx::PgConnection;

use super::{convert_sqlx_error, StoreError};

/// What a series is: the events of one account, region, category and API, with one access
/// and one error code. Missing fields are empty strings, as in `rollup_series`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub account_id: String,
    pub aws_region: String,
    pub event_category: String,
    pub event_source: String,
    pub event_name: String,
    /// `r` read only, `w` write, `-` the record does not say (`readOnly` is missing).
    pub access: char,
    /// Empty for a call without an error.
    pub error_code: String,
}

impl SeriesKey {
    pub fn of(event: &CloudTrailEvent) -> SeriesKey {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        SeriesKey {
            account_id: text(&event.account_id),
            aws_region: text(&event.aws_region),
            event_category: event.event_category.to_string(),
            event_source: text(&event.event_source),
            event_name: text(&event.event_name),
            access: match event.read_only {
                Some(true) => 'r',
                Some(false) => 'w',
                None => '-',
            },
            error_code: text(&event.error_code),
        }
    }
}

/// The start of the minute of `time`.
pub fn minute_of(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::minutes(1)).unwrap_or(time)
}

/// The start of the hour of `time`.
pub fn hour_of(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::hours(1)).unwrap_or(time)
}

/// What one file adds to the rollups: its newly stored events, counted.
#[derive(Default)]
pub struct RollupDelta {
    minutes: BTreeMap<SeriesKey, BTreeMap<DateTime<Utc>, i64>>,
    hours: BTreeMap<(String, String, String, DateTime<Utc>), i64>,
}

impl RollupDelta {
    /// Counts an event stored for the first time.
    pub fn add(&mut self, event: &CloudTrailEvent) {
        let key = SeriesKey::of(event);
        let hour = (
            key.account_id.clone(),
            key.aws_region.clone(),
            key.event_category.clone(),
            hour_of(event.event_time),
        );
        *self
            .minutes
            .entry(key)
            .or_default()
            .entry(minute_of(event.event_time))
            .or_default() += 1;
        *self.hours.entry(hour).or_default() += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }
}

/// The ids of the series seen so far (series are never changed or deleted).
#[derive(Default)]
pub struct SeriesIds {
    ids: Mutex<HashMap<SeriesKey, i32>>,
}

impl SeriesIds {
    fn known(&self, keys: &[&SeriesKey]) -> (HashMap<SeriesKey, i32>, Vec<SeriesKey>) {
        let ids = self
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut known = HashMap::new();
        let mut missing = Vec::new();
        for key in keys {
            match ids.get(*key) {
                Some(id) => {
                    known.insert((*key).clone(), *id);
                }
                None => missing.push((*key).clone()),
            }
        }
        (known, missing)
    }

    fn remember(&self, found: &[(SeriesKey, i32)]) {
        let mut ids = self
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, id) in found {
            ids.insert(key.clone(), *id);
        }
    }
}

#[derive(sqlx::FromRow)]
struct SeriesRow {
    series_id: i32,
    account_id: String,
    aws_region: String,
    event_category: String,
    event_source: String,
    event_name: String,
    access: String,
    error_code: String,
}

const SERIES_COLUMNS: &str =
    "account_id, aws_region, event_category, event_source, event_name, access, error_code";

/// The ids of `keys`' series, made where missing (by this transaction or a concurrent one).
async fn series_ids(
    connection: &mut PgConnection,
    cache: &SeriesIds,
    keys: &[&SeriesKey],
) -> Result<HashMap<SeriesKey, i32>, StoreError> {
    let (mut ids, missing) = cache.known(keys);
    if missing.is_empty() {
        return Ok(ids);
    }
    let column =
        |field: fn(&SeriesKey) -> String| -> Vec<String> { missing.iter().map(field).collect() };
    let (accounts, regions, categories, sources, names, accesses, errors) = (
        column(|key| key.account_id.clone()),
        column(|key| key.aws_region.clone()),
        column(|key| key.event_category.clone()),
        column(|key| key.event_source.clone()),
        column(|key| key.event_name.clone()),
        column(|key| key.access.to_string()),
        column(|key| key.error_code.clone()),
    );
    // Made without taking a lock on existing rows (DO NOTHING), then read back: a concurrent
    // transaction making the same series is waited for by the unique index. The ids this
    // transaction made are not cached: until it commits, no other transaction may use them
    // (and if it rolls back, they never exist).
    let made: Vec<i32> = sqlx::query_scalar(&format!(
        "INSERT INTO rollup_series ({SERIES_COLUMNS})
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::\"char\"[], $7::text[])
         ORDER BY 1, 2, 3, 4, 5, 6, 7
         ON CONFLICT DO NOTHING
         RETURNING series_id"
    ))
    .bind(&accounts)
    .bind(&regions)
    .bind(&categories)
    .bind(&sources)
    .bind(&names)
    .bind(&accesses)
    .bind(&errors)
    .fetch_all(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    let rows: Vec<SeriesRow> = sqlx::query_as(&format!(
        "SELECT s.series_id, {SERIES_COLUMNS_S}
         FROM rollup_series AS s
         JOIN UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::\"char\"[], $7::text[])
              AS k ({SERIES_COLUMNS})
           ON (s.account_id, s.aws_region, s.event_category, s.event_source, s.event_name, s.access, s.error_code)
            = (k.account_id, k.aws_region, k.event_category, k.event_source, k.event_name, k.access, k.error_code)",
        SERIES_COLUMNS_S = "s.account_id, s.aws_region, s.event_category, s.event_source, s.event_name, s.access::text AS access, s.error_code",
    ))
    .bind(&accounts)
    .bind(&regions)
    .bind(&categories)
    .bind(&sources)
    .bind(&names)
    .bind(&accesses)
    .bind(&errors)
    .fetch_all(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    let found: Vec<(SeriesKey, i32)> = rows
        .into_iter()
        .map(|row| {
            (
                SeriesKey {
                    account_id: row.account_id,
                    aws_region: row.aws_region,
                    event_category: row.event_category,
                    event_source: row.event_source,
                    event_name: row.event_name,
                    access: row.access.chars().next().unwrap_or('-'),
                    error_code: row.error_code,
                },
                row.series_id,
            )
        })
        .collect();
    if found.len() != missing.len() {
        return Err(StoreError::CorruptRow(format!(
            "{} rollup series made, {} found again",
            missing.len(),
            found.len()
        )));
    }
    let committed: Vec<(SeriesKey, i32)> = found
        .iter()
        .filter(|(_, id)| !made.contains(id))
        .cloned()
        .collect();
    cache.remember(&committed);
    ids.extend(found);
    Ok(ids)
}

/// Adds a file's counts to the rollups, in the file's transaction. Rows are taken in key order
/// (minutes, then hours) so that two files adding to the same rows wait for each other rather
/// than deadlock.
pub async fn add_rollups(
    connection: &mut PgConnection,
    cache: &SeriesIds,
    delta: &RollupDelta,
) -> Result<(), StoreError> {
    if delta.is_empty() {
        return Ok(());
    }
    let keys: Vec<&SeriesKey> = delta.minutes.keys().collect();
    let ids = series_ids(connection, cache, &keys).await?;
    let mut rows: Vec<(i32, DateTime<Utc>, i64)> = Vec::new();
    let mut changes: Vec<(i32, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (key, minutes) in &delta.minutes {
        let id = *ids
            .get(key)
            .ok_or_else(|| StoreError::CorruptRow(format!("no rollup series for {key:?}")))?;
        rows.extend(
            minutes
                .iter()
                .map(|(minute, events)| (id, *minute, *events)),
        );
        if let (Some((first, _)), Some((last, _))) =
            (minutes.first_key_value(), minutes.last_key_value())
        {
            changes.push((id, *first, *last));
        }
    }
    rows.sort_unstable_by_key(|(id, minute, _)| (*id, *minute));
    let (series, minutes, events): (Vec<i32>, Vec<DateTime<Utc>>, Vec<i64>) =
        rows.into_iter().fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |(mut series, mut minutes, mut events), (id, minute, count)| {
                series.push(id);
                minutes.push(minute);
                events.push(count);
                (series, minutes, events)
            },
        );
    sqlx::query(
        "INSERT INTO event_minutes (series_id, minute, events)
         SELECT * FROM UNNEST($1::integer[], $2::timestamptz[], $3::bigint[])
         ORDER BY 1, 2
         ON CONFLICT (series_id, minute) DO UPDATE SET events = event_minutes.events + EXCLUDED.events",
    )
    .bind(&series)
    .bind(&minutes)
    .bind(&events)
    .execute(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;

    // The primary key's order is (hour, account, region, category).
    let mut hours: Vec<_> = delta.hours.iter().collect();
    hours.sort_unstable_by_key(|((account, region, category, hour), _)| {
        (*hour, account.as_str(), region.as_str(), category.as_str())
    });
    let hour_accounts: Vec<&str> = hours
        .iter()
        .map(|((account, ..), _)| account.as_str())
        .collect();
    let hour_regions: Vec<&str> = hours
        .iter()
        .map(|((_, region, ..), _)| region.as_str())
        .collect();
    let hour_categories: Vec<&str> = hours
        .iter()
        .map(|((_, _, category, _), _)| category.as_str())
        .collect();
    let hour_starts: Vec<DateTime<Utc>> = hours.iter().map(|((.., hour), _)| *hour).collect();
    let hour_events: Vec<i64> = hours.iter().map(|(_, events)| **events).collect();
    sqlx::query(
        "INSERT INTO event_hours (account_id, aws_region, event_category, hour, events)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[])
         ORDER BY 4, 1, 2, 3
         ON CONFLICT (hour, account_id, aws_region, event_category)
         DO UPDATE SET events = event_hours.events + EXCLUDED.events",
    )
    .bind(&hour_accounts)
    .bind(&hour_regions)
    .bind(&hour_categories)
    .bind(&hour_starts)
    .bind(&hour_events)
    .execute(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;

    let (change_series, firsts, lasts): (Vec<i32>, Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) =
        changes.into_iter().fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |(mut series, mut firsts, mut lasts), (id, first, last)| {
                series.push(id);
                firsts.push(first);
                lasts.push(last);
                (series, firsts, lasts)
            },
        );
    sqlx::query(
        "INSERT INTO rollup_changes (series_id, first_minute, last_minute)
         SELECT * FROM UNNEST($1::integer[], $2::timestamptz[], $3::timestamptz[])",
    )
    .bind(&change_series)
    .bind(&firsts)
    .bind(&lasts)
    .execute(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

/// The SQL that takes deleted events (a CTE named `gone` with the events' columns) off the
/// rollups: `minutes_gone` and `hours_gone` are CTEs of the statement it is pushed into. Rows
/// left at 0 are removed by [`remove_empty_rollups`].
pub const SUBTRACT_GONE: &str = "
minutes_gone AS (
    UPDATE event_minutes AS m SET events = m.events - g.events
    FROM (
        SELECT s.series_id, date_trunc('minute', g.event_time, 'UTC') AS minute, count(*) AS events
        FROM gone AS g
        JOIN rollup_series AS s
          ON s.account_id = coalesce(g.account_id, '') AND s.aws_region = coalesce(g.aws_region, '')
         AND s.event_category = g.event_category AND s.event_source = coalesce(g.event_source, '')
         AND s.event_name = coalesce(g.event_name, '')
         AND s.access = CASE g.read_only WHEN true THEN 'r' WHEN false THEN 'w' ELSE '-' END
         AND s.error_code = coalesce(g.error_code, '')
        GROUP BY 1, 2
        ORDER BY 1, 2
    ) AS g
    WHERE m.series_id = g.series_id AND m.minute = g.minute
),
hours_gone AS (
    UPDATE event_hours AS h SET events = h.events - g.events
    FROM (
        SELECT coalesce(account_id, '') AS account_id, coalesce(aws_region, '') AS aws_region,
               event_category, date_trunc('hour', event_time, 'UTC') AS hour, count(*) AS events
        FROM gone
        GROUP BY 1, 2, 3, 4
        ORDER BY 4, 1, 2, 3
    ) AS g
    WHERE h.hour = g.hour AND h.account_id = g.account_id AND h.aws_region = g.aws_region
      AND h.event_category = g.event_category
)";

/// The columns of `events` [`SUBTRACT_GONE`] needs `gone` to return.
pub const GONE_COLUMNS: &str = "event_time, account_id, aws_region, event_category, event_source, event_name, read_only, error_code";

/// Removes the rollup rows of `[start, end)` that deletions took to 0.
pub async fn remove_empty_rollups(
    connection: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM event_minutes WHERE minute >= $1 AND minute < $2 AND events = 0")
        .bind(start)
        .bind(end)
        .execute(&mut *connection)
        .await
        .map_err(convert_sqlx_error)?;
    sqlx::query("DELETE FROM event_hours WHERE hour >= $1 AND hour < $2 AND events = 0")
        .bind(start)
        .bind(end)
        .execute(&mut *connection)
        .await
        .map_err(convert_sqlx_error)?;
    Ok(())
}

/// Makes the rollups of `[start, end)` (whole hours) the counts of the events stored there now:
/// after a day partition is dropped, whatever came back to the day since it was detached.
pub async fn recount_rollups(
    connection: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), StoreError> {
    for statement in [
        "DELETE FROM event_minutes WHERE minute >= $1 AND minute < $2",
        "DELETE FROM event_hours WHERE hour >= $1 AND hour < $2",
        "INSERT INTO rollup_series (account_id, aws_region, event_category, event_source, event_name, access, error_code)
         SELECT DISTINCT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
                coalesce(event_source, ''), coalesce(event_name, ''),
                CASE read_only WHEN true THEN 'r' WHEN false THEN 'w' ELSE '-' END,
                coalesce(error_code, '')
         FROM events WHERE event_time >= $1 AND event_time < $2
         ON CONFLICT DO NOTHING",
        "INSERT INTO event_minutes (series_id, minute, events)
         SELECT s.series_id, date_trunc('minute', e.event_time, 'UTC'), count(*)
         FROM events AS e
         JOIN rollup_series AS s
           ON s.account_id = coalesce(e.account_id, '') AND s.aws_region = coalesce(e.aws_region, '')
          AND s.event_category = e.event_category AND s.event_source = coalesce(e.event_source, '')
          AND s.event_name = coalesce(e.event_name, '')
          AND s.access = CASE e.read_only WHEN true THEN 'r' WHEN false THEN 'w' ELSE '-' END
          AND s.error_code = coalesce(e.error_code, '')
         WHERE e.event_time >= $1 AND e.event_time < $2
         GROUP BY 1, 2",
        "INSERT INTO event_hours (account_id, aws_region, event_category, hour, events)
         SELECT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
                date_trunc('hour', event_time, 'UTC'), count(*)
         FROM events WHERE event_time >= $1 AND event_time < $2
         GROUP BY 1, 2, 3, 4",
    ] {
        sqlx::query(statement)
            .bind(start)
            .bind(end)
            .execute(&mut *connection)
            .await
            .map_err(convert_sqlx_error)?;
    }
    Ok(())
}
