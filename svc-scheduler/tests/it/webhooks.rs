//! `runWebhook`: the engine sends `webhook.requested` with the rendered call, target, account,
//! agent and single-use callback; the test plays svc-webhook. Success moves on; failure of a
//! canary step rolls the target back and keeps its dependents from starting; a missing secret
//! fails the step before anything is sent.

use crate::support::{Bench, example, plan, size_of};
use crate::worker::{Worker, complete_webhook, requests_written, webhook_request};
use ferry_bus::messages::{NetworkMode, WebhookCompleted};
use ferry_bus::{Envelope, SchedulerMessage, WebhookMessage, WorkQueue, outbox};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_store::{callbacks, secrets};
use ferry_svc_scheduler::DEFAULT_API_URL;

/// Stores a tenant secret (its sealed bytes; the engine only checks it exists).
async fn put_secret(bench: &Bench, name: &str) {
    let mut tx = bench.store.begin().await.unwrap();
    secrets::put(
        &mut tx,
        bench.tenant,
        name,
        b"sealed",
        b"nonce-123456",
        "master-v1",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn webhook_requests_carry_the_rendered_call_and_a_working_callback() {
    let mut bench = Bench::new(
        &["staging-cluster", "prod-us-cluster"],
        &["hello-staging", "hello-prod"],
    )
    .await;
    put_secret(&bench, "ci_token").await;
    let mut svc_webhook: Worker<WebhookMessage> = Worker::start(&bench, WorkQueue::Webhook);
    bench.start_engine();
    let id = bench
        .start_deployment(&plan(&example("deploy-analysis.yml"), "hello-ferry:1.1.0"))
        .await;

    // Staging deployed, then its afterDeployment webhook is asked for.
    let request = webhook_request(&mut svc_webhook).await;
    let staging_rs = bench
        .replica_sets("staging-cluster", "hello-staging")
        .await
        .into_keys()
        .next()
        .expect("staging deployed before its afterDeployment webhook");
    assert_eq!(request.deployment_id, id.as_uuid());
    assert_eq!(request.webhook_name, "integration-tests");
    assert_eq!(request.target.as_deref(), Some("staging"));
    assert_eq!(request.step_key, "after:0");
    assert_eq!(request.account, "staging-cluster");
    let call = &request.call;
    assert_eq!(call.method, "POST");
    assert_eq!(
        call.uri,
        "http://ci.internal.example/jobs/smoke?env=staging"
    );
    assert_eq!(call.network_mode, NetworkMode::RemoteNetworkAgent);
    assert_eq!(call.agent_identifier.as_deref(), Some("staging-cluster"));
    assert_eq!(call.retry_count, 3);
    // The secret stays a reference for svc-webhook to resolve when it sends.
    assert_eq!(
        call.headers,
        vec![
            (
                "Authorization".to_string(),
                "Bearer {{secrets.ci_token}}".to_string()
            ),
            ("Content-Type".to_string(), "application/json".to_string()),
        ]
    );
    let callback_uri = call
        .callback_uri
        .clone()
        .expect("the step waits for a callback");
    let prefix = format!("{DEFAULT_API_URL}/v1/deployments/{id}/webhooks/");
    let token = callback_uri
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{callback_uri} starts with {prefix}"));
    assert_eq!(token.len(), 64);
    // The folded YAML keeps the line break before its more-indented second line.
    assert_eq!(
        call.body.as_deref(),
        Some(
            format!(
                "{{\"callbackUri\": \"{callback_uri}/callback\", \"suite\": \"smoke\",\n \
                 \"owner\": \"team-greetings\", \"replicaSet\": \"{staging_rs}\"}}"
            )
            .as_str()
        )
    );
    assert_eq!(request.context["suite"], "smoke");
    assert_eq!(request.context["owner"], "team-greetings");
    // The callback row is the run: svc-api reports a callback by its id, found by the token.
    let row = callbacks::get(&bench.store, bench.tenant, request.webhook_id)
        .await
        .unwrap();
    assert_eq!(row.deployment_id, id);
    assert_eq!(row.target_name.as_deref(), Some("staging"));
    assert!(row.used_at.is_none());
    let hash = callbacks::token_hash(token);
    let stored: String =
        sqlx::query_scalar("SELECT token_hash FROM webhook_callbacks WHERE id = $1")
            .bind(request.webhook_id)
            .fetch_one(&bench.db.pool)
            .await
            .unwrap();
    assert_eq!(stored, hash);
    let waiting = bench.target(id, "staging").await;
    assert_eq!(waiting.status, TargetStatus::Paused);
    assert_eq!(
        waiting.reason.as_deref(),
        Some("after deployment: waiting for webhook \"integration-tests\"")
    );
    assert!(
        bench
            .replica_sets("prod-us-cluster", "hello-prod")
            .await
            .is_empty()
    );

    // The CI system calls back as svc-api records it: the token finds the callback, whose id
    // is the run the engine waits for.
    let mut tx = bench.store.begin().await.unwrap();
    let details = serde_json::json!({"mdMessage": "42 tests passed"});
    let used = callbacks::complete(&mut tx, bench.tenant, &hash, true, &details)
        .await
        .unwrap();
    let completed = SchedulerMessage::WebhookCompleted(WebhookCompleted {
        deployment_id: used.deployment_id.as_uuid(),
        target: used.target_name.clone(),
        step_index: None,
        webhook_id: used.id,
        success: true,
        reason: Some("42 tests passed".into()),
    });
    outbox::enqueue(&mut tx, &Envelope::new(bench.tenant.as_uuid(), completed))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Prod (first deployment: straight to 100%) then its notify webhook, without callback.
    let notify = webhook_request(&mut svc_webhook).await;
    assert_eq!(notify.webhook_name, "notify");
    assert_eq!(notify.target.as_deref(), Some("prod"));
    assert_eq!(notify.account, "prod-us-cluster");
    assert_eq!(notify.call.callback_uri, None);
    assert_eq!(notify.call.network_mode, NetworkMode::Direct);
    assert_eq!(notify.call.agent_identifier, None);
    assert_eq!(
        notify.call.body.as_deref(),
        Some("{\"text\": \"hello-ferry reached prod\"}")
    );
    assert!(
        callbacks::get(&bench.store, bench.tenant, notify.webhook_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    complete_webhook(&bench, &notify, true, "sent").await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let reasons = bench.reasons(id, "staging").await;
    assert!(
        reasons.contains(
            &"after deployment: webhook \"integration-tests\" passed: 42 tests passed".to_string()
        ),
        "{reasons:?}"
    );
    svc_webhook.stop().await;
    bench.stop_engine().await;
}

/// Staging then production; staging's canary calls a webhook between 50% and 100%.
const SMOKE: &str = r#"
version: v1
application: hello-ferry
targets:
  staging:
    account: staging-cluster
    namespace: hello
    strategy: smoke-tested
  prod:
    account: prod-cluster
    namespace: hello
    strategy: smoke-tested
    constraints:
      dependsOn: ["staging"]
manifests:
  - path: manifests/app.yaml
strategies:
  smoke-tested:
    canary:
      steps:
        - setWeight: 50
        - runWebhook:
            name: smoke
webhooks:
  - name: smoke
    uriTemplate: https://ci.example/smoke/{{ferry.environmentName}}
    headers:
      - key: Authorization
        value: Bearer {{secrets.smoke_token}}
"#;

#[tokio::test]
async fn a_failed_webhook_step_rolls_back_and_dependents_never_start() {
    let mut bench = Bench::new(&["staging-cluster", "prod-cluster"], &["hello"]).await;
    put_secret(&bench, "smoke_token").await;
    let mut svc_webhook: Worker<WebhookMessage> = Worker::start(&bench, WorkQueue::Webhook);
    bench.start_engine();
    // The first deployment goes straight to 100%: strategy steps (and the webhook) are skipped.
    bench
        .deploy_succeeded(&plan(SMOKE, "hello-ferry:1.1.0"))
        .await;
    assert_eq!(
        requests_written(&bench, "webhook").await,
        0,
        "no webhook on a first deployment"
    );

    let v2 = bench
        .start_deployment(&plan(SMOKE, "hello-ferry:1.2.0"))
        .await;
    let request = webhook_request(&mut svc_webhook).await;
    assert_eq!(request.target.as_deref(), Some("staging"));
    assert_eq!(
        (request.step_key.as_str(), request.step_index),
        ("step:1", Some(1))
    );
    assert_eq!(request.call.uri, "https://ci.example/smoke/staging");
    // While the webhook runs the canary serves half the pods.
    let sets = bench.replica_sets("staging-cluster", "hello").await;
    assert_eq!(
        (size_of(&sets, ":1.2.0"), size_of(&sets, ":1.1.0")),
        (2, 2),
        "{sets:?}"
    );

    complete_webhook(&bench, &request, false, "3 smoke tests failed").await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let staging = bench.target(v2, "staging").await;
    assert_eq!(staging.status, TargetStatus::RolledBack);
    assert_eq!(
        staging.reason.as_deref(),
        Some("rolled back: webhook \"smoke\" failed: 3 smoke tests failed")
    );
    let prod = bench.target(v2, "prod").await;
    assert_eq!(prod.status, TargetStatus::Skipped);
    assert_eq!(
        prod.reason.as_deref(),
        Some("not started: staging rolled_back")
    );
    for account in ["staging-cluster", "prod-cluster"] {
        let sets = bench.replica_sets(account, "hello").await;
        assert_eq!(sets.len(), 1, "{account}: {sets:?}");
        assert_eq!(size_of(&sets, ":1.1.0"), 4, "{account}: {sets:?}");
    }
    assert_eq!(
        requests_written(&bench, "webhook").await,
        1,
        "prod never called its webhook"
    );
    svc_webhook.stop().await;
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_webhook_naming_a_missing_secret_fails_before_anything_is_sent() {
    let mut bench = Bench::new(&["staging-cluster", "prod-cluster"], &["hello"]).await;
    bench.start_engine();
    bench
        .deploy_succeeded(&plan(SMOKE, "hello-ferry:1.1.0"))
        .await;
    let v2 = bench
        .start_deployment(&plan(SMOKE, "hello-ferry:1.2.0"))
        .await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    assert_eq!(
        bench.target(v2, "staging").await.reason.as_deref(),
        Some(
            "rolled back: webhook \"smoke\": secret \"smoke_token\" does not exist in this tenant"
        )
    );
    assert_eq!(
        requests_written(&bench, "webhook").await,
        0,
        "nothing was sent"
    );
    bench.stop_engine().await;
}

/// One target whose deployment is gated by a webhook that must call back.
const GATED: &str = r#"
version: v1
application: hello-ferry
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
    constraints:
      beforeDeployment:
        - runWebhook:
            name: change-ticket
manifests:
  - path: manifests/app.yaml
webhooks:
  - name: change-ticket
    uriTemplate: https://tickets.example/approve
    bodyTemplate:
      inline: '{"callback": "{{ferry.callbackUri}}"}'
"#;

#[tokio::test]
async fn no_callback_in_time_fails_the_gate_and_nothing_deploys() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    let mut svc_webhook: Worker<WebhookMessage> = Worker::start(&bench, WorkQueue::Webhook);
    // 24 hours in production; a second here.
    bench.start_engine_with(|c| c.callback_timeout = std::time::Duration::from_secs(1));
    let id = bench
        .start_deployment(&plan(GATED, "hello-ferry:1.1.0"))
        .await;
    let request = webhook_request(&mut svc_webhook).await;
    assert_eq!(request.step_key, "before:0");
    assert!(request.call.callback_uri.is_some());
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let dev = bench.target(id, "dev").await;
    assert_eq!(dev.status, TargetStatus::Failed);
    assert_eq!(
        dev.reason.as_deref(),
        Some("before deployment: webhook \"change-ticket\" failed: no callback within 1s")
    );
    assert!(
        bench
            .replica_sets("dev-cluster", "hello-dev")
            .await
            .is_empty()
    );
    svc_webhook.stop().await;
    bench.stop_engine().await;
}

/// One target whose afterDeployment webhook has no callback: its answer is the verdict.
const UNANSWERED: &str = r#"
version: v1
application: hello-ferry
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
    constraints:
      afterDeployment:
        - runWebhook:
            name: notify
manifests:
  - path: manifests/app.yaml
webhooks:
  - name: notify
    uriTemplate: https://chat.example/post
    disableCallback: true
"#;

#[tokio::test]
async fn a_webhook_without_callback_that_is_never_answered_fails_at_its_deadline() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    let mut svc_webhook: Worker<WebhookMessage> = Worker::start(&bench, WorkQueue::Webhook);
    // An hour in production; a second here.
    bench.start_engine_with(|c| c.webhook_deadline = std::time::Duration::from_secs(1));
    let id = bench
        .start_deployment(&plan(UNANSWERED, "hello-ferry:1.1.0"))
        .await;
    let request = webhook_request(&mut svc_webhook).await;
    assert_eq!(request.step_key, "after:0");
    assert!(request.call.callback_uri.is_none());
    // The deadline rides on the request, so svc-webhook stops trying when the step gives up.
    let deadline = request
        .deadline
        .expect("every webhook request has a deadline");
    assert!(deadline > chrono::Utc::now() - chrono::Duration::seconds(30));
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let dev = bench.target(id, "dev").await;
    assert_eq!(
        dev.reason.as_deref(),
        Some("after deployment: webhook \"notify\" failed: no answer within 1s")
    );
    svc_webhook.stop().await;
    bench.stop_engine().await;
}
