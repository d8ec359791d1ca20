//! Runs spaced by their interval, counted once, resumed after a replica died; the verdict and
//! `analysis.completed` committed together; bad input answered with reasons. A scripted
//! transport plays the provider (Prometheus answers), so these tests control every value.

use crate::support::{Bench, WAIT, deploy_file};
use async_trait::async_trait;
use bytes::Bytes;
use ferry_store::TenantId;
use ferry_store::analysis::{self, AnalysisStatus};
use ferry_store::metric_providers::ProviderKind;
use ferry_svc_canary::providers::transport::{HttpAnswer, HttpRequest, Transport, TransportError};
use ferry_testkit::eventually;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers provider requests from a script; when the script is empty, with `then`.
struct Scripted {
    script: Mutex<VecDeque<Result<HttpAnswer, TransportError>>>,
    then: Option<Result<HttpAnswer, TransportError>>,
    seen: Mutex<Vec<HttpRequest>>,
    /// Never answers (a replica that hangs, then dies).
    hang: bool,
}

impl Scripted {
    fn new(script: Vec<Result<HttpAnswer, TransportError>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(script.into()),
            then: None,
            seen: Mutex::new(Vec::new()),
            hang: false,
        })
    }

    fn always(answer: Result<HttpAnswer, TransportError>) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(VecDeque::new()),
            then: Some(answer),
            seen: Mutex::new(Vec::new()),
            hang: false,
        })
    }

    fn hanging() -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(VecDeque::new()),
            then: None,
            seen: Mutex::new(Vec::new()),
            hang: true,
        })
    }

    fn seen(&self) -> Vec<HttpRequest> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn send(
        &self,
        _tenant: TenantId,
        _agent: Option<&str>,
        request: HttpRequest,
    ) -> Result<HttpAnswer, TransportError> {
        self.seen.lock().unwrap().push(request);
        if self.hang {
            std::future::pending::<()>().await;
        }
        let next = self.script.lock().unwrap().pop_front();
        next.or_else(|| self.then.clone())
            .expect("the script ran out of answers")
    }
}

/// A Prometheus answer with one series whose value is `v`.
fn value(v: f64) -> Result<HttpAnswer, TransportError> {
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000,"{v}"]}}]}}}}"#
    );
    Ok(HttpAnswer {
        status: 200,
        headers: Default::default(),
        body: Bytes::from(body),
    })
}

fn status(code: u16) -> Result<HttpAnswer, TransportError> {
    Ok(HttpAnswer {
        status: code,
        headers: Default::default(),
        body: Bytes::from_static(b"upstream connect error"),
    })
}

const ERRORS: &str = r#"    - name: error-rate
      upperLimit: 0.5
      lowerLimit: 0
      queryTemplate: sum(rate(errors{replicaset="{{ferry.replicaSetName}}",owner="{{context.owner}}"}[{{ferry.promQlStepInterval}}]))"#;

fn step(runs: u32, extra: &str) -> String {
    format!(
        "            interval: 1\n            units: seconds\n            numberOfJudgmentRuns: {runs}\n{extra}            queries: [error-rate]"
    )
}

async fn bench() -> Bench {
    let bench = Bench::new().await;
    bench
        .provider(
            "prom",
            ProviderKind::Prometheus,
            "http://prometheus.internal:9090",
            &[],
        )
        .await;
    bench
}

