//! The HTTP surface: bearer-token authentication, fault injection, the `/_sim/faults` control
//! endpoint, health endpoints, discovery and the resource API, all behind one router.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::faults::{self, Faults};
use crate::state::SimState;
use crate::{discovery, handlers};

/// The router serving the whole simulator.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(state.clone(), faults::apply))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// Paths anonymous clients may read, as on a real API server.
fn public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
}

async fn authenticate(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", state.token);
    let authorised = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if authorised || !state.require_token || public(req.uri().path()) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

async fn get_faults(State(state): State<Arc<SimState>>) -> Response {
    axum::Json(state.faults()).into_response()
}

async fn put_faults(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return ApiError::bad_request(format!("invalid faults: {e}")).into_response(),
    };
    if let Err(e) = faults.validate() {
        return ApiError::bad_request(e).into_response();
    }
    tracing::info!(?faults, "fault switches changed");
    state.set_faults(faults);
    axum::Json(faults).into_response()
}

async fn dispatch(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match segs.as_slice() {
        ["healthz"] | ["livez"] | ["readyz"] => Ok("ok".into_response()),
        ["version"] => Ok(axum::Json(discovery::version()).into_response()),
        ["api"] => Ok(axum::Json(discovery::core_versions(&state.server_address)).into_response()),
        ["apis"] => Ok(axum::Json(discovery::group_list(&state.registry)).into_response()),
        ["apis", group] => discovery::group_doc(&state.registry, group)
            .map(|d| axum::Json(d).into_response())
            .ok_or_else(ApiError::no_such_path),
        ["api", "v1", rest @ ..] => resource(state, "", "v1", rest, method, q, headers, body).await,
        ["apis", group, version, rest @ ..] => {
            resource(
                state.clone(),
                group,
                version,
                rest,
                method,
                q,
                headers,
                body,
            )
            .await
        }
        _ => Err(ApiError::no_such_path()),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

#[allow(clippy::too_many_arguments)] // the parsed request, passed straight through
async fn resource(
    state: Arc<SimState>,
    group: &str,
    version: &str,
    rest: &[&str],
    method: Method,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    match handlers::parse_target(&state, group, version, rest)? {
        None if method == Method::GET => handlers::group_version_doc(&state, group, version),
        None => Err(ApiError::method_not_allowed(
            "discovery documents are read-only",
        )),
        Some(target) => {
            tracing::debug!(%method, resource = %target.rt.plural, ns = %target.ns, name = ?target.name, "request");
            handlers::serve(state, target, method, q, headers, body).await
        }
    }
}
