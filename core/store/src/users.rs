//! Human users of a tenant (identified by email; authentication itself is ferry-auth's).

use crate::Store;
use crate::error::{Result, found, write_error};
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
