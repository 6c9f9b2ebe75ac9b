-- Alarms on CloudWatch-style metric filters, evaluated by event time, and the notifications
-- their state changes send through a transactional outbox.

-- Bumped in the transaction of every alarm change: a file's transaction reads it when it
-- opens, and an ingest replica reloads its compiled filters when it moved, so an event stored
-- after an alarm change commits is counted under the new definitions.
CREATE TABLE detection_generation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint  NOT NULL
);
INSERT INTO detection_generation (generation) VALUES (1);

CREATE TABLE alarms (
    alarm_id          bigserial   PRIMARY KEY,
    name              text        NOT NULL,
    -- The CIS AWS Foundations Benchmark control of a built-in alarm ("4.3"); such an alarm is
    -- made once, at the first start, and may be retuned or disabled but not deleted.
    cis_id            text,
    cis_title         text,
    created_at        timestamptz NOT NULL,
    created_by        text        NOT NULL,
    deleted_at        timestamptz,
    -- Evaluation by event time. Periods ending at or before evaluated_through are evaluated;
    -- the state is the one the newest live transition entered.
    state             text        NOT NULL DEFAULT 'INSUFFICIENT_DATA'
                                  CHECK (state IN ('OK', 'ALARM', 'INSUFFICIENT_DATA')),
    state_since       timestamptz,
    state_reason      text        NOT NULL DEFAULT '',
    evaluated_through timestamptz,
    -- Match rows written by transactions with ids from here on may not have been seen by
    -- the evaluator yet (the xmin of the snapshot its last evaluation started from).
    evaluated_xmin    bigint,
    current_version   integer     NOT NULL
);
CREATE UNIQUE INDEX alarms_live_name ON alarms (name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX alarms_cis_id ON alarms (cis_id);

-- Every version of an alarm's definition (JSON: description, filter pattern, scope, rule,
-- notification settings, enabled); an alarm's definition is its newest version.
CREATE TABLE alarm_versions (
    alarm_id   bigint      NOT NULL REFERENCES alarms,
    version    integer     NOT NULL,
    definition jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text        NOT NULL,
    PRIMARY KEY (alarm_id, version)
);

-- Events matching an alarm's filter, per minute of event time (CloudWatch's own granularity:
-- any period is a sum of minutes): one row per alarm, minute and file transaction (inserts
-- never wait for one another), written in the transaction that stores the events, so a
-- duplicate delivery counts nothing and a late file adds to its minutes.
CREATE TABLE alarm_matches (
    match_id     bigserial   PRIMARY KEY,
    alarm_id     bigint      NOT NULL,
    minute_start timestamptz NOT NULL,
    matches      bigint      NOT NULL CHECK (matches > 0),
    -- The first matching events of the minute in this file.
    event_ids    uuid[]      NOT NULL,
    -- The writing transaction, as a number (xid8 fits a bigint).
    xid          bigint      NOT NULL DEFAULT pg_current_xact_id()::text::bigint
);
CREATE INDEX alarm_matches_minute ON alarm_matches (alarm_id, minute_start);
CREATE INDEX alarm_matches_xid ON alarm_matches (alarm_id, xid);

-- Every state change, with its reason and the datapoints and events behind it. A transition
-- whose periods late events changed is superseded, never deleted.
CREATE TABLE alarm_transitions (
    transition_id       bigserial   PRIMARY KEY,
    alarm_id            bigint      NOT NULL REFERENCES alarms,
    alarm_version       integer     NOT NULL,
    -- The end of the period evaluated (event time).
    period_end          timestamptz NOT NULL,
    old_state           text        NOT NULL,
    new_state           text        NOT NULL,
    reason              text        NOT NULL,
    datapoints          jsonb       NOT NULL,
    event_ids           uuid[]      NOT NULL,
    evaluated_at        timestamptz NOT NULL DEFAULT now(),
    superseded_at       timestamptz,
    not_notified_reason text
);
CREATE INDEX alarm_transitions_alarm ON alarm_transitions (alarm_id, period_end);

-- Where notifications go. The URL (it may hold a token) and the signing secret are sealed
-- like records (key_id; NULL only when records are stored in the clear on purpose).
CREATE TABLE destinations (
    destination_id bigserial   PRIMARY KEY,
    name           text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('webhook', 'slack', 'sns')),
    -- Where it goes, without secrets (scheme and host, or the topic ARN).
    target_display text        NOT NULL,
    -- {"target": URL or ARN, "signingSecret": …}, sealed under data key key_id with seal_id
    -- as associated data.
    seal_id        uuid        NOT NULL,
    key_id         integer,
    sealed_config  bytea       NOT NULL,
    every_alarm    boolean     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text        NOT NULL,
    deleted_at     timestamptz
);
CREATE UNIQUE INDEX destinations_live_name ON destinations (name) WHERE deleted_at IS NULL;

-- The outbox: written in the transaction that causes a notification, delivered by one replica
-- at a time (FOR UPDATE SKIP LOCKED), retried with backoff, marked failed after the configured
-- attempts — never dropped.
CREATE TABLE notifications (
    notification_id bigserial   PRIMARY KEY,
    destination_id  bigint      NOT NULL REFERENCES destinations,
    kind            text        NOT NULL,
    subject         text        NOT NULL,
    -- One notification per cause and destination, however often the cause is evaluated.
    dedupe_key      text        NOT NULL UNIQUE,
    body            jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_failed ON notifications (notification_id) WHERE state = 'failed';
