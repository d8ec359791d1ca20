-- A deployment's lease row now outlives its passes: a released lease stays, expired at once
-- ('-infinity'), with `passed_at`, when the deployment's last pass that completed began
-- (Postgres's clock; NULL: none completed yet). A wake-up message (a tick, a readiness watch's
-- wake, a pause's timer) that occurred before that pass began asks for nothing that pass did not
-- already see, and the scheduler acks it without another pass (svc-scheduler's `exclusive`).
-- One small row per deployment that ever ran a pass.
ALTER TABLE deployment_leases ADD COLUMN passed_at timestamptz;
