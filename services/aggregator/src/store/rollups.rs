//! The rollups: events per series per minute and per account, region and category per hour,
//! added to in the transaction of every file that stores new events and taken from in the
//! transaction of every retention deletion, so they are always the counts of the events
//! stored. The summary reads them; Insights read the minutes.
//!
//! A file inserts its rows only: concurrent files of one account and hour never wait on each
//! other's row locks. Its minutes go into `event_minutes`, with no unique key (a series-minute
//! is almost always in one file; readers sum the rows of a key, through the view
//! `minute_counts`). Its hours go in as delta rows (`event_hour_deltas`): the fold
//! ([`PgStore::fold_rollups`], in the background about once a second) moves them into the one
//! row per key of `event_hours`, and readers read `hour_counts` (folded rows and deltas, to be
//! summed per key). The fold keeps per-day counts too (`event_days`, read through
//! `day_counts`) from the hour deltas it folds: the summary of a long window reads days.
//! Counts are positive; a retention deletion takes its events' counts off in the statement that
//! deletes them ([`push_subtract_gone`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use orgtrail_domain::CloudTrailEvent;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use super::{convert_sqlx_error, PgStore, StoreError};

/// What a series is: the events of one account, region, category and API, with one access
/// and one error code. Missing fields are empty strings, as in `rollup_series`. Only write
/// management calls and calls with an error are counted per API ([`SeriesKey::per_api`]: what
/// Insights read); every other call has an empty event source and name, as the SQL function
/// `rollup_api` gives (`migrations/…13_rollup_minutes.sql`).
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
        let fields = SeriesFields::of(event);
        let text = |value: &str| value.to_string();
        SeriesKey {
            account_id: text(fields.account_id),
            aws_region: text(fields.aws_region),
            event_category: text(fields.event_category),
            event_source: text(fields.event_source),
            event_name: text(fields.event_name),
            access: fields.access,
            error_code: text(fields.error_code),
        }
    }

    /// Whether the series is counted per API (SQL: `rollup_per_api`): calls with an error, and
    /// write management calls.
    pub fn per_api(&self) -> bool {
        per_api(&self.event_category, self.access, &self.error_code)
    }
}

fn per_api(event_category: &str, access: char, error_code: &str) -> bool {
    !error_code.is_empty() || (event_category == "Management" && access == 'w')
}

/// A [`SeriesKey`] borrowed from its event: counting an event allocates nothing unless its
/// series is new to the file.
struct SeriesFields<'a> {
    account_id: &'a str,
    aws_region: &'a str,
    event_category: &'a str,
    event_source: &'a str,
    event_name: &'a str,
    access: char,
    error_code: &'a str,
}

impl<'a> SeriesFields<'a> {
    fn of(event: &'a CloudTrailEvent) -> SeriesFields<'a> {
        let text = |value: &'a Option<String>| value.as_deref().unwrap_or_default();
        let access = match event.read_only {
            Some(true) => 'r',
            Some(false) => 'w',
            None => '-',
        };
        let event_category = event.event_category.as_str();
        let error_code = text(&event.error_code);
        let api = |value: &'a Option<String>| {
            if per_api(event_category, access, error_code) {
                text(value)
            } else {
                ""
            }
        };
        SeriesFields {
            account_id: text(&event.account_id),
            aws_region: text(&event.aws_region),
            event_category,
            event_source: api(&event.event_source),
            event_name: api(&event.event_name),
            access,
            error_code,
        }
    }

