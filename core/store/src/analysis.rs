//! Canary analyses run by svc-canary: one row per `analysis.requested` (the request, the step
//! it names, where its judgment runs are) and one row per finished judgment run.
//!
//! Runs are taken with a lease: [`claim_due_all_tenants`] leases analyses whose next run is
//! due and whose lease is free or expired (`FOR UPDATE SKIP LOCKED`, so two replicas never take
//! the same one). The run's queries happen outside any transaction; [`record_run`] then
//! commits the run row and advances the analysis only if this replica still holds the lease
//! and the run count is the one it read, so a run counts exactly once: a replica that died
//! mid-run left nothing, and the next holder of the lease runs it again.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::{DeploymentId, TenantId};
use crate::page::clamp_limit;
use chrono::{DateTime, Utc};
pub use ferry_api::analysis::AnalysisStatus;
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// An analysis.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Analysis {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub deployment_id: DeploymentId,
    pub target_name: String,
    pub step_key: String,
    pub step_index: i32,
    /// The `analysis.requested` payload.
    pub request: Json<serde_json::Value>,
    /// The analysis step, as svc-canary resolved it from the deployment's plan.
    pub spec: Json<serde_json::Value>,
    pub status: AnalysisStatus,
    pub total_runs: i32,
    pub runs_done: i32,
    /// The analysis start: growing windows begin here.
    pub started_at: DateTime<Utc>,
    pub next_run_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub verdict: Option<Json<serde_json::Value>>,
    pub reason: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One finished judgment run.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct AnalysisRun {
    pub analysis_id: Uuid,
    pub run_index: i32,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub passed: bool,
    /// Every query's value or comparison, and its judgement.
    pub results: Json<serde_json::Value>,
    pub explanation: String,
    pub created_at: DateTime<Utc>,
}

/// What [`create`] stores.
#[derive(Clone, Debug)]
pub struct NewAnalysis {
    pub id: Uuid,
    pub deployment_id: DeploymentId,
    pub target: String,
    pub step_key: String,
    pub step_index: i32,
    pub request: serde_json::Value,
    pub spec: serde_json::Value,
    pub total_runs: i32,
    pub started_at: DateTime<Utc>,
    pub first_run_at: DateTime<Utc>,
}

/// What [`record_run`] stores.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub run_index: i32,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub passed: bool,
    pub results: serde_json::Value,
    pub explanation: String,
}

macro_rules! columns {
    () => {
        "tenant_id, id, deployment_id, target_name, step_key, step_index, request, spec, status,
         total_runs, runs_done, started_at, next_run_at, lease_owner, lease_until, verdict, reason,
         completed_at, created_at, updated_at"
    };
}

/// Stores a new running analysis; `false` when one with this id exists already (a redelivered
/// request), which is left as it is.
pub async fn create(conn: &mut PgConnection, tenant: TenantId, new: &NewAnalysis) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO analyses (tenant_id, id, deployment_id, target_name, step_key, step_index,
             request, spec, status, total_runs, started_at, next_run_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', $9, $10, $11)
         ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant)
    .bind(new.id)
    .bind(new.deployment_id)
    .bind(&new.target)
    .bind(&new.step_key)
    .bind(new.step_index)
    .bind(Json(&new.request))
    .bind(Json(&new.spec))
    .bind(new.total_runs.max(1))
    .bind(new.started_at)
    .bind(new.first_run_at)
    .execute(conn)
    .await
    .map_err(write_error("analysis", "deployment"))?;
    Ok(done.rows_affected() == 1)
}

