//! Ferry as an OAuth2/OIDC issuer for machine credentials: discovery and keys, the token
//! endpoint, the signing keys and their rotation, secrets handling, and the bootstrap of the
//! first tenant and credential. People sign in with an external OIDC issuer ([`oidc`] verifies
//! its tokens, [`people`] maps them to tenant users) or, for the web UI, with a local account
//! through this issuer's authorization-code flow ([`authorize`]), and to the CLI with the device
//! flow ([`device`], [`device_page`]) whose tokens ([`refresh`]) the REST API accepts
//! ([`local_people`]).

pub mod authorize;
pub mod bootstrap;
pub mod crypto;
pub mod device;
pub mod device_page;
pub mod discovery;
pub mod keys;
pub mod local_people;
pub mod local_users;
pub mod oidc;
pub mod people;
pub mod refresh;
pub mod token;
pub mod token_limits;

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
        .route(
            discovery::AUTHORIZE_PATH,
            get(authorize::authorize)
                .post(authorize::sign_in)
                .layer(axum::middleware::from_fn(crate::ui::security_headers)),
        )
        .route(discovery::TOKEN_PATH, post(token::token))
        .route(discovery::SIGN_IN_PATH, get(discovery::sign_in_document))
        .merge(device_router())
}

/// The device flow's and revocation's routes, whose forms are small: 16 KiB at most.
fn device_router() -> Router<AppState> {
    Router::new()
        .route(
            discovery::DEVICE_AUTHORIZATION_PATH,
            post(device::device_authorization),
        )
        .route(discovery::REVOKE_PATH, post(refresh::revoke))
        .route(
            discovery::DEVICE_PAGE_PATH,
            get(device_page::show)
                .post(device_page::submit)
                .layer(axum::middleware::from_fn(crate::ui::security_headers)),
        )
        .layer(axum::extract::DefaultBodyLimit::max(DEVICE_FORM_LIMIT))
}

/// Largest body of the device flow's and revocation's requests.
const DEVICE_FORM_LIMIT: usize = 16 * 1024;