#[tokio::test]
async fn runs_are_spaced_by_the_interval_counted_once_and_completed_through_the_outbox() {
    let bench = bench().await;
    let deployment = bench
        .deployment(&deploy_file(&step(3, ""), ERRORS, "prom"))
        .await;
    let transport = Scripted::new(vec![value(0.1), value(0.6), value(0.2)]);
    let worker = bench.start_worker_with("w1", transport.clone(), Duration::from_secs(30));
    let request = bench
        .request(deployment, &[("replicaSetName", "web-7c9f")])
        .await;
    // A redelivered request changes nothing.
    bench.send(&request).await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Passed, "{:?}", done.reason);
    assert_eq!(
        done.reason.as_deref(),
        Some("error-rate mean 0.3 over 3 runs, within [0, 0.5]")
    );
    let runs = bench.runs(request.analysis_id).await;
    assert_eq!(runs.len(), 3);
    for (k, run) in runs.iter().enumerate() {
        assert_eq!(run.run_index, k as i32);
        assert_eq!(run.window_start, done.started_at, "growing windows");
        let length = run.window_end - run.window_start;
        assert_eq!(length, chrono::Duration::seconds(k as i64 + 1));
        assert!(
            run.created_at >= run.window_end,
            "a run waits for its window's end"
        );
    }
    assert!(!runs[1].passed, "0.6 is above the limit in run 2");
    assert_eq!(
        runs[1].explanation,
        "error-rate = 0.6, above upperLimit 0.5"
    );
    // Rendered per window: the canary's ReplicaSet, the context, the window as the range.
    let seen = transport.seen();
    assert_eq!(seen.len(), 3);
    let url = reqwest::Url::parse(&seen[2].url).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query["query"],
        r#"sum(rate(errors{replicaset="web-7c9f",owner="team-greetings"}[3s]))"#
    );
    assert_eq!(query["time"], runs[2].window_end.timestamp().to_string());
    let completions = eventually("one completion", WAIT, || async {
        let c = bench.completions(request.analysis_id).await;
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert_eq!(completions.len(), 1, "{completions:?}");
    assert!(completions[0].success);
    assert_eq!(
        (completions[0].step_index, completions[0].target.as_str()),
        (1, "prod")
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_run_in_progress_on_a_dead_replica_is_resumed_by_another_and_counted_once() {
    let bench = bench().await;
    let deployment = bench
        .deployment(&deploy_file(&step(2, ""), ERRORS, "prom"))
        .await;
    let stuck = bench.start_worker_with("dying", Scripted::hanging(), Duration::from_secs(2));
    let request = bench
        .request(deployment, &[("replicaSetName", "web-7c9f")])
        .await;
    eventually("the first replica holds the run", WAIT, || async {
        let a = analysis::get(&bench.store, bench.tenant, request.analysis_id)
            .await
            .ok()?;
        (a.lease_owner.as_deref() == Some("dying")).then_some(())
    })
    .await;
    stuck.kill();
    let healthy = Scripted::always(value(0.25));
    let worker = bench.start_worker_with("healthy", healthy, Duration::from_secs(30));
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Passed, "{:?}", done.reason);
    assert_eq!(done.runs_done, 2);
    assert_eq!(bench.runs(request.analysis_id).await.len(), 2);
    let completions = eventually("a completion", WAIT, || async {
        let c = bench.completions(request.analysis_id).await;
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert_eq!(completions.len(), 1);
    worker.stop().await;
}

#[tokio::test]
async fn abort_on_failed_judgment_ends_the_analysis_at_the_first_failing_run() {
    let bench = bench().await;
    let deployment = bench
        .deployment(&deploy_file(
            &step(
                5,
                "            abortOnFailedJudgment: true\n            lookbackMethod: sliding\n",
            ),
            ERRORS,
            "prom",
        ))
        .await;
    let worker = bench.start_worker_with(
        "w1",
        Scripted::new(vec![value(0.1), value(0.9)]),
        Duration::from_secs(30),
    );
    let request = bench
        .request(deployment, &[("replicaSetName", "web-7c9f")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    let reason = done.reason.unwrap();
    assert!(
        reason
            == "run 2 of 5 failed, analysis stopped (abortOnFailedJudgment): error-rate = 0.9, above upperLimit 0.5",
        "{reason}"
    );
    let runs = bench.runs(request.analysis_id).await;
    assert_eq!(runs.len(), 2);
    // Sliding windows: each one interval long.
    for run in &runs {
        assert_eq!(
            run.window_end - run.window_start,
            chrono::Duration::seconds(1)
        );
    }
    let completions = eventually("a completion", WAIT, || async {
        let c = bench.completions(request.analysis_id).await;
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(!completions[0].success);
    assert_eq!(completions[0].reason.as_deref(), Some(reason.as_str()));
    worker.stop().await;
}

#[tokio::test]
async fn provider_errors_are_retried_within_the_run_and_reported_as_errors_not_values() {
    let bench = bench().await;
    let deployment = bench
        .deployment(&deploy_file(&step(1, ""), ERRORS, "prom"))
        .await;
    // Two 503s, then an answer: the retries inside the run hide the blip.
    let flaky = Scripted::new(vec![status(503), status(503), value(0.2)]);
    let worker = bench.start_worker_with("w1", flaky.clone(), Duration::from_secs(30));
    let request = bench
        .request(deployment, &[("replicaSetName", "web-7c9f")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Passed, "{:?}", done.reason);
    assert_eq!(flaky.seen().len(), 3);
    worker.stop().await;

    // Always 503: the run reports the error, with the attempts, and the analysis fails.
    let worker =
        bench.start_worker_with("w2", Scripted::always(status(503)), Duration::from_secs(30));
    let request = bench
        .request(deployment, &[("replicaSetName", "web-7c9f")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    assert_eq!(
        done.reason.as_deref(),
        Some(
            "run 1: error-rate: provider error: prom: HTTP 503: upstream connect error (after 3 attempts)"
        )
    );
    let runs = bench.runs(request.analysis_id).await;
    let value = &runs[0].results.0["summary"]["limits"][0]["value"];
    assert_eq!(value["kind"], "error", "{value}");
    worker.stop().await;
}

#[tokio::test]
async fn bad_input_gives_clear_reasons_never_a_pass() {
    let bench = bench().await;
    // A query that returns no series, then NaN: missing values, each with its reason.
    let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let nan = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
    let garbage = b"<html>gateway</html>";
    let answers = |b: &'static [u8]| {
        Ok(HttpAnswer {
            status: 200,
            headers: Default::default(),
            body: Bytes::from_static(b),
        })
    };
    let deployment = bench
        .deployment(&deploy_file(&step(3, ""), ERRORS, "prom"))
        .await;
    let worker = bench.start_worker_with(
        "w1",
        Scripted::new(vec![answers(empty), answers(nan), answers(garbage)]),
        Duration::from_secs(30),
    );
    let request = bench
        .request(deployment, &[("replicaSetName", "web-7c9f")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    let runs = bench.runs(request.analysis_id).await;
    let lines: Vec<&str> = runs.iter().map(|r| r.explanation.as_str()).collect();
    assert_eq!(
        lines,
        [
            "error-rate: no value: the query returned no series",
            "error-rate: no value: the query's result is NaN",
            "error-rate: provider error: prom: unreadable answer: Prometheus: expected value at line 1 column 1",
        ]
    );
    assert_eq!(
        done.reason.as_deref(),
        Some("run 1: error-rate: no value: the query returned no series")
    );

    // An unknown provider, and a step that is not an analysis.
    let unknown = bench
        .deployment(&deploy_file(&step(1, ""), ERRORS, "prometheus-nowhere"))
        .await;
    let request = bench
        .request(unknown, &[("replicaSetName", "web-7c9f")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    assert_eq!(
        done.reason.as_deref(),
        Some(
            "run 1: error-rate: provider error: metric provider \"prometheus-nowhere\" is not configured in this tenant"
        )
    );
    let request = bench
        .request_step(deployment, "step:0", &[("replicaSetName", "web-7c9f")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    assert_eq!(
        done.reason.as_deref(),
        Some("analysis cannot run: step step:0 of \"prod\" is not an analysis")
    );
    // A variable the request does not carry is a reason too, never an empty string.
    let request = bench.request(deployment, &[]).await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    let reason = done.reason.unwrap();
    assert!(reason.contains("ferry.replicaSetName"), "{reason}");
    worker.stop().await;
}

/// A Prometheus range answer with one series of `points`.
fn series(points: &[f64]) -> Result<HttpAnswer, TransportError> {
    let values: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, v)| format!("[{},\"{v}\"]", 1_700_000_000 + i))
        .collect();
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
        values.join(",")
    );
    Ok(HttpAnswer {
        status: 200,
        headers: Default::default(),
        body: Bytes::from(body),
    })
}

#[tokio::test]
async fn too_few_points_make_an_inconclusive_verdict_that_waits_for_a_person() {
    let bench = bench().await;
    let queries = r#"    - name: latency
      queryTemplate: max(latency{replicaset="{{ferry.replicaSetName}}"})
      judge:
        minSamples: 30"#;
    let step = "            interval: 1\n            units: seconds\n            numberOfJudgmentRuns: 1\n            queries: [latency]";
    let deployment = bench.deployment(&deploy_file(step, queries, "prom")).await;
    let few = [0.30, 0.31, 0.29, 0.30, 0.32];
    let worker = bench.start_worker_with(
        "w1",
        Scripted::new(vec![series(&few), series(&few)]),
        Duration::from_secs(30),
    );
    let request = bench
        .request(
            deployment,
            &[
                ("replicaSetName", "web-new"),
                ("baselineReplicaSetName", "web-base"),
            ],
        )
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(
        done.status,
        AnalysisStatus::Inconclusive,
        "{:?}",
        done.reason
    );
    let reason = done.reason.unwrap();
    assert!(
        reason == "comparison: Inconclusive: too few points to judge: latency",
        "{reason}"
    );
    let completions = eventually("a completion", WAIT, || async {
        let c = bench.completions(request.analysis_id).await;
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(!completions[0].success);
    assert!(
        completions[0].inconclusive,
        "the scheduler lets a person decide"
    );
    worker.stop().await;
}

#[tokio::test]
async fn secrets_in_queries_are_opened_at_query_time_and_never_stored() {
    let bench = bench().await;
    bench.secret("tenant-label", "s3cr3t-value").await;
    let queries = r#"    - name: error-rate
      upperLimit: 1
      queryTemplate: sum(errors{tenant="{{secrets.tenant-label}}"})"#;
    let deployment = bench
        .deployment(&deploy_file(&step(1, ""), queries, "prom"))
        .await;
    let transport = Scripted::new(vec![value(0.2)]);
    let worker = bench.start_worker_with("w1", transport.clone(), Duration::from_secs(30));
    let request = bench.request(deployment, &[]).await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Passed, "{:?}", done.reason);
    let url = reqwest::Url::parse(&transport.seen()[0].url).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["query"], r#"sum(errors{tenant="s3cr3t-value"})"#);
    let stored: Vec<(String,)> = sqlx::query_as(
        "SELECT request::text || spec::text || coalesce(verdict::text, '') FROM analyses
         UNION ALL SELECT results::text || explanation FROM analysis_runs",
    )
    .fetch_all(&bench.db.pool)
    .await
    .unwrap();
    assert!(
        stored.iter().all(|(t,)| !t.contains("s3cr3t-value")),
        "{stored:?}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn an_analysis_whose_target_ended_stops_querying() {
    let bench = bench().await;
    let deployment = bench
        .deployment(&deploy_file(&step(30, ""), ERRORS, "prom"))
        .await;
    let transport = Scripted::always(value(0.1));
    let worker = bench.start_worker_with("w1", transport.clone(), Duration::from_secs(30));
    let request = bench
        .request(deployment, &[("replicaSetName", "web-7c9f")])
        .await;
    eventually("a first run", WAIT, || async {
        (!bench.runs(request.analysis_id).await.is_empty()).then_some(())
    })
    .await;
    // The deployment was aborted meanwhile (the scheduler ended the target).
    sqlx::query("UPDATE targets SET status = 'aborted' WHERE deployment_id = $1")
        .bind(deployment.as_uuid())
        .execute(&bench.db.pool)
        .await
        .unwrap();
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    assert_eq!(
        done.reason.as_deref(),
        Some("stopped: target \"prod\" ended (aborted) before the analysis finished")
    );
    assert!(done.runs_done < 30);
    assert!(bench.completions(request.analysis_id).await.is_empty());
    worker.stop().await;
}

#[tokio::test]
async fn an_unreachable_provider_is_an_error_after_retries_never_a_value() {
    let bench = Bench::new().await;
    let port = ferry_testkit::process::CLOSED_PORT;
    bench
        .provider(
            "prom",
            ProviderKind::Prometheus,
            &format!("http://127.0.0.1:{port}"),
            &[],
        )
        .await;
    let deployment = bench
        .deployment(&deploy_file(&step(1, ""), ERRORS, "prom"))
        .await;
    let worker = bench.start_worker();
    let request = bench
        .request(deployment, &[("replicaSetName", "web-7c9f")])
        .await;
    let done = bench.wait_done(request.analysis_id).await;
    assert_eq!(done.status, AnalysisStatus::Failed);
    let reason = done.reason.unwrap();
    assert!(
        reason.starts_with("run 1: error-rate: provider error: prom: cannot reach 127.0.0.1: "),
        "{reason}"
    );
    assert!(reason.ends_with("(after 3 attempts)"), "{reason}");
    worker.stop().await;
}
