//! Sessions of the web UI: the cookie (`HttpOnly`, `SameSite=Lax`, `Secure` unless svc-api
//! serves plain HTTP on a loopback address), the session row it names (stored by the SHA-256 of
//! its random id), and the [`Ui`] extractor that turns the session and the path's tenant into a
//! [`Principal`] through the same membership lookup as a person's bearer token. State-changing
//! requests must carry the session's CSRF token ([`check_csrf`]) and, when the browser says where
//! they come from, this origin ([`same_origin`]).

use super::layout;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::identity::people::member_principal;
use crate::state::AppState;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_store::StoreError;
use ferry_store::sign_in::{self, PersonTenant, Session};
use ferry_store::users;
use maud::html;

/// The session cookie.
pub const COOKIE: &str = "ferry_session";
/// The cookie of a sign-in in progress (its `state`).
pub const SIGN_IN_COOKIE: &str = "ferry_sign_in";
/// The redirect URI's path.
pub const CALLBACK: &str = crate::identity::authorize::CALLBACK_PATH;
/// The form field (or header) carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header alternative to [`CSRF_FIELD`].
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether cookies must be `Secure`: always, except when the issuer URL is plain HTTP on a
/// loopback host (local development and tests, where browsers treat loopback as secure anyway).
pub fn secure_cookies(state: &AppState) -> bool {
    let issuer = &state.issuer.issuer;
    let Some(rest) = issuer.strip_prefix("http://") else {
        return true;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// A `Set-Cookie` value.
pub fn cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let secure = if secure_cookies(state) {
        "; Secure"
    } else {
        ""
    };
    let text =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in the request.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// The origin (`scheme://host[:port]`) of the issuer URL: the UI's own.
pub fn own_origin(state: &AppState) -> &str {
    let issuer = state.issuer.issuer.as_str();
    let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
    match issuer[after_scheme..].find('/') {
        Some(i) => &issuer[..after_scheme + i],
        None => issuer,
    }
}

/// Whether a state-changing request may come from where the browser says it comes from: an
/// `Origin` must be this one; without it, `Sec-Fetch-Site` must not say another site. A
/// request with neither (not a browser) relies on the CSRF token alone.
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.to_str().is_ok_and(|o| o == own_origin(state));
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => true,
    }
}

/// Equal in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The signed-in person's session (no tenant yet).
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub id_hash: String,
    pub session: Session,
}

/// What happens when a page needs a session and there is none, or a request is refused.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in: to the sign-in page, then back to `return_to`.
    SignIn { return_to: String, htmx: bool },
    /// A refusal or failure, as the API would answer it.
    Api(ApiError),
    /// A state-changing request without this session's CSRF token or from another origin.
    Csrf,
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> UiError {
        UiError::Api(error)
    }
}

impl From<StoreError> for UiError {
    fn from(error: StoreError) -> UiError {
        UiError::Api(ApiError::Store(error))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn { return_to, htmx } => {
                let target = format!(
                    "/ui/sign-in?{}",
                    serde_urlencoded::to_string([("return_to", return_to.as_str())])
                        .unwrap_or_default()
                );
                if htmx {
                    // htmx follows this header with a full navigation.
                    let mut response = StatusCode::UNAUTHORIZED.into_response();
                    if let Ok(value) = HeaderValue::from_str(&target) {
                        response.headers_mut().insert("hx-redirect", value);
                    }
                    response
                } else {
                    Redirect::to(&target).into_response()
                }
            }
            UiError::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This request did not carry this session's form token (or came from another \
                 site). Reload the page and try again.",
            ),
            UiError::Api(error) => {
                let (status, _, title) = error.classify();
                let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(error = %crate::identity::keys::error_chain(&error), "UI request failed");
                    "Something went wrong on the server; the request id is in its logs.".to_string()
                } else {
                    describe(&error)
                };
                error_page(status, title, &message)
            }
        }
    }
}

/// An error as a person reads it.
pub fn describe(error: &ApiError) -> String {
    match error {
        ApiError::Forbidden(roles) => format!("This needs one of the roles: {}.", roles.join(", ")),
        ApiError::Store(StoreError::NotFound { .. }) => {
            "Not found: it does not exist, or not in this tenant.".into()
        }
        other => other.to_string(),
    }
}

/// A whole error page.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        layout::bare(
            title,
            html! {
                h1 { (title) }
                p.error role="alert" { (message) }
                p { a href="/ui" { "Back to Ferry" } }
            },
        ),
    )
        .into_response()
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<SignedIn, UiError> {
        let sign_in = || UiError::SignIn {
            return_to: return_to(parts),
            htmx: parts.headers.contains_key("hx-request"),
        };
        let Some(id) = read_cookie(&parts.headers, COOKIE) else {
            return Err(sign_in());
        };
        let id_hash = sign_in::hash(id);
        match sign_in::session(&state.store, &id_hash).await? {
            Some(session) => Ok(SignedIn { id_hash, session }),
            None => Err(sign_in()),
        }
    }
}

