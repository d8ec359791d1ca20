//! People signing in through an external OIDC issuer (a real one, in the test): invited users
//! reach their tenant with their role bindings (and provider groups' roles), everyone else is
//! refused with a reason (401) or answered as for a tenant that does not exist (404); the
//! users API that invites and removes them; key reloads on an unknown key id, rate-limited.

use crate::oidc_issuer::{AUDIENCE, TestIssuer, now};
use crate::support::{Options, TestApp, count};
use ferry_svc_api::identity::oidc::OidcError;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// `method path` as a person, without a body.
async fn person(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    tenant: Option<&str>,
) -> (u16, Value) {
    app.person(method, path, token, tenant, None).await
}

#[tokio::test]
async fn an_invited_person_signs_in_with_their_roles_until_removed() {
    let db = ferry_testkit::TestDb::new().await;
    let idp = TestIssuer::start().await;
    let flags = idp.flags(&["--oidc-group-roles", "sre=Deployer"]);
    let app = TestApp::start_with(&db, Options::default(), &flags).await;
    let (admin, admin_token) = app.tenant_token(&["Tenant Admin"]).await;
    let slug = admin.tenant.as_str();
    let ada = idp.token("Ada@Example.com");

    // A valid token of the provider alone reaches nothing: Ada is not invited yet.
    let (status, body) = person(&app, Method::GET, "/v1/whoami", &ada, Some(slug)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(count(&db, "users").await, 0, "signing in creates no user");

    let (status, invited) = app
        .send(
            Method::PUT,
            "/v1/users/Ada@Example.com/roles",
            Some(&admin_token),
            Some(&json!({ "roles": ["Viewer", "Deployer"], "displayName": "Ada" })),
        )
        .await
        .into_pair();
    assert_eq!(status, 201, "{invited}");
    assert_eq!(invited["email"], "ada@example.com");
    assert_eq!(invited["roles"], json!(["Deployer", "Viewer"]));

    let (status, me) = person(&app, Method::GET, "/v1/whoami", &ada, Some(slug)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["tenant"], admin.tenant_id.to_string());
    assert_eq!(me["kind"], "user");
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["subject"], invited["id"]);
    assert_eq!(me["roles"], json!(["Deployer", "Viewer"]));
    let (status, body) = person(&app, Method::GET, "/v1/deployments", &ada, Some(slug)).await;
    assert_eq!(status, 200, "{body}");
    // A Deployer is no tenant administrator.
    let (status, _) = person(&app, Method::GET, "/v1/users", &ada, Some(slug)).await;
    assert_eq!(status, 403);

    // The tenant may come from the token's ferry_tenant claim instead of the header; the two
    // must agree, and one of them must be there.
    let mut claims = idp.claims("ada@example.com");
    claims["ferry_tenant"] = json!(slug);
    let pinned = idp.sign(&claims);
    assert_eq!(
        person(&app, Method::GET, "/v1/whoami", &pinned, None)
            .await
            .0,
        200
    );
    let (status, body) = person(
        &app,
        Method::GET,
        "/v1/whoami",
        &pinned,
        Some("other-tenant"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = person(&app, Method::GET, "/v1/whoami", &ada, None).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("X-Ferry-Tenant"));

    // Provider groups add the roles they map to.
    let mut claims = idp.claims("ada@example.com");
    claims["groups"] = json!(["sre"]);
    app.send(
        Method::PUT,
        "/v1/users/ada@example.com/roles",
        Some(&admin_token),
        Some(&json!({ "roles": ["Viewer"] })),
    )
    .await;
    let (_, me) = person(&app, Method::GET, "/v1/whoami", &ada, Some(slug)).await;
    assert_eq!(me["roles"], json!(["Viewer"]));
    let (_, me) = person(
        &app,
        Method::GET,
        "/v1/whoami",
        &idp.sign(&claims),
        Some(slug),
    )
    .await;
    assert_eq!(me["roles"], json!(["Deployer", "Viewer"]));

    let (status, users) = app.get("/v1/users", Some(&admin_token)).await;
    assert_eq!(status, 200);
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["email"], "ada@example.com");
    assert_eq!(users[0]["display_name"], "Ada");
    assert_eq!(users[0]["roles"], json!(["Viewer"]));

    // A member without roles of their own reaches the tenant only through their groups.
    let (status, body) = app
        .put(
            "/v1/users/ada@example.com/roles",
            &admin_token,
            &json!({ "roles": [] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        person(&app, Method::GET, "/v1/whoami", &ada, Some(slug))
            .await
            .0,
        404
    );
    let (_, me) = person(
        &app,
        Method::GET,
        "/v1/whoami",
        &idp.sign(&claims),
        Some(slug),
    )
    .await;
    assert_eq!(me["roles"], json!(["Deployer"]));

    // Removed: Ada is answered as for a tenant that does not exist.
    let (status, _) = app.delete("/v1/users/ada@example.com", &admin_token).await;
    assert_eq!(status, 204);
    let (status, _) = person(&app, Method::GET, "/v1/whoami", &ada, Some(slug)).await;
    assert_eq!(status, 404);
    let (status, _) = app.delete("/v1/users/ada@example.com", &admin_token).await;
    assert_eq!(status, 404);

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE tenant_id = $1 AND resource_kind = 'user' ORDER BY id",
    )
    .bind(admin.tenant_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "user.invite",
            "user.set_roles",
            "user.set_roles",
            "user.remove"
        ]
    );

    // Machine credentials keep working beside people.
    assert_eq!(app.get("/v1/whoami", Some(&admin_token)).await.0, 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_person_tokens_are_refused_with_a_reason_and_strangers_see_no_tenant() {
    let db = ferry_testkit::TestDb::new().await;
    let idp = TestIssuer::start().await;
    let app = TestApp::start_with(&db, Options::default(), &idp.flags(&[])).await;
    let (admin, admin_token) = app.tenant_token(&["Tenant Admin"]).await;
    let (other, _) = app.tenant_token(&["Tenant Admin"]).await;
    let slug = admin.tenant.as_str();
    let (status, _) = app
        .put(
            "/v1/users/bo@example.com/roles",
            &admin_token,
            &json!({ "roles": ["Viewer"] }),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        person(
            &app,
            Method::GET,
            "/v1/whoami",
            &idp.token("bo@example.com"),
            Some(slug)
        )
        .await
        .0,
        200
    );

    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = idp.claims("bo@example.com");
        change(&mut claims);
        idp.sign(&claims)
    };
    let forged = ferry_auth::Signer::generate_es256("idp-1")
        .unwrap()
        .sign_claims(&idp.claims("bo@example.com"))
        .unwrap();
    let cases = [
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("someone-else")),
            "audience",
        ),
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 3600)),
            "expired",
        ),
        (
            "not yet valid",
            with(&|c| c["nbf"] = json!(now() + 3600)),
            "not valid yet",
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://elsewhere.test")),
            "issuer",
        ),
        ("bad signature", forged, "signature"),
        ("no email", with(&|c| c["email"] = Value::Null), "email"),
        (
            "unverified email",
            with(&|c| c["email_verified"] = json!(false)),
            "verified",
        ),
    ];
    for (what, token, reason) in cases {
        let (status, body) = person(&app, Method::GET, "/v1/whoami", &token, Some(slug)).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["code"], "unauthorized", "{what}");
        assert!(
            body["detail"].as_str().unwrap().contains(reason),
            "{what}: {body}"
        );
    }

    // Bo is a user of one tenant only. Another existing tenant and a tenant that does not exist
    // answer alike, on every route.
    let bo = idp.token("bo@example.com");
    for path in [
        "/v1/whoami",
        "/v1/deployments",
        "/v1/users",
        "/v1/tenants",
        "/v1/agents",
    ] {
        let (status, foreign) =
            person(&app, Method::GET, path, &bo, Some(other.tenant.as_str())).await;
        let (missing_status, missing) =
            person(&app, Method::GET, path, &bo, Some("no-such-tenant")).await;
        assert_eq!(status, 404, "{path}: {foreign}");
        assert_eq!(missing_status, 404, "{path}");
        assert_eq!(foreign["detail"], missing["detail"], "{path}");
        assert_eq!(foreign["code"], missing["code"], "{path}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn keys_reload_on_an_unknown_key_id_at_most_once_per_interval() {
    let idp = TestIssuer::start().await;
    let patient = idp.verifier(Duration::ZERO);
    let strict = idp.verifier(Duration::from_secs(3600));

    // Keys load on the first token, not before.
    assert_eq!(idp.jwks_fetches(), 0);
    let first = idp.token("cy@example.com");
    assert_eq!(
        patient.verify(&first).await.unwrap().email,
        "cy@example.com"
    );
    assert_eq!(
        strict.verify(&first).await.unwrap().subject,
        "sub-cy@example.com"
    );
    assert_eq!(idp.jwks_fetches(), 2);
    // Known keys need no fetch.
    patient.verify(&first).await.unwrap();
    assert_eq!(idp.jwks_fetches(), 2);

    // The provider rotates: the verifier allowed to reload picks the new key up; the one that
    // loaded within its interval refuses without asking the provider again, however often a
    // token names an unknown key.
    idp.rotate("idp-2");
    let second = idp.token("cy@example.com");
    assert!(patient.verify(&second).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 3);
    for _ in 0..5 {
        assert!(matches!(
            strict.verify(&second).await,
            Err(OidcError::Signature)
        ));
    }
    assert_eq!(idp.jwks_fetches(), 3);

    // A provider that cannot be reached is a temporary failure, not a bad token.
    let port = ferry_testkit::process::CLOSED_PORT;
    let unreachable =
        ferry_svc_api::identity::oidc::OidcIssuer::new(ferry_svc_api::settings::OidcConfig {
            issuer: format!("http://127.0.0.1:{port}"),
            audience: AUDIENCE.into(),
            email_claim: "email".into(),
            groups_claim: "groups".into(),
            group_roles: Vec::new(),
            min_reload: Duration::ZERO,
        })
        .unwrap();
    assert!(matches!(
        unreachable.verify(&second).await,
        Err(OidcError::Unavailable(_))
    ));
}

/// `(status, body)` of [`TestApp::send`]'s answer.
trait IntoPair {
    fn into_pair(self) -> (u16, Value);
}

impl IntoPair for (u16, Value, reqwest::header::HeaderMap) {
    fn into_pair(self) -> (u16, Value) {
        (self.0, self.1)
    }
}

#[tokio::test]
async fn a_person_is_their_issuer_and_subject_not_their_email() {
    let db = ferry_testkit::TestDb::new().await;
    let idp = TestIssuer::start().await;
    let app = TestApp::start_with(&db, Options::default(), &idp.flags(&[])).await;
    let (admin, admin_token) = app.tenant_token(&["Tenant Admin"]).await;
    let slug = admin.tenant.as_str();
    let (status, invited) = app
        .put(
            "/v1/users/ada@example.com/roles",
            &admin_token,
            &json!({ "roles": ["Viewer"] }),
        )
        .await;
    assert_eq!(status, 201, "{invited}");

    // An invitation is not accepted on an email the provider does not vouch for.
    let mut unvouched = idp.claims("ada@example.com");
    unvouched.as_object_mut().unwrap().remove("email_verified");
    let (status, body) = person(
        &app,
        Method::GET,
        "/v1/whoami",
        &idp.sign(&unvouched),
        Some(slug),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("verified"),
        "{body}"
    );

    // The first verified sign-in binds the user to the token's issuer and subject.
    let (status, me) = person(
        &app,
        Method::GET,
        "/v1/whoami",
        &idp.token("ada@example.com"),
        Some(slug),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["subject"], invited["id"]);
    let (issuer, subject): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT issuer, subject FROM users WHERE email = 'ada@example.com'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(issuer.as_deref(), Some(idp.url.as_str()));
    assert_eq!(subject.as_deref(), Some("sub-ada@example.com"));

    // Someone else the provider lets use the same email (a reused or recycled address) is
    // not Ada, even with the email verified.
    let mut impostor = idp.claims("ada@example.com");
    impostor["sub"] = json!("someone-else");
    let (status, body) = person(
        &app,
        Method::GET,
        "/v1/whoami",
        &idp.sign(&impostor),
        Some(slug),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Ada herself stays Ada after her email changes at the provider, verified or not.
    let mut renamed = idp.claims("ada.lovelace@example.org");
    renamed["sub"] = json!("sub-ada@example.com");
    renamed["email_verified"] = json!(null);
    let (status, me) = person(
        &app,
        Method::GET,
        "/v1/whoami",
        &idp.sign(&renamed),
        Some(slug),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["subject"], invited["id"]);
    assert_eq!(me["roles"], json!(["Viewer"]));
    app.stop().await.unwrap();
}
