-- Retention: versioned policies, legal holds, the bookkeeping of enforcement runs (so a run
-- that crashed is finished and accounted for by the next), and the append-only audit log.

-- A policy's identity; its content lives in versions.
CREATE TABLE retention_policies (
    policy_id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL,
    current_version integer     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

-- A name belongs to one live policy at a time.
CREATE UNIQUE INDEX retention_policies_live_name ON retention_policies (name) WHERE deleted_at IS NULL;

-- Every version ever written; an update adds one, nothing is changed in place.
CREATE TABLE retention_policy_versions (
    policy_id   bigint      NOT NULL REFERENCES retention_policies (policy_id),
    version     integer     NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL,
    -- RetentionScope as JSON.
    scope       jsonb       NOT NULL,
    retain_days integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL,
    PRIMARY KEY (policy_id, version)
);

CREATE TABLE legal_holds (
    hold_id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reason         text        NOT NULL,
    scope          jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text        NOT NULL,
    expires_at     timestamptz,
    released_at    timestamptz,
    released_by    text,
    release_reason text
);

-- Enforcement runs. A run that is 'running' without its runner (the advisory lock is free)
-- crashed: the next run records it as interrupted, with what it had deleted.
CREATE TABLE retention_runs (
    run_id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    status          text        NOT NULL,
    runner          text        NOT NULL,
    -- The policy versions and cutoffs the run used.
    plan            jsonb       NOT NULL
);

-- Events deleted per account and region, counted in the transaction of each deletion.
CREATE TABLE retention_run_deletions (
    run_id     bigint NOT NULL REFERENCES retention_runs (run_id),
    account_id text   NOT NULL,
    aws_region text   NOT NULL,
    events     bigint NOT NULL,
    PRIMARY KEY (run_id, account_id, aws_region)
);

-- Day partitions being dropped: written before the partition is detached, so a crash between
-- detaching and dropping is finished by the next run.
CREATE TABLE retention_partition_drops (
    partition  text        PRIMARY KEY,
    run_id     bigint      NOT NULL REFERENCES retention_runs (run_id),
    day        date        NOT NULL,
    state      text        NOT NULL,
    events     bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Who changed what, and what enforcement deleted. Rows are only ever added.
CREATE TABLE audit_log (
    audit_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    subject     text        NOT NULL,
    before      jsonb,
    after       jsonb,
    details     jsonb
);

CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