/// Leases up to `limit` running analyses of any tenant whose next run is due and whose lease is
/// free or expired, to `owner` for `lease` (a replica's run loop: spans tenants by design).
pub async fn claim_due_all_tenants(
    conn: &mut PgConnection,
    owner: &str,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<Analysis>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let rows = sqlx::query_as(concat!(
        "WITH due AS (
             SELECT tenant_id, id FROM analyses
             WHERE status = 'running' AND next_run_at <= now()
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY next_run_at LIMIT $3
             FOR UPDATE SKIP LOCKED)
         UPDATE analyses a SET lease_owner = $1,
             lease_until = now() + make_interval(secs => $2::double precision / 1000),
             updated_at = now()
         FROM due WHERE a.tenant_id = due.tenant_id AND a.id = due.id
         RETURNING ",
        "a.tenant_id, a.id, a.deployment_id, a.target_name, a.step_key, a.step_index, a.request,
         a.spec, a.status, a.total_runs, a.runs_done, a.started_at, a.next_run_at, a.lease_owner,
         a.lease_until, a.verdict, a.reason, a.completed_at, a.created_at, a.updated_at"
    ))
    .bind(owner)
    .bind(lease_ms)
    .bind(clamp_limit(limit))
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Records run `run.run_index` of analysis `id` and moves the analysis on (`next_run_at`), if
/// `owner` still holds its lease and `run.run_index` runs are done; otherwise `Conflict` and
/// nothing changes (another replica took over, or counted the run already). The lease is
/// released.
pub async fn record_run(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    owner: &str,
    run: &NewRun,
    next_run_at: DateTime<Utc>,
) -> Result<()> {
    let moved = sqlx::query(
        "UPDATE analyses SET runs_done = runs_done + 1, next_run_at = $5, lease_owner = NULL,
             lease_until = NULL, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND status = 'running' AND lease_owner = $3
           AND runs_done = $4",
    )
    .bind(tenant)
    .bind(id)
    .bind(owner)
    .bind(run.run_index)
    .bind(next_run_at)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(StoreError::conflict(format!(
            "analysis {id}: run {} is no longer this replica's to record",
            run.run_index
        )));
    }
    sqlx::query(
        "INSERT INTO analysis_runs (tenant_id, analysis_id, run_index, window_start, window_end,
             passed, results, explanation)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(id)
    .bind(run.run_index)
    .bind(run.window_start)
    .bind(run.window_end)
    .bind(run.passed)
    .bind(Json(&run.results))
    .bind(&run.explanation)
    .execute(conn)
    .await
    .map_err(write_error("analysis run", "analysis"))?;
    Ok(())
}

/// Ends a running analysis with its verdict; `false` if it had ended already.
pub async fn finish(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    status: AnalysisStatus,
    verdict: &serde_json::Value,
    reason: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE analyses SET status = $3, verdict = $4, reason = $5, completed_at = now(),
             lease_owner = NULL, lease_until = NULL, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND status = 'running'",
    )
    .bind(tenant)
    .bind(id)
    .bind(status)
    .bind(Json(verdict))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The analysis `id`.
pub async fn get(store: &Store, tenant: TenantId, id: Uuid) -> Result<Analysis> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM analyses WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    found(row, "analysis")
}

/// The analyses of a deployment, oldest first.
pub async fn list_for_deployment(
    store: &Store,
    tenant: TenantId,
    deployment: DeploymentId,
) -> Result<Vec<Analysis>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM analyses WHERE tenant_id = $1 AND deployment_id = $2 ORDER BY created_at, id"
    ))
    .bind(tenant)
    .bind(deployment)
    .fetch_all(store.pool())
    .await?)
}

/// The finished runs of analysis `id`, in order.
pub async fn runs(store: &Store, tenant: TenantId, id: Uuid) -> Result<Vec<AnalysisRun>> {
    let mut conn = store.pool().acquire().await?;
    runs_in(&mut conn, tenant, id).await
}

/// [`runs`] in the caller's transaction (to conclude an analysis with the run just recorded).
pub async fn runs_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Vec<AnalysisRun>> {
    Ok(sqlx::query_as(
        "SELECT analysis_id, run_index, window_start, window_end, passed, results, explanation,
             created_at
         FROM analysis_runs WHERE tenant_id = $1 AND analysis_id = $2 ORDER BY run_index",
    )
    .bind(tenant)
    .bind(id)
    .fetch_all(conn)
    .await?)
}
