//! The authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636 S256 only) of svc-api's own
//! issuer, for people with a local account (an installation or demo without an external identity
//! provider). The one client is the web UI ([`UI_CLIENT_ID`], a public client whose only
//! redirect URI is `{issuer}/ui/auth/callback`); unknown clients and redirect URIs get an error
//! page, never a redirect.
//!
//! `GET /oauth/authorize` shows the sign-in form; `POST /oauth/authorize` checks the email and
//! password (argon2, with the token endpoint's limits: per source address, per account's
//! failures, bounded verifications, a decoy hash for unknown emails) and redirects with a
//! single-use code valid for a minute; `POST /oauth/token` with
//! `grant_type=authorization_code` ([`exchange`]) trades it, with the PKCE verifier, for an ID
//! token (audience [`UI_CLIENT_ID`]: the REST API refuses it).

use crate::identity::crypto::generate_secret;
use crate::identity::keys::error_chain;
use crate::identity::local_users::{PasswordRefusal, check_password};
use crate::identity::token_limits::Held;
use crate::state::AppState;
use crate::ui::layout;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_store::sign_in::{self, AuthorizationCode};
use jsonwebtoken::{DecodingKey, Validation};
use maud::html;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;

/// The web UI's client id at this issuer.
pub const UI_CLIENT_ID: &str = "ferry-ui";
/// Path of the UI's redirect URI.
pub const CALLBACK_PATH: &str = "/ui/auth/callback";
/// How long a code may wait to be exchanged.
const CODE_TTL: Duration = Duration::from_secs(60);
/// Lifetime of an ID token: it is exchanged and verified at once.
const ID_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Longest email, password, state or nonce accepted.
const MAX_EMAIL: usize = 254;
const MAX_PASSWORD: usize = 1024;
const MAX_STATE: usize = 512;

/// The UI's redirect URI for `issuer`.
pub fn ui_redirect_uri(issuer: &str) -> String {
    format!("{issuer}{CALLBACK_PATH}")
}

/// The query (or form) of an authorization request.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    #[serde(default)]
    pub response_type: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The sign-in form's fields: the request's parameters and the person's email and password.
#[derive(Debug, Default, Deserialize)]
pub struct SignInForm {
    #[serde(flatten)]
    pub params: AuthorizeParams,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
}

/// A checked authorization request.
#[derive(Clone, Debug)]
struct Valid {
    redirect_uri: String,
    challenge: String,
    state: String,
    nonce: Option<String>,
}

/// Why a request is refused before anything can be redirected.
fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        layout::bare(
            "Sign-in refused",
            html! {
                h1 { "Sign-in refused" }
                p.error role="alert" { (message) }
                p { a href="/ui" { "Back to Ferry" } }
            },
        ),
    )
        .into_response()
}

/// Checks client, redirect URI (refused with a page) and the rest (refused with a redirect
/// carrying the error, RFC 6749 §4.1.2.1).
fn validate(state: &AppState, params: &AuthorizeParams) -> Result<Valid, Box<Response>> {
    if params.client_id.as_deref() != Some(UI_CLIENT_ID) {
        return Err(Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "unknown client: this issuer serves only Ferry's web UI",
        )));
    }
    let expected = ui_redirect_uri(&state.issuer.issuer);
    let redirect_uri = params.redirect_uri.clone().unwrap_or_default();
    if redirect_uri != expected {
        return Err(Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "the redirect URI is not the web UI's",
        )));
    }
    let state_param = params.state.clone().unwrap_or_default();
    let back = |error: &str, description: &str| {
        boxed_redirect(
            &redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", &state_param),
            ],
        )
    };
    if params.response_type.as_deref() != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if state_param.is_empty() || state_param.len() > MAX_STATE {
        return Err(back(
            "invalid_request",
            "state is required (512 bytes at most)",
        ));
    }
    let challenge = params.code_challenge.clone().unwrap_or_default();
    let well_formed = (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if params.code_challenge_method.as_deref() != Some("S256") || !well_formed {
        return Err(back(
            "invalid_request",
            "PKCE is required: code_challenge_method=S256 and a code_challenge",
        ));
    }
    if params.nonce.as_ref().is_some_and(|n| n.len() > MAX_STATE) {
        return Err(back("invalid_request", "nonce is longer than 512 bytes"));
    }
    Ok(Valid {
        redirect_uri,
        challenge,
        state: state_param,
        nonce: params.nonce.clone().filter(|n| !n.is_empty()),
    })
}

