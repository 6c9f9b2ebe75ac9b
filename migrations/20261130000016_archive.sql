-- The consolidated archive (docs/archive.md): every object written to the archive bucket, with
-- the events it holds, so each stored event is archived exactly once. A row is written after
-- its object is in S3, in the transaction that holds the partition's lock: an object written
-- and not recorded (a crash between the two) is written again, under the same key, with what
-- is not archived yet.
CREATE TABLE archive_objects (
    object_key  text        COLLATE "C" PRIMARY KEY,
    -- The partition: account and region as stored ('' for none), the hour of event time.
    account_id  text        NOT NULL,
    aws_region  text        NOT NULL,
    hour        timestamptz NOT NULL,
    -- 0 for the hour's first object; late events go into 1, 2, …
    sequence    integer     NOT NULL CHECK (sequence >= 0),
    events      integer     NOT NULL CHECK (events > 0),
    bytes       bigint      NOT NULL,
    -- SHA-256 of the object as written (what the archive's digests list).
    sha256      bytea       NOT NULL CHECK (length(sha256) = 32),
    event_ids   uuid[]      NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (account_id, aws_region, hour, sequence)
);
