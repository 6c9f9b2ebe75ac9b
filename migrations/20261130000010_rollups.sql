-- Per-minute and per-hour event counts, kept in the transaction of every file that stores new
-- events (a duplicate is not counted) and of every retention deletion: the event summary and
-- Insights read them instead of the events table.

-- A series: the events of one account, region, category and API with one access (r: read
-- only, w: write, -: the record does not say) and one error code ('' for none). Immutable;
-- the aggregator caches the ids.
CREATE TABLE rollup_series (
    series_id      integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     text    NOT NULL,
    aws_region     text    NOT NULL,
    event_category text    NOT NULL,
    event_source   text    NOT NULL,
    event_name     text    NOT NULL,
    access         "char"  NOT NULL CHECK (access IN ('r', 'w', '-')),
    error_code     text    NOT NULL,
    UNIQUE (account_id, aws_region, event_category, event_source, event_name, access, error_code)
);
CREATE INDEX rollup_series_api ON rollup_series (account_id, aws_region, event_source, event_name);

-- Events per series per minute of event time.
CREATE TABLE event_minutes (
    series_id integer     NOT NULL REFERENCES rollup_series,
    minute    timestamptz NOT NULL,
    events    bigint      NOT NULL CHECK (events >= 0),
    PRIMARY KEY (series_id, minute)
);
CREATE INDEX event_minutes_minute ON event_minutes (minute);

-- Events per account, region and category per hour of event time: the summary's full hours.
CREATE TABLE event_hours (
    account_id     text        NOT NULL,
    aws_region     text        NOT NULL,
    event_category text        NOT NULL,
    hour           timestamptz NOT NULL,
    events         bigint      NOT NULL CHECK (events >= 0),
    PRIMARY KEY (hour, account_id, aws_region, event_category)
);

-- The minutes each file's transaction added to, per series: what Insights evaluated before a
-- late file arrived is evaluated again. `xid` orders them against an evaluation's snapshot.
CREATE TABLE rollup_changes (
    xid          bigint      NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    series_id    integer     NOT NULL,
    first_minute timestamptz NOT NULL,
    last_minute  timestamptz NOT NULL
);
CREATE INDEX rollup_changes_xid ON rollup_changes (xid);

-- The events stored before this migration.
INSERT INTO rollup_series (account_id, aws_region, event_category, event_source, event_name, access, error_code)
SELECT DISTINCT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
       coalesce(event_source, ''), coalesce(event_name, ''),
       CASE read_only WHEN true THEN 'r' WHEN false THEN 'w' ELSE '-' END,
       coalesce(error_code, '')
FROM events;

INSERT INTO event_minutes (series_id, minute, events)
SELECT s.series_id, date_trunc('minute', e.event_time, 'UTC'), count(*)
FROM events AS e
JOIN rollup_series AS s
  ON s.account_id = coalesce(e.account_id, '') AND s.aws_region = coalesce(e.aws_region, '')
 AND s.event_category = e.event_category AND s.event_source = coalesce(e.event_source, '')
 AND s.event_name = coalesce(e.event_name, '')
 AND s.access = CASE e.read_only WHEN true THEN 'r' WHEN false THEN 'w' ELSE '-' END
 AND s.error_code = coalesce(e.error_code, '')
GROUP BY 1, 2;

INSERT INTO event_hours (account_id, aws_region, event_category, hour, events)
SELECT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
       date_trunc('hour', event_time, 'UTC'), count(*)
FROM events
GROUP BY 1, 2, 3, 4;
