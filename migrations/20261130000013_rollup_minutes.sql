-- The per-minute rollups, cheaper to keep: (1) per-API series only where something reads them
-- per API, and (2) minute counts written once, by the file, with no fold.
--
-- (1) Per-API rollup series only where something reads them per API: write management calls
-- (Insights' call rate) and calls with an error (Insights' error rate, kept for every category).
-- Every other call (read-only calls, calls whose record has no `readOnly`, data and network
-- activity events without an error) is counted per account, region, category, access and error
-- code, with an empty event source and name: the summary reads nothing finer. In CloudTrail-like
-- files this is most calls: it cuts the minute rows a file writes, and the fold's work, by about
-- 70 % (bench data: 451,865 series-minutes for 1M events, 136,835 after).
--
-- These functions are the one definition in SQL of the series an event is counted in; the
-- aggregator's `SeriesKey::of` is the same rule in Rust (checked against them by every rollup
-- test: `assert_rollups_match_the_events` counts the events through these functions).

-- `rollup_series.access` of a record's `readOnly`.
CREATE FUNCTION rollup_access(read_only boolean) RETURNS "char"
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE read_only WHEN true THEN 'r' WHEN false THEN 'w' ELSE '-' END;

-- Whether a series of this category, access and error code ('' for none) is kept per API.
CREATE FUNCTION rollup_per_api(event_category text, access "char", error_code text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN error_code <> '' OR (event_category = 'Management' AND access = 'w');

-- The event source or name (`api`) a record's series has: its own where the series is per API,
-- else ''.
CREATE FUNCTION rollup_api(event_category text, read_only boolean, error_code text, api text)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN rollup_per_api(event_category, rollup_access(read_only), coalesce(error_code, ''))
                THEN coalesce(api, '') ELSE '' END;

-- The counts stored before: each per-API series no longer kept moves into its shared series.
INSERT INTO rollup_series (account_id, aws_region, event_category, event_source, event_name, access, error_code)
SELECT DISTINCT account_id, aws_region, event_category, '', '', access, error_code
FROM rollup_series
WHERE NOT rollup_per_api(event_category, access, error_code)
ON CONFLICT DO NOTHING;

CREATE TEMPORARY TABLE series_moved ON COMMIT DROP AS
SELECT old.series_id AS old_id, shared.series_id AS new_id
FROM rollup_series AS old
JOIN rollup_series AS shared USING (account_id, aws_region, event_category, access, error_code)
WHERE NOT rollup_per_api(old.event_category, old.access, old.error_code)
  AND (old.event_source <> '' OR old.event_name <> '')
  AND shared.event_source = '' AND shared.event_name = '';

INSERT INTO event_minutes AS m (series_id, minute, events)
SELECT moved.new_id, e.minute, sum(e.events)::bigint
FROM event_minutes AS e JOIN series_moved AS moved ON e.series_id = moved.old_id
GROUP BY 1, 2
ON CONFLICT (series_id, minute) DO UPDATE SET events = m.events + EXCLUDED.events;

DELETE FROM event_minutes AS e USING series_moved AS moved WHERE e.series_id = moved.old_id;

UPDATE event_minute_deltas AS d SET series_id = moved.new_id
FROM series_moved AS moved WHERE d.series_id = moved.old_id;

-- Insights read the changes of per-API series only.
DELETE FROM rollup_changes AS c USING rollup_series AS s
WHERE c.series_id = s.series_id AND NOT rollup_per_api(s.event_category, s.access, s.error_code);

-- The former per-API series stay, without counts: ids are never reused. A replica of the
-- previous version still running during the upgrade cannot commit a file with new events from
-- here on (its minute deltas have no table): the file fails whole and its sender sends it again,
-- to an upgraded replica (docs/operations.md §2).

-- (2) A file inserts its minute counts into event_minutes itself, with no unique key: a
-- series-minute is almost always in one file only (CloudTrail writes a file per account and
-- region every 5 minutes), so the deltas and their fold (moving every row once more: about
-- 7 s of PostgreSQL per 1M events, the largest part of the rollups' cost) bought nothing for
-- the minutes. Readers sum the rows of a key, as they summed folded rows and deltas. A
-- retention deletion replaces the rows of each key it takes events from with one row of what
-- is left (`store::rollups::push_subtract_gone`). No foreign key: its check cost a lookup per
-- row, and series are never deleted. The hours keep their deltas and fold (concurrent files of
-- one account and hour do add to the same hour).
DROP VIEW minute_counts;
ALTER TABLE event_minutes DROP CONSTRAINT event_minutes_pkey;
ALTER TABLE event_minutes DROP CONSTRAINT event_minutes_series_id_fkey;
INSERT INTO event_minutes (series_id, minute, events)
SELECT series_id, minute, events FROM event_minute_deltas;
DROP TABLE event_minute_deltas;
CREATE INDEX event_minutes_series ON event_minutes (series_id, minute);
CREATE VIEW minute_counts AS SELECT series_id, minute, events FROM event_minutes;
