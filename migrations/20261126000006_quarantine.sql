-- Rejected input kept for inspection: every record the aggregator refused (its bytes, sealed
-- like the events' records, up to a cap), every record the sender refused and every file fault
-- (their reasons), with where and when they came from. Written in the file's own transaction.

CREATE TABLE quarantine (
    quarantine_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    log_file_id   bigint      NOT NULL,
    source        text        NOT NULL,
    bucket        text        NOT NULL,
    object_key    text        NOT NULL,
    etag          text        NOT NULL,
    -- The record's position in the file's Records array; NULL for a fault of the file.
    record_index  integer,
    reason        text        NOT NULL,
    -- The size of what was refused, and what of it is kept (the first bytes, at most a cap;
    -- NULL when the sender did not send it).
    content_bytes integer     NOT NULL,
    content       bytea,
    -- What the sealed content is bound to, and its data key (NULL: kept in the clear).
    seal_id       uuid        NOT NULL,
    key_id        integer
);

CREATE INDEX quarantine_received_at ON quarantine (received_at);
