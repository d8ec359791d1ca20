//! ferry-svc-scheduler: deployment orchestration: plans, targets, strategies, steps, timers and rollback.
//!
//! Status: no orchestration yet (issue 5). The process starts, connects to Postgres and RabbitMQ (declaring the bus topology), runs the transactional-outbox relay, reports health and metrics on its admin port, and drains and stops on SIGTERM.
//!
//! `run` is the whole service; `main.rs` only parses settings and calls it, and tests start it in
//! process.

use clap::Parser;
use ferry_runtime::{AmqpArgs, CommonArgs, Health, PostgresArgs, connect, lifecycle};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The admin address used when `FERRY_ADMIN_ADDR` is not set.
pub const DEFAULT_ADMIN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9102);

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
}

/// Runs svc-scheduler until `shutdown` fires, serving health and metrics on `admin`.
pub async fn run(
    settings: Settings,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let registry = ferry_runtime::admin::new_registry();
    let pool = connect::postgres(&settings.postgres).await?;
    let bus = connect::bus(&settings.amqp, "svc-scheduler").await?;
    let health = Health::new(connect::checks(&pool, &bus));
    let work_shutdown = shutdown.clone();
    let work = async move {
        // Publishes what this service's transactions write to the outbox.
        let relay =
            ferry_bus::outbox::Relay::new(pool, bus, ferry_bus::outbox::RelayConfig::default());
        relay.run(work_shutdown).await;
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
