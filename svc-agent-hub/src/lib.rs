//! ferry-svc-agent-hub: the hub Ferry agents dial. Each replica serves `AgentHub.Tunnel` (gRPC
//! over TLS) to agents, records which agent it holds in Redis (a lease fenced by a session
//! number), consumes its own queue on the `ferry.hub` exchange and relays every request to the
//! agent's stream, publishing the answer to the caller's reply queue.
//!
//! Each connection is also recorded in Postgres (the agents table the API lists), off the
//! stream's path.
//!
//! Modules: [`settings`] (flags and environment), [`keys`] (the issuer's keys), [`routes`]
//! (Redis leases), [`presence`] (the Postgres record), [`agents`] (the gRPC streams), [`relay`]
//! (the bus side), [`metrics`].

pub mod agents;
pub mod keys;
pub mod metrics;
pub mod presence;
pub mod relay;
pub mod routes;
pub mod settings;

pub use settings::Settings;

use crate::agents::{HubService, HubState};
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::routes::Routes;
use anyhow::Context;
use ferry_proto::agent::agent_hub_server::AgentHubServer;
use ferry_runtime::{Health, ReadinessCheck, checks};
use prometheus::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::{Identity, Server, ServerTlsConfig};

/// How long connecting to RabbitMQ may take at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one Redis command may wait for its answer.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The sockets a replica serves, bound by the caller (tests bind `127.0.0.1:0`).
#[derive(Debug)]
pub struct Listeners {
    /// Where agents connect.
    pub hub: TcpListener,
    /// The admin server (`/healthz`, `/readyz`, `/metrics`).
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `settings` (the admin address defaults to `0.0.0.0:9090`).
    pub async fn bind(settings: &Settings) -> anyhow::Result<Listeners> {
        let admin_addr = settings.common.admin_addr_or(([0, 0, 0, 0], 9090).into());
        Ok(Listeners {
            hub: TcpListener::bind(settings.hub_addr)
                .await
                .with_context(|| format!("binding FERRY_HUB_ADDR {}", settings.hub_addr))?,
            admin: TcpListener::bind(admin_addr)
                .await
                .with_context(|| format!("binding FERRY_ADMIN_ADDR {admin_addr}"))?,
        })
    }
}

/// Runs one replica until `shutdown` fires, with a fresh metrics registry.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_registry(
        settings,
        listeners,
        ferry_runtime::admin::new_registry(),
        shutdown,
    )
    .await
}

/// Runs one replica until `shutdown` fires, registering its metrics in `registry`.
///
/// On shutdown the replica stops accepting streams, tells every agent to go away (so it
/// reconnects to another replica), releases the routes its sessions still hold, and returns.
pub async fn run_with_registry(
    settings: Settings,
    listeners: Listeners,
    registry: Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    settings.validate()?;
    // tonic and the discovery client both use rustls; pick its provider once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let replica = settings
        .replica_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let prefix = settings.amqp.bus_prefix.clone();

    let keys = keys::IssuerKeys::load(
        &settings.issuer,
        &settings.audience,
        settings.jwks_file.as_deref(),
    )
    .await
    .context("loading the token issuer's keys (FERRY_HUB_ISSUER / FERRY_HUB_JWKS_FILE)")?;
    let pool = ferry_runtime::connect::postgres(&settings.postgres).await?;
    let redis_client = redis::Client::open(settings.redis.redis_url.as_str())
        .context("FERRY_REDIS_URL is not a Redis URL")?;
    // Thousands of agents can leave at once (a replica drains, a network blips); their route
    // releases queue on one multiplexed connection, so allow more than the default 500 ms.
    let redis_config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
    let redis = redis::aio::ConnectionManager::new_with_config(redis_client, redis_config)
        .await
        .context("connecting to Redis")?;
    // A broker that accepts TCP but never answers the handshake would hang start-up silently.
    let amqp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        lapin::Connection::connect(
            &settings.amqp.amqp_url,
            lapin::ConnectionProperties::default(),
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("RabbitMQ did not answer within {CONNECT_TIMEOUT:?}"))?
    .context("connecting to RabbitMQ")?;
    let consume_channel = amqp.create_channel().await?;
    let reply_channel = amqp.create_channel().await?;
    let consumer = relay::consume(&consume_channel, &prefix, &replica)
        .await
        .context("declaring the replica queue")?;

    let metrics = Metrics::register(&registry).context("registering metrics")?;
    let routes = Routes::new(redis.clone(), &prefix, &replica, settings.lease_ttl());
    routes
        .mark_alive()
        .await
        .context("marking the replica alive")?;
    let tasks = TaskTracker::new();
    let presence = Presence::new(
        ferry_store::Store::from_pool(pool),
        &replica,
        settings.heartbeat_record_interval(),
        tasks.clone(),
    );
    let state = Arc::new(HubState {
        replica: replica.clone(),
        routes: routes.clone(),
        presence,
        keys,
        metrics,
        agents: Mutex::new(HashMap::new()),
        heartbeat_interval: settings.heartbeat_interval(),
        lease_ttl: settings.lease_ttl(),
        shutdown: CancellationToken::new(),
        tasks,
    });

    // Postgres only records who is connected (best effort, off the relay's path): a hub without
    // it still relays, so it stays ready and keeps taking agents.
    let checks: Vec<Arc<dyn ReadinessCheck>> = vec![
        Arc::new(checks::Redis(redis.clone())),
        Arc::new(checks::RabbitMq(amqp)),
    ];
    let health = Health::new(checks);
    let grace = Duration::from_secs(settings.common.shutdown_grace_secs);
    let tls = tls_config(&settings).await?;
    tracing::info!(
        replica = %replica,
        addr = ?listeners.hub.local_addr().ok(),
        tls = tls.is_some(),
        "agent hub listening"
    );

    let channels = Channels {
        consume: consume_channel,
        reply: reply_channel,
    };
    let work = serve(
        state,
        listeners.hub,
        tls,
        consumer,
        channels,
        shutdown.clone(),
    );
    ferry_runtime::lifecycle::run(
        "svc-agent-hub",
        listeners.admin,
        health,
        registry,
        shutdown,
        grace,
        work,
    )
    .await
}

