//! Canary weights on a service mesh: an Istio VirtualService weighted between DestinationRule
//! subsets pinned to each version, and an SMI TrafficSplit between a stable and a canary
//! Service. The new version runs at full size; the weights follow the steps; the end leaves all
//! traffic on the new version as the stable one, and a rejection all of it on the old one.

use crate::bluegreen::hash_of;
use crate::support::{Bench, plan_from, size_of};
use ferry_deploy::Plan;
use ferry_store::DeploymentId;
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_svc_scheduler::render::LABEL_HASH;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

pub(crate) const ACCOUNT: &str = "mesh-cluster";
pub(crate) const NS: &str = "hello-mesh";

/// Three weights, each followed by an approval, so the test can look at every one.
const STEPS: &str = r#"
strategies:
  mesh-canary:
    canary:
      steps:
        - setWeight: 25
        - pause:
            untilApproved: true
        - setWeight: 50
        - pause:
            untilApproved: true
        - setWeight: 100
        - pause:
            untilApproved: true
"#;

/// The mesh canary of `prod-mesh` with the app, its Service and `routed` (the manifest holding
/// the routed objects, if any), and the file's `traffic_management` section.
pub(crate) fn mesh_plan(image: &str, routed: Option<&str>, traffic_management: &str) -> Plan {
    let routed_entry = routed
        .map(|p| format!("  - path: {p}\n"))
        .unwrap_or_default();
    let file = format!(
        r#"
version: v1
application: hello-ferry
targets:
  prod-mesh:
    account: {ACCOUNT}
    namespace: {NS}
    strategy: mesh-canary
manifests:
  - path: manifests/app.yaml
  - path: manifests/service.yaml
{routed_entry}{STEPS}
trafficManagement:
{traffic_management}"#
    );
    let mut paths = vec!["manifests/app.yaml", "manifests/service.yaml"];
    paths.extend(routed);
    plan_from(&file, image, &paths)
}

fn istio(image: &str) -> Plan {
    mesh_plan(
        image,
        Some("manifests/istio/routing.yaml"),
        r#"  - targets: ["prod-mesh"]
    istio:
      - virtualService:
          name: hello-ferry
          httpRouteName: primary
        destinationRule:
          name: hello-ferry
          activeSubsetName: stable
          canarySubsetName: canary
"#,
    )
}

fn smi(image: &str) -> Plan {
    mesh_plan(
        image,
        None,
        "  - smi:\n      - rootServiceName: hello-ferry\n",
    )
}

pub(crate) async fn object(
    bench: &Bench,
    group: &str,
    version: &str,
    kind: &str,
    name: &str,
) -> Option<Value> {
    let plural = format!("{}s", kind.to_lowercase());
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural);
    let api: Api<DynamicObject> =
        Api::namespaced_with(bench.clients[ACCOUNT].clone(), NS, &resource);
    api.get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

