//! Consumer and outbox-relay metrics, registered into the registry the service builds in `main`
//! (never a global). Labels are bounded: the work queue (service name, not the prefixed queue
//! name), the message kind (the closed set of versioned kinds), and fixed reason sets.

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::error::BusError;

/// Seconds: a handler commits in milliseconds; a lagging pipeline takes minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// What consumers did with messages and how long it took. Register once per registry and share
/// the clone between a service's consumers.
#[derive(Clone, Debug)]
pub struct ConsumerMetrics {
    pub(crate) handled: IntCounterVec,
    pub(crate) retried: IntCounterVec,
    pub(crate) dead_lettered: IntCounterVec,
    pub(crate) redelivered: IntCounterVec,
    pub(crate) handle_seconds: HistogramVec,
    pub(crate) delivery_lag_seconds: HistogramVec,
}

impl Default for ConsumerMetrics {
    /// Metrics registered nowhere (tests, the catalog).
    fn default() -> ConsumerMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric")
        };
        ConsumerMetrics {
            handled: counter(
                "ferry_bus_messages_handled_total",
                "Messages whose handler succeeded and which were acknowledged.",
                &["queue", "kind"],
            ),
            retried: counter(
                "ferry_bus_messages_retried_total",
                "Messages whose handler failed with a retryable error and which were scheduled for another attempt.",
                &["queue", "kind"],
            ),
            dead_lettered: counter(
                "ferry_bus_messages_dead_lettered_total",
                "Messages moved to the dead-letter queue, by reason (permanent, retries_exhausted, undecodable).",
                &["queue", "kind", "reason"],
            ),
            redelivered: counter(
                "ferry_bus_messages_redelivered_total",
                "Deliveries the broker flagged as redelivered (an earlier delivery was never acknowledged: a consumer died or lost its channel).",
                &["queue"],
            ),
            handle_seconds: histogram(
                "ferry_bus_handle_duration_seconds",
                "Time from taking a delivery to acknowledging it (handler, then ack, retry or dead-letter), by queue and kind.",
                &["queue", "kind"],
            ),
            delivery_lag_seconds: histogram(
                "ferry_bus_delivery_lag_seconds",
                "Time from the state change that caused a message (its occurred_at) to its first delivery to a consumer: outbox relay plus broker.",
                &["queue"],
            ),
        }
    }
}

impl ConsumerMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<ConsumerMetrics, BusError> {
        let metrics = ConsumerMetrics::default();
        for collector in metrics.collectors() {
            registry.register(collector)?;
        }
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.handled.clone()),
            Box::new(self.retried.clone()),
            Box::new(self.dead_lettered.clone()),
            Box::new(self.redelivered.clone()),
            Box::new(self.handle_seconds.clone()),
            Box::new(self.delivery_lag_seconds.clone()),
        ]
    }

    /// Handled messages so far for a queue (service name) and kind.
    pub fn handled(&self, queue: &str, kind: &str) -> u64 {
        self.handled.with_label_values(&[queue, kind]).get()
    }

    /// Retried messages so far for a queue (service name) and kind.
    pub fn retried(&self, queue: &str, kind: &str) -> u64 {
        self.retried.with_label_values(&[queue, kind]).get()
    }

    /// Dead-lettered messages so far for a queue (service name), kind and reason.
    pub fn dead_lettered(&self, queue: &str, kind: &str, reason: &str) -> u64 {
        self.dead_lettered
            .with_label_values(&[queue, kind, reason])
            .get()
    }

    /// Redeliveries so far on a queue (service name).
    pub fn redelivered(&self, queue: &str) -> u64 {
        self.redelivered.with_label_values(&[queue]).get()
    }

    /// Deliveries timed so far for a queue and kind.
    pub fn handle_count(&self, queue: &str, kind: &str) -> u64 {
        self.handle_seconds
            .with_label_values(&[queue, kind])
            .get_sample_count()
    }

    /// First deliveries whose lag was recorded so far on a queue.
    pub fn lag_count(&self, queue: &str) -> u64 {
        self.delivery_lag_seconds
            .with_label_values(&[queue])
            .get_sample_count()
    }
}

