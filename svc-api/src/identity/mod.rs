//! Ferry as an OAuth2/OIDC issuer for machine credentials: discovery and keys, the token
//! endpoint, the signing keys and their rotation, secrets handling, and the bootstrap of the
//! first tenant and credential. People sign in with an external OIDC issuer instead
//! ([`oidc`] verifies its tokens, [`people`] maps them to tenant users).

pub mod bootstrap;
pub mod crypto;
pub mod discovery;
pub mod keys;
pub mod oidc;
pub mod people;
pub mod token;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// The issuer's routes (outside `/v1`: their paths are fixed by the OAuth2 and OIDC specs).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            discovery::DISCOVERY_PATH,
            get(discovery::openid_configuration),
        )
        .route(discovery::JWKS_PATH, get(discovery::jwks))
        .route(discovery::AUTHORIZE_PATH, get(discovery::authorize))
        .route(discovery::TOKEN_PATH, post(token::token))
}
