//! svc-webhook's deliveries (migration 0006): webhook calls and notifications, each a row with
//! a lease, so a delivery is sent by one replica at a time, retried when due, taken over when
//! its replica died, and never sent again once final. Also what the API shows of a
//! deployment's webhooks (each with its callback's result and Markdown message).

use crate::Store;
use crate::error::{Result, StoreError, write_error};
use crate::ids::{DeploymentId, TenantId};
use crate::page::clamp_limit;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
pub use ferry_api::webhooks::DeliveryStatus;
use ferry_api::webhooks::{CallbackResult, WebhookRun};
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

text_enum! {
    /// What is delivered.
    pub enum DeliveryKind {
        /// A `runWebhook` step's or a constraint's webhook call.
        Webhook = "webhook",
        /// A deployment event to a notification endpoint.
        Notification = "notification",
    }
}

/// A delivery.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub kind: DeliveryKind,
    pub deployment_id: DeploymentId,
    pub target_name: Option<String>,
    pub step_key: String,
    pub name: String,
    pub endpoint_id: Option<Uuid>,
    pub request: Json<serde_json::Value>,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub reason: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`create_leased`] stores.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub id: Uuid,
    pub kind: DeliveryKind,
    pub deployment_id: DeploymentId,
    pub target: Option<String>,
    pub step_key: String,
    pub name: String,
    pub endpoint_id: Option<Uuid>,
    pub request: serde_json::Value,
    pub max_attempts: i32,
    pub deadline: Option<DateTime<Utc>>,
}