/// The `primary` route's (subset, weight) pairs.
async fn route(bench: &Bench) -> Vec<(String, i64)> {
    let vs = object(
        bench,
        "networking.istio.io",
        "v1beta1",
        "VirtualService",
        "hello-ferry",
    )
    .await
    .expect("the VirtualService");
    vs["spec"]["http"][0]["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["destination"]["subset"].as_str().unwrap().to_string(),
                d["weight"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The DestinationRule's subsets: name → pinned hash.
async fn subsets(bench: &Bench) -> Vec<(String, String)> {
    let dr = object(
        bench,
        "networking.istio.io",
        "v1beta1",
        "DestinationRule",
        "hello-ferry",
    )
    .await
    .expect("the DestinationRule");
    dr["spec"]["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["labels"]["app"], "hello-ferry", "{s}");
            (
                s["name"].as_str().unwrap().to_string(),
                s["labels"][LABEL_HASH].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, i64)]) -> Vec<(String, i64)> {
    items.iter().map(|(s, w)| (s.to_string(), *w)).collect()
}

/// Deploys `plan` and waits for the approval after the weight at `step`.
pub(crate) async fn at_step(bench: &Bench, id: DeploymentId, step: i32) {
    bench
        .wait_target(id, "prod-mesh", "the approval after a weight", |t| {
            t.step_index == step && t.status == TargetStatus::Paused
        })
        .await;
}

#[tokio::test]
async fn istio_weights_follow_the_steps_and_end_on_the_new_version() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    bench.deploy_succeeded(&istio(":1.1.0")).await;
    let old = hash_of(&bench, ACCOUNT, NS, ":1.1.0").await;
    assert_eq!(route(&bench).await, pairs(&[("stable", 100)]));
    assert_eq!(subsets(&bench).await, vec![("stable".into(), old.clone())]);

    let v2 = bench.start_deployment(&istio(":1.2.0")).await;
    let mut new = String::new();
    for (step, weight) in [(1, 25), (3, 50), (5, 100)] {
        at_step(&bench, v2, step).await;
        new = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
        assert_eq!(
            route(&bench).await,
            pairs(&[("stable", 100 - weight), ("canary", weight)])
        );
        assert_eq!(
            subsets(&bench).await,
            vec![
                ("stable".into(), old.clone()),
                ("canary".into(), new.clone())
            ]
        );
        let sets = bench.replica_sets(ACCOUNT, NS).await;
        assert_eq!(
            (size_of(&sets, ":1.1.0"), size_of(&sets, ":1.2.0")),
            (4, 4),
            "both versions at full size on a mesh: {sets:?}"
        );
        bench.decide(v2, "prod-mesh", true).await;
    }
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    assert_eq!(route(&bench).await, pairs(&[("stable", 100)]));
    assert_eq!(subsets(&bench).await, vec![("stable".into(), new.clone())]);
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!(sets.len(), 1, "{sets:?}");

    // A rejected version: everything back on the stable subset of the running version.
    let v3 = bench.start_deployment(&istio(":1.3.0")).await;
    at_step(&bench, v3, 1).await;
    assert_eq!(
        route(&bench).await,
        pairs(&[("stable", 75), ("canary", 25)])
    );
    bench.decide(v3, "prod-mesh", false).await;
    assert_eq!(bench.wait_end(v3).await.status, DeploymentStatus::Failed);
    assert_eq!(route(&bench).await, pairs(&[("stable", 100)]));
    assert_eq!(subsets(&bench).await, vec![("stable".into(), new)]);
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.2.0")), (1, 4), "{sets:?}");
    bench.stop_engine().await;
}

async fn split(bench: &Bench) -> Option<Value> {
    object(
        bench,
        "split.smi-spec.io",
        "v1alpha2",
        "TrafficSplit",
        "hello-ferry",
    )
    .await
}

pub(crate) async fn service_hash(bench: &Bench, name: &str) -> Option<String> {
    let api: Api<Service> = Api::namespaced(bench.clients[ACCOUNT].clone(), NS);
    api.get_opt(name).await.unwrap().map(|s| {
        s.spec
            .and_then(|s| s.selector)
            .and_then(|mut s| s.remove(LABEL_HASH))
            .unwrap_or_default()
    })
}

#[tokio::test]
async fn smi_weights_follow_the_steps_and_the_split_goes_when_done() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    bench.deploy_succeeded(&smi(":1.1.0")).await;
    assert!(
        split(&bench).await.is_none(),
        "a first deployment needs no split"
    );
    let old = hash_of(&bench, ACCOUNT, NS, ":1.1.0").await;

    let v2 = bench.start_deployment(&smi(":1.2.0")).await;
    for (step, weight) in [(1, 25), (3, 50), (5, 100)] {
        at_step(&bench, v2, step).await;
        let new = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
        let split = split(&bench).await.expect("the TrafficSplit");
        assert_eq!(split["spec"]["service"], "hello-ferry");
        assert_eq!(
            split["spec"]["backends"],
            json!([{"service": "hello-ferry-stable", "weight": 100 - weight},
                   {"service": "hello-ferry-canary", "weight": weight}])
        );
        assert_eq!(
            service_hash(&bench, "hello-ferry-stable").await,
            Some(old.clone())
        );
        assert_eq!(service_hash(&bench, "hello-ferry-canary").await, Some(new));
        // The root Service stays the user's: it selects every version.
        assert_eq!(
            service_hash(&bench, "hello-ferry").await,
            Some(String::new())
        );
        bench.decide(v2, "prod-mesh", true).await;
    }
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    // Only the new version runs; what Ferry created for the rollout is gone.
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.2.0")), (1, 4), "{sets:?}");
    assert!(split(&bench).await.is_none());
    assert_eq!(service_hash(&bench, "hello-ferry-stable").await, None);
    assert_eq!(service_hash(&bench, "hello-ferry-canary").await, None);

    // A rejected version: the split back at 100% stable, then removed with the new version.
    let v3 = bench.start_deployment(&smi(":1.3.0")).await;
    at_step(&bench, v3, 1).await;
    let current = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
    assert_eq!(
        service_hash(&bench, "hello-ferry-stable").await,
        Some(current)
    );
    bench.decide(v3, "prod-mesh", false).await;
    assert_eq!(bench.wait_end(v3).await.status, DeploymentStatus::Failed);
    assert!(split(&bench).await.is_none());
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.2.0")), (1, 4), "{sets:?}");
    bench.stop_engine().await;
}
