//! Request limits and the API description: a body over the limit is a 413 problem, a tenant
//! that spends its bucket gets 429 with `Retry-After` (other tenants unaffected), free text
//! and deploy-file values over their limits are 422 and write nothing, and `/openapi.json` is
//! an OpenAPI 3.1 document listing the paths, rendered by `/docs`.

use crate::support::{Options, TestApp, canary_request, count, outbox_count};
use ferry_store::callbacks::{self, NewCallback};
use ferry_svc_api::v1::actions::callback_token_hash;
use ferry_svc_api::v1::limits::{MAX_MESSAGE_BYTES, MAX_REASON_BYTES};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem_and_writes_nothing() {
    let db = ferry_testkit::TestDb::new().await;
    let options = Options {
        max_body_bytes: 64 * 1024,
        ..Options::default()
    };
    let app = TestApp::start(&db, options).await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;
    let mut request = canary_request("big", "reject");
    request["manifests"][0]["content"] = "x".repeat(100 * 1024).into();
    let (status, body, headers) = app
        .send(
            Method::POST,
            "/v1/deployments",
            Some(&token),
            Some(&request),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "payload_too_large");
    assert_eq!(count(&db, "deployments").await, 0);
    // Under the limit, the same request goes through.
    let (status, _) = app
        .post("/v1/deployments", &token, &canary_request("big", "reject"))
        .await;
    assert_eq!(status, 201);
    app.stop().await.unwrap();
}

/// Reasons, comments and callback messages over their limits are refused with 422 before
/// anything is written: no outbox message, no decision, the callback still unused.
#[tokio::test]
async fn free_text_over_its_limit_is_a_422_and_writes_nothing() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Deployer"]).await;
    let tenant = credential.tenant_id;
    let (status, body) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("texts", "reject"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let long = "x".repeat(MAX_REASON_BYTES + 1);
    for (action, body, kind) in [
        (
            "abort",
            json!({ "reason": long }),
            "deployment.abort_requested.v1",
        ),
        (
            "rollback",
            json!({ "target": "dev", "reason": long }),
            "deployment.rollback_requested.v1",
        ),
        (
            "skip-pause",
            json!({ "target": "dev", "reason": long }),
            "pause.skip_requested.v1",
        ),
        (
            "roll-forward",
            json!({ "target": "dev", "reason": long }),
            "rollout.decided.v1",
        ),
        (
            "approve",
            json!({ "target": "dev", "comment": long }),
            "approval.decided.v1",
        ),
        (
            "reject",
            json!({ "target": "dev", "comment": "a bell \u{7}" }),
            "approval.decided.v1",
        ),
    ] {
        let (status, problem) = app
            .post(&format!("/v1/deployments/{id}/{action}"), &token, &body)
            .await;
        assert_eq!(status, 422, "{action}: {problem}");
        assert_eq!(problem["code"], "invalid_value", "{action}");
        assert_eq!(
            outbox_count(&db, tenant.as_uuid(), kind).await,
            0,
            "{action}"
        );
    }
    let (_, problem) = app
        .post(
            &format!("/v1/deployments/{id}/abort"),
            &token,
            &json!({ "reason": long }),
        )
        .await;
    assert_eq!(
        problem["detail"],
        format!(
            "reason is {} bytes long: at most 4 KiB",
            MAX_REASON_BYTES + 1
        )
    );

    let mut conn = db.pool.acquire().await.unwrap();
    let callback = callbacks::create(
        &mut conn,
        tenant,
        id.parse().unwrap(),
        &NewCallback {
            target: Some("dev".into()),
            webhook_name: "smoke".into(),
            token_hash: callback_token_hash("tok-long"),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        },
    )
    .await
    .unwrap();
    drop(conn);
    let path = format!("/v1/deployments/{id}/webhooks/tok-long/callback");
    let huge = json!({ "success": true, "mdMessage": "m".repeat(MAX_MESSAGE_BYTES + 1) });
    let (status, problem) = app.post(&path, &token, &huge).await;
    assert_eq!(status, 422, "{problem}");
    let store = ferry_store::Store::from_pool(db.pool.clone());
    let stored = callbacks::get(&store, tenant, callback.id).await.unwrap();
    assert!(stored.used_at.is_none(), "a refused callback stays usable");
    // The same callback with a message at the limit goes through.
    let fine = json!({ "success": true, "mdMessage": "m".repeat(MAX_MESSAGE_BYTES) });
    let (status, answer) = app.post(&path, &token, &fine).await;
    assert_eq!(status, 202, "{answer}");
    app.stop().await.unwrap();
}

