//! Canary by pod ratio on a target that already runs a version, and a bad version that rolls
//! back and keeps its dependents from starting.

use crate::support::{Bench, WAIT, is_ready, plan, size_of};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_testkit::eventually;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One production target with the example's canary: 25%, a timed pause, 50%, an approval, 100%.
const CANARY: &str = r#"
version: v1
kind: kubernetes
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: canary-25-50
manifests:
  - path: manifests/app.yaml
  - path: manifests/service.yaml
strategies:
  canary-25-50:
    canary:
      steps:
        - setWeight:
            weight: 25
        - pause:
            duration: 2
            unit: seconds
        - setWeight:
            weight: 50
        - pause:
            untilApproved: true
        - setWeight:
            weight: 100
"#;

/// Staging then production, both canaries without waits.
const CHAIN: &str = r#"
version: v1
application: hello-ferry
targets:
  staging:
    account: staging-cluster
    namespace: hello
    strategy: quick
  prod:
    account: prod-cluster
    namespace: hello
    strategy: quick
    constraints:
      dependsOn: ["staging"]
manifests:
  - path: manifests/app.yaml
strategies:
  quick:
    canary:
      steps:
        - setWeight: 50
"#;

#[tokio::test]
async fn canary_moves_by_pod_ratio_without_losing_capacity() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello-prod"]).await;
    bench.start_engine();
    let v1 = bench
        .start_deployment(&plan(CANARY, "hello-ferry:1.1.0"))
        .await;
    let first = bench.wait_end(v1).await;
    assert_eq!(
        first.status,
        DeploymentStatus::Succeeded,
        "{:?}",
        first.reason
    );
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!(
        size_of(&sets, ":1.1.0"),
        4,
        "first deployment at 100%: {sets:?}"
    );

    // Watch the ready pods for the whole rollout: never fewer than the 4 desired.
    let watching = Arc::new(AtomicBool::new(true));
    let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
    let client = bench.clients["prod-cluster"].clone();
    let watcher = {
        let (watching, min_ready) = (watching.clone(), min_ready.clone());
        tokio::spawn(async move {
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(client, "hello-prod");
            while watching.load(Ordering::SeqCst) {
                let list = pods.list(&Default::default()).await.unwrap();
                let ready = list.items.iter().filter(|p| is_ready(p)).count();
                min_ready.fetch_min(ready, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };

    let v2 = bench
        .start_deployment(&plan(CANARY, "hello-ferry:1.2.0"))
        .await;
    // Step 1 (the timed pause): the canary has 1 pod, the stable version gave up exactly 1.
    let paused = bench
        .wait_target(v2, "prod", "the timed pause after 25%", |t| {
            t.step_index == 1 && t.status == TargetStatus::Paused
        })
        .await;
    assert_eq!(paused.reason.as_deref(), Some("paused for 2s"));
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!(
        (size_of(&sets, ":1.2.0"), size_of(&sets, ":1.1.0")),
        (1, 3),
        "{sets:?}"
    );
    // Step 3 (the approval): 50% = 2 and 2.
    let waiting = bench
        .wait_target(v2, "prod", "the approval after 50%", |t| {
            t.step_index == 3 && t.status == TargetStatus::Paused
        })
        .await;
    assert_eq!(waiting.reason.as_deref(), Some("waiting for approval"));
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!(
        (size_of(&sets, ":1.2.0"), size_of(&sets, ":1.1.0")),
        (2, 2),
        "{sets:?}"
    );
    bench.decide(v2, "prod", true).await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!(sets.len(), 1, "the old version is removed: {sets:?}");
    assert_eq!(size_of(&sets, ":1.2.0"), 4);
    eventually("4 ready pods of the new version", WAIT, || async {
        (bench.ready_pods("prod-cluster", "hello-prod").await == 4).then_some(())
    })
    .await;
    watching.store(false, Ordering::SeqCst);
    watcher.await.unwrap();
    assert!(
        min_ready.load(Ordering::SeqCst) >= 4,
        "capacity dropped to {} ready pods",
        min_ready.load(Ordering::SeqCst)
    );
    let reasons = bench.reasons(v2, "prod").await;
    for expected in [
        "canary at 25% (1/4 pods ready)",
        "pause of 2s ended",
        "canary at 50% (2/4 pods ready)",
        "approved by rita@example.com",
        "canary at 100% (4/4 pods ready)",
        "at 100% (4/4 pods ready); old version removed",
    ] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "{expected:?} in {reasons:?}"
        );
    }
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_bad_version_rolls_back_and_its_dependents_never_start() {
    let mut bench = Bench::new(&["staging-cluster", "prod-cluster"], &["hello"]).await;
    bench.start_engine();
    let good = bench
        .start_deployment(&plan(CHAIN, "hello-ferry:1.1.0"))
        .await;
    assert_eq!(
        bench.wait_end(good).await.status,
        DeploymentStatus::Succeeded
    );

    let mut bad = plan(CHAIN, "hello-ferry:bad");
    // The file's minimum timeout is 60 s; the test shortens the stored plan to keep it quick.
    bad.deployment_config.timeout_secs = 2;
    let id = bench.start_deployment(&bad).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let staging = bench.target(id, "staging").await;
    assert_eq!(staging.status, TargetStatus::RolledBack);
    assert_eq!(
        staging.reason.as_deref(),
        Some("rolled back: pods not ready after 2s")
    );
    let prod = bench.target(id, "prod").await;
    assert_eq!(prod.status, TargetStatus::Skipped);
    assert_eq!(
        bench.reasons(id, "prod").await,
        vec!["not started: staging rolled_back".to_string()],
        "prod never started"
    );
    assert_eq!(
        prod.reason.as_deref(),
        Some("not started: staging rolled_back")
    );
    // Staging is back on the good version at full size; the bad ReplicaSet is gone.
    for account in ["staging-cluster", "prod-cluster"] {
        let sets = bench.replica_sets(account, "hello").await;
        assert_eq!(sets.len(), 1, "{account}: {sets:?}");
        assert_eq!(size_of(&sets, ":1.1.0"), 4, "{account}: {sets:?}");
    }
    eventually("staging serving 4 ready pods again", WAIT, || async {
        (bench.ready_pods("staging-cluster", "hello").await == 4).then_some(())
    })
    .await;
    assert!(end.reason.unwrap().contains("staging rolled_back"));
    bench.stop_engine().await;
}

#[tokio::test]
async fn abort_mid_canary_restores_the_stable_version() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello-prod"]).await;
    bench.start_engine();
    bench
        .deploy_succeeded(&plan(CANARY, "hello-ferry:1.1.0"))
        .await;
    let v2 = bench
        .start_deployment(&plan(CANARY, "hello-ferry:1.2.0"))
        .await;
    bench
        .wait_target(v2, "prod", "the approval after 50%", |t| {
            t.step_index == 3 && t.status == TargetStatus::Paused
        })
        .await;
    bench.abort(v2, "wrong build").await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Aborted, "{:?}", end.reason);
    let prod = bench.target(v2, "prod").await;
    assert_eq!(prod.status, TargetStatus::Aborted);
    assert_eq!(prod.reason.as_deref(), Some("aborted: wrong build"));
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!(sets.len(), 1, "the canary is removed: {sets:?}");
    assert_eq!(size_of(&sets, ":1.1.0"), 4, "{sets:?}");
    bench.stop_engine().await;
}
