//! The analysis step: the engine sends `analysis.requested` with what svc-canary needs (target,
//! account, the new ReplicaSet and other variables, the step's context); the test plays
//! svc-canary. Automatic mode acts on the verdict; manual modes wait for a person's
//! roll-forward or roll-back decision.

use crate::support::{Bench, WAIT, plan, size_of};
use crate::worker::{Worker, analysis_request, complete_analysis, decide_rollout};
use ferry_bus::{CanaryMessage, WorkQueue};
use ferry_store::deployments::{self, DeploymentStatus};
use ferry_store::targets::TargetStatus;
use ferry_testkit::eventually;

/// A canary judged by an analysis at 25%, with the rollout modes given.
fn analysed(roll_back: &str, roll_forward: &str) -> String {
    format!(
        r#"
version: v1
application: hello-ferry
context:
  owner: team-greetings
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: judged
manifests:
  - path: manifests/app.yaml
strategies:
  judged:
    canary:
      steps:
        - setWeight: 25
        - analysis:
            interval: 30
            units: seconds
            numberOfJudgmentRuns: 2
            rollBackMode: {roll_back}
            rollForwardMode: {roll_forward}
            context:
              slo: "99.5"
            queries: [error-rate]
        - setWeight: 100
analysis:
  defaultMetricProviderName: prometheus-prod
  queries:
    - name: error-rate
      upperLimit: 1
      queryTemplate: sum(rate(errors{{replicaset="{{{{ferry.replicaSetName}}}}"}}[1m]))
"#
    )
}

#[tokio::test]
async fn a_failed_analysis_rolls_the_canary_back() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello-prod"]).await;
    let mut svc_canary: Worker<CanaryMessage> = Worker::start(&bench, WorkQueue::Canary);
    bench.start_engine();
    let automatic = analysed("automatic", "automatic");
    bench
        .deploy_succeeded(&plan(&automatic, "hello-ferry:1.1.0"))
        .await;

    let v2 = bench
        .start_deployment(&plan(&automatic, "hello-ferry:1.2.0"))
        .await;
    let request = analysis_request(&mut svc_canary).await;
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    let canary_rs = sets
        .iter()
        .find(|(_, (_, _, image))| image.ends_with(":1.2.0"))
        .map(|(name, _)| name.clone())
        .expect("the canary runs while it is analysed");
    assert_eq!((size_of(&sets, ":1.2.0"), size_of(&sets, ":1.1.0")), (1, 3));
    assert_eq!(request.deployment_id, v2.as_uuid());
    assert_eq!(request.target, "prod");
    assert_eq!(
        (request.step_index, request.step_key.as_str()),
        (1, "step:1")
    );
    assert_eq!(request.account, "prod-cluster");
    assert_eq!(request.variables["replicaSetName"], canary_rs);
    assert_eq!(request.variables["applicationName"], "hello-ferry");
    assert_eq!(request.variables["environmentName"], "prod");
    assert_eq!(request.variables["accountName"], "prod-cluster");
    assert_eq!(request.variables["namespace"], "hello-prod");
    assert_eq!(request.variables["deploymentId"], v2.to_string());
    assert_eq!(request.context["slo"], "99.5");
    assert_eq!(request.context["owner"], "team-greetings");
    assert_eq!(
        bench.target(v2, "prod").await.reason.as_deref(),
        Some("waiting for analysis")
    );

    complete_analysis(&bench, &request, false, "error-rate 3.2 above 1").await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let prod = bench.target(v2, "prod").await;
    assert_eq!(prod.status, TargetStatus::RolledBack);
    assert_eq!(
        prod.reason.as_deref(),
        Some("rolled back: analysis failed: error-rate 3.2 above 1")
    );
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(size_of(&sets, ":1.1.0"), 4, "{sets:?}");
    svc_canary.stop().await;
    bench.stop_engine().await;
}

