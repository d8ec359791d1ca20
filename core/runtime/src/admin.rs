//! The admin server every Ferry process runs on its admin port: `/healthz` (the process is alive),
//! `/readyz` (it may take work: every dependency answered just now and it is not draining) and
//! `/metrics` (Prometheus text format from the registry built in `main`, after the process's
//! [`ScrapeHook`]s refreshed the gauges they own).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::{BoxFuture, join_all};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the scrape hooks together may take before `/metrics` answers with what it has.
const SCRAPE_HOOK_TIMEOUT: Duration = Duration::from_secs(3);

/// Something that refreshes gauges of its own just before `/metrics` is gathered (e.g. counts
/// read from Postgres). It should bound its own cost (cache for a few seconds, a statement
/// timeout): every scrape of every Prometheus calls it.
pub trait ScrapeHook: Send + Sync + 'static {
    /// Updates the gauges; failures are the hook's to log and count (the scrape goes on with the
    /// values it last had).
    fn refresh(&self) -> BoxFuture<'_, ()>;
}

/// Everything the admin server serves: health, the registry, and the hooks run before a scrape.
#[derive(Clone)]
pub struct Admin {
    /// Liveness and readiness.
    pub health: Health,
    /// The process's metrics.
    pub registry: Registry,
    /// Run before every `/metrics` gather, concurrently, within a deadline.
    pub scrape_hooks: Vec<Arc<dyn ScrapeHook>>,
}

impl Admin {
    /// An admin server with no scrape hooks.
    pub fn new(health: Health, registry: Registry) -> Admin {
        Admin {
            health,
            registry,
            scrape_hooks: Vec::new(),
        }
    }

    /// Adds a hook run before every scrape.
    pub fn with_scrape_hook(mut self, hook: Arc<dyn ScrapeHook>) -> Admin {
        self.scrape_hooks.push(hook);
        self
    }

    /// The admin routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(AdminState {
                health: self.health,
                registry: self.registry,
                hooks: Arc::new(self.scrape_hooks),
            })
    }
}

/// One dependency a process needs in order to be ready.
pub trait ReadinessCheck: Send + Sync + 'static {
    /// Short name shown in `/readyz` output, e.g. `postgres`.
    fn name(&self) -> &'static str;
    /// Touches the dependency; `Err` carries a reason fit for an operator.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// Liveness and readiness state shared between the admin server and the service.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Default)]
struct HealthInner {
    draining: AtomicBool,
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Health {
    /// Health with the given readiness checks.
    pub fn new(checks: Vec<Arc<dyn ReadinessCheck>>) -> Health {
        Health {
            inner: Arc::new(HealthInner {
                draining: AtomicBool::new(false),
                checks,
            }),
        }
    }

    /// Marks the process as draining: `/readyz` answers 503 from now on, so load balancers stop
    /// sending it work while it finishes what it has.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Runs every check concurrently and reports each one's outcome.
    pub async fn readiness(&self) -> Readiness {
        let draining = self.inner.draining.load(Ordering::SeqCst);
        let results = join_all(self.inner.checks.iter().map(|c| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, c.check()).await {
                Ok(Ok(())) => "ok".to_string(),
                Ok(Err(reason)) => reason,
                Err(_) => format!("no answer within {}s", CHECK_TIMEOUT.as_secs()),
            };
            (c.name(), outcome)
        }))
        .await;
        let ready = !draining && results.iter().all(|(_, o)| o == "ok");
        Readiness {
            status: if ready {
                "ready"
            } else if draining {
                "draining"
            } else {
                "not ready"
            },
            checks: results.into_iter().collect(),
        }
    }
}

/// The body of `/readyz`.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// `ready`, `not ready` or `draining`.
    pub status: &'static str,
    /// Each check's outcome: `ok` or the reason it failed.
    pub checks: BTreeMap<&'static str, String>,
}

impl Readiness {
    /// Whether the process may take work.
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

#[derive(Clone)]
struct AdminState {
    health: Health,
    registry: Registry,
    hooks: Arc<Vec<Arc<dyn ScrapeHook>>>,
}

/// A registry with the process collector (CPU, resident memory, open files) already in it.
pub fn new_registry() -> Registry {
    let registry = Registry::new();
    let process = prometheus::process_collector::ProcessCollector::for_self();
    // Registration fails only for a duplicate collector, which a fresh registry cannot have.
    let _ = registry.register(Box::new(process));
    registry
}

/// The admin routes, for serving or for testing with `oneshot`.
pub fn router(health: Health, registry: Registry) -> Router {
    Admin::new(health, registry).router()
}

/// Serves the admin routes on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    registry: Registry,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_admin(listener, Admin::new(health, registry), shutdown).await
}

/// Serves `admin` on `listener` until `shutdown` fires.
pub async fn serve_admin(
    listener: TcpListener,
    admin: Admin,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin server listening");
    }
    axum::serve(listener, admin.router())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let readiness = state.health.readiness().await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let refresh = join_all(state.hooks.iter().map(|hook| hook.refresh()));
    if tokio::time::timeout(SCRAPE_HOOK_TIMEOUT, refresh)
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_secs = SCRAPE_HOOK_TIMEOUT.as_secs(),
            "scrape hooks did not finish in time; serving the gauges they last set"
        );
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&state.registry.gather(), &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    struct Fixed(&'static str, Result<(), String>);
    impl ReadinessCheck for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn check(&self) -> BoxFuture<'_, Result<(), String>> {
            let r = self.1.clone();
            Box::pin(async move { r })
        }
    }

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let resp = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_reports_each_check_and_draining() {
        let ok = Health::new(vec![Arc::new(Fixed("postgres", Ok(())))]);
        let (status, body) = get(router(ok.clone(), new_registry()), "/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains(r#""postgres":"ok""#), "{body}");

        ok.set_draining();
        let (status, body) = get(router(ok, new_registry()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("draining"), "{body}");

        let failing = Health::new(vec![
            Arc::new(Fixed("postgres", Ok(()))),
            Arc::new(Fixed("rabbitmq", Err("connection refused".into()))),
        ]);
        let (status, body) = get(router(failing, new_registry()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains(r#""rabbitmq":"connection refused""#),
            "{body}"
        );
    }

    #[tokio::test]
    async fn metrics_and_healthz_answer() {
        let registry = new_registry();
        let counter = prometheus::IntCounter::new("ferry_test_total", "a test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let (status, body) = get(router(Health::default(), registry.clone()), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("ferry_test_total 1"), "{body}");
        assert!(body.contains("process_resident_memory_bytes"), "{body}");
        let (status, body) = get(router(Health::default(), registry), "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    }

    struct Counting(prometheus::IntGauge);
    impl ScrapeHook for Counting {
        fn refresh(&self) -> BoxFuture<'_, ()> {
            Box::pin(async move { self.0.inc() })
        }
    }

    #[tokio::test]
    async fn scrape_hooks_run_before_every_gather() {
        let registry = new_registry();
        let gauge = prometheus::IntGauge::new("ferry_test_refreshes", "refreshes").unwrap();
        registry.register(Box::new(gauge.clone())).unwrap();
        let admin = Admin::new(Health::default(), registry)
            .with_scrape_hook(Arc::new(Counting(gauge.clone())));
        let (_, body) = get(admin.clone().router(), "/metrics").await;
        assert!(body.contains("ferry_test_refreshes 1"), "{body}");
        let (_, body) = get(admin.router(), "/metrics").await;
        assert!(body.contains("ferry_test_refreshes 2"), "{body}");
    }
}
