//! Durable timers: pauses and timeouts that survive restarts. Any scheduler replica claims due
//! timers with `FOR UPDATE SKIP LOCKED` and marks them fired in its own transaction, together
//! with the state change the timer causes: committed, the timer fired exactly once; rolled back
//! (or the replica died), it is due again for the next claimer.

use crate::error::{Result, StoreError, found, write_error};
use crate::ids::{DeploymentId, TenantId};
use crate::page::clamp_limit;
use crate::{Store, deployments};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// A timer.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Timer {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub deployment_id: DeploymentId,
    pub target_name: Option<String>,
    /// The scheduler's name for what fires (pause, approval timeout, ...).
    pub kind: String,
    /// The caller's idempotency key, unique per deployment.
    pub key: String,
    pub fire_at: DateTime<Utc>,
    pub payload: Json<serde_json::Value>,
    pub fired_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What [`schedule`] stores.
#[derive(Clone, Debug)]
pub struct NewTimer {
    pub target: Option<String>,
    pub kind: String,
    /// Scheduling the same key again (a redelivered message) returns the existing timer.
    pub key: String,
    pub fire_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

macro_rules! columns {
    () => {
        "tenant_id, id, deployment_id, target_name, kind, key, fire_at, payload, fired_at,
         cancelled_at, created_at"
    };
}

/// Schedules a timer, or returns the one already scheduled under `new.key`.
pub async fn schedule(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    new: &NewTimer,
) -> Result<Timer> {
    sqlx::query(
        "INSERT INTO timers (tenant_id, id, deployment_id, target_name, kind, key, fire_at, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, deployment_id, key) DO NOTHING",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(deployment)
    .bind(&new.target)
    .bind(&new.kind)
    .bind(&new.key)
    .bind(new.fire_at)
    .bind(Json(&new.payload))
    .execute(&mut *conn)
    .await
    .map_err(write_error("timer", "deployment"))?;
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM timers WHERE tenant_id = $1 AND deployment_id = $2 AND key = $3"
    ))
    .bind(tenant)
    .bind(deployment)
    .bind(&new.key)
    .fetch_optional(conn)
    .await?;
    found(row, "timer")
}

/// The timer of `kind` on the deployment whose payload holds `value` under `field` (the
/// scheduler finds the retry timer that re-sent a message by the id it re-sent it as).
pub async fn find_by_payload(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    kind: &str,
    field: &str,
    value: &str,
) -> Result<Option<Timer>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM timers WHERE tenant_id = $1 AND deployment_id = $2 AND kind = $3
           AND payload->>$4 = $5
         ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(tenant)
    .bind(deployment)
    .bind(kind)
    .bind(field)
    .bind(value)
    .fetch_optional(conn)
    .await?)
}

/// Claims up to `limit` of the tenant's due timers, marking them fired in the caller's
/// transaction. Timers another transaction is claiming are skipped, not waited for. Ordered by
/// `fire_at`.
pub async fn claim_due(
    conn: &mut PgConnection,
    tenant: TenantId,
    limit: i64,
) -> Result<Vec<Timer>> {
    claim(conn, Some(tenant), limit).await
}

/// Claims up to `limit` due timers of any tenant (a scheduler replica's timer loop): spans
/// tenants by design; each timer carries its `tenant_id` for the work it triggers.
pub async fn claim_due_all_tenants(conn: &mut PgConnection, limit: i64) -> Result<Vec<Timer>> {
    claim(conn, None, limit).await
}

async fn claim(
    conn: &mut PgConnection,
    tenant: Option<TenantId>,
    limit: i64,
) -> Result<Vec<Timer>> {
    let mut timers: Vec<Timer> = sqlx::query_as(concat!(
        "WITH due AS (
             SELECT tenant_id, id FROM timers
             WHERE ($1::uuid IS NULL OR tenant_id = $1)
               AND fired_at IS NULL AND cancelled_at IS NULL AND fire_at <= now()
             ORDER BY fire_at LIMIT $2
             FOR UPDATE SKIP LOCKED)
         UPDATE timers t SET fired_at = now(), updated_at = now()
         FROM due WHERE t.tenant_id = due.tenant_id AND t.id = due.id AND t.fired_at IS NULL
         RETURNING ",
        "t.tenant_id, t.id, t.deployment_id, t.target_name, t.kind, t.key, t.fire_at, t.payload,
         t.fired_at, t.cancelled_at, t.created_at"
    ))
    .bind(tenant)
    .bind(clamp_limit(limit))
    .fetch_all(conn)
    .await?;
    timers.sort_by_key(|t| (t.fire_at, t.id));
    Ok(timers)
}

/// Cancels one pending timer; `NotFound` if unknown, `Conflict` if it already fired.
pub async fn cancel(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<()> {
    let done = sqlx::query(
        "UPDATE timers SET cancelled_at = COALESCE(cancelled_at, now()), updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND fired_at IS NULL",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        return Ok(());
    }
    let fired: Option<bool> = sqlx::query_scalar(
        "SELECT fired_at IS NOT NULL FROM timers WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    match fired {
        Some(_) => Err(StoreError::conflict("timer already fired")),
        None => Err(StoreError::not_found("timer")),
    }
}

/// The kind of timer that removes what a deployment left behind for a while (a preview
/// address): it outlives its deployment, so [`cancel_for_deployment`] keeps it.
pub const KIND_CLEANUP: &str = "cleanup";

/// The kind of the scheduler's readiness ticks: the safety net that wakes a deployment whose
/// targets wait for their pods, every few seconds, even when no watch does.
pub const KIND_TICK: &str = "tick";

/// Cancels every pending timer of the deployment (it ended or was aborted) except cleanup
/// timers ([`KIND_CLEANUP`]); returns how many.
pub async fn cancel_for_deployment(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE timers SET cancelled_at = now(), updated_at = now()
         WHERE tenant_id = $1 AND deployment_id = $2 AND fired_at IS NULL
           AND cancelled_at IS NULL AND kind <> $3",
    )
    .bind(tenant)
    .bind(deployment)
    .bind(KIND_CLEANUP)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Whether the deployment has a pending timer (not fired, not cancelled) of `kind`.
pub async fn has_pending(
    store: &Store,
    tenant: TenantId,
    deployment: DeploymentId,
    kind: &str,
) -> Result<bool> {
    let pending: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM timers WHERE tenant_id = $1 AND deployment_id = $2
           AND kind = $3 AND fired_at IS NULL AND cancelled_at IS NULL)",
    )
    .bind(tenant)
    .bind(deployment)
    .bind(kind)
    .fetch_one(store.pool())
    .await?;
    Ok(pending)
}

/// The deployment's pending timers (not fired, not cancelled), soonest first.
pub async fn list_pending(
    store: &Store,
    tenant: TenantId,
    deployment: DeploymentId,
) -> Result<Vec<Timer>> {
    let timers: Vec<Timer> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM timers WHERE tenant_id = $1 AND deployment_id = $2
           AND fired_at IS NULL AND cancelled_at IS NULL ORDER BY fire_at, id"
    ))
    .bind(tenant)
    .bind(deployment)
    .fetch_all(store.pool())
    .await?;
    if timers.is_empty() {
        deployments::ensure_exists(store, tenant, deployment).await?;
    }
    Ok(timers)
}
