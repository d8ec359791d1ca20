//! Consumer metrics, registered into the registry the service builds in `main` (never a global).

use prometheus::{IntCounterVec, Opts, Registry};

use crate::error::BusError;

/// Counters of what consumers did with messages, labelled by work queue (service name, not the
/// prefixed queue name) and message kind; both label sets are bounded. Register once per registry
/// and share the clone between a service's consumers.
#[derive(Clone, Debug)]
pub struct ConsumerMetrics {
    pub(crate) handled: IntCounterVec,
    pub(crate) retried: IntCounterVec,
    pub(crate) dead_lettered: IntCounterVec,
}

impl ConsumerMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<ConsumerMetrics, BusError> {
        let handled = IntCounterVec::new(
            Opts::new(
                "ferry_bus_messages_handled_total",
                "Messages whose handler succeeded and which were acknowledged.",
            ),
            &["queue", "kind"],
        )?;
        let retried = IntCounterVec::new(
            Opts::new(
                "ferry_bus_messages_retried_total",
                "Messages whose handler failed with a retryable error and which were scheduled for another attempt.",
            ),
            &["queue", "kind"],
        )?;
        let dead_lettered = IntCounterVec::new(
            Opts::new(
                "ferry_bus_messages_dead_lettered_total",
                "Messages moved to the dead-letter queue, by reason (permanent, retries_exhausted, undecodable).",
            ),
            &["queue", "kind", "reason"],
        )?;
        registry.register(Box::new(handled.clone()))?;
        registry.register(Box::new(retried.clone()))?;
        registry.register(Box::new(dead_lettered.clone()))?;
        Ok(ConsumerMetrics {
            handled,
            retried,
            dead_lettered,
        })
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
    }
}
