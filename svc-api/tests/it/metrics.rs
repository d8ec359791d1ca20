//! svc-api's `/metrics`, scraped over HTTP after requests and with deployments in flight: HTTP
//! requests by route template and status with their latency, the deployment gauges read from
//! Postgres at scrape time, and the outbox relay's backlog.

use crate::support::{Options, TestApp};
use ferry_testkit::TestDb;
use uuid::Uuid;

/// The value of a series (name and labels exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

async fn scrape(app: &TestApp) -> String {
    let response = app
        .http
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// A running deployment of `tenant` with targets `(name, status, phase)`.
async fn deployment(
    db: &TestDb,
    tenant: Uuid,
    application: &str,
    targets: &[(&str, &str, &str)],
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO deployments (tenant_id, id, application, status, created_by, deploy_file)
         VALUES ($1, $2, $3, 'running', 'test', '')",
    )
    .bind(tenant)
    .bind(id)
    .bind(application)
    .execute(&db.pool)
    .await
    .unwrap();
    for (name, status, phase) in targets {
        sqlx::query(
            "INSERT INTO targets (tenant_id, deployment_id, name, account, namespace, status, phase)
             VALUES ($1, $2, $3, 'agent', 'default', $4, $5)",
        )
        .bind(tenant)
        .bind(id)
        .bind(name)
        .bind(status)
        .bind(phase)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    id
}

#[tokio::test]
async fn metrics_show_requests_by_route_and_deployments_in_flight() {
    let db = TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Tenant Admin"]).await;
    let tenant = credential.tenant_id.as_uuid();

    for _ in 0..3 {
        let (status, body) = app.get("/v1/whoami", Some(&token)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = app.get("/v1/whoami", None).await;
    assert_eq!(status, 401);
    let missing = format!("/v1/deployments/{}", Uuid::new_v4());
    let (status, _) = app.get(&missing, Some(&token)).await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/no/such/route/at/all", None).await;
    assert_eq!(status, 404);

    let first = deployment(
        &db,
        tenant,
        "web",
        &[("dev", "succeeded", "done"), ("prod", "paused", "steps")],
    )
    .await;
    deployment(&db, tenant, "api", &[("prod", "running", "steps")]).await;
    sqlx::query(
        "INSERT INTO approvals (tenant_id, id, deployment_id, target_name, step_key, created_at)
         VALUES ($1, $2, $3, 'prod', 'approve-prod', now() - interval '90 seconds')",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(first)
    .execute(&db.pool)
    .await
    .unwrap();

    let text = scrape(&app).await;
    let ok = r#"{method="GET",route="/v1/whoami",status="200"}"#;
    assert_eq!(
        value(&text, &format!("ferry_http_requests_total{ok}")),
        Some(3.0),
        "{text}"
    );
    let refused = r#"{method="GET",route="/v1/whoami",status="401"}"#;
    assert_eq!(
        value(&text, &format!("ferry_http_requests_total{refused}")),
        Some(1.0)
    );
    let detail = r#"{method="GET",route="/v1/deployments/{id}",status="404"}"#;
    assert_eq!(
        value(&text, &format!("ferry_http_requests_total{detail}")),
        Some(1.0),
        "{text}"
    );
    let unmatched = r#"{method="GET",route="unmatched",status="404"}"#;
    assert_eq!(
        value(&text, &format!("ferry_http_requests_total{unmatched}")),
        Some(1.0)
    );
    assert!(
        !text.contains("/no/such/route"),
        "raw paths must not become labels"
    );
    let timed = r#"ferry_http_request_duration_seconds_count{method="GET",route="/v1/whoami"}"#;
    assert_eq!(value(&text, timed), Some(4.0));
    let seconds = value(
        &text,
        r#"ferry_http_request_duration_seconds_sum{method="GET",route="/v1/whoami"}"#,
    )
    .unwrap();
    assert!((0.0..10.0).contains(&seconds), "{seconds}");

    assert_eq!(
        value(&text, r#"ferry_deployments_active{status="running"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"ferry_deployments_active{status="paused"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            r#"ferry_deployment_targets_active{phase="steps",status="paused"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"ferry_deployment_targets_active{phase="done",status="succeeded"}"#
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "ferry_approvals_pending"), Some(1.0));
    let age = value(&text, "ferry_approvals_oldest_pending_age_seconds").unwrap();
    assert!((89.0..600.0).contains(&age), "oldest approval age {age}");
    assert_eq!(
        value(&text, "ferry_api_gauge_refresh_failures_total"),
        Some(0.0)
    );
    // The relay reads the outbox backlog: nothing waits in this test's outbox for long.
    assert!(
        value(&text, "ferry_outbox_pending_rows").is_some(),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"));
    app.stop().await.unwrap();
}
