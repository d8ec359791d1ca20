//! The device authorization grant (RFC 8628) of svc-api's own issuer, for people with a local
//! account signing in to the `ferry` CLI ([`CLI_CLIENT_ID`], a public client).
//!
//! `POST /oauth/device_authorization` hands out a device code (the CLI keeps it) and a user
//! code (the person types it at the verification page, [`super::device_page`]); both are stored
//! only as hashes, live [`DEVICE_CODE_TTL`], and are spent once. `POST /oauth/token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` ([`poll`]) answers
//! `authorization_pending` until the person decides, `slow_down` (and a longer interval) when
//! polled faster than the interval, `access_denied`, `expired_token`, or the person's access
//! and refresh tokens ([`super::refresh`]).

use crate::identity::crypto::generate_secret;
use crate::identity::keys::error_chain;
use crate::identity::refresh::{self, Issued};
use crate::identity::token::{OAuthError, no_store};
use crate::identity::token_limits::Held;
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ferry_store::sign_in;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;
use uuid::Uuid;

/// The CLI's client id at this issuer.
pub const CLI_CLIENT_ID: &str = "ferry-cli";
/// The grant type of the token request that polls with a device code.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a person has to enter the user code and decide.
pub const DEVICE_CODE_TTL: Duration = Duration::from_secs(600);
/// The polling interval first given to the client.
pub const POLL_INTERVAL_SECS: i32 = 5;
/// What each `slow_down` adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN_SECS: i32 = 5;
/// The longest interval a slowed-down client is told to keep.
const MAX_INTERVAL_SECS: i32 = 300;
/// Pending device authorizations the issuer keeps at most (a flood fills this, not the disk).
const MAX_PENDING: i64 = 10_000;
/// The user-code alphabet: consonants only, none easily mistaken for another (RFC 8628 §6.1).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters of a user code (20^8 ≈ 2.6·10^10 codes).
pub const USER_CODE_LEN: usize = 8;
/// Scopes a client may ask for.
const SCOPES: [&str; 5] = ["openid", "email", "profile", "offline_access", "ferry"];
/// Longest `scope` accepted.
const MAX_SCOPE: usize = 256;
/// Longest device code accepted (ours are 43 characters).
const MAX_DEVICE_CODE: usize = 128;

/// The form of a device authorization request.
#[derive(Debug, Default, Deserialize)]
pub struct DeviceRequest {
    client_id: Option<String>,
    scope: Option<String>,
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
struct DeviceResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: i32,
}

/// A new user code, `XXXX-XXXX` from [`USER_CODE_ALPHABET`].
pub fn new_user_code() -> String {
    let mut rng = rand::rng();
    let chars: String = (0..USER_CODE_LEN)
        .map(|_| USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// The user code as typed, normalized (case, dashes and spaces dropped), when it can be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    if typed.len() > 32 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// The scope asked for, checked: known scopes only, each once.
fn checked_scope(scope: Option<&str>) -> Result<String, OAuthError> {
    let scope = scope.unwrap_or("").trim();
    if scope.len() > MAX_SCOPE {
        return Err(OAuthError::invalid_request(
            "scope is longer than 256 bytes",
        ));
    }
    let mut names: Vec<&str> = scope.split_whitespace().collect();
    if let Some(unknown) = names.iter().find(|name| !SCOPES.contains(name)) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("unknown scope {unknown:?}; this issuer offers {SCOPES:?}"),
        ));
    }
    names.sort_unstable();
    names.dedup();
    Ok(names.join(" "))
}

