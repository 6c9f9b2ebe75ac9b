-- Sigma rules (SigmaHQ's AWS CloudTrail rules built in, the team's own), the findings every
-- newly stored event raises, suppressions of known-good activity, and destinations' levels.

-- A rule by its Sigma id; its content is its newest version. Changing the rules bumps the
-- detection generation, so ingest compiles them again for the next file.
CREATE TABLE sigma_rules (
    rule_id         text        PRIMARY KEY,
    -- builtin: SigmaHQ's, made at first start (disable it, not delete); operator: added
    -- through the API; directory: loaded from sigma.rules_directory at start.
    origin          text        NOT NULL CHECK (origin IN ('builtin', 'operator', 'directory')),
    current_version integer     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text        NOT NULL,
    deleted_at      timestamptz
);

CREATE TABLE sigma_rule_versions (
    rule_id    text        NOT NULL REFERENCES sigma_rules,
    version    integer     NOT NULL,
    -- The rule as written, byte for byte (its licence travels with it: DRL 1.1 requires the
    -- author be kept).
    yaml       text        NOT NULL,
    title      text        NOT NULL,
    level      text        NOT NULL,
    author     text,
    enabled    boolean     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text        NOT NULL,
    PRIMARY KEY (rule_id, version)
);

-- Known-good activity a rule should not raise: matches it covers are kept as suppressed
-- findings (counted, not lost) and notify no one.
CREATE TABLE suppressions (
    suppression_id bigserial   PRIMARY KEY,
    rule_id        text        NOT NULL,
    accounts       text[]      NOT NULL,
    principals     text[]      NOT NULL,
    source_ips     text[]      NOT NULL,
    reason         text        NOT NULL,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text        NOT NULL,
    deleted_at     timestamptz,
    deleted_by     text
);

-- One queue: Sigma matches (written in the transaction that stores the event) and alarms
-- entering ALARM (written with the transition). A finding is raised once per cause.
CREATE TABLE findings (
    finding_id       bigserial   PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('sigma', 'alarm')),
    rule_id          text        NOT NULL,
    rule_version     integer     NOT NULL,
    title            text        NOT NULL,
    level            text        NOT NULL
                                 CHECK (level IN ('informational', 'low', 'medium', 'high', 'critical')),
    -- 0 informational … 4 critical: "at or above a level" is a comparison.
    level_rank       smallint    NOT NULL,
    author           text,
    tags             text[]      NOT NULL,
    account_id       text,
    aws_region       text,
    event_time       timestamptz NOT NULL,
    event_ids        uuid[]      NOT NULL,
    summary          text        NOT NULL,
    -- sigma:<rule id>:<event id>, alarm:<alarm id>:<period end>.
    dedupe_key       text        NOT NULL UNIQUE,
    state            text        NOT NULL DEFAULT 'open'
                                 CHECK (state IN ('open', 'acknowledged', 'resolved', 'false_positive', 'suppressed')),
    suppression_id   bigint      REFERENCES suppressions,
    state_changed_at timestamptz,
    state_changed_by text,
    state_reason     text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX findings_open ON findings (finding_id) WHERE state = 'open';
CREATE INDEX findings_rule ON findings (rule_id, finding_id);
CREATE INDEX findings_account ON findings (account_id, finding_id);
CREATE INDEX findings_created ON findings (created_at);

-- A destination takes the findings at or above its level (NULL: none).
ALTER TABLE destinations ADD COLUMN finding_level_rank smallint;
