//! Manual approvals (`pause: untilApproved`): created by the scheduler when a step waits, decided
//! once through the API. Whether the decider holds one of `requires_roles` is the API's check.

use crate::error::{Result, StoreError, found, write_error};
use crate::ids::{DeploymentId, TenantId};
use crate::{Store, deployments};
use chrono::{DateTime, Utc};
pub use ferry_api::deployments::Approval;
pub use ferry_api::status::Decision;

use sqlx::PgConnection;
use uuid::Uuid;

/// What [`create`] stores.
#[derive(Clone, Debug)]
pub struct NewApproval {
    pub target: String,
    pub step_key: String,
    pub requires_roles: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

macro_rules! columns {
    () => {
        "tenant_id, id, deployment_id, target_name, step_key, requires_roles, expires_at,
         decision, decided_by, decided_at, created_at"
    };
}

/// Creates the approval for a waiting step, or returns the existing one for the same
/// (deployment, target, step): a redelivered message must not ask twice. Unknown target:
/// `NotFound`.
pub async fn create(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    new: &NewApproval,
) -> Result<Approval> {
    sqlx::query(
        "INSERT INTO approvals (tenant_id, id, deployment_id, target_name, step_key,
                                requires_roles, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, deployment_id, target_name, step_key) DO NOTHING",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(deployment)
    .bind(&new.target)
    .bind(&new.step_key)
    .bind(&new.requires_roles)
    .bind(new.expires_at)
    .execute(&mut *conn)
    .await
    .map_err(write_error("approval", "target"))?;
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM approvals WHERE tenant_id = $1 AND deployment_id = $2 AND target_name = $3
           AND step_key = $4"
    ))
    .bind(tenant)
    .bind(deployment)
    .bind(&new.target)
    .bind(&new.step_key)
    .fetch_optional(conn)
    .await?;
    found(row, "approval")
}

/// Records `decision` by `decided_by`, once. Already decided or expired: `Conflict`, and the
/// first decision stands.
pub async fn decide(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    decision: Decision,
    decided_by: &str,
) -> Result<Approval> {
    let decided: Option<Approval> = sqlx::query_as(concat!(
        "UPDATE approvals SET decision = $3, decided_by = $4, decided_at = now(),
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND decision IS NULL
           AND (expires_at IS NULL OR expires_at > now())
         RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(id)
    .bind(decision)
    .bind(decided_by)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(approval) = decided {
        return Ok(approval);
    }
    let current = load(conn, tenant, id).await?;
    Err(match current.decision {
        Some(d) => StoreError::conflict(format!("approval already decided ({d})")),
        None => StoreError::conflict("approval expired"),
    })
}

async fn load(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<Approval> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM approvals WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    found(row, "approval")
}

/// The approval.
pub async fn get(store: &Store, tenant: TenantId, id: Uuid) -> Result<Approval> {
    let mut conn = store.pool().acquire().await?;
    load(&mut conn, tenant, id).await
}

/// Undecided, unexpired approvals, oldest first; only `deployment`'s when given (`NotFound` if
/// that deployment is unknown).
pub async fn list_pending(
    store: &Store,
    tenant: TenantId,
    deployment: Option<DeploymentId>,
) -> Result<Vec<Approval>> {
    let pending: Vec<Approval> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM approvals
         WHERE tenant_id = $1 AND decision IS NULL AND (expires_at IS NULL OR expires_at > now())
           AND ($2::uuid IS NULL OR deployment_id = $2)
         ORDER BY created_at, id"
    ))
    .bind(tenant)
    .bind(deployment)
    .fetch_all(store.pool())
    .await?;
    if let (true, Some(deployment)) = (pending.is_empty(), deployment) {
        deployments::ensure_exists(store, tenant, deployment).await?;
    }
    Ok(pending)
}
