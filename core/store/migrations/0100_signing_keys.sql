-- The token issuer's signing keys (svc-api). Issuer-wide, not tenant data: every replica signs
-- with the newest key and publishes the ones whose tokens may still be outstanding. The private
-- key (PKCS#8 PEM) is sealed with the master key (AES-256-GCM, the key id as associated data);
-- only the public JWK is stored in the clear. svc-api owns the queries.
CREATE TABLE signing_keys (
    kid         TEXT        PRIMARY KEY CHECK (kid <> ''),
    algorithm   TEXT        NOT NULL CHECK (algorithm IN ('ES256', 'RS256')),
    ciphertext  BYTEA       NOT NULL,
    nonce       BYTEA       NOT NULL,
    public_jwk  JSONB       NOT NULL CHECK (jsonb_typeof(public_jwk) = 'object'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX signing_keys_newest ON signing_keys (created_at DESC);
