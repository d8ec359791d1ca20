//! Blue/green with the example's preview Service: the new version comes up beside the old one
//! with only the preview Service on it, the active Service switches on approval and the old
//! version goes; a rejection or an abort before the switch leaves the old version serving.
//! Also the preview addresses of `exposeServices` and the timer that removes them.

use crate::support::{Bench, WAIT, example, plan_from, size_of};
use crate::worker::{Worker, complete_webhook, requests_written, webhook_request};
use ferry_bus::{WebhookMessage, WorkQueue};
use ferry_deploy::{Plan, Step, Strategy};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_svc_scheduler::render::LABEL_HASH;
use ferry_testkit::eventually;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;

const ACCOUNT: &str = "prod-us-cluster";
const NS: &str = "hello-prod";
const MANIFESTS: [&str; 3] = [
    "manifests/app.yaml",
    "manifests/service.yaml",
    "manifests/preview-service.yaml",
];

/// The example's deploy-bluegreen.yml, its shutdown pause shortened to 2 seconds.
fn blue_green(image: &str) -> Plan {
    let file = example("deploy-bluegreen.yml").replace(
        "duration: 60\n            unit: seconds",
        "duration: 2\n            unit: seconds",
    );
    assert!(
        file.contains("duration: 2\n"),
        "the example changed: {file}"
    );
    plan_from(&file, image, &MANIFESTS)
}

/// The Service's selector, `None` when the Service does not exist.
pub(crate) async fn selector(bench: &Bench, name: &str) -> Option<BTreeMap<String, String>> {
    let api: Api<Service> = Api::namespaced(bench.clients[ACCOUNT].clone(), NS);
    api.get_opt(name)
        .await
        .unwrap()
        .map(|s| s.spec.and_then(|s| s.selector).unwrap_or_default())
}

/// The pod-template hash of the ReplicaSet running `image` (suffix).
pub(crate) async fn hash_of(bench: &Bench, account: &str, ns: &str, image: &str) -> String {
    let api: Api<ReplicaSet> = Api::namespaced(bench.clients[account].clone(), ns);
    let list = api.list(&ListParams::default()).await.unwrap();
    let rs = list
        .items
        .into_iter()
        .find(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.as_deref())
                .is_some_and(|i| i.ends_with(image))
        })
        .unwrap_or_else(|| panic!("no ReplicaSet runs {image}"));
    rs.metadata.labels.unwrap()[LABEL_HASH].clone()
}

fn pinned(hash: &str) -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([
        ("app".to_string(), "hello-ferry".to_string()),
        (LABEL_HASH.to_string(), hash.to_string()),
    ]))
}

const WAITING: &str = "blue/green: new version ready (4/4), preview at service \
                       hello-ferry-preview, waiting for approval before switching traffic";

async fn first_version(bench: &Bench) -> String {
    let v1 = bench.start_deployment(&blue_green(":1.1.0")).await;
    let end = bench.wait_end(v1).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let old = hash_of(bench, ACCOUNT, NS, ":1.1.0").await;
    // A first deployment goes straight to the active Service.
    assert_eq!(selector(bench, "hello-ferry").await, pinned(&old));
    old
}

#[tokio::test]
async fn blue_green_previews_then_switches_on_approval_then_removes_the_old_version() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    let old = first_version(&bench).await;

    let v2 = bench.start_deployment(&blue_green(":1.2.0")).await;
    let waiting = bench
        .wait_target(v2, "prod", "the approval before the switch", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    assert_eq!(waiting.reason.as_deref(), Some(WAITING));
    let new = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!(
        (size_of(&sets, ":1.1.0"), size_of(&sets, ":1.2.0")),
        (4, 4),
        "both versions at full size: {sets:?}"
    );
    assert_eq!(selector(&bench, "hello-ferry-preview").await, pinned(&new));
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&old));
    // exposeServices published a preview address that selects the new version.
    let link = &waiting.observed["preview"]["hello-ferry-preview"];
    assert_eq!(
        link["address"], "http://hello-ferry-preview-ferry-preview.hello-prod.svc.cluster.local:80",
        "{link}"
    );
    assert_eq!(
        selector(&bench, "hello-ferry-preview-ferry-preview").await,
        pinned(&new)
    );

    bench.decide(v2, "prod", true).await;
    // The switch comes before the old version goes: the shutdown pause holds both.
    bench
        .wait_target(v2, "prod", "the pause before the old version goes", |t| {
            t.reason
                .as_deref()
                .is_some_and(|r| r.ends_with("before the old version is removed"))
        })
        .await;
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&new));
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!(sets.len(), 1, "the old version is removed: {sets:?}");
    assert_eq!(size_of(&sets, ":1.2.0"), 4);
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&new));
    let reasons = bench.reasons(v2, "prod").await;
    assert!(
        reasons.iter().any(|r| r.starts_with(
            "blue/green: traffic switched: service hello-ferry selects the new version"
        )),
        "{reasons:?}"
    );
    bench.stop_engine().await;
}

