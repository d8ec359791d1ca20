//! A HorizontalPodAutoscaler of the adopted Deployment, through the simulator: pointed at the
//! new ReplicaSet when a rollout finishes, kept on the running version while a canary runs (so
//! it never scales the canary), and back on the running version after a rollback.

use crate::support::Bench;
use ferry_deploy::{Overrides, Plan, Source};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;

const ACCOUNT: &str = "prod-cluster";
const NS: &str = "hello-prod";

/// A canary that waits for an approval at 50%.
const CANARY: &str = r#"
version: v1
kind: kubernetes
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: canary
manifests:
  - path: manifests/app.yaml
  - path: manifests/hpa.yaml
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - pause:
            untilApproved: true
"#;

/// The user's HPA, targeting their Deployment as written.
const HPA: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: hello-ferry
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: hello-ferry
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
";

fn plan(image: &str) -> Plan {
    let app = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello-ferry/manifests/app.yaml"
    ))
    .unwrap()
    .replace("registry.example/hello-ferry:1.1.0", image);
    let sources = [
        Source {
            path: "manifests/app.yaml".into(),
            content: app,
        },
        Source {
            path: "manifests/hpa.yaml".into(),
            content: HPA.into(),
        },
    ];
    ferry_deploy::check("deploy.yml", CANARY, &sources, &Overrides::default())
        .unwrap_or_else(|d| panic!("{d}"))
}

/// What the HPA scales: (kind, name).
async fn scale_target(bench: &Bench) -> (String, String) {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(bench.clients[ACCOUNT].clone(), NS);
    let hpa = api.get("hello-ferry").await.unwrap();
    let target = hpa.spec.unwrap().scale_target_ref;
    (target.kind, target.name)
}

/// The name of the ReplicaSet running `image`.
async fn rs_running(bench: &Bench, image: &str) -> String {
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    let found: Vec<&String> = sets
        .iter()
        .filter(|(_, (_, _, i))| i.ends_with(image))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(found.len(), 1, "{sets:?}");
    found[0].clone()
}

fn replica_set(name: String) -> (String, String) {
    ("ReplicaSet".to_string(), name)
}

#[tokio::test]
async fn an_hpa_follows_the_running_version_and_never_scales_the_canary() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();

    // A first deployment goes straight to 100%: the HPA is applied on the new ReplicaSet.
    let v1 = bench.start_deployment(&plan(":1.1.0")).await;
    let end = bench.wait_end(v1).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let rs1 = rs_running(&bench, ":1.1.0").await;
    assert_eq!(scale_target(&bench).await, replica_set(rs1.clone()));

    // While the canary waits at 50%, the HPA still scales the running version.
    let v2 = bench.start_deployment(&plan(":1.2.0")).await;
    bench
        .wait_target(v2, "prod", "the approval at 50%", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    assert_eq!(scale_target(&bench).await, replica_set(rs1.clone()));
    bench.decide(v2, "prod", true).await;
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let rs2 = rs_running(&bench, ":1.2.0").await;
    assert_eq!(scale_target(&bench).await, replica_set(rs2.clone()));

    // A rejected canary rolls back: the HPA stays on (returns to) the running version.
    let v3 = bench.start_deployment(&plan(":1.3.0")).await;
    bench
        .wait_target(v3, "prod", "the approval at 50%", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    bench.decide(v3, "prod", false).await;
    let end = bench.wait_end(v3).await;
    assert_ne!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    assert_eq!(scale_target(&bench).await, replica_set(rs2));
    bench.stop_engine().await;
}
