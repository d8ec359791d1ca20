//! A person's tokens from svc-api's own issuer: short-lived access tokens for the REST API
//! ([`PersonClaims`], verified by [`super::local_people`]) and rotating refresh tokens.
//!
//! A refresh token is 256 random bits, stored only as its hash, and spent by its one use
//! (`grant_type=refresh_token`), which issues the next token of its family. A spent token
//! presented again means it leaked: the whole family is revoked (reuse detection, RFC 9700
//! §4.14.2). Each token lives [`REFRESH_TTL`] unused, a family at most [`FAMILY_TTL`] from the
//! sign-in. `POST /oauth/revoke` (RFC 7009) revokes a token's family (`ferry logout`).

use crate::identity::crypto::generate_secret;
use crate::identity::device::CLI_CLIENT_ID;
use crate::identity::keys::{API_AUDIENCE, error_chain};
use crate::identity::token::{OAuthError, no_store};
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ferry_store::sign_in;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::net::SocketAddr;
use std::time::Duration;
use uuid::Uuid;

/// Lifetime of a person's access token.
pub const ACCESS_TTL: Duration = Duration::from_secs(900);
/// How long a refresh token may wait for its use.
pub const REFRESH_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// How long a family of refresh tokens lives from the sign-in, however often it is used.
pub const FAMILY_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The value of [`PersonClaims::token_use`].
pub const PERSON_TOKEN_USE: &str = "person";
/// Longest refresh token accepted (ours are 43 characters).
const MAX_REFRESH_TOKEN: usize = 128;

/// The claims of a person's access token of this issuer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PersonClaims {
    pub iss: String,
    /// The local account's id.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub email: String,
    /// Always [`PERSON_TOKEN_USE`]: tells these tokens from machine credentials' ones.
    pub token_use: String,
    pub client_id: String,
}

/// What the token endpoint answers for a person.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub scope: String,
}

fn server_error(error: impl Into<sqlx::Error>) -> OAuthError {
    let error = error.into();
    tracing::error!(error = %error_chain(&error), "cannot store a refresh token");
    OAuthError::server_error()
}

/// Signs an access token for `account` (who must still exist).
async fn access_token(
    state: &AppState,
    conn: &mut PgConnection,
    account: Uuid,
    client_id: &str,
) -> Result<String, OAuthError> {
    let email: Option<String> =
        sqlx::query_scalar("SELECT email FROM local_accounts WHERE id = $1")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await
            .map_err(server_error)?;
    let email = email.ok_or_else(|| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the account is gone",
        )
    })?;
    let now = ferry_auth::unix_now();
    let claims = PersonClaims {
        iss: state.issuer.issuer.clone(),
        sub: account.to_string(),
        aud: API_AUDIENCE.into(),
        exp: now + ACCESS_TTL.as_secs(),
        iat: now,
        email,
        token_use: PERSON_TOKEN_USE.into(),
        client_id: client_id.into(),
    };
    state.keys.sign_claims(&claims).await.map_err(|error| {
        tracing::error!(error = %error_chain(&error), "cannot sign a person's token");
        OAuthError::server_error()
    })
}

