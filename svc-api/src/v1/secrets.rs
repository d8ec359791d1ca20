//! Tenant secrets (`{{secrets.<name>}}` in deploy files, metric-provider credentials): set one
//! (sealed with the master key, AES-256-GCM, bound to tenant and name), list names and dates,
//! delete. A value is never returned. Tenant administrators only.

use super::audit;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
pub use ferry_api::secrets::{SecretInfo, SetSecret};
use ferry_store::secrets;
use ferry_store::{StoreError, TenantId};

/// The key id stored with each secret: which key sealed it (the master key, version 1).
pub const SECRET_KEY_ID: &str = "master-v1";

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list))
        .route("/secrets/{name}", put(set).delete(remove))
}

/// The associated data a secret is sealed with: a sealed value copied to another tenant or
/// name does not open.
pub fn secret_context(tenant: TenantId, name: &str) -> Vec<u8> {
    format!("ferry-secret:{tenant}:{name}").into_bytes()
}

/// Names a deploy file can reference: letters, digits, `_`, `-`, `.`.
pub fn valid_secret_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "a secret name is 1 to 253 of A-Z, a-z, 0-9, '_', '-', '.'".into(),
        ))
    }
}

/// Sets (or replaces) a secret.
#[utoipa::path(put, path = "/v1/secrets/{name}", tag = "secrets", request_body = SetSecret,
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 204, description = "Stored")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, secret = %name))]
async fn set(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<SetSecret>,
) -> Result<StatusCode, ApiError> {
    principal.can_admin()?;
    valid_secret_name(&name)?;
    let sealed = state.master.seal(
        request.value.as_bytes(),
        &secret_context(principal.tenant, &name),
    )?;
    let mut tx = state.store.begin().await?;
    secrets::put(
        &mut tx,
        principal.tenant,
        &name,
        &sealed.ciphertext,
        &sealed.nonce,
        SECRET_KEY_ID,
    )
    .await?;
    audit(
        &mut tx,
        &principal,
        "secret.put",
        "secret",
        name,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's secrets: names and dates only.
#[utoipa::path(get, path = "/v1/secrets", tag = "secrets",
    responses((status = 200, description = "Names and dates", body = Vec<SecretInfo>)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    principal.can_admin()?;
    Ok(Json(secrets::list(&state.store, principal.tenant).await?))
}

/// Deletes a secret.
#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such secret")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, secret = %name))]
async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    principal.can_admin()?;
    let mut tx = state.store.begin().await?;
    secrets::delete(&mut tx, principal.tenant, &name).await?;
    audit(
        &mut tx,
        &principal,
        "secret.delete",
        "secret",
        name,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
