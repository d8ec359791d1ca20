//! OIDC discovery (`/.well-known/openid-configuration`) and the published keys
//! (`/.well-known/jwks.json`), so agents and other services find and verify this issuer with any
//! OIDC library (the agent uses `openidconnect`).
//!
//! Only the client-credentials grant exists. OIDC discovery nevertheless requires an
//! authorization endpoint and its response types; the endpoint exists and refuses every request
//! with `unsupported_response_type`, and no response type is advertised.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Path of the discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the JWK set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Path of the (refusing) authorization endpoint.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";

/// How long clients may cache the JWK set. Short, so a rotation reaches them quickly.
const JWKS_MAX_AGE: &str = "public, max-age=60";

/// The provider metadata this issuer publishes (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    response_types_supported: Vec<String>,
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
    grant_types_supported: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 2],
    claims_supported: [&'static str; 7],
}

impl ProviderMetadata {
    /// The metadata of the issuer at `issuer` (no trailing slash).
    pub fn for_issuer(issuer: &str) -> ProviderMetadata {
        ProviderMetadata {
            issuer: issuer.to_string(),
            authorization_endpoint: format!("{issuer}{AUTHORIZE_PATH}"),
            token_endpoint: format!("{issuer}{TOKEN_PATH}"),
            jwks_uri: format!("{issuer}{JWKS_PATH}"),
            response_types_supported: Vec::new(),
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["ES256"],
            grant_types_supported: ["client_credentials"],
            token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
            claims_supported: ["iss", "sub", "aud", "exp", "iat", "tenant", "roles"],
        }
    }
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<AppState>) -> Json<ProviderMetadata> {
    Json(ProviderMetadata::for_issuer(&state.issuer.issuer))
}

/// `GET /.well-known/jwks.json`: the current key and superseded keys still in retention.
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static(JWKS_MAX_AGE),
        )],
        Json(state.keys.jwks()),
    )
        .into_response()
}

/// `GET /oauth/authorize`: there is no interactive flow; refuse as RFC 6749 §4.1.2.1 says.
pub async fn authorize() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({
            "error": "unsupported_response_type",
            "error_description": "this issuer only supports the client_credentials grant at the token endpoint",
        })),
    )
        .into_response()
}
