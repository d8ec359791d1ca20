//! Approvals that expire: `approvalExpiration` on a canary step that nobody approves rolls the
//! target back and keeps its dependents from starting; on a `beforeDeployment` gate it fails the
//! target with nothing deployed; on an `afterDeployment` gate the target stays deployed and its
//! dependents never start; approving in time proceeds. The approval row keeps the roles
//! (`requiresRoles`) and the expiry the API enforces.

use crate::support::{Bench, WAIT, plan, size_of};
use ferry_store::DeploymentId;
use ferry_store::approvals::{self, Approval, Decision};
use ferry_store::audit::{self, AuditFilter};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_svc_scheduler::metrics::SchedulerMetrics;
use ferry_testkit::eventually;

/// Staging with a canary whose approval expires after 2 s (the validator's minimum is 1 s),
/// then production.
const EXPIRING_STEP: &str = r#"
version: v1
application: hello-ferry
targets:
  staging:
    account: staging-cluster
    namespace: hello
    strategy: approved
  prod:
    account: prod-cluster
    namespace: hello
    constraints:
      dependsOn: ["staging"]
manifests:
  - path: manifests/app.yaml
strategies:
  approved:
    canary:
      steps:
        - setWeight: 25
        - pause:
            untilApproved: true
            requiresRoles: ["Release Manager", "SRE"]
            approvalExpiration:
              duration: 2
              unit: seconds
"#;

/// A target behind an expiring approval gate and a target that depends on it; `EXPIRY` (seconds)
/// is replaced per test.
const GATED: &str = r#"
version: v1
application: hello-ferry
targets:
  prod-us:
    account: prod-us-cluster
    namespace: hello
    constraints:
      beforeDeployment:
        - pause:
            untilApproved: true
            approvalExpiration: {duration: EXPIRY, unit: SECONDS}
  prod-us-canary-check:
    account: prod-us-cluster
    namespace: hello-check
    constraints:
      dependsOn: ["prod-us"]
manifests:
  - path: manifests/app.yaml
"#;

/// The approval the engine stored for `target`, once it exists.
async fn approval_of(bench: &Bench, id: DeploymentId, target: &str) -> Approval {
    eventually("the approval row", WAIT, || async {
        let rows: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM approvals WHERE tenant_id = $1 AND deployment_id = $2
               AND target_name = $3",
        )
        .bind(bench.tenant)
        .bind(id)
        .bind(target)
        .fetch_all(bench.store.pool())
        .await
        .unwrap();
        match rows.as_slice() {
            [one] => Some(
                approvals::get(&bench.store, bench.tenant, *one)
                    .await
                    .unwrap(),
            ),
            _ => None,
        }
    })
    .await
}

#[tokio::test]
async fn an_approval_nobody_gives_expires_and_rolls_the_canary_back() {
    let mut bench = Bench::new(&["staging-cluster", "prod-cluster"], &["hello"]).await;
    let metrics = SchedulerMetrics::default();
    let counting = metrics.clone();
    bench.start_engine_with(move |c| c.metrics = Some(counting));
    // The first version goes straight to 100% everywhere (no approval on a first deployment).
    bench
        .deploy_succeeded(&plan(EXPIRING_STEP, "hello-ferry:1.1.0"))
        .await;

    let v2 = bench
        .start_deployment(&plan(EXPIRING_STEP, "hello-ferry:1.2.0"))
        .await;
    let approval = approval_of(&bench, v2, "staging").await;
    assert_eq!(approval.requires_roles, vec!["Release Manager", "SRE"]);
    assert_eq!(approval.step_key, "step:1");
    let lasts = approval.expires_at.expect("an expiry") - approval.created_at;
    assert!(
        (1..=3).contains(&lasts.num_seconds()),
        "expires 2 s after it was asked for, not {lasts}"
    );

    // Nobody approves: the canary is rolled back, production never starts.
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let staging = bench.target(v2, "staging").await;
    assert_eq!(staging.status, TargetStatus::RolledBack);
    assert_eq!(
        staging.reason.as_deref(),
        Some("rolled back: approval expired after 2s")
    );
    let prod = bench.target(v2, "prod").await;
    assert_eq!(prod.status, TargetStatus::Skipped);
    assert_eq!(
        prod.reason.as_deref(),
        Some("not started: staging rolled_back")
    );
    let sets = bench.replica_sets("staging-cluster", "hello").await;
    assert_eq!(
        (size_of(&sets, ":1.1.0"), size_of(&sets, ":1.2.0")),
        (4, 0),
        "the old version back at full size, the canary gone: {sets:?}"
    );
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(size_of(&sets, ":1.2.0"), 0, "{sets:?}");

    // The scheduler's own actions are in the audit log, as the scheduler's...
    let filter = AuditFilter {
        actor: Some("scheduler".into()),
        ..AuditFilter::default()
    };
    let entries = audit::search(&bench.store, bench.tenant, &filter, None, 50)
        .await
        .unwrap();
    let actions: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            let target = e.details.0["target"].as_str().unwrap_or_default();
            (e.action.as_str(), e.resource_id.as_str(), target)
        })
        .collect();
    let deployment = v2.to_string();
    assert_eq!(
        actions,
        [
            ("target.rollback", deployment.as_str(), "staging"),
            ("approval.expire", deployment.as_str(), "staging"),
        ],
        "newest first: {entries:?}"
    );
    assert_eq!(
        entries[1].details.0["approvalId"],
        serde_json::json!(approval.id)
    );
    assert_eq!(
        entries[0].details.0["reason"],
        "rolled back: approval expired after 2s"
    );
    // ... and counted once their commits landed: two deployments started, one of each end;
    // the canary's 25% step succeeded, the approval step ended rolled back after ~2 s.
    eventually("the scheduler's counters", WAIT, || {
        let metrics = metrics.clone();
        async move {
            let seen = (
                metrics.started_count(),
                metrics.finished_count("succeeded"),
                metrics.finished_count("failed"),
                metrics.approvals_waited("expired"),
                metrics.steps_ended("setWeight", "succeeded"),
                metrics.steps_ended("approval", "rolled_back"),
                metrics.automatic_count("target.rollback"),
                metrics.automatic_count("approval.expire"),
            );
            (seen == (2, 1, 1, 1, 1, 1, 1, 1)).then_some(())
        }
    })
    .await;

    // The expired approval can no longer be given.
    let mut tx = bench.store.begin().await.unwrap();
    let late = approvals::decide(
        &mut tx,
        bench.tenant,
        approval.id,
        Decision::Approve,
        "rita@example.com",
    )
    .await;
    assert!(
        late.as_ref()
            .is_err_and(|e| e.to_string().contains("approval expired")),
        "{late:?}"
    );
    bench.stop_engine().await;
}

