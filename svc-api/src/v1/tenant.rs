//! The caller's tenant (`GET /v1/tenant`) and its agents (`GET /v1/agents`: identifier,
//! connection times, last heartbeat, versions, hub replica).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use ferry_store::agents::{self, Agent};
use ferry_store::tenants::{self, Tenant};

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenant", get(tenant))
        .route("/agents", get(list_agents))
}

/// The tenant the caller's token belongs to.
#[utoipa::path(get, path = "/v1/tenant", tag = "tenant",
    responses((status = 200, description = "The caller's tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn tenant(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Tenant>, ApiError> {
    principal.can_read()?;
    Ok(Json(tenants::get(&state.store, principal.tenant).await?))
}

/// The tenant's agents and their connection state.
#[utoipa::path(get, path = "/v1/agents", tag = "tenant",
    responses((status = 200, description = "The tenant's agents")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn list_agents(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<Agent>>, ApiError> {
    principal.can_read()?;
    Ok(Json(agents::list(&state.store, principal.tenant).await?))
}
