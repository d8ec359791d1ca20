//! Request limits and the API description: a body over the limit is a 413 problem, a tenant
//! that spends its bucket gets 429 with `Retry-After` (other tenants unaffected), and
//! `/openapi.json` is an OpenAPI 3.1 document listing the paths, rendered by `/docs`.

use crate::support::{Options, TestApp, canary_request, count};
use reqwest::Method;

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