/// Deploy-file limits reach the API as 422 `invalid_deploy_file` with their position: a timeout
/// of u32::MAX minutes, an oversized context from the caller.
#[tokio::test]
async fn deploy_file_limits_are_422_with_their_position() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;
    let mut request = canary_request("huge-pause", "reject");
    let content = request["deployFile"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let huge = with_huge_first_duration(&content);
    request["deployFile"]["content"] = huge.into();
    let (status, problem) = app.post("/v1/deployments", &token, &request).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "invalid_deploy_file");
    let errors = problem["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("is out of range: must be between 0 and 31536000")),
        "{problem}"
    );

    let mut request = canary_request("huge-context", "reject");
    request["overrides"]["context"] = json!({ "big": "v".repeat(16 * 1024 + 1) });
    let (status, problem) = app.post("/v1/deployments", &token, &request).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("the caller's context (--add-context): the value of \"big\""),
        "{problem}"
    );
    assert_eq!(count(&db, "deployments").await, 0);
    app.stop().await.unwrap();
}

/// The canary example with its first duration (the timeout) made u32::MAX minutes.
fn with_huge_first_duration(content: &str) -> String {
    let at = content
        .find("duration: ")
        .expect("a duration in the example");
    let end = at + content[at..].find('\n').unwrap();
    format!("{}duration: 4294967295{}", &content[..at], &content[end..])
}

#[tokio::test]
async fn a_tenant_over_its_rate_gets_429_with_retry_after() {
    let db = ferry_testkit::TestDb::new().await;
    let options = Options {
        rate_limit_burst: 5,
        ..Options::default()
    };
    let app = TestApp::start(&db, options).await;
    let (_, token) = app.tenant_token(&["Viewer"]).await;
    let (_, other) = app.tenant_token(&["Viewer"]).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let (status, body, headers) = app
            .send(Method::GET, "/v1/whoami", Some(&token), None)
            .await;
        if status == 429 {
            assert_eq!(body["code"], "rate_limited");
            retry_after = headers.get("retry-after").cloned();
        }
        statuses.push(status);
    }
    // At 1 request/s refill, a burst of 5 in well under a second allows 5 or 6 (one may refill).
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..=6).contains(&ok), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let retry_after: u64 = retry_after
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));
    // Another tenant has its own bucket.
    assert_eq!(app.get("/v1/whoami", Some(&other)).await.0, 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_openapi_document_lists_the_paths_and_the_docs_page_needs_nothing_else() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200, "{doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/deployments",
        "/v1/deployments/{id}",
        "/v1/deployments/{id}/config",
        "/v1/deployments/{id}/events",
        "/v1/deployments/{id}/approve",
        "/v1/deployments/{id}/webhooks/{token}/callback",
        "/v1/agents",
        "/v1/tenant",
        "/v1/roles",
        "/v1/roles/{name}/members",
        "/v1/credentials/{id}",
        "/v1/secrets/{name}",
        "/v1/metric-providers/{name}",
        "/v1/whoami",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(paths["/v1/deployments"]["post"]["requestBody"].is_object());
    assert!(doc["components"]["schemas"]["StartRequest"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let (status, page) = app.get("/docs", None).await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap();
    assert!(page.contains("/openapi.json"));
    assert!(
        !page.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    app.stop().await.unwrap();
}
