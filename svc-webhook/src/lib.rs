//! ferry-svc-webhook: outgoing webhooks (direct or through an agent), their callbacks, and webhook-based approvals.
//!
//! Status: no logic yet. The process starts, connects to Postgres and RabbitMQ (declaring the bus topology), reports health and metrics on its admin port, and drains and stops on SIGTERM. Consuming webhook.requested comes with the webhook work.
//!
//! `run` is the whole service; `main.rs` only parses settings and calls it, and tests start it in
//! process.

use clap::Parser;
use ferry_runtime::{AmqpArgs, CommonArgs, PostgresArgs, lifecycle};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The admin address used when `FERRY_ADMIN_ADDR` is not set.
pub const DEFAULT_ADMIN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9104);

/// Settings of svc-webhook, from flags or `FERRY_*` environment variables.
#[derive(Clone, Debug, Parser)]
#[command(name = "ferry-svc-webhook", version, about = "Ferry's webhook service")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub amqp: AmqpArgs,
}

/// Runs svc-webhook until `shutdown` fires, serving health and metrics on `admin`.
pub async fn run(
    settings: Settings,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    lifecycle::run_idle(
        "svc-webhook",
        &settings.common,
        &settings.postgres,
        &settings.amqp,
        admin,
        shutdown,
    )
    .await
}
