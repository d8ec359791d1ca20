//! Losing a replica: its agents reconnect to the other, their routes move, in-flight callers
//! retry and succeed within their deadline, and a replica whose route moved stops answering.

use crate::harness::{Env, get};
use ferry_agent_sim::{Script, SimAgent, SimOptions, SimReply};
use ferry_tunnel::Deadline;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn slow_script() -> Script {
    Script::new().on(
        "GET",
        "/api/v1/namespaces/default/configmaps/slow",
        SimReply::json(r#"{"kind":"ConfigMap"}"#).delayed(Duration::from_millis(1500)),
    )
}

/// Starts a slow GET, waits until the agent has it, runs `lose` on the replica, and checks the
/// caller still succeeds within its deadline through the other replica.
async fn inflight_get_survives(hard_kill: bool) {
    let env = Env::new().await;
    let a = env.replica("ra").await;
    let b = env.replica("rb").await;
    let tenant = Uuid::new_v4();
    let agent = env
        .agent(&[&a, &b], tenant, "cluster-1", slow_script())
        .await;
    assert_eq!(agent.welcome().unwrap().replica, "ra");
    let first_session = env.route_replica(tenant, "cluster-1").await.unwrap().1;

    let tunnel = env.tunnel().await;
    let t = tenant.to_string();
    let deadline = Duration::from_secs(12);
    let call = tokio::spawn(async move {
        let mut request = get("/api/v1/namespaces/default/configmaps/slow");
        request.extensions_mut().insert(Deadline(deadline));
        let started = Instant::now();
        let result = match tunnel.kubernetes(&t, "cluster-1", request).await {
            Ok(response) => response.bytes().await,
            Err(e) => Err(e),
        };
        (result, started.elapsed())
    });
    ferry_testkit::eventually(
        "the agent to get the request",
        Duration::from_secs(10),
        || {
            let received = agent.requests_received();
            async move { (received >= 1).then_some(()) }
        },
    )
    .await;

    if hard_kill {
        a.kill().await;
    } else {
        a.stop().await.unwrap();
    }

    let (result, elapsed) = call.await.unwrap();
    assert_eq!(result.unwrap(), r#"{"kind":"ConfigMap"}"#);
    assert!(elapsed < deadline, "took {elapsed:?}");
    // The agent moved to the other replica, under a newer session.
    let welcome = agent.welcome().unwrap();
    assert_eq!(welcome.replica, "rb");
    let (replica, session) = env.route_replica(tenant, "cluster-1").await.unwrap();
    assert_eq!(replica, "rb");
    assert!(session > first_session);
    assert!(
        agent.requests_received() >= 2,
        "the retry reached the agent"
    );
    b.wait_metric("ferry_hub_requests_total", Some(("outcome", "ok")), 1.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_replica_moves_its_agents_and_inflight_callers_retry() {
    inflight_get_survives(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_moves_its_agents_and_inflight_callers_retry() {
    inflight_get_survives(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_releases_its_routes() {
    let env = Env::new().await;
    let a = env.replica("ra").await;
    let tenant = Uuid::new_v4();
    let token = env.token(tenant).await;
    let mut options = SimOptions::new(&a.url, &token, "cluster-1", Script::new());
    options.reconnect = false;
    let agent = SimAgent::start(options).await.unwrap();
    assert!(env.route_replica(tenant, "cluster-1").await.is_some());
    a.stop().await.unwrap();
    assert_eq!(env.route_replica(tenant, "cluster-1").await, None);
    ferry_testkit::eventually("the agent to be told to go", Duration::from_secs(5), || {
        let gone = agent.welcome().is_none();
        async move { gone.then_some(()) }
    })
    .await;
    // With no route left, a caller fails fast instead of waiting.
    let err = env
        .tunnel()
        .await
        .kubernetes(&tenant.to_string(), "cluster-1", get("/version"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ferry_tunnel::TunnelError::AgentNotConnected { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_route_moved_no_longer_answers_for_the_agent() {
    let env = Env::new().await;
    let a = env.replica("ra").await;
    let b = env.replica("rb").await;
    let tenant = Uuid::new_v4();
    let t = tenant.to_string();
    let script =
        |name: &str| Script::new().on("GET", "/whoami", SimReply::text(200, name.to_string()));
    let token = env.token(tenant).await;
    let mut options = SimOptions::new(&a.url, &token, "cluster-1", script("old"));
    options.reconnect = false;
    let old = SimAgent::start(options).await.unwrap();
    let old_session = old.welcome().unwrap().session;

    // The same agent shows up on the other replica (say, after a network partition healed
    // on one side only): the newer session wins.
    let mut options = SimOptions::new(&b.url, &token, "cluster-1", script("new"));
    options.reconnect = false;
    let new = SimAgent::start(options).await.unwrap();
    assert!(new.welcome().unwrap().session > old_session);

    // The old replica notices at the next heartbeat and drops its stream.
    ferry_testkit::eventually(
        "the old replica to drop its stream",
        Duration::from_secs(5),
        || {
            let held = a.metric("ferry_hub_connected_agents", None);
            let gone = old.welcome().is_none();
            async move { (held == 0.0 && gone).then_some(()) }
        },
    )
    .await;

    let tunnel = env.tunnel().await;
    let body = tunnel
        .kubernetes(&t, "cluster-1", get("/whoami"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, "new");
    assert_eq!(old.requests_handled(), 0);
    assert_eq!(
        a.metric("ferry_hub_stream_errors_total", None),
        1.0,
        "the fenced stream counts as a stream error"
    );
    // The route stays with the new session: the old replica released nothing of it.
    let (replica, session) = env.route_replica(tenant, "cluster-1").await.unwrap();
    assert_eq!(
        (replica.as_str(), session),
        ("rb", new.welcome().unwrap().session)
    );
}
