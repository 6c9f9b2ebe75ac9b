-- Records encrypted at rest. Data keys are stored wrapped by a master key (the keyring's, or
-- KMS's), never in the clear; each event row names the data key its record is sealed with
-- (NULL: stored in the clear, only where encryption was turned off on purpose).

CREATE TABLE data_keys (
    key_id      integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wrapped_key bytea       NOT NULL,
    -- The master key that wrapped it: a keyring key id, or "kms:<key id>".
    wrapped_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL
);

ALTER TABLE events ADD COLUMN key_id integer;
