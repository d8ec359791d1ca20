//! ferry-svc-canary: metric queries against Prometheus, Datadog and New Relic, and the canary judgement (ANALYSIS.md).
//!
//! Status: no logic yet. The process starts, connects to Postgres and RabbitMQ (declaring the bus topology), reports health and metrics on its admin port, and drains and stops on SIGTERM. Consuming analysis.requested comes with the canary-analysis work.
//!
//! `run` is the whole service; `main.rs` only parses settings and calls it, and tests start it in
//! process.

use anyhow::Context;
use clap::Parser;
use ferry_runtime::{AmqpArgs, CommonArgs, Health, PostgresArgs, ReadinessCheck, checks, lifecycle};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The admin address used when `FERRY_ADMIN_ADDR` is not set.
pub const DEFAULT_ADMIN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9103);

/// Settings of svc-canary, from flags or `FERRY_*` environment variables.
#[derive(Clone, Debug, Parser)]
#[command(name = "ferry-svc-canary", version, about = "Ferry canary analysis service")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub amqp: AmqpArgs,
}

/// Runs svc-canary until `shutdown` fires, serving health and metrics on `admin`.
pub async fn run(
    settings: Settings,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let registry = ferry_runtime::admin::new_registry();
    let store = ferry_store::Store::connect(
        &settings.postgres.database_url,
        settings.postgres.database_max_connections,
    )
    .await
    .with_context(|| {
        format!(
            "connecting to Postgres at {} (FERRY_DATABASE_URL)",
            ferry_runtime::settings::redact_url(&settings.postgres.database_url)
        )
    })?;
    let bus = ferry_bus::Bus::connect(&settings.amqp.amqp_url, &settings.amqp.bus_prefix)
        .await
        .with_context(|| {
            format!(
                "connecting to RabbitMQ at {} (FERRY_AMQP_URL)",
                ferry_runtime::settings::redact_url(&settings.amqp.amqp_url)
            )
        })?;
    let health = Health::new(vec![
        Arc::new(checks::Postgres(store.pool().clone())) as Arc<dyn ReadinessCheck>,
        Arc::new(checks::RabbitMq(bus.connection().clone())),
    ]);
    let work_shutdown = shutdown.clone();
    let work = async move {
        work_shutdown.cancelled().await;
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
