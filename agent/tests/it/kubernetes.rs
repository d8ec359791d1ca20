//! Ordinary kube-rs code in the control plane drives the agent's cluster (kube-sim) through
//! tunnel, hub and agent: create, watch, scale, server-side apply, delete. And plain HTTP
//! requests reach the agent's network.

use crate::support::{WAIT, World};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::BTreeMap;

/// Follows Pods labelled `app=web` with a watcher until `count` of them are Ready.
async fn wait_ready_pods(pods: Api<Pod>, count: usize) {
    let config = watcher::Config::default().labels("app=web");
    let mut events = watcher(pods, config).boxed();
    let mut ready: BTreeMap<String, bool> = BTreeMap::new();
    let wait = async {
        while let Some(event) = events.next().await {
            match event.expect("watch events flow through the tunnel") {
                watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    ready.insert(name, is_ready(&pod));
                }
                watcher::Event::Delete(pod) => {
                    ready.remove(&pod.metadata.name.clone().unwrap_or_default());
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
            if ready.len() == count && ready.values().all(|r| *r) {
                return;
            }
        }
        panic!("the watch ended");
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("{count} Ready pods within {WAIT:?}"));
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn a_control_plane_client_manages_a_replicaset_through_the_agent() {
    let world = World::new().await;
    let (hub, agent) = world.connected_agent("cluster-a", &[]).await;

    let client = world.client("cluster-a");
    let direct = world.sim.client().await.unwrap();
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    }))
    .unwrap();
    let created = replicasets
        .create(&PostParams::default(), &rs)
        .await
        .expect("create through the tunnel");
    assert_eq!(created.metadata.name.as_deref(), Some("web"));
    // The object really is in the cluster, seen without the tunnel.
    let seen = Api::<ReplicaSet>::namespaced(direct.clone(), "default")
        .get("web")
        .await
        .expect("the simulator holds the ReplicaSet");
    assert_eq!(seen.spec.unwrap().replicas, Some(2));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_ready_pods(pods.clone(), 2).await;

    replicasets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale through the tunnel");
    wait_ready_pods(pods.clone(), 3).await;

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    });
    let applied = services
        .patch(
            "web",
            &PatchParams::apply("ferry").force(),
            &Patch::Apply(service),
        )
        .await
        .expect("server-side apply through the tunnel");
    let selector = applied.spec.unwrap().selector.unwrap();
    assert_eq!(selector.get("app").map(String::as_str), Some("web"));
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"ferry".to_string()), "{managers:?}");

    replicasets
        .delete("web", &DeleteParams::foreground())
        .await
        .expect("delete the ReplicaSet");
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete the Service");
    let direct_pods: Api<Pod> = Api::namespaced(direct.clone(), "default");
    ferry_testkit::eventually("everything is gone from the cluster", WAIT, || async {
        let pods = direct_pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        let rs = Api::<ReplicaSet>::namespaced(direct.clone(), "default")
            .get_opt("web")
            .await
            .ok()?;
        let svc = Api::<Service>::namespaced(direct.clone(), "default")
            .get_opt("web")
            .await
            .ok()?;
        (pods.items.is_empty() && rs.is_none() && svc.is_none()).then_some(())
    })
    .await;

    let ok = agent.metric(
        "ferry_agent_requests_total",
        &[("kind", "kubernetes"), ("outcome", "ok")],
    );
    assert!(ok >= 6.0, "requests counted as ok: {ok}");
    assert_eq!(agent.readyz().await, 200);
    agent
        .stop()
        .await
        .expect("the agent drains and stops cleanly");
    hub.stop().await;
}

#[tokio::test]
async fn http_requests_reach_the_agents_network() {
    use axum::routing::{get, post};
    let world = World::new().await;
    let (hub, agent) = world.connected_agent("cluster-h", &[]).await;

    // A service inside the agent's network.
    let big: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    let body = big.clone();
    let app = axum::Router::new()
        .route("/big", get(move || async move { body.clone() }))
        .route(
            "/echo",
            post(|headers: axum::http::HeaderMap, body: String| async move {
                let who = headers
                    .get("x-ferry-test")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                format!("{who}:{body}")
            }),
        )
        .route(
            "/moved",
            get(|| async { axum::response::Redirect::to("/elsewhere") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let tenant = world.tenant.to_string();
    let request = http::Request::post(format!("{base}/echo"))
        .header("x-ferry-test", "hello")
        .body(bytes::Bytes::from_static(b"payload"))
        .unwrap();
    let response = world
        .tunnel
        .http(&tenant, "cluster-h", request)
        .await
        .expect("relayed");
    assert_eq!(response.head.status, 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"hello:payload");

    let request = http::Request::get(format!("{base}/big"))
        .body(bytes::Bytes::new())
        .unwrap();
    let response = world
        .tunnel
        .http(&tenant, "cluster-h", request)
        .await
        .expect("relayed");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &big[..]);

    // Redirects are the caller's business, not followed by the agent.
    let request = http::Request::get(format!("{base}/moved"))
        .body(bytes::Bytes::new())
        .unwrap();
    let response = world
        .tunnel
        .http(&tenant, "cluster-h", request)
        .await
        .expect("relayed");
    assert_eq!(response.head.status, 303);
    assert_eq!(response.head.headers["location"], "/elsewhere");

    // Nothing listens here: the caller gets the agent's error, the stream stays.
    let request = http::Request::get("http://127.0.0.1:1/nothing")
        .body(bytes::Bytes::new())
        .unwrap();
    let err = world
        .tunnel
        .http(&tenant, "cluster-h", request)
        .await
        .expect_err("unreachable target");
    assert!(
        matches!(
            err,
            ferry_tunnel::TunnelError::Remote {
                code: ferry_proto::agent::ErrorCode::Unreachable,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        agent.metric("ferry_agent_response_bytes_total", &[("kind", "http")]) as usize,
        big.len() + b"hello:payload".len()
    );
    assert_eq!(
        agent.metric(
            "ferry_agent_hub_connects_total",
            &[("outcome", "connected")]
        ),
        1.0
    );
    agent.stop().await.unwrap();
    hub.stop().await;
}
