-- Bearer tokens of API callers. The secret is shown once, at creation; only its SHA-256 is
-- kept (the secret is 256 random bits, so a fast hash is enough: there is nothing to guess).

CREATE TABLE api_tokens (
    token_id      uuid        PRIMARY KEY,
    name          text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('ingest', 'reader', 'admin')),
    secret_sha256 bytea       NOT NULL CHECK (length(secret_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    revoked_by    text
);

CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