    /// Writes the series' identity into `buffer`, each field after its length: two series
    /// never write the same bytes.
    fn write_to(&self, buffer: &mut Vec<u8>) {
        buffer.clear();
        for field in [
            self.account_id,
            self.aws_region,
            self.event_category,
            self.event_source,
            self.event_name,
            self.error_code,
        ] {
            buffer.extend_from_slice(&(field.len() as u64).to_le_bytes());
            buffer.extend_from_slice(field.as_bytes());
        }
        buffer.push(self.access as u8);
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

/// Events per minute of one series.
type MinuteCounts = BTreeMap<DateTime<Utc>, i64>;

/// What one file adds to the rollups: its newly stored events, counted per series and minute
/// (the hours are summed from the minutes when they are added).
#[derive(Default)]
pub struct RollupDelta {
    /// By the series' identity as [`SeriesFields::write_to`] writes it.
    minutes: HashMap<Vec<u8>, (SeriesKey, MinuteCounts)>,
    /// Reused for every event's identity.
    scratch: Vec<u8>,
}

impl RollupDelta {
    /// Counts an event stored for the first time.
    pub fn add(&mut self, event: &CloudTrailEvent) {
        let fields = SeriesFields::of(event);
        fields.write_to(&mut self.scratch);
        let minute = minute_of(event.event_time);
        if let Some((_, minutes)) = self.minutes.get_mut(self.scratch.as_slice()) {
            *minutes.entry(minute).or_default() += 1;
            return;
        }
        self.minutes.insert(
            self.scratch.clone(),
            (SeriesKey::of(event), BTreeMap::from([(minute, 1)])),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }
}

/// The ids of the series seen so far (series are never changed or deleted), by the series'
/// identity as [`SeriesFields::write_to`] writes it.
#[derive(Default)]
pub struct SeriesIds {
    ids: Mutex<HashMap<Vec<u8>, i32>>,
}

impl SeriesIds {
    /// The cached id of each identity, in order.
    fn known(&self, identities: &[&[u8]]) -> Vec<Option<i32>> {
        let ids = self
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        identities
            .iter()
            .map(|identity| ids.get(*identity).copied())
            .collect()
    }

    fn remember(&self, found: Vec<(Vec<u8>, i32)>) {
        let mut ids = self
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ids.extend(found);
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

/// The ids of `keys`' series, made where missing. Made outside the file's transaction, the
/// statement committing at once: a series is immutable and harmless without counts, and a file
/// never waits for another file's transaction to end to learn an id it made (on the unique
/// index), which serialised the files of one account and region while they made new series.
/// Every id returned is committed, so every one is cached.
async fn series_ids(
    pool: &PgPool,
    cache: &SeriesIds,
    series: &[(&[u8], &SeriesKey)],
) -> Result<Vec<i32>, StoreError> {
    let identities: Vec<&[u8]> = series.iter().map(|(identity, _)| *identity).collect();
    let known = cache.known(&identities);
    let missing: Vec<&SeriesKey> = series
        .iter()
        .zip(&known)
        .filter(|(_, id)| id.is_none())
        .map(|((_, key), _)| *key)
        .collect();
    if missing.is_empty() {
        return Ok(known.into_iter().flatten().collect());
    }
    let column = |field: fn(&SeriesKey) -> String| -> Vec<String> {
        missing.iter().map(|key| field(key)).collect()
    };
    let (accounts, regions, categories, sources, names, accesses, errors) = (
        column(|key| key.account_id.clone()),
        column(|key| key.aws_region.clone()),
        column(|key| key.event_category.clone()),
        column(|key| key.event_source.clone()),
        column(|key| key.event_name.clone()),
        column(|key| key.access.to_string()),
        column(|key| key.error_code.clone()),
    );
    // Made or found in one statement that always goes by the unique index (a lookup planned
    // while the table was small would scan it): a found row is "updated" to itself, which
    // locks it until this statement commits, in key order (two replicas never deadlock). Only
    // a series this replica has not cached yet costs this.
    let rows: Vec<SeriesRow> = sqlx::query_as(&format!(
        "INSERT INTO rollup_series AS s ({SERIES_COLUMNS})
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::\"char\"[], $7::text[])
         ORDER BY 1, 2, 3, 4, 5, 6, 7
         ON CONFLICT ({SERIES_COLUMNS}) DO UPDATE SET account_id = EXCLUDED.account_id
         RETURNING s.series_id, s.account_id, s.aws_region, s.event_category, s.event_source,
                   s.event_name, s.access::text AS access, s.error_code"
    ))
    .bind(&accounts)
    .bind(&regions)
    .bind(&categories)
    .bind(&sources)
    .bind(&names)
    .bind(&accesses)
    .bind(&errors)
    .fetch_all(pool)
    .await
    .map_err(convert_sqlx_error)?;
    let found: HashMap<SeriesKey, i32> = rows
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
            "{} rollup series asked for, {} made or found",
            missing.len(),
            found.len()
        )));
    }
    let mut ids = Vec::with_capacity(series.len());
    let mut made = Vec::with_capacity(missing.len());
    for ((identity, key), id) in series.iter().zip(known) {
        let id = match id {
            Some(id) => id,
            None => {
                let id = *found.get(*key).ok_or_else(|| {
                    StoreError::CorruptRow(format!("no rollup series made or found for {key:?}"))
                })?;
                made.push((identity.to_vec(), id));
                id
            }
        };
        ids.push(id);
    }
    cache.remember(made);
    Ok(ids)
}

/// Adds a file's counts to the rollups, in the file's transaction, inserted only, so concurrent
/// files never wait for each other here: its minutes into `event_minutes` (readers sum the rows
/// of a key), its hours as deltas ([`PgStore::fold_rollups`] moves them into `event_hours`
/// later; readers add the deltas not folded yet).
pub async fn add_rollups(
    connection: &mut PgConnection,
    store: &PgStore,
    delta: &RollupDelta,
) -> Result<(), StoreError> {
    if delta.is_empty() {
        return Ok(());
    }
    let series_of_file: Vec<(&[u8], &SeriesKey)> = delta
        .minutes
        .iter()
        .map(|(identity, (key, _))| (identity.as_slice(), key))
        .collect();
    let ids = series_ids(store.pool(), store.series_ids(), &series_of_file).await?;
    // Columns of the minute rows, of the changes (series, first minute, last) and the hours.
    let (mut series, mut minutes_of_series, mut minute_events) =
        (Vec::new(), Vec::new(), Vec::new());
    let (mut changed, mut firsts, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
    let mut hours: BTreeMap<(&str, &str, &str, DateTime<Utc>), i64> = BTreeMap::new();
    for ((key, minutes), id) in delta.minutes.values().zip(ids) {
        for (minute, events) in minutes {
            series.push(id);
            minutes_of_series.push(*minute);
            minute_events.push(*events);
            *hours
                .entry((
                    key.account_id.as_str(),
                    key.aws_region.as_str(),
                    key.event_category.as_str(),
                    hour_of(*minute),
                ))
                .or_default() += events;
        }
        // Insights read the changes of per-API series only.
        if let (true, Some((first, _)), Some((last, _))) = (
            key.per_api(),
            minutes.first_key_value(),
            minutes.last_key_value(),
        ) {
            changed.push(id);
            firsts.push(*first);
            lasts.push(*last);
        }
    }
    let (mut hour_accounts, mut hour_regions, mut hour_categories) =
        (Vec::new(), Vec::new(), Vec::new());
    let (mut hour_starts, mut hour_events) = (Vec::new(), Vec::new());
    for ((account, region, category, hour), events) in hours {
        hour_accounts.push(account);
        hour_regions.push(region);
        hour_categories.push(category);
        hour_starts.push(hour);
        hour_events.push(events);
    }
    // One statement, one round trip: a file of 100 events costs three inserts' planning and
    // execution but one statement's overhead.
    sqlx::query(
        "WITH minute_rows AS (
             INSERT INTO event_minutes (series_id, minute, events)
             SELECT * FROM UNNEST($1::integer[], $2::timestamptz[], $3::bigint[])
         ),
         hour_rows AS (
             INSERT INTO event_hour_deltas (account_id, aws_region, event_category, hour, events)
             SELECT * FROM UNNEST($4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::bigint[])
         )
         INSERT INTO rollup_changes (series_id, first_minute, last_minute)
         SELECT * FROM UNNEST($9::integer[], $10::timestamptz[], $11::timestamptz[])",
    )
    .bind(&series)
    .bind(&minutes_of_series)
    .bind(&minute_events)
    .bind(&hour_accounts)
    .bind(&hour_regions)
    .bind(&hour_categories)
    .bind(&hour_starts)
    .bind(&hour_events)
    .bind(&changed)
    .bind(&firsts)
    .bind(&lasts)
    .execute(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

/// Pushes the CTEs that take deleted events (a CTE named `gone` with [`GONE_COLUMNS`], all of
/// `[start, end)`) off the rollups into a statement being built (after a comma), in one
/// snapshot: the minute rows of each key with deleted events are replaced by one row of what
/// is left (none when nothing is; a row a concurrent file adds meanwhile counts new events and
/// stays); the hour deltas of `[start, end)` are folded with the subtraction, so every deleted
/// event is counted either in the folded hours or in the deltas folded with it, and no delta is
/// left behind its events. Hours and days left at 0 are removed by [`remove_empty_rollups`].
pub fn push_subtract_gone(
    sql: &mut QueryBuilder<'_, Postgres>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) {
    sql.push(format!(
        "minutes_gone AS (
    SELECT s.series_id, date_trunc('minute', g.event_time, 'UTC') AS minute, count(*) AS events
    FROM gone AS g JOIN rollup_series AS s ON {}
    GROUP BY 1, 2
),
",
        series_of_event("g")
    ));
    sql.push(
        "minutes_taken AS (
    DELETE FROM event_minutes AS m USING minutes_gone AS g
    WHERE m.series_id = g.series_id AND m.minute = g.minute
    RETURNING m.series_id, m.minute, m.events
),
minutes_left AS (
    INSERT INTO event_minutes (series_id, minute, events)
    SELECT series_id, minute, sum(events)::bigint FROM (
        SELECT series_id, minute, events FROM minutes_taken
        UNION ALL
        SELECT series_id, minute, -events FROM minutes_gone
    ) AS d
    GROUP BY 1, 2
    HAVING sum(events) <> 0
),
hour_deltas AS (
    DELETE FROM event_hour_deltas WHERE hour >= ",
    )
    .push_bind(start)
    .push(" AND hour < ")
    .push_bind(end)
    .push(
        " RETURNING account_id, aws_region, event_category, hour, events
),
hours_net AS (
    SELECT account_id, aws_region, event_category, hour, sum(events)::bigint AS events FROM (
        SELECT account_id, aws_region, event_category, hour, events FROM hour_deltas
        UNION ALL
        SELECT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
               date_trunc('hour', event_time, 'UTC'), -count(*)
        FROM gone
        GROUP BY 1, 2, 3, 4
    ) AS d
    GROUP BY 1, 2, 3, 4
),
",
    );
    sql.push(add_to_hours_and_days("hours_net"));
}

/// The CTEs `hours_added` and `days_added`, which add the rows of the CTE `source` (account,
/// region, category, hour, events) to `event_hours` and `event_days`, in key order.
fn add_to_hours_and_days(source: &str) -> String {
    format!(
        "hours_added AS (
    INSERT INTO event_hours AS h (account_id, aws_region, event_category, hour, events)
    SELECT account_id, aws_region, event_category, hour, sum(events)::bigint
    FROM {source} GROUP BY 1, 2, 3, 4 ORDER BY 4, 1, 2, 3
    ON CONFLICT (hour, account_id, aws_region, event_category)
    DO UPDATE SET events = h.events + EXCLUDED.events
),
days_added AS (
    INSERT INTO event_days AS d (account_id, aws_region, event_category, day, events)
    SELECT account_id, aws_region, event_category, date_trunc('day', hour, 'UTC'), sum(events)::bigint
    FROM {source} GROUP BY 1, 2, 3, 4 ORDER BY 4, 1, 2, 3
    ON CONFLICT (day, account_id, aws_region, event_category)
    DO UPDATE SET events = d.events + EXCLUDED.events
)"
    )
}