/// `POST /oauth/device_authorization`.
pub async fn device_authorization(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<DeviceRequest>, FormRejection>,
) -> Response {
    match authorize_device(&state, peer, form).await {
        Ok(answer) => (StatusCode::OK, no_store(), axum::Json(answer)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn authorize_device(
    state: &AppState,
    peer: SocketAddr,
    form: Result<Form<DeviceRequest>, FormRejection>,
) -> Result<DeviceResponse, OAuthError> {
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
                "expected an application/x-www-form-urlencoded body of 16 KiB at most: {rejection}"
            ),
        )
    })?;
    if request.client_id.as_deref() != Some(CLI_CLIENT_ID) {
        return Err(OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            format!("unknown client: this issuer's device flow serves only {CLI_CLIENT_ID}"),
        ));
    }
    let scope = checked_scope(request.scope.as_deref())?;
    let pool = state.store.pool();
    let server_error = |error: sqlx::Error| {
        tracing::error!(error = %error_chain(&error), "cannot store a device authorization");
        OAuthError::server_error()
    };
    sqlx::query("DELETE FROM device_authorizations WHERE expires_at < now()")
        .execute(pool)
        .await
        .map_err(server_error)?;
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM device_authorizations")
        .fetch_one(pool)
        .await
        .map_err(server_error)?;
    if pending >= MAX_PENDING {
        return Err(OAuthError::held(Held::Busy));
    }
    let device_code = generate_secret();
    let expires = Utc::now() + DEVICE_CODE_TTL;
    // A user code already pending (1 in 2.6·10^10 per pending code) is drawn again.
    for _ in 0..3 {
        let user_code = new_user_code();
        let normalized = normalize_user_code(&user_code).expect("drawn from the alphabet");
        let inserted = sqlx::query(
            "INSERT INTO device_authorizations \
             (device_code_hash, user_code_hash, client_id, scope, interval_secs, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_code_hash) DO NOTHING",
        )
        .bind(sign_in::hash(&device_code))
        .bind(sign_in::hash(&normalized))
        .bind(CLI_CLIENT_ID)
        .bind(&scope)
        .bind(POLL_INTERVAL_SECS)
        .bind(expires)
        .execute(pool)
        .await
        .map_err(server_error)?;
        if inserted.rows_affected() == 1 {
            let verification_uri = format!(
                "{}{}",
                state.issuer.issuer,
                super::discovery::DEVICE_PAGE_PATH
            );
            let complete = format!(
                "{verification_uri}?{}",
                serde_urlencoded::to_string([("user_code", &user_code)]).unwrap_or_default()
            );
            tracing::info!("device authorization started");
            return Ok(DeviceResponse {
                device_code,
                user_code,
                verification_uri,
                verification_uri_complete: complete,
                expires_in: DEVICE_CODE_TTL.as_secs(),
                interval: POLL_INTERVAL_SECS,
            });
        }
    }
    Err(OAuthError::server_error())
}