fn boxed_redirect(uri: &str, pairs: &[(&str, &str)]) -> Box<Response> {
    Box::new(redirect_with(uri, pairs))
}

/// `uri` with `pairs` added to its query.
fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{sep}{query}")).into_response()
}

/// `GET /oauth/authorize`: the sign-in form.
pub async fn authorize(
    State(state): State<AppState>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    match validate(&state, &params) {
        Ok(_) => form(&params, None, StatusCode::OK),
        Err(response) => *response,
    }
}

/// The sign-in form, with an error when a try failed.
fn form(params: &AuthorizeParams, error: Option<&str>, status: StatusCode) -> Response {
    let hidden = [
        ("response_type", &params.response_type),
        ("client_id", &params.client_id),
        ("redirect_uri", &params.redirect_uri),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
        ("state", &params.state),
        ("nonce", &params.nonce),
        ("scope", &params.scope),
    ];
    let body = html! {
        h1 { "Sign in to Ferry" }
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form.card method="post" action="/oauth/authorize" {
            @for (name, value) in hidden {
                @if let Some(value) = value { input type="hidden" name=(name) value=(value); }
            }
            label for="email" { "Email" }
            input #email type="email" name="email" required autocomplete="username"
                maxlength=(MAX_EMAIL) autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" required
                autocomplete="current-password" maxlength=(MAX_PASSWORD);
            button.primary type="submit" { "Sign in" }
        }
        p.muted { "A local account of this Ferry installation. Ask an administrator for one." }
    };
    let mut response = (status, layout::bare("Sign in", body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    response
}

/// `POST /oauth/authorize`: checks the email and password, then redirects with a code.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form_data): Form<SignInForm>,
) -> Response {
    if !crate::ui::session::same_origin(&state, &headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the form was posted from another site",
        );
    }
    let valid = match validate(&state, &form_data.params) {
        Ok(valid) => valid,
        Err(response) => return *response,
    };
    let email = form_data.email.trim().to_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL || form_data.password.len() > MAX_PASSWORD {
        return form(
            &form_data.params,
            Some("Enter your email and password."),
            StatusCode::BAD_REQUEST,
        );
    }
    let held = |held: Held| {
        let message = match held {
            Held::Busy => "The server is busy; try again in a moment.".to_string(),
            Held::Address(wait) | Held::Client(wait) => format!(
                "Too many sign-in attempts; try again in {} s.",
                wait.as_secs_f64().ceil().max(1.0)
            ),
        };
        form(
            &form_data.params,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        )
    };
    let account = match check_password(&state, peer.ip(), &email, &form_data.password).await {
        Ok(account) => account,
        Err(PasswordRefusal::Held(h)) => return held(h),
        Err(PasswordRefusal::Internal) => {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
        Err(PasswordRefusal::Wrong) => {
            return form(
                &form_data.params,
                Some("The email or password is wrong."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let code = generate_secret();
    let stored = AuthorizationCode {
        account_id: account.id,
        client_id: UI_CLIENT_ID.into(),
        redirect_uri: valid.redirect_uri.clone(),
        code_challenge: valid.challenge,
        nonce: valid.nonce,
    };
    let expires = chrono::Utc::now() + CODE_TTL;
    if let Err(error) =
        sign_in::put_code(&state.store, &sign_in::hash(&code), &stored, expires).await
    {
        tracing::error!(error = %error_chain(&error), "cannot store an authorization code");
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    tracing::info!(account = %account.id, "local sign-in: code issued");
    let issuer = state.issuer.issuer.clone();
    redirect_with(
        &valid.redirect_uri,
        &[("code", &code), ("state", &valid.state), ("iss", &issuer)],
    )
}

/// The claims of this issuer's ID tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub email: String,
    pub email_verified: bool,
}

/// Why a code exchange failed, as RFC 6749 §5.2 names it.
#[derive(Debug)]
pub struct ExchangeError {
    /// `invalid_grant`, `invalid_request`, `invalid_client` or `server_error`.
    pub code: &'static str,
    pub description: &'static str,
}

fn grant_error(description: &'static str) -> ExchangeError {
    ExchangeError {
        code: "invalid_grant",
        description,
    }
}

/// The parameters of `grant_type=authorization_code`.
#[derive(Clone, Debug, Default)]
pub struct CodeGrant {
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub code_verifier: Option<String>,
}

/// Trades a code and its PKCE verifier for a signed ID token (the token endpoint's
/// `authorization_code` grant). The code is spent whatever the outcome.
pub async fn exchange(state: &AppState, grant: &CodeGrant) -> Result<String, ExchangeError> {
    let (Some(code), Some(verifier)) = (&grant.code, &grant.code_verifier) else {
        return Err(ExchangeError {
            code: "invalid_request",
            description: "code and code_verifier are required",
        });
    };
    if code.len() > MAX_STATE || !(43..=128).contains(&verifier.len()) {
        return Err(grant_error("the code or the code_verifier is malformed"));
    }
    let stored = sign_in::take_code(&state.store, &sign_in::hash(code))
        .await
        .map_err(|error| {
            tracing::error!(error = %error_chain(&error), "cannot read an authorization code");
            ExchangeError {
                code: "server_error",
                description: "internal error",
            }
        })?
        .ok_or_else(|| grant_error("the code is unknown, used or expired"))?;
    if grant.client_id.as_deref() != Some(stored.client_id.as_str()) {
        return Err(grant_error("the code was issued to another client"));
    }
    if grant.redirect_uri.as_deref() != Some(stored.redirect_uri.as_str()) {
        return Err(grant_error(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if s256(verifier) != stored.code_challenge {
        return Err(grant_error(
            "the code_verifier does not match the code_challenge",
        ));
    }
    let account = sign_in::local_account_by_id(&state.store, stored.account_id)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| grant_error("the account is gone"))?;
    let now = ferry_auth::unix_now();
    let claims = IdClaims {
        iss: state.issuer.issuer.clone(),
        sub: account.id.to_string(),
        aud: UI_CLIENT_ID.into(),
        exp: now + ID_TOKEN_TTL.as_secs(),
        iat: now,
        nonce: stored.nonce,
        email: account.email,
        // The account's email was set by an operator of this installation.
        email_verified: true,
    };
    state.keys.sign_claims(&claims).await.map_err(|error| {
        tracing::error!(error = %error_chain(&error), "cannot sign an ID token");
        ExchangeError {
            code: "server_error",
            description: "internal error",
        }
    })
}

/// The PKCE S256 challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Verifies an ID token of this issuer for the UI: signature with a published key, issuer,
/// audience [`UI_CLIENT_ID`], expiry.
pub fn verify_id_token(state: &AppState, token: &str) -> Option<IdClaims> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let kid = header.kid?;
    let jwks = state.keys.jwks();
    let jwk = jwks.find(&kid)?;
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = 30;
    validation.set_issuer(&[&state.issuer.issuer]);
    validation.set_audience(&[UI_CLIENT_ID]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    if header.alg != jsonwebtoken::Algorithm::ES256 {
        return None;
    }
    jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
        .ok()
        .map(|data| data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
