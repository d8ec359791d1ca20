//! Tenant isolation: every endpoint that takes an id answers another tenant's id exactly as a
//! missing one (404), never 403, and changes nothing of the other tenant.

use crate::support::{Options, TestApp, canary_request, count};
use ferry_store::approvals::{self, NewApproval};
use ferry_store::callbacks::{self, NewCallback};
use ferry_svc_api::v1::actions::callback_token_hash;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn another_tenants_ids_are_not_found_on_every_endpoint() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (owner, owner_token) = app.tenant_token(&["Tenant Admin"]).await;
    let (_, intruder) = app
        .tenant_token(&["Tenant Admin", "Organization Admin", "Deployer", "Viewer"])
        .await;

    // The owner's deployment, approval, callback, credential, secret, provider and role.
    let (status, body) = app
        .post(
            "/v1/deployments",
            &owner_token,
            &canary_request("private", "reject"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let deployment = id.parse().unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    approvals::create(
        &mut conn,
        owner.tenant_id,
        deployment,
        &NewApproval {
            target: "prod-us".into(),
            step_key: "step:1".into(),
            requires_roles: vec![],
            expires_at: None,
        },
    )
    .await
    .unwrap();
    callbacks::create(
        &mut conn,
        owner.tenant_id,
        deployment,
        &NewCallback {
            target: None,
            webhook_name: "w".into(),
            token_hash: callback_token_hash("secret-token"),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        },
    )
    .await
    .unwrap();
    drop(conn);
    let (status, _) = app
        .put(
            "/v1/secrets/owner-secret",
            &owner_token,
            &json!({ "value": "v" }),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .put(
            "/v1/metric-providers/owner-prom",
            &owner_token,
            &json!({ "kind": "prometheus", "baseUrl": "http://prom" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post("/v1/roles", &owner_token, &json!({ "name": "Owner Role" }))
        .await;
    assert_eq!(status, 201);

    let before = (
        count(&db, "outbox").await,
        count(&db, "audit_log").await,
        count(&db, "deployments").await,
    );
    let target = json!({ "target": "dev" });
    let cases: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, format!("/v1/deployments/{id}"), None),
        (Method::GET, format!("/v1/deployments/{id}/config"), None),
        (Method::GET, format!("/v1/deployments/{id}/events"), None),
        (Method::POST, format!("/v1/deployments/{id}/redeploy"), None),
        (
            Method::POST,
            format!("/v1/deployments/{id}/approve"),
            Some(json!({ "target": "prod-us" })),
        ),
        (
            Method::POST,
            format!("/v1/deployments/{id}/reject"),
            Some(json!({ "target": "prod-us" })),
        ),
        (Method::POST, format!("/v1/deployments/{id}/abort"), None),
        (Method::POST, format!("/v1/deployments/{id}/rollback"), None),
        (
            Method::POST,
            format!("/v1/deployments/{id}/skip-pause"),
            Some(target.clone()),
        ),
        (
            Method::POST,
            format!("/v1/deployments/{id}/roll-forward"),
            Some(target.clone()),
        ),
        (
            Method::POST,
            format!("/v1/deployments/{id}/webhooks/secret-token/callback"),
            Some(json!({ "success": true })),
        ),
        (
            Method::DELETE,
            format!("/v1/credentials/{}", owner.credential_id),
            None,
        ),
        (Method::DELETE, "/v1/secrets/owner-secret".into(), None),
        (Method::GET, "/v1/metric-providers/owner-prom".into(), None),
        (
            Method::DELETE,
            "/v1/metric-providers/owner-prom".into(),
            None,
        ),
        (
            Method::PUT,
            "/v1/roles/Owner%20Role/grants".into(),
            Some(json!({ "grants": [] })),
        ),
        (
            Method::POST,
            "/v1/roles/Owner%20Role/members".into(),
            Some(json!({ "kind": "credential", "id": owner.credential_id })),
        ),
        (
            Method::DELETE,
            "/v1/roles/Deployer/members".into(),
            Some(json!({ "kind": "credential", "id": owner.credential_id })),
        ),
    ];
    for (method, path, body) in &cases {
        let (status, answer, _) = app
            .send(method.clone(), path, Some(&intruder), body.as_ref())
            .await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "not_found", "{method} {path}");
    }
    // Listings show only the caller's own tenant.
    let (_, listed) = app.get("/v1/deployments", Some(&intruder)).await;
    assert_eq!(listed["items"], json!([]));
    let (_, secrets) = app.get("/v1/secrets", Some(&intruder)).await;
    assert_eq!(secrets, json!([]));
    // Role name lookups are per tenant too: binding the owner's credential to the intruder's
    // own Deployer role is a 404 (the credential is not in the intruder's tenant).
    let (status, _, _) = app
        .send(
            Method::POST,
            "/v1/roles/Deployer/members",
            Some(&intruder),
            Some(&json!({ "kind": "credential", "id": owner.credential_id })),
        )
        .await;
    assert_eq!(status, 404);

    assert_eq!(
        before,
        (
            count(&db, "outbox").await,
            count(&db, "audit_log").await,
            count(&db, "deployments").await,
        ),
        "nothing of the owner's changed"
    );
    // The owner still sees everything intact.
    assert_eq!(
        app.get(&format!("/v1/deployments/{id}"), Some(&owner_token))
            .await
            .0,
        200
    );
    assert_eq!(
        app.get("/v1/metric-providers/owner-prom", Some(&owner_token))
            .await
            .0,
        200
    );
    app.stop().await.unwrap();
}
