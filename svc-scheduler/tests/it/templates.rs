//! Manifests are rendered before they are applied: `{{context.X}}` from the file and the
//! caller's `--add-context`, and the deployment's and target's `{{ferry.X}}`/`{{armory.X}}`
//! variables reach the cluster; an unknown variable fails the target, naming the variable and
//! the manifest, with nothing applied.

use crate::support::Bench;
use ferry_deploy::{Overrides, Plan};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

const TEMPLATED: &str = r#"
version: v1
application: hello-ferry
context:
  greeting: hello from the file
  tag: "1.0.0"
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: greeting
        labels:
          team: "{{context.team}}"
      data:
        GREETING: "{{ context.greeting }} to {{ferry.environmentName}}"
        DEPLOYMENT: "{{armory.deploymentId}}"
        WHERE: "{{ferry.accountName}}/{{ferry.namespace}}"
  - inline: |
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: hello
      spec:
        replicas: 2
        selector:
          matchLabels: {app: hello}
        template:
          metadata:
            labels: {app: hello}
          spec:
            containers:
              - name: web
                image: "hello-ferry:{{context.tag}}"
"#;

fn plan(text: &str, context: &[(&str, &str)]) -> Plan {
    let overrides = Overrides {
        context: context
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Overrides::default()
    };
    ferry_deploy::check("deploy.yml", text, &[], &overrides).unwrap_or_else(|d| panic!("{d:?}"))
}

#[tokio::test]
async fn rendered_manifests_reach_the_cluster() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    bench.start_engine();
    // --add-context overrides the file's tag and adds the team.
    let id = bench
        .start_deployment(&plan(TEMPLATED, &[("tag", "1.2.0"), ("team", "payments")]))
        .await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let maps: Api<ConfigMap> = Api::namespaced(bench.clients["dev-cluster"].clone(), "hello-dev");
    let cm = maps.get("greeting").await.unwrap();
    let data = cm.data.unwrap();
    assert_eq!(data["GREETING"], "hello from the file to dev");
    assert_eq!(data["DEPLOYMENT"], id.to_string());
    assert_eq!(data["WHERE"], "dev-cluster/hello-dev");
    assert_eq!(cm.metadata.labels.unwrap()["team"], "payments");
    let sets = bench.replica_sets("dev-cluster", "hello-dev").await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    let (spec, _, image) = sets.values().next().unwrap();
    assert_eq!((*spec, image.as_str()), (2, "hello-ferry:1.2.0"));
    bench.stop_engine().await;
}

#[tokio::test]
async fn an_unknown_variable_fails_the_target_naming_it_and_applies_nothing() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    bench.start_engine();
    // No `team` in any context this time.
    let id = bench.start_deployment(&plan(TEMPLATED, &[])).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let dev = bench.target(id, "dev").await;
    assert_eq!(dev.status, TargetStatus::Failed);
    assert_eq!(
        dev.reason.as_deref(),
        Some(
            "manifest manifests[0].inline (ConfigMap/greeting): {{context.team}} is not defined \
             by any context (file, step or --add-context)"
        )
    );
    let maps: Api<ConfigMap> = Api::namespaced(bench.clients["dev-cluster"].clone(), "hello-dev");
    assert!(maps.get_opt("greeting").await.unwrap().is_none());
    assert!(
        bench
            .replica_sets("dev-cluster", "hello-dev")
            .await
            .is_empty()
    );
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_manifest_by_url_fails_the_target_instead_of_being_left_out() {
    let mut bench = Bench::new(&["dev-cluster"], &["hello-dev"]).await;
    bench.start_engine();
    let text = r#"
version: v1
application: hello-ferry
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
manifests:
  - path: https://manifests.example/hello/app.yaml
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: greeting
      data:
        GREETING: hello
"#;
    let id = bench.start_deployment(&plan(text, &[])).await;
    assert_eq!(bench.wait_end(id).await.status, DeploymentStatus::Failed);
    let dev = bench.target(id, "dev").await;
    assert_eq!(
        dev.reason.as_deref(),
        Some(
            "manifest https://manifests.example/hello/app.yaml: its contents were never fetched \
             (svc-api fetches manifest URLs when a deployment starts; this deployment was stored \
             without them): start it again"
        )
    );
    let maps: Api<ConfigMap> = Api::namespaced(bench.clients["dev-cluster"].clone(), "hello-dev");
    assert!(maps.get_opt("greeting").await.unwrap().is_none());
    bench.stop_engine().await;
}
