//! Readiness checks that really touch Ferry's backends: a query to Postgres, the state of the
//! AMQP connection plus a round trip on a fresh channel, and a Redis `PING`.

use ferry_runtime::ReadinessCheck;
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
