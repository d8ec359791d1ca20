//! The caller's metrics of tunnelled calls: calls by request kind and outcome, their latency to
//! the response head (or the failure), and the attempts sent again after a lost agent or replica.
//! Labels are bounded: two request kinds and the closed set of outcomes in [`outcome`].

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::call::RequestKind;
use crate::error::TunnelError;

/// Seconds; a call through the hub takes milliseconds, a deadline up to a minute.
const BUCKETS: &[f64] = &[
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The `outcome` of a call: `ok` when the response head arrived, otherwise the failure's kind.
pub fn outcome(result: Result<(), &TunnelError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(error) => match error {
            TunnelError::AgentNotConnected { .. } => "not_connected",
            TunnelError::Timeout(_) => "timeout",
            TunnelError::AgentDisconnected(_) => "disconnected",
            TunnelError::Remote { .. } => "remote_error",
            TunnelError::Refused(_) => "refused",
            TunnelError::InvalidRequest(_) | TunnelError::Body(_) => "invalid",
            TunnelError::Protocol(_) => "protocol",
            TunnelError::Closed | TunnelError::Amqp(_) => "bus_error",
            TunnelError::Redis(_) => "redis_error",
        },
    }
}

fn kind_label(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Kubernetes => "kubernetes",
        RequestKind::Http => "http",
    }
}

/// The metrics; hand them to a tunnel with [`crate::AgentTunnel::with_metrics`]. Cloning shares
/// them.
#[derive(Clone, Debug)]
pub struct TunnelMetrics {
    calls: IntCounterVec,
    duration: HistogramVec,
    retries: IntCounterVec,
}

impl Default for TunnelMetrics {
    /// Metrics registered nowhere (tests, the catalog).
    fn default() -> TunnelMetrics {
        TunnelMetrics {
            calls: IntCounterVec::new(
                Opts::new(
                    "ferry_tunnel_calls_total",
                    "Calls to agents through the hub, by request kind (kubernetes, http) and outcome (ok, not_connected, timeout, disconnected, remote_error, refused, invalid, protocol, bus_error, redis_error)",
                ),
                &["kind", "outcome"],
            )
            .expect("valid metric"),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "ferry_tunnel_call_duration_seconds",
                    "Time from sending a call through the hub to its response head or its failure, retries included, by request kind and outcome",
                )
                .buckets(BUCKETS.to_vec()),
                &["kind", "outcome"],
            )
            .expect("valid metric"),
            retries: IntCounterVec::new(
                Opts::new(
                    "ferry_tunnel_retries_total",
                    "Call attempts sent again after the agent's replica or stream was lost, by request kind",
                ),
                &["kind"],
            )
            .expect("valid metric"),
        }
    }
}

impl TunnelMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<TunnelMetrics> {
        let metrics = TunnelMetrics::default();
        for collector in metrics.collectors() {
            registry.register(collector)?;
        }
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.calls.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.retries.clone()),
        ]
    }

    /// Calls counted so far with `kind` (`kubernetes`, `http`) and `outcome`.
    pub fn calls(&self, kind: &str, outcome: &str) -> u64 {
        self.calls.with_label_values(&[kind, outcome]).get()
    }

    /// Calls timed so far with `kind` and `outcome`.
    pub fn timed(&self, kind: &str, outcome: &str) -> u64 {
        self.duration
            .with_label_values(&[kind, outcome])
            .get_sample_count()
    }

    pub(crate) fn record(&self, kind: RequestKind, outcome: &str, seconds: f64) {
        let kind = kind_label(kind);
        self.calls.with_label_values(&[kind, outcome]).inc();
        self.duration
            .with_label_values(&[kind, outcome])
            .observe(seconds);
    }

    pub(crate) fn retried(&self, kind: RequestKind) {
        self.retries.with_label_values(&[kind_label(kind)]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_metrics_are_documented() {
        let path = ferry_runtime::metrics::document_path(env!("CARGO_MANIFEST_DIR"), 2);
        let collectors = TunnelMetrics::default().collectors();
        if let Err(e) = ferry_runtime::metrics::check_documented(&path, "ferry-tunnel", &collectors)
        {
            panic!("{e}");
        }
    }

    #[test]
    fn outcomes_name_every_error() {
        assert_eq!(outcome(Ok(())), "ok");
        assert_eq!(
            outcome(Err(&TunnelError::Timeout(std::time::Duration::ZERO))),
            "timeout"
        );
        assert_eq!(outcome(Err(&TunnelError::Closed)), "bus_error");
    }
}
