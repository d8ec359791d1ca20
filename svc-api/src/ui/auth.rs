//! Signing in and out of the web UI. The UI is an OAuth client of an issuer: svc-api's own
//! (local accounts, [`crate::identity::authorize`]) or the external OIDC issuer people sign in
//! with (`FERRY_OIDC_*`, the UI as client `FERRY_OIDC_AUDIENCE`). Either way: a random `state`
//! (in a short-lived cookie, so the callback belongs to this browser), a PKCE S256 verifier and a
//! nonce, stored by the state's hash; the callback spends them once, trades the code for an ID
//! token, verifies it (signature, issuer, audience, expiry, nonce) and opens a session. Signing in
//! never creates a user: the person reaches the tenants they were invited to, as with a token.

use super::layout;
use super::session::{
    self, SIGN_IN_COOKIE, SignedIn, UiError, cookie, error_page, parse_form, read_cookie,
    safe_return_to,
};
use crate::error::ApiError;
use crate::identity::authorize::{self, CodeGrant, UI_CLIENT_ID, s256, ui_redirect_uri};
use crate::identity::crypto::generate_secret;
use crate::identity::keys::error_chain;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_store::sign_in::{self, PendingSignIn, Session};
use maud::html;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a sign-in may take from start to callback.
const SIGN_IN_TTL: Duration = Duration::from_secs(600);
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// `?return_to=` of the sign-in pages.
#[derive(Debug, Default, Deserialize)]
pub struct ReturnTo {
    #[serde(default)]
    return_to: Option<String>,
}

impl ReturnTo {
    fn path(&self) -> String {
        self.return_to
            .clone()
            .filter(|p| safe_return_to(p))
            .unwrap_or_else(|| "/ui".into())
    }
}

/// `GET /ui/sign-in`: the ways to sign in.
pub async fn sign_in_page(State(state): State<AppState>, Query(back): Query<ReturnTo>) -> Response {
    let query = serde_urlencoded::to_string([("return_to", back.path())]).unwrap_or_default();
    layout::bare("Sign in", html! {
        h1 { "Sign in to Ferry" }
        div.card {
            p { a.button href={ "/ui/sign-in/local?" (query) } { "Sign in with a Ferry account" } }
            @if let Some(people) = &state.people {
                p { a.button href={ "/ui/sign-in/external?" (query) } { "Sign in with " (people.issuer()) } }
            }
        }
        p.muted { "You reach the tenants you were invited to, with the roles given to you there." }
    })
    .into_response()
}

/// `GET /ui/sign-in/{provider}`: starts the code flow with `local` or `external`.
pub async fn start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(provider): Path<String>,
    Query(back): Query<ReturnTo>,
) -> Result<Response, UiError> {
    if state.token_limits.admit_address(peer.ip()).is_err() {
        return Err(ApiError::RateLimited {
            retry_after_secs: 1,
        }
        .into());
    }
    let own = state.issuer.issuer.clone();
    let redirect_uri = ui_redirect_uri(&own);
    let state_value = generate_secret();
    let verifier = generate_secret();
    let nonce = generate_secret();
    let (issuer, endpoint, client_id) = match provider.as_str() {
        "local" => (
            own.clone(),
            format!("{own}{}", crate::identity::discovery::AUTHORIZE_PATH),
            UI_CLIENT_ID.to_string(),
        ),
        "external" => {
            let Some(people) = &state.people else {
                return Err(
                    ApiError::Store(ferry_store::StoreError::not_found("sign-in issuer")).into(),
                );
            };
            let endpoints = people
                .endpoints()
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            (
                people.issuer().to_string(),
                endpoints.authorization,
                people.config().audience.clone(),
            )
        }
        _ => {
            return Err(
                ApiError::Store(ferry_store::StoreError::not_found("sign-in issuer")).into(),
            );
        }
    };
    let pending = PendingSignIn {
        issuer,
        code_verifier: verifier.clone(),
        nonce: nonce.clone(),
        return_to: back.path(),
    };
    let expires = chrono::Utc::now() + SIGN_IN_TTL;
    sign_in::put_sign_in(
        &state.store,
        &sign_in::hash(&state_value),
        &pending,
        expires,
    )
    .await?;
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", "openid email profile"),
        ("state", state_value.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", s256(&verifier).as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    let mut response = Redirect::to(&format!("{endpoint}{sep}{query}")).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(
            &state,
            SIGN_IN_COOKIE,
            &state_value,
            session::CALLBACK,
            SIGN_IN_TTL.as_secs() as i64,
        ),
    );
    Ok(response)
}

