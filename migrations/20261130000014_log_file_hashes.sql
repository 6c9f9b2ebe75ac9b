-- The SHA-256 of each log file's uncompressed content, as the sender read it whole (NULL when
-- it did not hash, or the file was not read to its end): what the hashValue of the CloudTrail
-- digest covering the file must be. Digest validation compares the two without reading the
-- file from its bucket again.
ALTER TABLE log_files ADD COLUMN content_sha256 bytea
    CHECK (content_sha256 IS NULL OR length(content_sha256) = 32);