#[tokio::test]
async fn manual_modes_wait_for_a_person_to_roll_forward_or_back() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello-prod"]).await;
    let mut svc_canary: Worker<CanaryMessage> = Worker::start(&bench, WorkQueue::Canary);
    bench.start_engine();
    bench
        .deploy_succeeded(&plan(&analysed("manual", "manual"), "hello-ferry:1.1.0"))
        .await;

    // rollBackMode manual: a failed analysis waits; the person rolls forward anyway.
    let v2 = bench
        .start_deployment(&plan(&analysed("manual", "automatic"), "hello-ferry:1.2.0"))
        .await;
    let request = analysis_request(&mut svc_canary).await;
    complete_analysis(&bench, &request, false, "error-rate 1.4 above 1").await;
    let waiting = bench
        .wait_target(v2, "prod", "a person's decision", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    assert_eq!(
        waiting.reason.as_deref(),
        Some(
            "analysis failed: error-rate 1.4 above 1; waiting for a person to roll forward or back"
        )
    );
    eventually("the deployment paused", WAIT, || async {
        let d = deployments::get(&bench.store, bench.tenant, v2)
            .await
            .unwrap();
        (d.status == DeploymentStatus::Paused).then_some(())
    })
    .await;
    // Nothing moved while waiting: still 25%.
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!((size_of(&sets, ":1.2.0"), size_of(&sets, ":1.1.0")), (1, 3));
    decide_rollout(&bench, &request, true).await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let reasons = bench.reasons(v2, "prod").await;
    assert!(
        reasons.contains(
            &"analysis failed: error-rate 1.4 above 1; olga@example.com rolled forward".to_string()
        ),
        "{reasons:?}"
    );
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!((sets.len(), size_of(&sets, ":1.2.0")), (1, 4), "{sets:?}");

    // rollForwardMode manual: a passed analysis waits too; the person rolls back.
    let v3 = bench
        .start_deployment(&plan(&analysed("automatic", "manual"), "hello-ferry:1.3.0"))
        .await;
    let request = analysis_request(&mut svc_canary).await;
    complete_analysis(&bench, &request, true, "error-rate 0.2").await;
    bench
        .wait_target(v3, "prod", "a person's decision", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    decide_rollout(&bench, &request, false).await;
    let end = bench.wait_end(v3).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    assert_eq!(
        bench.target(v3, "prod").await.reason.as_deref(),
        Some("rolled back: analysis passed: error-rate 0.2; olga@example.com decided to roll back")
    );
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!((sets.len(), size_of(&sets, ":1.2.0")), (1, 4), "{sets:?}");
    svc_canary.stop().await;
    bench.stop_engine().await;
}

/// A canary whose analysis compares it with a baseline (a query with a `judge` block).
const COMPARED: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: compared
manifests:
  - path: manifests/app.yaml
strategies:
  compared:
    canary:
      steps:
        - setWeight: 50
        - analysis:
            interval: 30
            units: seconds
            numberOfJudgmentRuns: 1
            queries: [latency]
analysis:
  defaultMetricProviderName: prometheus-prod
  queries:
    - name: latency
      queryTemplate: latency{replicaset=~"{{ferry.replicaSetName}}|{{ferry.baselineReplicaSetName}}"}
      judge:
        direction: increase
"#;

#[tokio::test]
async fn a_comparison_runs_a_baseline_of_the_old_version_beside_the_canary() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello-prod"]).await;
    let mut svc_canary: Worker<CanaryMessage> = Worker::start(&bench, WorkQueue::Canary);
    bench.start_engine();
    bench
        .deploy_succeeded(&plan(COMPARED, "hello-ferry:1.1.0"))
        .await;
    let stable = bench
        .replica_sets("prod-cluster", "hello-prod")
        .await
        .into_keys()
        .next()
        .unwrap();

    let v2 = bench
        .start_deployment(&plan(COMPARED, "hello-ferry:1.2.0"))
        .await;
    let request = analysis_request(&mut svc_canary).await;
    let baseline = format!("{stable}-baseline");
    assert_eq!(request.variables["baselineReplicaSetName"], baseline);
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    // Canary 2, stable 2, and a baseline of the old version sized like the canary.
    assert_eq!(sets.len(), 3, "{sets:?}");
    assert_eq!(sets[&baseline].0, 2, "{sets:?}");
    assert!(sets[&baseline].2.ends_with(":1.1.0"), "{sets:?}");
    assert_eq!(sets[&stable].0, 2, "{sets:?}");
    assert_eq!(size_of(&sets, ":1.2.0"), 2, "{sets:?}");
    assert_eq!(request.variables["replicaSetName"], {
        sets.iter()
            .find(|(_, (_, _, image))| image.ends_with(":1.2.0"))
            .map(|(name, _)| name.clone())
            .unwrap()
    });

    complete_analysis(&bench, &request, true, "latency: Pass").await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!(sets.len(), 1, "baseline and old version gone: {sets:?}");
    assert_eq!(size_of(&sets, ":1.2.0"), 4);

    // A failed comparison rolls back and removes the baseline too.
    let v3 = bench
        .start_deployment(&plan(COMPARED, "hello-ferry:1.3.0"))
        .await;
    let request = analysis_request(&mut svc_canary).await;
    assert_eq!(
        bench.replica_sets("prod-cluster", "hello-prod").await.len(),
        3
    );
    complete_analysis(&bench, &request, false, "latency: High").await;
    assert_eq!(bench.wait_end(v3).await.status, DeploymentStatus::Failed);
    let sets = bench.replica_sets("prod-cluster", "hello-prod").await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(size_of(&sets, ":1.2.0"), 4, "{sets:?}");
    svc_canary.stop().await;
    bench.stop_engine().await;
}

