//! Machine credentials (OAuth2 client credentials): the client id, the argon2 hash of the secret
//! (hashing and verifying are ferry-auth's), the roles bound to the credential, revocation.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
use crate::roles::{self, Principal, PrincipalKind};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A machine credential with the names of its roles.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Credential {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub name: String,
    pub client_id: String,
    /// The argon2 PHC string; never serialized into responses.
    #[serde(skip_serializing)]
    pub secret_hash: String,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Role names, sorted.
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The credential as the API shows it (without its secret's hash).
impl From<Credential> for ferry_api::credentials::Credential {
    fn from(c: Credential) -> Self {
        ferry_api::credentials::Credential {
            tenant_id: c.tenant_id,
            id: c.id,
            name: c.name,
            client_id: c.client_id,
            revoked_at: c.revoked_at,
            roles: c.roles,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// What [`create`] needs. The secret is already hashed by the caller.
#[derive(Clone, Debug)]
pub struct NewCredential {
    pub name: String,
    pub client_id: String,
    pub secret_hash: String,
    pub roles: Vec<String>,
}

macro_rules! credential_select {
    () => {
        "SELECT c.tenant_id, c.id, c.name, c.client_id, c.secret_hash, c.revoked_at,
                c.created_at, c.updated_at,
                COALESCE((SELECT array_agg(r.name ORDER BY r.name)
                          FROM role_bindings b
                          JOIN roles r ON r.tenant_id = b.tenant_id AND r.id = b.role_id
                          WHERE b.tenant_id = c.tenant_id AND b.principal_kind = 'credential'
                            AND b.principal_id = c.id), '{}') AS roles
         FROM credentials c "
    };
}

/// Creates a credential bound to `new.roles`. A taken name or client id is a conflict; an
/// unknown role is `NotFound` (roll the transaction back).
pub async fn create(
    conn: &mut PgConnection,
    tenant: TenantId,
    new: &NewCredential,
) -> Result<Credential> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO credentials (tenant_id, id, name, client_id, secret_hash)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant)
    .bind(id)
    .bind(&new.name)
    .bind(&new.client_id)
    .bind(&new.secret_hash)
    .execute(&mut *conn)
    .await
    .map_err(write_error("credential", "tenant"))?;
    let principal = Principal {
        kind: PrincipalKind::Credential,
        id,
    };
    for role in &new.roles {
        roles::bind(conn, tenant, principal, role).await?;
    }
    get_in(conn, tenant, id).await
}

async fn get_in(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<Credential> {
    let row = sqlx::query_as(concat!(
        credential_select!(),
        "WHERE c.tenant_id = $1 AND c.id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    found(row, "credential")
}

/// The credential with `id`, revoked or not.
pub async fn get(store: &Store, tenant: TenantId, id: Uuid) -> Result<Credential> {
    let mut conn = store.pool().acquire().await?;
    get_in(&mut conn, tenant, id).await
}

/// The credential a token request names, for verifying its secret. A revoked credential is
/// `NotFound`, exactly like an unknown one, so a token is never issued for it.
pub async fn find_for_token(
    store: &Store,
    tenant: TenantId,
    client_id: &str,
) -> Result<Credential> {
    let row = sqlx::query_as(concat!(
        credential_select!(),
        "WHERE c.tenant_id = $1 AND c.client_id = $2 AND c.revoked_at IS NULL"
    ))
    .bind(tenant)
    .bind(client_id)
    .fetch_optional(store.pool())
    .await?;
    found(row, "credential")
}

/// All credentials of the tenant (revoked ones included), by name.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<Credential>> {
    Ok(sqlx::query_as(concat!(
        credential_select!(),
        "WHERE c.tenant_id = $1 ORDER BY c.name"
    ))
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// Revokes the credential; revoking again keeps the first revocation time.
pub async fn revoke(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<Credential> {
    let done = sqlx::query(
        "UPDATE credentials SET revoked_at = COALESCE(revoked_at, now()), updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("credential"));
    }
    get_in(conn, tenant, id).await
}
