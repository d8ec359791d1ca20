//! Shared helpers: starting a simulator with a short ready delay, a namespace per test, and
//! mapping kube-rs errors to status codes.

use std::time::Duration;

use ferry_kube_sim::{RunningSim, SimConfig};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::json;

pub(crate) use ferry_testkit::eventually;

/// How long tests wait for the controller.
pub(crate) const DEADLINE: Duration = Duration::from_secs(15);

/// A simulator with a 200ms ready delay, its client and a fresh namespace `ns`.
pub(crate) async fn sim_with(config: SimConfig, ns: &str) -> (RunningSim, kube::Client) {
    let sim = ferry_kube_sim::start(config)
        .await
        .expect("simulator starts");
    let client = sim.client().await.expect("client from kubeconfig");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns_obj = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns_obj)
        .await
        .expect("namespace created");
    (sim, client)
}

/// A simulator with default settings except a 200ms ready delay.
pub(crate) async fn sim(ns: &str) -> (RunningSim, kube::Client) {
    sim_with(
        SimConfig {
            ready_delay: Duration::from_millis(200),
            ..SimConfig::default()
        },
        ns,
    )
    .await
}

/// The HTTP status code of a kube-rs API error.
pub(crate) fn code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A ReplicaSet (or Deployment) spec body with one container.
pub(crate) fn workload(name: &str, app: &str, replicas: i32, image: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    })
}
