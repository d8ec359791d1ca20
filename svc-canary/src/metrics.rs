//! svc-canary's metrics, registered into the registry the service builds in `run` (never a
//! global): judgment runs by result and how long each took, provider queries by provider kind
//! and outcome with their latency, analyses ended by status with their duration. Labels are
//! bounded (no analysis, deployment or query names).

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Seconds: a provider answers in milliseconds to its timeout.
const QUERY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Seconds: an analysis lasts from a minute to hours.
const ANALYSIS_BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
    86400.0,
];

/// The metrics. Cloning shares them.
#[derive(Clone, Debug)]
pub struct CanaryMetrics {
    runs: IntCounterVec,
    queries: IntCounterVec,
    analyses: IntCounterVec,
    query_seconds: HistogramVec,
    run_seconds: HistogramVec,
    analysis_seconds: HistogramVec,
}

impl Default for CanaryMetrics {
    /// Metrics registered nowhere (tests, the catalog, and retrospective analysis in svc-api).
    fn default() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
                .expect("metric names and labels are valid")
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .expect("metric names and labels are valid")
        };
        CanaryMetrics {
            runs: counter(
                "ferry_canary_judgment_runs_total",
                "Judgment runs recorded, by result",
                &["result"],
            ),
            queries: counter(
                "ferry_canary_provider_queries_total",
                "Provider queries, by provider kind and outcome (data, missing, error)",
                &["kind", "outcome"],
            ),
            analyses: counter(
                "ferry_canary_analyses_total",
                "Analyses ended, by status",
                &["status"],
            ),
            query_seconds: histogram(
                "ferry_canary_provider_query_duration_seconds",
                "Time one provider query took, retries included, by provider kind and outcome (data, missing, error)",
                &["kind", "outcome"],
                QUERY_BUCKETS,
            ),
            run_seconds: histogram(
                "ferry_canary_judgment_run_duration_seconds",
                "Time one judgment run took (every query of both sides, then the judges), by result",
                &["result"],
                QUERY_BUCKETS,
            ),
            analysis_seconds: histogram(
                "ferry_canary_analysis_duration_seconds",
                "Time from an analysis starting to its end, by status",
                &["status"],
                ANALYSIS_BUCKETS,
            ),
        }
    }
}

impl CanaryMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<CanaryMetrics, prometheus::Error> {
        let metrics = CanaryMetrics::default();
        for collector in metrics.collectors() {
            registry.register(collector)?;
        }
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.runs.clone()),
            Box::new(self.queries.clone()),
            Box::new(self.analyses.clone()),
            Box::new(self.query_seconds.clone()),
            Box::new(self.run_seconds.clone()),
            Box::new(self.analysis_seconds.clone()),
        ]
    }

    /// A recorded run that took `seconds`.
    pub fn run(&self, passed: bool, seconds: f64) {
        let result = if passed { "passed" } else { "failed" };
        self.runs.with_label_values(&[result]).inc();
        self.run_seconds
            .with_label_values(&[result])
            .observe(seconds);
    }

    /// A provider query's outcome and how long it took.
    pub fn query(&self, kind: &str, outcome: &str, seconds: f64) {
        self.queries.with_label_values(&[kind, outcome]).inc();
        self.query_seconds
            .with_label_values(&[kind, outcome])
            .observe(seconds);
    }

    /// An ended analysis and how long it ran.
    pub fn analysis(&self, status: &str, seconds: f64) {
        self.analyses.with_label_values(&[status]).inc();
        self.analysis_seconds
            .with_label_values(&[status])
            .observe(seconds);
    }

    /// The count of runs with `result` (tests).
    pub fn runs_with(&self, result: &str) -> u64 {
        self.runs.with_label_values(&[result]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once_per_registry_and_counts() {
        let registry = Registry::new();
        let metrics = CanaryMetrics::register(&registry).unwrap();
        metrics.run(true, 0.5);
        metrics.run(false, 0.5);
        metrics.run(false, 0.5);
        assert_eq!(
            (metrics.runs_with("passed"), metrics.runs_with("failed")),
            (1, 2)
        );
        metrics.query("prometheus", "error", 0.1);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(names.contains(&"ferry_canary_provider_queries_total".to_string()));
        assert!(names.contains(&"ferry_canary_provider_query_duration_seconds".to_string()));
        assert!(CanaryMetrics::register(&registry).is_err());
    }

    #[test]
    fn canary_metrics_are_documented() {
        let path = ferry_runtime::metrics::document_path(env!("CARGO_MANIFEST_DIR"), 1);
        let collectors = CanaryMetrics::default().collectors();
        if let Err(e) = ferry_runtime::metrics::check_documented(&path, "svc-canary", &collectors) {
            panic!("{e}");
        }
    }
}
