-- The rollups take a file's counts as delta rows, insert only: concurrent files of one account
-- and hour no longer queue on the row locks of the same event_hours and event_minutes rows
-- until each commits. A fold in the background (`store::fold_rollups`, about once a second on
-- every replica) moves the deltas into event_minutes and event_hours; readers add the deltas
-- not folded yet (the views minute_counts and hour_counts), so what they read is exact at every
-- moment. Deltas are positive: a retention deletion folds the deltas of its day in the
-- statement that deletes the events and subtracts them, so a delta never outlives its events.

CREATE TABLE event_minute_deltas (
    series_id integer     NOT NULL,
    minute    timestamptz NOT NULL,
    events    bigint      NOT NULL CHECK (events > 0)
);
CREATE INDEX event_minute_deltas_minute ON event_minute_deltas (minute);

CREATE TABLE event_hour_deltas (
    account_id     text        NOT NULL,
    aws_region     text        NOT NULL,
    event_category text        NOT NULL,
    hour           timestamptz NOT NULL,
    events         bigint      NOT NULL CHECK (events > 0)
);
CREATE INDEX event_hour_deltas_hour ON event_hour_deltas (hour);

-- A retention deletion adds its negative counts to these rows with ON CONFLICT DO UPDATE, whose
-- proposed row is checked before the conflict is found: the sums stay at or above 0 (the events
-- behind a row are all counted in it or in the deltas folded with the deletion), but the check
-- of the proposed row would refuse the subtraction.
ALTER TABLE event_minutes DROP CONSTRAINT event_minutes_events_check;
ALTER TABLE event_hours DROP CONSTRAINT event_hours_events_check;

-- What readers read: the folded rows and the deltas not folded yet (a key may have several rows;
-- sum them). A row with events > 0 is a bucket with events.
CREATE VIEW minute_counts AS
    SELECT series_id, minute, events FROM event_minutes
    UNION ALL
    SELECT series_id, minute, events FROM event_minute_deltas;

-- Events per account, region and category per UTC day: the summary's whole days. Kept by the
-- fold from the hour deltas it folds (and by retention like the hours), never by a file.
CREATE TABLE event_days (
    account_id     text        NOT NULL,
    aws_region     text        NOT NULL,
    event_category text        NOT NULL,
    day            timestamptz NOT NULL,
    events         bigint      NOT NULL,
    PRIMARY KEY (day, account_id, aws_region, event_category)
);
INSERT INTO event_days (account_id, aws_region, event_category, day, events)
SELECT account_id, aws_region, event_category, date_trunc('day', hour, 'UTC'), sum(events)
FROM event_hours
GROUP BY 1, 2, 3, 4;

-- The summary narrows a group's day to its first and last hour.
CREATE INDEX event_hours_group ON event_hours (account_id, aws_region, event_category, hour);

CREATE VIEW day_counts AS
    SELECT account_id, aws_region, event_category, day, events FROM event_days
    UNION ALL
    SELECT account_id, aws_region, event_category, date_trunc('day', hour, 'UTC'), events
    FROM event_hour_deltas;

CREATE VIEW hour_counts AS
    SELECT account_id, aws_region, event_category, hour, events FROM event_hours
    UNION ALL
    SELECT account_id, aws_region, event_category, hour, events FROM event_hour_deltas;
