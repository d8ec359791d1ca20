//! Requests reach the replica holding the agent; kube-rs works over the tunnel; big bodies
//! stream within a memory bound; unknown or vanishing agents fail fast with clear errors.

use crate::harness::{Env, get};
use ferry_agent_sim::{Script, SimReply, pattern_byte};
use ferry_svc_agent_hub::agents::PENDING_CAPACITY;
use ferry_tunnel::{Deadline, TunnelError};
use k8s_openapi::api::core::v1::Pod;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn named(name: &str) -> Script {
    Script::new().on("GET", "/whoami", SimReply::text(200, name.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_replica_holding_the_agent() {
    let env = Env::new().await;
    let a = env.replica("ra").await;
    let b = env.replica("rb").await;
    let tenant = Uuid::new_v4();
    let t = tenant.to_string();
    let _x = env.agent(&[&a], tenant, "x", named("agent x")).await;
    let _y = env.agent(&[&b], tenant, "y", named("agent y")).await;
    assert_eq!(env.route_replica(tenant, "x").await.unwrap().0, "ra");
    assert_eq!(env.route_replica(tenant, "y").await.unwrap().0, "rb");

    let tunnel = env.tunnel().await;
    for _ in 0..3 {
        let x = tunnel.kubernetes(&t, "x", get("/whoami")).await.unwrap();
        assert_eq!(x.head.status, 200);
        assert_eq!(x.bytes().await.unwrap(), "agent x");
        let y = tunnel.kubernetes(&t, "y", get("/whoami")).await.unwrap();
        assert_eq!(y.bytes().await.unwrap(), "agent y");
    }
    // Each replica relayed exactly the requests of the agent it holds.
    let ok = Some(("outcome", "ok"));
    a.wait_metric("ferry_hub_requests_total", ok, 3.0).await;
    b.wait_metric("ferry_hub_requests_total", ok, 3.0).await;
    assert_eq!(a.metric("ferry_hub_connected_agents", None), 1.0);
    assert_eq!(b.metric("ferry_hub_connected_agents", None), 1.0);

    // An unscripted path comes back as the agent's 404, not as a tunnel error.
    let missing = tunnel.kubernetes(&t, "x", get("/nope")).await.unwrap();
    assert_eq!(missing.head.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_lists_pods_through_the_tunnel() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();
    let pods = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},
        "items":[{"metadata":{"name":"web-0","namespace":"default"},
                  "spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}]}"#;
    let script = Script::new()
        .on(
            "GET",
            "/api/v1/namespaces/default/pods?",
            SimReply::json(pods),
        )
        .on(
            "GET",
            "/api/v1/namespaces/default/pods",
            SimReply::json(pods),
        );
    let _agent = env.agent(&[&hub], tenant, "cluster-1", script).await;

    let tunnel = env.tunnel().await;
    let client = tunnel.kube_client(tenant.to_string(), "cluster-1", "default");
    let api: kube::Api<Pod> = kube::Api::default_namespaced(client);
    let list = api.list(&Default::default()).await.unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["web-0"]);
    assert_eq!(list.metadata.resource_version.as_deref(), Some("7"));
    let image = list.items[0].spec.as_ref().unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:1.27"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_requests_reach_the_agents_network() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();
    let url = "http://prometheus.monitoring:9090/api/v1/query?query=up";
    let script = Script::new().on("GET", url, SimReply::json(r#"{"status":"success"}"#));
    let _agent = env.agent(&[&hub], tenant, "cluster-1", script).await;
    let tunnel = env.tunnel().await;
    let response = tunnel
        .http(&tenant.to_string(), "cluster-1", get(url))
        .await
        .unwrap();
    assert_eq!(response.head.status, 200);
    assert_eq!(response.head.headers["content-type"], "application/json");
    assert_eq!(response.bytes().await.unwrap(), r#"{"status":"success"}"#);
    // A relative URL is not something the agent could fetch.
    let err = tunnel
        .http(&tenant.to_string(), "cluster-1", get("/relative"))
        .await
        .unwrap_err();
    assert!(matches!(err, TunnelError::InvalidRequest(_)), "{err:?}");
}

/// The memory bound of relaying a body: the per-request queue holds at most
/// `PENDING_CAPACITY` chunks and one more waits to enter it; the message being published holds
/// parts worth less than one chunk plus one last chunk. Each chunk is at most
/// `MAX_CHUNK_BYTES`, so under (8 + 1 + 2) × 64 KiB = 704 KiB, whatever the body's size.
const BODY_BOUND: usize = (PENDING_CAPACITY + 3) * ferry_proto::MAX_CHUNK_BYTES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mib_response_streams_within_the_memory_bound() {
    const LEN: usize = 10 * 1024 * 1024;
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();
    let script = Script::new().on("GET", "/big", SimReply::generated(LEN));
    let _agent = env.agent(&[&hub], tenant, "cluster-1", script).await;
    let tunnel = env.tunnel().await;
    let mut request = get("/big");
    request
        .extensions_mut()
        .insert(Deadline(Duration::from_secs(60)));
    let response = tunnel
        .kubernetes(&tenant.to_string(), "cluster-1", request)
        .await
        .unwrap();
    let mut body = response.body;
    let mut seen = 0usize;
    let mut chunks = 0;
    while let Some(chunk) = body.next_chunk().await.unwrap() {
        assert!(chunk.len() <= ferry_proto::MAX_CHUNK_BYTES);
        for (i, byte) in chunk.iter().enumerate() {
            assert_eq!(*byte, pattern_byte(seen + i), "byte {}", seen + i);
        }
        seen += chunk.len();
        chunks += 1;
    }
    assert_eq!(seen, LEN);
    assert!(chunks >= LEN / ferry_proto::MAX_CHUNK_BYTES);
    let buffered = hub.metric("ferry_hub_max_buffered_response_bytes", None) as usize;
    assert!(buffered > 0, "the hub buffered no body at all?");
    assert!(
        buffered <= BODY_BOUND,
        "the hub buffered {buffered} bytes of one body, over the bound of {BODY_BOUND}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_connected_agent_fails_fast() {
    let env = Env::new().await;
    let _hub = env.replica("r1").await;
    let tunnel = env.tunnel().await;
    let mut request = get("/api/v1/namespaces");
    request
        .extensions_mut()
        .insert(Deadline(Duration::from_secs(10)));
    let started = Instant::now();
    let err = tunnel
        .kubernetes(&Uuid::new_v4().to_string(), "ghost", request)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TunnelError::AgentNotConnected { agent, .. } if agent == "ghost"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_leaving_mid_request_fails_a_post_fast() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();
    let script = Script::new().on(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        SimReply::json("{}").delayed(Duration::from_secs(30)),
    );
    let token = env.token(tenant).await;
    let mut options = ferry_agent_sim::SimOptions::new(&hub.url, &token, "cluster-1", script);
    options.reconnect = false;
    let agent = ferry_agent_sim::SimAgent::start(options).await.unwrap();
    let tunnel = env.tunnel().await;
    let t = tenant.to_string();
    let call = tokio::spawn(async move {
        let request = http::Request::post("/apis/apps/v1/namespaces/default/deployments")
            .body(bytes::Bytes::from_static(b"{\"kind\":\"Deployment\"}"))
            .unwrap();
        let started = Instant::now();
        (tunnel.kubernetes(&t, "cluster-1", request).await, started)
    });
    ferry_testkit::eventually("the agent to get the POST", Duration::from_secs(10), || {
        let received = agent.requests_received();
        async move { (received == 1).then_some(()) }
    })
    .await;
    agent.stop();
    let (result, started) = call.await.unwrap();
    let err = result.unwrap_err();
    // Not retried: the POST may have been applied.
    assert!(matches!(err, TunnelError::AgentDisconnected(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    hub.wait_metric(
        "ferry_hub_requests_total",
        Some(("outcome", "disconnected")),
        1.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_agent_fails_fast_even_from_a_cached_route() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();
    let t = tenant.to_string();
    let token = env.token(tenant).await;
    let mut options =
        ferry_agent_sim::SimOptions::new(&hub.url, &token, "cluster-1", named("here"));
    options.reconnect = false;
    let agent = ferry_agent_sim::SimAgent::start(options).await.unwrap();
    let tunnel = env.tunnel().await;
    // Succeeds, and leaves the route in the tunnel's cache.
    let body = tunnel
        .kubernetes(&t, "cluster-1", get("/whoami"))
        .await
        .unwrap();
    assert_eq!(body.bytes().await.unwrap(), "here");

    agent.stop();
    ferry_testkit::eventually("the route to be released", Duration::from_secs(5), || {
        let env = &env;
        async move {
            env.route_replica(tenant, "cluster-1")
                .await
                .is_none()
                .then_some(())
        }
    })
    .await;
    let started = Instant::now();
    let err = tunnel
        .kubernetes(&t, "cluster-1", get("/whoami"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TunnelError::AgentNotConnected { .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
    hub.wait_metric(
        "ferry_hub_requests_total",
        Some(("outcome", "not_connected")),
        1.0,
    )
    .await;
}

/// A route is written in Redis just before the replica's own table learns of the stream: a
/// caller refused by the replica its route still names tries that replica again, within the
/// grace, instead of waiting for a route that will not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_the_replica_the_route_still_names_is_retried() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();
    let t = tenant.to_string();
    // The route names r1, which does not hold the agent (yet).
    let mut redis = env.redis().await;
    let key = ferry_tunnel::routing::route_key(&env.prefix, &t, "cluster-1");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg(&["replica", "r1", "session", "1", "connected_at", "0"])
        .query_async(&mut redis)
        .await
        .unwrap();

    let tunnel = env.tunnel().await;
    let call = tokio::spawn(async move {
        let mut request = get("/whoami");
        request
            .extensions_mut()
            .insert(Deadline(Duration::from_secs(10)));
        match tunnel.kubernetes(&t, "cluster-1", request).await {
            Ok(response) => response.bytes().await,
            Err(e) => Err(e),
        }
    });
    // Refused more than once: the caller went back to the route that refused it.
    ferry_testkit::eventually("a second refusal", Duration::from_secs(4), || {
        let refused = hub.metric(
            "ferry_hub_requests_total",
            Some(("outcome", "not_connected")),
        );
        async move { (refused >= 2.0).then_some(()) }
    })
    .await;
    // The agent arrives; the retried call reaches it.
    let _agent = env.agent(&[&hub], tenant, "cluster-1", named("here")).await;
    assert_eq!(call.await.unwrap().unwrap(), "here");
}
