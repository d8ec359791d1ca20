//! Who may register agents: tokens are checked for signature, issuer, audience and expiry, and
//! the token's tenant owns the agent, so one tenant can neither register nor reach another's.

use crate::harness::{AUDIENCE, Env, ISSUER, get};
use ferry_agent_sim::{DialError, Script, SimAgent, SimOptions, SimReply};
use ferry_auth::{Claims, Signer};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_wrong_audience_and_foreign_tokens_are_refused() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();

    let mut expired = Claims::new(
        ISSUER,
        "c",
        AUDIENCE,
        tenant,
        vec![],
        Duration::from_secs(60),
    );
    expired.exp -= 3600;
    expired.iat -= 3600;
    let expired = env.signer.sign(&expired).unwrap();
    let wrong_audience = env.token_with(tenant, "ferry-api", Duration::from_secs(60));
    let foreign = Signer::generate_es256("other-issuer-key")
        .unwrap()
        .sign(&Claims::new(
            ISSUER,
            "c",
            AUDIENCE,
            tenant,
            vec![],
            Duration::from_secs(60),
        ))
        .unwrap();

    for (what, token) in [
        ("expired", expired),
        ("wrong audience", wrong_audience),
        ("unknown key", foreign),
        ("garbage", "not-a-jwt".to_string()),
    ] {
        let mut options = SimOptions::new(&hub.url, &token, "cluster-1", Script::new());
        options.reconnect = false;
        let err = SimAgent::start(options).await.unwrap_err();
        match err {
            DialError::Refused(status) => {
                assert_eq!(
                    status.code(),
                    tonic::Code::Unauthenticated,
                    "{what}: {status:?}"
                );
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(env.route_replica(tenant, "cluster-1").await, None);
    assert_eq!(hub.metric("ferry_hub_refused_streams_total", None), 4.0);
    assert_eq!(hub.metric("ferry_hub_connected_agents", None), 0.0);

    // The same agent with a good token is welcome.
    let good = env.agent(&[&hub], tenant, "cluster-1", Script::new()).await;
    assert_eq!(good.welcome().unwrap().replica, "r1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_can_neither_register_nor_reach_another_tenants_agent() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant_a = Uuid::new_v4();
    let tenant_b = Uuid::new_v4();
    let script =
        |name: &str| Script::new().on("GET", "/whoami", SimReply::text(200, name.to_string()));

    let b_agent = env.agent(&[&hub], tenant_b, "prod", script("b")).await;
    let b_route = env.route_replica(tenant_b, "prod").await.unwrap();

    // Tenant A's credential says hello as "prod": that registers tenant A's own "prod",
    // and tenant B's route and stream are untouched.
    let a_agent = env.agent(&[&hub], tenant_a, "prod", script("a")).await;
    assert_eq!(env.route_replica(tenant_b, "prod").await.unwrap(), b_route);
    assert!(env.route_replica(tenant_a, "prod").await.is_some());
    assert_eq!(b_agent.welcome().unwrap().session, b_route.1);
    assert_eq!(hub.metric("ferry_hub_connected_agents", None), 2.0);

    let tunnel = env.tunnel().await;
    let whoami = |tenant: Uuid| {
        let tunnel = tunnel.clone();
        async move {
            tunnel
                .kubernetes(&tenant.to_string(), "prod", get("/whoami"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        }
    };
    assert_eq!(whoami(tenant_b).await, "b");
    assert_eq!(whoami(tenant_a).await, "a");
    assert_eq!(
        (a_agent.requests_handled(), b_agent.requests_handled()),
        (1, 1)
    );

    // Tenant A addressing an agent only tenant B has gets nothing.
    let _b_only = env.agent(&[&hub], tenant_b, "b-only", script("b")).await;
    let err = tunnel
        .kubernetes(&tenant_a.to_string(), "b-only", get("/whoami"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ferry_tunnel::TunnelError::AgentNotConnected { .. }),
        "{err:?}"
    );
}

/// An OIDC issuer on 127.0.0.1 publishing `signer`'s key by discovery; its document names
/// `claimed` as the issuer when given, else its own address (the issuer URL, returned).
async fn discovery_server(
    signer: &Signer,
    claimed: Option<&str>,
) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let jwks = serde_json::to_string(&signer.jwk_set()).unwrap();
    let config = serde_json::json!({
        "issuer": claimed.unwrap_or(&issuer),
        "jwks_uri": format!("{issuer}/keys"),
    });
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(config) }),
        )
        .route("/keys", axum::routing::get(move || async move { jwks }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    (issuer, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_found_by_oidc_discovery() {
    let signer = Signer::generate_es256("discovered").unwrap();
    let (issuer, server) = discovery_server(&signer, None).await;

    let verifier = ferry_svc_agent_hub::keys::load_verifier(&issuer, AUDIENCE, None)
        .await
        .unwrap();
    let tenant = Uuid::new_v4();
    let claims = Claims::new(
        &issuer,
        "c",
        AUDIENCE,
        tenant,
        vec![],
        Duration::from_secs(60),
    );
    let verified = verifier.verify(&signer.sign(&claims).unwrap()).unwrap();
    assert_eq!(verified.tenant, tenant);
    // A key the issuer does not publish is refused.
    let stranger = Signer::generate_es256("stranger").unwrap();
    assert!(verifier.verify(&stranger.sign(&claims).unwrap()).is_err());
    server.abort();
}

/// OIDC Discovery §4.3: a discovery document naming another issuer (a misconfigured or
/// impersonating server) gives the hub no keys at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let signer = Signer::generate_es256("discovered").unwrap();
    let (issuer, server) = discovery_server(&signer, Some("https://someone-else.example")).await;

    let Err(error) = ferry_svc_agent_hub::keys::load_verifier(&issuer, AUDIENCE, None).await else {
        panic!("keys were loaded from a document naming another issuer");
    };
    let chain = ferry_runtime::errors::error_chain(&error);
    assert!(chain.contains("names another issuer"), "{chain}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotated_at_the_issuer_are_picked_up_without_a_restart() {
    let first = Signer::generate_es256("first").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let published = std::sync::Arc::new(std::sync::Mutex::new(
        serde_json::to_value(first.jwk_set()).unwrap(),
    ));
    let config = serde_json::json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/keys") });
    let served = published.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(config) }),
        )
        .route(
            "/keys",
            axum::routing::get(move || {
                let keys = served.lock().unwrap().clone();
                async move { axum::Json(keys) }
            }),
        );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let claims = Claims::new(
        &issuer,
        "c",
        AUDIENCE,
        Uuid::new_v4(),
        vec![],
        Duration::from_secs(60),
    );

    // Two hubs load the issuer's keys while it publishes only the first.
    let load = |interval| {
        let issuer = issuer.clone();
        async move {
            ferry_svc_agent_hub::keys::IssuerKeys::load(&issuer, AUDIENCE, None)
                .await
                .unwrap()
                .with_min_reload_interval(interval)
        }
    };
    let keys = load(Duration::ZERO).await;
    let throttled = load(Duration::from_secs(3600)).await;

    // The issuer rotates: a second key joins its JWKS and signs new tokens.
    let second = Signer::generate_es256("second").unwrap();
    *published.lock().unwrap() =
        serde_json::json!({ "keys": [first.public_jwk(), second.public_jwk()] });
    let token = second.sign(&claims).unwrap();

    // A hub may reload on the unknown key id and then accepts the token...
    assert_eq!(keys.verify(&token).await.unwrap().sub, "c");
    assert!(keys.verify(&first.sign(&claims).unwrap()).await.is_ok());
    // ...but not more often than its interval allows, which guards the issuer.
    assert!(matches!(
        throttled.verify(&token).await,
        Err(ferry_auth::AuthError::UnknownKey(_))
    ));
    // A key the issuer never published stays refused after the reload.
    let stranger = Signer::generate_es256("stranger").unwrap();
    assert!(keys.verify(&stranger.sign(&claims).unwrap()).await.is_err());
    server.abort();
}

/// Starts an agent that does not reconnect, returning the hub's refusal if it was refused.
async fn dial(url: &str, token: &str, agent: &str) -> Result<SimAgent, tonic::Status> {
    let mut options = SimOptions::new(url, token, agent, Script::new());
    options.reconnect = false;
    match SimAgent::start(options).await {
        Ok(agent) => Ok(agent),
        Err(DialError::Refused(status)) => Err(status),
        Err(other) => panic!("expected a welcome or a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_agent_credentials_connect_and_each_owns_one_agent() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();

    // A credential without the Agent role (a deployer's, say) cannot act as any agent.
    let deployer = env.credential(tenant).await;
    let token = env.credential_token(tenant, deployer, &["Deployer", "Tenant Admin"]);
    let refused = dial(&hub.url, &token, "prod").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("Agent role"), "{refused:?}");

    // The first agent credential to say hello as "prod" owns it.
    let owner = env.token(tenant).await;
    let prod = dial(&hub.url, &owner, "prod").await.unwrap();
    let route = env.route_replica(tenant, "prod").await.unwrap();

    // Another agent credential of the same tenant cannot take "prod" over: refused, and the
    // owner's route and stream are untouched.
    let intruder = env.token(tenant).await;
    let refused = dial(&hub.url, &intruder, "prod").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("belongs to another credential"),
        "{refused:?}"
    );
    assert_eq!(env.route_replica(tenant, "prod").await.unwrap(), route);
    assert_eq!(prod.welcome().unwrap().session, route.1);

    // The owner cannot register a second agent either.
    let refused = dial(&hub.url, &owner, "staging").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("belongs to agent \"prod\""),
        "{refused:?}"
    );
    assert_eq!(env.route_replica(tenant, "staging").await, None);

    // The owner reconnecting (a restarted agent) is welcome again.
    prod.stop();
    let again = dial(&hub.url, &owner, "prod").await.unwrap();
    assert!(again.welcome().unwrap().session > route.1);

    // A token naming no credential of the tenant is refused.
    let ghost = env.credential_token(tenant, Uuid::new_v4(), &[ferry_auth::AGENT_ROLE]);
    let refused = dial(&hub.url, &ghost, "ghost").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(hub.metric("ferry_hub_refused_streams_total", None), 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_credential_is_disconnected_and_its_agent_passes_to_the_next_credential() {
    let env = Env::new().await;
    let hub = env.replica("r1").await;
    let tenant = Uuid::new_v4();
    let old = env.credential(tenant).await;
    let old_token = env.credential_token(tenant, old, &[ferry_auth::AGENT_ROLE]);
    let agent = dial(&hub.url, &old_token, "prod").await.unwrap();

    env.revoke(tenant, old).await;
    // Its open stream is closed within seconds...
    ferry_testkit::eventually(
        "the revoked credential's stream to end",
        Duration::from_secs(10),
        || {
            let gone = agent.welcome().is_none();
            async move { gone.then_some(()) }
        },
    )
    .await;
    ferry_testkit::eventually("the route to be released", Duration::from_secs(5), || {
        let env = &env;
        async move {
            env.route_replica(tenant, "prod")
                .await
                .is_none()
                .then_some(())
        }
    })
    .await;
    // ...and its still-valid token no longer opens one.
    let refused = dial(&hub.url, &old_token, "prod").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("revoked"), "{refused:?}");

    // The rotated credential takes the agent over.
    let new = env.token(tenant).await;
    let rotated = dial(&hub.url, &new, "prod").await.unwrap();
    assert_eq!(rotated.welcome().unwrap().replica, "r1");
}
