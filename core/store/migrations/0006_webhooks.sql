-- Outgoing HTTP of svc-webhook. One row per delivery: a webhook call a step asked for
-- (webhook.requested; its id is the webhook run's id) or a notification of a deployment event to
-- one endpoint. A delivery is taken when due (`next_attempt_at`) and its lease free or expired,
-- so a replica that dies mid-send leaves it to another replica once the lease expires (which may
-- send it again: receivers de-duplicate by the Ferry-Delivery-Id header, the row's id). A
-- delivery in a final state is never sent again.
CREATE TABLE webhook_deliveries (
    tenant_id       UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              UUID        NOT NULL,
    kind            TEXT        NOT NULL CHECK (kind IN ('webhook', 'notification')),
    deployment_id   UUID        NOT NULL,
    target_name     TEXT,
    step_key        TEXT        NOT NULL DEFAULT '',
    -- the webhook's name, or the notification endpoint's
    name            TEXT        NOT NULL,
    endpoint_id     UUID,
    -- webhook.requested's payload (secrets still references), or the notification's event
    request         JSONB       NOT NULL,
    -- pending: to send; delivered: answered 2xx, the step waits for the callback;
    -- succeeded / failed: final
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'delivered', 'succeeded', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    INTEGER     NOT NULL CHECK (max_attempts >= 1),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    deadline        TIMESTAMPTZ,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    last_status     INTEGER,
    last_error      TEXT,
    reason          TEXT,
    completed_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, deployment_id) REFERENCES deployments (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_deployment ON webhook_deliveries (tenant_id, deployment_id, created_at);

-- Where a tenant wants deployment events sent: Slack-compatible incoming webhooks, or generic
-- JSON signed with HMAC-SHA256 (the key is a tenant secret, named here).
CREATE TABLE notification_endpoints (
    tenant_id      UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id             UUID        NOT NULL,
    name           TEXT        NOT NULL,
    kind           TEXT        NOT NULL CHECK (kind IN ('slack', 'generic')),
    url            TEXT        NOT NULL,
    events         TEXT[]      NOT NULL,
    signing_secret TEXT,
    created_by     TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name),
    CHECK (kind <> 'generic' OR signing_secret IS NOT NULL)
);

-- Networks a tenant's direct webhooks and notifications may reach besides public addresses
-- (ferry-netguard refuses loopback, private, link-local, metadata, ... otherwise).
CREATE TABLE tenant_network_settings (
    tenant_id        UUID        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    allowed_networks TEXT[]      NOT NULL DEFAULT '{}',
    updated_by       TEXT        NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
