//! Actions on a deployment: approvals need one of the approval's `requiresRoles` (or a tenant
//! admin), are decided once and reach the scheduler through the outbox; rollback, skip-pause
//! and roll-forward check the target; webhook callbacks are single-use and bound to their
//! deployment.

use crate::support::{Options, TestApp, canary_request, outbox_count};
use ferry_store::approvals::{self, NewApproval};
use ferry_store::callbacks::{self, NewCallback};
use ferry_store::{DeploymentId, TenantId};
use ferry_svc_api::v1::actions::callback_token_hash;
use serde_json::json;

async fn approval(
    db: &ferry_testkit::TestDb,
    tenant: TenantId,
    id: DeploymentId,
    target: &str,
    roles: &[&str],
) {
    let mut conn = db.pool.acquire().await.unwrap();
    approvals::create(
        &mut conn,
        tenant,
        id,
        &NewApproval {
            target: target.into(),
            step_key: "step:3".into(),
            requires_roles: roles.iter().map(std::string::ToString::to_string).collect(),
            expires_at: None,
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn approvals_need_a_required_role_and_are_decided_once() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (admin, admin_token) = app.tenant_token(&["Tenant Admin"]).await;
    let tenant = admin.tenant_id;
    let deployer = app.same_tenant_token(&admin, &["Deployer"]).await;
    let viewer = app.same_tenant_token(&admin, &["Viewer"]).await;
    let (status, body) = app
        .post(
            "/v1/deployments",
            &deployer,
            &canary_request("approve-me", "reject"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let deployment: DeploymentId = id.parse().unwrap();
    approval(&db, tenant, deployment, "prod-us", &["Release Manager"]).await;
    approval(&db, tenant, deployment, "prod-eu", &[]).await;

    // A release manager: a custom role and a credential holding it, made through the API.
    let (status, role) = app
        .post(
            "/v1/roles",
            &admin_token,
            &json!({ "name": "Release Manager" }),
        )
        .await;
    assert_eq!(status, 201, "{role}");
    let (status, created) = app
        .post(
            "/v1/credentials",
            &admin_token,
            &json!({ "name": "release-bot", "roles": ["Release Manager", "Viewer"] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, token_body, _) = app
        .token_request(
            Some((
                created["clientId"].as_str().unwrap(),
                created["clientSecret"].as_str().unwrap(),
            )),
            &[
                ("grant_type", "client_credentials"),
                ("audience", "ferry-api"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{token_body}");
    let manager = token_body["access_token"].as_str().unwrap().to_string();

    let approve = format!("/v1/deployments/{id}/approve");
    let (_, detail) = app
        .get(&format!("/v1/deployments/{id}"), Some(&viewer))
        .await;
    assert_eq!(detail["pending_approvals"].as_array().unwrap().len(), 2);

    // A deployer without the required role is refused, and nothing is written.
    let (status, body) = app
        .post(&approve, &deployer, &json!({ "target": "prod-us" }))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("Release Manager"));
    assert_eq!(
        outbox_count(&db, tenant.as_uuid(), "approval.decided.v1").await,
        0
    );

    let (status, body) = app
        .post(
            &approve,
            &manager,
            &json!({ "target": "prod-us", "comment": "ship it" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "approve");
    assert_eq!(body["decided_by"], created["id"]);
    assert_eq!(
        outbox_count(&db, tenant.as_uuid(), "approval.decided.v1").await,
        1
    );
    // The scheduler is told who decided as people read it (its history shows it), not an id.
    let payload: Vec<u8> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE tenant_id = $1 AND headers->>'x-ferry-kind' = $2",
    )
    .bind(tenant.as_uuid())
    .bind("approval.decided.v1")
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let payload = String::from_utf8(payload).unwrap();
    assert!(payload.contains("\"credential release-bot\""), "{payload}");
    assert!(
        !payload.contains(created["id"].as_str().unwrap()),
        "{payload}"
    );

    // Deciding again, either way, is a conflict; the first decision stands.
    for path in ["approve", "reject"] {
        let (status, body) = app
            .post(
                &format!("/v1/deployments/{id}/{path}"),
                &admin_token,
                &json!({ "target": "prod-us" }),
            )
            .await;
        assert_eq!(status, 409, "{path}: {body}");
    }
    assert_eq!(
        outbox_count(&db, tenant.as_uuid(), "approval.decided.v1").await,
        1
    );

    // No required roles: deployment rights are enough, a viewer is refused.
    let (status, _) = app
        .post(
            &format!("/v1/deployments/{id}/reject"),
            &viewer,
            &json!({ "target": "prod-eu" }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post(
            &format!("/v1/deployments/{id}/reject"),
            &deployer,
            &json!({ "target": "prod-eu" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "reject");

    // An unknown target is a 404.
    let (status, _) = app
        .post(&approve, &admin_token, &json!({ "target": "nowhere" }))
        .await;
    assert_eq!(status, 404);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn rollback_skip_pause_and_roll_forward_check_the_target_and_enqueue_their_message() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Deployer"]).await;
    let tenant = credential.tenant_id.as_uuid();
    let (_, body) = app
        .post("/v1/deployments", &token, &canary_request("acts", "reject"))
        .await;
    let id = body["id"].as_str().unwrap().to_string();

    for (action, body, kind) in [
        (
            "rollback",
            json!({ "target": "dev" }),
            "deployment.rollback_requested.v1",
        ),
        (
            "skip-pause",
            json!({ "target": "dev" }),
            "pause.skip_requested.v1",
        ),
        (
            "roll-forward",
            json!({ "target": "staging" }),
            "rollout.decided.v1",
        ),
    ] {
        let path = format!("/v1/deployments/{id}/{action}");
        let (status, missing) = app
            .post(&path, &token, &json!({ "target": "nowhere" }))
            .await;
        assert_eq!(status, 404, "{action}: {missing}");
        assert_eq!(outbox_count(&db, tenant, kind).await, 0, "{action}");
        let (status, answer) = app.post(&path, &token, &body).await;
        assert_eq!(status, 202, "{action}: {answer}");
        assert_eq!(answer["action"], action);
        assert_eq!(outbox_count(&db, tenant, kind).await, 1, "{action}");
    }
    // Rollback of the whole deployment takes no body.
    let (status, _, _) = app
        .send(
            reqwest::Method::POST,
            &format!("/v1/deployments/{id}/rollback"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = app
        .post(&format!("/v1/deployments/{id}/abort"), &token, &json!({}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        outbox_count(&db, tenant, "deployment.abort_requested.v1").await,
        1
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn webhook_callbacks_are_single_use_and_bound_to_their_deployment() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Deployer"]).await;
    let tenant = credential.tenant_id;
    let (_, first) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("hook-a", "reject"),
        )
        .await;
    let (_, second) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("hook-b", "reject"),
        )
        .await;
    let id = first["id"].as_str().unwrap().to_string();
    let other = second["id"].as_str().unwrap().to_string();
    let mut conn = db.pool.acquire().await.unwrap();
    let callback = callbacks::create(
        &mut conn,
        tenant,
        id.parse().unwrap(),
        &NewCallback {
            target: Some("dev".into()),
            webhook_name: "smoke".into(),
            token_hash: callback_token_hash("tok-123"),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        },
    )
    .await
    .unwrap();
    drop(conn);
    let body = json!({ "success": false, "mdMessage": "smoke test **failed**" });

    // Another deployment's path does not use it; an unknown token is a 404.
    let (status, _) = app
        .post(
            &format!("/v1/deployments/{other}/webhooks/tok-123/callback"),
            &token,
            &body,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(
            &format!("/v1/deployments/{id}/webhooks/nope/callback"),
            &token,
            &body,
        )
        .await;
    assert_eq!(status, 404);

    let path = format!("/v1/deployments/{id}/webhooks/tok-123/callback");
    let (status, answer) = app.post(&path, &token, &body).await;
    assert_eq!(status, 202, "{answer}");
    let stored = callbacks::get(
        &ferry_store::Store::from_pool(db.pool.clone()),
        tenant,
        callback.id,
    )
    .await
    .unwrap();
    assert_eq!(stored.succeeded, Some(false));
    assert!(stored.used_at.is_some());
    assert_eq!(
        outbox_count(&db, tenant.as_uuid(), "webhook.completed.v1").await,
        1
    );
    let (status, again) = app.post(&path, &token, &body).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(
        outbox_count(&db, tenant.as_uuid(), "webhook.completed.v1").await,
        1
    );
    app.stop().await.unwrap();
}
