//! Metric providers used by canary analysis: kind (prometheus, datadog, newrelic), base URL,
//! credentials as references to the tenant's secrets by name (the values stay sealed), and the
//! agent to reach a private provider through. Reading needs a read role; changing them is for
//! tenant administrators.

use super::audit;
use super::secrets::valid_secret_name;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
pub use ferry_api::analysis::{MetricProvider, PutProvider};
use ferry_store::StoreError;
use ferry_store::metric_providers::{self, ProviderKind, ProviderSettings};
use ferry_store::secrets;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/metric-providers", get(list)).route(
        "/metric-providers/{name}",
        get(read).put(put_provider).delete(remove),
    )
}

/// The tenant's metric providers.
#[utoipa::path(get, path = "/v1/metric-providers", tag = "metric-providers",
    responses((status = 200, description = "The providers, by name", body = Vec<MetricProvider>)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<MetricProvider>>, ApiError> {
    principal.can_read()?;
    let providers = metric_providers::list(&state.store, principal.tenant).await?;
    Ok(Json(
        providers.into_iter().map(MetricProvider::from).collect(),
    ))
}

/// One metric provider.
#[utoipa::path(get, path = "/v1/metric-providers/{name}", tag = "metric-providers",
    params(("name" = String, Path, description = "Provider name")),
    responses((status = 200, description = "The provider", body = MetricProvider), (status = 404, description = "No such provider")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn read(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<MetricProvider>, ApiError> {
    principal.can_read()?;
    let provider = metric_providers::get(&state.store, principal.tenant, &name).await?;
    Ok(Json(provider.into()))
}

/// Creates or replaces a metric provider.
#[utoipa::path(put, path = "/v1/metric-providers/{name}", tag = "metric-providers",
    params(("name" = String, Path, description = "Provider name")), request_body = PutProvider,
    responses((status = 200, description = "The provider", body = MetricProvider), (status = 400, description = "Unknown kind, bad URL, or a secret that does not exist")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn put_provider(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<PutProvider>,
) -> Result<Json<MetricProvider>, ApiError> {
    principal.can_admin()?;
    if name.is_empty() || !ferry_deploy::is_dns_label(&name) {
        return Err(ApiError::BadRequest(format!(
            "provider name {name:?} must be a DNS label (a-z, 0-9, '-')"
        )));
    }
    let kind: ProviderKind = request
        .kind
        .parse()
        .map_err(|e: ferry_store::UnknownValue| ApiError::BadRequest(e.to_string()))?;
    let url = request.base_url.trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if !host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace)) {
        return Err(ApiError::BadRequest(format!(
            "baseUrl {:?} must be an absolute http:// or https:// URL",
            request.base_url
        )));
    }
    let known: Vec<String> = secrets::list(&state.store, principal.tenant)
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    for secret in request.secret_refs.values() {
        valid_secret_name(secret)?;
        if !known.contains(secret) {
            return Err(ApiError::BadRequest(format!(
                "secret {secret:?} does not exist; create it with PUT /v1/secrets/{secret}"
            )));
        }
    }
    let settings = ProviderSettings {
        name: name.clone(),
        kind,
        base_url: url.to_string(),
        secret_refs: request.secret_refs,
        agent: request.agent,
    };
    let mut tx = state.store.begin().await?;
    let provider = metric_providers::put(&mut tx, principal.tenant, &settings).await?;
    audit(
        &mut tx,
        &principal,
        "metric_provider.put",
        "metric_provider",
        name,
        serde_json::json!({ "kind": provider.kind, "baseUrl": provider.base_url }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(provider.into()))
}

/// Deletes a metric provider.
#[utoipa::path(delete, path = "/v1/metric-providers/{name}", tag = "metric-providers",
    params(("name" = String, Path, description = "Provider name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such provider")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    principal.can_admin()?;
    let mut tx = state.store.begin().await?;
    metric_providers::delete(&mut tx, principal.tenant, &name).await?;
    audit(
        &mut tx,
        &principal,
        "metric_provider.delete",
        "metric_provider",
        name,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
