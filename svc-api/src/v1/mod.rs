//! The versioned REST API under `/v1`: one router per resource, merged here. Every handler
//! takes a [`Principal`](crate::auth::Principal), so nothing under `/v1` is reachable without a
//! valid `ferry-api` token.

pub mod whoami;

use crate::state::AppState;
use axum::Router;

/// All `/v1` routes.
pub fn router() -> Router<AppState> {
    Router::new().nest("/v1", Router::new().merge(whoami::router()))
}
