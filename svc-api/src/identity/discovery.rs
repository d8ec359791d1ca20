//! OIDC discovery (`/.well-known/openid-configuration`) and the published keys
//! (`/.well-known/jwks.json`), so agents and other services find and verify this issuer with any
//! OIDC library (the agent uses `openidconnect`).
//!
//! Machines use the client-credentials grant; people with a local account sign in to the web
//! UI through the authorization-code flow with PKCE ([`super::authorize`]), whose only client
//! is the UI, and to the CLI with the device flow ([`super::device`]). `/.well-known/ferry-sign-in`
//! ([`sign_in_document`]) tells the CLI which issuers people may sign in with.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::device::{CLI_CLIENT_ID, DEVICE_CODE_GRANT};

/// Path of the discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the JWK set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Path of the authorization endpoint (the web UI's sign-in with a local account).
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// Path of the device authorization endpoint (RFC 8628, the CLI's sign-in).
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth/device_authorization";
/// Path of the device flow's verification page.
pub const DEVICE_PAGE_PATH: &str = "/oauth/device";
/// Path of the revocation endpoint (RFC 7009).
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// Path of the document telling the CLI where people sign in.
pub const SIGN_IN_PATH: &str = "/.well-known/ferry-sign-in";

/// How long clients may cache the JWK set. Short, so a rotation reaches them quickly.
const JWKS_MAX_AGE: &str = "public, max-age=60";

/// The provider metadata this issuer publishes (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    device_authorization_endpoint: String,
    revocation_endpoint: String,
    jwks_uri: String,
    response_types_supported: Vec<String>,
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
    grant_types_supported: [&'static str; 4],
    code_challenge_methods_supported: [&'static str; 1],
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
            device_authorization_endpoint: format!("{issuer}{DEVICE_AUTHORIZATION_PATH}"),
            revocation_endpoint: format!("{issuer}{REVOKE_PATH}"),
            jwks_uri: format!("{issuer}{JWKS_PATH}"),
            response_types_supported: vec!["code".into()],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["ES256"],
            grant_types_supported: [
                "client_credentials",
                "authorization_code",
                DEVICE_CODE_GRANT,
                "refresh_token",
            ],
            code_challenge_methods_supported: ["S256"],
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

/// The version of the sign-in document's format.
pub const SIGN_IN_VERSION: u32 = 1;

/// Where people sign in to this API from the CLI (`GET /.well-known/ferry-sign-in`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInDocument {
    version: u32,
    /// The external issuer first when there is one (people's usual identity), then this one.
    issuers: Vec<SignInIssuer>,
}

/// One issuer people may sign in with.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInIssuer {
    issuer: String,
    /// `external` or `local` (svc-api's own, for local accounts).
    kind: &'static str,
    /// The client id the CLI uses there.
    client_id: String,
    /// Which token of the token response the API accepts: `access_token` or `id_token`.
    bearer: &'static str,
}

/// `GET /.well-known/ferry-sign-in`.
pub async fn sign_in_document(State(state): State<AppState>) -> Json<SignInDocument> {
    let mut issuers = Vec::new();
    if let Some(people) = &state.people {
        issuers.push(SignInIssuer {
            issuer: people.issuer().to_string(),
            kind: "external",
            // The API accepts that issuer's tokens for this audience: ID tokens name it.
            client_id: people.config().audience.clone(),
            bearer: "id_token",
        });
    }
    issuers.push(SignInIssuer {
        issuer: state.issuer.issuer.clone(),
        kind: "local",
        client_id: CLI_CLIENT_ID.into(),
        bearer: "access_token",
    });
    Json(SignInDocument {
        version: SIGN_IN_VERSION,
        issuers,
    })
}
