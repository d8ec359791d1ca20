//! Deployments: creation with their targets, the one-in-flight-per-application rule and its
//! `enqueueOne` queue, versioned state changes, reads and listing.
//!
//! One deployment per (tenant, application) may be active (`running` or `paused`). The database
//! enforces it with a partial unique index; the functions here also take a transaction-scoped
//! advisory lock on (tenant, application) so that creating, queueing and finishing for one
//! application are serialized and the queue never strands a waiting deployment. Call them
//! inside a transaction.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::events::{self, StepRecord};
use crate::ids::{DeploymentId, TenantId};
use crate::page::{Cursor, Page, clamp_limit};
use crate::targets::{self, NewTarget, Target};
pub use ferry_api::deployments::Deployment;
pub use ferry_api::status::DeploymentStatus;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;

/// One manifest file as submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub content: String,
}

/// The configuration as submitted, and the validated plan derived from it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct DeploymentConfig {
    pub deploy_file: String,
    pub manifests: Json<Vec<ManifestFile>>,
    pub plan: Json<serde_json::Value>,
}

/// A deployment with its targets and step history.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentDetail {
    pub deployment: Deployment,
    pub targets: Vec<Target>,
    pub steps: Vec<StepRecord>,
}

/// What [`create`] stores. The caller picks the id so it can name it in its outbox message.
#[derive(Clone, Debug)]
pub struct NewDeployment {
    pub id: DeploymentId,
    pub application: String,
    pub created_by: String,
    pub deploy_file: String,
    pub manifests: Vec<ManifestFile>,
    pub plan: serde_json::Value,
    pub targets: Vec<NewTarget>,
}

/// What to do when the application already has a deployment in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnBusy {
    /// Store nothing; report the running deployment.
    Reject,
    /// Store the new deployment as `waiting`; older waiting ones become `superseded`.
    EnqueueOne,
}

/// The outcome of [`create`].
#[derive(Clone, Debug)]
pub enum Created {
    /// The application was free: the deployment is `running`.
    Started(Deployment),
    /// Queued behind the running deployment; `superseded` are the older waiting ones replaced.
    Queued {
        deployment: Deployment,
        superseded: Vec<DeploymentId>,
    },
    /// [`OnBusy::Reject`] and the application is busy: nothing was stored.
    Busy { running: DeploymentId },
}

/// The outcome of [`transition`].
#[derive(Clone, Debug)]
pub struct Transitioned {
    pub deployment: Deployment,
    /// The waiting deployment that took the freed slot, now `running`.
    pub promoted: Option<Deployment>,
    /// Older waiting deployments that lost to the promoted one, now `superseded`.
    pub superseded: Vec<DeploymentId>,
}

/// Filters for [`list`].
#[derive(Clone, Debug, Default)]
pub struct DeploymentFilter {
    pub application: Option<String>,
    pub status: Option<DeploymentStatus>,
}

macro_rules! columns {
    () => {
        "tenant_id, id, application, status, reason, created_by, version, last_event_seq,
         started_at, ended_at, created_at, updated_at"
    };
}

/// Serializes create/queue/finish for one application until the caller's transaction ends.
async fn lock_application(
    conn: &mut PgConnection,
    tenant: TenantId,
    application: &str,
) -> Result<()> {
    // Two-key form in a namespace of our own, so other advisory-lock users cannot collide.
    sqlx::query("SELECT pg_advisory_xact_lock(1178948185, hashtext($1::text || '/' || $2))")
        .bind(tenant)
        .bind(application)
        .execute(conn)
        .await?;
    Ok(())
}

async fn active_of(
    conn: &mut PgConnection,
    tenant: TenantId,
    application: &str,
) -> Result<Option<DeploymentId>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM deployments
         WHERE tenant_id = $1 AND application = $2 AND status IN ('running', 'paused')",
    )
    .bind(tenant)
    .bind(application)
    .fetch_optional(conn)
    .await?)
}

