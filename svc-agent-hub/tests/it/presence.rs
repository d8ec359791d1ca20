//! The agents table in Postgres: a connection is recorded with its versions and replica,
//! heartbeats move `last_heartbeat_at`, a closed stream or a draining replica records the
//! disconnect, and every reconnect starts a newer session.

use crate::harness::{Env, RECORD_INTERVAL};
use ferry_agent_sim::Script;
use ferry_store::agents::{self, Agent};
use ferry_store::{Store, TenantId};
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

/// Waits until the agent's row satisfies `check`, and returns it.
async fn row_where(
    store: &Store,
    tenant: Uuid,
    agent: &str,
    what: &str,
    check: impl Fn(&Agent) -> bool,
) -> Agent {
    ferry_testkit::eventually(what, WAIT, || {
        let store = store.clone();
        let found = async move {
            agents::list(&store, TenantId::from(tenant))
                .await
                .unwrap()
                .into_iter()
                .find(|a| a.identifier == agent)
        };
        let check = &check;
        async move { found.await.filter(check) }
    })
    .await
}

#[tokio::test]
async fn a_connection_is_recorded_until_the_agent_leaves_and_reconnects_start_new_sessions() {
    let env = Env::new().await;
    let store = env.store();
    let tenant = env.tenant("presence-one").await;
    let replica = env.replica("pg-one").await;

    let agent = env
        .agent(&[&replica], tenant, "edge-1", Script::new())
        .await;
    let connected = row_where(&store, tenant, "edge-1", "the connection recorded", |a| {
        a.is_connected()
    })
    .await;
    assert_eq!(connected.hub_replica.as_deref(), Some("pg-one"));
    assert!(connected.agent_version.starts_with("ferry-agent-sim/"));
    assert_eq!(connected.kubernetes_version, "v1.33.0-sim");
    let connected_at = connected.connected_at.expect("connected_at is set");
    assert_eq!(connected.disconnected_at, None);
    let first_session = connected.session;

    // The hub sends heartbeats every 200 ms; the row moves at most every RECORD_INTERVAL.
    let beat = row_where(&store, tenant, "edge-1", "a heartbeat recorded", |a| {
        a.last_heartbeat_at
            .is_some_and(|at| at >= connected_at + RECORD_INTERVAL)
    })
    .await;
    assert_eq!(beat.session, first_session);
    assert_eq!(beat.connected_at, Some(connected_at));

    agent.stop();
    let gone = row_where(&store, tenant, "edge-1", "the disconnect recorded", |a| {
        a.disconnected_at.is_some()
    })
    .await;
    assert_eq!(gone.hub_replica, None);
    assert_eq!(gone.session, first_session);
    assert!(gone.disconnected_at.unwrap() >= gone.last_heartbeat_at.unwrap());

    let _again = env
        .agent(&[&replica], tenant, "edge-1", Script::new())
        .await;
    let back = row_where(&store, tenant, "edge-1", "the reconnect recorded", |a| {
        a.is_connected()
    })
    .await;
    assert_eq!(back.session, first_session + 1);
    assert_eq!(back.disconnected_at, None);
    assert!(back.connected_at.unwrap() > connected_at);
    assert_eq!(
        back.id, connected.id,
        "the agent keeps its id across sessions"
    );
    assert_eq!(
        agents::list(&store, TenantId::from(tenant))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_draining_replica_hands_the_record_over_and_records_the_last_disconnect() {
    let env = Env::new().await;
    let store = env.store();
    let tenant = env.tenant("presence-drain").await;
    let a = env.replica("pg-a").await;
    let b = env.replica("pg-b").await;

    let agent = env.agent(&[&a, &b], tenant, "edge-2", Script::new()).await;
    let on_a = row_where(&store, tenant, "edge-2", "the connection to pg-a", |r| {
        r.hub_replica.as_deref() == Some("pg-a")
    })
    .await;

    // Draining says go-away; the agent moves to pg-b under a newer session, and pg-a's own
    // disconnect (an older session) cannot clear pg-b's record, whichever lands first.
    a.stop().await.unwrap();
    let on_b = row_where(&store, tenant, "edge-2", "the connection to pg-b", |r| {
        r.hub_replica.as_deref() == Some("pg-b")
    })
    .await;
    assert!(on_b.session > on_a.session);
    // The row can move before the agent has read pg-b's welcome: wait for the welcome.
    ferry_testkit::eventually(
        "the agent to be welcomed by pg-b",
        Duration::from_secs(10),
        || {
            let replica = agent.welcome().map(|w| w.replica);
            async move { (replica.as_deref() == Some("pg-b")).then_some(()) }
        },
    )
    .await;

    // With no replica left to go to, the last drain leaves the agent recorded as gone.
    b.stop().await.unwrap();
    let gone = row_where(&store, tenant, "edge-2", "the drain's disconnect", |r| {
        !r.is_connected()
    })
    .await;
    assert_eq!(gone.session, on_b.session);
    assert!(gone.disconnected_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_of_a_killed_replica_are_recorded_disconnected_within_seconds() {
    let env = Env::new().await;
    let store = env.store();
    let tenant = env.tenant("presence-kill").await;
    let doomed = env.replica("pg-doomed").await;
    let survivor = env.replica("pg-survivor").await;

    // The agent knows only the doomed replica, so it cannot move: only a sweep can tell.
    let _agent = env.agent(&[&doomed], tenant, "edge-3", Script::new()).await;
    row_where(
        &store,
        tenant,
        "edge-3",
        "the connection to pg-doomed",
        |r| r.hub_replica.as_deref() == Some("pg-doomed"),
    )
    .await;

    let killed_at = std::time::Instant::now();
    doomed.kill().await;
    let gone = ferry_testkit::eventually(
        "the killed replica's agent recorded as disconnected",
        Duration::from_secs(15),
        || {
            let store = store.clone();
            async move {
                agents::get(&store, TenantId::from(tenant), "edge-3")
                    .await
                    .ok()
                    .filter(|a| !a.is_connected())
            }
        },
    )
    .await;
    let took = killed_at.elapsed();
    // Liveness TTL (3 s) + a second look one TTL later + the sweep interval: well under 10 s,
    // against the 60 s and more of waiting for stale heartbeats.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(gone.disconnected_at.is_some());
    survivor
        .wait_metric("ferry_hub_swept_agents_total", None, 1.0)
        .await;
}
