//! People of the tenant: list the users with their roles, invite a person or change their roles
//! (`PUT /v1/users/{email}/roles`), remove one. A user is named by the email its sign-in
//! issuer vouches for; it exists only once invited, and signing in never creates one (see
//! [`identity::people`](crate::identity::people)). Tenant administrators only; only an
//! organization administrator hands out or takes away Organization Admin. Every change is
//! audited in its transaction.

use super::audit;
use crate::auth::{Principal, roles as names};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
pub use ferry_api::people::{SetRoles, UserWithRoles};
use ferry_store::users;
use ferry_store::{StoreError, TenantId};
use sqlx::PgConnection;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list))
        .route("/users/{email}/roles", put(set_roles))
        .route("/users/{email}", delete(remove))
}

/// `email` trimmed and lower-cased, when it looks like an address.
pub(crate) fn normalise_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok {
        Ok(email)
    } else {
        Err(ApiError::BadRequest(format!(
            "{email:?} is not an email address"
        )))
    }
}

/// Only an organization administrator may give or take the organization administrator role, or
/// change (or remove) anything of a user who holds it: a tenant admin cannot touch one.
fn may_change(principal: &Principal, before: &[String], after: &[String]) -> Result<(), ApiError> {
    let org = |roles: &[String]| roles.iter().any(|r| r == names::ORGANIZATION_ADMIN);
    if (org(before) || org(after)) && !principal.has_role(names::ORGANIZATION_ADMIN) {
        return Err(ApiError::Forbidden(vec![names::ORGANIZATION_ADMIN.into()]));
    }
    Ok(())
}

/// Makes `email` a user of `tenant` holding exactly `roles`, creating (inviting) it when
/// missing; `true` when it was created. The caller's transaction, unaudited.
pub(crate) async fn put_user(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
    display_name: &str,
    roles: &[String],
) -> Result<(UserWithRoles, bool), ApiError> {
    let (user, created) = match users::find_by_email(conn, tenant, email).await? {
        Some(user) => (user, false),
        None => (
            users::create(conn, tenant, email, display_name).await?,
            true,
        ),
    };
    users::set_roles(conn, tenant, user.id, roles).await?;
    Ok((users::get_with_roles(conn, tenant, user.id).await?, created))
}

/// The tenant's users with their roles.
#[utoipa::path(get, path = "/v1/users", tag = "users",
    responses((status = 200, description = "The users and their roles", body = Vec<UserWithRoles>)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<UserWithRoles>>, ApiError> {
    principal.can_admin()?;
    Ok(Json(
        users::list_with_roles(&state.store, principal.tenant).await?,
    ))
}

/// Invites a person (creating the user) or replaces a user's roles.
#[utoipa::path(put, path = "/v1/users/{email}/roles", tag = "users", request_body = SetRoles,
    params(("email" = String, Path, description = "The person's email")),
    responses((status = 201, description = "Invited: the new user", body = UserWithRoles), (status = 200, description = "The user with its new roles", body = UserWithRoles),
        (status = 404, description = "A role does not exist")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn set_roles(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(email): ApiPath<String>,
    ApiJson(request): ApiJson<SetRoles>,
) -> Result<Response, ApiError> {
    principal.can_admin()?;
    let email = normalise_email(&email)?;
    let mut roles = request.roles.clone();
    roles.sort();
    roles.dedup();
    let mut tx = state.store.begin().await?;
    let before = match users::find_by_email(&mut tx, principal.tenant, &email).await? {
        Some(user) => {
            users::get_with_roles(&mut tx, principal.tenant, user.id)
                .await?
                .roles
        }
        None => Vec::new(),
    };
    may_change(&principal, &before, &roles)?;
    let display_name = request.display_name.as_deref().unwrap_or("").trim();
    let (user, created) = put_user(&mut tx, principal.tenant, &email, display_name, &roles).await?;
    let action = if created {
        "user.invite"
    } else {
        "user.set_roles"
    };
    let details = serde_json::json!({ "email": email, "roles": user.roles, "previous": before });
    audit(
        &mut tx,
        &principal,
        action,
        "user",
        user.user.id.to_string(),
        details,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(user)).into_response())
}

/// Removes a user and its role bindings; the person can no longer reach the tenant.
#[utoipa::path(delete, path = "/v1/users/{email}", tag = "users",
    params(("email" = String, Path, description = "The person's email")),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such user in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(email): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    principal.can_admin()?;
    let email = normalise_email(&email)?;
    let mut tx = state.store.begin().await?;
    let removed = users::remove(&mut tx, principal.tenant, &email).await?;
    may_change(&principal, &removed.roles, &[])?;
    audit(
        &mut tx,
        &principal,
        "user.remove",
        "user",
        removed.user.id.to_string(),
        serde_json::json!({ "email": email, "roles": removed.roles }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email(" Ada@Example.com ").unwrap(),
            "ada@example.com"
        );
        for bad in ["", "ada", "@example.com", "ada@", "a da@example.com"] {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
    }
}
