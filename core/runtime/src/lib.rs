//! ferry-runtime: what every Ferry process shares at run time — settings common to all services
//! (admin address, logging, the Postgres, RabbitMQ and Redis addresses), tracing set-up, the admin
//! server (`/healthz`, `/readyz`, `/metrics`), readiness checks that really touch each dependency,
//! and the SIGTERM/SIGINT → [`CancellationToken`](tokio_util::sync::CancellationToken) bridge.

pub mod admin;
pub mod checks;
pub mod connect;
pub mod lifecycle;
pub mod settings;
pub mod shutdown;
pub mod telemetry;

pub use admin::{Health, ReadinessCheck};
pub use settings::{AmqpArgs, CommonArgs, LogFormat, PostgresArgs, RedisArgs};
