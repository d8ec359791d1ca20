//! Stale wake-ups: a wake-up that occurred before the deployment's last completed pass began is
//! acked without a pass (that pass saw everything it could signal), and a newer one runs one.
//! Under load this drops the second of two wake-ups queued for one wait (the readiness watch's
//! and the tick's).

use crate::support::{Bench, WAIT, plan};
use ferry_bus::messages::DeploymentStarted;
use ferry_bus::{Envelope, SchedulerMessage};
use ferry_store::DeploymentId;
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_svc_scheduler::metrics::SchedulerMetrics;
use ferry_testkit::eventually;
use std::time::Duration;

const GATED: &str = r#"
version: v1
application: hello-ferry
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
"#;

fn wake_up(bench: &Bench, id: DeploymentId, ago: chrono::Duration) -> Envelope<SchedulerMessage> {
    let mut envelope = Envelope::new(
        bench.tenant.as_uuid(),
        SchedulerMessage::DeploymentStarted(DeploymentStarted {
            deployment_id: id.as_uuid(),
        }),
    );
    envelope.occurred_at -= ago;
    envelope
}

#[tokio::test]
async fn a_wake_up_older_than_the_last_pass_is_acked_without_one() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    let metrics = SchedulerMetrics::default();
    let counted = metrics.clone();
    bench.start_engine_with(|config| {
        // No tick wakes the deployment behind the test's back.
        config.tick = Duration::from_secs(3600);
        config.metrics = Some(counted);
    });
    let id = bench
        .start_deployment(&plan(GATED, "hello-ferry:1.1.0"))
        .await;
    bench
        .wait_target(id, "dev", "the approval gate", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    // Approved in the database only: nothing wakes the deployment yet.
    bench.approve_without_message(id, "dev").await;

    // An hour old, before the pass that paused the target: acked, and no pass looks again.
    bench
        .send_envelope(wake_up(&bench, id, chrono::Duration::hours(1)))
        .await;
    eventually("the stale wake-up acked", WAIT, || async {
        (metrics.stale_wakes() == 1).then_some(())
    })
    .await;
    assert_eq!(
        bench.target(id, "dev").await.status,
        TargetStatus::Paused,
        "no pass ran, so none saw the approval"
    );

    // A wake-up from now runs a pass, which finds the approval and deploys.
    bench
        .send_envelope(wake_up(&bench, id, chrono::Duration::zero()))
        .await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    assert_eq!(metrics.stale_wakes(), 1);
    bench.stop_engine().await;
}
