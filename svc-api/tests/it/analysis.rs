//! Canary analysis through the API: a retrospective analysis of queries over a past range
//! against a local server answering as Prometheus does (checking the bearer token that the
//! provider's secret holds), every run's value and the verdict; bad requests refused with a
//! reason; a deployment's analyses with each run's explanation.

use crate::support::{Options, TestApp, start_request};
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::routing::get;
use chrono::{DateTime, Utc};
use ferry_store::analysis::{self, AnalysisStatus, NewAnalysis, NewRun};
use ferry_store::{DeploymentId, Store, TenantId};
use ferry_testkit::TestDb;
use serde_json::json;
use std::collections::HashMap;

/// The range's start: a whole hour in the past, so run windows are easy to name.
fn base() -> i64 {
    (Utc::now().timestamp() / 3600 - 2) * 3600
}

/// Answers `/api/v1/query` with 0.1 × the number of 100 s intervals since `base`, after
/// checking the bearer token; remembers the queries it was asked.
async fn fake_prometheus(base: i64) -> String {
    let app = axum::Router::new().route(
        "/api/v1/query",
        get(move |headers: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                != Some("Bearer prom-token")
            {
                return (axum::http::StatusCode::UNAUTHORIZED, "unauthorized".to_string());
            }
            let time: f64 = q["time"].parse().unwrap();
            let value = ((time as i64 - base) / 100) as f64 / 10.0;
            let query = q["query"].replace('"', "'");
            (
                axum::http::StatusCode::OK,
                format!(
                    r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"q":"{query}"}},"value":[{time},"{value}"]}}]}}}}"#
                ),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn iso(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).unwrap().to_rfc3339()
}

