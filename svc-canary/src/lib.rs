//! ferry-svc-canary: metric queries against Prometheus, Datadog and New Relic, and the canary
//! judgement (ANALYSIS.md).
//!
//! - [`handler`] consumes `analysis.requested`: the analysis step is resolved from the
//!   deployment's plan and stored as a row (`ferry_store::analysis`);
//! - [`runner`] is the run loop every replica runs: it leases analyses whose next judgment run
//!   is due, runs it ([`run`]: queries rendered per window by [`spec`], sent by [`providers`]
//!   with credentials opened by [`secrets`], judged by `ferry-judge`), records it exactly once,
//!   and after the last run (or a failed one under `abortOnFailedJudgment`) commits the
//!   [`verdict`] with `analysis.completed` through the outbox.
//!
//! Nothing lives in memory between runs: a replica may die at any moment and another one
//! resumes the analysis when the lease expires.
//!
//! `run` is the whole service; `main.rs` only parses settings and calls it, and tests start the
//! pieces in process with [`run_worker`].

pub mod handler;
pub mod metrics;
pub mod providers;
pub mod retro;
pub mod run;
pub mod runner;
pub mod secrets;
pub mod spec;
pub mod verdict;

use anyhow::Context;
use clap::Parser;
use ferry_backends::{AmqpArgs, PostgresArgs, RedisArgs, connect};
use ferry_bus::consumer::ConsumerConfig;
use ferry_bus::outbox::{Relay, RelayConfig};
use ferry_bus::{Bus, ConsumerMetrics, RelayMetrics, WorkQueue};
use ferry_runtime::{CommonArgs, Health, lifecycle};
use ferry_store::Store;
use providers::Fetcher;
use providers::transport::{HttpTransport, Transport};
use run::RunContext;
use runner::RunnerConfig;
use secrets::MasterKey;
use sqlx::PgPool;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The admin address used when `FERRY_ADMIN_ADDR` is not set.
pub const DEFAULT_ADMIN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9103);

/// Settings of svc-canary, from flags or `FERRY_*` environment variables.
#[derive(Clone, Parser)]
#[command(
    name = "ferry-svc-canary",
    version,
    about = "Ferry's canary analysis service"
)]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Redis, where the agent hub records which replica holds which agent (for providers
    /// reached through an agent).
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
    /// Milliseconds between looks for due judgment runs.
    #[arg(long, env = "FERRY_CANARY_POLL_MS", default_value_t = 1000)]
    pub poll_ms: u64,
    /// Seconds a replica holds a judgment run before another may take it over.
    #[arg(long, env = "FERRY_CANARY_LEASE_SECS", default_value_t = 120)]
    pub lease_secs: u64,
    /// Seconds a provider request may take.
    #[arg(long, env = "FERRY_CANARY_QUERY_TIMEOUT_SECS", default_value_t = 20)]
    pub query_timeout_secs: u64,
    /// Largest provider answer read, in bytes.
    #[arg(long, env = "FERRY_CANARY_MAX_ANSWER_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_answer_bytes: usize,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("common", &self.common)
            .field("master_key", &self.master_key.as_ref().map(|_| "***"))
            .field("master_key_file", &self.master_key_file)
            .field("dev", &self.dev)
            .field("poll_ms", &self.poll_ms)
            .field("lease_secs", &self.lease_secs)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The master key, from `FERRY_MASTER_KEY`, `FERRY_MASTER_KEY_FILE` or (with `FERRY_DEV`)
    /// the development key.
    pub fn master(&self) -> anyhow::Result<MasterKey> {
        match (&self.master_key, &self.master_key_file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set only one of FERRY_MASTER_KEY and FERRY_MASTER_KEY_FILE")
            }
            (Some(text), None) => {
                MasterKey::from_base64(text).context("FERRY_MASTER_KEY is not base64 of 32 bytes")
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading FERRY_MASTER_KEY_FILE {}", path.display()))?;
                MasterKey::from_base64(&text)
                    .context("FERRY_MASTER_KEY_FILE does not hold base64 of 32 bytes")
            }
            (None, None) if self.dev => Ok(MasterKey::development()),
            (None, None) => {
                anyhow::bail!(
                    "FERRY_MASTER_KEY or FERRY_MASTER_KEY_FILE is required unless FERRY_DEV is set"
                )
            }
        }
    }
}

/// Runs the worker until `shutdown`: the outbox relay, the canary queue's consumer and the run
/// loop, all draining before it returns.
pub async fn run_worker(
    pool: PgPool,
    bus: Bus,
    ctx: RunContext,
    config: RunnerConfig,
    metrics: ConsumerMetrics,
    relay_metrics: RelayMetrics,
    shutdown: CancellationToken,
) {
    let store = Store::from_pool(pool.clone());
    let wake = Arc::new(Notify::new());
    let handler = Arc::new(handler::RequestHandler::new(store, wake.clone()));
    let relay = Relay::new(pool, bus.clone(), RelayConfig::default()).with_metrics(relay_metrics);
    tokio::join!(
        relay.run(shutdown.clone()),
        ferry_bus::run_consumer(
            &bus,
            ConsumerConfig::new(WorkQueue::Canary),
            handler,
            metrics,
            shutdown.clone()
        ),
        runner::run(ctx, config, wake, shutdown.clone()),
    );
}

/// Runs svc-canary until `shutdown` fires, serving health and metrics on `admin`.
pub async fn run(
    settings: Settings,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ferry_runtime::telemetry::install_crypto();
    let registry = ferry_runtime::admin::new_registry();
    let pool = connect::postgres(&settings.postgres).await?;
    let key = settings.master()?;
    let bus = connect::bus(&settings.amqp, "svc-canary").await?;
    let checks = connect::checks(&pool, &bus);
    // Providers behind an agent need the tunnel; without Redis, direct providers still work.
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
                tracing::warn!(error = %e, "Redis unreachable (FERRY_REDIS_URL): providers behind agents will fail");
                None
            }
        },
        Err(e) => anyhow::bail!("parsing the Redis URL (FERRY_REDIS_URL): {e}"),
    };
    let transport: Arc<dyn Transport> = Arc::new(HttpTransport::new(
        tunnel,
        Duration::from_secs(settings.query_timeout_secs.max(1)),
        settings.max_answer_bytes.max(1024),
    )?);
    let ctx = RunContext {
        store: Store::from_pool(pool.clone()),
        fetcher: Fetcher::new(transport, 3, Duration::from_millis(500)),
        key: Arc::new(key),
        metrics: metrics::CanaryMetrics::register(&registry)
            .context("registering svc-canary's metrics")?,
    };
    let config = RunnerConfig {
        owner: format!("svc-canary-{}", uuid::Uuid::now_v7()),
        lease: Duration::from_secs(settings.lease_secs.max(5)),
        poll: Duration::from_millis(settings.poll_ms.max(10)),
        batch: 16,
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
        "svc-canary",
        admin,
        health,
        registry,
        shutdown,
        Duration::from_secs(settings.common.shutdown_grace_secs),
        work,
    )
    .await
}
