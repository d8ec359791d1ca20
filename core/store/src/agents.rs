//! Agents as the hub sees them: versions, which replica holds the connection, heartbeats.
//!
//! Every connect starts a new `session` (a number that only grows). Heartbeats and disconnects
//! carry the session they belong to, so a replica that lost the agent to another replica cannot
//! overwrite the newer connection's record.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// An agent of the tenant.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Agent {
    pub tenant_id: TenantId,
    pub id: Uuid,
    /// The name deploy files use in `account:`; unique per tenant.
    pub identifier: String,
    pub agent_version: String,
    pub kubernetes_version: String,
    /// The hub replica holding the connection; `None` when disconnected.
    pub hub_replica: Option<String>,
    pub session: i64,
    pub connected_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Agent {
    /// Whether a replica currently holds the agent's connection.
    pub fn is_connected(&self) -> bool {
        self.hub_replica.is_some()
    }
}

/// What an agent reports when it connects.
#[derive(Clone, Debug)]
pub struct Connect {
    pub identifier: String,
    pub agent_version: String,
    pub kubernetes_version: String,
    pub hub_replica: String,
}

/// Records a connection (creating the agent on first connect) and starts a new session, returned
/// in [`Agent::session`].
pub async fn connect(conn: &mut PgConnection, tenant: TenantId, c: &Connect) -> Result<Agent> {
    sqlx::query_as(
        "INSERT INTO agents (tenant_id, id, identifier, agent_version, kubernetes_version,
                             hub_replica, session, connected_at, last_heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, now(), now())
         ON CONFLICT (tenant_id, identifier) DO UPDATE SET
             agent_version = EXCLUDED.agent_version,
             kubernetes_version = EXCLUDED.kubernetes_version,
             hub_replica = EXCLUDED.hub_replica,
             session = agents.session + 1,
             connected_at = now(), last_heartbeat_at = now(), disconnected_at = NULL,
             updated_at = now()
         RETURNING tenant_id, id, identifier, agent_version, kubernetes_version, hub_replica,
                   session, connected_at, last_heartbeat_at, disconnected_at, created_at,
                   updated_at",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(&c.identifier)
    .bind(&c.agent_version)
    .bind(&c.kubernetes_version)
    .bind(&c.hub_replica)
    .fetch_one(conn)
    .await
    .map_err(write_error("agent", "tenant"))
}

/// Records a heartbeat of `session`. A session that is no longer current is a conflict (the
/// agent reconnected elsewhere; the caller should drop its connection).
pub async fn heartbeat(
    conn: &mut PgConnection,
    tenant: TenantId,
    identifier: &str,
    session: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE agents SET last_heartbeat_at = now(), updated_at = now()
         WHERE tenant_id = $1 AND identifier = $2 AND session = $3 AND hub_replica IS NOT NULL",
    )
    .bind(tenant)
    .bind(identifier)
    .bind(session)
    .execute(&mut *conn)
    .await?;
    session_result(conn, tenant, identifier, done.rows_affected()).await
}

/// Records that `session` ended. A stale session is a conflict and changes nothing.
pub async fn disconnect(
    conn: &mut PgConnection,
    tenant: TenantId,
    identifier: &str,
    session: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE agents SET hub_replica = NULL, disconnected_at = now(), updated_at = now()
         WHERE tenant_id = $1 AND identifier = $2 AND session = $3 AND hub_replica IS NOT NULL",
    )
    .bind(tenant)
    .bind(identifier)
    .bind(session)
    .execute(&mut *conn)
    .await?;
    session_result(conn, tenant, identifier, done.rows_affected()).await
}

async fn session_result(
    conn: &mut PgConnection,
    tenant: TenantId,
    identifier: &str,
    affected: u64,
) -> Result<()> {
    if affected > 0 {
        return Ok(());
    }
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM agents WHERE tenant_id = $1 AND identifier = $2)",
    )
    .bind(tenant)
    .bind(identifier)
    .fetch_one(conn)
    .await?;
    if exists {
        Err(StoreError::conflict("agent session is not current"))
    } else {
        Err(StoreError::not_found("agent"))
    }
}

/// The agent called `identifier`.
pub async fn get(store: &Store, tenant: TenantId, identifier: &str) -> Result<Agent> {
    let row = sqlx::query_as(
        "SELECT tenant_id, id, identifier, agent_version, kubernetes_version, hub_replica,
                session, connected_at, last_heartbeat_at, disconnected_at, created_at, updated_at
         FROM agents WHERE tenant_id = $1 AND identifier = $2",
    )
    .bind(tenant)
    .bind(identifier)
    .fetch_optional(store.pool())
    .await?;
    found(row, "agent")
}

/// All agents of the tenant, by identifier.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<Agent>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id, identifier, agent_version, kubernetes_version, hub_replica,
                session, connected_at, last_heartbeat_at, disconnected_at, created_at, updated_at
         FROM agents WHERE tenant_id = $1 ORDER BY identifier",
    )
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}
