-- orgtrail's own Insights: unusual rates of write management calls and of errors per account,
-- region and API, computed from the per-minute rollups by event time, written as CloudTrail
-- Insight events and raised as findings.

-- The evaluator's progress (one replica evaluates at a time): minutes before
-- evaluated_through are evaluated; rollup changes of transactions from evaluated_xmin on may
-- not have been seen by it yet.
CREATE TABLE insight_evaluation (
    singleton         boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    evaluated_through timestamptz,
    evaluated_xmin    bigint
);
INSERT INTO insight_evaluation DEFAULT VALUES;

-- Every episode found: an unusual run of minutes of one API's series. Its Start event is
-- written when it is found, its End event once it has ended. Keyed by the series and its
-- first minute, so live evaluation and a replay find the same row.
CREATE TABLE insight_episodes (
    episode_id         bigserial   PRIMARY KEY,
    account_id         text        NOT NULL,
    aws_region         text        NOT NULL,
    event_source       text        NOT NULL,
    event_name         text        NOT NULL,
    insight_type       text        NOT NULL CHECK (insight_type IN ('ApiCallRateInsight', 'ApiErrorRateInsight')),
    start_minute       timestamptz NOT NULL,
    -- Exclusive: the minute after the last unusual one (so far, while open).
    end_minute         timestamptz NOT NULL,
    closed             boolean     NOT NULL,
    -- The Insight's id (sharedEventID) and its events' ids.
    shared_event_id    uuid        NOT NULL UNIQUE,
    start_event_id     uuid        NOT NULL,
    end_event_id       uuid,
    -- The statistics and attributions as the events carry them (insightContext).
    statistics         jsonb       NOT NULL,
    -- The model's settings it was found with (the tuning in force).
    model              jsonb       NOT NULL,
    finding_id         bigint,
    -- Set when later events (a late delivery) showed the minutes were not unusual after all,
    -- or that the episode is part of another; its events stay, as CloudTrail's would.
    superseded_at      timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, aws_region, event_source, event_name, insight_type, start_minute)
);
CREATE INDEX insight_episodes_start ON insight_episodes (start_minute);
CREATE INDEX insight_episodes_open ON insight_episodes (episode_id) WHERE NOT closed AND superseded_at IS NULL;

-- Tuning per scope: the most specific setting wins (API, then event source, then account,
-- then the configuration's defaults). Changes are audited.
CREATE TABLE insight_settings (
    setting_id          bigserial   PRIMARY KEY,
    -- '' for any.
    account_id          text        NOT NULL,
    event_source        text        NOT NULL,
    event_name          text        NOT NULL,
    threshold_sigma     double precision,
    min_rate_per_minute double precision,
    disabled            boolean     NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text        NOT NULL,
    UNIQUE (account_id, event_source, event_name)
);

-- Insight findings join the one queue.
ALTER TABLE findings DROP CONSTRAINT findings_kind_check;
ALTER TABLE findings ADD CONSTRAINT findings_kind_check CHECK (kind IN ('sigma', 'alarm', 'insight'));
