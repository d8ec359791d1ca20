//! The caller's tenant (`GET /v1/tenant`) and its agents (`GET /v1/agents`: identifier,
//! connection times, last heartbeat, versions, hub replica, and whether it is connected).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
pub use ferry_api::tenant::AgentStatus;
use ferry_store::agents::{self, Agent};
use ferry_store::tenants::{self, Tenant};

/// How long after its last recorded heartbeat an agent still counts as connected. The hub records
/// a heartbeat every 30 s by default; a hub killed outright records no disconnect, so a row that
/// stopped beating is taken as gone after three missed records.
const STALE_AFTER: chrono::Duration = chrono::Duration::seconds(90);

/// `agent` with whether it counts as connected at `now`.
pub(crate) fn agent_status(agent: Agent, now: chrono::DateTime<chrono::Utc>) -> AgentStatus {
    let connected = agent.is_connected()
        && (agent.last_heartbeat_at).is_some_and(|beat| now - beat < STALE_AFTER);
    AgentStatus { agent, connected }
}

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenant", get(tenant))
        .route("/agents", get(list_agents))
}

/// The tenant the caller's token belongs to.
#[utoipa::path(get, path = "/v1/tenant", tag = "tenant",
    responses((status = 200, description = "The caller's tenant", body = Tenant)))]
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
    responses((status = 200, description = "The tenant's agents", body = Vec<AgentStatus>)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn list_agents(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<AgentStatus>>, ApiError> {
    principal.can_read()?;
    let now = chrono::Utc::now();
    let list = agents::list(&state.store, principal.tenant).await?;
    Ok(Json(
        list.into_iter().map(|a| agent_status(a, now)).collect(),
    ))
}