/// The callback's query.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Who signed in, from a verified ID token.
struct Person {
    issuer: String,
    subject: String,
    email: String,
    email_verified: bool,
    groups: Vec<String>,
}

fn refused(message: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, "Sign-in failed", message)
}

/// `GET /ui/auth/callback`: completes the code flow and opens a session.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(state_value) = query.state.as_deref().filter(|s| s.len() <= 512) else {
        return refused("The sign-in answer has no state. Start again.");
    };
    // The state must be the one this browser started with (no login CSRF).
    match read_cookie(&headers, SIGN_IN_COOKIE) {
        Some(cookie) if session::constant_time_eq(cookie, state_value) => {}
        _ => {
            return refused(
                "This sign-in was not started in this browser, or took too long. Start again.",
            );
        }
    }
    let pending = match sign_in::take_sign_in(&state.store, &sign_in::hash(state_value)).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return refused("This sign-in expired or was already used. Start again."),
        Err(error) => {
            tracing::error!(error = %error_chain(&error), "cannot read a pending sign-in");
            return refused("The server could not complete the sign-in.");
        }
    };
    if let Some(error) = &query.error {
        let description = query.error_description.as_deref().unwrap_or("");
        tracing::info!(error, description, "the issuer refused the sign-in");
        return refused(&format!(
            "The sign-in issuer refused: {error} {description}"
        ));
    }
    // RFC 9207: the answer names the issuer it comes from.
    if query
        .iss
        .as_deref()
        .is_some_and(|iss| iss != pending.issuer)
    {
        return refused("The sign-in answer comes from another issuer than the one asked.");
    }
    let Some(code) = query.code.as_deref().filter(|c| c.len() <= 2048) else {
        return refused("The sign-in answer has no code.");
    };
    let person = match person(&state, &pending, code).await {
        Ok(person) => person,
        Err(message) => return refused(&message),
    };
    let id = generate_secret();
    let record = Session {
        issuer: person.issuer,
        subject: person.subject,
        email: person.email,
        email_verified: person.email_verified,
        groups: person.groups,
        csrf_token: generate_secret(),
        expires_at: chrono::Utc::now() + SESSION_TTL,
    };
    if let Err(error) = sign_in::put_session(&state.store, &sign_in::hash(&id), &record).await {
        tracing::error!(error = %error_chain(&error), "cannot store a session");
        return refused("The server could not complete the sign-in.");
    }
    if let Err(error) = sign_in::sweep(&state.store, 100).await {
        tracing::warn!(error = %error_chain(&error), "cannot remove expired sessions");
    }
    tracing::info!(issuer = %record.issuer, subject = %record.subject, "signed in to the web UI");
    let mut response = Redirect::to(&pending.return_to).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie(
            &state,
            session::COOKIE,
            &id,
            "/",
            SESSION_TTL.as_secs() as i64,
        ),
    );
    headers.append(
        header::SET_COOKIE,
        cookie(&state, SIGN_IN_COOKIE, "", session::CALLBACK, 0),
    );
    response
}

