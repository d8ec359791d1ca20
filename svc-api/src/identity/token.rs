//! `POST /oauth/token`: the OAuth2 client-credentials grant (RFC 6749 §4.4), and for people the
//! web UI's `authorization_code` grant ([`authorize`]), the CLI's device-code grant
//! ([`device::poll`]) and `refresh_token` grant ([`refresh::refresh`]). Machine clients
//! authenticate with `client_secret_basic` or `client_secret_post`; the secret is checked against
//! the credential's argon2 hash; the token names the credential, its tenant and its roles.
//!
//! This endpoint answers errors in RFC 6749 §5.2 form (`{"error": ...}`), not problem+json,
//! because OAuth2 client libraries expect that. It is limited per source address and per
//! client id's failures, and verifies secrets under a bounded semaphore
//! ([`super::token_limits`]); held-back requests get 429 (or 503) with `Retry-After`.

use crate::identity::authorize;
use crate::identity::crypto::{decoy_hash, verify_secret};
use crate::identity::device::{self, DEVICE_CODE_GRANT};
use crate::identity::keys::error_chain;
use crate::identity::refresh;
use crate::identity::token_limits::Held;
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_api::oauth::TokenResponse;
use ferry_auth::Claims;
use ferry_store::audit::{self, NewAuditEntry};
use ferry_store::{StoreError, TenantId, credentials};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// The audiences tokens may be requested for.
pub const AUDIENCES: [&str; 2] = ["ferry-api", ferry_auth::HUB_AUDIENCE];

/// The audience when the request names none.
pub const DEFAULT_AUDIENCE: &str = "ferry-api";

/// The API audiences of Armory CD-as-a-Service (production, staging, development), as its CLI
/// and GitHub Action send them by default. A Ferry credential asking for one gets a `ferry-api`
/// token, so CI configured for Armory keeps working with only the URLs changed.
pub const ARMORY_AUDIENCES: [&str; 3] = [
    "https://api.cloud.armory.io",
    "https://api.staging.cloud.armory.io",
    "https://api.dev.cloud.armory.io",
];

/// The Ferry audience a requested `audience` stands for: itself when it is one of
/// [`AUDIENCES`], `ferry-api` for an Armory API audience (a trailing `/` is tolerated), none
/// otherwise.
pub fn resolve_audience(asked: &str) -> Option<&'static str> {
    if let Some(known) = AUDIENCES.into_iter().find(|known| *known == asked) {
        return Some(known);
    }
    let trimmed = asked.strip_suffix('/').unwrap_or(asked);
    ARMORY_AUDIENCES
        .contains(&trimmed)
        .then_some(DEFAULT_AUDIENCE)
}

/// The form of a token request.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
    /// The `authorization_code` grant's.
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    /// The device-code grant's.
    device_code: Option<String>,
    /// The refresh-token grant's.
    refresh_token: Option<String>,
}

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) description: String,
    /// Seconds to tell the client to wait (`Retry-After`).
    pub(crate) retry_after: Option<u64>,
}

impl OAuthError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        description: impl Into<String>,
    ) -> OAuthError {
        OAuthError {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// A request held back by the endpoint's limits.
    pub(crate) fn held(held: Held) -> OAuthError {
        let (status, description, wait) = match held {
            Held::Address(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many token requests from this address",
                wait,
            ),
            Held::Client(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications for this client id",
                wait,
            ),
            Held::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the token endpoint is busy verifying other requests",
                Duration::from_secs(1),
            ),
        };
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut error = OAuthError::new(
            status,
            "temporarily_unavailable",
            format!("{description}; retry in {secs}s"),
        );
        error.retry_after = Some(secs);
        error
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// Every authentication failure looks the same, so a caller cannot tell an unknown client
    /// from a wrong secret or a revoked credential.
    fn invalid_client() -> OAuthError {
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }

    pub(crate) fn server_error() -> OAuthError {
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error; see the server's logs for this request id",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.code,
            "error_description": self.description,
        });
        let mut response = (self.status, no_store(), axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ferry\""),
            );
        }
        response
    }
}

