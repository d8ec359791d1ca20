//! gRPC server metrics as a tower layer for tonic's `Server::builder().layer(...)`: calls started
//! and handled (by method and gRPC status code) and how long each took; for a streaming call that
//! is the stream's lifetime. The method label is bounded by the list of methods the server
//! declares (`unknown` for any other path a client sends); the code is read from the trailers,
//! or from the head of a trailers-only answer, and a call whose response was dropped before its
//! end (the peer went away) counts as `Cancelled`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The `method` label of paths the server does not declare.
pub const UNKNOWN_METHOD: &str = "unknown";

/// Seconds; a unary call takes milliseconds, a stream hours.
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0, 86400.0,
];

/// The gRPC server metrics. Cloning shares them.
#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    started: IntCounterVec,
    handled: IntCounterVec,
    duration: HistogramVec,
}

impl Default for GrpcMetrics {
    /// Metrics registered nowhere (tests, the catalog).
    fn default() -> GrpcMetrics {
        GrpcMetrics {
            started: IntCounterVec::new(
                Opts::new(
                    "ferry_grpc_server_started_total",
                    "gRPC calls started, by method",
                ),
                &["method"],
            )
            .expect("valid metric"),
            handled: IntCounterVec::new(
                Opts::new(
                    "ferry_grpc_server_handled_total",
                    "gRPC calls ended, by method and status code (Cancelled when the peer went away first)",
                ),
                &["method", "code"],
            )
            .expect("valid metric"),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "ferry_grpc_server_handling_seconds",
                    "Time from a gRPC call's start to its end (a stream's lifetime), by method",
                )
                .buckets(BUCKETS.to_vec()),
                &["method"],
            )
            .expect("valid metric"),
        }
    }
}

impl GrpcMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<GrpcMetrics> {
        let metrics = GrpcMetrics::default();
        super::register_all(registry, metrics.collectors())?;
        Ok(metrics)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.started.clone()),
            Box::new(self.handled.clone()),
            Box::new(self.duration.clone()),
        ]
    }

    /// A layer recording the calls of `methods` (full paths, `/package.Service/Method`).
    pub fn layer(&self, methods: &[&str]) -> GrpcMetricsLayer {
        GrpcMetricsLayer {
            metrics: self.clone(),
            methods: Arc::new(
                methods
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect(),
            ),
        }
    }

    /// Calls ended so far with `method` and `code` (tests).
    pub fn handled(&self, method: &str, code: &str) -> u64 {
        self.handled.with_label_values(&[method, code]).get()
    }

    /// Calls started so far with `method` (tests).
    pub fn started(&self, method: &str) -> u64 {
        self.started.with_label_values(&[method]).get()
    }
}

/// The tower layer; see [`GrpcMetrics::layer`].
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    metrics: GrpcMetrics,
    methods: Arc<Vec<String>>,
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> GrpcMetricsService<S> {
        GrpcMetricsService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service the layer wraps around the server's routes.
#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Body + Unpin,
{
    type Response = http::Response<MeteredBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let method: Arc<str> = match self.layer.methods.iter().find(|m| m.as_str() == path) {
            Some(m) => Arc::from(m.as_str()),
            None => Arc::from(UNKNOWN_METHOD),
        };
        let metrics = self.layer.metrics.clone();
        metrics.started.with_label_values(&[&*method]).inc();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut call = Call {
                metrics,
                method,
                started,
                ended: false,
            };
            match future.await {
                Ok(response) => {
                    let head_code = response.headers().get("grpc-status").map(code_name);
                    let (parts, body) = response.into_parts();
                    if head_code.is_some() && body.is_end_stream() {
                        call.end(head_code.unwrap_or("Unknown"));
                    }
                    Ok(http::Response::from_parts(
                        parts,
                        MeteredBody {
                            inner: body,
                            head_code,
                            call,
                        },
                    ))
                }
                Err(error) => {
                    call.end("Internal");
                    Err(error)
                }
            }
        })
    }
}

/// One call being measured; recorded once, at its end or when dropped.
#[derive(Debug)]
struct Call {
    metrics: GrpcMetrics,
    method: Arc<str>,
    started: Instant,
    ended: bool,
}

