//! ferry-svc-scheduler: deployment orchestration: plans, targets, strategies, steps, timers and
//! rollback.
//!
//! The engine ([`Engine`]) consumes the scheduler work queue: each message (a start, an approval
//! decided, a completion, an abort, or a timer's wake-up) reconciles its deployment: every target
//! moves toward its plan through idempotent kube-rs calls, then the new state, its step history,
//! timers, approvals and outbox messages commit in one short, version-checked transaction. Durable
//! timers (pauses, approval expirations, readiness ticks) are rows that any replica fires.
//!
//! `run` is the whole service; `main.rs` only parses settings and calls it, and tests start the
//! engine in process with [`run_engine`] and their own [`Clusters`].

mod advance;
mod apply;
mod autoscalers;
pub mod baseline;
mod bluegreen;
pub mod capacity;
pub mod cluster;
pub mod clusters;
mod decide;
mod deployed;
mod effect;
pub mod engine;
mod exclusive;
pub mod expose;
#[cfg(test)]
mod fixtures;
pub mod gateway;
mod mesh;
pub mod metrics;
mod moves;
pub mod objects;
pub mod outcome;
pub mod previous;
pub mod progress;
#[cfg(test)]
mod progress_compat;
pub mod readiness;
pub mod render;
pub mod reports;
mod requests;
pub mod retry;
pub mod routing;
mod target;
mod template;
pub mod timer_loop;
mod traffic;
mod undo;
mod waits;

pub use clusters::{ClusterError, Clusters, TunnelClusters};
pub use engine::Engine;
pub use outcome::Input;

use anyhow::Context;
use clap::Parser;
use ferry_backends::{AmqpArgs, PostgresArgs, RedisArgs, connect};
use ferry_bus::consumer::ConsumerConfig;
use ferry_bus::outbox::{Relay, RelayConfig};
use ferry_bus::{Bus, ConsumerMetrics, WorkQueue};
use ferry_runtime::{CommonArgs, Health, lifecycle};
use ferry_store::{Store, StoreError};
use sqlx::PgPool;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The admin address used when `FERRY_ADMIN_ADDR` is not set.
pub const DEFAULT_ADMIN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9102);

/// The consumer name of the scheduler.
pub const CONSUMER: &str = "scheduler";

/// Settings of svc-scheduler, from flags or `FERRY_*` environment variables.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "ferry-svc-scheduler",
    version,
    about = "Ferry's deployment scheduler"
)]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Redis, where the agent hub records which replica holds which agent.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Seconds between readiness checks of a target waiting for its pods.
    #[arg(long, env = "FERRY_SCHEDULER_TICK_SECS", default_value_t = 5)]
    pub tick_secs: u64,
    /// Wake targets waiting for pods from a watch of their ReplicaSets (`false`: the tick only).
    #[arg(long, env = "FERRY_SCHEDULER_WATCH_READINESS", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_readiness: bool,
    /// Milliseconds between looks for due timers.
    #[arg(long, env = "FERRY_SCHEDULER_TIMER_POLL_MS", default_value_t = 1000)]
    pub timer_poll_ms: u64,
    /// The public base URL of svc-api, where webhook callbacks (`{{ferry.callbackUri}}`) point.
    #[arg(long, env = "FERRY_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
}

/// The public base URL of svc-api used when `FERRY_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";

/// Why the engine could not reconcile a deployment.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database refused or failed (a `Conflict` means re-read and reconcile again).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The cluster refused or could not be reached.
    #[error("cluster: {0}")]
    Kube(#[from] cluster::KubeOpError),
    /// Writing to the outbox failed.
    #[error("outbox: {0}")]
    Bus(#[from] ferry_bus::BusError),
    /// The stored plan does not decode: this code cannot run the deployment.
    #[error("{0}")]
    Plan(#[from] ferry_deploy::StoredPlanError),
    /// Another pass held the deployment this long ([`exclusive`]): try again later.
    #[error("another reconcile of the deployment held it for {0:?}")]
    Busy(Duration),
}

impl EngineError {
    /// Whether retrying cannot help (dead-letter the message with the reason).
    pub fn is_permanent(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_not_found(),
            EngineError::Plan(_) => true,
            EngineError::Kube(_) | EngineError::Bus(_) | EngineError::Busy(_) => false,
        }
    }
}

/// How the engine paces itself.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How often a target waiting for pods looks again (a timer row, not a sleep).
    pub tick: Duration,
    /// How often the timer loop looks for due timers.
    pub timer_poll: Duration,
    /// Timers claimed per transaction.
    pub timer_batch: i64,
    /// Version conflicts tolerated in one reconcile before the message is retried later.
    pub max_conflicts: u32,
    /// Messages handled at once.
    pub prefetch: u16,
    /// Delay before a failed message is retried.
    pub retry_delay: Duration,
    /// The public base URL of svc-api, for webhook callback URIs.
    pub api_url: String,
    /// How long a webhook may take to call back before its step fails.
    pub callback_timeout: Duration,
    /// How long a webhook without callback (`disableCallback`) may take to be answered,
    /// retries included, before its step fails.
    pub webhook_deadline: Duration,
    /// How long past its runs' own time (interval × runs, and half that again) an analysis
    /// may take to answer before its step fails.
    pub analysis_grace: Duration,
    /// Durable retries of messages that keep failing (see [`retry`]).
    pub retry: retry::RetryPolicy,
    /// Where the outbox relay counts parked rows and failed publishes (none in tests).
    pub relay_metrics: Option<ferry_bus::RelayMetrics>,
    /// Where deployments, steps, approvals and automatic actions are counted (none in tests).
    pub metrics: Option<metrics::SchedulerMetrics>,
    /// How long a reconcile waits for another pass of the same deployment to finish before its
    /// message is retried later.
    pub lock_wait: Duration,
    /// Whether targets waiting for pods are woken by a watch of their ReplicaSets
    /// ([`readiness`]); the tick wakes them either way.
    pub watch_readiness: bool,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            tick: Duration::from_secs(5),
            timer_poll: Duration::from_secs(1),
            timer_batch: 100,
            max_conflicts: 20,
            prefetch: 16,
            retry_delay: Duration::from_secs(5),
            api_url: DEFAULT_API_URL.to_string(),
            callback_timeout: Duration::from_secs(24 * 3600),
            webhook_deadline: Duration::from_secs(3600),
            analysis_grace: Duration::from_secs(600),
            retry: retry::RetryPolicy::default(),
            relay_metrics: None,
            metrics: None,
            watch_readiness: true,
            lock_wait: Duration::from_secs(60),
        }
    }
}

