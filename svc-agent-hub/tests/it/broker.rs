//! Losing the broker: the replica keeps its agents' streams, declares its queue again once the
//! broker is back, and callers' tunnels reopen their channels; requests flow again. The broker is
//! shared by parallel tests, so only this test's connections are dropped (from the broker's side,
//! as a restart would), by the names they carry under the test's prefix.

use crate::harness::{Env, get};
use ferry_agent_sim::{Script, SimReply};
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_broker_connection_keeps_agents_and_requests_flow_again() {
    let env = Env::new().await;
    let a = env.replica("ra").await;
    let tenant = Uuid::new_v4();
    let t = tenant.to_string();
    let script = Script::new().on("GET", "/whoami", SimReply::text(200, "edge"));
    let agent = env.agent(&[&a], tenant, "edge", script).await;
    let session = agent.welcome().unwrap().session;
    let tunnel = env.tunnel().await;
    let body = tunnel
        .kubernetes(&t, "edge", get("/whoami"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, "edge");

    // Both the replica's connection and the caller's tunnel connection go.
    let dropped = ferry_testkit::amqp::drop_connections(&env.prefix).await;
    assert!(dropped >= 2, "dropped {dropped} connections");

    // The replica declares its queue again, the tunnel reopens its channel, and a request
    // succeeds (transient failures meanwhile are what callers retry).
    a.wait_metric_within("ferry_hub_bus_reconnects_total", None, 1.0, WAIT)
        .await;
    let body = ferry_testkit::eventually("a request through the hub again", WAIT, || {
        let tunnel = tunnel.clone();
        let t = t.clone();
        async move {
            let response = tunnel.kubernetes(&t, "edge", get("/whoami")).await.ok()?;
            response.bytes().await.ok()
        }
    })
    .await;
    assert_eq!(body, "edge");
    // The agent's stream was never dropped: same session, one connect.
    assert_eq!(agent.welcome().unwrap().session, session);
    assert_eq!(agent.connects(), 1, "the agent never had to reconnect");
    assert_eq!(
        env.route_replica(tenant, "edge").await.map(|r| r.1),
        Some(session)
    );
    // And the replica says it is ready again.
    ferry_testkit::eventually("the replica ready", WAIT, || async {
        a.ready().await.then_some(())
    })
    .await;
}
