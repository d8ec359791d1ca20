//! Organizations and tenants. These are the only rows above the tenant boundary: creating them
//! is an operator action or an organization administrator's (svc-api checks who may).

use crate::error::{Result, found, write_error};
use crate::ids::TenantId;
use crate::{Store, roles};
use chrono::{DateTime, Utc};
pub use ferry_api::tenant::Tenant;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A group of tenants administered together.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`create`] needs.
#[derive(Clone, Debug)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    pub organization_id: Option<Uuid>,
}

/// Creates an organization (operator action, spans tenants). A taken name is a conflict.
pub async fn create_organization(conn: &mut PgConnection, name: &str) -> Result<Organization> {
    sqlx::query_as(
        "INSERT INTO organizations (id, name) VALUES ($1, $2)
         RETURNING id, name, created_at, updated_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .fetch_one(conn)
    .await
    .map_err(write_error("organization", "organization"))
}

/// Creates a tenant and its built-in roles ([`roles::BUILT_IN`]) (operator action). A taken
/// slug is a conflict; an unknown organization is `NotFound`.
pub async fn create(conn: &mut PgConnection, new: &NewTenant) -> Result<Tenant> {
    let tenant: Tenant = sqlx::query_as(
        "INSERT INTO tenants (id, organization_id, slug, name) VALUES ($1, $2, $3, $4)
         RETURNING id, organization_id, slug, name, created_at, updated_at",
    )
    .bind(TenantId::new())
    .bind(new.organization_id)
    .bind(&new.slug)
    .bind(&new.name)
    .fetch_one(&mut *conn)
    .await
    .map_err(write_error("tenant", "organization"))?;
    roles::create_built_in(conn, tenant.id).await?;
    Ok(tenant)
}

/// The tenant itself.
pub async fn get(store: &Store, tenant: TenantId) -> Result<Tenant> {
    let row = sqlx::query_as(
        "SELECT id, organization_id, slug, name, created_at, updated_at
         FROM tenants WHERE id = $1",
    )
    .bind(tenant)
    .fetch_optional(store.pool())
    .await?;
    found(row, "tenant")
}

/// The tenant whose slug is `slug` (an operator or sign-in lookup: slugs are global).
pub async fn get_by_slug(store: &Store, slug: &str) -> Result<Tenant> {
    let row = sqlx::query_as(
        "SELECT id, organization_id, slug, name, created_at, updated_at
         FROM tenants WHERE slug = $1",
    )
    .bind(slug)
    .fetch_optional(store.pool())
    .await?;
    found(row, "tenant")
}

/// The tenants of `organization`, by slug.
pub async fn list_in_organization(store: &Store, organization: Uuid) -> Result<Vec<Tenant>> {
    Ok(sqlx::query_as(
        "SELECT id, organization_id, slug, name, created_at, updated_at
         FROM tenants WHERE organization_id = $1 ORDER BY slug",
    )
    .bind(organization)
    .fetch_all(store.pool())
    .await?)
}
