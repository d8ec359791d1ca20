//! People signing in to the web UI: local accounts of svc-api's own issuer and its
//! single-use authorization codes, the UI's pending sign-ins and its sessions, and the tenants
//! a person may switch between. Secrets (codes, sign-in states, session ids) are looked up by
//! their SHA-256 hash ([`hash`]); the plain values live only in the browser.
//!
//! Expired rows are never returned; [`sweep`] removes them.

use crate::Store;
use crate::error::{Result, write_error};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hex SHA-256 of a secret, as the tables store it.
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A local account of svc-api's issuer.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LocalAccount {
    pub id: Uuid,
    /// Lower-cased.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// Creates the account `email` or replaces its password; returns its id.
pub async fn put_local_account(store: &Store, email: &str, password_hash: &str) -> Result<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO local_accounts (id, email, password_hash) VALUES ($1, $2, $3)
         ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                                           updated_at = now()
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(password_hash)
    .fetch_one(store.pool())
    .await
    .map_err(write_error("local account", "local account"))
}

/// The account with `email` (lower-cased), if any.
pub async fn local_account(store: &Store, email: &str) -> Result<Option<LocalAccount>> {
    Ok(
        sqlx::query_as("SELECT id, email, password_hash FROM local_accounts WHERE email = $1")
            .bind(email)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// The account `id`, if any.
pub async fn local_account_by_id(store: &Store, id: Uuid) -> Result<Option<LocalAccount>> {
    Ok(
        sqlx::query_as("SELECT id, email, password_hash FROM local_accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// An authorization code as issued.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuthorizationCode {
    pub account_id: Uuid,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
}

/// Stores the code whose hash is `code_hash`.
pub async fn put_code(
    store: &Store,
    code_hash: &str,
    code: &AuthorizationCode,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO authorization_codes
           (code_hash, account_id, client_id, redirect_uri, code_challenge, nonce, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(code_hash)
    .bind(code.account_id)
    .bind(&code.client_id)
    .bind(&code.redirect_uri)
    .bind(&code.code_challenge)
    .bind(&code.nonce)
    .bind(expires_at)
    .execute(store.pool())
    .await
    .map_err(write_error("authorization code", "local account"))?;
    Ok(())
}

/// Takes the unexpired code: it is gone afterwards whatever the caller decides (single use,
/// RFC 6749 §4.1.2).
pub async fn take_code(store: &Store, code_hash: &str) -> Result<Option<AuthorizationCode>> {
    Ok(sqlx::query_as(
        "DELETE FROM authorization_codes WHERE code_hash = $1 AND expires_at > now()
         RETURNING account_id, client_id, redirect_uri, code_challenge, nonce",
    )
    .bind(code_hash)
    .fetch_optional(store.pool())
    .await?)
}

/// A code flow the UI started and waits to complete.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PendingSignIn {
    pub issuer: String,
    pub code_verifier: String,
    pub nonce: String,
    pub return_to: String,
}

/// Stores a pending sign-in under the hash of its `state`.
pub async fn put_sign_in(
    store: &Store,
    state_hash: &str,
    sign_in: &PendingSignIn,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ui_sign_ins (state_hash, issuer, code_verifier, nonce, return_to, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(state_hash)
    .bind(&sign_in.issuer)
    .bind(&sign_in.code_verifier)
    .bind(&sign_in.nonce)
    .bind(&sign_in.return_to)
    .bind(expires_at)
    .execute(store.pool())
    .await
    .map_err(write_error("sign-in", "sign-in"))?;
    Ok(())
}

/// Takes the unexpired pending sign-in (single use).
pub async fn take_sign_in(store: &Store, state_hash: &str) -> Result<Option<PendingSignIn>> {
    Ok(sqlx::query_as(
        "DELETE FROM ui_sign_ins WHERE state_hash = $1 AND expires_at > now()
         RETURNING issuer, code_verifier, nonce, return_to",
    )
    .bind(state_hash)
    .fetch_optional(store.pool())
    .await?)
}

/// A person's UI session.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Session {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub groups: Vec<String>,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Stores a session under the hash of its id.
pub async fn put_session(store: &Store, id_hash: &str, session: &Session) -> Result<()> {
    sqlx::query(
        "INSERT INTO ui_sessions
           (id_hash, issuer, subject, email, email_verified, groups, csrf_token, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id_hash)
    .bind(&session.issuer)
    .bind(&session.subject)
    .bind(&session.email)
    .bind(session.email_verified)
    .bind(&session.groups)
    .bind(&session.csrf_token)
    .bind(session.expires_at)
    .execute(store.pool())
    .await
    .map_err(write_error("session", "session"))?;
    Ok(())
}

/// The unexpired session, if any.
pub async fn session(store: &Store, id_hash: &str) -> Result<Option<Session>> {
    Ok(sqlx::query_as(
        "SELECT issuer, subject, email, email_verified, groups, csrf_token, expires_at
         FROM ui_sessions WHERE id_hash = $1 AND expires_at > now()",
    )
    .bind(id_hash)
    .fetch_optional(store.pool())
    .await?)
}

/// Ends the session (signing out).
pub async fn delete_session(store: &Store, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// A tenant a person may open.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonTenant {
    pub slug: String,
    pub name: String,
}

/// The tenants where the person is a user: bound to their issuer and subject, or (when the
/// issuer verified the email) invited by email and bound to nobody yet. Whether they hold a role
/// there is for the sign-in lookup to say.
pub async fn tenants_of(
    store: &Store,
    issuer: &str,
    subject: &str,
    email: &str,
    email_verified: bool,
) -> Result<Vec<PersonTenant>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT t.slug, t.name FROM tenants t
         JOIN users u ON u.tenant_id = t.id
         WHERE (u.issuer = $1 AND u.subject = $2)
            OR ($4 AND u.issuer IS NULL AND u.email = $3)
         ORDER BY t.slug",
    )
    .bind(issuer)
    .bind(subject)
    .bind(email)
    .bind(email_verified)
    .fetch_all(store.pool())
    .await?)
}

/// Removes expired codes, sign-ins and sessions (at most `limit` of each); returns how many.
pub async fn sweep(store: &Store, limit: i64) -> Result<u64> {
    let statements = [
        "DELETE FROM authorization_codes WHERE code_hash IN
           (SELECT code_hash FROM authorization_codes WHERE expires_at <= now() LIMIT $1)",
        "DELETE FROM ui_sign_ins WHERE state_hash IN
           (SELECT state_hash FROM ui_sign_ins WHERE expires_at <= now() LIMIT $1)",
        "DELETE FROM ui_sessions WHERE id_hash IN
           (SELECT id_hash FROM ui_sessions WHERE expires_at <= now() LIMIT $1)",
    ];
    let mut removed = 0;
    for sql in statements {
        removed += sqlx::query(sql)
            .bind(limit)
            .execute(store.pool())
            .await?
            .rows_affected();
    }
    Ok(removed)
}
