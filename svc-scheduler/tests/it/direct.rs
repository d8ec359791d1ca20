//! Direct apply: a target whose manifests hold no `Deployment` (even one naming a strategy) and
//! a target without a strategy apply everything at once and succeed. A Namespace among the
//! manifests is applied before the objects that live in it, on a cluster that lacks it, with the
//! target's namespace forced onto namespaced objects. The managed pods carry the `ferry.dev/*`
//! and `deploy.armory.io/*` annotations and `FERRY_*`/`ARMORY_*` variables.

use crate::support::{Bench, plan};
use ferry_store::deployments::DeploymentStatus;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, PodTemplateSpec, Service};
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;

/// ConfigMap and Service only (the ConfigMap names another namespace), the Namespace they need
/// written last; the target names a strategy that has nothing to shape.
const NO_DEPLOYMENT: &str = r#"
version: v1
application: hello-config
targets:
  web:
    account: web-cluster
    namespace: web
    strategy: slow
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: settings
        namespace: somewhere-else
      data:
        MODE: fast
      ---
      apiVersion: v1
      kind: Service
      metadata:
        name: hello-config
      spec:
        selector: {app: hello-config}
        ports: [{port: 80}]
  - inline: |
      apiVersion: v1
      kind: Namespace
      metadata:
        name: web
strategies:
  slow:
    canary:
      steps:
        - setWeight: 10
        - pause: {untilApproved: true}
"#;

/// The example app on a target without a strategy, its name as a person writes it.
const NO_STRATEGY: &str = r#"
version: v1
application: hello-ferry
targets:
  prod-eu (direct):
    account: prod-cluster
    namespace: hello
manifests:
  - path: manifests/app.yaml
  - path: manifests/service.yaml
"#;

#[tokio::test]
async fn manifests_without_a_deployment_are_applied_directly_namespace_first() {
    let mut bench = Bench::new(&["web-cluster"], &[]).await;
    let client = bench.clients["web-cluster"].clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt("web").await.unwrap().is_none());
    bench.start_engine();
    let id = bench
        .start_deployment(
            &ferry_deploy::check("deploy.yml", NO_DEPLOYMENT, &[], &Default::default())
                .unwrap_or_else(|d| panic!("{d:?}")),
        )
        .await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    // No step of the named strategy ran: nothing to weigh, nothing to approve.
    assert_eq!(
        bench.reasons(id, "web").await,
        ["started", "applied 3 objects", "applied", "deployed"]
    );
    assert!(namespaces.get_opt("web").await.unwrap().is_some());
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "web");
    let settings = maps.get("settings").await.unwrap();
    assert_eq!(settings.data.unwrap()["MODE"], "fast");
    // Forced into the target's namespace: nothing went to (or created) the one it named.
    assert!(
        namespaces
            .get_opt("somewhere-else")
            .await
            .unwrap()
            .is_none(),
        "the target's namespace is forced"
    );
    let services: Api<Service> = Api::namespaced(client.clone(), "web");
    assert!(services.get_opt("hello-config").await.unwrap().is_some());
    assert!(bench.replica_sets("web-cluster", "web").await.is_empty());
    bench.stop_engine().await;
}

/// Checks the Ferry and Armory annotations of a managed pod (template).
fn assert_annotations(annotations: &BTreeMap<String, String>, id: &str, rs: &str) {
    for prefix in ["ferry.dev", "deploy.armory.io"] {
        let get = |k: &str| {
            annotations
                .get(&format!("{prefix}/{k}"))
                .map(String::as_str)
        };
        assert_eq!(get("application"), Some("hello-ferry"), "{annotations:?}");
        assert_eq!(get("deployment-id"), Some(id), "{annotations:?}");
        assert_eq!(
            get("environment"),
            Some("prod-eu (direct)"),
            "{annotations:?}"
        );
        assert_eq!(get("replica-set-name"), Some(rs), "{annotations:?}");
    }
}

/// Checks the Ferry and Armory variables of every container of a managed pod (template).
fn assert_environment(template: &PodTemplateSpec, id: &str, rs: &str) {
    for container in &template.spec.as_ref().unwrap().containers {
        let env = container.env.clone().unwrap_or_default();
        for prefix in ["FERRY", "ARMORY"] {
            for (name, value) in [
                ("APPLICATION_NAME", "hello-ferry"),
                ("DEPLOYMENT_ID", id),
                ("ENVIRONMENT_NAME", "prod-eu (direct)"),
                ("REPLICA_SET_NAME", rs),
            ] {
                let name = format!("{prefix}_{name}");
                let found: Vec<_> = env.iter().filter(|e| e.name == name).collect();
                assert_eq!(found.len(), 1, "{name} once in {env:?}");
                assert_eq!(found[0].value.as_deref(), Some(value), "{name}");
            }
        }
    }
}

#[tokio::test]
async fn without_a_strategy_a_new_version_replaces_the_old_at_once_with_ferrys_metadata() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello"]).await;
    bench.start_engine();
    let target = "prod-eu (direct)";
    bench
        .deploy_succeeded(&plan(NO_STRATEGY, "hello-ferry:1.1.0"))
        .await;
    let v2 = bench
        .start_deployment(&plan(NO_STRATEGY, "hello-ferry:1.2.0"))
        .await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(sets.len(), 1, "the old version is removed: {sets:?}");
    let (name, (spec, ready, image)) = sets.iter().next().unwrap();
    assert_eq!((*spec, *ready, image.as_str()), (4, 4, "hello-ferry:1.2.0"));
    // Waiting for the new pods may show in between; the rest is exactly this.
    let reasons = bench.reasons(v2, target).await;
    let settled: Vec<&String> = reasons
        .iter()
        .filter(|r| !r.starts_with("promoting to 100%: waiting for pods"))
        .collect();
    assert_eq!(
        settled,
        [
            "started",
            &format!("applied 2 objects; new ReplicaSet {name}"),
            "at 100% (4/4 pods ready); old version removed",
            "deployed",
        ],
        "{reasons:?}"
    );

    // What reached the cluster: the ReplicaSet's pod template and every pod made from it.
    let id = v2.to_string();
    let client = bench.clients["prod-cluster"].clone();
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "hello")
        .get(name)
        .await
        .unwrap();
    let template = rs.spec.unwrap().template.unwrap();
    let meta = template.metadata.clone().unwrap();
    assert_annotations(&meta.annotations.unwrap_or_default(), &id, name);
    assert_environment(&template, &id, name);
    let hash = meta.labels.unwrap()["ferry.dev/pod-template-hash"].clone();
    let pods = Api::<Pod>::namespaced(client, "hello")
        .list(&ListParams::default().labels(&format!("ferry.dev/pod-template-hash={hash}")))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 4);
    for pod in pods {
        assert_annotations(&pod.metadata.annotations.unwrap_or_default(), &id, name);
        let template = PodTemplateSpec {
            metadata: None,
            spec: pod.spec,
        };
        assert_environment(&template, &id, name);
    }
    bench.stop_engine().await;
}
