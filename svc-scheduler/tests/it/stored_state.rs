//! The stored target state is typed and versioned: a record this scheduler cannot decode fails
//! the target with a reason naming what did not decode (never a silent restart from defaults),
//! a record written before versions existed still runs, the database refuses unknown phases,
//! and a stored plan that does not decode fails the deployment with the reason.

use crate::support::{Bench, pause_gated};
use ferry_bus::SchedulerMessage;
use ferry_bus::messages::DeploymentStarted;
use ferry_store::DeploymentId;
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::{Target, TargetPhase, TargetStatus};

async fn paused_target(bench: &mut Bench, pause: &str) -> (DeploymentId, Target) {
    bench.start_engine();
    let id = bench
        .start_deployment(&pause_gated(pause, "hello-ferry:1.1.0"))
        .await;
    let paused = bench
        .wait_target(id, "dev", "the pause", |t| t.status == TargetStatus::Paused)
        .await;
    bench.stop_engine().await;
    (id, paused)
}

async fn set_observed(bench: &Bench, id: DeploymentId, observed: serde_json::Value) {
    sqlx::query(
        "UPDATE targets SET observed = $3 WHERE tenant_id = $1 AND deployment_id = $2 AND name = 'dev'",
    )
    .bind(bench.tenant.as_uuid())
    .bind(id.as_uuid())
    .bind(sqlx::types::Json(observed))
    .execute(&bench.db.pool)
    .await
    .unwrap();
}

async fn wake(bench: &Bench, id: DeploymentId) {
    bench
        .send(SchedulerMessage::DeploymentStarted(DeploymentStarted {
            deployment_id: id.as_uuid(),
        }))
        .await;
}

#[tokio::test]
async fn an_undecodable_record_fails_the_target_with_the_reason_and_is_kept() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    let (id, _) = paused_target(&mut bench, "duration: 1\n            unit: hours").await;
    let garbage = serde_json::json!({"v": 9, "gates": []});
    set_observed(&bench, id, garbage.clone()).await;

    bench.start_engine();
    wake(&bench, id).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let reason = end.reason.unwrap_or_default();
    assert!(reason.contains("schema version 9"), "{reason}");
    let target = bench.target(id, "dev").await;
    assert_eq!(target.status, TargetStatus::Failed);
    assert_eq!(target.phase, Some(TargetPhase::Done));
    assert_eq!(
        target.observed, garbage,
        "the record stays for people to read"
    );
    let reasons = bench.reasons(id, "dev").await;
    assert!(
        reasons
            .last()
            .is_some_and(|r| r.contains("does not decode")),
        "{reasons:?}"
    );
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_record_without_a_version_runs_on_and_is_rewritten_with_one() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    let (id, paused) = paused_target(&mut bench, "duration: 3\n            unit: seconds").await;
    // The record as the scheduler wrote it before versions: the same fields without `v`.
    let mut v1 = paused.observed.clone();
    assert_eq!(v1["v"], 2, "{v1}");
    v1.as_object_mut().unwrap().remove("v");
    set_observed(&bench, id, v1).await;

    // The pause's timer fires and the deployment runs to its end from the old record.
    bench.start_engine();
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let done = bench.target(id, "dev").await;
    assert_eq!(done.observed["v"], 2, "rewritten with its version");
    bench.stop_engine().await;
}

#[tokio::test]
async fn the_database_refuses_a_phase_the_engine_does_not_know() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    let (id, _) = paused_target(&mut bench, "duration: 1\n            unit: hours").await;
    let refused = sqlx::query(
        "UPDATE targets SET phase = 'canarying' WHERE tenant_id = $1 AND deployment_id = $2",
    )
    .bind(bench.tenant.as_uuid())
    .bind(id.as_uuid())
    .execute(&bench.db.pool)
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("targets_phase_known"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_plan_that_does_not_decode_fails_the_deployment_with_the_reason() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    let id = bench
        .start_deployment(&pause_gated(
            "duration: 1\n            unit: hours",
            "hello-ferry:1.1.0",
        ))
        .await;
    sqlx::query("UPDATE deployments SET plan = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(bench.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(sqlx::types::Json(serde_json::json!({"targets": "nope"})))
        .execute(&bench.db.pool)
        .await
        .unwrap();
    bench.start_engine();
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let reason = end.reason.unwrap_or_default();
    assert!(
        reason.starts_with("the stored plan (schema version 1) does not decode: "),
        "{reason}"
    );
    let target = bench.target(id, "dev").await;
    assert_eq!(target.status, TargetStatus::Failed);
    bench.stop_engine().await;
}