/// The join condition of an event (table alias `event`) to its series (alias `s`), by the
/// SQL functions of `migrations/…13_rollup_minutes.sql`.
fn series_of_event(event: &str) -> String {
    format!(
        "s.account_id = coalesce({event}.account_id, '') AND s.aws_region = coalesce({event}.aws_region, '')
         AND s.event_category = {event}.event_category
         AND s.event_source = rollup_api({event}.event_category, {event}.read_only, {event}.error_code, {event}.event_source)
         AND s.event_name = rollup_api({event}.event_category, {event}.read_only, {event}.error_code, {event}.event_name)
         AND s.access = rollup_access({event}.read_only) AND s.error_code = coalesce({event}.error_code, '')"
    )
}

/// The columns of `events` [`push_subtract_gone`] needs `gone` to return.
pub const GONE_COLUMNS: &str = "event_time, account_id, aws_region, event_category, event_source, event_name, read_only, error_code";

/// [`GONE_COLUMNS`] of the table aliased `alias`, for a `RETURNING` list.
pub fn gone_columns(alias: &str) -> String {
    GONE_COLUMNS
        .split(", ")
        .map(|column| format!("{alias}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

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
    sqlx::query("DELETE FROM event_days WHERE day >= $1 AND day < $2 AND events = 0")
        .bind(start)
        .bind(end)
        .execute(&mut *connection)
        .await
        .map_err(convert_sqlx_error)?;
    Ok(())
}

/// Makes the rollups of `[start, end)` (whole UTC days) the counts of the events stored there now:
/// after a day partition is dropped, whatever came back to the day since it was detached.
pub async fn recount_rollups(
    connection: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), StoreError> {
    for statement in [
        "DELETE FROM event_hour_deltas WHERE hour >= $1 AND hour < $2",
        "DELETE FROM event_minutes WHERE minute >= $1 AND minute < $2",
        "DELETE FROM event_hours WHERE hour >= $1 AND hour < $2",
        "DELETE FROM event_days WHERE day >= $1 AND day < $2",
        "INSERT INTO rollup_series (account_id, aws_region, event_category, event_source, event_name, access, error_code)
         SELECT DISTINCT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
                rollup_api(event_category, read_only, error_code, event_source),
                rollup_api(event_category, read_only, error_code, event_name),
                rollup_access(read_only), coalesce(error_code, '')
         FROM events WHERE event_time >= $1 AND event_time < $2
         ON CONFLICT DO NOTHING",
        &format!(
            "INSERT INTO event_minutes (series_id, minute, events)
             SELECT s.series_id, date_trunc('minute', e.event_time, 'UTC'), count(*)
             FROM events AS e JOIN rollup_series AS s ON {}
             WHERE e.event_time >= $1 AND e.event_time < $2
             GROUP BY 1, 2",
            series_of_event("e")
        ),
        "INSERT INTO event_hours (account_id, aws_region, event_category, hour, events)
         SELECT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
                date_trunc('hour', event_time, 'UTC'), count(*)
         FROM events WHERE event_time >= $1 AND event_time < $2
         GROUP BY 1, 2, 3, 4",
        "INSERT INTO event_days (account_id, aws_region, event_category, day, events)
         SELECT account_id, aws_region, event_category, date_trunc('day', hour, 'UTC'), sum(events)
         FROM event_hours WHERE hour >= $1 AND hour < $2
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

/// Delta rows one fold statement moves at most (a fold after a long stop takes several).
const FOLD_BATCH: i64 = 50_000;

/// The statement that moves up to `$1` hour deltas into `event_hours` and `event_days` (in key
/// order, so two replicas folding at once wait for each other rather than deadlock), returning
/// how many.
fn fold_hours() -> String {
    format!(
        "
WITH moved AS (
    DELETE FROM event_hour_deltas
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM event_hour_deltas LIMIT $1))
    RETURNING account_id, aws_region, event_category, hour, events
),
{}
SELECT count(*) FROM moved",
        add_to_hours_and_days("moved")
    )
}

impl PgStore {
    /// Moves every hour delta committed so far into `event_hours` and `event_days`, each batch
    /// in one statement (what it deletes from the deltas it adds to the rows, atomically; a
    /// delta another replica is folding is skipped, not counted twice). Returns the delta rows
    /// folded.
    pub async fn fold_rollups(&self) -> Result<u64, StoreError> {
        let mut folded = 0u64;
        let statement = fold_hours();
        loop {
            let moved: i64 = sqlx::query_scalar(&statement)
                .bind(FOLD_BATCH)
                .fetch_one(self.pool())
                .await
                .map_err(convert_sqlx_error)?;
            folded += u64::try_from(moved).unwrap_or(0);
            if moved < FOLD_BATCH {
                break;
            }
        }
        Ok(folded)
    }
}

#[cfg(test)]
mod tests {
    use orgtrail_domain::parse_record;

    use super::*;

    fn key_of(fields: &str) -> SeriesKey {
        let json = format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-10-01T12:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","eventID":"e1","recipientAccountId":"111122223333"{fields}}}"#
        );
        match parse_record(json, None) {
            Ok(event) => SeriesKey::of(&event),
            Err(error) => panic!("the test record does not parse: {error}"),
        }
    }

    #[test]
    fn only_write_management_calls_and_calls_with_an_error_are_counted_per_api() {
        let write = key_of(r#","readOnly":false,"eventCategory":"Management""#);
        assert_eq!(
            (write.event_source.as_str(), write.event_name.as_str()),
            ("iam.amazonaws.com", "CreateUser")
        );
        let read = key_of(r#","readOnly":true,"eventCategory":"Management""#);
        assert_eq!((read.event_source.as_str(), read.access), ("", 'r'));
        let unsaid = key_of(r#","eventCategory":"Management""#);
        assert_eq!((unsaid.event_name.as_str(), unsaid.access), ("", '-'));
        let read_error =
            key_of(r#","readOnly":true,"eventCategory":"Management","errorCode":"AccessDenied""#);
        assert_eq!(
            (
                read_error.event_name.as_str(),
                read_error.error_code.as_str()
            ),
            ("CreateUser", "AccessDenied")
        );
        let data_write = key_of(r#","readOnly":false,"eventCategory":"Data""#);
        assert_eq!(
            (data_write.event_name.as_str(), data_write.access),
            ("", 'w')
        );
        let data_error =
            key_of(r#","readOnly":false,"eventCategory":"Data","errorCode":"NoSuchKey""#);
        assert_eq!(data_error.event_source, "iam.amazonaws.com");
    }
}