#[tokio::test]
async fn blue_green_rejected_or_aborted_before_the_switch_keeps_the_old_version() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    let old = first_version(&bench).await;

    for (image, reject) in [(":1.2.0", true), (":1.3.0", false)] {
        let id = bench.start_deployment(&blue_green(image)).await;
        bench
            .wait_target(id, "prod", "the approval before the switch", |t| {
                t.reason.as_deref() == Some(WAITING)
            })
            .await;
        let new = hash_of(&bench, ACCOUNT, NS, image).await;
        assert_eq!(selector(&bench, "hello-ferry-preview").await, pinned(&new));
        if reject {
            bench.decide(id, "prod", false).await;
        } else {
            bench.abort(id, "wrong build").await;
        }
        let end = bench.wait_end(id).await;
        let expected = if reject {
            DeploymentStatus::Failed
        } else {
            DeploymentStatus::Aborted
        };
        assert_eq!(end.status, expected, "{:?}", end.reason);
        let t = bench.target(id, "prod").await;
        if reject {
            assert_eq!(t.status, TargetStatus::RolledBack);
            assert_eq!(
                t.reason.as_deref(),
                Some("rolled back before the switch: approval rejected by rita@example.com")
            );
        }
        // Both Services are back on the old version; the new one and its preview are gone.
        assert_eq!(selector(&bench, "hello-ferry").await, pinned(&old));
        assert_eq!(selector(&bench, "hello-ferry-preview").await, pinned(&old));
        assert_eq!(
            selector(&bench, "hello-ferry-preview-ferry-preview").await,
            None
        );
        let sets = bench.replica_sets(ACCOUNT, NS).await;
        assert_eq!(sets.len(), 1, "{sets:?}");
        assert_eq!(size_of(&sets, ":1.1.0"), 4);
    }
    bench.stop_engine().await;
}

#[tokio::test]
async fn blue_green_with_a_missing_service_fails_naming_it() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    // Without the preview Service's manifest, and none in the cluster.
    let file = example("deploy-bluegreen.yml");
    let plan = plan_from(&file, ":1.1.0", &MANIFESTS[..2]);
    let id = bench.start_deployment(&plan).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let t = bench.target(id, "prod").await;
    assert_eq!(
        t.reason.as_deref(),
        Some(
            "blue/green: previewService \"hello-ferry-preview\" is neither among the target's \
             manifests nor a Service in namespace \"hello-prod\" of the cluster"
        )
    );
    assert!(bench.replica_sets(ACCOUNT, NS).await.is_empty());
    bench.stop_engine().await;
}

/// The example as written: a minute's pause before the old version goes.
fn blue_green_slow(image: &str) -> Plan {
    plan_from(&example("deploy-bluegreen.yml"), image, &MANIFESTS)
}

#[tokio::test]
async fn blue_green_rolled_back_after_the_switch_puts_traffic_back_on_the_old_version() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    let old = first_version(&bench).await;
    let v2 = bench.start_deployment(&blue_green_slow(":1.2.0")).await;
    bench
        .wait_target(v2, "prod", "the approval before the switch", |t| {
            t.reason.as_deref() == Some(WAITING)
        })
        .await;
    bench.decide(v2, "prod", true).await;
    let after = bench
        .wait_target(v2, "prod", "the minute before the old version goes", |t| {
            t.status == TargetStatus::Paused
                && t.reason
                    .as_deref()
                    .is_some_and(|r| r.ends_with("before the old version is removed"))
        })
        .await;
    assert_eq!(
        after.reason.as_deref(),
        Some(
            "blue/green: traffic on the new version (service hello-ferry), paused for 1m before \
             the old version is removed"
        )
    );
    let new = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&new));

    bench
        .roll_back(v2, "prod", "errors in the new version")
        .await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::RolledBack, "{:?}", end.reason);
    let t = bench.target(v2, "prod").await;
    assert_eq!(
        t.reason.as_deref(),
        Some("rolled back on request: errors in the new version")
    );
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&old));
    assert_eq!(selector(&bench, "hello-ferry-preview").await, pinned(&old));
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.1.0")), (1, 4), "{sets:?}");
    bench.stop_engine().await;
}

/// A canary that exposes the active Service's new version, then waits for an approval.
const EXPOSING: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-us-cluster
    namespace: hello-prod
    strategy: look-first
manifests:
  - path: manifests/app.yaml
  - path: manifests/service.yaml
