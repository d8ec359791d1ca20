//! Stale wake-ups: a wake-up that occurred before the deployment's last completed pass began is
//! acked without a pass (that pass saw everything it could signal) while a readiness tick is
//! pending, which wakes the deployment anyway; without one it runs its pass, since a sender's
//! clock far off could make a wake-up look older than it is. A newer one always runs a pass.
//! Under load this drops the second of two wake-ups queued for one wait (the readiness watch's
//! and the tick's).

use crate::support::{Bench, WAIT, pause_gated};
use ferry_bus::messages::DeploymentStarted;
use ferry_bus::{Envelope, SchedulerMessage};
use ferry_store::DeploymentId;
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_store::timers::{self, KIND_TICK, NewTimer};
use ferry_svc_scheduler::metrics::SchedulerMetrics;
use ferry_testkit::eventually;
use std::time::Duration;

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

/// Writes a readiness tick an hour away, as the engine does for a target waiting for pods.
async fn pending_tick(bench: &Bench, id: DeploymentId) -> uuid::Uuid {
    let mut tx = bench.store.begin().await.unwrap();
    let tick = NewTimer {
        target: Some("dev".into()),
        kind: KIND_TICK.into(),
        key: "dev:tick:test".into(),
        fire_at: chrono::Utc::now() + chrono::Duration::hours(1),
        payload: serde_json::json!({}),
    };
    let timer = timers::schedule(&mut tx, bench.tenant, id, &tick)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    timer.id
}

#[tokio::test]
async fn a_wake_up_older_than_the_last_pass_is_acked_without_one_while_a_tick_is_pending() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    let metrics = SchedulerMetrics::default();
    let counted = metrics.clone();
    bench.start_engine_with(|config| {
        // No tick of the engine's own wakes the deployment behind the test's back.
        config.tick = Duration::from_secs(3600);
        config.metrics = Some(counted);
    });
    let id = bench
        .start_deployment(&pause_gated("untilApproved: true", "hello-ferry:1.1.0"))
        .await;
    bench
        .wait_target(id, "dev", "the approval gate", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    // Approved in the database only: nothing wakes the deployment yet.
    bench.approve_without_message(id, "dev").await;
    let tick = pending_tick(&bench, id).await;

    // An hour old, before the pass that paused the target, with a tick pending: acked, and no
    // pass looks again.
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

    // Without the tick nothing else would wake the deployment: the same old wake-up runs its
    // pass, which finds the approval and deploys.
    let mut tx = bench.store.begin().await.unwrap();
    timers::cancel(&mut tx, bench.tenant, tick).await.unwrap();
    tx.commit().await.unwrap();
    bench
        .send_envelope(wake_up(&bench, id, chrono::Duration::hours(1)))
        .await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    assert_eq!(metrics.stale_wakes(), 1);
    bench.stop_engine().await;
}
