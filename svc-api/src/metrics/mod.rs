//! svc-api's metrics, registered into the registry the process hands down: the token endpoint's
//! counters (here), HTTP requests by route ([`ferry_runtime::metrics::HttpMetrics`], layered on
//! the router in [`crate::router`]), and deployment gauges read from Postgres when `/metrics` is
//! scraped ([`deployments`]).

pub mod deployments;

use ferry_runtime::metrics::HttpMetrics;
use prometheus::core::Collector;
use prometheus::{IntCounterVec, Opts, Registry};

/// svc-api's metrics. Labels are bounded: the audience is one of the known ones, the outcome one
/// of a fixed set, the route one the router declares.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    /// `ferry_api_token_requests_total{outcome}`: token requests by outcome (`issued`,
    /// `invalid_client`, `invalid_request`, `unsupported_grant_type`, `invalid_target`, `error`).
    pub token_requests: IntCounterVec,
    /// `ferry_api_tokens_issued_total{audience}`.
    pub tokens_issued: IntCounterVec,
    /// Requests by route template, method and status, and their latency.
    pub http: HttpMetrics,
}

impl Default for ApiMetrics {
    /// Metrics registered nowhere (tests, the catalog).
    fn default() -> ApiMetrics {
        ApiMetrics {
            token_requests: IntCounterVec::new(
                Opts::new(
                    "ferry_api_token_requests_total",
                    "Token requests by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            tokens_issued: IntCounterVec::new(
                Opts::new(
                    "ferry_api_tokens_issued_total",
                    "Tokens issued by audience.",
                ),
                &["audience"],
            )
            .expect("valid metric"),
            http: HttpMetrics::default(),
        }
    }
}

impl ApiMetrics {
    /// Creates the metrics (the HTTP ones included) and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<ApiMetrics> {
        let metrics = ApiMetrics::default();
        ferry_runtime::metrics::register_all(registry, metrics.collectors())?;
        ferry_runtime::metrics::register_all(registry, metrics.http.collectors())?;
        Ok(metrics)
    }

    /// The collectors of svc-api's own metrics (not the shared HTTP ones), for registering and
    /// for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.token_requests.clone()),
            Box::new(self.tokens_issued.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn api_metrics_are_documented() {
        let mut collectors = ApiMetrics::default().collectors();
        // Never connects: the gauges are only described.
        let pool = sqlx::PgPool::connect_lazy("postgres://127.0.0.1:1/none").unwrap();
        collectors.extend(deployments::DeploymentGauges::new(pool).collectors());
        let path = ferry_runtime::metrics::document_path(env!("CARGO_MANIFEST_DIR"), 1);
        if let Err(e) = ferry_runtime::metrics::check_documented(&path, "svc-api", &collectors) {
            panic!("{e}");
        }
    }
}