/// Stores a deployment with its targets: `running` when the application is free, otherwise as
/// `on_busy` says. Call inside the transaction that also writes the outbox row.
pub async fn create(
    conn: &mut PgConnection,
    tenant: TenantId,
    new: &NewDeployment,
    on_busy: OnBusy,
) -> Result<Created> {
    lock_application(conn, tenant, &new.application).await?;
    let running = active_of(conn, tenant, &new.application).await?;
    let (status, superseded) = match (running, on_busy) {
        (None, _) => (DeploymentStatus::Running, Vec::new()),
        (Some(running), OnBusy::Reject) => return Ok(Created::Busy { running }),
        (Some(_), OnBusy::EnqueueOne) => {
            let older = supersede_waiting(conn, tenant, &new.application, None).await?;
            (DeploymentStatus::Waiting, older)
        }
    };
    let deployment: Deployment = sqlx::query_as(concat!(
        "INSERT INTO deployments (tenant_id, id, application, status, created_by, deploy_file,
                                  manifests, plan, started_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                 CASE WHEN $4 = 'running' THEN now() END, clock_timestamp())
         RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(new.id)
    .bind(&new.application)
    .bind(status)
    .bind(&new.created_by)
    .bind(&new.deploy_file)
    .bind(Json(&new.manifests))
    .bind(Json(&new.plan))
    .fetch_one(&mut *conn)
    .await
    .map_err(write_error("deployment", "tenant"))?;
    targets::insert(conn, tenant, deployment.id, &new.targets).await?;
    Ok(match status {
        DeploymentStatus::Running => Created::Started(deployment),
        _ => Created::Queued {
            deployment,
            superseded,
        },
    })
}

/// Marks the application's waiting deployments (except `keep`) superseded; returns their ids.
async fn supersede_waiting(
    conn: &mut PgConnection,
    tenant: TenantId,
    application: &str,
    keep: Option<DeploymentId>,
) -> Result<Vec<DeploymentId>> {
    let mut ids: Vec<DeploymentId> = sqlx::query_scalar(
        "UPDATE deployments SET status = 'superseded', reason = 'superseded by a newer deployment',
             ended_at = now(), version = version + 1, updated_at = now()
         WHERE tenant_id = $1 AND application = $2 AND status = 'waiting'
           AND ($3::uuid IS NULL OR id <> $3)
         RETURNING id",
    )
    .bind(tenant)
    .bind(application)
    .bind(keep)
    .fetch_all(conn)
    .await?;
    ids.sort();
    Ok(ids)
}

/// Moves the deployment to `status` if it is still at `expected_version` (else `Conflict`: re-read
/// and decide again). Ending it (a terminal status) frees the application: the newest waiting
/// deployment starts and older waiting ones are superseded, all in the caller's transaction.
/// Starting a waiting deployment while another is active violates the one-active index: a
/// `Conflict` that also aborts the caller's transaction.
pub async fn transition(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: DeploymentId,
    expected_version: i64,
    status: DeploymentStatus,
    reason: Option<&str>,
) -> Result<Transitioned> {
    if status == DeploymentStatus::Waiting {
        return Err(StoreError::conflict(
            "a deployment cannot move back to waiting",
        ));
    }
    let current = load(conn, tenant, id).await?;
    lock_application(conn, tenant, &current.application).await?;
    let updated: Option<Deployment> = sqlx::query_as(concat!(
        "UPDATE deployments SET status = $4, reason = $5, version = version + 1,
             started_at = CASE WHEN $4 IN ('running', 'paused')
                               THEN COALESCE(started_at, now()) ELSE started_at END,
             ended_at = CASE WHEN $4 IN ('waiting', 'running', 'paused') THEN NULL ELSE now() END,
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND version = $3
           AND status IN ('waiting', 'running', 'paused')
         RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(id)
    .bind(expected_version)
    .bind(status)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await
    .map_err(write_error(
        "active deployment of this application",
        "deployment",
    ))?;
    let Some(deployment) = updated else {
        let now = load(conn, tenant, id).await?;
        return Err(if now.version != expected_version {
            StoreError::conflict(format!(
                "deployment version moved ({expected_version} -> {})",
                now.version
            ))
        } else {
            StoreError::conflict(format!("deployment already ended ({})", now.status))
        });
    };
    let (promoted, superseded) = if status.is_terminal() {
        promote_next(conn, tenant, &deployment.application).await?
    } else {
        (None, Vec::new())
    };
    Ok(Transitioned {
        deployment,
        promoted,
        superseded,
    })
}

/// Starts the newest waiting deployment of a free application and supersedes older ones.
async fn promote_next(
    conn: &mut PgConnection,
    tenant: TenantId,
    application: &str,
) -> Result<(Option<Deployment>, Vec<DeploymentId>)> {
    if active_of(conn, tenant, application).await?.is_some() {
        return Ok((None, Vec::new()));
    }
    let promoted: Option<Deployment> = sqlx::query_as(concat!(
        "UPDATE deployments SET status = 'running', reason = NULL, started_at = now(),
             version = version + 1, updated_at = now()
         WHERE tenant_id = $1 AND id = (
             SELECT id FROM deployments WHERE tenant_id = $1 AND application = $2
                AND status = 'waiting' ORDER BY created_at DESC, id DESC LIMIT 1)
         RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(application)
    .fetch_optional(&mut *conn)
    .await?;
    let superseded = match &promoted {
        Some(p) => supersede_waiting(conn, tenant, application, Some(p.id)).await?,
        None => Vec::new(),
    };
    Ok((promoted, superseded))
}

/// Checks the deployment is still at `expected_version` and bumps it, for a commit that changes
/// only its targets, timers or events but must not race another replica's commit.
pub async fn bump_version(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: DeploymentId,
    expected_version: i64,
) -> Result<Deployment> {
    let updated: Option<Deployment> = sqlx::query_as(concat!(
        "UPDATE deployments SET version = version + 1, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND version = $3 RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(id)
    .bind(expected_version)
    .fetch_optional(&mut *conn)
    .await?;
    match updated {
        Some(d) => Ok(d),
        None => {
            let now = load(conn, tenant, id).await?;
            Err(StoreError::conflict(format!(
                "deployment version moved ({expected_version} -> {})",
                now.version
            )))
        }
    }
}

/// The deployment with its version, read on the caller's connection.
pub async fn load(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: DeploymentId,
) -> Result<Deployment> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM deployments WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    found(row, "deployment")
}

/// The deployment, row-locked until the caller's (short) transaction ends. Never hold it across
/// a call to a cluster or provider; prefer [`load`] plus a version check for long work.
pub async fn load_for_update(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: DeploymentId,
) -> Result<Deployment> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM deployments WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    found(row, "deployment")
}

/// `NotFound` unless the deployment exists for this tenant. Lists keyed by a deployment call it
/// when they come back empty, so another tenant's deployment reads as missing, not as empty.
pub(crate) async fn ensure_exists(store: &Store, tenant: TenantId, id: DeploymentId) -> Result<()> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM deployments WHERE tenant_id = $1 AND id = $2)",
    )
    .bind(tenant)
    .bind(id)
    .fetch_one(store.pool())
    .await?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::not_found("deployment"))
    }
}

