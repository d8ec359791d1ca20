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
use chrono::{DateTime, Utc};
use ferry_netguard::Cidr;
use ferry_store::{DeploymentId, StoreError, deployments, webhooks};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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

/// A callback's result.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CallbackResult {
    /// Until when the callback URI works.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was used (by the caller, or closed because the call failed).
    pub used_at: Option<DateTime<Utc>>,
    /// What the caller reported.
    pub success: Option<bool>,
    /// The caller's message (Markdown), as sent.
    pub md_message: Option<String>,
}

/// One webhook call of a deployment.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookRun {
    /// The run id (the `Ferry-Delivery-Id` the receiver saw).
    pub id: Uuid,
    /// The webhook's name in the deploy file.
    pub name: String,
    /// The target whose step or constraint called it.
    pub target: Option<String>,
    /// Which step: `step:<i>`, `before:<i>`, `after:<i>`, `redirect:<i>`, `shutdown:<i>`.
    pub step: String,
    /// `pending` (being sent or retried), `delivered` (answered 2xx, waiting for the
    /// callback), `succeeded` or `failed`.
    pub status: String,
    /// Attempts made, and allowed (`retryCount` + 1).
    pub attempts: i32,
    pub max_attempts: i32,
    /// The last answer's HTTP status.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The outcome, one line.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The callback, when the webhook waits for one.
    pub callback: Option<CallbackResult>,
}

/// `GET /v1/deployments/{id}/webhooks`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookRuns {
    pub items: Vec<WebhookRun>,
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
    let items = rows
        .into_iter()
        .map(|r| WebhookRun {
            id: r.id,
            name: r.name,
            target: r.target_name,
            step: r.step_key,
            status: r.status.to_string(),
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            last_status: r.last_status,
            last_error: r.last_error,
            reason: r.reason,
            created_at: r.created_at,
            completed_at: r.completed_at,
            callback: r.has_callback.then(|| CallbackResult {
                expires_at: r.callback_expires_at,
                used_at: r.callback_used_at,
                success: r.callback_succeeded,
                md_message: r
                    .callback_details
                    .as_ref()
                    .and_then(|d| d.0.get("mdMessage"))
                    .and_then(|m| m.as_str())
                    .map(str::to_string),
            }),
        })
        .collect();
    Ok(Json(WebhookRuns { items }))
}

/// The tenant's network settings.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// Networks (CIDR, or one address) direct webhooks and notifications may reach besides
    /// public addresses, e.g. `10.20.0.0/16`. Everything else non-public (loopback, private,
    /// link-local, cloud metadata, carrier-grade NAT, benchmarking, reserved, multicast) is
    /// refused. Webhooks through an agent (`remoteNetworkAgent`) are not limited by this.
    pub allowed_networks: Vec<String>,
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
