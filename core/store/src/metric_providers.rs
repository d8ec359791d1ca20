//! Metric-provider settings used by canary analysis: where to query and which secrets hold the
//! credentials (by name; the values stay in `secrets`).

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
pub use ferry_api::analysis::ProviderKind;
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use std::collections::BTreeMap;

/// A configured metric provider.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct MetricProvider {
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    /// Field name to secret name, e.g. `apiKey -> datadog-api-key`.
    pub secret_refs: Json<BTreeMap<String, String>>,
    /// The agent that relays queries when the provider is in a private network.
    pub agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The provider as the API shows it.
impl From<MetricProvider> for ferry_api::analysis::MetricProvider {
    fn from(p: MetricProvider) -> Self {
        ferry_api::analysis::MetricProvider {
            tenant_id: p.tenant_id,
            name: p.name,
            kind: p.kind,
            base_url: p.base_url,
            secret_refs: p.secret_refs.0,
            agent: p.agent,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// What [`put`] stores.
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub secret_refs: BTreeMap<String, String>,
    pub agent: Option<String>,
}

/// Creates or replaces the provider `settings.name`.
pub async fn put(
    conn: &mut PgConnection,
    tenant: TenantId,
    settings: &ProviderSettings,
) -> Result<MetricProvider> {
    sqlx::query_as(
        "INSERT INTO metric_providers (tenant_id, name, kind, base_url, secret_refs, agent)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, name) DO UPDATE SET kind = EXCLUDED.kind,
             base_url = EXCLUDED.base_url, secret_refs = EXCLUDED.secret_refs,
             agent = EXCLUDED.agent, updated_at = now()
         RETURNING tenant_id, name, kind, base_url, secret_refs, agent, created_at, updated_at",
    )
    .bind(tenant)
    .bind(&settings.name)
    .bind(settings.kind)
    .bind(&settings.base_url)
    .bind(Json(&settings.secret_refs))
    .bind(&settings.agent)
    .fetch_one(conn)
    .await
    .map_err(write_error("metric provider", "tenant"))
}

/// The provider called `name`.
pub async fn get(store: &Store, tenant: TenantId, name: &str) -> Result<MetricProvider> {
    let row = sqlx::query_as(
        "SELECT tenant_id, name, kind, base_url, secret_refs, agent, created_at, updated_at
         FROM metric_providers WHERE tenant_id = $1 AND name = $2",
    )
    .bind(tenant)
    .bind(name)
    .fetch_optional(store.pool())
    .await?;
    found(row, "metric provider")
}

/// All providers of the tenant, by name.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<MetricProvider>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, name, kind, base_url, secret_refs, agent, created_at, updated_at
         FROM metric_providers WHERE tenant_id = $1 ORDER BY name",
    )
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// Deletes the provider called `name`.
pub async fn delete(conn: &mut PgConnection, tenant: TenantId, name: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM metric_providers WHERE tenant_id = $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("metric provider"));
    }
    Ok(())
}
