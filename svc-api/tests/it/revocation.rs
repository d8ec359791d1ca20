//! Revocation and who may touch whom: a revoked credential's tokens stop working at once and
//! its event streams end; event streams end when their token expires; a tenant admin cannot
//! revoke or change an organization admin.

use crate::support::{Options, TestApp, canary_request};
use openidconnect::reqwest;
use serde_json::json;
use std::time::Duration;

/// Opens the deployment's event stream with `token`.
async fn open_stream(app: &TestApp, id: &str, token: &str) -> reqwest::Response {
    let response = app
        .http
        .get(format!("{}/v1/deployments/{id}/events", app.base))
        .bearer_auth(token)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Reads `stream` until the server ends it, failing after `within`.
async fn ends_within(mut stream: reqwest::Response, within: Duration, what: &str) {
    tokio::time::timeout(within, async {
        while stream.chunk().await.expect("read the stream").is_some() {}
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: the stream did not end within {within:?}"));
}

/// Starts a deployment (which stays running: nothing executes it here) and returns its id.
async fn running_deployment(app: &TestApp, token: &str, application: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/deployments",
            token,
            &canary_request(application, "reject"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_revoked_credentials_tokens_stop_working_and_its_event_streams_end() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (admin, admin_token) = app.tenant_token(&["Tenant Admin"]).await;
    let ci = app.same_tenant_credential(&admin, &["Deployer"]).await;
    let ci_token = app.token(&ci, "ferry-api").await;
    let id = running_deployment(&app, &ci_token, "revoked-watch").await;
    let stream = open_stream(&app, &id, &ci_token).await;

    let (status, body) = app
        .delete(
            &format!("/v1/credentials/{}", ci.credential_id),
            &admin_token,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The token is unexpired and well signed, but its credential is gone.
    let (status, body) = app.get("/v1/whoami", Some(&ci_token)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("revoked"), "{body}");
    ends_within(
        stream,
        Duration::from_secs(10),
        "the revoked credential's events",
    )
    .await;
    // The admin's own token is untouched.
    let (status, _) = app.get("/v1/whoami", Some(&admin_token)).await;
    assert_eq!(status, 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_revocation_through_another_replica_takes_effect_within_seconds() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (admin, _) = app.tenant_token(&["Tenant Admin"]).await;
    let ci = app.same_tenant_credential(&admin, &["Viewer"]).await;
    let ci_token = app.token(&ci, "ferry-api").await;
    // Used once, so this replica has "not revoked" cached.
    let (status, _) = app.get("/v1/whoami", Some(&ci_token)).await;
    assert_eq!(status, 200);

    // Revoked behind this replica's back (as another replica would).
    let mut conn = db.pool.acquire().await.unwrap();
    ferry_store::credentials::revoke(&mut conn, ci.tenant_id, ci.credential_id)
        .await
        .unwrap();
    ferry_testkit::eventually(
        "the revocation to reach this replica",
        Duration::from_secs(10),
        || {
            let app = &app;
            let token = &ci_token;
            async move { (app.get("/v1/whoami", Some(token)).await.0 == 401).then_some(()) }
        },
    )
    .await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn event_streams_end_when_their_token_expires() {
    let db = ferry_testkit::TestDb::new().await;
    let options = Options {
        token_ttl_secs: 3,
        ..Options::default()
    };
    let app = TestApp::start(&db, options).await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;
    let id = running_deployment(&app, &token, "expiring-watch").await;
    let stream = open_stream(&app, &id, &token).await;
    // The deployment never ends here, so only the token's expiry ends the stream.
    ends_within(
        stream,
        Duration::from_secs(15),
        "an expiring token's events",
    )
    .await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_tenant_admin_cannot_revoke_or_change_an_organization_admin() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (org, org_token) = app.tenant_token(&["Organization Admin"]).await;
    let admin_token = app.same_tenant_token(&org, &["Tenant Admin"]).await;
    let deployer = app.same_tenant_credential(&org, &["Deployer"]).await;
    let org_member = json!({ "kind": "credential", "id": org.credential_id });

    let (status, body) = app
        .delete(
            &format!("/v1/credentials/{}", org.credential_id),
            &admin_token,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("Organization Admin"), "{body}");
    for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
        let (status, body, _) = app
            .send(
                method.clone(),
                "/v1/roles/Viewer/members",
                Some(&admin_token),
                Some(&org_member),
            )
            .await;
        assert_eq!(status, 403, "{method} a role of an org admin: {body}");
    }
    // The organization admin still stands.
    let (status, me) = app.get("/v1/whoami", Some(&org_token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["roles"], json!(["Organization Admin"]));

    // A person holding Organization Admin is out of a tenant admin's reach too, even when the
    // change would keep that role.
    let (status, body) = app
        .put(
            "/v1/users/boss@example.com/roles",
            &org_token,
            &json!({ "roles": ["Organization Admin"] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .put(
            "/v1/users/boss@example.com/roles",
            &admin_token,
            &json!({ "roles": ["Organization Admin", "Viewer"] }),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = app.delete("/v1/users/boss@example.com", &admin_token).await;
    assert_eq!(status, 403);

    // Everyone else stays the tenant admin's to manage.
    let deployer_member = json!({ "kind": "credential", "id": deployer.credential_id });
    let (status, body, _) = app
        .send(
            reqwest::Method::POST,
            "/v1/roles/Viewer/members",
            Some(&admin_token),
            Some(&deployer_member),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = app
        .delete(
            &format!("/v1/credentials/{}", deployer.credential_id),
            &admin_token,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.stop().await.unwrap();
}
