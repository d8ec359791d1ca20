//! Readiness by watch: with the readiness tick an hour long, rollouts still move on as their
//! pods turn ready (the simulator's, 200 ms after they start), woken by the watch of their
//! ReplicaSets; without the watch they would wait for the tick.

use crate::support::{Bench, plan};
use ferry_store::deployments::DeploymentStatus;
use ferry_svc_scheduler::metrics::SchedulerMetrics;
use std::time::Duration;

const STEPS: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: two-steps
manifests:
  - path: manifests/app.yaml
strategies:
  two-steps:
    canary:
      steps:
        - setWeight: 25
        - setWeight: 50
"#;

#[tokio::test]
async fn pods_turning_ready_wake_the_rollout_without_waiting_for_the_tick() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello-prod"]).await;
    let metrics = SchedulerMetrics::default();
    let counted = metrics.clone();
    bench.start_engine_with(|config| {
        config.tick = Duration::from_secs(3600);
        config.metrics = Some(counted);
    });
    // The first version goes straight to 100% and waits for its pods once; the second waits at
    // 25%, 50% and 100%. Each wait ends only by the watch (the tick is an hour away; the test
    // gives up after 30 s).
    let mut last = None;
    for image in ["hello-ferry:1.1.0", "hello-ferry:1.2.0"] {
        let id = bench.start_deployment(&plan(STEPS, image)).await;
        let end = bench.wait_end(id).await;
        assert_eq!(
            end.status,
            DeploymentStatus::Succeeded,
            "{image}: {:?}",
            end.reason
        );
        last = Some(id);
    }
    // The watch woke each wait: once for 1.1.0, at least once per step of 1.2.0.
    assert!(
        metrics.readiness_wakes() >= 4,
        "{}",
        metrics.readiness_wakes()
    );
    let reasons = bench.reasons(last.unwrap(), "prod").await;
    for step in ["canary at 25%", "canary at 50%", "at 100%"] {
        assert!(
            reasons.iter().any(|r| r.starts_with(step)),
            "no {step:?} in {reasons:?}"
        );
    }
}