/// Token responses must not be cached (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// The handler of `POST /oauth/token`.
pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let outcome = match state.token_limits.admit_address(peer.ip()) {
        Ok(()) => issue(&state, &headers, form).await,
        Err(held) => Err(OAuthError::held(held)),
    };
    let label = match &outcome {
        Ok(_) => "issued",
        Err(error) if error.retry_after.is_some() => "held",
        Err(error) if error.status.is_server_error() => "error",
        Err(error) => error.code,
    };
    state
        .metrics
        .token_requests
        .with_label_values(&[label])
        .inc();
    match outcome {
        Ok(response) => (StatusCode::OK, no_store(), axum::Json(response)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Result<TokenResponse, OAuthError> {
    let Form(request) = form.map_err(|rejection| {
        OAuthError::invalid_request(format!(
            "expected an application/x-www-form-urlencoded body: {rejection}"
        ))
    })?;
    match request.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some("authorization_code") => return code_grant(state, request).await,
        Some(DEVICE_CODE_GRANT) => {
            let issued = device::poll(
                state,
                request.device_code.as_deref(),
                request.client_id.as_deref(),
            )
            .await?;
            return Ok(person_response(issued));
        }
        Some("refresh_token") => {
            let issued = refresh::refresh(
                state,
                request.refresh_token.as_deref(),
                request.client_id.as_deref(),
            )
            .await?;
            return Ok(person_response(issued));
        }
        Some(other) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "grant type {other:?} is not supported; use client_credentials \
                     (or authorization_code for the web UI, {DEVICE_CODE_GRANT} and \
                     refresh_token for the CLI)"
                ),
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    }
    let audience = match request.audience.as_deref() {
        None | Some("") => DEFAULT_AUDIENCE,
        Some(asked) => resolve_audience(asked).ok_or_else(|| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!(
                    "unknown audience {asked:?}; use one of {AUDIENCES:?} (or Armory's \
                     {:?}, which means ferry-api)",
                    ARMORY_AUDIENCES[0]
                ),
            )
        })?,
    };
    let (client_id, secret) = client_credentials(headers, &request)?;
    state
        .token_limits
        .admit_client(&client_id)
        .map_err(OAuthError::held)?;

    let tenant = tenant_of_client(state, &client_id).await?;
    let credential = match tenant {
        Some(tenant) => match credentials::find_for_token(&state.store, tenant, &client_id).await {
            Ok(credential) => Some(credential),
            Err(StoreError::NotFound { .. }) => None,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "cannot look up the credential");
                return Err(OAuthError::server_error());
            }
        },
        None => None,
    };
    // Verify against a decoy when the client is unknown or revoked, so timing does not reveal
    // which client ids exist. Argon2 is deliberately slow: keep it off the async workers.
    let hash = credential
        .as_ref()
        .map_or_else(|| decoy_hash().to_string(), |c| c.secret_hash.clone());
    let permit = state
        .token_limits
        .verification()
        .await
        .map_err(OAuthError::held)?;
    let matches = tokio::task::spawn_blocking(move || {
        let _slot = permit;
        verify_secret(&secret, &hash)
    })
    .await
    .map_err(|error| {
        tracing::error!(error = %error, "secret verification task failed");
        OAuthError::server_error()
    })?;
    let credential = match credential {
        Some(credential) if matches => credential,
        _ => {
            state.token_limits.failed(&client_id);
            tracing::info!(client_id, "token refused: client authentication failed");
            return Err(OAuthError::invalid_client());
        }
    };

    // A hub token lets its holder stand in for a cluster (see every manifest, answer for its
    // pods): only credentials made for agents get one.
    if audience == ferry_auth::HUB_AUDIENCE
        && !credential.roles.iter().any(|r| r == ferry_auth::AGENT_ROLE)
    {
        tracing::info!(
            client_id = credential.client_id,
            "hub token refused: the credential lacks the Agent role"
        );
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            format!(
                "only credentials with the {} role may get tokens for the agent hub (audience {})",
                ferry_auth::AGENT_ROLE,
                ferry_auth::HUB_AUDIENCE
            ),
        ));
    }

    let ttl = state.issuer.token_ttl;
    let claims = Claims::new(
        state.issuer.issuer.clone(),
        credential.id.to_string(),
        audience,
        credential.tenant_id.as_uuid(),
        credential.roles.clone(),
        ttl,
    );
    let access_token = state.keys.sign(&claims).await.map_err(|error| {
        tracing::error!(error = %error_chain(&error), "cannot sign a token");
        OAuthError::server_error()
    })?;
    record_issuance(state, &credential, audience, &claims).await?;
    state
        .metrics
        .tokens_issued
        .with_label_values(&[audience])
        .inc();
    tracing::info!(
        client_id = credential.client_id,
        tenant = %credential.tenant_id,
        audience,
        "token issued"
    );
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ttl.as_secs(),
        scope: request.scope.filter(|s| !s.is_empty()),
        id_token: None,
        refresh_token: None,
    })
}

/// The `authorization_code` grant of a person with a local account ([`authorize::exchange`]):
/// answers the ID token (also as `access_token`; its audience is the web UI, so the REST API
/// refuses it).
async fn code_grant(state: &AppState, request: TokenRequest) -> Result<TokenResponse, OAuthError> {
    let grant = authorize::CodeGrant {
        code: request.code,
        redirect_uri: request.redirect_uri,
        client_id: request.client_id,
        code_verifier: request.code_verifier,
    };
    let id_token = authorize::exchange(state, &grant).await.map_err(|error| {
        let status = if error.code == "server_error" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        OAuthError::new(status, error.code, error.description)
    })?;
    Ok(TokenResponse {
        access_token: id_token.clone(),
        token_type: "Bearer".into(),
        expires_in: 300,
        scope: None,
        id_token: Some(id_token),
        refresh_token: None,
    })
}

