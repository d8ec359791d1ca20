//! Tenant administration: credentials (the secret is shown once and works at `/oauth/token`;
//! revoked ones stop working), secrets (sealed, never returned), metric providers (secret
//! references checked), roles and members, agents and the tenant; and who may do what.

use crate::support::{Options, TestApp, canary_request};
use ferry_svc_api::identity::crypto::MasterKey;
use ferry_svc_api::v1::secrets::secret_context;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_credential_secret_is_shown_once_works_and_stops_when_revoked() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (admin, token) = app.tenant_token(&["Tenant Admin"]).await;
    let (status, created) = app
        .post(
            "/v1/credentials",
            &token,
            &json!({ "name": "ci", "roles": ["Deployer"] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["clientSecret"].as_str().unwrap().to_string();
    let client_id = created["clientId"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);

    let (status, listed) = app.get("/v1/credentials", Some(&token)).await;
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(&secret));
    assert!(!listed.to_string().contains("argon2"));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ci"));
    let stored: String =
        sqlx::query_scalar("SELECT secret_hash FROM credentials WHERE client_id = $1")
            .bind(&client_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2"));
    assert!(!stored.contains(&secret));

    let form = [
        ("grant_type", "client_credentials"),
        ("audience", "ferry-api"),
    ];
    let (status, body, _) = app.token_request(Some((&client_id, &secret)), &form).await;
    assert_eq!(status, 200, "{body}");
    let ci_token = body["access_token"].as_str().unwrap();
    let (_, me) = app.get("/v1/whoami", Some(ci_token)).await;
    assert_eq!(me["roles"], json!(["Deployer"]));
    assert_eq!(me["tenant"], admin.tenant_id.to_string());

    // A deployer cannot manage credentials; an admin cannot hand out Organization Admin.
    let (status, _) = app
        .post(
            "/v1/credentials",
            ci_token,
            &json!({ "name": "x", "roles": [] }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            "/v1/credentials",
            &token,
            &json!({ "name": "boss", "roles": ["Organization Admin"] }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post(
            "/v1/credentials",
            &token,
            &json!({ "name": "ci", "roles": [] }),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    let id = created["id"].as_str().unwrap();
    let (status, revoked) = app.delete(&format!("/v1/credentials/{id}"), &token).await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, _, _) = app.token_request(Some((&client_id, &secret)), &form).await;
    assert_ne!(status, 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn secrets_are_sealed_and_never_returned() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (admin, token) = app.tenant_token(&["Tenant Admin"]).await;
    let value = "s3cr3t-value-that-must-not-leak";
    let (status, body) = app
        .put(
            "/v1/secrets/datadog-key",
            &token,
            &json!({ "value": value }),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let (status, listed) = app.get("/v1/secrets", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "datadog-key");
    assert!(listed[0]["created_at"].is_string());
    assert!(!listed.to_string().contains(value));
    let (status, _) = app.get("/v1/secrets/datadog-key", Some(&token)).await;
    assert_eq!(status, 405, "no way to read a value back");

    // At rest: ciphertext that opens only with the master key, for this tenant and name.
    let (ciphertext, nonce): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT ciphertext, nonce FROM secrets WHERE name = 'datadog-key'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(!String::from_utf8_lossy(&ciphertext).contains(value));
    let master = MasterKey::from_base64(&crate::support::master_key()).unwrap();
    let sealed = ferry_svc_api::identity::crypto::Sealed { ciphertext, nonce };
    let opened = master
        .open(&sealed, &secret_context(admin.tenant_id, "datadog-key"))
        .unwrap();
    assert_eq!(opened, value.as_bytes());
    assert!(
        master
            .open(&sealed, &secret_context(admin.tenant_id, "other"))
            .is_err()
    );

    // Metric providers reference secrets by name; an unknown one is refused.
    let provider = json!({ "kind": "datadog", "baseUrl": "https://api.datadoghq.com",
                           "secretRefs": { "apiKey": "datadog-key" } });
    let (status, body) = app.put("/v1/metric-providers/dd", &token, &provider).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "datadog");
    let missing = json!({ "kind": "prometheus", "baseUrl": "http://prom:9090",
                          "secretRefs": { "token": "nope" } });
    let (status, _) = app.put("/v1/metric-providers/prom", &token, &missing).await;
    assert_eq!(status, 400);
    let bad_kind = json!({ "kind": "graphite", "baseUrl": "http://g" });
    let (status, _) = app.put("/v1/metric-providers/g", &token, &bad_kind).await;
    assert_eq!(status, 400);
    let (status, body) = app.get("/v1/metric-providers/dd", Some(&token)).await;
    assert_eq!(status, 200);
    assert!(!body.to_string().contains(value));
    let (status, _) = app.delete("/v1/metric-providers/dd", &token).await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/v1/metric-providers/dd", Some(&token)).await;
    assert_eq!(status, 404);

    let (status, _) = app.delete("/v1/secrets/datadog-key", &token).await;
    assert_eq!(status, 204);
    let (_, listed) = app.get("/v1/secrets", Some(&token)).await;
    assert_eq!(listed, json!([]));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn roles_are_enforced_on_every_kind_of_operation() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (admin, admin_token) = app.tenant_token(&["Tenant Admin"]).await;
    let viewer = app.same_tenant_token(&admin, &["Viewer"]).await;
    let deployer = app.same_tenant_token(&admin, &["Deployer"]).await;
    let agent = app.same_tenant_token(&admin, &["Agent"]).await;

    // A viewer reads but cannot start; an agent gets nothing.
    let (status, body) = app
        .post(
            "/v1/deployments",
            &viewer,
            &canary_request("roles", "reject"),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");
    assert_eq!(app.get("/v1/deployments", Some(&viewer)).await.0, 200);
    assert_eq!(app.get("/v1/tenant", Some(&viewer)).await.0, 200);
    assert_eq!(app.get("/v1/agents", Some(&viewer)).await.0, 200);
    for path in ["/v1/deployments", "/v1/tenant", "/v1/agents", "/v1/secrets"] {
        assert_eq!(app.get(path, Some(&agent)).await.0, 403, "{path}");
    }
    // Deployers deploy but do not administer.
    let (status, _) = app
        .post(
            "/v1/deployments",
            &deployer,
            &canary_request("roles", "reject"),
        )
        .await;
    assert_eq!(status, 201);
    for path in ["/v1/roles", "/v1/credentials", "/v1/secrets"] {
        assert_eq!(app.get(path, Some(&deployer)).await.0, 403, "{path}");
    }
    let (status, _) = app
        .put("/v1/secrets/x", &deployer, &json!({ "value": "v" }))
        .await;
    assert_eq!(status, 403);

    // Tenant admin: the tenant, roles with grants and members.
    let (status, tenant) = app.get("/v1/tenant", Some(&admin_token)).await;
    assert_eq!(status, 200);
    assert_eq!(tenant["id"], admin.tenant_id.to_string());
    assert_eq!(tenant["slug"], admin.tenant);
    let (status, role) = app
        .post(
            "/v1/roles",
            &admin_token,
            &json!({ "name": "Auditor", "grants": ["audit.read"] }),
        )
        .await;
    assert_eq!(status, 201, "{role}");
    let (status, role) = app
        .put(
            "/v1/roles/Auditor/grants",
            &admin_token,
            &json!({ "grants": ["audit.read", "deployments.read"] }),
        )
        .await;
    assert_eq!(status, 200, "{role}");
    assert_eq!(role["grants"], json!(["audit.read", "deployments.read"]));
    let member = json!({ "kind": "credential", "id": admin.credential_id });
    let (status, body, _) = app
        .send(
            Method::POST,
            "/v1/roles/Auditor/members",
            Some(&admin_token),
            Some(&member),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, listed) = app.get("/v1/credentials", Some(&admin_token)).await;
    let me = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == admin.credential_id.to_string())
        .unwrap();
    assert!(me["roles"].as_array().unwrap().contains(&json!("Auditor")));
    let (status, _, _) = app
        .send(
            Method::DELETE,
            "/v1/roles/Auditor/members",
            Some(&admin_token),
            Some(&member),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = app
        .send(
            Method::DELETE,
            "/v1/roles/Auditor/members",
            Some(&admin_token),
            Some(&member),
        )
        .await;
    assert_eq!(status, 404);
    let (status, roles) = app.get("/v1/roles", Some(&admin_token)).await;
    assert_eq!(status, 200);
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "Auditor")
    );
    app.stop().await.unwrap();
}
