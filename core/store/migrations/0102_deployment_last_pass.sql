-- A deployment's lease row now outlives its passes: a released lease stays, expired at once
-- (its expiry set to the release's time), with `passed_at`, when the deployment's last pass that completed began
-- (Postgres's clock; NULL: none completed yet). A wake-up message (a tick, a readiness watch's
-- wake, a pause's timer) that occurred before that pass began asks for nothing that pass did not
-- already see, and while a readiness tick is pending the scheduler acks it without another
-- pass (svc-scheduler's `exclusive` and `Engine::reconcile_sent`).
-- One small row per deployment that ever ran a pass.
ALTER TABLE deployment_leases ADD COLUMN passed_at timestamptz;
