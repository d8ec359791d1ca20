//! No stuck deployment: a reconcile that keeps failing (here the simulator answers every request
//! with an error, as a cluster erroring or an agent away would) is parked in a durable retry timer
//! instead of the dead-letter queue, and the deployment resumes when the cluster answers again;
//! one failing for too long fails its deployment and frees the application's slot. And a broker
//! connection dropped mid-deployment costs a pause, not the deployment.

use crate::support::{Bench, WAIT, plan};
use ferry_kube_sim::Faults;
use ferry_store::deployments::{Created, DeploymentStatus, OnBusy};
use ferry_store::targets::TargetStatus;
use ferry_svc_scheduler::retry::RetryPolicy;
use ferry_testkit::eventually;
use std::time::Duration;

const ONE_TARGET: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello
manifests:
  - path: manifests/app.yaml
"#;

fn erroring() -> Faults {
    Faults {
        error_rate: 1.0,
        ..Faults::default()
    }
}

async fn retry_timers(bench: &Bench) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM timers WHERE kind = 'retry'")
        .fetch_one(&bench.db.pool)
        .await
        .unwrap()
}

/// Whether the scheduler's dead-letter queue holds anything (a peek: the message is not acked
/// and returns to the queue when the channel closes).
async fn dead_lettered(bench: &Bench) -> bool {
    let queue = bench
        .bus
        .topology()
        .dead_letter_queue(ferry_bus::WorkQueue::Scheduler);
    let channel = bench.bus.channel().await.unwrap();
    let got = channel
        .basic_get(queue.as_str().into(), Default::default())
        .await
        .unwrap();
    let _ = channel.close(200, "peeked".into()).await;
    got.is_some()
}

#[tokio::test]
async fn a_cluster_erroring_for_a_while_parks_the_work_and_the_deployment_resumes() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello"]).await;
    bench.sim("prod-cluster").set_faults(erroring());
    bench.start_engine_with(|c| {
        c.retry_delay = Duration::from_millis(100);
        c.retry = RetryPolicy {
            park_at_attempt: 2,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(1),
            give_up_after: Duration::from_secs(3600),
        };
    });
    let id = bench
        .start_deployment(&plan(ONE_TARGET, "hello-ferry:v1"))
        .await;

    // The quick attempts run out; a durable timer takes over, round after round.
    eventually("two rounds of durable retries", WAIT, || async {
        (retry_timers(&bench).await >= 2).then_some(())
    })
    .await;
    let deployment = ferry_store::deployments::get(&bench.store, bench.tenant, id)
        .await
        .unwrap();
    assert!(deployment.status.is_active(), "{:?}", deployment.status);
    assert!(!dead_lettered(&bench).await, "nothing was dead-lettered");

    // The cluster answers again: the next round goes through and the deployment finishes.
    bench.sim("prod-cluster").set_faults(Faults::default());
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    assert!(!dead_lettered(&bench).await);
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_cluster_that_never_answers_fails_the_deployment_and_frees_the_slot() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello"]).await;
    bench.sim("prod-cluster").set_faults(erroring());
    bench.start_engine_with(|c| {
        c.retry_delay = Duration::from_millis(100);
        c.retry = RetryPolicy {
            park_at_attempt: 2,
            initial: Duration::from_millis(300),
            max: Duration::from_millis(500),
            give_up_after: Duration::from_secs(2),
        };
    });
    let id = bench
        .start_deployment(&plan(ONE_TARGET, "hello-ferry:v1"))
        .await;
    // Queued behind it (enqueueOne): it starts once the slot is free.
    let (next, created) = bench
        .create(&plan(ONE_TARGET, "hello-ferry:v2"), OnBusy::EnqueueOne)
        .await;
    assert!(matches!(created, Created::Queued { .. }), "{created:?}");

    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let reason = end.reason.unwrap_or_default();
    assert!(reason.contains("gave up after"), "{reason}");
    let prod = bench.target(id, "prod").await;
    assert_eq!(prod.status, TargetStatus::Failed);
    assert!(!dead_lettered(&bench).await);

    // The slot passed on: the queued deployment runs, and succeeds once the cluster is back.
    bench.sim("prod-cluster").set_faults(Faults::default());
    let end = bench.wait_end(next).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_broker_connection_dropped_mid_deployment_costs_a_pause_not_the_deployment() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello"]).await;
    bench.start_engine();
    let id = bench
        .start_deployment(&plan(ONE_TARGET, "hello-ferry:v1"))
        .await;
    bench
        .wait_target(id, "prod", "the target running", |t| {
            t.status == TargetStatus::Running
        })
        .await;
    // Consumer, relay and timer loop all use this connection.
    assert!(ferry_testkit::amqp::drop_connections(&bench.bus_name).await >= 1);
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    // Each step of the history exactly once.
    let reasons = bench.reasons(id, "prod").await;
    let mut unique = reasons.clone();
    unique.dedup();
    assert_eq!(reasons, unique, "no step recorded twice");
    bench.stop_engine().await;
}
