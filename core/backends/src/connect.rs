//! Connecting a service to its backends at start: Postgres with the schema brought up to date,
//! RabbitMQ with the topology declared, each failing with a message that names the setting and
//! never shows a password; and the readiness checks that go with them.

use crate::checks;
use crate::settings::{AmqpArgs, PostgresArgs};
use anyhow::Context;
use ferry_bus::Bus;
use ferry_bus::topology::Topology;
use ferry_runtime::ReadinessCheck;
use ferry_runtime::settings::redact_url;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;

/// A pool on `FERRY_DATABASE_URL` whose schema is migrated (migrations take an advisory lock, so
/// replicas starting together do not race).
pub async fn postgres(args: &PostgresArgs) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(args.database_max_connections)
        // At start this bounds how long an unreachable database delays the error; later it
        // bounds how long a request waits for a pooled connection.
        .acquire_timeout(Duration::from_secs(10))
        .connect(&args.database_url)
        .await
        .with_context(|| {
            format!(
                "connecting to Postgres at {} (FERRY_DATABASE_URL)",
                redact_url(&args.database_url)
            )
        })?;
    ferry_store::MIGRATOR
        .run(&pool)
        .await
        .context("bringing the database schema up to date")?;
    Ok(pool)
}

/// How long the broker may take to answer at start: one that accepts TCP but never answers the
/// AMQP handshake must not hang start-up silently.
pub const BUS_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A bus on `FERRY_AMQP_URL` (it reconnects by itself later), nothing declared. `name` shows in
/// the broker's connection list.
pub async fn bus_connection(args: &AmqpArgs, name: &str) -> anyhow::Result<Bus> {
    let topology = Topology::new(args.bus_prefix.clone());
    let what = || {
        format!(
            "connecting to RabbitMQ at {} (FERRY_AMQP_URL)",
            redact_url(&args.amqp_url)
        )
    };
    tokio::time::timeout(
        BUS_CONNECT_TIMEOUT,
        Bus::connect(&args.amqp_url, name, topology),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the broker did not answer within {BUS_CONNECT_TIMEOUT:?}"))
    .with_context(what)?
    .with_context(what)
}

/// A bus on `FERRY_AMQP_URL` with Ferry's exchanges and queues declared. `name` shows in the
/// broker's connection list.
pub async fn bus(args: &AmqpArgs, name: &str) -> anyhow::Result<Bus> {
    let bus = bus_connection(args, name).await?;
    bus.declare()
        .await
        .context("declaring the RabbitMQ exchanges and queues")?;
    Ok(bus)
}

/// Readiness checks for a service that uses Postgres and RabbitMQ.
pub fn checks(pool: &PgPool, bus: &Bus) -> Vec<Arc<dyn ReadinessCheck>> {
    let bus = bus.clone();
    vec![
        Arc::new(checks::Postgres(pool.clone())),
        Arc::new(ferry_runtime::checks::from_fn("rabbitmq", move || {
            let bus = bus.clone();
            Box::pin(async move {
                bus.readiness()
                    .await
                    .map_err(|e| ferry_runtime::error_chain(&e))
            })
        })),
    ]
}