macro_rules! columns {
    () => {
        "tenant_id, id, kind, deployment_id, target_name, step_key, name, endpoint_id, request,
         status, attempts, max_attempts, next_attempt_at, deadline, lease_owner, lease_until,
         last_status, last_error, reason, completed_at, created_at, updated_at"
    };
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Stores a new delivery already leased to `owner` for `lease` with its first attempt counted,
/// so the replica that stored it sends it at once. `None` when one with this id exists (a
/// redelivered request): it is left as it is (its lease, retries and final state rule).
pub async fn create_leased(
    conn: &mut PgConnection,
    tenant: TenantId,
    new: &NewDelivery,
    owner: &str,
    lease: std::time::Duration,
) -> Result<Option<Delivery>> {
    sqlx::query_as(concat!(
        "INSERT INTO webhook_deliveries (tenant_id, id, kind, deployment_id, target_name, step_key,
             name, endpoint_id, request, status, attempts, max_attempts, next_attempt_at,
             deadline, lease_owner, lease_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 1, $10, now(), $11, $12,
                 now() + make_interval(secs => $13::double precision / 1000))
         ON CONFLICT (tenant_id, id) DO NOTHING RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(new.id)
    .bind(new.kind)
    .bind(new.deployment_id)
    .bind(&new.target)
    .bind(&new.step_key)
    .bind(&new.name)
    .bind(new.endpoint_id)
    .bind(Json(&new.request))
    .bind(new.max_attempts.max(1))
    .bind(new.deadline)
    .bind(owner)
    .bind(millis(lease))
    .fetch_optional(conn)
    .await
    .map_err(write_error("delivery", "deployment"))
}

/// Leases up to `limit` pending deliveries of any tenant that are due and whose lease is free or
/// expired, to `owner` for `lease`, counting the attempt (a replica's retry loop: spans tenants
/// by design).
pub async fn claim_due_all_tenants(
    conn: &mut PgConnection,
    owner: &str,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let rows = sqlx::query_as(concat!(
        "WITH due AS (
             SELECT tenant_id, id FROM webhook_deliveries
             WHERE status = 'pending' AND next_attempt_at <= now()
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY next_attempt_at LIMIT $3
             FOR UPDATE SKIP LOCKED)
         UPDATE webhook_deliveries d SET lease_owner = $1, attempts = d.attempts + 1,
             lease_until = now() + make_interval(secs => $2::double precision / 1000),
             updated_at = now()
         FROM due WHERE d.tenant_id = due.tenant_id AND d.id = due.id
         RETURNING ",
        "d.tenant_id, d.id, d.kind, d.deployment_id, d.target_name, d.step_key, d.name,
         d.endpoint_id, d.request, d.status, d.attempts, d.max_attempts, d.next_attempt_at,
         d.deadline, d.lease_owner, d.lease_until, d.last_status, d.last_error, d.reason,
         d.completed_at, d.created_at, d.updated_at"
    ))
    .bind(owner)
    .bind(millis(lease))
    .bind(clamp_limit(limit))
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// What one attempt observed.
#[derive(Clone, Debug, Default)]
pub struct Attempt {
    /// The answer's status, if any.
    pub status: Option<i32>,
    /// Why it failed, one line (never a secret).
    pub error: Option<String>,
}

/// Ends delivery `id` in `status` with `reason`, if `owner` still holds it pending; `false`
/// otherwise (another replica took over and finished it, or it was final already).
pub async fn finish(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    owner: &str,
    status: DeliveryStatus,
    attempt: &Attempt,
    reason: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $4, last_status = $5, last_error = $6,
             reason = $7, completed_at = now(), lease_owner = NULL, lease_until = NULL,
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'pending'",
    )
    .bind(tenant)
    .bind(id)
    .bind(owner)
    .bind(status)
    .bind(attempt.status)
    .bind(&attempt.error)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives delivery `id` back for another attempt at `at`, if `owner` still holds it; `false`
/// otherwise.
pub async fn retry_at(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    owner: &str,
    at: DateTime<Utc>,
    attempt: &Attempt,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $4, last_status = $5, last_error = $6,
             lease_owner = NULL, lease_until = NULL, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'pending'",
    )
    .bind(tenant)
    .bind(id)
    .bind(owner)
    .bind(at)
    .bind(attempt.status)
    .bind(&attempt.error)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The delivery.
pub async fn get(store: &Store, tenant: TenantId, id: Uuid) -> Result<Delivery> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.ok_or_else(|| StoreError::not_found("delivery"))
}

/// Uses up the callback of webhook run `id` because its call failed, so a late callback cannot
/// report it; `false` when the callback was used already (it came before the failure was known:
/// its result stands).
pub async fn close_callback(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    reason: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_callbacks SET used_at = now(), succeeded = false, details = $3,
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL",
    )
    .bind(tenant)
    .bind(id)
    .bind(Json(serde_json::json!({ "error": reason })))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A webhook of a deployment as the API shows it: the delivery and its callback.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct WebhookView {
    pub id: Uuid,
    pub name: String,
    pub target_name: Option<String>,
    pub step_key: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether the call waits for a callback.
    pub has_callback: bool,
    pub callback_expires_at: Option<DateTime<Utc>>,
    pub callback_used_at: Option<DateTime<Utc>>,
    pub callback_succeeded: Option<bool>,
    /// The callback's details (`mdMessage`, or the failure that closed it).
    pub callback_details: Option<Json<serde_json::Value>>,
}

/// The call as the API shows it: its callback (when it waits for one) with the caller's
/// Markdown message.
impl From<WebhookView> for WebhookRun {
    fn from(r: WebhookView) -> Self {
        let md_message = (r.callback_details.as_ref())
            .and_then(|d| d.0.get("mdMessage"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        WebhookRun {
            id: r.id,
            name: r.name,
            target: r.target_name,
            step: r.step_key,
            status: r.status,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            last_status: r.last_status,
            last_error: r.last_error,
            reason: r.reason,
            created_at: r.created_at,
            completed_at: r.completed_at,
            callback: r.has_callback.then_some(CallbackResult {
                expires_at: r.callback_expires_at,
                used_at: r.callback_used_at,
                success: r.callback_succeeded,
                md_message,
            }),
        }
    }
}

/// The webhooks of a deployment, oldest first, at most `limit`.
pub async fn list_for_deployment(
    store: &Store,
    tenant: TenantId,
    deployment: DeploymentId,
    limit: i64,
) -> Result<Vec<WebhookView>> {
    let rows = sqlx::query_as(
        "SELECT d.id, d.name, d.target_name, d.step_key, d.status, d.attempts, d.max_attempts,
                d.last_status, d.last_error, d.reason, d.created_at, d.completed_at,
                c.id IS NOT NULL AS has_callback, c.expires_at AS callback_expires_at,
                c.used_at AS callback_used_at, c.succeeded AS callback_succeeded,
                c.details AS callback_details
         FROM webhook_deliveries d
         LEFT JOIN webhook_callbacks c ON c.tenant_id = d.tenant_id AND c.id = d.id
         WHERE d.tenant_id = $1 AND d.deployment_id = $2 AND d.kind = 'webhook'
         ORDER BY d.created_at, d.id LIMIT $3",
    )
    .bind(tenant)
    .bind(deployment)
    .bind(clamp_limit(limit))
    .fetch_all(store.pool())
    .await?;
    Ok(rows)
}

/// The networks `tenant` allows its direct webhooks and notifications to reach besides public
/// addresses (empty when never set).
pub async fn allowed_networks(store: &Store, tenant: TenantId) -> Result<Vec<String>> {
    let row: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT allowed_networks FROM tenant_network_settings WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.unwrap_or_default())
}

/// Replaces the networks `tenant` allows (validated by the caller).
pub async fn set_allowed_networks(
    conn: &mut PgConnection,
    tenant: TenantId,
    networks: &[String],
    by: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tenant_network_settings (tenant_id, allowed_networks, updated_by)
         VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET allowed_networks = $2, updated_by = $3,
             updated_at = now()",
    )
    .bind(tenant)
    .bind(networks)
    .bind(by)
    .execute(conn)
    .await
    .map_err(write_error("network settings", "tenant"))?;
    Ok(())
}