/// Where to come back to after signing in: this page (a GET), else the UI's home.
fn return_to(parts: &Parts) -> String {
    let path = parts.uri.path_and_query().map_or("/ui", |p| p.as_str());
    if parts.method == axum::http::Method::GET
        && !parts.headers.contains_key("hx-request")
        && safe_return_to(path)
    {
        path.to_string()
    } else {
        "/ui".into()
    }
}

/// Whether `path` is a UI path of this origin (never `//host` or a scheme: no open redirect).
pub fn safe_return_to(path: &str) -> bool {
    path.len() <= 1024
        && (path == "/ui" || path.starts_with("/ui/"))
        && !path.contains(['\\', '\r', '\n'])
        && !path.contains("//")
}

/// A signed-in person in the tenant the path names, with their principal there.
#[derive(Clone, Debug)]
pub struct Ui {
    pub principal: Principal,
    /// The tenant's slug.
    pub tenant: String,
    /// The tenants the person may switch to.
    pub tenants: Vec<PersonTenant>,
    /// The session's CSRF token, for forms.
    pub csrf: String,
    /// The session's id hash (sign-out).
    pub id_hash: String,
}

impl Ui {
    /// `/ui/t/{tenant}`.
    pub fn base(&self) -> String {
        format!("/ui/t/{}", self.tenant)
    }
}

impl FromRequestParts<AppState> for Ui {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Ui, UiError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("no tenant in the path".into()))?;
        let slug = params
            .iter()
            .find(|(k, _)| *k == "tenant")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| ApiError::BadRequest("no tenant in the path".into()))?;
        if slug.len() > 63 {
            return Err(ApiError::Store(StoreError::not_found("tenant")).into());
        }
        let principal = principal_for(state, &signed_in.session, &slug).await?;
        state
            .limiter
            .acquire(principal.tenant)
            .map_err(|wait| ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            })?;
        let s = &signed_in.session;
        let tenants = sign_in::tenants_of(
            &state.store,
            &s.issuer,
            &s.subject,
            &s.email,
            s.email_verified,
        )
        .await?;
        Ok(Ui {
            principal,
            tenant: slug,
            tenants,
            csrf: signed_in.session.csrf_token.clone(),
            id_hash: signed_in.id_hash,
        })
    }
}

/// The person's principal in tenant `slug`: the same lookup as their bearer token's, with the
/// external issuer's group roles when they signed in there. Not a member: 404, as in the API.
pub async fn principal_for(
    state: &AppState,
    session: &Session,
    slug: &str,
) -> Result<Principal, ApiError> {
    let group_roles: &[(String, String)] = match &state.people {
        Some(people) if people.issuer() == session.issuer => &people.config().group_roles,
        _ => &[],
    };
    member_principal(
        state,
        slug,
        users::SignIn {
            issuer: &session.issuer,
            subject: &session.subject,
            email: &session.email,
            email_verified: session.email_verified,
        },
        &session.groups,
        group_roles,
        u64::try_from(session.expires_at.timestamp()).unwrap_or(0),
    )
    .await
}

/// Checks a state-changing request: this origin (when the browser says), and the session's
/// CSRF token in the `X-CSRF-Token` header or the form's `_csrf` field.
pub fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    form_token: Option<&str>,
    expected: &str,
) -> Result<(), UiError> {
    if !same_origin(state, headers) {
        return Err(UiError::Csrf);
    }
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(form_token);
    match sent {
        Some(token) if constant_time_eq(token, expected) => Ok(()),
        _ => Err(UiError::Csrf),
    }
}

/// A form body (urlencoded) whose CSRF token was checked against the session's. Fields are
/// limited by the extractor's caller (each form type says its lengths).
pub fn parse_form<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    expected_csrf: &str,
) -> Result<T, UiError> {
    const MAX_FORM: usize = 64 * 1024;
    if body.len() > MAX_FORM {
        return Err(ApiError::PayloadTooLarge.into());
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid form: {e}")))?;
    let token = pairs
        .iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.as_str());
    check_csrf(state, headers, token, expected_csrf)?;
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid form: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_in_the_ui() {
        assert!(safe_return_to("/ui/t/demo/deployments?status=running"));
        for bad in [
            "//evil.test/ui",
            "https://evil.test/ui",
            "/uix",
            "/ui//evil",
            "/ui/\\x",
        ] {
            assert!(!safe_return_to(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ferry_session=xyz"),
        );
        assert_eq!(read_cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(read_cookie(&headers, "b"), None);
    }
}
