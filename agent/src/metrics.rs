//! The agent's Prometheus metrics, registered into the registry handed down from `main`. Labels
//! are of bounded cardinality: request kind, outcome; never a path or a request id.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, exponential_buckets,
};

/// Outcome label values of `ferry_agent_requests_total`.
pub mod outcome {
    /// The target answered (any status) and the whole body was relayed.
    pub const OK: &str = "ok";
    /// The target could not be reached or failed mid-body.
    pub const UNREACHABLE: &str = "unreachable";
    /// The request was malformed or of a kind this agent does not relay.
    pub const INVALID: &str = "invalid";
    /// The deadline passed first.
    pub const DEADLINE: &str = "deadline_exceeded";
    /// The hub cancelled it, or its stream ended.
    pub const CANCELLED: &str = "cancelled";
    /// Refused because too many requests were waiting, or the agent is shutting down.
    pub const REJECTED: &str = "rejected";
}

/// Every metric the agent records.
#[derive(Clone)]
pub struct Metrics {
    /// Requests by kind (`kubernetes`, `http`) and outcome.
    pub requests: IntCounterVec,
    /// How long requests took, by kind, from arrival to the last part sent.
    pub request_seconds: HistogramVec,
    /// Requests executing now.
    pub in_flight: IntGauge,
    /// Requests waiting for an execution slot.
    pub queued: IntGauge,
    /// Response body bytes relayed, by kind.
    pub response_bytes: IntCounterVec,
    /// Attempts to open a hub stream, by outcome (`connected`, `refused`, `failed`).
    pub connects: IntCounterVec,
    /// 1 while a hub stream is open.
    pub connected: IntGauge,
    /// Token acquisitions, by outcome (`ok`, `failed`).
    pub token_renewals: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Metrics, prometheus::Error> {
        let metrics = Metrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "ferry_agent_requests_total",
                    "Relayed requests by kind and outcome",
                ),
                &["kind", "outcome"],
            )?,
            request_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "ferry_agent_request_duration_seconds",
                    "Time from a request's arrival to its last response part",
                )
                .buckets(exponential_buckets(0.005, 2.0, 14)?),
                &["kind"],
            )?,
            in_flight: IntGauge::new("ferry_agent_requests_in_flight", "Requests executing now")?,
            queued: IntGauge::new(
                "ferry_agent_requests_queued",
                "Requests waiting for an execution slot",
            )?,
            response_bytes: IntCounterVec::new(
                Opts::new(
                    "ferry_agent_response_bytes_total",
                    "Response body bytes relayed to the hub",
                ),
                &["kind"],
            )?,
            connects: IntCounterVec::new(
                Opts::new(
                    "ferry_agent_hub_connects_total",
                    "Attempts to open a hub stream, by outcome",
                ),
                &["outcome"],
            )?,
            connected: IntGauge::new(
                "ferry_agent_hub_connected",
                "1 while a stream to the hub is open",
            )?,
            token_renewals: IntCounterVec::new(
                Opts::new(
                    "ferry_agent_token_renewals_total",
                    "Bearer token acquisitions, by outcome",
                ),
                &["outcome"],
            )?,
        };
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.request_seconds.clone()))?;
        registry.register(Box::new(metrics.in_flight.clone()))?;
        registry.register(Box::new(metrics.queued.clone()))?;
        registry.register(Box::new(metrics.response_bytes.clone()))?;
        registry.register(Box::new(metrics.connects.clone()))?;
        registry.register(Box::new(metrics.connected.clone()))?;
        registry.register(Box::new(metrics.token_renewals.clone()))?;
        Ok(metrics)
    }

    /// Counts one finished request.
    pub fn finished(&self, kind: &str, outcome: &str, seconds: f64) {
        self.requests.with_label_values(&[kind, outcome]).inc();
        self.request_seconds
            .with_label_values(&[kind])
            .observe(seconds);
    }
}