impl Call {
    fn end(&mut self, code: &str) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.metrics
            .handled
            .with_label_values(&[&*self.method, code])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[&*self.method])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.end("Cancelled");
    }
}

/// A response body that records its call when its trailers (or its end) arrive.
#[derive(Debug)]
pub struct MeteredBody<B> {
    inner: B,
    head_code: Option<&'static str>,
    call: Call,
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        // A trailers-only answer nobody read to its end still ended with the code in its head.
        if let Some(code) = self.head_code {
            self.call.end(code);
        }
    }
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers
                        .get("grpc-status")
                        .map(code_name)
                        .or(this.head_code)
                        .unwrap_or("Unknown");
                    this.call.end(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.call.end("Internal"),
            Poll::Ready(None) => {
                let code = this.head_code.unwrap_or("Unknown");
                this.call.end(code);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The name of a `grpc-status` value (the codes are a closed set of 17).
fn code_name(value: &http::HeaderValue) -> &'static str {
    match value.to_str().ok().and_then(|v| v.parse::<u8>().ok()) {
        Some(0) => "OK",
        Some(1) => "Cancelled",
        Some(2) => "Unknown",
        Some(3) => "InvalidArgument",
        Some(4) => "DeadlineExceeded",
        Some(5) => "NotFound",
        Some(6) => "AlreadyExists",
        Some(7) => "PermissionDenied",
        Some(8) => "ResourceExhausted",
        Some(9) => "FailedPrecondition",
        Some(10) => "Aborted",
        Some(11) => "OutOfRange",
        Some(12) => "Unimplemented",
        Some(13) => "Internal",
        Some(14) => "Unavailable",
        Some(15) => "DataLoss",
        Some(16) => "Unauthenticated",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody};
    use tower::{Layer, Service, ServiceExt};

    const TUNNEL: &str = "/ferry.agent.v1.AgentHub/Tunnel";

    fn trailers(code: &str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        map.insert("grpc-status", code.parse().unwrap());
        map
    }

    type Frames = Vec<Result<Frame<Bytes>, std::convert::Infallible>>;

    #[tokio::test]
    async fn records_codes_from_trailers_heads_and_drops() {
        let metrics = GrpcMetrics::default();
        let layer = metrics.layer(&[TUNNEL]);
        let service = tower::service_fn(|request: http::Request<()>| async move {
            let frames: Frames = match request.uri().path() {
                // A stream answering OK in its trailers.
                TUNNEL => vec![
                    Ok(Frame::data(Bytes::from_static(b"x"))),
                    Ok(Frame::trailers(trailers("0"))),
                ],
                _ => Vec::new(),
            };
            let mut response = http::Response::new(StreamBody::new(futures::stream::iter(frames)));
            if request.uri().path() != TUNNEL {
                // A trailers-only refusal.
                response
                    .headers_mut()
                    .insert("grpc-status", "16".parse().unwrap());
            }
            Ok::<_, std::convert::Infallible>(response)
        });
        let mut svc = layer.layer(service);
        let ok = svc
            .ready()
            .await
            .unwrap()
            .call(http::Request::get(TUNNEL).body(()).unwrap())
            .await
            .unwrap();
        let _ = ok.into_body().collect().await.unwrap();
        assert_eq!(metrics.handled(TUNNEL, "OK"), 1);

        let refused = svc
            .ready()
            .await
            .unwrap()
            .call(http::Request::get("/evil/path").body(()).unwrap())
            .await
            .unwrap();
        drop(refused);
        assert_eq!(metrics.started(UNKNOWN_METHOD), 1);
        assert_eq!(metrics.handled(UNKNOWN_METHOD, "Unauthenticated"), 1);

        // A stream dropped before its end: the peer went away.
        let unary = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
                b"y",
            ))))
        });
        let gone = layer
            .layer(unary)
            .oneshot(http::Request::get(TUNNEL).body(()).unwrap())
            .await
            .unwrap();
        drop(gone);
        assert_eq!(metrics.handled(TUNNEL, "Cancelled"), 1);
        assert_eq!(metrics.started(TUNNEL), 2);
        let count = metrics
            .duration
            .with_label_values(&[TUNNEL])
            .get_sample_count();
        assert_eq!(count, 2);
    }
}
