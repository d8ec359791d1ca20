//! Readiness checks that really touch Ferry's dependencies: a query to Postgres, the state of the
//! AMQP connection plus a passive declare on a fresh channel, and a Redis `PING`.

use crate::admin::ReadinessCheck;
use futures::future::BoxFuture;

/// Runs `SELECT 1` on a pooled connection.
pub struct Postgres(pub sqlx::PgPool);

impl ReadinessCheck for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(&self.0)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// Opens and closes a channel on the shared AMQP connection, which needs a round trip to the
/// broker, so a half-dead connection is caught.
pub struct RabbitMq(pub lapin::Connection);

impl ReadinessCheck for RabbitMq {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if !self.0.status().connected() {
                return Err("connection to the broker is not open".to_string());
            }
            let channel = self.0.create_channel().await.map_err(|e| e.to_string())?;
            channel
                .close(200, "readiness check".into())
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Sends `PING` and expects `PONG`.
pub struct Redis(pub redis::aio::ConnectionManager);

impl ReadinessCheck for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut conn = self.0.clone();
            let pong: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(format!("PING answered {pong:?}"))
            }
        })
    }
}

/// A check made of a name and a closure, for dependencies reached through a wrapper of their own
/// (e.g. `ferry_bus::Bus::readiness`).
pub struct FromFn<F> {
    name: &'static str,
    check: F,
}

/// Builds a [`ReadinessCheck`] from a closure returning the check's future.
pub fn from_fn<F>(name: &'static str, check: F) -> FromFn<F>
where
    F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
{
    FromFn { name, check }
}

impl<F> ReadinessCheck for FromFn<F>
where
    F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        (self.check)()
    }
}