/// Staging judged after it deployed, a person deciding on a failed verdict; production after.
const AFTER: &str = r#"
version: v1
application: hello-ferry
targets:
  staging:
    account: staging-cluster
    namespace: hello
    constraints:
      afterDeployment:
        - analysis:
            interval: 30
            units: seconds
            numberOfJudgmentRuns: 1
            rollBackMode: manual
            queries: [error-rate]
  prod:
    account: prod-cluster
    namespace: hello
    constraints:
      dependsOn: ["staging"]
manifests:
  - path: manifests/app.yaml
analysis:
  defaultMetricProviderName: prometheus-prod
  queries:
    - name: error-rate
      upperLimit: 1
      queryTemplate: sum(rate(errors[1m]))
"#;

#[tokio::test]
async fn a_person_deciding_against_an_after_deployment_analysis_cancels_the_dependents() {
    let mut bench = Bench::new(&["staging-cluster", "prod-cluster"], &["hello"]).await;
    let mut svc_canary: Worker<CanaryMessage> = Worker::start(&bench, WorkQueue::Canary);
    bench.start_engine();
    let id = bench
        .start_deployment(&plan(AFTER, "hello-ferry:1.1.0"))
        .await;
    let request = analysis_request(&mut svc_canary).await;
    assert_eq!(
        (request.target.as_str(), request.step_key.as_str()),
        ("staging", "after:0")
    );
    complete_analysis(&bench, &request, false, "error-rate 2 above 1").await;
    let waiting = bench
        .wait_target(id, "staging", "a person's decision", |t| {
            t.reason
                .as_deref()
                .is_some_and(|r| r.ends_with("roll forward or back"))
        })
        .await;
    assert_eq!(waiting.status, TargetStatus::Paused);
    decide_rollout(&bench, &request, false).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let staging = bench.target(id, "staging").await;
    assert_eq!(staging.status, TargetStatus::Failed);
    assert_eq!(
        staging.reason.as_deref(),
        Some(
            "after deployment: analysis failed: error-rate 2 above 1; \
             olga@example.com decided to roll back"
        )
    );
    // An afterDeployment failure keeps the target deployed and its dependents from starting.
    assert_eq!(
        size_of(
            &bench.replica_sets("staging-cluster", "hello").await,
            ":1.1.0"
        ),
        4
    );
    assert_eq!(bench.target(id, "prod").await.status, TargetStatus::Skipped);
    assert!(bench.replica_sets("prod-cluster", "hello").await.is_empty());
    svc_canary.stop().await;
    bench.stop_engine().await;
}

#[tokio::test]
async fn an_analysis_without_a_verdict_by_its_deadline_rolls_the_canary_back() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello-prod"]).await;
    let mut svc_canary: Worker<CanaryMessage> = Worker::start(&bench, WorkQueue::Canary);
    bench.start_engine_with(|c| c.analysis_grace = std::time::Duration::from_secs(2));
    let short = analysed("automatic", "automatic")
        .replace("interval: 30", "interval: 1")
        .replace("numberOfJudgmentRuns: 2", "numberOfJudgmentRuns: 1");
    bench
        .deploy_succeeded(&plan(&short, "hello-ferry:1.1.0"))
        .await;
    let v2 = bench
        .start_deployment(&plan(&short, "hello-ferry:1.2.0"))
        .await;
    // The request arrives, and no verdict ever comes back (a lost worker).
    analysis_request(&mut svc_canary).await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let prod = bench.target(v2, "prod").await;
    assert_eq!(prod.status, TargetStatus::RolledBack);
    let reason = prod.reason.unwrap_or_default();
    assert!(
        reason.starts_with("rolled back: analysis failed: no verdict by its deadline "),
        "{reason}"
    );
    svc_canary.stop().await;
    bench.stop_engine().await;
}
