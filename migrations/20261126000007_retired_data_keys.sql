-- A data key no row is sealed with any more (after a completed re-encryption) is retired: its
-- master key is no longer needed at start, so a keyring or KMS key replaced by another can go.
ALTER TABLE data_keys ADD COLUMN retired_at timestamptz;
