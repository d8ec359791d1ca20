//! svc-webhook's metrics, registered into the process registry (labels of bounded
//! cardinality: kind — `webhook` or `notification` — mode, answer class, final status).

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The counters and the send-time histogram.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    attempts: IntCounterVec,
    finished: IntCounterVec,
    retried: IntCounterVec,
    send_seconds: HistogramVec,
    delivery_seconds: HistogramVec,
}

impl Default for WebhookMetrics {
    /// Metrics registered nowhere (tests).
    fn default() -> WebhookMetrics {
        WebhookMetrics::register(&Registry::new()).expect("a fresh registry takes the metrics")
    }
}

impl WebhookMetrics {
    /// Registers the metrics into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<WebhookMetrics> {
        let attempts = IntCounterVec::new(
            Opts::new(
                "ferry_webhook_attempts_total",
                "Webhook and notification sends, by kind and answer (2xx, 4xx, 5xx, error)",
            ),
            &["kind", "answer"],
        )?;
        let finished = IntCounterVec::new(
            Opts::new(
                "ferry_webhook_deliveries_total",
                "Deliveries that reached a final state (or delivered, awaiting a callback)",
            ),
            &["kind", "status"],
        )?;
        let retried = IntCounterVec::new(
            Opts::new("ferry_webhook_retries_total", "Attempts scheduled again"),
            &["kind"],
        )?;
        let send_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ferry_webhook_send_seconds",
                "Time one send took, redirects included, by kind and mode (direct, agent)",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["kind", "mode"],
        )?;
        let delivery_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ferry_webhook_delivery_duration_seconds",
                "Time from a delivery being requested to its final state (retries and their waits included), by kind and status",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            &["kind", "status"],
        )?;
        let metrics = WebhookMetrics {
            attempts,
            finished,
            retried,
            send_seconds,
            delivery_seconds,
        };
        for collector in metrics.collectors() {
            registry.register(collector)?;
        }
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.attempts.clone()),
            Box::new(self.finished.clone()),
            Box::new(self.retried.clone()),
            Box::new(self.send_seconds.clone()),
            Box::new(self.delivery_seconds.clone()),
        ]
    }

    /// One send answered (or failed) with `answer`.
    pub fn attempt(&self, kind: &str, answer: &str) {
        self.attempts.with_label_values(&[kind, answer]).inc();
    }

    /// One send took `seconds`.
    pub fn sent(&self, kind: &str, mode: &str, seconds: f64) {
        self.send_seconds
            .with_label_values(&[kind, mode])
            .observe(seconds);
    }

    /// A delivery will be tried again.
    pub fn retried(&self, kind: &str) {
        self.retried.with_label_values(&[kind]).inc();
    }

    /// A delivery ended in `status`, `seconds` after it was requested.
    pub fn finished(&self, kind: &str, status: &str, seconds: f64) {
        self.finished.with_label_values(&[kind, status]).inc();
        self.delivery_seconds
            .with_label_values(&[kind, status])
            .observe(seconds);
    }

    /// Deliveries that ended in `status` so far.
    pub fn finished_count(&self, kind: &str, status: &str) -> u64 {
        self.finished.with_label_values(&[kind, status]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_metrics_are_documented() {
        let path = ferry_runtime::metrics::document_path(env!("CARGO_MANIFEST_DIR"), 1);
        let collectors = WebhookMetrics::default().collectors();
        if let Err(e) = ferry_runtime::metrics::check_documented(&path, "svc-webhook", &collectors)
        {
            panic!("{e}");
        }
    }
}
