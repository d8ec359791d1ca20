//! Datadog and New Relic through the whole worker, against their documented APIs' recorded
//! answers (`tests/data/*.json`) served by a local server that checks the credentials the way
//! the real services do (Datadog's key headers, New Relic's `API-Key` and account).

use crate::support::{Bench, deploy_file};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ferry_store::analysis::AnalysisStatus;
use ferry_store::metric_providers::ProviderKind;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn recorded(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{name}")).unwrap()
}

/// What the fake services saw.
#[derive(Default)]
struct Seen {
    datadog: Vec<HashMap<String, String>>,
    nrql: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

async fn datadog(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if header("DD-API-KEY") != "dd-api-123" || header("DD-APPLICATION-KEY") != "dd-app-456" {
        return (
            StatusCode::FORBIDDEN,
            recorded("datadog-query-forbidden.json"),
        );
    }
    seen.lock().unwrap().datadog.push(params.clone());
    let query = params.get("query").cloned().unwrap_or_default();
    let body = if query.contains("web-canary") {
        recorded("datadog-query-canary.json")
    } else {
        recorded("datadog-query-baseline.json")
    };
    (StatusCode::OK, body)
}

async fn nerdgraph(
    State(seen): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers.get("API-Key").and_then(|v| v.to_str().ok()) != Some("NRAK-TEST") {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"errors":[{"message":"Invalid API key"}]}"#.into(),
        );
    }
    let request: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(request["variables"]["accountId"], 1234567, "{request}");
    assert!(
        request["query"]
            .as_str()
            .unwrap()
            .contains("nrql(query: $nrql)")
    );
    let nrql = request["variables"]["nrql"].as_str().unwrap().to_string();
    seen.lock().unwrap().nrql.push(nrql.clone());
    let body = if nrql.contains("FRM") {
        recorded("newrelic-nrql-syntax-error.json")
    } else {
        recorded("newrelic-nrql-value.json")
    };
    (StatusCode::OK, body)
}

