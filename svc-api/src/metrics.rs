//! svc-api's metrics, registered into the registry the process hands down.

use prometheus::{IntCounterVec, Opts, Registry};

/// Counters of the token endpoint. Labels are bounded: the audience is one of the known ones
/// and the outcome one of a fixed set.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    /// `ferry_api_token_requests_total{outcome}`: token requests by outcome (`issued`,
    /// `invalid_client`, `invalid_request`, `unsupported_grant_type`, `invalid_target`, `error`).
    pub token_requests: IntCounterVec,
    /// `ferry_api_tokens_issued_total{audience}`.
    pub tokens_issued: IntCounterVec,
}

impl ApiMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<ApiMetrics> {
        let token_requests = IntCounterVec::new(
            Opts::new(
                "ferry_api_token_requests_total",
                "Token requests by outcome.",
            ),
            &["outcome"],
        )?;
        let tokens_issued = IntCounterVec::new(
            Opts::new(
                "ferry_api_tokens_issued_total",
                "Tokens issued by audience.",
            ),
            &["audience"],
        )?;
        registry.register(Box::new(token_requests.clone()))?;
        registry.register(Box::new(tokens_issued.clone()))?;
        Ok(ApiMetrics {
            token_requests,
            tokens_issued,
        })
    }
}