/// One stored device authorization, as a poll reads it.
#[derive(Debug, sqlx::FromRow)]
struct Stored {
    client_id: String,
    scope: String,
    status: String,
    account_id: Option<Uuid>,
    interval_secs: i32,
    last_polled_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

fn grant_error(code: &'static str, description: &str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, code, description)
}

/// The token endpoint's device-code grant: the person's tokens once approved. The device code
/// is spent by the answer that ends its life (tokens, `access_denied`, `expired_token`).
pub async fn poll(
    state: &AppState,
    device_code: Option<&str>,
    client_id: Option<&str>,
) -> Result<Issued, OAuthError> {
    let device_code = device_code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
    let client_id = client_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    if device_code.len() > MAX_DEVICE_CODE {
        return Err(grant_error("invalid_grant", "the device code is malformed"));
    }
    let server_error = |error: sqlx::Error| {
        tracing::error!(error = %error_chain(&error), "cannot read a device authorization");
        OAuthError::server_error()
    };
    let hash = sign_in::hash(device_code);
    let mut tx = state.store.pool().begin().await.map_err(server_error)?;
    let stored: Option<Stored> = sqlx::query_as(
        "SELECT client_id, scope, status, account_id, interval_secs, last_polled_at, expires_at \
         FROM device_authorizations WHERE device_code_hash = $1 FOR UPDATE",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await
    .map_err(server_error)?;
    let stored =
        stored.ok_or_else(|| grant_error("invalid_grant", "the device code is unknown or used"))?;
    if stored.client_id != client_id {
        return Err(grant_error(
            "invalid_grant",
            "the device code was issued to another client",
        ));
    }
    let now = Utc::now();
    let spend = "DELETE FROM device_authorizations WHERE device_code_hash = $1";
    if now >= stored.expires_at {
        sqlx::query(spend)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(server_error)?;
        tx.commit().await.map_err(server_error)?;
        return Err(grant_error(
            "expired_token",
            "the device code expired; run the sign-in again",
        ));
    }
    match (stored.status.as_str(), stored.account_id) {
        ("pending", _) => {
            let interval = chrono::Duration::seconds(i64::from(stored.interval_secs));
            let too_soon = stored.last_polled_at.is_some_and(|at| now - at < interval);
            let next = if too_soon {
                (stored.interval_secs + SLOW_DOWN_SECS).min(MAX_INTERVAL_SECS)
            } else {
                stored.interval_secs
            };
            sqlx::query(
                "UPDATE device_authorizations SET last_polled_at = $2, interval_secs = $3 \
                 WHERE device_code_hash = $1",
            )
            .bind(&hash)
            .bind(now)
            .bind(next)
            .execute(&mut *tx)
            .await
            .map_err(server_error)?;
            tx.commit().await.map_err(server_error)?;
            Err(if too_soon {
                grant_error(
                    "slow_down",
                    &format!("polled too often; wait {next} s between requests"),
                )
            } else {
                grant_error(
                    "authorization_pending",
                    "the person has not entered the user code yet",
                )
            })
        }
        ("approved", Some(account)) => {
            sqlx::query(spend)
                .bind(&hash)
                .execute(&mut *tx)
                .await
                .map_err(server_error)?;
            let issued =
                refresh::issue_new_family(state, &mut tx, account, client_id, &stored.scope)
                    .await?;
            tx.commit().await.map_err(server_error)?;
            tracing::info!(%account, "device authorization: tokens issued");
            Ok(issued)
        }
        _ => {
            sqlx::query(spend)
                .bind(&hash)
                .execute(&mut *tx)
                .await
                .map_err(server_error)?;
            tx.commit().await.map_err(server_error)?;
            Err(grant_error(
                "access_denied",
                "the person denied the sign-in",
            ))
        }
    }
}

/// How a person's decision at the verification page ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    Approved,
    Denied,
    /// No pending, unexpired authorization has that user code.
    Unknown,
}

/// Records `account`'s decision on the pending authorization of `user_code` (normalized).
pub async fn decide(
    state: &AppState,
    user_code: &str,
    account: Uuid,
    approve: bool,
) -> Result<Decided, sqlx::Error> {
    let (status, account) = if approve {
        ("approved", Some(account))
    } else {
        ("denied", None)
    };
    let updated = sqlx::query(
        "UPDATE device_authorizations SET status = $2, account_id = $3 \
         WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > now()",
    )
    .bind(sign_in::hash(user_code))
    .bind(status)
    .bind(account)
    .execute(state.store.pool())
    .await?;
    Ok(match (updated.rows_affected(), approve) {
        (0, _) => Decided::Unknown,
        (_, true) => Decided::Approved,
        (_, false) => Decided::Denied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_unambiguous_alphabet_and_read_back() {
        for _ in 0..100 {
            let code = new_user_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            let normalized = normalize_user_code(&code).unwrap();
            assert_eq!(normalized, code.replace('-', ""));
            assert_eq!(normalize_user_code(&code.to_lowercase()), Some(normalized));
        }
        assert_eq!(normalize_user_code("bcdf ghjk"), Some("BCDFGHJK".into()));
        for bad in [
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ0",
            &"B".repeat(40),
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn scopes_are_known_and_deduplicated() {
        assert_eq!(
            checked_scope(Some("openid offline_access openid")).unwrap(),
            "offline_access openid"
        );
        assert_eq!(checked_scope(None).unwrap(), "");
        assert_eq!(
            checked_scope(Some("admin")).unwrap_err().code,
            "invalid_scope"
        );
    }
}
