//! HTTP request metrics for an axum router: requests by route template, method and status, their
//! latency, and the requests in flight. The route is the router's matched path (`/v1/deployments/{id}`),
//! never the raw path, and `unmatched` for anything no route took, so the label set is bounded by
//! the routes the code declares; unusual methods are counted as `other`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// The `route` label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Latency buckets in seconds, from a cached read to a slow write.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The request metrics of one HTTP server. Cloning shares them.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
}

impl Default for HttpMetrics {
    /// Metrics registered nowhere (tests, the catalog).
    fn default() -> HttpMetrics {
        HttpMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "ferry_http_requests_total",
                    "HTTP requests answered, by route template, method and status code",
                ),
                &["route", "method", "status"],
            )
            .expect("valid metric"),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "ferry_http_request_duration_seconds",
                    "Time from receiving an HTTP request to sending its response head, by route template and method",
                )
                .buckets(BUCKETS.to_vec()),
                &["route", "method"],
            )
            .expect("valid metric"),
            in_flight: IntGauge::new(
                "ferry_http_requests_in_flight",
                "HTTP requests being handled now",
            )
            .expect("valid metric"),
        }
    }
}

impl HttpMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<HttpMetrics> {
        let metrics = HttpMetrics::default();
        super::register_all(registry, metrics.collectors())?;
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.in_flight.clone()),
        ]
    }

    /// Requests counted so far for a route, method and status (tests).
    pub fn requests(&self, route: &str, method: &str, status: u16) -> u64 {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .get()
    }

    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &http::Method, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }
}

/// The axum middleware recording every request: add it with
/// `router.layer(axum::middleware::from_fn_with_state(metrics, ferry_runtime::metrics::http::track))`
/// after the routes, so the matched route is known when it runs.
pub async fn track(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |path| path.as_str().to_string());
    let method = request.method().clone();
    let started = Instant::now();
    metrics.in_flight.inc();
    // Decremented on drop, so a cancelled request (client gone) does not leak.
    let _in_flight = InFlight(&metrics.in_flight);
    let response = next.run(request).await;
    metrics.observe(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The standard methods by name, anything else as `other` (a client chooses the method).
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn counts_by_route_template_and_unmatched() {
        let metrics = HttpMetrics::default();
        let router = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(axum::middleware::from_fn_with_state(metrics.clone(), track));
        for path in ["/items/1", "/items/2", "/nothing/here"] {
            let response = router
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(response.status().as_u16() == 200 || response.status().as_u16() == 404);
        }
        let weird = Request::builder()
            .method("BREW")
            .uri("/items/3")
            .body(Body::empty())
            .unwrap();
        let _ = router.clone().oneshot(weird).await.unwrap();
        assert_eq!(metrics.requests("/items/{id}", "GET", 200), 2);
        assert_eq!(metrics.requests(UNMATCHED, "GET", 404), 1);
        assert_eq!(metrics.requests("/items/{id}", "other", 405), 1);
        assert_eq!(metrics.in_flight.get(), 0);
        let count = metrics
            .duration
            .with_label_values(&["/items/{id}", "GET"])
            .get_sample_count();
        assert_eq!(count, 2);
    }
}
