//! A rollback puts back what the deployment overwrote: an object that existed before the
//! deployment (made by a person or an earlier deployment) gets its previous contents again, not
//! only the objects the deployment created removed.

use crate::support::{Bench, plan};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;

const ROLLING: &str = r#"
version: v1
application: hello-ferry
targets:
  staging:
    account: staging-cluster
    namespace: hello
manifests:
  - path: manifests/app.yaml
"#;

#[tokio::test]
async fn a_rolled_back_deployment_gives_changed_objects_their_previous_contents() {
    let mut bench = Bench::new(&["staging-cluster"], &["hello"]).await;
    let maps: Api<ConfigMap> = Api::namespaced(bench.clients["staging-cluster"].clone(), "hello");
    // Contents X: the team's ConfigMap before the deployment, which the deploy file changes.
    let before = BTreeMap::from([
        ("GREETING".to_string(), "hello from the team".to_string()),
        ("ONLY_BEFORE".to_string(), "kept".to_string()),
    ]);
    let theirs = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("hello-ferry-config".into()),
            labels: Some(BTreeMap::from([("owner".into(), "team".into())])),
            ..Default::default()
        },
        data: Some(before.clone()),
        ..Default::default()
    };
    maps.create(&PostParams::default(), &theirs).await.unwrap();
    bench.start_engine();

    let mut bad = plan(ROLLING, "hello-ferry:bad");
    bad.deployment_config.timeout_secs = 2;
    let id = bench.start_deployment(&bad).await;
    // The deployment changed the ConfigMap while it ran, keeping what it was.
    bench
        .wait_target(
            id,
            "staging",
            "the ConfigMap's previous contents kept",
            |t| {
                t.observed["previous"]
                    .as_array()
                    .is_some_and(|p| p.len() == 1)
            },
        )
        .await;
    let changed = maps.get("hello-ferry-config").await.unwrap();
    assert_eq!(changed.data.unwrap()["GREETING"], "hello from ferry");
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed, "{:?}", end.reason);
    let staging = bench.target(id, "staging").await;
    assert_eq!(
        staging.status,
        TargetStatus::RolledBack,
        "{:?}",
        staging.reason
    );
    assert!(
        staging.observed.get("previous").is_none(),
        "restored and forgotten: {}",
        staging.observed
    );

    let now = maps.get("hello-ferry-config").await.unwrap();
    assert_eq!(
        now.data,
        Some(before),
        "the ConfigMap has its contents X again"
    );
    assert_eq!(now.metadata.labels.unwrap()["owner"], "team");
    assert!(
        !now.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(ferry_svc_scheduler::objects::ANNOTATION_CREATED_BY),
        "still the team's object"
    );
    bench.stop_engine().await;
}
