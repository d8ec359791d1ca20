//! Tenant secrets, encrypted at rest by the caller: only ciphertext, nonce and the id of the key
//! that sealed them are stored, never the plaintext.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// A sealed secret. Not `Serialize`: ciphertext does not belong in API responses.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedSecret {
    pub name: String,
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    /// Which encryption key sealed it, so keys can rotate.
    pub key_id: String,
    pub updated_at: DateTime<Utc>,
}

pub use ferry_api::secrets::SecretInfo;

/// Stores (or replaces) the secret `name`.
pub async fn put(
    conn: &mut PgConnection,
    tenant: TenantId,
    name: &str,
    ciphertext: &[u8],
    nonce: &[u8],
    key_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO secrets (tenant_id, name, ciphertext, nonce, key_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext,
             nonce = EXCLUDED.nonce, key_id = EXCLUDED.key_id, updated_at = now()",
    )
    .bind(tenant)
    .bind(name)
    .bind(ciphertext)
    .bind(nonce)
    .bind(key_id)
    .execute(conn)
    .await
    .map_err(write_error("secret", "tenant"))?;
    Ok(())
}

/// The sealed secret `name`, for a service that holds the key to open it.
pub async fn get(store: &Store, tenant: TenantId, name: &str) -> Result<SealedSecret> {
    let row = sqlx::query_as(
        "SELECT name, ciphertext, nonce, key_id, updated_at
         FROM secrets WHERE tenant_id = $1 AND name = $2",
    )
    .bind(tenant)
    .bind(name)
    .fetch_optional(store.pool())
    .await?;
    found(row, "secret")
}

/// The names of the tenant's secrets, sorted.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<SecretInfo>> {
    Ok(sqlx::query_as(
        "SELECT name, created_at, updated_at FROM secrets WHERE tenant_id = $1 ORDER BY name",
    )
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// Deletes the secret `name`.
pub async fn delete(conn: &mut PgConnection, tenant: TenantId, name: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM secrets WHERE tenant_id = $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("secret"));
    }
    Ok(())
}
