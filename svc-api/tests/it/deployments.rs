//! Starting deployments: a valid example is stored with its targets and exactly one
//! `deployment.started` message; an invalid file is a 422 listing every error and writes
//! nothing; a busy application is refused (409) or queued (202); listing pages and filters;
//! detail, configuration and redeploy.

use crate::support::{Options, TestApp, canary_request, count, outbox_count, start_request};
use reqwest::Method;
use std::collections::HashSet;

const STARTED: &str = "deployment.started.v1";

#[tokio::test]
async fn a_valid_deploy_file_is_stored_with_its_targets_and_one_started_message() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Deployer"]).await;
    let tenant = credential.tenant_id.as_uuid();

    let request = start_request("hello-ferry/deploy-canary.yml");
    let (status, body, headers) = app
        .send(
            Method::POST,
            "/v1/deployments",
            Some(&token),
            Some(&request),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(body["application"], "hello-ferry");
    assert_eq!(body["status"], "running");
    assert_eq!(headers["location"], format!("/v1/deployments/{id}"));

    let (application, created_by): (String, String) = sqlx::query_as(
        "SELECT application, created_by FROM deployments WHERE tenant_id = $1 AND id = $2::uuid",
    )
    .bind(tenant)
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(application, "hello-ferry");
    assert_eq!(created_by, credential.credential_id.to_string());
    let targets: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, account, namespace FROM targets WHERE deployment_id = $1::uuid ORDER BY name",
    )
    .bind(&id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        targets,
        [
            ("dev", "dev-cluster", "hello-dev"),
            ("prod-eu", "prod-eu-cluster", "hello-prod"),
            ("prod-us", "prod-us-cluster", "hello-prod"),
            ("staging", "staging-cluster", "hello-staging"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    assert_eq!(outbox_count(&db, tenant, STARTED).await, 1);
    let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM outbox WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert!(envelope.to_string().contains(&id), "{envelope}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'deployment.start'
           AND resource_id = $2",
    )
    .bind(tenant)
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // The detail and the configuration as submitted.
    let (status, detail) = app
        .get(&format!("/v1/deployments/{id}"), Some(&token))
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["deployment"]["id"], id);
    assert_eq!(detail["targets"].as_array().unwrap().len(), 4);
    assert_eq!(detail["pending_approvals"], serde_json::json!([]));
    let (status, config) = app
        .get(&format!("/v1/deployments/{id}/config"), Some(&token))
        .await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["deployFile"], request["deployFile"]["content"]);
    assert_eq!(config["manifests"], request["manifests"]);
    assert_eq!(config["plan"]["application"], "hello-ferry");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_invalid_deploy_file_is_a_422_listing_every_error_and_writes_nothing() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;
    let tables = ["deployments", "targets", "outbox", "audit_log"];
    let mut before = Vec::new();
    for table in tables {
        before.push(count(&db, table).await);
    }

    let mut request = start_request("invalid/unknown-strategy.yml");
    // Two more problems in the same request: an unknown key and a bad application override.
    let content = request["deployFile"]["content"]
        .as_str()
        .unwrap()
        .replace("kind: kubernetes", "kind: kubernetes\ncolour: blue");
    request["deployFile"]["content"] = content.into();
    let (status, body, headers) = app
        .send(
            Method::POST,
            "/v1/deployments",
            Some(&token),
            Some(&request),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "invalid_deploy_file");
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.len() >= 2, "{body}");
    let paths: HashSet<&str> = errors.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(paths.contains("targets.prod.strategy"), "{body}");
    assert!(paths.iter().any(|p| p.contains("colour")), "{body}");
    let strategy = errors
        .iter()
        .find(|e| e["path"] == "targets.prod.strategy")
        .unwrap();
    assert_eq!(strategy["file"], "unknown-strategy.yml");
    assert_eq!(strategy["line"], 10);
    assert!(strategy["column"].as_u64().unwrap() > 0);
    assert_eq!(strategy["suggestion"], "canary");
    assert!(strategy["message"].as_str().unwrap().contains("canery"));

    // Not valid JSON at all: a 400 problem.
    let (status, body, _) = app
        .send(
            Method::POST,
            "/v1/deployments",
            Some(&token),
            Some(&serde_json::json!({ "deployFile": 3 })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_request");

    for (table, before) in tables.iter().zip(before) {
        assert_eq!(count(&db, table).await, before, "{table} changed");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_busy_application_is_refused_with_the_running_id_or_queued() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Deployer"]).await;
    let tenant = credential.tenant_id.as_uuid();

    let (status, first) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("busy-app", "reject"),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let before = count(&db, "deployments").await;
    let (status, body) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("busy-app", "reject"),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "deployment_in_progress");
    assert_eq!(body["running"], first["id"]);
    assert_eq!(count(&db, "deployments").await, before);
    assert_eq!(outbox_count(&db, tenant, STARTED).await, 1);

    // enqueueOne: stored as waiting, no start message yet; a newer one supersedes it.
    let (status, queued) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("busy-app", "enqueueOne"),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "waiting");
    let (status, newer) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("busy-app", "enqueueOne"),
        )
        .await;
    assert_eq!(status, 202, "{newer}");
    assert_eq!(newer["superseded"], serde_json::json!([queued["id"]]));
    assert_eq!(outbox_count(&db, tenant, STARTED).await, 1);

    // Aborting the waiting one ends it at once; aborting again is a conflict.
    let newer_id = newer["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/v1/deployments/{newer_id}/abort"),
            &token,
            &serde_json::json!({ "reason": "not needed" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (_, detail) = app
        .get(&format!("/v1/deployments/{newer_id}"), Some(&token))
        .await;
    assert_eq!(detail["deployment"]["status"], "aborted");
    let (status, body) = app
        .post(
            &format!("/v1/deployments/{newer_id}/abort"),
            &token,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn listing_pages_with_a_cursor_and_filters() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (_, token) = app.tenant_token(&["Deployer", "Viewer"]).await;
    let mut ids = Vec::new();
    for application in ["list-a", "list-b", "list-c", "list-d", "list-e"] {
        let (status, body) = app
            .post(
                "/v1/deployments",
                &token,
                &canary_request(application, "reject"),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    ids.reverse(); // newest first

    let mut seen = Vec::new();
    let mut path = "/v1/deployments?limit=2".to_string();
    loop {
        let (status, page) = app.get(&path, Some(&token)).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|d| d["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/deployments?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let (status, page) = app
        .get("/v1/deployments?application=list-c", Some(&token))
        .await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], ids[2]);
    // Who started it, as people read it, beside the id the API keeps.
    assert_eq!(items[0]["created_by_name"], "credential test-client");
    assert!(
        items[0]["created_by"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );
    let (_, page) = app
        .get("/v1/deployments?status=running&limit=200", Some(&token))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let (_, page) = app.get("/v1/deployments?status=failed", Some(&token)).await;
    assert_eq!(page["items"], serde_json::json!([]));
    let (status, body) = app.get("/v1/deployments?status=nope", Some(&token)).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .get("/v1/deployments?cursor=garbage", Some(&token))
        .await;
    assert_eq!(status, 400, "{body}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn redeploy_starts_a_new_deployment_from_the_stored_configuration() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Deployer"]).await;
    let (status, first) = app
        .post(
            "/v1/deployments",
            &token,
            &canary_request("again", "enqueueOne"),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_str().unwrap();
    let (status, second) = app
        .post(
            &format!("/v1/deployments/{id}/redeploy"),
            &token,
            &serde_json::json!({}),
        )
        .await;
    // The first still runs and the file says enqueueOne: queued.
    assert_eq!(status, 202, "{second}");
    assert_eq!(second["application"], "again");
    let (_, a) = app
        .get(&format!("/v1/deployments/{id}/config"), Some(&token))
        .await;
    let second_id = second["id"].as_str().unwrap();
    let (_, b) = app
        .get(&format!("/v1/deployments/{second_id}/config"), Some(&token))
        .await;
    assert_eq!(a["deployFile"], b["deployFile"]);
    assert_eq!(a["manifests"], b["manifests"]);
    assert_eq!(a["plan"], b["plan"]);
    assert_eq!(
        outbox_count(&db, credential.tenant_id.as_uuid(), STARTED).await,
        1
    );
    app.stop().await.unwrap();
}
