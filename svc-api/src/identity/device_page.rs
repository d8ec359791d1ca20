//! The device flow's verification page (`/oauth/device`, RFC 8628 §3.3): a person with a local
//! account enters the user code the CLI printed (prefilled from `verification_uri_complete`),
//! signs in with their email and password (the web UI sign-in's check and limits,
//! [`check_password`]) and approves or denies.
//!
//! The form is protected like the sign-in form (the browser's `Origin`/`Sec-Fetch-Site` must
//! be this site) and by a double-submit token: the page sets a random cookie and repeats it in
//! a hidden field, which the post must carry both. Wrong user codes are counted per source
//! address and per account with the token endpoint's failure limiter, so guessing codes is
//! bounded (RFC 8628 §5.1) on top of the codes' 2.6·10^10 space and ten-minute life.

use crate::identity::crypto::generate_secret;
use crate::identity::device::{Decided, decide, normalize_user_code};
use crate::identity::keys::error_chain;
use crate::identity::local_users::{PasswordRefusal, check_password};
use crate::identity::token_limits::Held;
use crate::state::AppState;
use crate::ui::layout;
use crate::ui::session::{constant_time_eq, cookie, read_cookie, same_origin};
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use std::net::SocketAddr;

/// The double-submit cookie's name.
pub const CSRF_COOKIE: &str = "ferry_device_csrf";
/// The hidden field repeating it.
pub const CSRF_FIELD: &str = "_csrf";
/// How long the page's form stays usable.
const FORM_MAX_AGE: i64 = 900;
const MAX_EMAIL: usize = 254;
const MAX_PASSWORD: usize = 1024;

/// `?user_code=` of the verification URI.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    user_code: Option<String>,
}

/// The page's form.
#[derive(Debug, Default, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// `approve` or `deny`.
    #[serde(default)]
    decision: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// The form, with a fresh double-submit token, and an error when a try failed.
fn page(state: &AppState, user_code: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = generate_secret();
    let body = html! {
        h1 { "Sign in a device to Ferry" }
        p { "Enter the code your terminal shows, then your Ferry account's email and password." }
        p.muted { "Only approve if you started " code { "ferry login" } " yourself just now." }
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form.card method="post" action=(super::discovery::DEVICE_PAGE_PATH) {
            input type="hidden" name=(CSRF_FIELD) value=(csrf);
            label for="user_code" { "Code" }
            input #user_code type="text" name="user_code" required value=(user_code)
                maxlength="32" autocomplete="off" autocapitalize="characters";
            label for="email" { "Email" }
            input #email type="email" name="email" required autocomplete="username"
                maxlength=(MAX_EMAIL) autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" required
                autocomplete="current-password" maxlength=(MAX_PASSWORD);
            button.primary type="submit" name="decision" value="approve" { "Approve" }
            button type="submit" name="decision" value="deny" { "Deny" }
        }
    };
    let mut response = (status, layout::bare("Sign in a device", body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    headers.insert(
        header::SET_COOKIE,
        cookie(
            state,
            CSRF_COOKIE,
            &csrf,
            super::discovery::DEVICE_PAGE_PATH,
            FORM_MAX_AGE,
        ),
    );
    response
}

/// A final page (decided, or refused outright).
fn outcome(status: StatusCode, title: &str, message: &str) -> Response {
    let mut response = (
        status,
        layout::bare(title, html! { h1 { (title) } p { (message) } }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    response
}

/// `GET /oauth/device`.
pub async fn show(State(state): State<AppState>, Query(query): Query<PageQuery>) -> Response {
    let code = query
        .user_code
        .filter(|c| c.len() <= 32)
        .unwrap_or_default();
    page(&state, &code, None, StatusCode::OK)
}

/// `POST /oauth/device`: checks the form, the person and the code, then records the decision.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Response {
    let shown_code = if form.user_code.len() <= 32 {
        form.user_code.as_str()
    } else {
        ""
    };
    let cookie_token = read_cookie(&headers, CSRF_COOKIE);
    let csrf_ok = cookie_token.is_some_and(|t| constant_time_eq(t, &form.csrf));
    if !same_origin(&state, &headers) || !csrf_ok {
        return outcome(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not posted from this page; open the link again.",
        );
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return page(
                &state,
                shown_code,
                Some("Choose Approve or Deny."),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let email = form.email.trim().to_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL || form.password.len() > MAX_PASSWORD {
        return page(
            &state,
            shown_code,
            Some("Enter your email and password."),
            StatusCode::BAD_REQUEST,
        );
    }
    let held = |held: Held| {
        let message = match held {
            Held::Busy => "The server is busy; try again in a moment.".to_string(),
            Held::Address(wait) | Held::Client(wait) => format!(
                "Too many attempts; try again in {} s.",
                wait.as_secs_f64().ceil().max(1.0)
            ),
        };
        page(
            &state,
            shown_code,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        )
    };
    // Wrong codes are limited per address and per account, before any password is checked.
    let address_key = format!("device-user-code:{}", peer.ip());
    let account_key = format!("device-user-code:{email}");
    for key in [&address_key, &account_key] {
        if let Err(h) = state.token_limits.admit_client(key) {
            return held(h);
        }
    }
    let account = match check_password(&state, peer.ip(), &email, &form.password).await {
        Ok(account) => account,
        Err(PasswordRefusal::Held(h)) => return held(h),
        Err(PasswordRefusal::Internal) => {
            return outcome(StatusCode::INTERNAL_SERVER_ERROR, "Error", "internal error");
        }
        Err(PasswordRefusal::Wrong) => {
            return page(
                &state,
                shown_code,
                Some("The email or password is wrong."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let wrong_code = || {
        state.token_limits.failed(&address_key);
        state.token_limits.failed(&account_key);
        tracing::info!(account = %account.id, "device verification: unknown or expired user code");
        page(
            &state,
            shown_code,
            Some("That code is unknown or expired. Check your terminal, or run ferry login again."),
            StatusCode::BAD_REQUEST,
        )
    };
    let Some(code) = normalize_user_code(&form.user_code) else {
        return wrong_code();
    };
    match decide(&state, &code, account.id, approve).await {
        Ok(Decided::Approved) => {
            tracing::info!(account = %account.id, "device verification: approved");
            outcome(
                StatusCode::OK,
                "Device signed in",
                "You can close this window and return to your terminal.",
            )
        }
        Ok(Decided::Denied) => {
            tracing::info!(account = %account.id, "device verification: denied");
            outcome(
                StatusCode::OK,
                "Sign-in denied",
                "The device was not signed in. You can close this window.",
            )
        }
        Ok(Decided::Unknown) => wrong_code(),
        Err(error) => {
            tracing::error!(error = %error_chain(&error), "cannot record a device decision");
            outcome(StatusCode::INTERNAL_SERVER_ERROR, "Error", "internal error")
        }
    }
}
