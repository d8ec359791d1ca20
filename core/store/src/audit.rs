//! The audit log: one row per mutating action (who, what, on which resource, details), written
//! in the same transaction as the change it records.

use crate::Store;
use crate::error::{Result, write_error};
use crate::ids::TenantId;
use crate::page::clamp_limit;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;

/// An audit entry.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// Increases with every entry; pass the smallest one seen as `before` for the next page.
    pub id: i64,
    pub tenant_id: TenantId,
    /// Who did it: a user id, a credential's client id, or a service name.
    pub actor: String,
    /// What was done, e.g. `deployment.create`.
    pub action: String,
    pub resource_kind: String,
    pub resource_id: String,
    pub details: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// The entry as the API shows it.
impl From<AuditEntry> for ferry_api::audit::AuditEntry {
    fn from(e: AuditEntry) -> Self {
        ferry_api::audit::AuditEntry {
            id: e.id,
            tenant_id: e.tenant_id,
            actor: e.actor,
            action: e.action,
            resource_kind: e.resource_kind,
            resource_id: e.resource_id,
            details: e.details.0,
            created_at: e.created_at,
        }
    }
}

/// What [`append`] records.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub actor: String,
    pub action: String,
    pub resource_kind: String,
    pub resource_id: String,
    pub details: serde_json::Value,
}

/// Records an action; returns the entry's id.
pub async fn append(
    conn: &mut PgConnection,
    tenant: TenantId,
    entry: &NewAuditEntry,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO audit_log (tenant_id, actor, action, resource_kind, resource_id, details)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(tenant)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.resource_kind)
    .bind(&entry.resource_id)
    .bind(Json(&entry.details))
    .fetch_one(conn)
    .await
    .map_err(write_error("audit entry", "tenant"))
}

/// Entries newest first, older than `before` when given, at most `limit` (clamped to 1..=200).
pub async fn list(
    store: &Store,
    tenant: TenantId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, actor, action, resource_kind, resource_id, details, created_at
         FROM audit_log WHERE tenant_id = $1 AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(tenant)
    .bind(before)
    .bind(clamp_limit(limit))
    .fetch_all(store.pool())
    .await?)
}

/// What [`search`] narrows the log to; every field left `None` matches everything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this action (`credential.revoke`), or every action under a prefix ending in `.`
    /// (`credential.`).
    pub action: Option<String>,
    /// Exactly this kind of resource.
    pub resource_kind: Option<String>,
    /// Exactly this resource id.
    pub resource_id: Option<String>,
    /// At or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Before this instant.
    pub until: Option<DateTime<Utc>>,
}

/// Like [`list`], narrowed by `filter`.
pub async fn search(
    store: &Store,
    tenant: TenantId,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>> {
    let (action, action_prefix) = match filter.action.as_deref() {
        Some(a) if a.ends_with('.') => (
            None,
            Some(format!("{}%", a.replace('%', "\\%").replace('_', "\\_"))),
        ),
        Some(a) => (Some(a.to_string()), None),
        None => (None, None),
    };
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, actor, action, resource_kind, resource_id, details, created_at
         FROM audit_log
         WHERE tenant_id = $1 AND ($2::bigint IS NULL OR id < $2)
           AND ($4::text IS NULL OR actor = $4)
           AND ($5::text IS NULL OR action = $5)
           AND ($6::text IS NULL OR action LIKE $6)
           AND ($7::text IS NULL OR resource_kind = $7)
           AND ($8::text IS NULL OR resource_id = $8)
           AND ($9::timestamptz IS NULL OR created_at >= $9)
           AND ($10::timestamptz IS NULL OR created_at < $10)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(tenant)
    .bind(before)
    .bind(clamp_limit(limit))
    .bind(&filter.actor)
    .bind(action)
    .bind(action_prefix)
    .bind(&filter.resource_kind)
    .bind(&filter.resource_id)
    .bind(filter.since)
    .bind(filter.until)
    .fetch_all(store.pool())
    .await?)
}
