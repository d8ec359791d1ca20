//! Canary analysis against a real Prometheus server: a good canary (same latency and error
//! distributions as its baseline) passes; a bad one (latency up by half, errors up twentyfold)
//! fails with reasons in numbers, which makes the scheduler roll it back. The provider needs
//! basic auth, with user and password kept as sealed tenant secrets.

use crate::prom_server::{Gauge, PASSWORD, Prometheus, USER};
use crate::support::{Bench, deploy_file};
use ferry_store::analysis::AnalysisStatus;
use ferry_store::metric_providers::ProviderKind;
use ferry_testkit::eventually;

const QUERIES: &str = r#"    - name: error-ratio
      upperLimit: 0.05
      lowerLimit: 0
      queryTemplate: avg_over_time(ferry_test_error_ratio{replicaset="{{ferry.replicaSetName}}"}[{{ferry.promQlStepInterval}}])
    - name: latency
      queryTemplate: max(ferry_test_latency_seconds{replicaset="{{armory.replicaSetName}}"})
      judge:
        direction: increase
        minSamples: 15
        critical: true"#;

const STEP: &str = "            interval: 20\n            units: seconds\n            numberOfJudgmentRuns: 1\n            queries: [error-ratio, latency]";

fn gauges() -> Vec<Gauge> {
    let g = |metric, replicaset, mean, sd| Gauge {
        metric,
        replicaset,
        mean,
        sd,
    };
    vec![
        g("ferry_test_latency_seconds", "web-baseline", 0.30, 0.02),
        g("ferry_test_latency_seconds", "web-good", 0.30, 0.02),
        g("ferry_test_latency_seconds", "web-bad", 0.45, 0.02),
        g("ferry_test_error_ratio", "web-baseline", 0.01, 0.002),
        g("ferry_test_error_ratio", "web-good", 0.01, 0.002),
        g("ferry_test_error_ratio", "web-bad", 0.20, 0.01),
    ]
}

async fn bench(prometheus: &Prometheus) -> Bench {
    let bench = Bench::new().await;
    bench.secret("prom-user", USER).await;
    bench.secret("prom-password", PASSWORD).await;
    bench
        .provider(
            "prometheus-test",
            ProviderKind::Prometheus,
            &prometheus.url,
            &[("username", "prom-user"), ("password", "prom-password")],
        )
        .await;
    bench
}

#[tokio::test]
async fn a_good_canary_passes_and_a_bad_one_fails_with_its_reasons() {
    let prometheus = Prometheus::start(gauges()).await;
    let bench = bench(&prometheus).await;
    let deployment = bench
        .deployment(&deploy_file(STEP, QUERIES, "prometheus-test"))
        .await;
    let worker = bench.start_worker();
    let good = bench
        .request(
            deployment,
            &[
                ("replicaSetName", "web-good"),
                ("baselineReplicaSetName", "web-baseline"),
            ],
        )
        .await;
    let bad = bench
        .request(
            deployment,
            &[
                ("replicaSetName", "web-bad"),
                ("baselineReplicaSetName", "web-baseline"),
            ],
        )
        .await;

    let done = bench.wait_done(good.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Passed, "{:?}", done.reason);
    let reason = done.reason.clone().unwrap();
    assert!(reason.starts_with("error-ratio mean 0.0"), "{reason}");
    assert!(reason.contains(" over 1 run, within [0, 0.05]"), "{reason}");
    assert!(reason.contains("comparison: Pass: score 100"), "{reason}");
    let runs = bench.runs(good.analysis_id).await;
    let latency = &runs[0].results.0["comparisons"][0];
    let n = latency["result"]["canary"]["n"].as_u64().unwrap();
    assert!(n >= 15, "{n} canary points over a 20 s window at 1 s");
    assert_eq!(latency["result"]["classification"], "Pass", "{latency}");
    assert!(
        latency["baseline"].as_array().unwrap().len() >= 15,
        "the baseline's points are kept with the run"
    );

    let done = bench.wait_done(bad.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    let reason = done.reason.unwrap();
    // The limits query and the critical comparison both say why, in numbers.
    assert!(
        reason.starts_with("error-ratio mean 0.1") || reason.starts_with("error-ratio mean 0.2"),
        "{reason}"
    );
    assert!(reason.contains("above upperLimit 0.05"), "{reason}");
    assert!(
        reason.contains("comparison in run 1: Fail: critical metric failed: latency"),
        "{reason}"
    );
    let runs = bench.runs(bad.analysis_id).await;
    let latency = &runs[0].results.0["comparisons"][0]["result"];
    assert_eq!(latency["classification"], "High");
    let line = latency["explanation"].as_str().unwrap();
    assert!(line.starts_with("latency up "), "{line}");
    assert!(line.contains("98 % CI +0.1"), "{line}");
    assert!(line.ends_with(": High"), "{line}");
    let completion = eventually(
        "the failure goes to the scheduler",
        crate::support::WAIT,
        || async { bench.completions(bad.analysis_id).await.into_iter().next() },
    )
    .await;
    assert!(!completion.success);
    assert!(completion.reason.unwrap().contains("latency"));
    worker.stop().await;
}

#[tokio::test]
async fn wrong_credentials_are_a_provider_error_not_a_value() {
    let prometheus = Prometheus::start(gauges()[..1].to_vec()).await;
    let bench = Bench::new().await;
    bench.secret("prom-user", USER).await;
    bench.secret("prom-password", "not-the-password").await;
    bench
        .provider(
            "prometheus-test",
            ProviderKind::Prometheus,
            &prometheus.url,
            &[("username", "prom-user"), ("password", "prom-password")],
        )
        .await;
    let queries = r#"    - name: latency
      upperLimit: 1
      queryTemplate: max(ferry_test_latency_seconds{replicaset="{{ferry.replicaSetName}}"})"#;
    let step = "            interval: 1\n            units: seconds\n            numberOfJudgmentRuns: 1\n            queries: [latency]";
    let deployment = bench
        .deployment(&deploy_file(step, queries, "prometheus-test"))
        .await;
    let worker = bench.start_worker();
    let request = bench
        .request(deployment, &[("replicaSetName", "web-baseline")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    let reason = done.reason.unwrap();
    assert!(
        reason.starts_with("run 1: latency: provider error: prometheus-test: HTTP 401"),
        "{reason}"
    );
    assert!(
        !reason.contains("not-the-password"),
        "no secret in reasons: {reason}"
    );
    worker.stop().await;
}
