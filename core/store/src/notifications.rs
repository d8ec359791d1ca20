//! Notification endpoints (migration 0006): where a tenant wants deployment events sent, in
//! Slack's incoming-webhook JSON or as generic JSON signed with HMAC-SHA256 (the key is the
//! tenant secret `signing_secret` names). svc-webhook delivers them.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

text_enum! {
    /// The body's format.
    pub enum EndpointKind {
        /// Slack-compatible incoming-webhook JSON (`{"text": …}`).
        Slack = "slack",
        /// Ferry's JSON, signed (`Ferry-Signature: sha256=<hex HMAC of the body>`).
        Generic = "generic",
    }
}

text_enum! {
    /// The deployment events a tenant may be notified of.
    pub enum NotifyEvent {
        /// A deployment started.
        Started = "started",
        /// A target waits for a manual approval.
        WaitingForApproval = "waiting_for_approval",
        /// A deployment succeeded.
        Succeeded = "succeeded",
        /// A deployment failed.
        Failed = "failed",
        /// A deployment or a target was rolled back.
        RolledBack = "rolled_back",
    }
}

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
