//! `GET /v1/whoami`: the caller as the API sees it (tenant, subject, roles), to check a token.

use crate::auth::Principal;
use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use ferry_api::tenant::Whoami;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/whoami", get(whoami))
}

/// The caller: tenant, subject and roles of the bearer token.
#[utoipa::path(get, path = "/v1/whoami", tag = "tenant",
    responses((status = 200, description = "The principal", body = Whoami), (status = 401, description = "No valid token")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, subject = %principal.subject))]
async fn whoami(principal: Principal) -> Json<Whoami> {
    Json(Whoami {
        tenant: principal.tenant,
        subject: principal.subject,
        roles: principal.roles,
        kind: principal.kind,
        email: principal.email,
    })
}
