//! The process's life: ready once started, and a clean stop when its token fires.

use crate::support::{Options, TestApp};

#[tokio::test]
async fn starts_reports_ready_and_stops_cleanly_on_cancellation() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let ready = app
        .http
        .get(format!("{}/readyz", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body = ready.text().await.unwrap();
    assert!(
        body.contains("postgres") && body.contains("rabbitmq"),
        "{body}"
    );

    let credential = app.credential(&["Viewer"]).await;
    app.token(&credential, "ferry-api").await;
    let metrics = app
        .http
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ferry_api_tokens_issued_total{audience=\"ferry-api\"} 1"),
        "{metrics}"
    );

    let base = app.base.clone();
    let http = app.http.clone();
    app.stop().await.expect("a clean stop");
    assert!(
        http.get(format!("{base}/.well-known/jwks.json"))
            .send()
            .await
            .is_err(),
        "the public port is closed after the stop"
    );
}

#[tokio::test]
async fn refuses_to_start_without_a_master_key_outside_dev_mode() {
    let db = ferry_testkit::TestDb::new().await;
    let mut settings = crate::support::settings(
        &db,
        "http://127.0.0.1:1",
        &ferry_testkit::amqp::prefix(),
        Options::default(),
    );
    settings.identity.master_key = None;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = ferry_svc_api::run(
        settings,
        admin,
        http,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("FERRY_MASTER_KEY"), "{error:#}");
}
