//! The web UI under `/ui`: server-rendered HTML (maud) with htmx and its SSE extension, vendored
//! from npm into `svc-api/assets` (no JavaScript build), for live updates and partial swaps.
//!
//! People sign in with a session cookie ([`session`], [`auth`]): through svc-api's own issuer
//! for local accounts, or the external OIDC issuer when one is configured. Every page is under
//! `/ui/t/{tenant}/...` and builds its [`Principal`](crate::auth::Principal) with the same
//! membership lookup as a person's bearer token ([`crate::identity::people::member_principal`]),
//! then reads through the same store functions and checks the same roles as the `/v1` handlers;
//! actions call the `/v1` action handlers themselves ([`actions`]). Another tenant's ids answer
//! 404 as in the API.
//!
//! Every response carries a strict Content-Security-Policy (scripts and styles only from this
//! origin, no inline script or style, no framing); every state-changing request carries the
//! session's CSRF token and, from a browser, this origin.

pub mod actions;
pub mod admin;
pub mod assets;
pub mod auth;
pub mod deployments;
pub mod graph;
pub mod layout;
pub mod markdown;
pub mod names;
pub mod pods;
pub mod session;

use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

/// The Content-Security-Policy of every UI page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The UI's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(auth::home))
        .route("/ui/", get(auth::home))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/sign-in", get(auth::sign_in_page))
        .route("/ui/sign-in/{provider}", get(auth::start))
        .route(session::CALLBACK, get(auth::callback))
        .route("/ui/sign-out", post(auth::sign_out))
        .route("/ui/tenants", get(auth::tenants))
        .route("/ui/t/{tenant}", get(deployments::tenant_home))
        .route("/ui/t/{tenant}/deployments", get(deployments::list))
        .route("/ui/t/{tenant}/deployments/{id}", get(deployments::detail))
        .route(
            "/ui/t/{tenant}/deployments/{id}/panel",
            get(deployments::panel),
        )
        .route(
            "/ui/t/{tenant}/deployments/{id}/live",
            get(deployments::live),
        )
        .route(
            "/ui/t/{tenant}/deployments/{id}/actions/{action}",
            post(actions::act),
        )
        .merge(admin::router())
        .layer(axum::middleware::from_fn(security_headers))
}

/// Adds the UI's security headers (and to the issuer's sign-in form, which shares the layout).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Codes and states ride in the callback's query: never send a URL to another site.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
