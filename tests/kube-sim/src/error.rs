//! Errors: `ApiError` is what a request fails with (rendered as a Kubernetes `Status` object, so
//! kube-rs maps it to `kube::Error::Api` and kubectl prints it), `SimError` is what starting the
//! simulator fails with.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A failed API request, carried to the client as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    /// HTTP status code, also written into `Status.code`.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message, printed by kubectl.
    pub message: String,
    /// Optional `Status.details` (name, kind, causes).
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// `404 NotFound` for a named object of a resource, worded as the real API server does.
    pub(crate) fn not_found(resource: &str, group: &str, name: &str) -> ApiError {
        let gr = qualified(resource, group);
        ApiError::new(404, "NotFound", format!("{gr} \"{name}\" not found"))
            .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    /// `404 NotFound` for a path that names no served resource or discovery document.
    pub(crate) fn no_such_path() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// `409 AlreadyExists` on create.
    pub(crate) fn already_exists(resource: &str, group: &str, name: &str) -> ApiError {
        let gr = qualified(resource, group);
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    /// `409 Conflict` for a stale `resourceVersion` or an apply conflict.
    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "Conflict", message)
    }

    /// `422 Invalid` for an object that fails validation.
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "Invalid", message)
    }

    /// `400 BadRequest` for a malformed request.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// `405 MethodNotAllowed` for a verb the resource does not support.
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    /// `415 UnsupportedMediaType`, e.g. strategic merge patch on a custom resource.
    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    /// `406 NotAcceptable`: no representation the client accepts.
    pub(crate) fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::new(406, "NotAcceptable", message)
    }

    /// `401 Unauthorized` for a missing or wrong bearer token.
    pub(crate) fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// `500 InternalError`, used by the error-rate fault switch.
    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// `410 Expired`: a watch or list from a resourceVersion older than the kept history.
    pub(crate) fn gone(rv: u64) -> ApiError {
        ApiError::new(410, "Expired", format!("too old resource version: {rv}"))
    }

    /// Attaches `Status.details`.
    pub(crate) fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// The `Status` object for this error.
    pub(crate) fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.status())).into_response()
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding the listener or writing the kubeconfig failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Generating the CA or server certificate failed.
    #[error("certificate generation: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Building the TLS server configuration failed.
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The written kubeconfig could not be turned into a kube-rs client.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// kube-rs could not build a client.
    #[error("kube client: {0}")]
    Client(#[from] kube::Error),
}