#[tokio::test]
async fn a_retrospective_analysis_answers_every_run_and_the_verdict() {
    let db = TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (_, token) = app.tenant_token(&["Tenant Admin", "Deployer"]).await;
    let t0 = base();
    let prometheus = fake_prometheus(t0).await;
    let (status, _) = app
        .put(
            "/v1/secrets/prom-token",
            &token,
            &json!({ "value": "prom-token" }),
        )
        .await;
    assert_eq!(status, 204);
    let provider = json!({ "kind": "prometheus", "baseUrl": prometheus,
                           "secretRefs": { "token": "prom-token" } });
    let (status, body) = app
        .put("/v1/metric-providers/prom", &token, &provider)
        .await;
    assert_eq!(status, 200, "{body}");

    let request = json!({
        "queries": [{
            "name": "error-rate",
            "queryTemplate": "sum(rate(errors{rs=\"{{ferry.replicaSetName}}\",slo=\"{{context.slo}}\"}[{{ferry.promQlStepInterval}}]))",
            "upperLimit": 0.25,
            "lowerLimit": 0,
        }],
        "metricProviderName": "prom",
        "from": iso(t0),
        "to": iso(t0 + 300),
        "intervalSeconds": 100,
        "lookbackMethod": "sliding",
        "context": { "slo": "99.5" },
        "variables": { "replicaSetName": "web-7c9f" },
    });
    let (status, body) = app
        .post("/v1/analysis/retrospective", &token, &request)
        .await;
    assert_eq!(status, 200, "{body}");
    let runs = body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let values: Vec<f64> = runs
        .iter()
        .map(|r| {
            r["results"]["summary"]["limits"][0]["value"]["value"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(values, [0.1, 0.2, 0.3]);
    assert_eq!(runs[0]["windowStart"], iso(t0).replace("+00:00", "Z"));
    assert_eq!(runs[2]["passed"], false);
    assert_eq!(
        runs[2]["explanation"],
        "error-rate = 0.3, above upperLimit 0.25"
    );
    assert_eq!(body["verdict"]["status"], "passed", "{body}");
    assert_eq!(
        body["verdict"]["reason"],
        "error-rate mean 0.2 over 3 runs, within [0, 0.25]"
    );
    assert!(
        !body.to_string().contains("Bearer"),
        "no credential in the answer"
    );

    // Bad requests say why and run nothing.
    let mut bad = request.clone();
    bad["to"] = json!(iso(t0 - 10));
    let (status, body) = app.post("/v1/analysis/retrospective", &token, &bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("from must be before to"),
        "{body}"
    );
    let mut bad = request.clone();
    bad["intervalSeconds"] = json!(1);
    let (status, body) = app.post("/v1/analysis/retrospective", &token, &bad).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("at most 60"),
        "{body}"
    );
    let mut bad = request.clone();
    bad["metricProviderName"] = json!("nowhere");
    let (status, _) = app.post("/v1/analysis/retrospective", &token, &bad).await;
    assert_eq!(status, 404);
    // A provider at the cloud metadata address is never asked.
    let metadata = json!({ "kind": "prometheus", "baseUrl": "http://169.254.169.254" });
    let (status, _) = app
        .put("/v1/metric-providers/meta", &token, &metadata)
        .await;
    assert_eq!(status, 200);
    let mut bad = request.clone();
    bad["metricProviderName"] = json!("meta");
    let (status, body) = app.post("/v1/analysis/retrospective", &token, &bad).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["detail"],
        "metric provider \"meta\": 169.254.169.254 resolves to 169.254.169.254, a cloud metadata address"
    );
    let (_, reader) = app.tenant_token(&["Viewer"]).await;
    let (status, _) = app
        .post("/v1/analysis/retrospective", &reader, &request)
        .await;
    assert!(
        status == 403 || status == 404,
        "a reader cannot run queries: {status}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_deployments_analyses_show_each_run_and_the_reason() {
    let db = TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Deployer"]).await;
    let (status, started) = app
        .post(
            "/v1/deployments",
            &token,
            &start_request("hello-ferry/deploy-canary.yml"),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let deployment: DeploymentId = serde_json::from_value(started["id"].clone()).unwrap();
    let tenant: TenantId = credential.tenant_id;
    let store = Store::from_pool(db.pool.clone());
    let id = uuid::Uuid::now_v7();
    let now = Utc::now();
    let mut tx = store.begin().await.unwrap();
    analysis::create(
        &mut tx,
        tenant,
        &NewAnalysis {
            id,
            deployment_id: deployment,
            target: "prod".into(),
            step_key: "step:1".into(),
            step_index: 1,
            request: json!({}),
            spec: json!({}),
            total_runs: 1,
            started_at: now,
            first_run_at: now,
        },
    )
    .await
    .unwrap();
    let mut claimed =
        analysis::claim_due_all_tenants(&mut tx, "test", std::time::Duration::from_secs(60), 10)
            .await
            .unwrap();
    assert_eq!(claimed.len(), 1);
    let a = claimed.remove(0);
    analysis::record_run(
        &mut tx,
        tenant,
        a.id,
        "test",
        &NewRun {
            run_index: 0,
            window_start: now,
            window_end: now,
            passed: false,
            results: json!({ "summary": { "passed": false } }),
            explanation: "error-rate = 3.2, above upperLimit 1".into(),
        },
        now,
    )
    .await
    .unwrap();
    analysis::finish(
        &mut tx,
        tenant,
        id,
        AnalysisStatus::Failed,
        &json!({}),
        "run 1: error-rate = 3.2, above upperLimit 1",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let (status, body) = app
        .get(
            &format!("/v1/deployments/{deployment}/analyses"),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["status"], "failed");
    assert_eq!(
        body[0]["reason"],
        "run 1: error-rate = 3.2, above upperLimit 1"
    );
    assert_eq!(
        body[0]["runs"][0]["explanation"],
        "error-rate = 3.2, above upperLimit 1"
    );
    // Another tenant sees nothing of it.
    let (_, other) = app.tenant_token(&["Deployer"]).await;
    let (status, _) = app
        .get(
            &format!("/v1/deployments/{deployment}/analyses"),
            Some(&other),
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await.unwrap();
}
