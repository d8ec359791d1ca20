//! Settings every service shares, as clap argument groups that each service flattens into its own
//! settings struct. Every field can be given as a flag or as a `FERRY_*` environment variable, and
//! the defaults work against the local services that `scripts/deps.sh` starts.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for production log pipelines.
    Json,
}

/// The admin port and logging.
#[derive(Clone, Debug, Args)]
pub struct CommonArgs {
    /// Address of the admin server (`/healthz`, `/readyz`, `/metrics`). Port 0 picks a free port.
    #[arg(long, env = "FERRY_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// Log line format.
    #[arg(long, env = "FERRY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter in `tracing_subscriber::EnvFilter` syntax, e.g. `info,ferry_bus=debug`.
    #[arg(long, env = "FERRY_LOG", default_value = "info")]
    pub log: String,

    /// How long a SIGTERM'd process may spend draining in-flight work before it exits anyway.
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
}

impl CommonArgs {
    /// The admin address, or `default` when none was configured.
    pub fn admin_addr_or(&self, default: SocketAddr) -> SocketAddr {
        self.admin_addr.unwrap_or(default)
    }
}

/// A connection string with any password replaced by `***`, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/ferry"),
            "postgres://postgres@127.0.0.1/ferry"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("p://u:a@b@h/x"), "p://u:***@h/x");
    }
}
