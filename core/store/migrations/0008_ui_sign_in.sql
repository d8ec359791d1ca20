-- People signing in to the web UI: local accounts of svc-api's own issuer (for installations
-- and demos without an external identity provider), that issuer's authorization codes, the
-- UI's pending sign-ins (state, PKCE verifier and nonce of a code flow in progress) and its
-- sessions. Codes, sign-in states and session ids are stored only as SHA-256 hashes.

CREATE TABLE local_accounts (
    id            UUID        PRIMARY KEY,
    email         TEXT        NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    -- argon2id PHC string.
    password_hash TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE authorization_codes (
    code_hash      TEXT        PRIMARY KEY,
    account_id     UUID        NOT NULL REFERENCES local_accounts (id) ON DELETE CASCADE,
    client_id      TEXT        NOT NULL,
    redirect_uri   TEXT        NOT NULL,
    -- PKCE S256 challenge (RFC 7636).
    code_challenge TEXT        NOT NULL,
    nonce          TEXT,
    expires_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

CREATE TABLE ui_sign_ins (
    state_hash    TEXT        PRIMARY KEY,
    -- The issuer signed in with: svc-api's own, or the external one.
    issuer        TEXT        NOT NULL,
    code_verifier TEXT        NOT NULL,
    nonce         TEXT        NOT NULL,
    return_to     TEXT        NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ui_sign_ins_expiry ON ui_sign_ins (expires_at);

CREATE TABLE ui_sessions (
    id_hash        TEXT        PRIMARY KEY,
    issuer         TEXT        NOT NULL,
    subject        TEXT        NOT NULL,
    email          TEXT        NOT NULL,
    email_verified BOOLEAN     NOT NULL,
    groups         TEXT[]      NOT NULL DEFAULT '{}',
    -- The synchronizer token every state-changing request of the session carries.
    csrf_token     TEXT        NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ui_sessions_expiry ON ui_sessions (expires_at);
CREATE INDEX ui_sessions_person ON ui_sessions (issuer, subject);
