//! svc-scheduler's deployment metrics: deployments started and finished by outcome, strategy
//! step durations by kind, how long approvals waited, and the scheduler's automatic actions.
//! Labels have bounded cardinality (outcomes, step kinds, decisions, action names); never a
//! tenant, deployment or target. Counted only after the commit that caused them lands.

use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Seconds: a step or an approval lasts from milliseconds (a canary step whose pods are ready
/// at once) to a day (a pause or an approval nobody gives).
const DURATION_BUCKETS: [f64; 14] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0,
];

/// The scheduler's counters and histograms.
#[derive(Clone, Debug)]
pub struct SchedulerMetrics {
    started: IntCounter,
    finished: IntCounterVec,
    step_seconds: HistogramVec,
    approval_wait_seconds: HistogramVec,
    automatic: IntCounterVec,
    readiness_watches: IntGauge,
    readiness_wakes: IntCounter,
    stale_wakes: IntCounter,
}

impl Default for SchedulerMetrics {
    /// Metrics registered nowhere (tests).
    fn default() -> SchedulerMetrics {
        SchedulerMetrics::register(&Registry::new()).expect("a fresh registry takes the metrics")
    }
}

impl SchedulerMetrics {
    /// Registers the metrics into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<SchedulerMetrics> {
        let metrics = SchedulerMetrics {
            started: IntCounter::new(
                "ferry_deployments_started_total",
                "Deployments whose targets began to move (a queued deployment counts when it starts)",
            )?,
            finished: IntCounterVec::new(
                Opts::new(
                    "ferry_deployments_finished_total",
                    "Deployments that ended, by outcome (succeeded, failed, rolled_back, aborted, superseded)",
                ),
                &["outcome"],
            )?,
            step_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "ferry_step_duration_seconds",
                    "How long canary steps took, by kind (setWeight, pause, approval, analysis, runWebhook, exposeServices) and result",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["kind", "result"],
            )?,
            approval_wait_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "ferry_approval_wait_seconds",
                    "How long approvals waited before they were approved, rejected or expired",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["decision"],
            )?,
            automatic: IntCounterVec::new(
                Opts::new(
                    "ferry_scheduler_automatic_actions_total",
                    "Actions the scheduler took on its own (target.rollback, approval.expire), each also in the audit log",
                ),
                &["action"],
            )?,
            readiness_watches: IntGauge::new(
                "ferry_readiness_watches",
                "Namespaces this replica watches for targets waiting for their pods",
            )?,
            readiness_wakes: IntCounter::new(
                "ferry_readiness_wakes_total",
                "Deployments woken by a readiness watch when the pods they waited for turned ready",
            )?,
            stale_wakes: IntCounter::new(
                "ferry_scheduler_stale_wakes_total",
                "Wake-ups acked without a pass: they occurred before the deployment's last completed pass began",
            )?,
        };
        ferry_runtime::metrics::register_all(registry, metrics.collectors())?;
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.started.clone()),
            Box::new(self.finished.clone()),
            Box::new(self.step_seconds.clone()),
            Box::new(self.approval_wait_seconds.clone()),
            Box::new(self.automatic.clone()),
            Box::new(self.readiness_watches.clone()),
            Box::new(self.readiness_wakes.clone()),
            Box::new(self.stale_wakes.clone()),
        ]
    }

    /// This replica now watches `watches` namespaces for readiness.
    pub fn readiness_watching(&self, watches: usize) {
        self.readiness_watches
            .set(i64::try_from(watches).unwrap_or(i64::MAX));
    }

    /// A readiness watch woke a deployment.
    pub fn readiness_woke(&self) {
        self.readiness_wakes.inc();
    }

    /// Deployments woken by readiness watches so far.
    pub fn readiness_wakes(&self) -> u64 {
        self.readiness_wakes.get()
    }

    /// A stale wake-up was acked without a pass.
    pub fn stale_wake(&self) {
        self.stale_wakes.inc();
    }

    /// Stale wake-ups acked without a pass so far.
    pub fn stale_wakes(&self) -> u64 {
        self.stale_wakes.get()
    }

    /// A deployment started.
    pub fn started(&self) {
        self.started.inc();
    }

    /// A deployment ended with `outcome` (its status).
    pub fn finished(&self, outcome: &str) {
        self.finished.with_label_values(&[outcome]).inc();
    }

    /// A canary step of `kind` ended with `result` after `seconds`.
    pub fn step_ended(&self, kind: &str, result: &str, seconds: f64) {
        self.step_seconds
            .with_label_values(&[kind, result])
            .observe(seconds);
    }

    /// An approval was `approved`, `rejected` or `expired` after `seconds`.
    pub fn approval_waited(&self, decision: &str, seconds: f64) {
        self.approval_wait_seconds
            .with_label_values(&[decision])
            .observe(seconds);
    }

    /// The scheduler took `action` on its own.
    pub fn automatic(&self, action: &str) {
        self.automatic.with_label_values(&[action]).inc();
    }

    /// Deployments started so far.
    pub fn started_count(&self) -> u64 {
        self.started.get()
    }

    /// Deployments that ended with `outcome` so far.
    pub fn finished_count(&self, outcome: &str) -> u64 {
        self.finished.with_label_values(&[outcome]).get()
    }

    /// Steps of `kind` that ended with `result` so far.
    pub fn steps_ended(&self, kind: &str, result: &str) -> u64 {
        self.step_seconds
            .with_label_values(&[kind, result])
            .get_sample_count()
    }

    /// Approvals decided as `decision` so far.
    pub fn approvals_waited(&self, decision: &str) -> u64 {
        self.approval_wait_seconds
            .with_label_values(&[decision])
            .get_sample_count()
    }

    /// Automatic `action`s so far.
    pub fn automatic_count(&self, action: &str) -> u64 {
        self.automatic.with_label_values(&[action]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_metrics_are_documented() {
        let path = ferry_runtime::metrics::document_path(env!("CARGO_MANIFEST_DIR"), 1);
        let collectors = SchedulerMetrics::default().collectors();
        if let Err(e) =
            ferry_runtime::metrics::check_documented(&path, "svc-scheduler", &collectors)
        {
            panic!("{e}");
        }
    }
}
