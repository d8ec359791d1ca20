//! Signing in to the web UI over HTTP (the browser test in tests/stack drives the same pages in
//! chromium): the local issuer's authorization-code flow with PKCE, its refusals (unknown
//! client or redirect URI, no PKCE, wrong verifier, a spent code or state, a callback this
//! browser did not start, a wrong password), the session cookie's attributes, the CSRF token on
//! sign-out, and the strict CSP on every page.

use crate::support::{Options, TestApp};
use ferry_svc_api::settings::LocalUserArgs;
use ferry_testkit::TestDb;
use openidconnect::reqwest;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

const PASSWORD: &str = "correct horse battery staple";

/// `name=value` of the Set-Cookie header for `name`, and the whole header.
fn set_cookie(headers: &HeaderMap, name: &str) -> (String, String) {
    let header = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
        .to_string();
    let pair = header.split(';').next().unwrap().to_string();
    (pair, header)
}

fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(q).unwrap()
}

fn param(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Starts a sign-in: the authorize URL's parameters and the sign-in cookie.
async fn start(app: &TestApp) -> (Vec<(String, String)>, String) {
    let response = app
        .http
        .get(format!("{}/ui/sign-in/local?return_to=/ui", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let (cookie, header) = set_cookie(response.headers(), "ferry_sign_in");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax"),
        "{header}"
    );
    assert!(
        !header.contains("Secure"),
        "plain HTTP on loopback: {header}"
    );
    let to = location(response.headers());
    assert!(
        to.starts_with(&format!("{}/oauth/authorize?", app.base)),
        "{to}"
    );
    (query(&to), cookie)
}

/// Posts the sign-in form; the response.
async fn post_form(
    app: &TestApp,
    params: &[(String, String)],
    email: &str,
    password: &str,
) -> reqwest::Response {
    let mut form: Vec<(String, String)> = params.to_vec();
    form.push(("email".into(), email.into()));
    form.push(("password".into(), password.into()));
    app.http
        .post(format!("{}/oauth/authorize", app.base))
        .header("origin", &app.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form).unwrap())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn local_accounts_sign_in_through_the_code_flow_with_pkce() {
    let db = TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let tenant = app.credential(&["Tenant Admin"]).await;
    let store = ferry_store::Store::connect(&db.url, 2).await.unwrap();
    let args = LocalUserArgs {
        email: "Ada@Example.test".into(),
        tenant: tenant.tenant.clone(),
        roles: vec!["Deployer".into()],
        json: false,
    };
    let made =
        ferry_svc_api::identity::local_users::local_user(&store, &args, Some(PASSWORD.into()))
            .await
            .unwrap();
    assert_eq!(made.email, "ada@example.test");
    assert!(made.password.is_none(), "a given password is never printed");

    // The form, with the UI's security headers.
    let (params, sign_in_cookie) = start(&app).await;
    assert_eq!(param(&params, "code_challenge_method"), "S256");
    let authorize = format!(
        "{}/oauth/authorize?{}",
        app.base,
        serde_urlencoded::to_string(&params).unwrap()
    );
    let form = app.http.get(&authorize).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let csp = form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));

    // A wrong password is refused on the form.
    let wrong = post_form(&app, &params, "ada@example.test", "nope").await;
    assert_eq!(wrong.status(), 401);

    // Right: a code comes back to the UI's redirect URI with the state and the issuer.
    let right = post_form(&app, &params, "ada@example.test", PASSWORD).await;
    assert_eq!(right.status(), 303);
    let back = location(right.headers());
    assert!(
        back.starts_with(&format!("{}/ui/auth/callback?", app.base)),
        "{back}"
    );
    let answer = query(&back);
    assert_eq!(param(&answer, "state"), param(&params, "state"));
    assert_eq!(param(&answer, "iss"), app.base);
    let code = param(&answer, "code");

    // Traded with a wrong PKCE verifier it is refused, and spent.
    let redirect_uri = format!("{}/ui/auth/callback", app.base);
    let trade = |verifier: &'static str| {
        app.http
            .post(format!("{}/oauth/token", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("client_id", "ferry-ui"),
                    ("redirect_uri", redirect_uri.as_str()),
                    ("code_verifier", verifier),
                ])
                .unwrap(),
            )
            .send()
    };
    let refused = trade("wrong-verifier-wrong-verifier-wrong-verifier-0")
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&refused.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // The callback with that code (the right verifier is in the server's sign-in row) fails too.
    let spent = app
        .http
        .get(&back)
        .header("cookie", &sign_in_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), 400, "a spent code opens no session");

    // A whole sign-in: a session cookie, HttpOnly and SameSite=Lax.
    let (params, sign_in_cookie) = start(&app).await;
    let right = post_form(&app, &params, "ada@example.test", PASSWORD).await;
    let back = location(right.headers());
    // Not started in this browser (no sign-in cookie): refused, and nothing is spent.
    let foreign = app.http.get(&back).send().await.unwrap();
    assert_eq!(foreign.status(), 400);
    let done = app
        .http
        .get(&back)
        .header("cookie", &sign_in_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let (session, header) = set_cookie(done.headers(), "ferry_session");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax") && header.contains("Path=/"),
        "{header}"
    );
    assert_eq!(location(done.headers()), "/ui");

    // Home goes to the only tenant; its deployments page renders for the person.
    let home = app
        .http
        .get(format!("{}/ui", app.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(home.headers()),
        format!("/ui/t/{}/deployments", tenant.tenant)
    );
    let page = app
        .http
        .get(format!("{}/ui/t/{}/deployments", app.base, tenant.tenant))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("No deployments yet") && html.contains("ada@example.test"),
        "{html}"
    );
    // Another tenant (existing or not) is 404 to this person.
    let other = app.credential(&["Tenant Admin"]).await;
    for slug in [other.tenant.as_str(), "no-such-tenant"] {
        let refused = app
            .http
            .get(format!("{}/ui/t/{slug}/deployments", app.base))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 404, "{slug}");
    }
    // A Deployer is not an admin: the credentials page says so (403), as the API would.
    let admin = app
        .http
        .get(format!("{}/ui/t/{}/credentials", app.base, tenant.tenant))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 403);

    // Signing out needs the session's CSRF token.
    let csrf = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries the CSRF token")
        .to_string();
    let forged = app
        .http
        .post(format!("{}/ui/sign-out", app.base))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("_csrf", "not-the-token")]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let out = app
        .http
        .post(format!("{}/ui/sign-out", app.base))
        .header("cookie", &session)
        .header("origin", &app.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("_csrf", csrf.as_str())]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = app
        .http
        .get(format!("{}/ui/t/{}/deployments", app.base, tenant.tenant))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "the session is gone");
    assert!(location(after.headers()).starts_with("/ui/sign-in?return_to="));

    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_what_is_not_the_ui_with_pkce() {
    let db = TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let callback = format!("{}/ui/auth/callback", app.base);
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let get = |pairs: Vec<(&'static str, String)>| {
        let url = format!(
            "{}/oauth/authorize?{}",
            app.base,
            serde_urlencoded::to_string(pairs).unwrap()
        );
        app.http.get(url).send()
    };
    let base = |client: &str, redirect: &str| {
        vec![
            ("response_type", "code".to_string()),
            ("client_id", client.to_string()),
            ("redirect_uri", redirect.to_string()),
            ("state", "s".to_string()),
            ("code_challenge", challenge.to_string()),
            ("code_challenge_method", "S256".to_string()),
        ]
    };
    // Unknown client or redirect URI: a page, never a redirect.
    for pairs in [
        base("someone", &callback),
        base("ferry-ui", "https://evil.test/cb"),
    ] {
        let answer = get(pairs).await.unwrap();
        assert_eq!(answer.status(), 400);
        assert!(answer.headers().get(LOCATION).is_none());
    }
    // No PKCE, or plain: back to the UI with the error.
    let mut no_pkce = base("ferry-ui", &callback);
    no_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
    let mut plain = base("ferry-ui", &callback);
    plain[5].1 = "plain".into();
    let mut token = base("ferry-ui", &callback);
    token[0].1 = "token".into();
    for (pairs, error) in [
        (no_pkce, "invalid_request"),
        (plain, "invalid_request"),
        (token, "unsupported_response_type"),
    ] {
        let answer = get(pairs).await.unwrap();
        assert_eq!(answer.status(), 303);
        let to = location(answer.headers());
        assert!(to.starts_with(&callback), "{to}");
        assert_eq!(param(&query(&to), "error"), error);
    }
    // The discovery document says what the issuer offers.
    let (_, document) = app.get("/.well-known/openid-configuration", None).await;
    assert_eq!(
        document["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        document["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    app.stop().await.unwrap();
}

/// A tiny external identity provider with the code flow: discovery, keys, an authorization
/// endpoint that signs the person in at once, and a token endpoint that checks PKCE.
mod idp {
    use axum::extract::{Form, Query, State};
    use axum::response::{IntoResponse, Redirect, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use ferry_auth::Signer;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    pub(super) const CLIENT: &str = "ferry-web";

    /// What a code was issued for: (challenge, nonce, redirect_uri).
    type Issued = (String, String, String);

    #[derive(Clone)]
    struct Idp {
        url: String,
        email: String,
        signer: Arc<Signer>,
        codes: Arc<Mutex<HashMap<String, Issued>>>,
    }

    /// Starts the provider, which signs everyone in as `email`; its URL.
    pub(super) async fn start(email: &str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let idp = Idp {
            url: url.clone(),
            email: email.into(),
            signer: Arc::new(Signer::generate_es256("idp").unwrap()),
            codes: Arc::default(),
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(keys))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(idp);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    async fn discovery(State(idp): State<Idp>) -> Json<serde_json::Value> {
        let url = &idp.url;
        Json(json!({
            "issuer": url, "jwks_uri": format!("{url}/keys"),
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
        }))
    }

    async fn keys(State(idp): State<Idp>) -> Json<serde_json::Value> {
        Json(serde_json::to_value(idp.signer.jwk_set()).unwrap())
    }

    async fn authorize(
        State(idp): State<Idp>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        assert_eq!(q["client_id"], CLIENT);
        assert_eq!(q["code_challenge_method"], "S256");
        let code = format!("code-{}", q["state"]);
        idp.codes.lock().unwrap().insert(
            code.clone(),
            (
                q["code_challenge"].clone(),
                q["nonce"].clone(),
                q["redirect_uri"].clone(),
            ),
        );
        let query =
            serde_urlencoded::to_string([("code", code.as_str()), ("state", &q["state"])]).unwrap();
        Redirect::to(&format!("{}?{query}", q["redirect_uri"])).into_response()
    }

    async fn token(State(idp): State<Idp>, Form(f): Form<HashMap<String, String>>) -> Response {
        let Some((challenge, nonce, redirect)) = idp.codes.lock().unwrap().remove(&f["code"])
        else {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant"})),
            )
                .into_response();
        };
        let pkce = ferry_svc_api::identity::authorize::s256(&f["code_verifier"]);
        if pkce != challenge || redirect != f["redirect_uri"] || f["client_id"] != CLIENT {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant"})),
            )
                .into_response();
        }
        let now = ferry_auth::unix_now();
        let id_token = idp
            .signer
            .sign_claims(&json!({
                "iss": idp.url, "sub": "person-1", "aud": CLIENT, "iat": now, "exp": now + 300,
                "email": idp.email, "email_verified": true, "nonce": nonce,
            }))
            .unwrap();
        Json(json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}))
            .into_response()
    }
}

