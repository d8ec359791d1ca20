//! The CLI's sign-in with svc-api's own issuer (RFC 8628): the device authorization endpoint,
//! the verification page (approve and deny, its CSRF token, the wrong-code limit), the
//! device-code grant's answers (pending, slow_down, denied, expired, single use, wrong client),
//! the person's access token at the REST API, and rotating refresh tokens with reuse detection
//! and revocation.

use crate::support::{Options, TestApp};
use ferry_svc_api::settings::LocalUserArgs;
use ferry_testkit::TestDb;
use openidconnect::reqwest;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";
const EMAIL: &str = "grace@example.test";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A local account `EMAIL` holding `Deployer` in a new tenant; the tenant's slug.
async fn person(app: &TestApp, db: &TestDb) -> String {
    let tenant = app.credential(&["Tenant Admin"]).await;
    let store = ferry_store::Store::connect(&db.url, 2).await.unwrap();
    let args = LocalUserArgs {
        email: EMAIL.into(),
        tenant: tenant.tenant.clone(),
        roles: vec!["Deployer".into()],
        json: false,
    };
    ferry_svc_api::identity::local_users::local_user(&store, &args, Some(PASSWORD.into()))
        .await
        .unwrap();
    tenant.tenant
}

/// `POST /oauth/device_authorization`: status and body.
async fn device(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/oauth/device_authorization", app.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_str(&response.text().await.unwrap()).unwrap(),
    )
}

/// Polls with `device_code` as `client_id`: status and body.
async fn poll(app: &TestApp, device_code: &str, client_id: &str) -> (u16, Value) {
    let (status, body, _) = app
        .token_request(
            None,
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", device_code),
                ("client_id", client_id),
            ],
        )
        .await;
    (status, body)
}

async fn refresh(app: &TestApp, token: &str) -> (u16, Value) {
    let (status, body, _) = app
        .token_request(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", "ferry-cli"),
            ],
        )
        .await;
    (status, body)
}

/// The value of `name="_csrf"` in the page.
fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    html[at..].split('"').next().unwrap().to_string()
}

