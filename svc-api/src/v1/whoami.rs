//! `GET /v1/whoami`: the caller as the API sees it (tenant, subject, roles), to check a token.

use crate::auth::Principal;
use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/whoami", get(whoami))
}

#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, subject = %principal.subject))]
async fn whoami(principal: Principal) -> Json<Principal> {
    Json(principal)
}
