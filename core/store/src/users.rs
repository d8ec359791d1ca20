//! Human users of a tenant (identified by email; authentication itself is an OIDC issuer's),
//! their role bindings, and the sign-in lookup from a tenant slug and an email to a membership.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A user of the tenant.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct User {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates a user; an email already used in the tenant is a conflict.
pub async fn create(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
    display_name: &str,
) -> Result<User> {
    sqlx::query_as(
        "INSERT INTO users (tenant_id, id, email, display_name) VALUES ($1, $2, $3, $4)
         RETURNING tenant_id, id, email, display_name, created_at, updated_at",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(display_name)
    .fetch_one(conn)
    .await
    .map_err(write_error("user", "tenant"))
}

/// The user with `id`.
pub async fn get(store: &Store, tenant: TenantId, id: Uuid) -> Result<User> {
    let row = sqlx::query_as(
        "SELECT tenant_id, id, email, display_name, created_at, updated_at
         FROM users WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    found(row, "user")
}

/// The user with `email` (as stored; callers normalise case).
pub async fn get_by_email(store: &Store, tenant: TenantId, email: &str) -> Result<User> {
    let row = sqlx::query_as(
        "SELECT tenant_id, id, email, display_name, created_at, updated_at
         FROM users WHERE tenant_id = $1 AND email = $2",
    )
    .bind(tenant)
    .bind(email)
    .fetch_optional(store.pool())
    .await?;
    found(row, "user")
}

/// All users of the tenant, by email.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<User>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id, email, display_name, created_at, updated_at
         FROM users WHERE tenant_id = $1 ORDER BY email",
    )
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// A user with the names of the roles bound to it in its tenant.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct UserWithRoles {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub user: User,
    /// Role names, sorted.
    pub roles: Vec<String>,
}

/// Who a person is in a tenant: found by [`membership`] when they sign in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub tenant: TenantId,
    pub user: Uuid,
    /// Role names bound to the user, sorted.
    pub roles: Vec<String>,
}

macro_rules! with_roles_select {
    () => {
        "SELECT u.tenant_id, u.id, u.email, u.display_name, u.created_at, u.updated_at,
                COALESCE(array_agg(r.name ORDER BY r.name) FILTER (WHERE r.name IS NOT NULL),
                         '{}') AS roles
         FROM users u
         LEFT JOIN role_bindings b ON b.tenant_id = u.tenant_id AND b.principal_kind = 'user'
                                  AND b.principal_id = u.id
         LEFT JOIN roles r ON r.tenant_id = b.tenant_id AND r.id = b.role_id "
    };
}

/// The user with `email` in the caller's transaction, if any (as stored; callers normalise
/// case).
pub async fn find_by_email(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id, email, display_name, created_at, updated_at
         FROM users WHERE tenant_id = $1 AND email = $2 FOR UPDATE",
    )
    .bind(tenant)
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// All users of the tenant with their roles, by email.
pub async fn list_with_roles(store: &Store, tenant: TenantId) -> Result<Vec<UserWithRoles>> {
    Ok(sqlx::query_as(concat!(
        with_roles_select!(),
        "WHERE u.tenant_id = $1 GROUP BY u.tenant_id, u.id ORDER BY u.email"
    ))
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// The user `id` with its roles, in the caller's transaction.
pub async fn get_with_roles(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<UserWithRoles> {
    let row = sqlx::query_as(concat!(
        with_roles_select!(),
        "WHERE u.tenant_id = $1 AND u.id = $2 GROUP BY u.tenant_id, u.id"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    found(row, "user")
}

/// Makes `roles` exactly the set of roles bound to user `id`. A role name the tenant does not
/// have is `NotFound` naming it, and nothing changes.
pub async fn set_roles(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    roles: &[String],
) -> Result<()> {
    let known: Vec<String> =
        sqlx::query_scalar("SELECT name FROM roles WHERE tenant_id = $1 AND name = ANY($2)")
            .bind(tenant)
            .bind(roles)
            .fetch_all(&mut *conn)
            .await?;
    if let Some(missing) = roles.iter().find(|r| !known.contains(r)) {
        return Err(StoreError::not_found(format!("role {missing:?}")));
    }
    sqlx::query(
        "DELETE FROM role_bindings b USING roles r
         WHERE b.tenant_id = $1 AND r.tenant_id = $1 AND r.id = b.role_id
           AND b.principal_kind = 'user' AND b.principal_id = $2 AND NOT r.name = ANY($3)",
    )
    .bind(tenant)
    .bind(id)
    .bind(roles)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO role_bindings (tenant_id, role_id, principal_kind, principal_id)
         SELECT $1, r.id, 'user', $2 FROM roles r WHERE r.tenant_id = $1 AND r.name = ANY($3)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(id)
    .bind(roles)
    .execute(&mut *conn)
    .await
    .map_err(write_error("role binding", "role"))?;
    Ok(())
}

/// Removes the user with `email` and its role bindings; returns what it was. `NotFound` when
/// the tenant has no such user.
pub async fn remove(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
) -> Result<UserWithRoles> {
    let user = find_by_email(conn, tenant, email)
        .await?
        .ok_or_else(|| StoreError::not_found("user"))?;
    let removed = get_with_roles(conn, tenant, user.id).await?;
    sqlx::query(
        "DELETE FROM role_bindings
         WHERE tenant_id = $1 AND principal_kind = 'user' AND principal_id = $2",
    )
    .bind(tenant)
    .bind(user.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(user.id)
        .execute(&mut *conn)
        .await?;
    Ok(removed)
}

/// The membership of the person with `email` in the tenant with slug `tenant_slug`: `None`
/// when there is no such tenant or no such user in it (callers answer both alike).
pub async fn membership(
    store: &Store,
    tenant_slug: &str,
    email: &str,
) -> Result<Option<Membership>> {
    let row: Option<(TenantId, Uuid, Vec<String>)> = sqlx::query_as(
        "SELECT t.id, u.id,
                COALESCE(array_agg(r.name ORDER BY r.name) FILTER (WHERE r.name IS NOT NULL),
                         '{}')
         FROM tenants t
         JOIN users u ON u.tenant_id = t.id AND u.email = $2
         LEFT JOIN role_bindings b ON b.tenant_id = t.id AND b.principal_kind = 'user'
                                  AND b.principal_id = u.id
         LEFT JOIN roles r ON r.tenant_id = b.tenant_id AND r.id = b.role_id
         WHERE t.slug = $1
         GROUP BY t.id, u.id",
    )
    .bind(tenant_slug)
    .bind(email)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|(tenant, user, roles)| Membership {
        tenant,
        user,
        roles,
    }))
}
