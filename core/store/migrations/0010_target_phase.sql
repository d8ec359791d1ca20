-- The scheduler's target phases as a closed set: a row can only hold a phase the engine knows
-- (svc-scheduler's `Phase`), so an unknown phase is refused where it is written instead of being
-- read back as something else. NULL is a target that has not started.
ALTER TABLE targets
    ADD CONSTRAINT targets_phase_known CHECK (phase IS NULL OR phase IN (
        'pending', 'before_deployment', 'deploying', 'steps', 'promoting',
        'after_deployment', 'done'));
