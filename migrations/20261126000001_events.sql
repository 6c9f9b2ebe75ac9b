-- The consolidated trail: the file ledger, the eventID dedupe index and the events,
-- range-partitioned by event time into one partition per UTC day (created by the aggregator,
-- ahead of time and on demand for backfilled days).

-- Every log file taken, committed in the same transaction as its events, so a file is taken
-- exactly once however often it is sent.
CREATE TABLE log_files (
    log_file_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text        NOT NULL,
    bucket        text        NOT NULL,
    object_key    text        NOT NULL,
    etag          text        NOT NULL,
    -- From the key, when it follows CloudTrail's layout.
    account_id    text,
    aws_region    text,
    records_read  integer     NOT NULL,
    accepted      integer     NOT NULL,
    duplicates    integer     NOT NULL,
    rejected      integer     NOT NULL,
    -- The first rejections: [{"index": n, "reason": "…"}].
    rejections    jsonb       NOT NULL DEFAULT '[]',
    -- A file-level error the sender met (the records before it are stored).
    fault         text,
    committed_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT log_files_identity UNIQUE (bucket, object_key, etag)
);

-- The dedupe index: one row per stored eventID, whatever its day. Unique constraints on the
-- partitioned events table must include event_time, so global uniqueness on eventID lives here;
-- it also turns a lookup by EventId into one probe plus one partition.
CREATE TABLE event_ids (
    event_id   uuid        PRIMARY KEY,
    event_time timestamptz NOT NULL
);

CREATE INDEX event_ids_event_time ON event_ids (event_time);

CREATE TABLE events (
    event_time           timestamptz NOT NULL,
    -- eventID as a UUID (a name-based UUID for eventIDs that are not GUIDs).
    event_id             uuid        NOT NULL,
    event_version        text,
    event_source         text,
    event_name           text,
    aws_region           text,
    -- recipientAccountId or its fallback, and which one it is.
    account_id           text,
    account_id_source    text        NOT NULL,
    event_type           text,
    event_category       text        NOT NULL,
    read_only            boolean,
    management_event     boolean,
    user_type            text,
    user_arn             text,
    user_principal_id    text,
    user_account_id      text,
    access_key_id        text,
    invoked_by           text,
    username             text,
    source_ip_address    text,
    user_agent           text,
    error_code           text,
    error_message        text,
    -- resources[], as parallel arrays (an element is NULL where the entry lacks the field).
    resource_types       text[]      NOT NULL,
    resource_arns        text[]      NOT NULL,
    resource_account_ids text[]      NOT NULL,
    -- What the ResourceName lookup matches: each ARN and its last segment.
    resource_names       text[]      NOT NULL,
    shared_event_id      text,
    request_id           text,
    -- The file that delivered the event first.
    log_file_id          bigint      NOT NULL,
    -- The original record text, byte for byte.
    record               bytea       NOT NULL,
    PRIMARY KEY (event_time, event_id)
) PARTITION BY RANGE (event_time);

-- One index per lookup attribute and filter, each ending in event_time so that a lookup reads
-- its newest matches first and stops at the page size.
CREATE INDEX events_event_name ON events (event_name, event_time);
CREATE INDEX events_event_source ON events (event_source, event_time);
CREATE INDEX events_username ON events (username, event_time);
CREATE INDEX events_access_key_id ON events (access_key_id, event_time);
CREATE INDEX events_account_id ON events (account_id, event_time);
CREATE INDEX events_aws_region ON events (aws_region, event_time);
CREATE INDEX events_event_category ON events (event_category, event_time);
CREATE INDEX events_resource_types ON events USING gin (resource_types);
CREATE INDEX events_resource_names ON events USING gin (resource_names);