async fn serve() -> (String, Shared) {
    let seen = Shared::default();
    let app = Router::new()
        .route("/api/v1/query", get(datadog))
        .route("/graphql", post(nerdgraph))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

const ONE_RUN: &str =
    "            interval: 1\n            units: seconds\n            numberOfJudgmentRuns: 1\n";

#[tokio::test]
async fn datadog_series_feed_the_comparison_judge_with_both_keys() {
    let (url, seen) = serve().await;
    let bench = Bench::new().await;
    bench.secret("dd-api", "dd-api-123").await;
    bench.secret("dd-app", "dd-app-456").await;
    bench
        .provider(
            "datadog",
            ProviderKind::Datadog,
            &url,
            &[("apiKey", "dd-api"), ("applicationKey", "dd-app")],
        )
        .await;
    let queries = r#"    - name: latency
      queryTemplate: "avg:trace.http.request.duration{replicaset:{{ferry.replicaSetName}}}"
      judge:
        minSamples: 20"#;
    let deployment = bench
        .deployment(&deploy_file(
            &format!("{ONE_RUN}            queries: [latency]"),
            queries,
            "datadog",
        ))
        .await;
    let worker = bench.start_worker();
    let request = bench
        .request(
            deployment,
            &[
                ("replicaSetName", "web-canary"),
                ("baselineReplicaSetName", "web-baseline"),
            ],
        )
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed, "{:?}", done.reason);
    let runs = bench.runs(request.analysis_id).await;
    let result = &runs[0].results.0["comparisons"][0]["result"];
    assert_eq!(result["classification"], "High");
    // 31 points (one null skipped) against 32, as recorded.
    assert_eq!(
        (
            result["canary"]["n"].as_u64(),
            result["baseline"]["n"].as_u64()
        ),
        (Some(31), Some(32))
    );
    let line = result["explanation"].as_str().unwrap();
    assert_eq!(
        line,
        "latency up 36.88 % (median 0.412 vs 0.301, shift +0.111, 98 % CI +0.105..+0.117, p=9.56e-12, n=31/32): High"
    );
    let seen = seen.lock().unwrap().datadog.clone();
    assert_eq!(seen.len(), 2, "canary and baseline");
    let window = (
        runs[0].window_start.timestamp(),
        runs[0].window_end.timestamp(),
    );
    for params in &seen {
        assert_eq!(params["from"], window.0.to_string());
        assert_eq!(params["to"], window.1.to_string());
    }
    // What an operator's Prometheus reads: one failed run of two queries, one failed analysis,
    // the request handled off the bus and the completion published through the outbox.
    let text = worker.scrape();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(r#"ferry_canary_judgment_runs_total{result="failed"}"#),
        1.0
    );
    assert_eq!(
        value(r#"ferry_canary_judgment_run_duration_seconds_count{result="failed"}"#),
        1.0
    );
    let queries = r#"{kind="datadog",outcome="data"}"#;
    assert_eq!(
        value(&format!("ferry_canary_provider_queries_total{queries}")),
        2.0
    );
    assert_eq!(
        value(&format!(
            "ferry_canary_provider_query_duration_seconds_count{queries}"
        )),
        2.0
    );
    let query_seconds = value(&format!(
        "ferry_canary_provider_query_duration_seconds_sum{queries}"
    ));
    assert!((0.0..20.0).contains(&query_seconds), "{query_seconds}");
    assert_eq!(
        value(r#"ferry_canary_analyses_total{status="failed"}"#),
        1.0
    );
    let analysis = value(r#"ferry_canary_analysis_duration_seconds_sum{status="failed"}"#);
    assert!((0.0..120.0).contains(&analysis), "{analysis}");
    assert!(text.contains(r#"ferry_bus_handle_duration_seconds_count{kind="analysis.requested.v1",queue="canary"} 1"#), "{text}");
    // The completion leaves through the outbox just after the analysis is stored as ended.
    ferry_testkit::eventually("the completion published", crate::support::WAIT, || {
        let published = worker
            .scrape()
            .lines()
            .find_map(|l| l.strip_prefix("ferry_outbox_published_total "))
            .and_then(|v| v.parse::<f64>().ok());
        async move { (published >= Some(1.0)).then_some(()) }
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn new_relic_nrql_gets_its_window_and_account_and_syntax_errors_are_reported() {
    let (url, seen) = serve().await;
    let bench = Bench::new().await;
    bench.secret("nr-key", "NRAK-TEST").await;
    bench
        .provider(
            "newrelic",
            ProviderKind::Newrelic,
            &format!("{url}/graphql?accountId=1234567"),
            &[("apiKey", "nr-key")],
        )
        .await;
    let queries = r#"    - name: error-percentage
      upperLimit: 1
      queryTemplate: "SELECT percentage(count(*), WHERE error IS true) FROM Transaction WHERE appName = '{{ferry.applicationName}}'"
    - name: typo
      upperLimit: 1
      queryTemplate: "SELECT count(*) FRM Transaction""#;
    let deployment = bench
        .deployment(&deploy_file(
            &format!("{ONE_RUN}            queries: [error-percentage]"),
            queries,
            "newrelic",
        ))
        .await;
    let worker = bench.start_worker();
    let request = bench
        .request(deployment, &[("replicaSetName", "web-canary")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Passed, "{:?}", done.reason);
    assert_eq!(
        done.reason.as_deref(),
        Some("error-percentage mean 0.42 over 1 run, within [-inf, 1]")
    );
    let run = &bench.runs(request.analysis_id).await[0];
    let nrql = seen.lock().unwrap().nrql.clone();
    assert_eq!(
        nrql,
        [format!(
            "SELECT percentage(count(*), WHERE error IS true) FROM Transaction WHERE appName = 'hello-ferry' SINCE {} UNTIL {}",
            run.window_start.timestamp_millis(),
            run.window_end.timestamp_millis()
        )]
    );

    let typo = bench
        .deployment(&deploy_file(
            &format!("{ONE_RUN}            queries: [typo]"),
            queries,
            "newrelic",
        ))
        .await;
    let request = bench
        .request(typo, &[("replicaSetName", "web-canary")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    assert_eq!(
        done.reason.as_deref(),
        Some(
            "run 1: typo: provider error: newrelic: New Relic: NRQL Syntax Error: Error at line 1 position 7, unexpected 'FRM'"
        )
    );
    worker.stop().await;
}

#[tokio::test]
async fn answers_larger_than_the_cap_are_refused_not_read() {
    use ferry_svc_canary::providers::transport::{
        HttpRequest, HttpTransport, Transport, TransportError,
    };
    let app = Router::new().route("/big", get(|| async { "x".repeat(64 * 1024) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/big", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let transport = HttpTransport::new(None, std::time::Duration::from_secs(5), 16 * 1024).unwrap();
    let request = HttpRequest {
        method: http::Method::GET,
        url,
        headers: vec![],
        body: None,
    };
    let tenant = ferry_store::TenantId(uuid::Uuid::now_v7());
    let err = transport
        .send(tenant, None, request.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::TooLarge { limit: 16384 }),
        "{err}"
    );
    assert!(!err.is_transient());
    // A provider behind an agent without a tunnel: a clear reason, not a hang.
    let err = transport
        .send(tenant, Some("prod-cluster"), request)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "through agent \"prod-cluster\": this service has no agent tunnel (FERRY_REDIS_URL)"
    );
}
