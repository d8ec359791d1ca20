-- People signing in to the CLI with svc-api's own issuer: the device authorization grant
-- (RFC 8628) and the refresh tokens it hands out. Device codes, user codes and refresh tokens
-- are stored only as SHA-256 hashes.

CREATE TABLE device_authorizations (
    device_code_hash TEXT        PRIMARY KEY,
    user_code_hash   TEXT        NOT NULL UNIQUE,
    client_id        TEXT        NOT NULL,
    scope            TEXT        NOT NULL DEFAULT '',
    status           TEXT        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'approved', 'denied')),
    -- Who approved (set with status 'approved').
    account_id       UUID        REFERENCES local_accounts (id) ON DELETE CASCADE,
    -- The polling interval the client must keep; raised by each slow_down.
    interval_secs    INTEGER     NOT NULL CHECK (interval_secs BETWEEN 1 AND 300),
    last_polled_at   TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'approved') = (account_id IS NOT NULL))
);
CREATE INDEX device_authorizations_expiry ON device_authorizations (expires_at);

-- Rotating refresh tokens: each use spends the token and issues the next one of its family; a
-- spent token presented again revokes the whole family (reuse detection). A family lives at
-- most until family_expires_at, each token until expires_at.
CREATE TABLE refresh_tokens (
    token_hash        TEXT        PRIMARY KEY,
    family_id         UUID        NOT NULL,
    account_id        UUID        NOT NULL REFERENCES local_accounts (id) ON DELETE CASCADE,
    client_id         TEXT        NOT NULL,
    scope             TEXT        NOT NULL DEFAULT '',
    expires_at        TIMESTAMPTZ NOT NULL,
    family_expires_at TIMESTAMPTZ NOT NULL,
    used_at           TIMESTAMPTZ,
    revoked_at        TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (expires_at <= family_expires_at)
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (family_expires_at);
