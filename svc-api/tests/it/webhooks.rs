//! Webhooks in the API: a callback bound to its tenant (another tenant's token cannot use it,
//! a replay is refused), the deployment's webhook list showing each call and its callback's
//! Markdown message; the tenant's network settings; notification endpoints managed by admins,
//! validated, and invisible to other tenants.

use crate::support::{Options, TestApp, canary_request, count, outbox_count};
use ferry_store::callbacks::{self, NewCallback};
use ferry_store::webhooks::{self, DeliveryKind, NewDelivery};
use ferry_store::{DeploymentId, Store};
use ferry_svc_api::v1::actions::callback_token_hash;
use serde_json::json;

#[tokio::test]
async fn callbacks_answer_only_their_tenant_once_and_their_message_is_shown() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (owner, token) = app.tenant_token(&["Deployer"]).await;
    let (_, stranger) = app.tenant_token(&["Tenant Admin"]).await;
    let (_, started) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("hooked", "reject"),
        )
        .await;
    let id: DeploymentId = started["id"].as_str().unwrap().parse().unwrap();
    let store = Store::from_pool(db.pool.clone());
    let mut tx = store.begin().await.unwrap();
    let callback = callbacks::create(
        &mut tx,
        owner.tenant_id,
        id,
        &NewCallback {
            target: Some("dev".into()),
            webhook_name: "security-scan".into(),
            token_hash: callback_token_hash("tok-scan"),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        },
    )
    .await
    .unwrap();
    // svc-webhook delivered the call (2xx) and the step waits for the callback.
    webhooks::create_leased(
        &mut tx,
        owner.tenant_id,
        &NewDelivery {
            id: callback.id,
            kind: DeliveryKind::Webhook,
            deployment_id: id,
            target: Some("dev".into()),
            step_key: "before:0".into(),
            name: "security-scan".into(),
            endpoint_id: None,
            request: json!({}),
            max_attempts: 3,
            deadline: None,
        },
        "svc-webhook-test",
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap()
    .unwrap();
    webhooks::finish(
        &mut tx,
        owner.tenant_id,
        callback.id,
        "svc-webhook-test",
        webhooks::DeliveryStatus::Delivered,
        &webhooks::Attempt {
            status: Some(202),
            error: None,
        },
        "HTTP 202 from scanner.internal",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let path = format!("/v1/deployments/{id}/webhooks/tok-scan/callback");
    let body = json!({ "success": true, "mdMessage": "**0** critical findings\n\n- 2 low" });
    // Another tenant's token does not find it, and uses nothing up.
    let (status, _) = app.post(&path, &stranger, &body).await;
    assert_eq!(status, 404);
    let (status, listed) = app
        .get(&format!("/v1/deployments/{id}/webhooks"), Some(&stranger))
        .await;
    assert_eq!(status, 404, "{listed}");
    // A message beyond its limit is refused before anything changes.
    let (status, refused) = app
        .post(
            &path,
            &token,
            &json!({ "success": true, "mdMessage": "x".repeat(100_000) }),
        )
        .await;
    assert_eq!(status, 422, "{refused}");

    let (status, answer) = app.post(&path, &token, &body).await;
    assert_eq!(status, 202, "{answer}");
    let (status, again) = app.post(&path, &token, &body).await;
    assert_eq!(status, 409, "a callback URI works once: {again}");
    assert_eq!(
        outbox_count(&db, owner.tenant_id.as_uuid(), "webhook.completed.v1").await,
        1
    );

    let (status, listed) = app
        .get(&format!("/v1/deployments/{id}/webhooks"), Some(&token))
        .await;
    assert_eq!(status, 200, "{listed}");
    let run = &listed["items"][0];
    assert_eq!(run["id"], callback.id.to_string());
    assert_eq!(run["name"], "security-scan");
    assert_eq!(run["step"], "before:0");
    assert_eq!(run["status"], "delivered");
    assert_eq!(run["last_status"], 202);
    assert_eq!(run["callback"]["success"], true);
    assert_eq!(
        run["callback"]["md_message"],
        "**0** critical findings\n\n- 2 low"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn network_settings_and_notification_endpoints_are_validated_and_per_tenant() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (owner, admin) = app.tenant_token(&["Tenant Admin"]).await;
    let deployer = app.same_tenant_token(&owner, &["Deployer"]).await;
    let (_, stranger) = app.tenant_token(&["Tenant Admin"]).await;

    let (status, body) = app
        .put(
            "/v1/network-settings",
            &admin,
            &json!({ "allowed_networks": ["10.20.0.0/16", "10.0.0.1/8"] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains(
            "allowed_networks[1]: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
        ),
        "{body}"
    );
    let (status, body) = app
        .put(
            "/v1/network-settings",
            &deployer,
            &json!({ "allowed_networks": ["10.20.0.0/16"] }),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .put(
            "/v1/network-settings",
            &admin,
            &json!({ "allowed_networks": ["fd00::/8", "10.20.0.0/16", "127.0.0.1"] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["allowed_networks"],
        json!(["10.20.0.0/16", "127.0.0.1/32", "fd00::/8"])
    );
    let (_, theirs) = app.get("/v1/network-settings", Some(&stranger)).await;
    assert_eq!(theirs["allowed_networks"], json!([]));

    let endpoint = |name: &str, kind: &str, secret: Option<&str>| {
        json!({ "name": name, "kind": kind, "url": "https://hooks.example/services/x",
                "events": ["started", "failed", "rolled_back"], "signing_secret": secret })
    };
    let (status, body) = app
        .post(
            "/v1/notification-endpoints",
            &admin,
            &endpoint("audit", "generic", Some("hook-key")),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no secret \"hook-key\""),
        "{body}"
    );
    let (status, _) = app
        .put("/v1/secrets/hook-key", &admin, &json!({ "value": "k3y" }))
        .await;
    assert_eq!(status, 204);
    let (status, created) = app
        .post(
            "/v1/notification-endpoints",
            &admin,
            &endpoint("audit", "generic", Some("hook-key")),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["events"],
        json!(["started", "failed", "rolled_back"])
    );
    let (status, _) = app
        .post(
            "/v1/notification-endpoints",
            &admin,
            &endpoint("audit", "slack", None),
        )
        .await;
    assert_eq!(status, 409, "names are unique in a tenant");
    let (status, _) = app
        .post(
            "/v1/notification-endpoints",
            &deployer,
            &endpoint("chat", "slack", None),
        )
        .await;
    assert_eq!(status, 403);
    let (status, bad) = app
        .post(
            "/v1/notification-endpoints",
            &admin,
            &json!({ "name": "chat", "kind": "slack",
            "url": "https://hooks.example/x", "events": ["deployed"] }),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(count(&db, "notification_endpoints").await, 1);

    let (_, listed) = app.get("/v1/notification-endpoints", Some(&deployer)).await;
    assert_eq!(listed["items"][0]["name"], "audit");
    assert_eq!(listed["items"][0]["signing_secret"], "hook-key");
    assert!(!listed.to_string().contains("k3y"));
    let (_, theirs) = app.get("/v1/notification-endpoints", Some(&stranger)).await;
    assert_eq!(theirs["items"], json!([]));
    let (status, _) = app
        .delete("/v1/notification-endpoints/audit", &stranger)
        .await;
    assert_eq!(status, 404, "another tenant's endpoint is not found");
    let (status, _) = app.delete("/v1/notification-endpoints/audit", &admin).await;
    assert_eq!(status, 204);
    assert_eq!(count(&db, "notification_endpoints").await, 0);
    app.stop().await.unwrap();
}
