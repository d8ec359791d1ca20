//! `deploymentConfig.ifDeploymentInProgress`: `enqueueOne` queues a second start, which begins by
//! itself when the running deployment ends, and a newer start supersedes the queued one;
//! `reject` (the default) refuses a second start and stores nothing.

use crate::support::{Bench, WAIT, plan};
use ferry_store::deployments::{self, Created, DeploymentStatus, OnBusy};
use ferry_store::targets::TargetStatus;
use ferry_store::{DeploymentId, targets};
use ferry_testkit::eventually;

/// One target gated by an approval, so a deployment stays in flight until the test decides.
fn gated(policy: &str) -> String {
    format!(
        r#"
version: v1
application: hello-ferry
deploymentConfig:
  ifDeploymentInProgress:
    strategy: {policy}
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
    constraints:
      beforeDeployment:
        - pause:
            untilApproved: true
manifests:
  - path: manifests/app.yaml
"#
    )
}

async fn status(bench: &Bench, id: DeploymentId) -> DeploymentStatus {
    deployments::get(&bench.store, bench.tenant, id)
        .await
        .unwrap()
        .status
}

#[tokio::test]
async fn enqueue_one_starts_the_newest_waiting_start_when_the_running_one_ends() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    bench.start_engine();
    let first = plan(&gated("enqueueOne"), "hello-ferry:1.1.0");
    let (d1, created) = bench.create(&first, OnBusy::EnqueueOne).await;
    assert!(matches!(created, Created::Started(_)), "{created:?}");
    bench
        .wait_target(d1, "dev", "d1 waiting for approval", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    // Every target waits on a person: the deployment as a whole is paused (and still active).
    eventually("d1 paused", WAIT, || async {
        (status(&bench, d1).await == DeploymentStatus::Paused).then_some(())
    })
    .await;

    // Two more starts while d1 runs: both queue, the newer one supersedes the older.
    let (d2, created) = bench
        .create(
            &plan(&gated("enqueueOne"), "hello-ferry:1.2.0"),
            OnBusy::EnqueueOne,
        )
        .await;
    assert!(
        matches!(&created, Created::Queued { superseded, .. } if superseded.is_empty()),
        "{created:?}"
    );
    let (d3, created) = bench
        .create(
            &plan(&gated("enqueueOne"), "hello-ferry:1.3.0"),
            OnBusy::EnqueueOne,
        )
        .await;
    match &created {
        Created::Queued { superseded, .. } => assert_eq!(superseded, &vec![d2]),
        other => panic!("d3 should queue: {other:?}"),
    }
    assert_eq!(status(&bench, d2).await, DeploymentStatus::Superseded);
    assert_eq!(status(&bench, d3).await, DeploymentStatus::Waiting);

    // d1 ends: d3 starts by itself (nobody sends it a start) and waits at its own gate.
    bench.decide(d1, "dev", true).await;
    assert_eq!(bench.wait_end(d1).await.status, DeploymentStatus::Succeeded);
    bench
        .wait_target(d3, "dev", "d3 started by itself", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    bench.decide(d3, "dev", true).await;
    let end = bench.wait_end(d3).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets("dev-cluster", "hello-dev").await;
    assert_eq!(sets.len(), 1, "only d3's version runs: {sets:?}");
    assert!(
        sets.values()
            .all(|(spec, _, image)| *spec == 4 && image.ends_with(":1.3.0"))
    );

    // The superseded deployment never ran.
    assert_eq!(status(&bench, d2).await, DeploymentStatus::Superseded);
    let d2_targets = targets::list(&bench.store, bench.tenant, d2).await.unwrap();
    assert!(
        d2_targets
            .iter()
            .all(|t| t.status == TargetStatus::Pending && t.started_at.is_none())
    );
    assert!(bench.reasons(d2, "dev").await.is_empty());
    bench.stop_engine().await;
}

#[tokio::test]
async fn reject_refuses_a_second_start_and_stores_nothing() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    bench.start_engine();
    // `reject` is the default: the policy line only repeats it.
    let p = plan(&gated("reject"), "hello-ferry:1.1.0");
    assert_eq!(
        p.deployment_config.if_deployment_in_progress,
        ferry_deploy::InProgressPolicy::Reject
    );
    let (d1, _) = bench.create(&p, OnBusy::Reject).await;
    bench
        .wait_target(d1, "dev", "d1 waiting for approval", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    let (d2, created) = bench
        .create(&plan(&gated("reject"), "hello-ferry:1.2.0"), OnBusy::Reject)
        .await;
    match created {
        Created::Busy { running } => assert_eq!(running, d1),
        other => panic!("a second start must be refused: {other:?}"),
    }
    let missing = deployments::get(&bench.store, bench.tenant, d2)
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    // The running one is untouched and still finishes.
    bench.decide(d1, "dev", true).await;
    assert_eq!(bench.wait_end(d1).await.status, DeploymentStatus::Succeeded);
    bench.stop_engine().await;
}