/// A person's tokens as the token endpoint answers them.
fn person_response(issued: refresh::Issued) -> TokenResponse {
    TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        scope: Some(issued.scope).filter(|s| !s.is_empty()),
        id_token: None,
        refresh_token: Some(issued.refresh_token),
    }
}

/// The audit entry of one issued token: who, for which audience, until when. Never the token.
async fn record_issuance(
    state: &AppState,
    credential: &credentials::Credential,
    audience: &str,
    claims: &Claims,
) -> Result<(), OAuthError> {
    let entry = NewAuditEntry {
        actor: credential.client_id.clone(),
        action: "token.issue".into(),
        resource_kind: "credential".into(),
        resource_id: credential.id.to_string(),
        details: serde_json::json!({
            "audience": audience,
            "roles": claims.roles,
            "expires_at": claims.exp,
        }),
    };
    let result = async {
        let mut conn = state.store.pool().acquire().await?;
        audit::append(&mut conn, credential.tenant_id, &entry).await
    }
    .await;
    result.map(|_| ()).map_err(|error: StoreError| {
        tracing::error!(error = %error_chain(&error), "cannot audit a token issuance");
        OAuthError::server_error()
    })
}

/// The tenant owning `client_id`. Client ids are unique across tenants (the table's constraint),
/// and the token request is the one place that must cross tenants to find its tenant.
async fn tenant_of_client(
    state: &AppState,
    client_id: &str,
) -> Result<Option<TenantId>, OAuthError> {
    sqlx::query_scalar("SELECT tenant_id FROM credentials WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(state.store.pool())
        .await
        .map_err(|error| {
            tracing::error!(error = %error_chain(&error), "cannot look up the client");
            OAuthError::server_error()
        })
}

/// The client id and secret from HTTP Basic (`client_secret_basic`) or the form
/// (`client_secret_post`); using both at once is refused (RFC 6749 §2.3).
fn client_credentials(
    headers: &HeaderMap,
    request: &TokenRequest,
) -> Result<(String, String), OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(parse_basic(value).ok_or_else(OAuthError::invalid_client)?),
        None => None,
    };
    let posted = request.client_secret.is_some();
    match (basic, &request.client_id, &request.client_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use only one client authentication method",
        )),
        (Some((id, secret)), form_id, None) => {
            if form_id.as_ref().is_some_and(|form_id| *form_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the form differs from the authenticated client",
                ));
            }
            Ok((id, secret))
        }
        (None, Some(id), Some(secret)) if !id.is_empty() => Ok((id.clone(), secret.clone())),
        _ if posted => Err(OAuthError::invalid_request("client_id is required")),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = form_urldecode(id)?;
    (!id.is_empty()).then_some(())?;
    Some((id, form_urldecode(secret)?))
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte).
fn form_urldecode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(b) = input.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = (input.next()? as char).to_digit(16)?;
                let lo = (input.next()? as char).to_digit(16)?;
                bytes.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let headers = basic("my%20client", "s%3Acret+x");
        let (id, secret) = client_credentials(&headers, &TokenRequest::default()).unwrap();
        assert_eq!(id, "my client");
        assert_eq!(secret, "s:cret x");
        assert_eq!(form_urldecode("%zz"), None);
        assert_eq!(form_urldecode("%4"), None);
    }

    #[test]
    fn exactly_one_authentication_method_is_accepted() {
        let posted = TokenRequest {
            client_id: Some("a".into()),
            client_secret: Some("b".into()),
            ..TokenRequest::default()
        };
        assert_eq!(
            client_credentials(&HeaderMap::new(), &posted).unwrap(),
            ("a".to_string(), "b".to_string())
        );
        let both = client_credentials(&basic("a", "b"), &posted).unwrap_err();
        assert_eq!(both.code, "invalid_request");
        let none = client_credentials(&HeaderMap::new(), &TokenRequest::default()).unwrap_err();
        assert_eq!(none.code, "invalid_client");
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        let mut garbage = HeaderMap::new();
        garbage.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        let refused = client_credentials(&garbage, &TokenRequest::default()).unwrap_err();
        assert_eq!(refused.code, "invalid_client");
    }

    #[test]
    fn armory_audiences_mean_the_api_and_nothing_else() {
        assert_eq!(resolve_audience("ferry-api"), Some("ferry-api"));
        assert_eq!(
            resolve_audience(ferry_auth::HUB_AUDIENCE),
            Some(ferry_auth::HUB_AUDIENCE)
        );
        for armory in ARMORY_AUDIENCES {
            assert_eq!(resolve_audience(armory), Some("ferry-api"));
            assert_eq!(resolve_audience(&format!("{armory}/")), Some("ferry-api"));
        }
        assert_eq!(resolve_audience("https://api.cloud.armory.io.evil"), None);
        assert_eq!(resolve_audience("https://api.cloud.armory.io//"), None);
        assert_eq!(resolve_audience("elsewhere"), None);
    }
}