/// The replica's AMQP channels: one consuming its queue, one publishing replies.
struct Channels {
    consume: lapin::Channel,
    reply: lapin::Channel,
}

/// Serves agents and the replica queue until `shutdown`, then drains.
async fn serve(
    state: Arc<HubState>,
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    consumer: lapin::Consumer,
    channels: Channels,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut builder = Server::builder()
        // Dead connections are found by missing heartbeats; keepalives find half-open TCP.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).context("configuring TLS")?;
    }
    let stop_accepting = CancellationToken::new();
    let grpc = builder
        .add_service(AgentHubServer::new(HubService::new(state.clone())))
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            stop_accepting.clone().cancelled_owned(),
        );
    let grpc = tokio::spawn(grpc);
    let relay = tokio::spawn(relay::serve(
        state.clone(),
        consumer,
        channels.reply.clone(),
    ));
    let alive = tokio::spawn(keep_alive(state.clone()));

    let result = tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        ended = relay => match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("relaying requests")),
            Err(e) => Err(anyhow::anyhow!("the relay task failed: {e}")),
        },
    };
    alive.abort();

    // Stop taking streams and requests, then end every stream (go-away, release routes).
    state.shutdown.cancel();
    stop_accepting.cancel();
    state.tasks.close();
    state.tasks.wait().await;
    if let Err(e) = state.routes.mark_gone().await {
        tracing::warn!(error = %e, "removing the replica's liveness mark");
    }
    // Closing the consuming channel cancels the consumer, which deletes the auto-delete queue:
    // requests still on their way are returned to their callers, who look the agent up again.
    for channel in [&channels.consume, &channels.reply] {
        if let Err(e) = channel.close(200, "replica shutting down".into()).await {
            tracing::warn!(error = %e, "closing a RabbitMQ channel");
        }
    }
    match grpc.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "gRPC server ended with an error"),
        Err(e) => tracing::warn!(error = %e, "gRPC server task failed"),
    }
    result
}

/// Refreshes the replica's liveness mark every half lease.
async fn keep_alive(state: Arc<HubState>) {
    let mut tick = tokio::time::interval(state.lease_ttl / 2);
    loop {
        tick.tick().await;
        if let Err(e) = state.routes.mark_alive().await {
            tracing::warn!(error = %e, "refreshing the replica's liveness mark");
        }
    }
}

/// The TLS configuration, or `None` when plaintext was explicitly chosen.
async fn tls_config(settings: &Settings) -> anyhow::Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        // validate() allows this only with --insecure-plaintext.
        tracing::warn!("serving agents over plaintext (FERRY_HUB_INSECURE_PLAINTEXT)");
        return Ok(None);
    };
    let cert_pem = tokio::fs::read(cert)
        .await
        .with_context(|| format!("reading FERRY_HUB_TLS_CERT {}", cert.display()))?;
    let key_pem = tokio::fs::read(key)
        .await
        .with_context(|| format!("reading FERRY_HUB_TLS_KEY {}", key.display()))?;
    Ok(Some(
        ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem)),
    ))
}
