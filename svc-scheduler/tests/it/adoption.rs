//! A cluster that already runs the team's own `Deployment`: the first Ferry deployment adopts
//! it. Its pods keep serving until Ferry's managed version is ready (capacity never drops);
//! then the Deployment is gone (orphan semantics: deleting it took nothing down), or, with
//! `keepDeploymentObject`, kept at zero replicas and marked as managed by Ferry.

use crate::support::{Bench, WAIT, is_ready, plan, size_of};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_testkit::eventually;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::task::JoinHandle;

/// Canary to 50%, then an approval: the moment both versions run side by side.
const CANARY: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello
    strategy: half
manifests:
  - path: manifests/app.yaml
strategies:
  half:
    canary:
      steps:
        - setWeight: 50
        - pause:
            untilApproved: true
"#;

/// The same canary, the team's Deployment object kept.
const KEEP: &str = r#"
version: v1
application: hello-ferry
deploymentConfig:
  keepDeploymentObject: true
targets:
  prod:
    account: prod-cluster
    namespace: hello
    strategy: half
manifests:
  - path: manifests/app.yaml
strategies:
  half:
    canary:
      steps:
        - setWeight: 50
        - pause:
            untilApproved: true
"#;

/// Creates the team's own `hello-ferry` Deployment (4 replicas of `image`) the way `kubectl
/// apply` would, and waits until its pods serve.
async fn users_deployment(bench: &Bench, image: &str) {
    let api: Api<Deployment> = Api::namespaced(bench.clients["prod-cluster"].clone(), "hello");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "hello-ferry", "labels": {"app": "hello-ferry"}},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "hello-ferry"}},
            "template": {
                "metadata": {"labels": {"app": "hello-ferry"}},
                "spec": {"containers": [{"name": "web", "image": image}]}
            }
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    eventually("the team's 4 pods to serve", WAIT, || async {
        (bench.ready_pods("prod-cluster", "hello").await == 4).then_some(())
    })
    .await;
}

/// Counts ready pods in the background for as long as a rollout runs, keeping the minimum.
struct CapacityWatch {
    watching: Arc<AtomicBool>,
    min_ready: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CapacityWatch {
    fn start(bench: &Bench, namespace: &str) -> CapacityWatch {
        let watching = Arc::new(AtomicBool::new(true));
        let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
        let pods: Api<Pod> = Api::namespaced(bench.clients["prod-cluster"].clone(), namespace);
        let task = {
            let (watching, min_ready) = (watching.clone(), min_ready.clone());
            tokio::spawn(async move {
                while watching.load(Ordering::SeqCst) {
                    let list = pods.list(&ListParams::default()).await.unwrap();
                    let ready = list
                        .items
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .filter(|p| is_ready(p))
                        .count();
                    min_ready.fetch_min(ready, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            })
        };
        CapacityWatch {
            watching,
            min_ready,
            task,
        }
    }

    /// Stops watching; the fewest ready pods seen.
    async fn stop(self) -> usize {
        self.watching.store(false, Ordering::SeqCst);
        self.task.await.unwrap();
        self.min_ready.load(Ordering::SeqCst)
    }
}

/// The namespace's ReplicaSet running `image` (suffix).
async fn replica_set_of(bench: &Bench, image: &str) -> Option<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(bench.clients["prod-cluster"].clone(), "hello");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.as_deref())
                .is_some_and(|i| i.ends_with(image))
        })
}

