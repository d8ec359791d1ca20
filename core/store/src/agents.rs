//! Agents as the hub sees them: versions, which replica holds the connection, heartbeats.
//!
//! Every connect starts a new `session` (a number that only grows). Heartbeats and disconnects
//! carry the session they belong to, so a replica that lost the agent to another replica cannot
//! overwrite the newer connection's record.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
pub use ferry_api::tenant::Agent;
use sqlx::PgConnection;
use uuid::Uuid;

/// What an agent reports when it connects.
#[derive(Clone, Debug)]
pub struct Connect {
    pub identifier: String,
    pub agent_version: String,
    pub kubernetes_version: String,
    pub hub_replica: String,
}

/// Who may connect as an agent identifier, decided by [`bind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The identifier belongs to the credential (now, or already).
    Owned,
    /// Another credential of the tenant owns the identifier.
    OwnedByAnother,
    /// The credential already owns another identifier (named).
    CredentialOwns(String),
}

/// Binds agent `identifier` to `credential` unless either is bound elsewhere: an identifier is
/// owned by one credential, and a credential owns at most one identifier. The first credential
/// to connect as an unowned identifier becomes its owner; an identifier whose owner was revoked
/// passes to the next credential that connects as it (how an agent's credential is rotated:
/// create the new one, revoke the old). Creates the agent's row (not connected) when it does
/// not exist yet.
pub async fn bind(
    conn: &mut PgConnection,
    tenant: TenantId,
    identifier: &str,
    credential: Uuid,
) -> Result<Binding> {
    let owner: std::result::Result<Option<Uuid>, sqlx::Error> = sqlx::query_scalar(
        "INSERT INTO agents (tenant_id, id, identifier, credential_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, identifier) DO UPDATE SET
             credential_id = CASE WHEN agents.credential_id IS NULL OR EXISTS (
                                      SELECT 1 FROM credentials c
                                      WHERE c.tenant_id = agents.tenant_id
                                        AND c.id = agents.credential_id
                                        AND c.revoked_at IS NOT NULL)
                                  THEN EXCLUDED.credential_id ELSE agents.credential_id END,
             updated_at = now()
         RETURNING credential_id",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(identifier)
    .bind(credential)
    .fetch_one(&mut *conn)
    .await;
    match owner {
        Ok(Some(owner)) if owner == credential => Ok(Binding::Owned),
        Ok(_) => Ok(Binding::OwnedByAnother),
        Err(sqlx::Error::Database(db))
            if db.is_unique_violation() && db.constraint() == Some("agents_one_per_credential") =>
        {
            let other: Option<String> = sqlx::query_scalar(
                "SELECT identifier FROM agents WHERE tenant_id = $1 AND credential_id = $2",
            )
            .bind(tenant)
            .bind(credential)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(Binding::CredentialOwns(other.unwrap_or_default()))
        }
        Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            Err(StoreError::not_found("credential"))
        }
        Err(error) => Err(StoreError::Database(error)),
    }
}

/// The credential that owns agent `identifier`, if the agent exists and is owned.
pub async fn owner(store: &Store, tenant: TenantId, identifier: &str) -> Result<Option<Uuid>> {
    let owner: Option<Option<Uuid>> = sqlx::query_scalar(
        "SELECT credential_id FROM agents WHERE tenant_id = $1 AND identifier = $2",
    )
    .bind(tenant)
    .bind(identifier)
    .fetch_optional(store.pool())
    .await?;
    Ok(owner.flatten())
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

/// The hub replicas some agent row says holds its connection, across tenants: a hub replica's
/// presence sweeper checks each against the replicas' liveness marks.
pub async fn connected_replicas(store: &Store) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT hub_replica FROM agents WHERE hub_replica IS NOT NULL ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await?)
}

/// Records every agent still held by `replica` as disconnected (across tenants), for a replica
/// that died without recording it. An agent that reconnected elsewhere meanwhile names another
/// replica and is untouched. Returns how many agents it recorded.
pub async fn disconnect_replica(store: &Store, replica: &str) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE agents SET hub_replica = NULL, disconnected_at = now(), updated_at = now()
         WHERE hub_replica = $1",
    )
    .bind(replica)
    .execute(store.pool())
    .await?
    .rows_affected())
}
