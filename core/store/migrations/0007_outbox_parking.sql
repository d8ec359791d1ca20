-- Outbox rows that cannot be published are moved aside instead of blocking the rows behind them:
-- a row the broker refuses (unroutable, nacked) or that fails with the channel it was published on
-- is counted in `attempts`, and once it reaches the relay's limit, or at once when retrying cannot
-- help (larger than the relay publishes, an exchange this version does not know), it is parked
-- with the reason. Parked rows stay for people to inspect and republish (clear `parked_at`); the
-- relay never claims them.
ALTER TABLE outbox
    ADD COLUMN attempts      INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN last_error    TEXT,
    ADD COLUMN parked_at     TIMESTAMPTZ,
    ADD COLUMN parked_reason TEXT;

-- What the relay claims: unsent and not parked, in order.
DROP INDEX IF EXISTS outbox_unsent;
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked ON outbox (parked_at) WHERE parked_at IS NOT NULL;
