-- The bus's tables: the transactional outbox and the consumers' processed-message inbox.

-- Messages written in the same transaction as the state change that causes them; the relay
-- publishes them with publisher confirms and then marks them sent.
CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    message_id   UUID        NOT NULL UNIQUE,
    tenant_id    UUID        NOT NULL,
    exchange     TEXT        NOT NULL,
    routing_key  TEXT        NOT NULL,
    headers      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    payload      BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at      TIMESTAMPTZ
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

-- Message ids a consumer has already applied, written in the consumer's own transaction so a
-- redelivered message is recognised and dropped.
CREATE TABLE processed_messages (
    consumer     TEXT        NOT NULL,
    message_id   UUID        NOT NULL,
    tenant_id    UUID        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX processed_messages_age ON processed_messages (processed_at);
