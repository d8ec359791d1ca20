//! Webhook callbacks: a single-use URL handed to a `runWebhook` call so the remote system can
//! report the result later. Only a hash of the URL's token is stored.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::{DeploymentId, TenantId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// How a callback token is stored and looked up: lowercase hex SHA-256 of the token in the URL.
/// The scheduler stores it when it hands the URL out; svc-api looks the callback up by it.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A callback and, once used, the result it brought.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Callback {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub deployment_id: DeploymentId,
    pub target_name: Option<String>,
    pub webhook_name: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub succeeded: Option<bool>,
    pub details: Option<Json<serde_json::Value>>,
    pub created_at: DateTime<Utc>,
}

/// What [`create`] stores.
#[derive(Clone, Debug)]
pub struct NewCallback {
    pub target: Option<String>,
    pub webhook_name: String,
    /// Hash of the URL's random token (the token itself is never stored).
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "tenant_id, id, deployment_id, target_name, webhook_name, expires_at, used_at, succeeded,
         details, created_at"
    };
}

/// Creates a callback for the deployment; an unknown deployment is `NotFound`.
pub async fn create(
    conn: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    new: &NewCallback,
) -> Result<Callback> {
    sqlx::query_as(concat!(
        "INSERT INTO webhook_callbacks (tenant_id, id, deployment_id, target_name, webhook_name,
                                        token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(deployment)
    .bind(&new.target)
    .bind(&new.webhook_name)
    .bind(&new.token_hash)
    .bind(new.expires_at)
    .fetch_one(conn)
    .await
    .map_err(write_error("webhook callback", "deployment"))
}

/// Uses the callback whose token hashes to `token_hash`, recording the result. Single use: a
/// second call, or one after `expires_at`, is a `Conflict`; an unknown token is `NotFound`.
pub async fn complete(
    conn: &mut PgConnection,
    tenant: TenantId,
    token_hash: &str,
    succeeded: bool,
    details: &serde_json::Value,
) -> Result<Callback> {
    let used: Option<Callback> = sqlx::query_as(concat!(
        "UPDATE webhook_callbacks SET used_at = now(), succeeded = $3, details = $4,
             updated_at = now()
         WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > now()
         RETURNING ",
        columns!()
    ))
    .bind(tenant)
    .bind(token_hash)
    .bind(succeeded)
    .bind(Json(details))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(callback) = used {
        return Ok(callback);
    }
    let used_at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "SELECT used_at FROM webhook_callbacks WHERE tenant_id = $1 AND token_hash = $2",
    )
    .bind(tenant)
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Err(match used_at {
        None => StoreError::not_found("webhook callback"),
        Some(Some(_)) => StoreError::conflict("webhook callback already used"),
        Some(None) => StoreError::conflict("webhook callback expired"),
    })
}

/// The callback.
pub async fn get(store: &Store, tenant: TenantId, id: Uuid) -> Result<Callback> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_callbacks WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    found(row, "webhook callback")
}

#[cfg(test)]
mod tests {
    #[test]
    fn callback_tokens_hash_to_hex_sha256() {
        assert_eq!(
            super::token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