strategies:
  look-first:
    canary:
      steps:
        - setWeight: 25
        - exposeServices:
            services: ["hello-ferry"]
            ttl:
              duration: 1
              unit: minutes
        - pause:
            untilApproved: true
"#;

#[tokio::test]
async fn exposed_services_are_removed_when_their_time_runs_out_even_after_the_end() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    bench
        .deploy_succeeded(&plan_from(EXPOSING, ":1.1.0", &MANIFESTS[..2]))
        .await;
    let mut plan = plan_from(EXPOSING, ":1.2.0", &MANIFESTS[..2]);
    // Shorter than the file allows, so the test need not wait a minute.
    let Strategy::Canary { steps } = &mut plan.targets[0].strategy else {
        panic!("a canary");
    };
    let Step::ExposeServices { ttl_secs, .. } = &mut steps[1] else {
        panic!("exposeServices");
    };
    *ttl_secs = 6;
    let v2 = bench.start_deployment(&plan).await;
    let waiting = bench
        .wait_target(v2, "prod", "the approval after exposing", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    let new = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
    assert_eq!(
        selector(&bench, "hello-ferry-ferry-preview").await,
        pinned(&new)
    );
    let link = &waiting.observed["preview"]["hello-ferry"];
    assert_eq!(
        link["address"],
        "http://hello-ferry-ferry-preview.hello-prod.svc.cluster.local:80"
    );
    bench.decide(v2, "prod", true).await;
    assert_eq!(bench.wait_end(v2).await.status, DeploymentStatus::Succeeded);
    // The deployment ended before the preview's time ran out; the cleanup timer still fires.
    assert_eq!(
        selector(&bench, "hello-ferry-ferry-preview").await,
        pinned(&new)
    );
    eventually("the preview Service to expire", WAIT, || async {
        selector(&bench, "hello-ferry-ferry-preview")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    bench.stop_engine().await;
}

/// The example as many real Armory files are written: no preview Service, and an application
/// name as people write it.
fn blue_green_without_preview(image: &str) -> Plan {
    let file = example("deploy-bluegreen.yml")
        .replace("application: hello-ferry", "application: Hello Ferry")
        .replace("        previewService: hello-ferry-preview\n", "")
        .replace(
            "        - exposeServices:\n            services: [\"hello-ferry-preview\"]\n            ttl:\n              duration: 30\n              unit: minutes\n",
            "",
        )
        .replace(
            "duration: 60\n            unit: seconds",
            "duration: 2\n            unit: seconds",
        );
    assert!(
        !file.contains("previewService")
            && !file.contains("exposeServices")
            && file.contains("Hello Ferry"),
        "the example changed: {file}"
    );
    plan_from(&file, image, &MANIFESTS[..2])
}

#[tokio::test]
async fn blue_green_without_a_preview_service_switches_the_active_one() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    let v1 = bench
        .start_deployment(&blue_green_without_preview(":1.1.0"))
        .await;
    let end = bench.wait_end(v1).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let old = hash_of(&bench, ACCOUNT, NS, ":1.1.0").await;
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&old));

    let v2 = bench
        .start_deployment(&blue_green_without_preview(":1.2.0"))
        .await;
    let waiting = bench
        .wait_target(v2, "prod", "the approval before the switch", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    assert_eq!(
        waiting.reason.as_deref(),
        Some("blue/green: new version ready (4/4), waiting for approval before switching traffic")
    );
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&old));
    assert_eq!(selector(&bench, "hello-ferry-preview").await, None);
    // The managed ReplicaSets carry the application's slug, not its name as written.
    let slug = ferry_deploy::application_slug("Hello Ferry");
    let api: Api<ReplicaSet> = Api::namespaced(bench.clients[ACCOUNT].clone(), NS);
    let listed = api.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 2);
    for rs in listed {
        assert_eq!(
            rs.metadata.labels.unwrap()["ferry.dev/application"],
            slug,
            "{:?}",
            rs.metadata.name
        );
    }

    bench.decide(v2, "prod", true).await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let new = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&new));
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!(sets.len(), 1, "the old version is removed: {sets:?}");
    bench.stop_engine().await;
}

/// Blue/green whose switch waits for a webhook with a callback and whose old version goes only
/// after a webhook without one answers.
const CHECKED: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-us-cluster
    namespace: hello-prod
    strategy: checked
manifests:
  - path: manifests
strategies:
  checked:
    blueGreen:
      activeService: hello-ferry
      previewService: hello-ferry-preview
      redirectTrafficAfter:
        - runWebhook:
            name: preview-tests
      shutDownOldVersionAfter:
        - runWebhook:
            name: error-budget
