//! The API's error type and its wire form, `application/problem+json` (RFC 9457) with a stable
//! `code`, plus the request id every response carries so a 500 can be traced to its log line.
//!
//! Error policy: handlers return [`ApiError`]; a client error is answered as is and not logged
//! above debug; an internal error is logged once, here, with its whole source chain and the
//! request id, and the client sees only "internal error" and that id.

use crate::identity::keys::{KeyError, error_chain};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferry_store::{DeploymentId, StoreError};
use tracing::Instrument;

/// The header carrying the request id, taken from the request when present (a proxy's id) or
/// generated.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT_REQUEST_ID: String;
}

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No usable bearer token: missing, malformed, expired, for another audience or issuer.
    #[error("{0}")]
    Unauthorized(String),
    /// The principal lacks a role the operation needs.
    #[error("this operation needs one of the roles {0:?}")]
    Forbidden(Vec<String>),
    /// The request is malformed or names something invalid.
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request with a value out of its limits (a reason too long).
    #[error("{0}")]
    Invalid(String),
    /// A store operation failed (not found, conflict, or the database itself).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing keys could not be used.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The deploy file (or its manifests) failed validation; every problem is listed.
    #[error("the deploy file has {} error(s)", .0.len())]
    InvalidDeployFile(ferry_deploy::Diagnostics),
    /// The application already has a deployment in flight and the file says `reject`.
    #[error("application busy: deployment {running} is in progress")]
    Busy {
        /// The deployment holding the application's slot.
        running: DeploymentId,
    },
    /// The request does not fit the resource's current state (e.g. acting on an ended
    /// deployment, deciding an approval twice).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than the configured limit.
    #[error("the request body is larger than the server accepts")]
    PayloadTooLarge,
    /// The tenant's request budget is spent; retry after the given number of seconds.
    #[error("too many requests for this tenant; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request will be accepted again.
        retry_after_secs: u64,
    },
    /// An outbox message could not be written.
    #[error(transparent)]
    Bus(#[from] ferry_bus::BusError),
    /// A secret could not be sealed or hashed.
    #[error(transparent)]
    Crypto(#[from] crate::identity::crypto::CryptoError),
    /// Something this request needs outside svc-api (the sign-in issuer) does not answer now;
    /// retrying later may work.
    #[error("{0}")]
    Unavailable(String),
}

pub use ferry_api::problem::Problem;

impl ApiError {
    /// The HTTP status, stable code and title of this error.
    pub fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Permission denied"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request", "Bad request"),
            ApiError::Store(StoreError::NotFound { .. }) => {
                (StatusCode::NOT_FOUND, "not_found", "Not found")
            }
            ApiError::Store(StoreError::Conflict { .. }) | ApiError::Conflict(_) => {
                (StatusCode::CONFLICT, "conflict", "Conflict")
            }
            ApiError::Store(StoreError::Invalid { .. }) | ApiError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                "Invalid value",
            ),
            ApiError::InvalidDeployFile(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_deploy_file",
                "Invalid deploy file",
            ),
            ApiError::Busy { .. } => (
                StatusCode::CONFLICT,
                "deployment_in_progress",
                "Deployment in progress",
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Store(_) | ApiError::Keys(_) | ApiError::Bus(_) | ApiError::Crypto(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.classify();
        let request_id = current_request_id();
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(
                request_id = request_id.as_deref().unwrap_or("-"),
                error = %error_chain(&self),
                "request failed"
            );
            "internal error; the request id identifies it in the server's logs".to_string()
        } else {
            tracing::debug!(code, error = %self, "request refused");
            self.to_string()
        };
        let problem = Problem {
            kind: format!("urn:ferry:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            code: code.into(),
            request_id,
            errors: match &self {
                ApiError::InvalidDeployFile(diagnostics) => Some(diagnostics.items().to_vec()),
                _ => None,
            },
            running: match &self {
                ApiError::Busy { running } => Some(*running),
                _ => None,
            },
        };
        let mut response = problem_response(status, &problem);
        match self {
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ferry\""),
                );
            }
            ApiError::RateLimited { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// A problem document as a response with the right content type.
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        body,
    )
        .into_response()
}

/// The id of the request being handled, when called inside [`request_id`]'s scope.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Middleware: gives every request an id (the caller's `x-request-id` when it is a sane token,
/// else a new UUID), runs the request inside a span and scope carrying it, and echoes it in the
/// response.
pub async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        trace_id = tracing::field::Empty,
    );
    // The caller's W3C trace context, when it sends one: what this request writes to the outbox
    // carries the trace on to every service that acts on it.
    let caller = trace_context(request.headers());
    ferry_runtime::trace::follow(&span, &caller);
    let mut response = CURRENT_REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span)
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// The caller's W3C trace context headers.
fn trace_context(headers: &http::HeaderMap) -> ferry_runtime::trace::TraceContext {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    ferry_runtime::trace::TraceContext::from_fields(
        header(ferry_runtime::trace::TRACEPARENT),
        header(ferry_runtime::trace::TRACESTATE),
    )
}

/// Fallback for unknown paths: a 404 problem.
pub async fn not_found() -> Response {
    ApiError::Store(StoreError::not_found("route")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let error = ApiError::Store(StoreError::Database(sqlx::Error::Protocol(
            "secret internals".into(),
        )));
        let response = CURRENT_REQUEST_ID
            .scope("req-1".into(), async move { error.into_response() })
            .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = body_json(response).await;
        assert_eq!(body["code"], "internal");
        assert_eq!(body["status"], 500);
        assert_eq!(body["request_id"], "req-1");
        assert!(!body.to_string().contains("secret internals"));
    }

    #[tokio::test]
    async fn client_errors_explain_themselves() {
        let response = ApiError::Store(StoreError::conflict("name taken")).into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let body = body_json(response).await;
        assert_eq!(body["code"], "conflict");
        assert_eq!(body["type"], "urn:ferry:problem:conflict");
        assert!(body["detail"].as_str().unwrap().contains("name taken"));

        let response = ApiError::Unauthorized("token expired".into()).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
