//! Machine credentials of the tenant: create one (its secret is shown once, in the response,
//! and only its argon2 hash is stored), list them, revoke one. Tenant administrators only.

use super::audit;
use crate::auth::{Principal, roles as names};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::crypto::{CryptoError, generate_client_id, generate_secret, hash_secret};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
pub use ferry_api::credentials::{CreateCredential, CreatedCredential, Credential};
use ferry_store::StoreError;
use ferry_store::credentials::{self, NewCredential};
use uuid::Uuid;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/credentials", post(create).get(list))
        .route("/credentials/{id}", delete(revoke))
}

/// Creates a credential and shows its secret once.
#[utoipa::path(post, path = "/v1/credentials", tag = "credentials", request_body = CreateCredential,
    responses((status = 201, description = "The credential with its secret", body = CreatedCredential),
        (status = 404, description = "A role does not exist"), (status = 409, description = "The name is taken")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<CreateCredential>,
) -> Result<Response, ApiError> {
    principal.can_admin()?;
    if request.name.trim().is_empty() || request.name.len() > 100 {
        return Err(ApiError::BadRequest(
            "a credential name is 1 to 100 characters".into(),
        ));
    }
    if request.roles.iter().any(|r| r == names::ORGANIZATION_ADMIN)
        && !principal.has_role(names::ORGANIZATION_ADMIN)
    {
        return Err(ApiError::Forbidden(vec![names::ORGANIZATION_ADMIN.into()]));
    }
    let secret = generate_secret();
    let to_hash = secret.clone();
    // argon2 is deliberately slow: keep it off the async workers.
    let secret_hash = tokio::task::spawn_blocking(move || hash_secret(&to_hash))
        .await
        .map_err(|_| CryptoError::Seal)??;
    let mut tx = state.store.begin().await?;
    let credential = credentials::create(
        &mut tx,
        principal.tenant,
        &NewCredential {
            name: request.name.clone(),
            client_id: generate_client_id(),
            secret_hash,
            roles: request.roles.clone(),
        },
    )
    .await?;
    audit(
        &mut tx,
        &principal,
        "credential.create",
        "credential",
        credential.id.to_string(),
        serde_json::json!({ "name": credential.name, "roles": credential.roles }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let body = CreatedCredential {
        id: credential.id,
        name: credential.name,
        client_id: credential.client_id,
        client_secret: secret,
        roles: credential.roles,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The tenant's credentials (never their secrets).
#[utoipa::path(get, path = "/v1/credentials", tag = "credentials",
    responses((status = 200, description = "The credentials, without secrets", body = Vec<Credential>)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<Credential>>, ApiError> {
    principal.can_admin()?;
    let listed = credentials::list(&state.store, principal.tenant).await?;
    Ok(Json(listed.into_iter().map(Credential::from).collect()))
}

/// Revokes a credential: no token is issued for it any more, its tokens already issued are
/// refused within seconds (by the API and the agent hub), and its open event and agent streams
/// end. Only an organization admin may revoke an organization admin's credential.
#[utoipa::path(delete, path = "/v1/credentials/{id}", tag = "credentials",
    params(("id" = String, Path, description = "Credential id")),
    responses((status = 200, description = "The revoked credential", body = Credential), (status = 403, description = "The credential holds Organization Admin and the caller does not"), (status = 404, description = "No such credential in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Credential>, ApiError> {
    principal.can_admin()?;
    let member = ferry_store::roles::Principal {
        kind: ferry_store::roles::PrincipalKind::Credential,
        id,
    };
    super::roles::may_change_member(&state, &principal, member).await?;
    let mut tx = state.store.begin().await?;
    let credential = credentials::revoke(&mut tx, principal.tenant, id).await?;
    audit(
        &mut tx,
        &principal,
        "credential.revoke",
        "credential",
        id.to_string(),
        serde_json::json!({ "name": credential.name }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    // This replica refuses its tokens at once; the others within their cache's time to live.
    state.revocations.note_revoked(principal.tenant, id);
    Ok(Json(credential.into()))
}