webhooks:
  - name: preview-tests
    uriTemplate: https://ci.example/preview/{{ferry.environmentName}}
    bodyTemplate:
      inline: '{"callback": "{{ferry.callbackUri}}"}'
  - name: error-budget
    uriTemplate: https://slo.example/check
    disableCallback: true
"#;

fn checked(image: &str) -> Plan {
    plan_from(CHECKED, image, &MANIFESTS)
}

#[tokio::test]
async fn blue_green_webhooks_gate_the_switch_and_the_removal_of_the_old_version() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    let mut svc_webhook: Worker<WebhookMessage> = Worker::start(&bench, WorkQueue::Webhook);
    bench.start_engine();
    bench.deploy_succeeded(&checked(":1.1.0")).await;
    let old = hash_of(&bench, ACCOUNT, NS, ":1.1.0").await;
    assert_eq!(
        requests_written(&bench, "webhook").await,
        0,
        "a first deployment goes straight to the active Service"
    );

    // The switch waits for the preview tests, which see the new version on the preview Service.
    let v2 = bench.start_deployment(&checked(":1.2.0")).await;
    let before = webhook_request(&mut svc_webhook).await;
    assert_eq!(before.webhook_name, "preview-tests");
    assert_eq!(before.target.as_deref(), Some("prod"));
    assert_eq!(before.call.uri, "https://ci.example/preview/prod");
    assert!(
        before.call.callback_uri.is_some(),
        "it waits for a callback"
    );
    let new = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
    let waiting = bench
        .wait_target(v2, "prod", "the preview tests", |t| {
            t.reason
                .as_deref()
                .is_some_and(|r| r.contains("waiting for webhook \"preview-tests\""))
        })
        .await;
    // Waiting on a webhook is not a pause a person can skip.
    assert_eq!(
        waiting.status,
        TargetStatus::Running,
        "{:?}",
        waiting.reason
    );
    assert_eq!(selector(&bench, "hello-ferry-preview").await, pinned(&new));
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&old));

    complete_webhook(&bench, &before, true, "42 preview tests passed").await;
    // Switched; the old version stays until the error budget check answers.
    let after = webhook_request(&mut svc_webhook).await;
    assert_eq!(after.webhook_name, "error-budget");
    assert!(after.call.callback_uri.is_none(), "no callback");
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&new));
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!(
        (size_of(&sets, ":1.1.0"), size_of(&sets, ":1.2.0")),
        (4, 4),
        "the old version waits for the check: {sets:?}"
    );
    complete_webhook(&bench, &after, true, "HTTP 200").await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.2.0")), (1, 4), "{sets:?}");
    svc_webhook.stop().await;
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_failed_blue_green_webhook_rolls_back_before_or_after_the_switch() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    let mut svc_webhook: Worker<WebhookMessage> = Worker::start(&bench, WorkQueue::Webhook);
    bench.start_engine();
    bench.deploy_succeeded(&checked(":1.1.0")).await;
    let old = hash_of(&bench, ACCOUNT, NS, ":1.1.0").await;

    // Before the switch: the preview tests fail, the active Service never moved.
    let v2 = bench.start_deployment(&checked(":1.2.0")).await;
    let before = webhook_request(&mut svc_webhook).await;
    assert_eq!(before.webhook_name, "preview-tests");
    complete_webhook(&bench, &before, false, "3 preview tests failed").await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let t = bench.target(v2, "prod").await;
    assert_eq!(t.status, TargetStatus::RolledBack);
    assert!(
        t.reason
            .as_deref()
            .is_some_and(|r| r.contains("3 preview tests failed")),
        "{:?}",
        t.reason
    );
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&old));
    assert_eq!(selector(&bench, "hello-ferry-preview").await, pinned(&old));
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.1.0")), (1, 4), "{sets:?}");

    // After the switch: the error budget check fails, traffic goes back to the old version.
    let v3 = bench.start_deployment(&checked(":1.3.0")).await;
    let before = webhook_request(&mut svc_webhook).await;
    complete_webhook(&bench, &before, true, "42 preview tests passed").await;
    let after = webhook_request(&mut svc_webhook).await;
    assert_eq!(after.webhook_name, "error-budget");
    let new = hash_of(&bench, ACCOUNT, NS, ":1.3.0").await;
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&new));
    complete_webhook(&bench, &after, false, "HTTP 503").await;
    let end = bench.wait_end(v3).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let t = bench.target(v3, "prod").await;
    assert_eq!(t.status, TargetStatus::RolledBack);
    assert_eq!(selector(&bench, "hello-ferry").await, pinned(&old));
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.1.0")), (1, 4), "{sets:?}");
    svc_webhook.stop().await;
    bench.stop_engine().await;
}
