//! Fault switches for tests: added latency, a rate of `500 InternalError` responses and a rate
//! of dropped connections. Set at start (flags, `SimConfig::faults`) and at run time
//! (`PUT /_sim/faults`, `RunningSim::set_faults`). The `/_sim/` endpoints themselves are never
//! faulted, so a test can always turn faults off again.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::SimState;

/// The fault switches. All zero means no faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Faults {
    /// Delay added before every API request is handled, in milliseconds.
    pub latency_ms: u64,
    /// Fraction (0.0 to 1.0) of API requests answered with `500 InternalError`.
    pub error_rate: f64,
    /// Fraction (0.0 to 1.0) of API requests whose connection is dropped without a complete
    /// response.
    pub drop_rate: f64,
}

impl Faults {
    /// Rejects rates outside 0.0..=1.0.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [("errorRate", self.error_rate), ("dropRate", self.drop_rate)] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0.0 and 1.0, got {rate}"));
            }
        }
        Ok(())
    }
}

/// Middleware applying the current faults to every request outside `/_sim/`.
pub(crate) async fn apply(
    State(state): State<Arc<SimState>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/_sim/") {
        return next.run(req).await;
    }
    let faults = state.faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let (fail, drop) = {
        let mut rng = rand::rng();
        (
            rng.random_bool(faults.error_rate.clamp(0.0, 1.0)),
            rng.random_bool(faults.drop_rate.clamp(0.0, 1.0)),
        )
    };
    if drop {
        // A body that fails makes hyper abort the connection mid-response: the client sees a
        // dropped connection, not an HTTP error.
        let failing = futures::stream::once(async {
            Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other(
                "fault: dropped connection",
            ))
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(failing))
            .unwrap_or_else(|_| ApiError::internal("fault").into_response());
    }
    if fail {
        return ApiError::internal("kube-sim fault injection: simulated internal error")
            .into_response();
    }
    next.run(req).await
}
