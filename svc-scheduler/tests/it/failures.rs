//! A first deployment whose pods never become ready: after `deploymentConfig.timeout` it rolls
//! back, removing everything it created (ReplicaSets and the other objects it applied) but
//! nothing it found there, and the targets that depend on it never start.

use crate::support::{Bench, plan};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, PostParams};

/// Staging then production, everything straight to 100% (first deployment).
const CHAIN: &str = r#"
version: v1
application: hello-ferry
targets:
  staging:
    account: staging-cluster
    namespace: hello
  prod:
    account: prod-cluster
    namespace: hello
    constraints:
      dependsOn: ["staging"]
manifests:
  - path: manifests/app.yaml
  - path: manifests/service.yaml
"#;

#[tokio::test]
async fn a_failed_first_deployment_removes_what_it_created_and_dependents_never_start() {
    let mut bench = Bench::new(&["staging-cluster", "prod-cluster"], &["hello"]).await;
    // The team made the Service by hand before adopting Ferry: it is theirs, not Ferry's.
    let services: Api<Service> = Api::namespaced(bench.clients["staging-cluster"].clone(), "hello");
    let theirs: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "hello-ferry", "labels": {"owner": "team"}},
        "spec": {"selector": {"app": "hello-ferry"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    bench.start_engine();

    let mut bad = plan(CHAIN, "hello-ferry:bad");
    // The file's minimum timeout is 60 s; the test shortens the stored plan to keep it quick.
    bad.deployment_config.timeout_secs = 2;
    let id = bench.start_deployment(&bad).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let staging = bench.target(id, "staging").await;
    assert_eq!(staging.status, TargetStatus::RolledBack);
    assert_eq!(
        staging.reason.as_deref(),
        Some("rolled back: pods not ready after 2s")
    );
    let prod = bench.target(id, "prod").await;
    assert_eq!(prod.status, TargetStatus::Skipped);
    assert_eq!(
        prod.reason.as_deref(),
        Some("not started: staging rolled_back")
    );
    assert_eq!(
        end.reason.as_deref(),
        Some("staging rolled_back: rolled back: pods not ready after 2s")
    );

    // Staging is as the deployment found it: no ReplicaSet, no ConfigMap, the team's Service.
    assert!(
        bench
            .replica_sets("staging-cluster", "hello")
            .await
            .is_empty()
    );
    let config_maps: Api<ConfigMap> =
        Api::namespaced(bench.clients["staging-cluster"].clone(), "hello");
    assert!(
        config_maps
            .get_opt("hello-ferry-config")
            .await
            .unwrap()
            .is_none(),
        "the ConfigMap the deployment created is removed"
    );
    let kept = services.get("hello-ferry").await.unwrap();
    assert_eq!(kept.metadata.labels.unwrap()["owner"], "team");
    assert!(
        !kept
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(ferry_svc_scheduler::objects::ANNOTATION_CREATED_BY),
        "a found object is not marked as created"
    );
    // Production was never touched.
    let prod_maps: Api<ConfigMap> = Api::namespaced(bench.clients["prod-cluster"].clone(), "hello");
    assert!(
        prod_maps
            .get_opt("hello-ferry-config")
            .await
            .unwrap()
            .is_none()
    );
    assert!(bench.replica_sets("prod-cluster", "hello").await.is_empty());
    bench.stop_engine().await;
}
