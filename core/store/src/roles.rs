//! Roles, the permissions they grant, and which principals (users, machine credentials) hold
//! them. Built-in roles exist in every tenant; custom roles (e.g. "Release Manager", named by a
//! deploy file's `requiresRoles`) are created by tenant admins.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
pub use ferry_api::people::{PrincipalKind, Role};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// The roles every tenant has from creation. What they permit is decided by ferry-auth; they
/// cannot be deleted.
pub const BUILT_IN: [&str; 5] = [
    "Organization Admin",
    "Tenant Admin",
    "Deployer",
    "Viewer",
    "Agent",
];

/// A user or a machine credential of the tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub id: Uuid,
}

macro_rules! role_select {
    () => {
        "SELECT r.tenant_id, r.id, r.name, r.built_in, r.created_at, r.updated_at,
                COALESCE(array_agg(g.permission ORDER BY g.permission)
                         FILTER (WHERE g.permission IS NOT NULL), '{}') AS grants
         FROM roles r
         LEFT JOIN role_grants g ON g.tenant_id = r.tenant_id AND g.role_id = r.id "
    };
}

pub(crate) async fn create_built_in(conn: &mut PgConnection, tenant: TenantId) -> Result<()> {
    for name in BUILT_IN {
        sqlx::query("INSERT INTO roles (tenant_id, id, name, built_in) VALUES ($1, $2, $3, true)")
            .bind(tenant)
            .bind(Uuid::now_v7())
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(write_error("role", "tenant"))?;
    }
    Ok(())
}

/// Creates a custom role with `grants`. A taken name is a conflict.
pub async fn create(
    conn: &mut PgConnection,
    tenant: TenantId,
    name: &str,
    grants: &[String],
) -> Result<Role> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO roles (tenant_id, id, name) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(id)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(write_error("role", "tenant"))?;
    replace_grants(conn, tenant, id, grants).await?;
    get_in(conn, tenant, name).await
}

/// Replaces the grants of the role called `name`.
pub async fn set_grants(
    conn: &mut PgConnection,
    tenant: TenantId,
    name: &str,
    grants: &[String],
) -> Result<Role> {
    let id = role_id(conn, tenant, name).await?;
    replace_grants(conn, tenant, id, grants).await?;
    sqlx::query("UPDATE roles SET updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_in(conn, tenant, name).await
}

async fn replace_grants(
    conn: &mut PgConnection,
    tenant: TenantId,
    role: Uuid,
    grants: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM role_grants WHERE tenant_id = $1 AND role_id = $2")
        .bind(tenant)
        .bind(role)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO role_grants (tenant_id, role_id, permission)
         SELECT $1, $2, p FROM unnest($3::text[]) AS p ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(role)
    .bind(grants)
    .execute(&mut *conn)
    .await
    .map_err(write_error("grant", "role"))?;
    Ok(())
}

async fn role_id(conn: &mut PgConnection, tenant: TenantId, name: &str) -> Result<Uuid> {
    let id = sqlx::query_scalar("SELECT id FROM roles WHERE tenant_id = $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .fetch_optional(conn)
        .await?;
    found(id, "role")
}

async fn get_in(conn: &mut PgConnection, tenant: TenantId, name: &str) -> Result<Role> {
    let row = sqlx::query_as(concat!(
        role_select!(),
        "WHERE r.tenant_id = $1 AND r.name = $2 GROUP BY r.tenant_id, r.id"
    ))
    .bind(tenant)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    found(row, "role")
}

/// The role called `name`.
pub async fn get(store: &Store, tenant: TenantId, name: &str) -> Result<Role> {
    let mut conn = store.pool().acquire().await?;
    get_in(&mut conn, tenant, name).await
}

/// All roles of the tenant, by name.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<Role>> {
    Ok(sqlx::query_as(concat!(
        role_select!(),
        "WHERE r.tenant_id = $1 GROUP BY r.tenant_id, r.id ORDER BY r.name"
    ))
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// Deletes a custom role and its bindings. Built-in roles cannot be deleted (conflict).
pub async fn delete(conn: &mut PgConnection, tenant: TenantId, name: &str) -> Result<()> {
    let deleted: Option<bool> = sqlx::query_scalar(
        "DELETE FROM roles WHERE tenant_id = $1 AND name = $2 AND NOT built_in RETURNING true",
    )
    .bind(tenant)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    if deleted.is_some() {
        return Ok(());
    }
    // Nothing deleted: either there is no such role (NotFound) or it is built in.
    role_id(conn, tenant, name).await?;
    Err(StoreError::conflict(format!("role {name:?} is built in")))
}

async fn principal_exists(
    conn: &mut PgConnection,
    tenant: TenantId,
    principal: Principal,
) -> Result<()> {
    let sql = match principal.kind {
        PrincipalKind::User => {
            "SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2)"
        }
        PrincipalKind::Credential => {
            "SELECT EXISTS (SELECT 1 FROM credentials WHERE tenant_id = $1 AND id = $2)"
        }
    };
    let exists: bool = sqlx::query_scalar(sql)
        .bind(tenant)
        .bind(principal.id)
        .fetch_one(conn)
        .await?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::not_found(principal.kind.as_str()))
    }
}

/// Gives `principal` the role `role`; binding twice is a no-op. Unknown principal or role (in
/// this tenant) is `NotFound`.
pub async fn bind(
    conn: &mut PgConnection,
    tenant: TenantId,
    principal: Principal,
    role: &str,
) -> Result<()> {
    principal_exists(conn, tenant, principal).await?;
    let role_id = role_id(conn, tenant, role).await?;
    sqlx::query(
        "INSERT INTO role_bindings (tenant_id, role_id, principal_kind, principal_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(role_id)
    .bind(principal.kind.as_str())
    .bind(principal.id)
    .execute(conn)
    .await
    .map_err(write_error("role binding", "role"))?;
    Ok(())
}

/// Takes `role` away from `principal`; `NotFound` if it did not hold it.
pub async fn unbind(
    conn: &mut PgConnection,
    tenant: TenantId,
    principal: Principal,
    role: &str,
) -> Result<()> {
    let done = sqlx::query(
        "DELETE FROM role_bindings b USING roles r
         WHERE b.tenant_id = $1 AND r.tenant_id = $1 AND r.id = b.role_id AND r.name = $2
           AND b.principal_kind = $3 AND b.principal_id = $4",
    )
    .bind(tenant)
    .bind(role)
    .bind(principal.kind.as_str())
    .bind(principal.id)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("role binding"));
    }
    Ok(())
}

/// The roles `principal` holds, with their grants, by name.
pub async fn roles_of(store: &Store, tenant: TenantId, principal: Principal) -> Result<Vec<Role>> {
    Ok(sqlx::query_as(concat!(
        role_select!(),
        "JOIN role_bindings b ON b.tenant_id = r.tenant_id AND b.role_id = r.id
         WHERE r.tenant_id = $1 AND b.principal_kind = $2 AND b.principal_id = $3
         GROUP BY r.tenant_id, r.id ORDER BY r.name"
    ))
    .bind(tenant)
    .bind(principal.kind.as_str())
    .bind(principal.id)
    .fetch_all(store.pool())
    .await?)
}
