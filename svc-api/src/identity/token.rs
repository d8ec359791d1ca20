//! `POST /oauth/token`: the OAuth2 client-credentials grant (RFC 6749 §4.4). Clients
//! authenticate with `client_secret_basic` or `client_secret_post`; the secret is checked against
//! the credential's argon2 hash; the token names the credential, its tenant and its roles.
//!
//! This endpoint answers errors in RFC 6749 §5.2 form (`{"error": ...}`), not problem+json,
//! because OAuth2 client libraries expect that.

use crate::identity::crypto::{decoy_hash, verify_secret};
use crate::identity::keys::error_chain;
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_auth::Claims;
use ferry_store::audit::{self, NewAuditEntry};
use ferry_store::{StoreError, TenantId, credentials};
use serde::{Deserialize, Serialize};

/// The audiences tokens may be requested for.
pub const AUDIENCES: [&str; 2] = ["ferry-api", "ferry-hub"];

/// The audience when the request names none.
pub const DEFAULT_AUDIENCE: &str = "ferry-api";

/// The form of a token request.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
}

/// A successful token response.
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            code,
            description: description.into(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> OAuthError {
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

    fn server_error() -> OAuthError {
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
fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// The handler of `POST /oauth/token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let outcome = issue(&state, &headers, form).await;
    let label = match &outcome {
        Ok(_) => "issued",
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
        Some(other) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant type {other:?} is not supported; use client_credentials"),
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    }
    let audience = match request.audience.as_deref() {
        None | Some("") => DEFAULT_AUDIENCE,
        Some(asked) => AUDIENCES
            .into_iter()
            .find(|known| *known == asked)
            .ok_or_else(|| {
                OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_target",
                    format!("unknown audience {asked:?}; use one of {AUDIENCES:?}"),
                )
            })?,
    };
    let (client_id, secret) = client_credentials(headers, &request)?;

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
    let matches = tokio::task::spawn_blocking(move || verify_secret(&secret, &hash))
        .await
        .map_err(|error| {
            tracing::error!(error = %error, "secret verification task failed");
            OAuthError::server_error()
        })?;
    let credential = match credential {
        Some(credential) if matches => credential,
        _ => {
            tracing::info!(client_id, "token refused: client authentication failed");
            return Err(OAuthError::invalid_client());
        }
    };

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
        token_type: "Bearer",
        expires_in: ttl.as_secs(),
        scope: request.scope.filter(|s| !s.is_empty()),
    })
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
}