#[tokio::test]
async fn people_sign_in_through_the_external_issuer_as_its_client() {
    let db = TestDb::new().await;
    let idp_url = idp::start("grace@example.test").await;
    let flags = [
        "--oidc-issuer-url".to_string(),
        idp_url.clone(),
        "--oidc-audience".to_string(),
        idp::CLIENT.to_string(),
    ];
    let app = TestApp::start_with(&db, Options::default(), &flags).await;
    let (tenant, token) = app.tenant_token(&["Tenant Admin"]).await;
    let (status, _) = app
        .put(
            "/v1/users/grace@example.test/roles",
            &token,
            &serde_json::json!({"roles": ["Viewer"]}),
        )
        .await;
    assert!(status == 200 || status == 201, "invite: {status}");

    // The sign-in page offers the external issuer; starting goes to its authorization endpoint.
    let page = app
        .http
        .get(format!("{}/ui/sign-in", app.base))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains(&idp_url));
    let started = app
        .http
        .get(format!("{}/ui/sign-in/external", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    let (cookie, _) = set_cookie(started.headers(), "ferry_sign_in");
    let to = location(started.headers());
    assert!(to.starts_with(&format!("{idp_url}/authorize?")), "{to}");
    assert_eq!(param(&query(&to), "client_id"), idp::CLIENT);
    let at_idp = app.http.get(&to).send().await.unwrap();
    let back = location(at_idp.headers());
    let done = app
        .http
        .get(&back)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        303,
        "{}",
        done.text().await.unwrap_or_default()
    );
    let (session, _) = set_cookie(done.headers(), "ferry_session");
    let home = app
        .http
        .get(format!("{}/ui", app.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(home.headers()),
        format!("/ui/t/{}/deployments", tenant.tenant)
    );
    let page = app
        .http
        .get(format!("{}/ui/t/{}/deployments", app.base, tenant.tenant))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("grace@example.test"));
    app.stop().await.unwrap();
}