/// Runs the engine until `shutdown`: the outbox relay, the scheduler queue's consumer and the
/// timer loop, all draining before it returns.
pub async fn run_engine(
    pool: PgPool,
    bus: Bus,
    clusters: Arc<dyn Clusters>,
    config: EngineConfig,
    metrics: ConsumerMetrics,
    shutdown: CancellationToken,
) {
    let store = Store::from_pool(pool.clone());
    let mut engine = Engine::new(store.clone(), clusters.clone(), config.clone());
    if config.watch_readiness {
        engine = engine.with_readiness(readiness::Readiness::start(
            store.clone(),
            clusters,
            config.metrics.clone(),
            shutdown.clone(),
        ));
    }
    let engine = Arc::new(engine);
    // Publishes what this service's transactions write to the outbox.
    let mut relay = Relay::new(pool, bus.clone(), RelayConfig::default());
    if let Some(metrics) = config.relay_metrics.clone() {
        relay = relay.with_metrics(metrics);
    }
    let mut consumer = ConsumerConfig::new(WorkQueue::Scheduler);
    consumer.prefetch = config.prefetch;
    consumer.retry_delay = config.retry_delay;
    // The engine parks a message on this attempt, before the consumer would dead-letter it.
    consumer.max_attempts = config.retry.park_at_attempt.max(1);
    tokio::join!(
        relay.run(shutdown.clone()),
        ferry_bus::run_consumer(&bus, consumer, engine, metrics, shutdown.clone()),
        timer_loop::run(
            store,
            config.timer_poll,
            config.timer_batch,
            shutdown.clone()
        ),
    );
}

/// Runs svc-scheduler until `shutdown` fires, serving health and metrics on `admin`. Clusters
/// are reached through the agent hub.
pub async fn run(
    settings: Settings,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ferry_runtime::telemetry::install_crypto();
    let registry = ferry_runtime::admin::new_registry();
    let pool = connect::postgres(&settings.postgres).await?;
    let bus = connect::bus(&settings.amqp, "svc-scheduler").await?;
    let redis = redis::Client::open(settings.redis.redis_url.as_str())
        .context("parsing the Redis URL (FERRY_REDIS_URL)")?
        .get_connection_manager()
        .await
        .context("connecting to Redis (FERRY_REDIS_URL)")?;
    let mut checks = connect::checks(&pool, &bus);
    // Without Redis no agent can be found, so no cluster can be reached.
    checks.push(Arc::new(ferry_backends::checks::Redis(redis.clone())));
    let tunnel = ferry_tunnel::AgentTunnel::connect(&bus, redis, &settings.amqp.bus_prefix)
        .await
        .context("opening the agent tunnel")?
        .with_metrics(
            ferry_tunnel::TunnelMetrics::register(&registry).context("registering metrics")?,
        );
    let clusters: Arc<dyn Clusters> = Arc::new(TunnelClusters::new(tunnel));
    let metrics = ConsumerMetrics::register(&registry).context("registering metrics")?;
    let health = Health::new(checks);
    let config = EngineConfig {
        tick: Duration::from_secs(settings.tick_secs.max(1)),
        timer_poll: Duration::from_millis(settings.timer_poll_ms.max(10)),
        watch_readiness: settings.watch_readiness,
        api_url: settings.api_url.trim_end_matches('/').to_string(),
        relay_metrics: Some(
            ferry_bus::RelayMetrics::register(&registry).context("registering metrics")?,
        ),
        metrics: Some(
            metrics::SchedulerMetrics::register(&registry).context("registering metrics")?,
        ),
        ..EngineConfig::default()
    };
    let work_shutdown = shutdown.clone();
    let work = async move {
        run_engine(pool, bus, clusters, config, metrics, work_shutdown).await;
        Ok(())
    };
    lifecycle::run(
        "svc-scheduler",
        admin,
        health,
        registry,
        shutdown,
        Duration::from_secs(settings.common.shutdown_grace_secs),
        work,
    )
    .await
}
