//! The rollups checked against the events they count: after any ingest, duplicate delivery,
//! retention deletion or partition drop, what readers read (`minute_counts`, `hour_counts`,
//! `day_counts`: the folded rows and the deltas not folded yet, summed per key) must be exactly
//! the counts of the events stored, whether the deltas are folded or not.

use sqlx::PgPool;

/// Panics, saying where, unless the rollups are the counts of the stored events.
pub async fn assert_rollups_match_the_events(pool: &PgPool) {
    for (what, statement) in [
        (
            "minute_counts",
            "WITH counted AS (
                 SELECT coalesce(account_id, '') AS account_id, coalesce(aws_region, '') AS aws_region,
                        event_category,
                        rollup_api(event_category, read_only, error_code, event_source) AS event_source,
                        rollup_api(event_category, read_only, error_code, event_name) AS event_name,
                        rollup_access(read_only)::text AS access,
                        coalesce(error_code, '') AS error_code,
                        date_trunc('minute', event_time, 'UTC') AS minute, count(*) AS events
                 FROM events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
             ),
             rolled AS (
                 SELECT s.account_id, s.aws_region, s.event_category, s.event_source, s.event_name,
                        s.access::text AS access, s.error_code, m.minute, sum(m.events) AS events
                 FROM minute_counts AS m JOIN rollup_series AS s USING (series_id)
                 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
             )
             SELECT count(*), coalesce(string_agg(format('%s %s/%s/%s %s:%s %s %s: %s counted, %s rolled up',
                        minute, account_id, aws_region, event_category, event_source, event_name,
                        access, error_code, c.events, r.events), '; '), '')
             FROM counted AS c FULL JOIN rolled AS r
                  USING (account_id, aws_region, event_category, event_source, event_name, access, error_code, minute)
             WHERE c.events IS DISTINCT FROM r.events"
                .to_string(),
        ),
        ("hour_counts", per_group_statement("hour_counts", "hour")),
        ("day_counts", per_group_statement("day_counts", "day")),
    ] {
        let (wrong, rows): (i64, String) = sqlx::query_as(&statement)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|error| panic!("cannot compare {what} with the events: {error}"));
        assert_eq!(
            wrong,
            0,
            "{what} differs from the stored events in {wrong} rows: {}",
            &rows[..rows.len().min(2000)]
        );
    }
}

/// The statement that compares `view` (per account, region, category and `unit`, the column of
/// the same name) with a count of the events: the number of rows that differ and the first.
fn per_group_statement(view: &str, unit: &str) -> String {
    format!(
        "WITH counted AS (
             SELECT coalesce(account_id, '') AS account_id, coalesce(aws_region, '') AS aws_region,
                    event_category, date_trunc('{unit}', event_time, 'UTC') AS {unit}, count(*) AS events
             FROM events GROUP BY 1, 2, 3, 4
         )
         SELECT count(*), coalesce(string_agg(format('%s %s/%s/%s: %s counted, %s rolled up',
                    {unit}, account_id, aws_region, event_category, c.events, r.events), '; '), '')
         FROM counted AS c
         FULL JOIN (
             SELECT account_id, aws_region, event_category, {unit}, sum(events) AS events
             FROM {view} GROUP BY 1, 2, 3, 4
         ) AS r USING (account_id, aws_region, event_category, {unit})
         WHERE c.events IS DISTINCT FROM r.events"
    )
}
