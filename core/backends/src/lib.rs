//! ferry-backends: what a control-plane service needs to reach Postgres, RabbitMQ and Redis —
//! their settings (`FERRY_DATABASE_URL`, `FERRY_AMQP_URL`, `FERRY_BUS_PREFIX`, `FERRY_REDIS_URL`),
//! connecting at start (the schema migrated, the bus topology declared, errors naming the setting
//! without the password) and readiness checks that really touch each one. Kept apart from
//! `ferry-runtime` so the agent, which reaches none of them, links none of their drivers.

pub mod checks;
pub mod connect;
pub mod settings;

pub use settings::{AmqpArgs, PostgresArgs, RedisArgs};