/// Opens the verification page and posts the decision as a browser would: status and page.
async fn decide(
    app: &TestApp,
    user_code: &str,
    password: &str,
    decision: &str,
    with_csrf: bool,
) -> (u16, String) {
    let page = app
        .http
        .get(format!("{}/oauth/device", app.base))
        .query(&[("user_code", user_code)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the CSRF cookie")
        .to_string();
    let html = page.text().await.unwrap();
    assert!(html.contains(user_code), "the code is prefilled");
    let csrf = if with_csrf {
        hidden_csrf(&html)
    } else {
        "forged".into()
    };
    let response = app
        .http
        .post(format!("{}/oauth/device", app.base))
        .header("origin", &app.base)
        .header("cookie", cookie)
        .form(&[
            ("user_code", user_code),
            ("email", EMAIL),
            ("password", password),
            ("decision", decision),
            ("_csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn a_person_signs_in_a_device_and_its_refresh_tokens_rotate() {
    let db = TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let tenant = person(&app, &db).await;

    let (_, discovery) = app.get("/.well-known/openid-configuration", None).await;
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!("{}/oauth/device_authorization", app.base)
    );
    assert_eq!(
        discovery["revocation_endpoint"],
        format!("{}/oauth/revoke", app.base)
    );
    let grants = discovery["grant_types_supported"].to_string();
    assert!(grants.contains(DEVICE_GRANT) && grants.contains("refresh_token"));
    let (_, sign_in) = app.get("/.well-known/ferry-sign-in", None).await;
    assert_eq!(sign_in["version"], 1);
    assert_eq!(sign_in["issuers"][0]["issuer"], app.base.as_str());
    assert_eq!(sign_in["issuers"][0]["clientId"], "ferry-cli");

    // Forms are small: 16 KiB at most.
    let big = app
        .http
        .post(format!("{}/oauth/device_authorization", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id=ferry-cli&scope={}",
            "a".repeat(20 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);

    // Unknown clients and scopes are refused.
    let (status, body) = device(&app, &[("client_id", "ferry-ui")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = device(&app, &[("client_id", "ferry-cli"), ("scope", "admin")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    let (status, started) = device(
        &app,
        &[
            ("client_id", "ferry-cli"),
            ("scope", "openid offline_access"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code
            .chars()
            .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );
    assert_eq!(started["interval"], 5);
    assert_eq!(started["expires_in"], 600);
    assert_eq!(
        started["verification_uri"],
        format!("{}/oauth/device", app.base)
    );
    assert!(
        started["verification_uri_complete"]
            .as_str()
            .unwrap()
            .ends_with(&format!("?user_code={user_code}"))
    );
    assert_eq!(crate::support::count(&db, "device_authorizations").await, 1);
    let stored: String = sqlx::query_scalar("SELECT device_code_hash FROM device_authorizations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_ne!(stored, device_code, "only the hash is stored");

    // Pending; polled again at once: slow down. Another client may not poll it.
    let (status, body) = poll(&app, device_code, "ferry-cli").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (status, body) = poll(&app, device_code, "ferry-cli").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("slow_down")),
        "{body}"
    );
    let interval: i32 = sqlx::query_scalar("SELECT interval_secs FROM device_authorizations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(interval, 10, "slow_down adds 5 s");
    let (status, body) = poll(&app, device_code, "ferry-ui").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The page refuses a post without its token, and a wrong password; then approves.
    let (status, _) = decide(&app, user_code, PASSWORD, "approve", false).await;
    assert_eq!(status, 403);
    let (status, page) = decide(&app, user_code, "wrong password!", "approve", true).await;
    assert_eq!(status, 401, "{page}");
    let (status, page) = decide(&app, user_code, PASSWORD, "approve", true).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Device signed in"), "{page}");

    let (status, tokens) = poll(&app, device_code, "ferry-cli").await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();
    let first_refresh = tokens["refresh_token"].as_str().unwrap();
    // Single use.
    let (status, body) = poll(&app, device_code, "ferry-cli").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The access token is the person's in the tenant X-Ferry-Tenant names.
    let (status, me) = app
        .person(
            reqwest::Method::GET,
            "/v1/whoami",
            access,
            Some(&tenant),
            None,
        )
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["kind"], "user");
    assert_eq!(me["email"], EMAIL);
    assert_eq!(me["roles"], serde_json::json!(["Deployer"]));
    let (status, _) = app
        .person(reqwest::Method::GET, "/v1/whoami", access, None, None)
        .await;
    assert_eq!(status, 400, "a person names the tenant");
    let (status, _) = app
        .person(
            reqwest::Method::GET,
            "/v1/whoami",
            access,
            Some("elsewhere"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Rotation: a refresh spends the token and hands out the next.
    let (status, second) = refresh(&app, first_refresh).await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    let (status, _) = app
        .person(
            reqwest::Method::GET,
            "/v1/whoami",
            second["access_token"].as_str().unwrap(),
            Some(&tenant),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Reuse of the spent token revokes the family, the newest token too.
    let (status, body) = refresh(&app, first_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = refresh(&app, second_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );

    // Revocation (ferry logout) ends another sign-in's family.
    let (_, started) = device(&app, &[("client_id", "ferry-cli")]).await;
    let (status, _) = decide(
        &app,
        started["user_code"].as_str().unwrap(),
        PASSWORD,
        "approve",
        true,
    )
    .await;
    assert_eq!(status, 200);
    let (status, tokens) = poll(&app, started["device_code"].as_str().unwrap(), "ferry-cli").await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let revoked = app
        .http
        .post(format!("{}/oauth/revoke", app.base))
        .form(&[
            ("token", refresh_token),
            ("client_id", "ferry-cli"),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (status, _) = refresh(&app, refresh_token).await;
    assert_eq!(status, 400);
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(!stored.iter().any(|h| h == refresh_token), "only hashes");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn denied_expired_and_guessed_codes_end_as_the_rfc_says() {
    let db = TestDb::new().await;
    let limits = [
        "--token-failures-per-client",
        "0.001",
        "--token-failure-burst-per-client",
        "3",
    ]
    .map(String::from);
    let app = TestApp::start_with(&db, Options::default(), &limits).await;
    person(&app, &db).await;

    // Denied: the poll says so once, then the code is gone.
    let (_, denied) = device(&app, &[("client_id", "ferry-cli")]).await;
    let (status, page) = decide(
        &app,
        denied["user_code"].as_str().unwrap(),
        PASSWORD,
        "deny",
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign-in denied"), "{page}");
    let code = denied["device_code"].as_str().unwrap();
    let (status, body) = poll(&app, code, "ferry-cli").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("access_denied"))
    );
    let (_, body) = poll(&app, code, "ferry-cli").await;
    assert_eq!(body["error"], "invalid_grant");

    // Expired: the poll says so, and the page no longer takes its user code.
    let (_, expired) = device(&app, &[("client_id", "ferry-cli")]).await;
    sqlx::query("UPDATE device_authorizations SET expires_at = now() - interval '1 second'")
        .execute(&db.pool)
        .await
        .unwrap();
    let (status, page) = decide(
        &app,
        expired["user_code"].as_str().unwrap(),
        PASSWORD,
        "approve",
        true,
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("unknown or expired"), "{page}");
    let (status, body) = poll(&app, expired["device_code"].as_str().unwrap(), "ferry-cli").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("expired_token"))
    );

    // Guessing: two more wrong codes reach the limit of 3; then even the right one is held.
    let (_, target) = device(&app, &[("client_id", "ferry-cli")]).await;
    for guess in ["BCDF-GHJK", "ZZZZ-ZZZZ"] {
        let (status, _) = decide(&app, guess, PASSWORD, "approve", true).await;
        assert_eq!(status, 400, "{guess}");
    }
    let (status, page) = decide(
        &app,
        target["user_code"].as_str().unwrap(),
        PASSWORD,
        "approve",
        true,
    )
    .await;
    assert_eq!(status, 429, "{page}");
    let (_, body) = poll(&app, target["device_code"].as_str().unwrap(), "ferry-cli").await;
    assert_eq!(body["error"], "authorization_pending");
    app.stop().await.unwrap();
}
