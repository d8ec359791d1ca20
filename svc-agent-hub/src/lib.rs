//! ferry-svc-agent-hub: the hub Ferry agents dial. Each replica serves `AgentHub.Tunnel` (gRPC
//! over TLS) to agents, records which agent it holds in Redis (a lease fenced by a session
//! number), consumes its own queue on the `ferry.hub` exchange and relays every request to the
//! agent's stream, publishing the answer to the caller's reply queue.
//!
//! A stream is admitted against Postgres (the credential holds the Agent role, is not revoked,
//! and owns the agent identifier it says hello with; see [`agents`]); while Postgres is away only
//! reconnects of agents this replica already checked are admitted. Each connection is also
//! recorded in Postgres (the agents table the API lists), off the stream's path.
//!
//! Modules: [`settings`] (flags and environment), [`keys`] (the issuer's keys), [`routes`]
//! (Redis leases), [`presence`] (the Postgres record), [`sweep`] (recording the agents of dead
//! replicas as disconnected), [`agents`] (the gRPC streams), [`relay`] (the bus side),
//! [`metrics`].

pub mod agents;
pub mod keys;
pub mod metrics;
pub mod presence;
pub mod relay;
pub mod routes;
pub mod settings;
pub mod sweep;

pub use settings::Settings;

use crate::agents::{HubService, HubState};
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::routes::Routes;
use anyhow::Context;
use ferry_backends::checks;

use ferry_proto::agent::agent_hub_server::AgentHubServer;
use ferry_runtime::{Health, ReadinessCheck};
use ferry_store::revocations::Revocations;
use prometheus::Registry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::{Identity, Server, ServerTlsConfig};

/// How long one Redis command may wait for its answer.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the credentials of connected agents are checked for revocation.
const REVOCATION_SWEEP: Duration = Duration::from_secs(2);

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
    ferry_runtime::telemetry::install_crypto();
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
    let pool = ferry_backends::connect::postgres(&settings.postgres).await?;
    let redis_client = redis::Client::open(settings.redis.redis_url.as_str())
        .context("FERRY_REDIS_URL is not a Redis URL")?;
    // Thousands of agents can leave at once (a replica drains, a network blips); their route
    // releases queue on one multiplexed connection, so allow more than the default 500 ms.
    let redis_config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
    let redis = redis::aio::ConnectionManager::new_with_config(redis_client, redis_config)
        .await
        .context("connecting to Redis")?;
    // Later losses of the connection are reconnected (see `relay::run`); the name, under the
    // bus prefix, shows in the broker's connection list. The hub declares only its own queue.
    let bus = ferry_backends::connect::bus_connection(
        &settings.amqp,
        &format!("{prefix}svc-agent-hub-{replica}"),
    )
    .await?;
    // The first declaration fails start-up loudly (a broker refusing it is a configuration
    // error); later ones happen on every reconnect.
    let first = relay::Consuming::open(&bus, &prefix, &replica)
        .await
        .context("declaring the replica queue")?;

    let metrics = Metrics::register(&registry).context("registering metrics")?;
    let grpc_metrics =
        ferry_runtime::metrics::GrpcMetrics::register(&registry).context("registering metrics")?;
    let routes = Routes::new(redis.clone(), &prefix, &replica, settings.lease_ttl());
    routes
        .mark_alive()
        .await
        .context("marking the replica alive")?;
    let tasks = TaskTracker::new();
    let store = ferry_store::Store::from_pool(pool);
    let presence = Presence::new(
        store.clone(),
        &replica,
        settings.heartbeat_record_interval(),
        tasks.clone(),
    );
    let state = Arc::new(HubState {
        replica: replica.clone(),
        routes: routes.clone(),
        presence,
        revocations: Revocations::new(store.clone(), Revocations::DEFAULT_TTL),
        store,
        known_bindings: Mutex::new(HashSet::new()),
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
    // Ready for agents only while the replica queue is consumed: requests for this replica's
    // agents cannot reach it otherwise (its streams are kept meanwhile).
    let consuming = relay::Consuming::state();
    let checks: Vec<Arc<dyn ReadinessCheck>> = vec![
        Arc::new(checks::Redis(redis.clone())),
        Arc::new(relay::ReplicaQueueCheck {
            bus: bus.clone(),
            consuming: consuming.clone(),
        }),
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

    let queue = relay::QueueLoop {
        bus,
        prefix,
        first,
        consuming,
    };
    let work = serve(
        state,
        listeners.hub,
        tls,
        grpc_metrics,
        queue,
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

/// Serves agents and the replica queue until `shutdown`, then drains.
async fn serve(
    state: Arc<HubState>,
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    grpc_metrics: ferry_runtime::metrics::GrpcMetrics,
    queue: relay::QueueLoop,
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
    let tunnel_method = format!(
        "/{}/Tunnel",
        ferry_proto::agent::agent_hub_server::SERVICE_NAME
    );
    let grpc = builder
        .layer(grpc_metrics.layer(&[tunnel_method.as_str()]))
        .add_service(AgentHubServer::new(HubService::new(state.clone())))
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            stop_accepting.clone().cancelled_owned(),
        );
    let grpc = tokio::spawn(grpc);
    // The queue loop stops after the streams drained, so relays in flight can still reply.
    let queue_stop = CancellationToken::new();
    let relay = tokio::spawn(queue.run(state.clone(), queue_stop.clone()));
    let alive = tokio::spawn(keep_alive(state.clone()));
    let sweep = tokio::spawn(agents::sweep_revoked(state.clone(), REVOCATION_SWEEP));
    let presence_sweep = tokio::spawn(sweep::run(state.clone()));

    shutdown.cancelled().await;
    alive.abort();
    sweep.abort();
    presence_sweep.abort();

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
    queue_stop.cancel();
    if let Err(e) = relay.await {
        tracing::warn!(error = %e, "the replica queue task failed");
    }
    match grpc.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "gRPC server ended with an error"),
        Err(e) => tracing::warn!(error = %e, "gRPC server task failed"),
    }
    Ok(())
}

/// Refreshes the replica's liveness mark three times per its TTL.
async fn keep_alive(state: Arc<HubState>) {
    let mut tick = tokio::time::interval(routes::LIVENESS_TTL / 3);
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