/// Trades the code at the issuer the sign-in started with and verifies the ID token.
async fn person(state: &AppState, pending: &PendingSignIn, code: &str) -> Result<Person, String> {
    let redirect_uri = ui_redirect_uri(&state.issuer.issuer);
    if pending.issuer == state.issuer.issuer {
        let grant = CodeGrant {
            code: Some(code.to_string()),
            redirect_uri: Some(redirect_uri),
            client_id: Some(UI_CLIENT_ID.into()),
            code_verifier: Some(pending.code_verifier.clone()),
        };
        let token = authorize::exchange(state, &grant)
            .await
            .map_err(|e| format!("The code was refused: {}.", e.description))?;
        let claims =
            authorize::verify_id_token(state, &token).ok_or("The ID token does not verify.")?;
        if claims.nonce.as_deref() != Some(pending.nonce.as_str()) {
            return Err("The ID token is not for this sign-in (nonce).".into());
        }
        return Ok(Person {
            issuer: claims.iss,
            subject: claims.sub,
            email: claims.email.to_lowercase(),
            email_verified: claims.email_verified,
            groups: Vec::new(),
        });
    }
    let Some(people) = state
        .people
        .as_ref()
        .filter(|p| p.issuer() == pending.issuer)
    else {
        return Err("The sign-in issuer is no longer configured.".into());
    };
    let token = people
        .exchange_code(
            code,
            &redirect_uri,
            &pending.code_verifier,
            state.oidc_client_secret.as_deref(),
        )
        .await
        .map_err(|e| format!("The sign-in issuer did not complete the sign-in: {e}."))?;
    let claims = people
        .verify(&token)
        .await
        .map_err(|e| format!("The ID token was refused: {e}."))?;
    if claims.nonce.as_deref() != Some(pending.nonce.as_str()) {
        return Err("The ID token is not for this sign-in (nonce).".into());
    }
    Ok(Person {
        issuer: people.issuer().to_string(),
        subject: claims.subject,
        email: claims.email,
        email_verified: claims.email_verified,
        groups: claims.groups,
    })
}

/// `POST /ui/sign-out`: ends the session (CSRF-checked).
pub async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let _: std::collections::HashMap<String, String> =
        parse_form(&state, &headers, &body, &signed_in.session.csrf_token)?;
    sign_in::delete_session(&state.store, &signed_in.id_hash).await?;
    let mut response = Redirect::to("/ui/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(&state, session::COOKIE, "", "/", 0),
    );
    Ok(response)
}

/// `GET /ui`: the person's tenant, or the choice between several.
pub async fn home(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, UiError> {
    picker(&state, &signed_in, None).await
}

/// `?go=` of the tenant switcher.
#[derive(Debug, Default, Deserialize)]
pub struct Go {
    #[serde(default)]
    go: Option<String>,
}

/// `GET /ui/tenants`: the tenant switcher.
pub async fn tenants(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(go): Query<Go>,
) -> Result<Response, UiError> {
    picker(&state, &signed_in, go.go).await
}

async fn picker(
    state: &AppState,
    signed_in: &SignedIn,
    go: Option<String>,
) -> Result<Response, UiError> {
    let s = &signed_in.session;
    let tenants = sign_in::tenants_of(
        &state.store,
        &s.issuer,
        &s.subject,
        &s.email,
        s.email_verified,
    )
    .await?;
    let chosen = match go {
        Some(go) => tenants.iter().find(|t| t.slug == go),
        None if tenants.len() == 1 => tenants.first(),
        None => None,
    };
    if let Some(tenant) = chosen {
        return Ok(Redirect::to(&format!("/ui/t/{}/deployments", tenant.slug)).into_response());
    }
    Ok(layout::bare("Tenants", html! {
        h1 { "Choose a tenant" }
        p.muted { "Signed in as " (s.email) }
        @if tenants.is_empty() {
            (layout::empty("You are not a member of any tenant.", html! {
                "Ask a tenant administrator to invite " (s.email) "."
            }))
        } @else {
            ul { @for t in &tenants { li { a href={ "/ui/t/" (t.slug) "/deployments" } { (t.name) } " " span.muted { "(" (t.slug) ")" } } } }
        }
        form method="post" action="/ui/sign-out" {
            input type="hidden" name="_csrf" value=(s.csrf_token);
            button type="submit" { "Sign out" }
        }
    })
    .into_response())
}
