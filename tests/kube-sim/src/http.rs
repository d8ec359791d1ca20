//! The HTTP surface: bearer-token authentication, fault injection, the `/_sim/faults` control
//! endpoint, the `/_sim/audit` write audit, the journal of arrivals, health endpoints, discovery
//! and the resource API, all behind one router.

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
use crate::journal::{self, Event};
use crate::state::SimState;
use crate::{discovery, handlers};

/// The router serving the whole simulator.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    let audit = Arc::new(Audit::default());
    let view = audit.clone();
    Router::new()
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route(
            "/_sim/audit",
            get(move || {
                let view = view.clone();
                async move { axum::Json(view.snapshot()).into_response() }
            }),
        )
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(audit, record_write))
        .layer(middleware::from_fn_with_state(state.clone(), faults::apply))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_arrival,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// Every successful write by a client, per object: how many write requests succeeded and how
/// many of them changed the object (a new `resourceVersion`; a no-op write keeps it), and
/// deletes. Served at `GET /_sim/audit` as `{"<kind>/<namespace>/<name>": {...}}`, so a test or
/// the chaos harness can tell an effect applied twice from a write merely repeated. The
/// controller's own writes (pods, status) are not client writes and are not counted.
#[derive(Default)]
struct Audit {
    objects: std::sync::Mutex<std::collections::BTreeMap<String, Written>>,
}

#[derive(Clone, Default, serde::Serialize)]
struct Written {
    writes: u64,
    changes: u64,
    deletes: u64,
    #[serde(skip)]
    last_version: String,
}

impl Audit {
    fn snapshot(&self) -> std::collections::BTreeMap<String, Written> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn record_write(State(audit): State<Arc<Audit>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let mutating = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !mutating || req.uri().path().starts_with("/_sim/") {
        return next.run(req).await;
    }
    let response = next.run(req).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return ApiError::internal("reading a response for the audit").into_response();
    };
    if let Ok(object) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        let meta = &object["metadata"];
        let key = format!(
            "{}/{}/{}",
            object["kind"].as_str().unwrap_or("?"),
            meta["namespace"].as_str().unwrap_or(""),
            meta["name"].as_str().unwrap_or("?")
        );
        let version = meta["resourceVersion"].as_str().unwrap_or("").to_string();
        // A delete-collection answers with a list: not one object's write.
        if meta["name"].is_string() {
            let mut objects = audit
                .objects
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = objects.entry(key).or_default();
            if method == Method::DELETE {
                entry.deletes += 1;
            } else {
                entry.writes += 1;
                if entry.last_version != version {
                    entry.changes += 1;
                    entry.last_version = version;
                }
            }
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Puts every authenticated API request in the journal as it arrives (when the journal is on).
async fn record_arrival(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if state.journal.enabled() && !path.starts_with("/_sim/") {
        let query = req.uri().query();
        state.journal.record(Event::Request {
            method: req.method().to_string(),
            path: match query {
                Some(q) if !q.is_empty() => format!("{path}?{q}"),
                _ => path.to_string(),
            },
            watch: journal::is_watch(path, query),
        });
    }
    next.run(req).await
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
        ["healthz" | "livez" | "readyz"] => Ok("ok".into_response()),
        ["version"] => Ok(axum::Json(discovery::version()).into_response()),
        ["api"] => Ok(axum::Json(discovery::core_versions(&state.server_address)).into_response()),
        ["apis"] => Ok(axum::Json(discovery::group_list(&state.registry)).into_response()),
        ["apis", group] => discovery::group_doc(&state.registry, group)
            .map(|d| axum::Json(d).into_response())
            .ok_or_else(ApiError::no_such_path),
        ["openapi", "v3"] => Ok(axum::Json(state.openapi().v3_root()).into_response()),
        ["openapi", "v3", rest @ ..] => state
            .openapi()
            .v3
            .get(&rest.join("/"))
            .map(|(_, doc)| axum::Json(doc.clone()).into_response())
            .ok_or_else(ApiError::no_such_path),
        ["openapi", "v2"] => openapi_v2(&state, &headers),
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

/// `/openapi/v2` in JSON. The protobuf form (gnostic's `OpenAPIv2.Document`) is not offered: a
/// client accepting only that gets 406, as from a server that cannot produce it.
fn openapi_v2(state: &SimState, headers: &HeaderMap) -> Result<Response, ApiError> {
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(accept.is_empty() || accept.contains("json") || accept.contains("*/*")) {
        return Err(ApiError::not_acceptable(format!(
            "only application/json is offered for /openapi/v2 (asked for {accept})"
        )));
    }
    Ok(axum::Json(state.openapi().v2.clone()).into_response())
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
