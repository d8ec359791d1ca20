//! The addresses of Ferry's backends, as clap argument groups each service flattens into its own
//! settings. Every field can be given as a flag or as a `FERRY_*` environment variable, and the
//! defaults work against the local services that `scripts/deps.sh` starts. Connection strings are
//! secrets: their `Debug` shows them redacted.

use clap::Args;
use ferry_runtime::settings::redact_url;

/// Where Postgres is.
#[derive(Clone, Args)]
pub struct PostgresArgs {
    /// Postgres connection string. Secret: never logged (see [`redact_url`]).
    #[arg(
        long,
        env = "FERRY_DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/ferry"
    )]
    pub database_url: String,

    /// Largest number of pooled connections.
    #[arg(long, env = "FERRY_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
}

impl std::fmt::Debug for PostgresArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresArgs")
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .finish()
    }
}

/// Where RabbitMQ is, and the prefix of every exchange and queue name.
#[derive(Clone, Args)]
pub struct AmqpArgs {
    /// AMQP connection string. Secret: never logged.
    #[arg(
        long,
        env = "FERRY_AMQP_URL",
        hide_env_values = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,

    /// Prefix for every exchange and queue name, so several Ferry installations (or tests) can
    /// share one broker. Empty in production.
    #[arg(long, env = "FERRY_BUS_PREFIX", default_value = "")]
    pub bus_prefix: String,
}

impl std::fmt::Debug for AmqpArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpArgs")
            .field("amqp_url", &redact_url(&self.amqp_url))
            .field("bus_prefix", &self.bus_prefix)
            .finish()
    }
}

/// Where Redis is.
#[derive(Clone, Args)]
pub struct RedisArgs {
    /// Redis connection string. Secret: never logged.
    #[arg(
        long,
        env = "FERRY_REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
}

impl std::fmt::Debug for RedisArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisArgs")
            .field("redis_url", &redact_url(&self.redis_url))
            .finish()
    }
}
