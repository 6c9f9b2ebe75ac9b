-- Sources: leases that keep two collectors off the same source, and the status operators read.
-- Keys compare byte for byte, as S3 orders them, so a listing checkpoint (the newest key the
-- ledger holds under a prefix) is a range scan of the ledger's unique index whatever the
-- database's default collation.

ALTER TABLE log_files ALTER COLUMN bucket TYPE text COLLATE "C";
ALTER TABLE log_files ALTER COLUMN object_key TYPE text COLLATE "C";

-- Who reads a source now. A lease is taken when free or expired and renewed by its holder; a
-- collector that dies loses its leases when they expire.
CREATE TABLE source_leases (
    source      text        PRIMARY KEY,
    holder      text        NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Per source, account and region (empty account and region: the source as a whole, e.g. a
-- role that cannot be assumed): what was taken last, when it last went well, what went wrong.
CREATE TABLE source_status (
    source             text        NOT NULL,
    account_id         text        NOT NULL,
    aws_region         text        NOT NULL,
    collector          text        NOT NULL,
    last_object_key    text,
    -- When CloudTrail delivered the last file taken, from its key.
    last_delivery_time timestamptz,
    last_success_at    timestamptz,
    last_error         text,
    last_error_at      timestamptz,
    files_taken        bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (source, account_id, aws_region)
);
