//! What a deployment's webhooks did (each call's attempts, answer, and its callback's result
//! with the Markdown message the caller sent), and the tenant's network settings: which
//! networks besides public addresses its direct webhooks and notifications may reach
//! (`ferry-netguard` refuses loopback, private, link-local, metadata, ... otherwise).

use super::audit;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
pub use ferry_api::webhooks::{CallbackResult, NetworkSettings, WebhookRun, WebhookRuns};
use ferry_netguard::Cidr;
use ferry_store::{DeploymentId, StoreError, deployments, webhooks};

/// Most networks a tenant may allow.
pub const MAX_ALLOWED_NETWORKS: usize = 64;
/// Webhooks listed per deployment at most.
const MAX_LISTED: i64 = 200;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/deployments/{id}/webhooks", get(list))
        .route(
            "/network-settings",
            get(network_settings).put(set_network_settings),
        )
}

/// The webhook calls of a deployment, oldest first, with their callbacks' messages.
#[utoipa::path(get, path = "/v1/deployments/{id}/webhooks", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")),
    responses((status = 200, description = "The deployment's webhook calls", body = WebhookRuns),
        (status = 404, description = "No such deployment in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
) -> Result<Json<WebhookRuns>, ApiError> {
    principal.can_read()?;
    deployments::get(&state.store, principal.tenant, id).await?;
    let rows =
        webhooks::list_for_deployment(&state.store, principal.tenant, id, MAX_LISTED).await?;
    let items = rows.into_iter().map(WebhookRun::from).collect();
    Ok(Json(WebhookRuns { items }))
}

/// The networks the tenant's direct webhooks may reach besides public addresses.
#[utoipa::path(get, path = "/v1/network-settings", tag = "tenant",
    responses((status = 200, description = "The settings", body = NetworkSettings)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn network_settings(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<NetworkSettings>, ApiError> {
    principal.can_read()?;
    let allowed_networks = webhooks::allowed_networks(&state.store, principal.tenant).await?;
    Ok(Json(NetworkSettings { allowed_networks }))
}

/// Replaces the networks the tenant's direct webhooks may reach. Tenant administrators only.
#[utoipa::path(put, path = "/v1/network-settings", tag = "tenant",
    request_body = NetworkSettings,
    responses((status = 200, description = "The new settings", body = NetworkSettings),
        (status = 422, description = "A network that does not parse, or too many")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn set_network_settings(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<NetworkSettings>,
) -> Result<Json<NetworkSettings>, ApiError> {
    principal.can_admin()?;
    if request.allowed_networks.len() > MAX_ALLOWED_NETWORKS {
        return Err(ApiError::Invalid(format!(
            "allowed_networks: at most {MAX_ALLOWED_NETWORKS} networks"
        )));
    }
    let mut networks = Vec::new();
    for (i, text) in request.allowed_networks.iter().enumerate() {
        let cidr: Cidr = text
            .parse()
            .map_err(|e| ApiError::Invalid(format!("allowed_networks[{i}]: {e}")))?;
        networks.push(cidr.to_string());
    }
    networks.sort();
    networks.dedup();
    let mut tx = state.store.begin().await?;
    webhooks::set_allowed_networks(&mut tx, principal.tenant, &networks, &principal.subject)
        .await?;
    audit(
        &mut tx,
        &principal,
        "network_settings.set",
        "network_settings",
        principal.tenant.to_string(),
        serde_json::json!({ "allowed_networks": networks }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(NetworkSettings {
        allowed_networks: networks,
    }))
}
