//! `GET /v1/schema/deploy.json`: the deploy file's JSON Schema, generated from the grammar the
//! parser reads (`ferry_deploy::json_schema`), so editors (the YAML language server) complete
//! and check deploy files. Public: it holds no tenant data, and an editor fetches it without a
//! token. The document only changes with the release, so it is built once and cacheable.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::state::AppState;

/// How long clients and proxies may keep the schema.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// The schema and its entity tag, built once.
struct Document {
    body: String,
    etag: HeaderValue,
}

/// The route.
pub fn router() -> Router<AppState> {
    let body = serde_json::to_string_pretty(&ferry_deploy::json_schema())
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    // A fixed-key hash: every replica of one release gives the same tag.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
        .unwrap_or_else(|_| HeaderValue::from_static("\"schema\""));
    let document = Arc::new(Document { body, etag });
    // Nested under `/v1` by the caller.
    Router::new().route(
        "/schema/deploy.json",
        get(move |headers: HeaderMap| deploy_schema(document.clone(), headers)),
    )
}

/// The deploy file's JSON Schema (draft-07).
#[utoipa::path(get, path = "/v1/schema/deploy.json", tag = "schema",
    security(()),
    responses(
        (status = 200, description = "The deploy file's JSON Schema (draft-07), for editors: \
            `# yaml-language-server: $schema=<api>/v1/schema/deploy.json`. No token needed.",
            content_type = "application/schema+json", body = serde_json::Value),
        (status = 304, description = "Unchanged since the entity tag in If-None-Match")))]
async fn deploy_schema(document: Arc<Document>, headers: HeaderMap) -> Response {
    let cache = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (header::ETAG, document.etag.clone()),
    ];
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || tag.trim() == document.etag);
    if unchanged {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/schema+json"),
        )],
        document.body.clone(),
    )
        .into_response()
}
