//! `kill -9` of the only scheduler replica in the middle of a canary: a replica started after it
//! finishes the deployment from what Postgres and RabbitMQ kept, with no step applied twice.

use crate::app::{self, CLUSTERS};
use ferry_stack_tests::api::Api;
use ferry_stack_tests::{Stack, StackOptions};
use ferry_store::DeploymentId;
use ferry_store::deployments::{self, DeploymentStatus};
use ferry_store::events::{self, StepStatus};
use ferry_testkit::eventually;
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

async fn status(stack: &Stack, id: DeploymentId) -> DeploymentStatus {
    deployments::get(&stack.store, stack.tenant, id)
        .await
        .expect("the deployment")
        .status
}

/// Starts `version`, approves prod's gates as they come, and waits until the deployment ends.
async fn approve_until_done(stack: &Stack, api: &Api, id: &str) -> DeploymentStatus {
    let deployment: DeploymentId = id.parse().expect("a deployment id");
    eventually("the deployment to end", WAIT, || async {
        let status = status(stack, deployment).await;
        if !status.is_terminal() {
            // 409 until prod waits on an approval; then this decides it.
            let _ = api.approve(id, "prod").await;
            return None;
        }
        Some(status)
    })
    .await
}

async fn start(stack: &Stack, api: &Api, version: &str) -> String {
    start_with(stack, api, version, app::DEPLOY_FILE).await
}

async fn start_with(stack: &Stack, api: &Api, version: &str, deploy_file: &str) -> String {
    let file = app::write_with(stack, version, deploy_file);
    let (code, body) = api.start(&file, &["manifests/app.yaml"]).await;
    assert_eq!(code, 201, "start {version}: {body}");
    body["id"].as_str().expect("an id").to_string()
}

#[tokio::test]
async fn a_killed_scheduler_replica_leaves_nothing_undone_or_done_twice() {
    let mut stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 1,
        schedulers: 1,
        pod_ready_delay: Duration::from_secs(2),
        scheduler_tick_secs: 1,
    })
    .await;
    let api = Api::sign_in(&stack.api_url, &stack.admin).await;

    let v1 = start(&stack, &api, "1.0.0").await;
    let ended = approve_until_done(&stack, &api, &v1).await;
    assert_eq!(ended, DeploymentStatus::Succeeded, "{}", stack.logs());

    let v2 = start(&stack, &api, "2.0.0").await;
    let v2_id: DeploymentId = v2.parse().unwrap();
    // Let the only replica get prod into its canary: gate approved, 25% reached.
    eventually("prod's canary at 25%", WAIT, || async {
        let _ = api.approve(&v2, "prod").await;
        let history = events::step_history(&stack.store, stack.tenant, v2_id)
            .await
            .expect("history");
        history
            .iter()
            .any(|s| {
                s.target_name == "prod"
                    && s.status == StepStatus::Succeeded
                    && s.step_index == Some(0)
            })
            .then_some(())
    })
    .await;

    // A new replica joins; the old one dies without a word, mid-canary.
    stack.start_scheduler().await;
    let killed = stack.kill_9_scheduler(0).await;
    assert!(!killed.status.success(), "SIGKILL ends the process");

    let ended = approve_until_done(&stack, &api, &v2).await;
    assert_eq!(ended, DeploymentStatus::Succeeded, "{}", stack.logs());

    // Only 2.0.0 runs in prod, at full size.
    let prod = app::replica_sets(&stack, "prod-cluster", "hello-prod").await;
    assert_eq!(
        prod,
        [("registry.example/hello-stack:2.0.0".to_string(), 4, 4)],
        "prod's ReplicaSets"
    );
    // Each canary step succeeded exactly once.
    let history = events::step_history(&stack.store, stack.tenant, v2_id)
        .await
        .expect("history");
    let mut succeeded: HashMap<i32, usize> = HashMap::new();
    for step in history.iter().filter(|s| s.target_name == "prod") {
        if let (StepStatus::Succeeded, Some(index)) = (step.status, step.step_index) {
            *succeeded.entry(index).or_default() += 1;
        }
    }
    let reasons: Vec<_> = history
        .iter()
        .map(|s| {
            format!(
                "{} {:?} {:?} {}",
                s.target_name, s.step_index, s.status, s.reason
            )
        })
        .collect();
    assert_eq!(
        succeeded,
        HashMap::from([(0, 1), (1, 1), (2, 1), (3, 1)]),
        "each step succeeds once:\n{}",
        reasons.join("\n")
    );
}

/// One target behind a timed pause of three seconds.
const PAUSED: &str = r#"version: v1
application: hello-stack
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    constraints:
      beforeDeployment:
        - pause:
            duration: 3
            unit: seconds
manifests:
  - path: manifests/app.yaml
"#;

#[tokio::test]
async fn a_timed_pause_fires_after_every_scheduler_replica_was_killed() {
    let mut stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 1,
        schedulers: 2,
        pod_ready_delay: Duration::from_millis(200),
        scheduler_tick_secs: 1,
    })
    .await;
    let api = Api::sign_in(&stack.api_url, &stack.admin).await;
    let id = start_with(&stack, &api, "1.0.0", PAUSED).await;
    let deployment: DeploymentId = id.parse().unwrap();
    eventually("prod to pause", WAIT, || async {
        (status(&stack, deployment).await == DeploymentStatus::Paused).then_some(())
    })
    .await;

    // Every replica dies while the pause runs; nothing runs the engine until the pause is over.
    for replica in [0, 1] {
        stack.kill_9_scheduler(replica).await;
    }
    let due = std::time::Instant::now() + Duration::from_secs(3);
    eventually("the pause to be over", WAIT, || async {
        (std::time::Instant::now() >= due).then_some(())
    })
    .await;
    assert_eq!(status(&stack, deployment).await, DeploymentStatus::Paused);

    // A new replica finds the due timer in Postgres and carries on.
    stack.start_scheduler().await;
    let ended = eventually("the deployment to end", WAIT, || async {
        let s = status(&stack, deployment).await;
        s.is_terminal().then_some(s)
    })
    .await;
    assert_eq!(ended, DeploymentStatus::Succeeded, "{}", stack.logs());
    let prod = app::replica_sets(&stack, "prod-cluster", "hello-prod").await;
    assert_eq!(
        prod,
        [("registry.example/hello-stack:1.0.0".to_string(), 4, 4)]
    );
}
