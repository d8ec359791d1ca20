-- Canary analysis (svc-canary, ANALYSIS.md). One row per analysis the scheduler asked for: the
-- request, where its judgment runs are, and a lease held by the replica running one. A run is
-- taken when due (`next_run_at`) and its lease free or expired, so a replica that dies mid-run
-- leaves the run to the next replica once the lease expires.
CREATE TABLE analyses (
    tenant_id     UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            UUID        NOT NULL,
    deployment_id UUID        NOT NULL,
    target_name   TEXT        NOT NULL,
    step_key      TEXT        NOT NULL,
    step_index    INTEGER     NOT NULL,
    -- the analysis.requested payload, and the analysis step it names (resolved from the plan)
    request       JSONB       NOT NULL,
    spec          JSONB       NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'inconclusive')),
    total_runs    INTEGER     NOT NULL CHECK (total_runs >= 1),
    runs_done     INTEGER     NOT NULL DEFAULT 0 CHECK (runs_done >= 0),
    started_at    TIMESTAMPTZ NOT NULL,
    next_run_at   TIMESTAMPTZ NOT NULL,
    lease_owner   TEXT,
    lease_until   TIMESTAMPTZ,
    -- the final verdict and its one-line reason
    verdict       JSONB,
    reason        TEXT,
    completed_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, deployment_id) REFERENCES deployments (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX analyses_due ON analyses (next_run_at) WHERE status = 'running';
CREATE INDEX analyses_by_target ON analyses (tenant_id, deployment_id, target_name);

-- One row per finished judgment run: every query's value (or samples' summary) and judgement.
-- The primary key is what makes a run count once, whoever ran it.
CREATE TABLE analysis_runs (
    tenant_id    UUID        NOT NULL,
    analysis_id  UUID        NOT NULL,
    run_index    INTEGER     NOT NULL CHECK (run_index >= 0),
    window_start TIMESTAMPTZ NOT NULL,
    window_end   TIMESTAMPTZ NOT NULL,
    passed       BOOLEAN     NOT NULL,
    results      JSONB       NOT NULL,
    explanation  TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, analysis_id, run_index),
    FOREIGN KEY (tenant_id, analysis_id) REFERENCES analyses (tenant_id, id) ON DELETE CASCADE
);
