//! Tokens: a refused token is replaced by reading the token file again; a token is renewed
//! before it expires.

use crate::support::{ISSUER, WAIT, World};
use ferry_auth::{Claims, Signer};
use std::time::Duration;

#[tokio::test]
async fn a_refused_token_file_is_read_again() {
    let world = World::new().await;
    let hub = world.hub(0).await;
    // Signed by a key the hub does not know: refused as unauthenticated.
    let stranger = Signer::generate_es256("stranger").unwrap();
    let claims = Claims::new(
        ISSUER,
        "agent-credential",
        "ferry-hub",
        world.tenant,
        vec![],
        Duration::from_secs(600),
    );
    let token = world.token_file(&stranger.sign(&claims).unwrap());
    let agent = world
        .agent("cluster-t", &hub.url, token.to_str().unwrap(), &[])
        .await;
    ferry_testkit::eventually("the hub to refuse the token", WAIT, || async {
        (agent.metric("ferry_agent_hub_connects_total", &[("outcome", "refused")]) >= 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(agent.metric("ferry_agent_hub_connected", &[]), 0.0);
    assert_eq!(agent.readyz().await, 503);

    // The operator rotates the file: the next attempt reads it.
    std::fs::write(&token, world.token(Duration::from_secs(600))).unwrap();
    world.connected_to("cluster-t", &hub.replica).await;
    assert_eq!(agent.metric("ferry_agent_hub_connected", &[]), 1.0);
    let renewals = agent.metric("ferry_agent_token_renewals_total", &[("outcome", "ok")]);
    assert!(renewals >= 2.0, "the file was read {renewals} times");
    agent.stop().await.unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    let world = World::new().await;
    let hub = world.hub(0).await;
    // A 2s token is due for renewal after 1.6s.
    let token = world.token_file(&world.token(Duration::from_secs(2)));
    let agent = world
        .agent("cluster-e", &hub.url, token.to_str().unwrap(), &[])
        .await;
    world.connected_to("cluster-e", &hub.replica).await;
    let first = agent.metric("ferry_agent_token_renewals_total", &[("outcome", "ok")]);
    std::fs::write(&token, world.token(Duration::from_secs(2))).unwrap();
    ferry_testkit::eventually("two renewals while connected", WAIT, || async {
        let now = agent.metric("ferry_agent_token_renewals_total", &[("outcome", "ok")]);
        (now >= first + 2.0).then_some(())
    })
    .await;
    // Renewal does not disturb the open stream.
    assert_eq!(
        agent.metric("ferry_agent_hub_connects_total", &[("outcome", "connected")]),
        1.0
    );
    agent.stop().await.unwrap();
    hub.stop().await;
}