#[tokio::test]
async fn the_first_deployment_adopts_the_teams_deployment_without_losing_capacity() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello"]).await;
    users_deployment(&bench, "hello-ferry:1.0.0").await;
    let watch = CapacityWatch::start(&bench, "hello");
    bench.start_engine();
    let id = bench
        .start_deployment(&plan(CANARY, "hello-ferry:1.1.0"))
        .await;

    // The team's version is the stable one: the canary runs beside it, not straight to 100%.
    bench
        .wait_target(id, "prod", "the approval after 50%", |t| {
            t.step_index == 1 && t.status == TargetStatus::Paused
        })
        .await;
    let deployments: Api<Deployment> =
        Api::namespaced(bench.clients["prod-cluster"].clone(), "hello");
    assert!(
        deployments.get_opt("hello-ferry").await.unwrap().is_none(),
        "the team's Deployment is removed"
    );
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(
        (size_of(&sets, ":1.1.0"), size_of(&sets, ":1.0.0")),
        (2, 2),
        "half and half: {sets:?}"
    );
    // Orphaned, not deleted: the team's ReplicaSet serves on, now Ferry's stable version.
    let theirs = replica_set_of(&bench, ":1.0.0").await.unwrap();
    assert!(theirs.metadata.owner_references.is_none(), "{theirs:?}");
    let labels = theirs.metadata.labels.clone().unwrap();
    assert_eq!(labels["ferry.dev/application"], "hello-ferry");
    assert_eq!(labels["ferry.dev/target"], "prod");
    assert_eq!(labels["ferry.dev/workload"], "hello-ferry");
    let ready = theirs.status.and_then(|s| s.ready_replicas).unwrap_or(0);
    assert_eq!(ready, 2, "the team's pods still serve");

    bench.decide(id, "prod", true).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(sets.len(), 1, "only Ferry's version is left: {sets:?}");
    assert_eq!(size_of(&sets, ":1.1.0"), 4);
    eventually("4 ready pods of the new version", WAIT, || async {
        (bench.ready_pods("prod-cluster", "hello").await == 4).then_some(())
    })
    .await;
    let min_ready = watch.stop().await;
    assert!(min_ready >= 4, "capacity dropped to {min_ready} ready pods");
    let reasons = bench.reasons(id, "prod").await;
    for expected in [
        "canary at 50% (2/4 pods ready)",
        "approved by rita@example.com",
        "at 100% (4/4 pods ready); old version removed",
    ] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "{expected:?} in {reasons:?}"
        );
    }
    bench.stop_engine().await;
}

/// The kept Deployment: at zero replicas and marked as Ferry's.
async fn assert_kept_at_zero(bench: &Bench) {
    let deployments: Api<Deployment> =
        Api::namespaced(bench.clients["prod-cluster"].clone(), "hello");
    let kept = deployments
        .get_opt("hello-ferry")
        .await
        .unwrap()
        .expect("the team's Deployment is kept");
    assert_eq!(kept.spec.as_ref().and_then(|s| s.replicas), Some(0));
    let annotations = kept.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("ferry.dev/managed-by").map(String::as_str),
        Some("ferry"),
        "{annotations:?}"
    );
}

#[tokio::test]
async fn keep_deployment_object_keeps_the_teams_deployment_at_zero_marked_as_ferrys() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello"]).await;
    users_deployment(&bench, "hello-ferry:1.0.0").await;
    let watch = CapacityWatch::start(&bench, "hello");
    bench.start_engine();
    let id = bench
        .start_deployment(&plan(KEEP, "hello-ferry:1.1.0"))
        .await;

    // The team's version is the stable one here too: half and half, the Deployment kept.
    bench
        .wait_target(id, "prod", "the approval after 50%", |t| {
            t.step_index == 1 && t.status == TargetStatus::Paused
        })
        .await;
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(
        (size_of(&sets, ":1.1.0"), size_of(&sets, ":1.0.0")),
        (2, 2),
        "half and half: {sets:?}"
    );
    assert_kept_at_zero(&bench).await;
    let theirs = replica_set_of(&bench, ":1.0.0").await.unwrap();
    assert!(
        theirs.metadata.owner_references.is_none(),
        "Ferry sizes the team's version, not the Deployment: {theirs:?}"
    );

    bench.decide(id, "prod", true).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    assert_kept_at_zero(&bench).await;
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(
        (size_of(&sets, ":1.1.0"), size_of(&sets, ":1.0.0")),
        (4, 0),
        "{sets:?}"
    );
    let ferrys = replica_set_of(&bench, ":1.1.0").await.unwrap();
    assert!(
        ferrys.metadata.owner_references.is_none(),
        "the kept Deployment must not adopt Ferry's ReplicaSet: {ferrys:?}"
    );
    eventually("4 ready pods of the new version", WAIT, || async {
        (bench.ready_pods("prod-cluster", "hello").await == 4).then_some(())
    })
    .await;
    let min_ready = watch.stop().await;
    assert!(min_ready >= 4, "capacity dropped to {min_ready} ready pods");

    // The next version replaces Ferry's; the kept Deployment stays at zero.
    let next = bench
        .start_deployment(&plan(KEEP, "hello-ferry:1.2.0"))
        .await;
    bench.decide(next, "prod", true).await;
    let end = bench.wait_end(next).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(
        (
            size_of(&sets, ":1.2.0"),
            size_of(&sets, ":1.1.0"),
            size_of(&sets, ":1.0.0")
        ),
        (4, 0, 0),
        "{sets:?}"
    );
    assert_kept_at_zero(&bench).await;
    bench.stop_engine().await;
}
