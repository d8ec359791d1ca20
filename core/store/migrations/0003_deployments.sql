-- Deployments and everything the scheduler persists about them: targets with their desired and
-- observed state, step history, the per-deployment event stream, approvals, durable timers and
-- webhook callbacks.

CREATE TABLE deployments (
    tenant_id      UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id             UUID        NOT NULL,
    application    TEXT        NOT NULL CHECK (application <> ''),
    status         TEXT        NOT NULL CHECK (status IN (
                       'waiting', 'running', 'paused',
                       'succeeded', 'failed', 'aborted', 'rolled_back', 'superseded')),
    reason         TEXT,
    created_by     TEXT        NOT NULL,
    -- the configuration exactly as submitted, plus the validated plan derived from it
    deploy_file    TEXT        NOT NULL,
    manifests      JSONB       NOT NULL DEFAULT '[]'::jsonb,
    plan           JSONB       NOT NULL DEFAULT '{}'::jsonb,
    -- optimistic concurrency: every state change bumps it and checks the value it read
    version        BIGINT      NOT NULL DEFAULT 1,
    -- the last event sequence number handed out for this deployment's event stream
    last_event_seq BIGINT      NOT NULL DEFAULT 0,
    started_at     TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- One deployment in flight per application: enforced here, not only in code.
CREATE UNIQUE INDEX deployments_one_active
    ON deployments (tenant_id, application) WHERE status IN ('running', 'paused');
-- Newest-first listing (keyset on created_at, id), optionally by application or status.
CREATE INDEX deployments_list ON deployments (tenant_id, created_at DESC, id DESC);
CREATE INDEX deployments_by_application
    ON deployments (tenant_id, application, created_at DESC, id DESC);
CREATE INDEX deployments_by_status ON deployments (tenant_id, status, created_at DESC, id DESC);

CREATE TABLE targets (
    tenant_id     UUID        NOT NULL,
    deployment_id UUID        NOT NULL,
    name          TEXT        NOT NULL CHECK (name <> ''),
    -- the agent identifier that reaches the target's cluster, and the namespace deployed into
    account       TEXT        NOT NULL,
    namespace     TEXT        NOT NULL,
    status        TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN (
                      'pending', 'running', 'paused', 'rolling_back',
                      'succeeded', 'failed', 'rolled_back', 'aborted', 'skipped')),
    -- strategy-specific sub-state, e.g. 'awaiting_approval' or 'analysis'
    phase         TEXT,
    desired       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    observed      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    step_index    INTEGER     NOT NULL DEFAULT 0 CHECK (step_index >= 0),
    reason        TEXT,
    version       BIGINT      NOT NULL DEFAULT 1,
    started_at    TIMESTAMPTZ,
    ended_at      TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, deployment_id, name),
    FOREIGN KEY (tenant_id, deployment_id) REFERENCES deployments (tenant_id, id) ON DELETE CASCADE
);

-- Every state change of a target's steps, with a reason a human can read.
CREATE TABLE step_history (
    id            BIGSERIAL   PRIMARY KEY,
    tenant_id     UUID        NOT NULL,
    deployment_id UUID        NOT NULL,
    target_name   TEXT        NOT NULL,
    step_index    INTEGER     CHECK (step_index >= 0),
    status        TEXT        NOT NULL CHECK (status IN (
                      'started', 'progressing', 'waiting', 'succeeded', 'failed', 'skipped',
                      'rolled_back', 'aborted')),
    reason        TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, deployment_id, target_name)
        REFERENCES targets (tenant_id, deployment_id, name) ON DELETE CASCADE
);
CREATE INDEX step_history_by_deployment ON step_history (tenant_id, deployment_id, id);

-- The deployment's event stream. `seq` comes from deployments.last_event_seq, taken under that
-- row's lock, so sequence order is commit order and a reader resuming after N misses nothing.
CREATE TABLE events (
    tenant_id     UUID        NOT NULL,
    deployment_id UUID        NOT NULL,
    seq           BIGINT      NOT NULL CHECK (seq > 0),
    kind          TEXT        NOT NULL CHECK (kind <> ''),
    target_name   TEXT,
    payload       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, deployment_id, seq),
    FOREIGN KEY (tenant_id, deployment_id) REFERENCES deployments (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE approvals (
    tenant_id      UUID        NOT NULL,
    id             UUID        NOT NULL,
    deployment_id  UUID        NOT NULL,
    target_name    TEXT        NOT NULL,
    step_key       TEXT        NOT NULL CHECK (step_key <> ''),
    requires_roles TEXT[]      NOT NULL DEFAULT '{}',
    expires_at     TIMESTAMPTZ,
    decision       TEXT        CHECK (decision IN ('approve', 'reject')),
    decided_by     TEXT,
    decided_at     TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- one approval per step: a redelivered "wait for approval" finds the existing one
    UNIQUE (tenant_id, deployment_id, target_name, step_key),
    CHECK ((decision IS NULL) = (decided_by IS NULL) AND (decision IS NULL) = (decided_at IS NULL)),
    FOREIGN KEY (tenant_id, deployment_id, target_name)
        REFERENCES targets (tenant_id, deployment_id, name) ON DELETE CASCADE
);
CREATE INDEX approvals_pending ON approvals (tenant_id, created_at) WHERE decision IS NULL;

-- Durable timers (pauses, timeouts). Any scheduler replica claims due ones with
-- FOR UPDATE SKIP LOCKED; `fired_at` set in the claiming transaction makes firing exactly-once.
CREATE TABLE timers (
    tenant_id     UUID        NOT NULL,
    id            UUID        NOT NULL,
    deployment_id UUID        NOT NULL,
    target_name   TEXT,
    -- the scheduler's vocabulary (pause, approval-timeout, ...), so not constrained here
    kind          TEXT        NOT NULL CHECK (kind <> ''),
    -- caller's idempotency key: scheduling the same timer twice (redelivery) keeps one row
    key           TEXT        NOT NULL CHECK (key <> ''),
    fire_at       TIMESTAMPTZ NOT NULL,
    payload       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    fired_at      TIMESTAMPTZ,
    cancelled_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, deployment_id, key),
    FOREIGN KEY (tenant_id, deployment_id) REFERENCES deployments (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX timers_due ON timers (fire_at) WHERE fired_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX timers_due_tenant ON timers (tenant_id, fire_at)
    WHERE fired_at IS NULL AND cancelled_at IS NULL;

-- Single-use callback URLs handed to webhooks; only a hash of the token is stored.
CREATE TABLE webhook_callbacks (
    tenant_id     UUID        NOT NULL,
    id            UUID        NOT NULL,
    deployment_id UUID        NOT NULL,
    target_name   TEXT,
    webhook_name  TEXT        NOT NULL CHECK (webhook_name <> ''),
    token_hash    TEXT        NOT NULL UNIQUE CHECK (token_hash <> ''),
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ,
    succeeded     BOOLEAN,
    details       JSONB,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((used_at IS NULL) = (succeeded IS NULL)),
    FOREIGN KEY (tenant_id, deployment_id) REFERENCES deployments (tenant_id, id) ON DELETE CASCADE
);
