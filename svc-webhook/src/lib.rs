//! ferry-svc-webhook: outgoing webhooks (directly through the network guard, or through an
//! agent's HTTP relay into its private network), the failure side of their callbacks, and
//! notifications of deployment events to the tenant's endpoints.
//!
//! - [`handler`] consumes `webhook.requested`: the delivery is stored leased to this replica
//!   and sent at once;
//! - [`notify`] consumes deployment events (the notify queue, bound to `ferry.events`) and
//!   stores one delivery per endpoint that wants the event;
//! - [`deliver`] makes one attempt (secrets opened at send time, [`policy`] limits, retry
//!   decisions) and records it, with `webhook.completed` through the outbox;
//! - [`runner`] is the retry loop: due retries and deliveries whose replica died.
//!
//! Callbacks themselves arrive at svc-api (`POST …/webhooks/{token}/callback`), which reports
//! them to the scheduler; a webhook whose call failed has its callback closed here, so a late
//! callback cannot contradict the failure.
//!
//! `run` is the whole service; `main.rs` only parses settings and calls it, and tests start the
//! pieces in process with [`run_worker`].

pub mod deliver;
pub mod handler;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod runner;

use anyhow::Context as _;
use clap::Parser;
use deliver::{Context, DeliveryConfig};
use ferry_backends::{AmqpArgs, PostgresArgs, RedisArgs, connect};
use ferry_bus::consumer::ConsumerConfig;
use ferry_bus::outbox::{Relay, RelayConfig};
use ferry_bus::{Bus, ConsumerMetrics, RelayMetrics, WorkQueue};
use ferry_netguard::Cidr;
use ferry_outbound::secrets::MasterKey;
use ferry_outbound::transport::HttpTransport;
use ferry_runtime::{CommonArgs, Health, lifecycle};
use ferry_store::Store;
use policy::Backoff;
use runner::RunnerConfig;
use sqlx::PgPool;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The admin address used when `FERRY_ADMIN_ADDR` is not set.
pub const DEFAULT_ADMIN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9104);

/// Settings of svc-webhook, from flags or `FERRY_*` environment variables.
#[derive(Clone, Parser)]
#[command(name = "ferry-svc-webhook", version, about = "Ferry's webhook service")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Redis, where the agent hub records which replica holds which agent (for webhooks sent
    /// through an agent).
    #[command(flatten)]
    pub redis: RedisArgs,
    /// The master key svc-api seals tenant secrets with (base64 of 32 bytes); never logged.
    #[arg(long, env = "FERRY_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// A file holding the master key instead.
    #[arg(long, env = "FERRY_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Development mode: without a master key, use svc-api's public development key.
    #[arg(long, env = "FERRY_DEV", default_value_t = false)]
    pub dev: bool,
    /// Seconds one attempt may take (connecting, redirects, reading the answer).
    #[arg(long, env = "FERRY_WEBHOOK_TIMEOUT_SECS", default_value_t = 30)]
    pub timeout_secs: u64,
    /// Largest answer read, in bytes (only a snippet is kept).
    #[arg(long, env = "FERRY_WEBHOOK_MAX_ANSWER_BYTES", default_value_t = 64 * 1024)]
    pub max_answer_bytes: usize,
    /// Redirects followed (each hop checked by the network guard).
    #[arg(long, env = "FERRY_WEBHOOK_MAX_REDIRECTS", default_value_t = 3)]
    pub max_redirects: usize,
    /// Milliseconds before the first retry (doubling, with jitter).
    #[arg(long, env = "FERRY_WEBHOOK_BACKOFF_MS", default_value_t = 1000)]
    pub backoff_ms: u64,
    /// Longest computed wait between attempts, in seconds.
    #[arg(long, env = "FERRY_WEBHOOK_BACKOFF_MAX_SECS", default_value_t = 60)]
    pub backoff_max_secs: u64,
    /// Longest `Retry-After` honoured, in seconds.
    #[arg(
        long,
        env = "FERRY_WEBHOOK_RETRY_AFTER_MAX_SECS",
        default_value_t = 300
    )]
    pub retry_after_max_secs: u64,
    /// Sends in flight at most (webhooks and notifications).
    #[arg(long, env = "FERRY_WEBHOOK_CONCURRENCY", default_value_t = 256)]
    pub concurrency: usize,
    /// Messages taken from each queue at once.
    #[arg(long, env = "FERRY_WEBHOOK_PREFETCH", default_value_t = 64)]
    pub prefetch: u16,
    /// Milliseconds between looks for due retries.
    #[arg(long, env = "FERRY_WEBHOOK_POLL_MS", default_value_t = 1000)]
    pub poll_ms: u64,
    /// Networks every tenant's direct webhooks may reach besides public addresses
    /// (comma-separated CIDRs, e.g. `127.0.0.0/8` in development). Tenants add their own
    /// through the API (`PUT /v1/network-settings`).
    #[arg(long, env = "FERRY_WEBHOOK_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub allowed_networks: Vec<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("common", &self.common)
            .field("master_key", &self.master_key.as_ref().map(|_| "***"))
            .field("master_key_file", &self.master_key_file)
            .field("dev", &self.dev)
            .field("timeout_secs", &self.timeout_secs)
            .field("concurrency", &self.concurrency)
            .field("allowed_networks", &self.allowed_networks)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The networks of `FERRY_WEBHOOK_ALLOWED_NETWORKS`, or which one is wrong.
    pub fn networks(&self) -> anyhow::Result<Vec<Cidr>> {
        self.allowed_networks
            .iter()
            .filter(|n| !n.trim().is_empty())
            .map(|n| {
                n.parse::<Cidr>()
                    .with_context(|| format!("FERRY_WEBHOOK_ALLOWED_NETWORKS: {n:?}"))
            })
            .collect()
    }

    /// How deliveries are made, named `owner` in leases.
    pub fn delivery(&self, owner: String) -> anyhow::Result<DeliveryConfig> {
        let attempt_timeout = Duration::from_secs(self.timeout_secs.clamp(1, 600));
        Ok(DeliveryConfig {
            owner,
            // Longer than an attempt can take, so a live replica keeps its delivery.
            lease: attempt_timeout * 2 + Duration::from_secs(10),
            attempt_timeout,
            max_redirects: self.max_redirects.min(10),
            backoff: Backoff {
                base: Duration::from_millis(self.backoff_ms.max(1)),
                max: Duration::from_secs(self.backoff_max_secs.max(1)),
                retry_after_max: Duration::from_secs(self.retry_after_max_secs),
            },
            allowed_networks: self.networks()?,
        })
    }
}