/// The deployment.
pub async fn get(store: &Store, tenant: TenantId, id: DeploymentId) -> Result<Deployment> {
    let mut conn = store.pool().acquire().await?;
    load(&mut conn, tenant, id).await
}

/// The deployment with its targets and step history.
pub async fn detail(store: &Store, tenant: TenantId, id: DeploymentId) -> Result<DeploymentDetail> {
    let deployment = get(store, tenant, id).await?;
    let targets = targets::list(store, tenant, id).await?;
    let steps = events::step_history(store, tenant, id).await?;
    Ok(DeploymentDetail {
        deployment,
        targets,
        steps,
    })
}

/// The configuration as submitted and its plan.
pub async fn config(store: &Store, tenant: TenantId, id: DeploymentId) -> Result<DeploymentConfig> {
    let row = sqlx::query_as(
        "SELECT deploy_file, manifests, plan FROM deployments WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    found(row, "deployment")
}

/// The validated plan alone (without the submitted files), for readers that only need it.
pub async fn plan(store: &Store, tenant: TenantId, id: DeploymentId) -> Result<serde_json::Value> {
    let row: Option<(Json<serde_json::Value>,)> =
        sqlx::query_as("SELECT plan FROM deployments WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(store.pool())
            .await?;
    found(row, "deployment").map(|(plan,)| plan.0)
}

/// Deployments newest first, filtered, starting after `after` (keyset pagination), at most
/// `limit` (clamped to 1..=200).
pub async fn list(
    store: &Store,
    tenant: TenantId,
    filter: &DeploymentFilter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Page<Deployment>> {
    let limit = clamp_limit(limit);
    let mut items: Vec<Deployment> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM deployments
         WHERE tenant_id = $1 AND ($2::text IS NULL OR application = $2)
           AND ($3::text IS NULL OR status = $3)
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
         ORDER BY created_at DESC, id DESC LIMIT $6"
    ))
    .bind(tenant)
    .bind(&filter.application)
    .bind(filter.status)
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(store.pool())
    .await?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|d| Cursor {
            created_at: d.created_at,
            id: d.id.as_uuid(),
        })
    } else {
        None
    };
    Ok(Page { items, next })
}
