//! Canary weights on a Gateway API HTTPRoute: the route's backend (the root Service) becomes a
//! stable and a canary Service, weighted step by step; the end leaves the route as it was, on
//! the root Service alone, with the copies gone, whether the version was promoted or rejected.

use crate::bluegreen::hash_of;
use crate::support::{Bench, size_of};
use crate::traffic::{ACCOUNT, NS, at_step, mesh_plan, object, service_hash};
use ferry_deploy::Plan;
use ferry_store::deployments::DeploymentStatus;
use serde_json::{Value, json};

fn gateway(image: &str) -> Plan {
    mesh_plan(
        image,
        Some("gateway/route.yaml"),
        "  - gatewayApi:\n      - httpRouteName: hello-ferry\n        rootServiceName: hello-ferry\n",
    )
}

/// The route's backends.
async fn backends(bench: &Bench) -> Value {
    let route = object(
        bench,
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "hello-ferry",
    )
    .await
    .expect("the HTTPRoute");
    route["spec"]["rules"][0]["backendRefs"].clone()
}

fn root() -> Value {
    json!([{"name": "hello-ferry", "port": 80}])
}

#[tokio::test]
async fn route_weights_follow_the_steps_and_the_route_ends_as_it_was() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    // The first version: the route is applied from the manifests as it is.
    bench.deploy_succeeded(&gateway(":1.1.0")).await;
    assert_eq!(backends(&bench).await, root());
    let old = hash_of(&bench, ACCOUNT, NS, ":1.1.0").await;

    let v2 = bench.start_deployment(&gateway(":1.2.0")).await;
    for (step, weight) in [(1, 25), (3, 50), (5, 100)] {
        at_step(&bench, v2, step).await;
        let new = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
        assert_eq!(
            backends(&bench).await,
            json!([{"name": "hello-ferry-stable", "port": 80, "weight": 100 - weight},
                   {"name": "hello-ferry-canary", "port": 80, "weight": weight}]),
            "at {weight}%"
        );
        assert_eq!(
            service_hash(&bench, "hello-ferry-stable").await,
            Some(old.clone())
        );
        assert_eq!(service_hash(&bench, "hello-ferry-canary").await, Some(new));
        bench.decide(v2, "prod-mesh", true).await;
    }
    let end = bench.wait_end(v2).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.2.0")), (1, 4), "{sets:?}");
    assert_eq!(backends(&bench).await, root());
    assert_eq!(service_hash(&bench, "hello-ferry-stable").await, None);
    assert_eq!(service_hash(&bench, "hello-ferry-canary").await, None);

    // A rejected version: all traffic back on the running version, then the route on the root
    // Service again and the copies gone with the new version.
    let v3 = bench.start_deployment(&gateway(":1.3.0")).await;
    at_step(&bench, v3, 1).await;
    let current = hash_of(&bench, ACCOUNT, NS, ":1.2.0").await;
    assert_eq!(
        service_hash(&bench, "hello-ferry-stable").await,
        Some(current)
    );
    bench.decide(v3, "prod-mesh", false).await;
    assert_eq!(bench.wait_end(v3).await.status, DeploymentStatus::Failed);
    assert_eq!(backends(&bench).await, root());
    assert_eq!(service_hash(&bench, "hello-ferry-stable").await, None);
    assert_eq!(service_hash(&bench, "hello-ferry-canary").await, None);
    let sets = bench.replica_sets(ACCOUNT, NS).await;
    assert_eq!((sets.len(), size_of(&sets, ":1.2.0")), (1, 4), "{sets:?}");
    bench.stop_engine().await;
}

#[tokio::test]
async fn a_route_that_does_not_send_to_the_root_service_fails_before_anything_is_deployed() {
    let mut bench = Bench::new(&[ACCOUNT], &[NS]).await;
    bench.start_engine();
    let mut plan = gateway(":1.1.0");
    plan.targets[0].traffic_management.gateway_api[0].root_service_name = "shop".into();
    let id = bench.start_deployment(&plan).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Failed);
    let reasons = bench.reasons(id, "prod-mesh").await.join("\n");
    assert!(
        reasons.contains("trafficManagement.gatewayApi: rootServiceName \"shop\" is neither"),
        "{reasons}"
    );
    assert!(bench.replica_sets(ACCOUNT, NS).await.is_empty());
    bench.stop_engine().await;
}
