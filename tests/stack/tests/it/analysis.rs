//! Canary analysis through the whole system: the scheduler asks, svc-canary queries a metric
//! provider inside the cluster's private network through the hub and the cluster's agent (the
//! provider names the agent), and the verdict decides: a good canary goes live, a bad one is
//! rolled back with the failing query and its numbers in the reason.

use crate::app::{self, CLUSTERS};
use ferry_stack_tests::{Stack, StackOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEPLOY_FILE: &str = r#"version: v1
kind: kubernetes
application: hello-stack
deploymentConfig:
  timeout:
    duration: 2
    unit: minutes
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: analysed
manifests:
  - path: manifests/app.yaml
strategies:
  analysed:
    canary:
      steps:
        - setWeight: 50
        - analysis:
            interval: 2
            units: seconds
            numberOfJudgmentRuns: 2
            queries: [QUERY]
        - setWeight: 100
analysis:
  defaultMetricProviderName: private-prometheus
  queries:
    - name: good-latency
      upperLimit: 1
      queryTemplate: good_latency{replicaset="{{ferry.replicaSetName}}"}
    - name: bad-latency
      upperLimit: 1
      queryTemplate: bad_latency{replicaset="{{ferry.replicaSetName}}"}
"#;

/// A provider in the "private network": answers `/api/v1/query` as Prometheus does, 0.5 for
/// queries about `good_latency` and 5 otherwise, and counts the queries it answered.
async fn private_prometheus() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let value = if line.contains("good_latency") {
                    "0.5"
                } else {
                    "5"
                };
                if line.starts_with("GET /api/v1/query?") {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let body = format!(
                    r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{value}"]}}]}}}}"#
                );
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, asked)
}

#[tokio::test]
async fn analysis_through_the_agent_lets_a_good_canary_through_and_rolls_a_bad_one_back() {
    let mut stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 1,
        schedulers: 1,
        pod_ready_delay: Duration::from_millis(200),
        scheduler_tick_secs: 1,
    })
    .await;
    stack.start_canary().await;
    let (url, asked) = private_prometheus().await;
    let out = stack
        .ferry(&[
            "analysis",
            "set-provider",
            "private-prometheus",
            "--kind",
            "prometheus",
            "--base-url",
            &url,
            "--agent",
            "prod-cluster",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let deploy = |version: &str, query: &str| {
        let file = app::write_with(&stack, version, &DEPLOY_FILE.replace("QUERY", query));
        file.to_string_lossy().to_string()
    };
    let first = deploy("1.0.0", "good-latency");
    let good = deploy("1.1.0", "good-latency");
    let bad = deploy("1.2.0", "bad-latency");
    // A rolled-back deployment ends the watch with exit code 4.
    for (file, expect) in [(&first, Some(0)), (&good, Some(0)), (&bad, Some(4))] {
        let out = stack
            .ferry(&["deploy", "start", "-f", file, "--watch"])
            .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            expect,
            "{file}:\n{stdout}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            stack.logs()
        );
        if file == &bad {
            assert!(
                stdout.contains(
                    "rolled back: analysis failed: bad-latency mean 5 over 2 runs, above upperLimit 1"
                ),
                "{stdout}"
            );
        }
    }
    // 1.0.0 went straight to 100% (a first deployment); 1.1.0 and 1.2.0 each ran two runs.
    assert_eq!(
        asked.load(Ordering::SeqCst),
        4,
        "every query went through the agent"
    );
    // The good canary is live, the bad one gone (the restored pods turn ready in their time).
    let live = [("registry.example/hello-stack:1.1.0".to_string(), 4, 4)];
    ferry_testkit::eventually(
        "1.1.0 alone, fully ready",
        Duration::from_secs(30),
        || async {
            let sets = app::replica_sets(&stack, "prod-cluster", "hello-prod").await;
            (sets == live).then_some(())
        },
    )
    .await;
}
