//! The hub's Prometheus metrics, registered into the registry handed to [`crate::run`]. The gRPC
//! surface (calls by method and code, stream lifetimes) is measured by
//! [`ferry_runtime::metrics::GrpcMetrics`], registered next to these.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Outcome labels of `ferry_hub_requests_total`.
pub mod outcome {
    /// The agent answered completely.
    pub const OK: &str = "ok";
    /// The agent answered with an error.
    pub const REMOTE_ERROR: &str = "remote_error";
    /// No stream for the agent on this replica (or another session).
    pub const NOT_CONNECTED: &str = "not_connected";
    /// The stream closed mid-request.
    pub const DISCONNECTED: &str = "disconnected";
    /// The deadline passed.
    pub const DEADLINE: &str = "deadline";
    /// The request could not be decoded.
    pub const INVALID: &str = "invalid";
}

/// Every metric the hub records.
#[derive(Clone)]
pub struct Metrics {
    /// Agent streams held by this replica.
    pub connected_agents: IntGauge,
    /// Requests relayed, by outcome.
    pub requests: IntCounterVec,
    /// Time from taking a request off the queue to publishing its last reply.
    pub request_seconds: Histogram,
    /// Streams that ended with an error (transport failure, protocol violation, lost lease).
    pub stream_errors: IntCounter,
    /// Streams refused at authentication or hello.
    pub refused_streams: IntCounter,
    /// Response body bytes buffered in the hub for one request, the largest seen: the memory
    /// bound of relaying a body (chunks in the per-request queue plus the one being published).
    pub max_buffered_response_bytes: IntGauge,
    /// Times the replica queue was declared again after the broker connection was lost.
    pub bus_reconnects: IntCounter,
    /// Agents of replicas found dead (no liveness mark) recorded as disconnected by this replica.
    pub swept_agents: IntCounter,
    /// The maximum behind the gauge, updated atomically (a gauge has no compare-and-set).
    max_buffered: Arc<AtomicI64>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let metrics = Metrics::new()?;
        for collector in metrics.collectors() {
            registry.register(collector)?;
        }
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.connected_agents.clone()),
            Box::new(self.requests.clone()),
            Box::new(self.request_seconds.clone()),
            Box::new(self.stream_errors.clone()),
            Box::new(self.refused_streams.clone()),
            Box::new(self.max_buffered_response_bytes.clone()),
            Box::new(self.bus_reconnects.clone()),
            Box::new(self.swept_agents.clone()),
        ]
    }

    /// The metrics, registered nowhere (tests, the catalog).
    pub fn new() -> prometheus::Result<Metrics> {
        Ok(Metrics {
            connected_agents: IntGauge::new(
                "ferry_hub_connected_agents",
                "Agent streams held by this replica",
            )?,
            requests: IntCounterVec::new(
                Opts::new(
                    "ferry_hub_requests_total",
                    "Requests relayed to agents by outcome",
                ),
                &["outcome"],
            )?,
            request_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "ferry_hub_request_duration_seconds",
                    "Time from dequeuing a request to publishing its last reply",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ]),
            )?,
            stream_errors: IntCounter::new(
                "ferry_hub_stream_errors_total",
                "Agent streams that ended with an error",
            )?,
            refused_streams: IntCounter::new(
                "ferry_hub_refused_streams_total",
                "Agent streams refused at authentication or hello",
            )?,
            max_buffered_response_bytes: IntGauge::new(
                "ferry_hub_max_buffered_response_bytes",
                "Largest number of response body bytes buffered in the hub for one request",
            )?,
            bus_reconnects: IntCounter::new(
                "ferry_hub_bus_reconnects_total",
                "Times the replica queue was declared again after the broker connection was lost",
            )?,
            swept_agents: IntCounter::new(
                "ferry_hub_swept_agents_total",
                "Agents of dead replicas recorded as disconnected by this replica",
            )?,
            max_buffered: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Records that `bytes` were buffered for one request at once, keeping the maximum.
    pub fn observe_buffered(&self, bytes: usize) {
        let bytes = bytes as i64;
        let before = self.max_buffered.fetch_max(bytes, Ordering::SeqCst);
        if bytes > before {
            // Set from the atomic, not from `bytes`: a racing smaller update cannot win.
            self.max_buffered_response_bytes
                .set(self.max_buffered.load(Ordering::SeqCst));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_metrics_are_documented() {
        let path = ferry_runtime::metrics::document_path(env!("CARGO_MANIFEST_DIR"), 1);
        let collectors = Metrics::new().unwrap().collectors();
        if let Err(e) =
            ferry_runtime::metrics::check_documented(&path, "svc-agent-hub", &collectors)
        {
            panic!("{e}");
        }
    }
}
