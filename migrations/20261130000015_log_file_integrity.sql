-- Digest validation by the collectors: each log file's integrity in the ledger, how far each
-- account and region of a source has been validated, and integrity problems as findings.

-- unchecked: no digest validation yet (or the trail has none); not_yet_covered: its digest
-- is not delivered yet (normal for about an hour); verified: its SHA-256 is the one its
-- digest lists and the digest's signature and chain verify; modified: the SHA-256 differs
-- (its events were moved to the quarantine); unlisted: no digest of its hours lists it;
-- unverifiable: its hour's digest is missing or unreadable.
ALTER TABLE log_files ADD COLUMN integrity text NOT NULL DEFAULT 'unchecked'
    CHECK (integrity IN ('unchecked', 'not_yet_covered', 'verified', 'modified', 'unlisted',
                         'unverifiable'));
-- The digest that lists the file, and when its status was last set.
ALTER TABLE log_files ADD COLUMN integrity_digest text;
ALTER TABLE log_files ADD COLUMN integrity_checked_at timestamptz;

-- Per source, account and region: the newest digest read, where the next validation starts.
CREATE TABLE digest_progress (
    source          text        NOT NULL,
    bucket          text        COLLATE "C" NOT NULL,
    account_id      text        NOT NULL,
    aws_region      text        NOT NULL,
    digest_key      text        COLLATE "C" NOT NULL,
    digest_end_time timestamptz NOT NULL,
    digests_read    bigint      NOT NULL DEFAULT 0,
    digests_verified bigint     NOT NULL DEFAULT 0,
    problems        bigint      NOT NULL DEFAULT 0,
    checked_at      timestamptz NOT NULL,
    collector       text        NOT NULL,
    PRIMARY KEY (source, account_id, aws_region)
);

ALTER TABLE findings DROP CONSTRAINT findings_kind_check;
ALTER TABLE findings ADD CONSTRAINT findings_kind_check
    CHECK (kind IN ('sigma', 'alarm', 'insight', 'integrity'));
