//! Tokens: a refused token is replaced by reading the token file again; a token is renewed
//! before it expires.

use crate::issuer::Issuer;
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
    world.connected_to(&agent, "cluster-t", &hub.replica).await;
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
    world.connected_to(&agent, "cluster-e", &hub.replica).await;
    let first = agent.metric("ferry_agent_token_renewals_total", &[("outcome", "ok")]);
    std::fs::write(&token, world.token(Duration::from_secs(2))).unwrap();
    ferry_testkit::eventually("two renewals while connected", WAIT, || async {
        let now = agent.metric("ferry_agent_token_renewals_total", &[("outcome", "ok")]);
        (now >= first + 2.0).then_some(())
    })
    .await;
    // Renewal does not disturb the open stream.
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

#[tokio::test]
async fn the_agent_gets_and_renews_its_token_from_the_real_issuer() {
    // Tokens live 3s: renewed after 2.4s, so several renewals happen within the test.
    let mut world = World::new().await;
    let issuer = Issuer::start(3, &world.db).await;
    let credential = issuer.credential().await;
    let secret = credential.client_secret.clone().expect("a new secret");
    world.tenant = credential.tenant_id.as_uuid();
    // The hub finds the issuer's keys by discovery too.
    let hub = world.hub_trusting(0, &issuer.base, None).await;
    let agent = world
        .agent_with(vec![
            "ferry-agent",
            "--hub-url",
            &hub.url,
            "--agent-id",
            "cluster-o",
            "--issuer-url",
            &issuer.base,
            "--client-id",
            &credential.client_id,
            "--client-secret",
            &secret,
            "--kubeconfig",
            world.kubeconfig.to_str().unwrap(),
            "--reconnect-initial-ms",
            "50",
            "--reconnect-max-ms",
            "400",
        ])
        .await;
    world.connected_to(&agent, "cluster-o", &hub.replica).await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(world.client("cluster-o"));
    assert!(namespaces.get("default").await.is_ok());

    ferry_testkit::eventually("renewals before expiry", WAIT, || async {
        let ok = agent.metric("ferry_agent_token_renewals_total", &[("outcome", "ok")]);
        (ok >= 3.0).then_some(())
    })
    .await;
    assert_eq!(
        agent.metric("ferry_agent_token_renewals_total", &[("outcome", "failed")]),
        0.0
    );
    assert_eq!(
        agent.metric(
            "ferry_agent_hub_connects_total",
            &[("outcome", "connected")]
        ),
        1.0
    );

    // A wrong secret gets no token, so no stream.
    let intruder = world
        .agent_with(vec![
            "ferry-agent",
            "--hub-url",
            &hub.url,
            "--agent-id",
            "cluster-x",
            "--issuer-url",
            &issuer.base,
            "--client-id",
            &credential.client_id,
            "--client-secret",
            "not-the-secret",
            "--kubeconfig",
            world.kubeconfig.to_str().unwrap(),
        ])
        .await;
    ferry_testkit::eventually("the grant to be refused", WAIT, || async {
        let failed = intruder.metric("ferry_agent_token_renewals_total", &[("outcome", "failed")]);
        (failed >= 1.0).then_some(())
    })
    .await;
    assert_eq!(intruder.metric("ferry_agent_hub_connected", &[]), 0.0);
    intruder.stop().await.unwrap();
    agent.stop().await.unwrap();
    hub.stop().await;
    issuer.stop().await;
}
