-- CloudTrail Lake's queries on the CloudTrail-compatible endpoint (docs/cloudtrail-api.md):
-- StartQuery runs a query in the background; its results are kept, sealed like records (the
-- query id as seal id), until expires_at, for GetQueryResults. A query belongs to the token
-- (access key) that started it.
CREATE TABLE lake_queries (
    query_id      uuid        PRIMARY KEY,
    token_id      uuid        NOT NULL,
    statement     text        NOT NULL,
    status        text        NOT NULL
        CHECK (status IN ('QUEUED', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELLED', 'TIMED_OUT')),
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    execution_ms  bigint,
    result_rows   bigint,
    key_id        integer,
    sealed_results bytea,
    expires_at    timestamptz NOT NULL
);

CREATE INDEX lake_queries_token ON lake_queries (token_id, created_at);
CREATE INDEX lake_queries_expires ON lake_queries (expires_at);