#[tokio::test]
async fn an_expired_gate_fails_the_target_with_nothing_deployed() {
    let mut bench = Bench::new(&["prod-us-cluster"], &["hello", "hello-check"]).await;
    bench.start_engine();
    let id = bench
        .start_deployment(&plan(&GATED.replace("EXPIRY", "2"), "hello-ferry:1.1.0"))
        .await;
    let approval = approval_of(&bench, id, "prod-us").await;
    assert!(approval.requires_roles.is_empty());
    assert_eq!(approval.step_key, "before:0");
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let target = bench.target(id, "prod-us").await;
    assert_eq!(target.status, TargetStatus::Failed);
    assert_eq!(
        target.reason.as_deref(),
        Some("before deployment: approval expired after 2s")
    );
    assert_eq!(
        bench.target(id, "prod-us-canary-check").await.status,
        TargetStatus::Skipped
    );
    for ns in ["hello", "hello-check"] {
        assert!(
            bench.replica_sets("prod-us-cluster", ns).await.is_empty(),
            "nothing deployed in {ns}"
        );
    }
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_gate_approved_before_it_expires_proceeds() {
    let mut bench = Bench::new(&["prod-us-cluster"], &["hello", "hello-check"]).await;
    bench.start_engine();
    // Long enough that a loaded machine still approves in time.
    let id = bench
        .start_deployment(&plan(&GATED.replace("EXPIRY", "120"), "hello-ferry:1.1.0"))
        .await;
    bench.decide(id, "prod-us", true).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let reasons = bench.reasons(id, "prod-us").await;
    assert!(
        reasons.contains(&"before deployment: approved by rita@example.com".to_string()),
        "{reasons:?}"
    );
    for ns in ["hello", "hello-check"] {
        let sets = bench.replica_sets("prod-us-cluster", ns).await;
        assert_eq!(size_of(&sets, ":1.1.0"), 4, "{ns}: {sets:?}");
    }
    bench.stop_engine().await;
}

#[tokio::test]
async fn an_expired_after_deployment_gate_keeps_the_target_deployed_and_cancels_dependents() {
    let mut bench = Bench::new(&["prod-us-cluster"], &["hello", "hello-check"]).await;
    bench.start_engine();
    let file = GATED
        .replace("beforeDeployment", "afterDeployment")
        .replace("EXPIRY", "2");
    let id = bench
        .start_deployment(&plan(&file, "hello-ferry:1.1.0"))
        .await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let target = bench.target(id, "prod-us").await;
    assert_eq!(target.status, TargetStatus::Failed);
    assert_eq!(
        target.reason.as_deref(),
        Some("after deployment: approval expired after 2s")
    );
    assert_eq!(
        bench.target(id, "prod-us-canary-check").await.status,
        TargetStatus::Skipped
    );
    // Deployed before the gate, and not rolled back by it.
    let sets = bench.replica_sets("prod-us-cluster", "hello").await;
    assert_eq!(size_of(&sets, ":1.1.0"), 4, "{sets:?}");
    assert!(
        bench
            .replica_sets("prod-us-cluster", "hello-check")
            .await
            .is_empty()
    );
    bench.stop_engine().await;
}
