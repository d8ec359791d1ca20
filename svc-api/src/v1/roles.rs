//! Roles of the tenant: list, create custom roles (e.g. a deploy file's `requiresRoles`),
//! replace a role's grants, and bind or unbind members (machine credentials, users). Tenant
//! administrators only; every change is audited in its transaction.

use super::audit;
use crate::auth::{Principal, roles as names};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
pub use ferry_api::people::{CreateRole, Grants, Member, PrincipalKind, Role};
use ferry_store::StoreError;
use ferry_store::roles;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/roles", get(list).post(create))
        .route("/roles/{name}/grants", put(set_grants))
        .route(
            "/roles/{name}/members",
            post(add_member).delete(remove_member),
        )
}

/// The store's name of who `member` is.
fn as_bound(member: &Member) -> roles::Principal {
    roles::Principal {
        kind: member.kind,
        id: member.id,
    }
}

fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.trim().is_empty()
        && name.len() <= 100
        && name.trim() == name
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "a role name is 1 to 100 printable characters without surrounding spaces".into(),
        ))
    }
}

/// Only an organization administrator may hand out the organization administrator role.
fn may_grant(principal: &Principal, role: &str) -> Result<(), ApiError> {
    if role == names::ORGANIZATION_ADMIN && !principal.has_role(names::ORGANIZATION_ADMIN) {
        return Err(ApiError::Forbidden(vec![names::ORGANIZATION_ADMIN.into()]));
    }
    Ok(())
}

/// Only an organization admin may change a user or credential that holds Organization Admin
/// (give it roles, take them away, revoke it): a tenant admin cannot touch one.
pub(crate) async fn may_change_member(
    state: &AppState,
    principal: &Principal,
    member: roles::Principal,
) -> Result<(), ApiError> {
    if principal.has_role(names::ORGANIZATION_ADMIN) {
        return Ok(());
    }
    let held = roles::roles_of(&state.store, principal.tenant, member).await?;
    if held.iter().any(|r| r.name == names::ORGANIZATION_ADMIN) {
        return Err(ApiError::Forbidden(vec![names::ORGANIZATION_ADMIN.into()]));
    }
    Ok(())
}

/// The tenant's roles with their grants.
#[utoipa::path(get, path = "/v1/roles", tag = "roles",
    responses((status = 200, description = "The tenant's roles", body = Vec<Role>)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<Role>>, ApiError> {
    principal.can_admin()?;
    Ok(Json(roles::list(&state.store, principal.tenant).await?))
}

/// Creates a custom role.
#[utoipa::path(post, path = "/v1/roles", tag = "roles", request_body = CreateRole,
    responses((status = 201, description = "The role", body = Role), (status = 409, description = "The name is taken")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<CreateRole>,
) -> Result<Response, ApiError> {
    principal.can_admin()?;
    valid_name(&request.name)?;
    let mut tx = state.store.begin().await?;
    let role = roles::create(&mut tx, principal.tenant, &request.name, &request.grants).await?;
    audit(
        &mut tx,
        &principal,
        "role.create",
        "role",
        role.name.clone(),
        serde_json::json!({ "grants": role.grants }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((StatusCode::CREATED, Json(role)).into_response())
}

/// Replaces a role's grants.
#[utoipa::path(put, path = "/v1/roles/{name}/grants", tag = "roles", request_body = Grants,
    params(("name" = String, Path, description = "Role name")),
    responses((status = 200, description = "The role", body = Role), (status = 404, description = "No such role")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn set_grants(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<Grants>,
) -> Result<Json<Role>, ApiError> {
    principal.can_admin()?;
    let mut tx = state.store.begin().await?;
    let role = roles::set_grants(&mut tx, principal.tenant, &name, &request.grants).await?;
    audit(
        &mut tx,
        &principal,
        "role.set_grants",
        "role",
        name,
        serde_json::json!({ "grants": role.grants }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(role))
}

/// Gives the role to a user or credential (binding twice is a no-op).
#[utoipa::path(post, path = "/v1/roles/{name}/members", tag = "roles", request_body = Member,
    params(("name" = String, Path, description = "Role name")),
    responses((status = 204, description = "Bound"), (status = 404, description = "No such role or member")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn add_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(member): ApiJson<Member>,
) -> Result<StatusCode, ApiError> {
    change_membership(&state, &principal, name, member, true).await
}

/// Takes the role away from a user or credential.
#[utoipa::path(delete, path = "/v1/roles/{name}/members", tag = "roles", request_body = Member,
    params(("name" = String, Path, description = "Role name")),
    responses((status = 204, description = "Unbound"), (status = 404, description = "The member does not hold the role")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn remove_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(member): ApiJson<Member>,
) -> Result<StatusCode, ApiError> {
    change_membership(&state, &principal, name, member, false).await
}

/// Binds (`bind`) or unbinds a member and audits it, in one transaction, after the caller's
/// right to hand out this role is checked.
async fn change_membership(
    state: &AppState,
    principal: &Principal,
    name: String,
    member: Member,
    bind: bool,
) -> Result<StatusCode, ApiError> {
    principal.can_admin()?;
    may_grant(principal, &name)?;
    may_change_member(state, principal, as_bound(&member)).await?;
    let mut tx = state.store.begin().await?;
    let action = if bind {
        roles::bind(&mut tx, principal.tenant, as_bound(&member), &name).await?;
        "role.bind"
    } else {
        roles::unbind(&mut tx, principal.tenant, as_bound(&member), &name).await?;
        "role.unbind"
    };
    let details = serde_json::json!({ "member": member });
    audit(&mut tx, principal, action, "role", name, details).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
