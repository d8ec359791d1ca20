//! A deployment's event stream and its targets' step history.
//!
//! Event sequence numbers come from `deployments.last_event_seq`, incremented under that row's
//! lock in the writer's transaction: two writers to one deployment commit in sequence order, so
//! a reader that has seen N and asks for "after N" never skips an event committed later with a
//! smaller number. The API uses the number as the server-sent event id (`Last-Event-ID`).

use crate::error::{Result, StoreError, write_error};
use crate::ids::{DeploymentId, TenantId};
use crate::page::clamp_limit;
use crate::{Store, deployments};
use chrono::{DateTime, Utc};
pub use ferry_api::deployments::StepRecord;
pub use ferry_api::status::StepStatus;
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;

/// An event of a deployment.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Event {
    pub tenant_id: TenantId,
    pub deployment_id: DeploymentId,
    /// 1, 2, 3, ... per deployment, in commit order.
    pub seq: i64,
    /// e.g. `deployment.started`, `step.succeeded`.
    pub kind: String,
    pub target_name: Option<String>,
    pub payload: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// What [`append`] writes.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: String,
    pub target: Option<String>,
    pub payload: serde_json::Value,
}

/// What [`record_step`] writes.
#[derive(Clone, Debug)]
pub struct StepChange {
    pub target: String,
    /// `None` for changes outside the strategy's steps (e.g. the target's rollback).
    pub step_index: Option<i32>,
    pub status: StepStatus,
    pub reason: String,
    /// Extra detail for the event (weights, pod counts, ...).
    pub details: serde_json::Value,
}

/// Appends an event; returns its sequence number. Holds the deployment's row lock until the
/// caller's transaction ends, so keep that transaction short.
pub async fn append(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    event: &NewEvent,
) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar(
        "UPDATE deployments SET last_event_seq = last_event_seq + 1
         WHERE tenant_id = $1 AND id = $2 RETURNING last_event_seq",
    )
    .bind(tenant)
    .bind(deployment)
    .fetch_optional(&mut *conn)
    .await?;
    let seq = seq.ok_or_else(|| StoreError::not_found("deployment"))?;
    sqlx::query(
        "INSERT INTO events (tenant_id, deployment_id, seq, kind, target_name, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant)
    .bind(deployment)
    .bind(seq)
    .bind(&event.kind)
    .bind(&event.target)
    .bind(Json(&event.payload))
    .execute(conn)
    .await
    .map_err(write_error("event", "deployment"))?;
    Ok(seq)
}

/// Events with `seq > after`, oldest first, at most `limit` (clamped to 1..=200). Pass 0 for
/// the whole stream, or the client's `Last-Event-ID` to resume.
pub async fn list_after(
    store: &Store,
    tenant: TenantId,
    deployment: DeploymentId,
    after: i64,
    limit: i64,
) -> Result<Vec<Event>> {
    let events: Vec<Event> = sqlx::query_as(
        "SELECT tenant_id, deployment_id, seq, kind, target_name, payload, created_at
         FROM events WHERE tenant_id = $1 AND deployment_id = $2 AND seq > $3
         ORDER BY seq LIMIT $4",
    )
    .bind(tenant)
    .bind(deployment)
    .bind(after)
    .bind(clamp_limit(limit))
    .fetch_all(store.pool())
    .await?;
    if events.is_empty() {
        deployments::ensure_exists(store, tenant, deployment).await?;
    }
    Ok(events)
}

/// Records a step change in the target's history and as a `step.<status>` event; returns the
/// event's sequence number. An unknown target is `NotFound`.
pub async fn record_step(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    change: &StepChange,
) -> Result<i64> {
    sqlx::query(
        "INSERT INTO step_history (tenant_id, deployment_id, target_name, step_index, status, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant)
    .bind(deployment)
    .bind(&change.target)
    .bind(change.step_index)
    .bind(change.status)
    .bind(&change.reason)
    .execute(&mut *conn)
    .await
    .map_err(write_error("step record", "target"))?;
    let event = NewEvent {
        kind: format!("step.{}", change.status),
        target: Some(change.target.clone()),
        payload: serde_json::json!({
            "stepIndex": change.step_index,
            "status": change.status,
            "reason": change.reason,
            "details": change.details,
        }),
    };
    append(conn, tenant, deployment, &event).await
}

/// When a target's strategy step began: its first history row, or, when it has none yet (a step
/// that ends in the pass it began), the target's latest row (the previous step's end).
pub async fn step_started_at(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    target: &str,
    step_index: i32,
) -> Result<Option<DateTime<Utc>>> {
    let at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT COALESCE(
             (SELECT min(created_at) FROM step_history
              WHERE tenant_id = $1 AND deployment_id = $2 AND target_name = $3 AND step_index = $4),
             (SELECT max(created_at) FROM step_history
              WHERE tenant_id = $1 AND deployment_id = $2 AND target_name = $3))",
    )
    .bind(tenant)
    .bind(deployment)
    .bind(target)
    .bind(step_index)
    .fetch_one(&mut *conn)
    .await?;
    Ok(at)
}

/// The deployment's step history, oldest first.
pub async fn step_history(
    store: &Store,
    tenant: TenantId,
    deployment: DeploymentId,
) -> Result<Vec<StepRecord>> {
    let steps: Vec<StepRecord> = sqlx::query_as(
        "SELECT id, target_name, step_index, status, reason, created_at
         FROM step_history WHERE tenant_id = $1 AND deployment_id = $2 ORDER BY id",
    )
    .bind(tenant)
    .bind(deployment)
    .fetch_all(store.pool())
    .await?;
    if steps.is_empty() {
        deployments::ensure_exists(store, tenant, deployment).await?;
    }
    Ok(steps)
}
