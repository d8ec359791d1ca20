//! Durable timers: a timed pause fires after the engine that started it stopped and another
//! instance took over, because the timer is a row in Postgres.

use crate::support::{Bench, pause_gated};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_store::timers;

#[tokio::test]
async fn a_timed_pause_fires_after_the_engine_restarts() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    bench.start_engine();
    let id = bench
        .start_deployment(&pause_gated(
            "duration: 2\n            unit: seconds",
            "hello-ferry:1.1.0",
        ))
        .await;
    let paused = bench
        .wait_target(id, "dev", "the pause", |t| t.status == TargetStatus::Paused)
        .await;
    assert_eq!(
        paused.reason.as_deref(),
        Some("before deployment: paused for 2s")
    );
    bench.stop_engine().await;

    let pending = timers::list_pending(&bench.store, bench.tenant, id)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].kind, "reconcile");
    assert!(
        bench
            .replica_sets("dev-cluster", "hello-dev")
            .await
            .is_empty(),
        "nothing deployed while paused"
    );

    bench.start_engine();
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    assert!(end.ended_at.unwrap() >= pending[0].fire_at);
    let reasons = bench.reasons(id, "dev").await;
    assert!(
        reasons.contains(&"before deployment: pause of 2s ended".to_string()),
        "{reasons:?}"
    );
    bench.stop_engine().await;
}
