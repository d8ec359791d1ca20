//! Notification endpoints (migration 0006): where a tenant wants deployment events sent, in
//! Slack's incoming-webhook JSON or as generic JSON signed with HMAC-SHA256 (the key is the
//! tenant secret `signing_secret` names). svc-webhook delivers them.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
pub use ferry_api::notifications::{EndpointKind, NotifyEvent};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// An endpoint.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Endpoint {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub name: String,
    pub kind: EndpointKind,
    pub url: String,
    pub events: Vec<NotifyEvent>,
    pub signing_secret: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The endpoint as the API shows it (the signing secret by name only).
impl From<Endpoint> for ferry_api::notifications::EndpointView {
    fn from(e: Endpoint) -> Self {
        ferry_api::notifications::EndpointView {
            id: e.id,
            name: e.name,
            kind: e.kind,
            url: e.url,
            events: e.events,
            signing_secret: e.signing_secret,
            created_by: e.created_by,
            created_at: e.created_at,
        }
    }
}

/// What [`create`] stores (validated by the caller).
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub name: String,
    pub kind: EndpointKind,
    pub url: String,
    pub events: Vec<NotifyEvent>,
    pub signing_secret: Option<String>,
    pub created_by: String,
}

macro_rules! columns {
    () => {
        "tenant_id, id, name, kind, url, events, signing_secret, created_by, created_at, updated_at"
    };
}

/// Stores a new endpoint; a name taken in the tenant is a `Conflict`.
pub async fn create(
    conn: &mut PgConnection,
    tenant: TenantId,
    new: &NewEndpoint,
) -> Result<Endpoint> {
    sqlx::query_as(concat!(
        "INSERT INTO notification_endpoints (tenant_id, id, name, kind, url, events,
             signing_secret, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(&new.name)
    .bind(new.kind)
    .bind(&new.url)
    .bind(&new.events)
    .bind(&new.signing_secret)
    .bind(&new.created_by)
    .fetch_one(conn)
    .await
    .map_err(write_error("notification endpoint", "tenant"))
}

/// The tenant's endpoints by name.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<Endpoint>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM notification_endpoints WHERE tenant_id = $1 ORDER BY name"
    ))
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// The tenant's endpoints that want `event`.
pub async fn subscribed(
    store: &Store,
    tenant: TenantId,
    event: NotifyEvent,
) -> Result<Vec<Endpoint>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM notification_endpoints WHERE tenant_id = $1 AND $2 = ANY(events) ORDER BY name"
    ))
    .bind(tenant)
    .bind(event)
    .fetch_all(store.pool())
    .await?)
}

/// The endpoint `id`.
pub async fn get(store: &Store, tenant: TenantId, id: Uuid) -> Result<Endpoint> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM notification_endpoints WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    found(row, "notification endpoint")
}

/// Removes the endpoint named `name`; `NotFound` when the tenant has none.
pub async fn delete(conn: &mut PgConnection, tenant: TenantId, name: &str) -> Result<Endpoint> {
    let row = sqlx::query_as(concat!(
        "DELETE FROM notification_endpoints WHERE tenant_id = $1 AND name = $2 RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.ok_or_else(|| StoreError::not_found("notification endpoint"))
}
