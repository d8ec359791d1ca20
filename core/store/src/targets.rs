//! Deployment targets: the persisted desired and observed state the scheduler reconciles, with
//! their own version for optimistic concurrency.

use crate::error::{Result, StoreError, found, write_error};
use crate::ids::{DeploymentId, TenantId};
use crate::{Store, deployments};
pub use ferry_api::deployments::Target;
pub use ferry_api::status::{TargetPhase, TargetStatus};
use sqlx::PgConnection;
use sqlx::types::Json;

/// A target as created with its deployment (status `pending`, step 0).
#[derive(Clone, Debug)]
pub struct NewTarget {
    pub name: String,
    pub account: String,
    pub namespace: String,
    pub desired: serde_json::Value,
}

/// The new state [`save`] writes.
#[derive(Clone, Debug)]
pub struct TargetState {
    pub status: TargetStatus,
    pub phase: Option<TargetPhase>,
    pub desired: serde_json::Value,
    pub observed: serde_json::Value,
    pub step_index: i32,
    pub reason: Option<String>,
}

macro_rules! columns {
    () => {
        "tenant_id, deployment_id, name, account, namespace, status, phase, desired, observed,
         step_index, reason, version, started_at, ended_at, created_at, updated_at"
    };
}

pub(crate) async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    targets: &[NewTarget],
) -> Result<()> {
    for t in targets {
        sqlx::query(
            "INSERT INTO targets (tenant_id, deployment_id, name, account, namespace, desired)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant)
        .bind(deployment)
        .bind(&t.name)
        .bind(&t.account)
        .bind(&t.namespace)
        .bind(Json(&t.desired))
        .execute(&mut *conn)
        .await
        .map_err(write_error("target", "deployment"))?;
    }
    Ok(())
}

/// Writes `state` if the target is still at `expected_version` (else `Conflict`: re-read and
/// reconcile again). `started_at` is set the first time it runs, `ended_at` when it ends.
pub async fn save(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    name: &str,
    expected_version: i64,
    state: &TargetState,
) -> Result<Target> {
    let updated: Option<Target> = sqlx::query_as(concat!(
        "UPDATE targets SET status = $5, phase = $6, desired = $7, observed = $8,
             step_index = $9, reason = $10, version = version + 1, updated_at = now(),
             started_at = CASE WHEN $5 = 'pending' THEN started_at
                               ELSE COALESCE(started_at, now()) END,
             ended_at = CASE WHEN $5 IN ('succeeded', 'failed', 'rolled_back', 'aborted', 'skipped')
                             THEN COALESCE(ended_at, now()) END
         WHERE tenant_id = $1 AND deployment_id = $2 AND name = $3 AND version = $4
         RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(deployment)
    .bind(name)
    .bind(expected_version)
    .bind(state.status)
    .bind(state.phase)
    .bind(Json(&state.desired))
    .bind(Json(&state.observed))
    .bind(state.step_index)
    .bind(&state.reason)
    .fetch_optional(&mut *conn)
    .await?;
    match updated {
        Some(t) => Ok(t),
        None => {
            let now = load(conn, tenant, deployment, name).await?;
            Err(StoreError::conflict(format!(
                "target {name:?} version moved ({expected_version} -> {})",
                now.version
            )))
        }
    }
}

/// The target with its version, read on the caller's connection.
pub async fn load(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    name: &str,
) -> Result<Target> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM targets WHERE tenant_id = $1 AND deployment_id = $2 AND name = $3"
    ))
    .bind(tenant)
    .bind(deployment)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    found(row, "target")
}

/// The target.
pub async fn get(
    store: &Store,
    tenant: TenantId,
    deployment: DeploymentId,
    name: &str,
) -> Result<Target> {
    let mut conn = store.pool().acquire().await?;
    load(&mut conn, tenant, deployment, name).await
}

/// The deployment's targets, by name.
pub async fn list(
    store: &Store,
    tenant: TenantId,
    deployment: DeploymentId,
) -> Result<Vec<Target>> {
    let targets: Vec<Target> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM targets WHERE tenant_id = $1 AND deployment_id = $2 ORDER BY name"
    ))
    .bind(tenant)
    .bind(deployment)
    .fetch_all(store.pool())
    .await?;
    if targets.is_empty() {
        deployments::ensure_exists(store, tenant, deployment).await?;
    }
    Ok(targets)
}
