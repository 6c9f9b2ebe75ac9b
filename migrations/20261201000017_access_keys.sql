-- AWS-style access keys for the CloudTrail-compatible endpoint (docs/cloudtrail-api.md): a token
-- made with --aws-credentials has an access key id and a secret access key. SigV4 needs the
-- secret itself to verify a signature, so it is kept sealed like records (under data key key_id,
-- with the token id as the seal id; in the clear only when records are, on purpose), and
-- re-sealed by re-encryption. secret_sha256 holds the SHA-256 of that secret, so the bearer path
-- can never match it. A key may be scoped to accounts: it then sees only their events.
ALTER TABLE api_tokens
    ADD COLUMN access_key_id text UNIQUE CHECK (access_key_id ~ '^OTKA[A-Z2-7]{16}$'),
    ADD COLUMN key_id        integer,
    ADD COLUMN sealed_secret bytea,
    ADD COLUMN accounts      text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT api_tokens_access_key_has_secret
        CHECK ((access_key_id IS NULL) = (sealed_secret IS NULL)),
    ADD CONSTRAINT api_tokens_only_access_keys_are_scoped
        CHECK (access_key_id IS NOT NULL OR cardinality(accounts) = 0);
