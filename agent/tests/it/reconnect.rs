//! The agent survives its hub: when the replica shuts down (go-away), the agent reconnects
//! with backoff to the replica that takes its place, and a caller's request made meanwhile
//! succeeds on retry.

use crate::support::{WAIT, World};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use std::time::Duration;

#[tokio::test]
async fn the_agent_reconnects_after_the_hub_restarts() {
    let world = World::new().await;
    let first = world.hub(0).await;
    let port = first.addr.port();
    let token = world.token_file(&world.token(Duration::from_secs(600)));
    let agent = world
        .agent("cluster-r", &first.url, token.to_str().unwrap(), &[])
        .await;
    world
        .connected_to(&agent, "cluster-r", &first.replica)
        .await;
    assert_eq!(agent.readyz().await, 200);

    let namespaces: Api<Namespace> = Api::all(world.client("cluster-r"));
    let before = namespaces.list(&ListParams::default()).await.unwrap();
    assert!(before.items.len() >= 3);

    first.stop().await;
    ferry_testkit::eventually("the agent to notice the hub is gone", WAIT, || async {
        (agent.metric("ferry_agent_hub_connected", &[]) == 0.0).then_some(())
    })
    .await;
    assert_eq!(agent.readyz().await, 503, "not ready without a hub stream");

    // A caller asks while no replica holds the agent: the tunnel retries the GET after each
    // route look-up within its deadline, and it succeeds once the agent is back.
    let pending = {
        let namespaces = namespaces.clone();
        tokio::spawn(async move { namespaces.list(&ListParams::default()).await })
    };
    // Wait until the agent has failed to reach the hub at least once: it is backing off.
    ferry_testkit::eventually("a failed reconnect attempt", WAIT, || async {
        (agent.metric("ferry_agent_hub_connects_total", &[("outcome", "failed")]) >= 1.0)
            .then_some(())
    })
    .await;

    let second = world.hub(port).await;
    world
        .connected_to(&agent, "cluster-r", &second.replica)
        .await;
    let retried = pending.await.unwrap().expect("the caller's retry succeeds");
    assert_eq!(retried.items.len(), before.items.len());
    let after = namespaces.list(&ListParams::default()).await.unwrap();
    assert_eq!(after.items.len(), before.items.len());
    assert_eq!(
        agent.metric(
            "ferry_agent_hub_connects_total",
            &[("outcome", "connected")]
        ),
        2.0
    );
    ferry_testkit::eventually("ready again", WAIT, || async {
        (agent.readyz().await == 200).then_some(())
    })
    .await;
    agent.stop().await.unwrap();
    second.stop().await;
}
