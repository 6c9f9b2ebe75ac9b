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
    -- The archive digest that lists it; NULL until the next digest is written.
    digest_key  text        COLLATE "C",
    UNIQUE (account_id, aws_region, hour, sequence)
);

CREATE INDEX archive_objects_undigested ON archive_objects (written_at) WHERE digest_key IS NULL;

-- orgtrail's digests of the archive, in CloudTrail's digest format: one every
-- archive.digest_interval_seconds of wall-clock time, listing each object written since the
-- digest before (each object in exactly one digest), chained to the digest before and signed.
CREATE TABLE archive_digests (
    digest_key     text        COLLATE "C" PRIMARY KEY,
    start_time     timestamptz NOT NULL,
    end_time       timestamptz NOT NULL UNIQUE,
    -- SHA-256 of the digest's uncompressed JSON, and its signature (hex): the next digest's
    -- previousDigestHashValue and previousDigestSignature.
    content_sha256 bytea       NOT NULL CHECK (length(content_sha256) = 32),
    signature      text        NOT NULL,
    objects        integer     NOT NULL,
    written_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