/// Stores a new refresh token of `family` and returns it.
async fn put_refresh(
    conn: &mut PgConnection,
    family: Uuid,
    account: Uuid,
    client_id: &str,
    scope: &str,
    family_expires: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let token = generate_secret();
    let expires = (Utc::now() + REFRESH_TTL).min(family_expires);
    sqlx::query(
        "INSERT INTO refresh_tokens \
         (token_hash, family_id, account_id, client_id, scope, expires_at, family_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(sign_in::hash(&token))
    .bind(family)
    .bind(account)
    .bind(client_id)
    .bind(scope)
    .bind(expires)
    .bind(family_expires)
    .execute(&mut *conn)
    .await
    .map_err(server_error)?;
    Ok(token)
}

/// The tokens of a new sign-in of `account` (a new refresh-token family), in `conn`'s
/// transaction.
pub async fn issue_new_family(
    state: &AppState,
    conn: &mut PgConnection,
    account: Uuid,
    client_id: &str,
    scope: &str,
) -> Result<Issued, OAuthError> {
    // Families past their life are swept as new ones start.
    sqlx::query("DELETE FROM refresh_tokens WHERE family_expires_at < now()")
        .execute(&mut *conn)
        .await
        .map_err(server_error)?;
    let access_token = access_token(state, conn, account, client_id).await?;
    let family_expires = Utc::now() + FAMILY_TTL;
    let refresh_token = put_refresh(
        conn,
        Uuid::new_v4(),
        account,
        client_id,
        scope,
        family_expires,
    )
    .await?;
    Ok(Issued {
        access_token,
        refresh_token,
        expires_in: ACCESS_TTL.as_secs(),
        scope: scope.to_string(),
    })
}

/// A stored refresh token, as its use reads it.
#[derive(Debug, sqlx::FromRow)]
struct Stored {
    family_id: Uuid,
    account_id: Uuid,
    client_id: String,
    scope: String,
    expires_at: DateTime<Utc>,
    family_expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// The token endpoint's `refresh_token` grant: spends the token and issues the next one.
pub async fn refresh(
    state: &AppState,
    token: Option<&str>,
    client_id: Option<&str>,
) -> Result<Issued, OAuthError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let client_id = client_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    if token.len() > MAX_REFRESH_TOKEN {
        return Err(invalid_grant("the refresh token is malformed"));
    }
    let hash = sign_in::hash(token);
    let mut tx = state.store.pool().begin().await.map_err(server_error)?;
    let stored: Option<Stored> = sqlx::query_as(
        "SELECT family_id, account_id, client_id, scope, expires_at, family_expires_at, \
         used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await
    .map_err(server_error)?;
    let stored = stored.ok_or_else(|| invalid_grant("the refresh token is unknown"))?;
    if stored.client_id != client_id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if stored.revoked_at.is_some() {
        return Err(invalid_grant(
            "the refresh token was revoked; sign in again",
        ));
    }
    if stored.used_at.is_some() {
        revoke_family(&mut tx, stored.family_id).await?;
        tx.commit().await.map_err(server_error)?;
        tracing::warn!(
            account = %stored.account_id,
            family = %stored.family_id,
            "a spent refresh token was presented again: its family is revoked"
        );
        return Err(invalid_grant(
            "the refresh token was already used; every token of this sign-in is revoked, sign in again",
        ));
    }
    let now = Utc::now();
    if now >= stored.expires_at || now >= stored.family_expires_at {
        return Err(invalid_grant("the refresh token expired; sign in again"));
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1")
        .bind(&hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(server_error)?;
    let access_token = access_token(state, &mut tx, stored.account_id, client_id).await?;
    let refresh_token = put_refresh(
        &mut tx,
        stored.family_id,
        stored.account_id,
        client_id,
        &stored.scope,
        stored.family_expires_at,
    )
    .await?;
    tx.commit().await.map_err(server_error)?;
    Ok(Issued {
        access_token,
        refresh_token,
        expires_in: ACCESS_TTL.as_secs(),
        scope: stored.scope,
    })
}

async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> Result<(), OAuthError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .execute(&mut *conn)
    .await
    .map_err(server_error)?;
    Ok(())
}

/// The form of a revocation request (RFC 7009 §2.1).
#[derive(Debug, Default, Deserialize)]
pub struct RevokeRequest {
    token: Option<String>,
    client_id: Option<String>,
    // `token_type_hint` is optional to honour (RFC 7009 §2.1): only refresh tokens are
    // revocable here, so it is not read.
}

/// `POST /oauth/revoke`: revokes the family of a refresh token of the client. Unknown tokens
/// (and access tokens, which are short-lived and not revocable here) are answered 200 as the
/// RFC asks, so the endpoint tells nothing about which tokens exist.
pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<RevokeRequest>, FormRejection>,
) -> Response {
    let outcome = async {
        state
            .token_limits
            .admit_address(peer.ip())
            .map_err(OAuthError::held)?;
        let Form(request) = form.map_err(|rejection| {
            // Keeps the status of a body over the limit (413).
            OAuthError::new(
                rejection.status(),
                "invalid_request",
                format!(
                    "expected an application/x-www-form-urlencoded body of 16 KiB at most: \
                     {rejection}"
                ),
            )
        })?;
        if request.client_id.as_deref() != Some(CLI_CLIENT_ID) {
            return Err(OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                format!("unknown client: only {CLI_CLIENT_ID} holds refresh tokens here"),
            ));
        }
        let token = request
            .token
            .filter(|t| !t.is_empty() && t.len() <= MAX_REFRESH_TOKEN)
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let mut conn = state.store.pool().acquire().await.map_err(server_error)?;
        let family: Option<Uuid> = sqlx::query_scalar(
            "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2",
        )
        .bind(sign_in::hash(&token))
        .bind(CLI_CLIENT_ID)
        .fetch_optional(&mut *conn)
        .await
        .map_err(server_error)?;
        if let Some(family) = family {
            revoke_family(&mut conn, family).await?;
            tracing::info!(%family, "refresh tokens revoked");
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(error) => error.into_response(),
    }
}