/// The outbox relay: rows published, parked and failed, how long rows waited, and the backlog.
/// Register once per registry and hand the clone to the service's relay
/// ([`crate::Relay::with_metrics`]), which then also keeps the backlog gauges current.
#[derive(Clone, Debug)]
pub struct RelayMetrics {
    pub(crate) parked: IntCounterVec,
    pub(crate) failed: IntCounter,
    pub(crate) published: IntCounter,
    pub(crate) publish_lag_seconds: Histogram,
    pub(crate) pending_rows: IntGauge,
    pub(crate) oldest_pending_seconds: prometheus::Gauge,
    pub(crate) parked_rows: IntGauge,
}

impl Default for RelayMetrics {
    /// Metrics registered nowhere (tests, the catalog).
    fn default() -> RelayMetrics {
        RelayMetrics {
            parked: IntCounterVec::new(
                Opts::new(
                    "ferry_outbox_parked_total",
                    "Outbox rows moved aside instead of published, by reason (oversized, unknown_exchange, failing).",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            failed: IntCounter::new(
                "ferry_outbox_publish_failures_total",
                "Failed publish attempts counted against an outbox row (refused by the broker, or failed alone with its channel).",
            )
            .expect("valid metric"),
            published: IntCounter::new(
                "ferry_outbox_published_total",
                "Outbox rows this relay published, confirmed by the broker and marked sent.",
            )
            .expect("valid metric"),
            publish_lag_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "ferry_outbox_publish_lag_seconds",
                    "Time from writing an outbox row (its transaction) to the broker confirming it, for rows this relay published.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            pending_rows: IntGauge::new(
                "ferry_outbox_pending_rows",
                "Outbox rows waiting to be published (unsent, not parked), counted up to 100000, as this relay last read them.",
            )
            .expect("valid metric"),
            oldest_pending_seconds: prometheus::Gauge::new(
                "ferry_outbox_oldest_pending_age_seconds",
                "Age of the oldest outbox row waiting to be published (0 when none), as this relay last read it.",
            )
            .expect("valid metric"),
            parked_rows: IntGauge::new(
                "ferry_outbox_parked_rows",
                "Outbox rows parked and waiting for someone to republish or delete them, counted up to 100000.",
            )
            .expect("valid metric"),
        }
    }
}

impl RelayMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<RelayMetrics, BusError> {
        let metrics = RelayMetrics::default();
        for collector in metrics.collectors() {
            registry.register(collector)?;
        }
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.parked.clone()),
            Box::new(self.failed.clone()),
            Box::new(self.published.clone()),
            Box::new(self.publish_lag_seconds.clone()),
            Box::new(self.pending_rows.clone()),
            Box::new(self.oldest_pending_seconds.clone()),
            Box::new(self.parked_rows.clone()),
        ]
    }

    /// Rows parked so far with `reason`.
    pub fn parked(&self, reason: &str) -> u64 {
        self.parked.with_label_values(&[reason]).get()
    }

    /// Failed publish attempts counted so far.
    pub fn failed(&self) -> u64 {
        self.failed.get()
    }

    /// Rows published so far.
    pub fn published(&self) -> u64 {
        self.published.get()
    }

    /// The backlog gauges as last read: (pending rows, oldest pending age, parked rows).
    pub fn backlog(&self) -> (i64, f64, i64) {
        (
            self.pending_rows.get(),
            self.oldest_pending_seconds.get(),
            self.parked_rows.get(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once_per_registry() {
        let registry = Registry::new();
        let metrics = ConsumerMetrics::register(&registry).unwrap();
        metrics
            .handled
            .with_label_values(&["scheduler", "x.v1"])
            .inc();
        assert_eq!(metrics.handled("scheduler", "x.v1"), 1);
        assert!(ConsumerMetrics::register(&registry).is_err());
        let names: Vec<_> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(names.contains(&"ferry_bus_messages_handled_total".to_string()));
        RelayMetrics::register(&registry).unwrap();
        assert!(RelayMetrics::register(&registry).is_err());
    }
}