/// The worker's pacing besides the delivery context.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Sends in flight at most.
    pub concurrency: usize,
    /// Messages taken from each queue at once.
    pub prefetch: u16,
    /// The retry loop's pacing.
    pub runner: RunnerConfig,
    /// How long sends in flight may take to finish on shutdown.
    pub drain: Duration,
}

/// Runs the worker until `shutdown`: the outbox relay, the webhook and notify queues'
/// consumers and the retry loop; sends in flight finish (within `config.drain`) before it
/// returns.
pub async fn run_worker(
    pool: PgPool,
    bus: Bus,
    ctx: Context,
    config: WorkerConfig,
    metrics: ConsumerMetrics,
    relay_metrics: RelayMetrics,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let room = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let wake = Arc::new(Notify::new());
    let requests = Arc::new(handler::RequestHandler::new(
        ctx.clone(),
        tracker.clone(),
        room.clone(),
    ));
    let events = Arc::new(notify::EventHandler::new(
        ctx.clone(),
        tracker.clone(),
        room.clone(),
    ));
    let relay = Relay::new(pool, bus.clone(), RelayConfig::default()).with_metrics(relay_metrics);
    let consumer = |queue| ConsumerConfig {
        prefetch: config.prefetch.max(1),
        ..ConsumerConfig::new(queue)
    };
    tokio::join!(
        relay.run(shutdown.clone()),
        ferry_bus::run_consumer(
            &bus,
            consumer(WorkQueue::Webhook),
            requests,
            metrics.clone(),
            shutdown.clone()
        ),
        ferry_bus::run_consumer(
            &bus,
            consumer(WorkQueue::Notify),
            events,
            metrics,
            shutdown.clone()
        ),
        runner::run(
            ctx,
            config.runner.clone(),
            tracker.clone(),
            room,
            wake,
            shutdown.clone()
        ),
    );
    tracker.close();
    if tokio::time::timeout(config.drain, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "sends still in flight after the drain deadline; their leases expire and another replica retries them"
        );
    }
}

/// Runs svc-webhook until `shutdown` fires, serving health and metrics on `admin`.
pub async fn run(
    settings: Settings,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ferry_runtime::telemetry::install_crypto();
    let registry = ferry_runtime::admin::new_registry();
    let owner = format!("svc-webhook-{}", uuid::Uuid::now_v7());
    let delivery = settings.delivery(owner)?;
    let pool = connect::postgres(&settings.postgres).await?;
    let key = MasterKey::from_settings(
        settings.master_key.as_deref(),
        settings.master_key_file.as_deref(),
        settings.dev,
    )
    .map_err(anyhow::Error::msg)?;
    let bus = connect::bus(&settings.amqp, "svc-webhook").await?;
    let checks = connect::checks(&pool, &bus);
    // Webhooks through an agent need the tunnel; without Redis, direct webhooks still work.
    let tunnel = match redis::Client::open(settings.redis.redis_url.as_str()) {
        Ok(client) => match client.get_connection_manager().await {
            Ok(redis) => Some(
                ferry_tunnel::AgentTunnel::connect(&bus, redis, &settings.amqp.bus_prefix)
                    .await
                    .context("opening the agent tunnel")?
                    .with_metrics(
                        ferry_tunnel::TunnelMetrics::register(&registry)
                            .context("registering metrics")?,
                    ),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "Redis unreachable (FERRY_REDIS_URL): webhooks through agents will fail");
                None
            }
        },
        Err(e) => anyhow::bail!("parsing the Redis URL (FERRY_REDIS_URL): {e}"),
    };
    let transport = HttpTransport::new(
        tunnel,
        delivery.attempt_timeout,
        settings.max_answer_bytes.max(1024),
    )?
    .named("svc-webhook");
    let ctx = Context::new(
        Store::from_pool(pool.clone()),
        transport,
        Arc::new(key),
        metrics::WebhookMetrics::register(&registry)
            .context("registering svc-webhook's metrics")?,
        delivery,
    );
    let config = WorkerConfig {
        concurrency: settings.concurrency,
        prefetch: settings.prefetch,
        runner: RunnerConfig {
            poll: Duration::from_millis(settings.poll_ms.max(10)),
            batch: 64,
        },
        drain: Duration::from_secs(settings.common.shutdown_grace_secs),
    };
    let metrics = ConsumerMetrics::register(&registry).context("registering metrics")?;
    let relay_metrics = RelayMetrics::register(&registry).context("registering metrics")?;
    let health = Health::new(checks);
    let work_shutdown = shutdown.clone();
    let work = async move {
        run_worker(
            pool,
            bus,
            ctx,
            config,
            metrics,
            relay_metrics,
            work_shutdown,
        )
        .await;
        Ok(())
    };
    lifecycle::run(
        "svc-webhook",
        admin,
        health,
        registry,
        shutdown,
        Duration::from_secs(settings.common.shutdown_grace_secs),
        work,
    )
    .await
}
