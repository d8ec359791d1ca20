//! The hub's settings: every field a flag or a `FERRY_*` environment variable, checked at start.

use clap::Parser;
use ferry_backends::{AmqpArgs, PostgresArgs, RedisArgs};
use ferry_runtime::CommonArgs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one svc-agent-hub replica.
#[derive(Clone, Debug, Parser)]
#[command(name = "ferry-svc-agent-hub", about = "The hub Ferry agents dial")]
pub struct Settings {
    /// Admin port and logging.
    #[command(flatten)]
    pub common: CommonArgs,

    /// RabbitMQ address and name prefix (also used for the Redis keys).
    #[command(flatten)]
    pub amqp: AmqpArgs,

    /// Redis address.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Postgres, where agent connections are recorded for the API (`GET /v1/agents`).
    #[command(flatten)]
    pub postgres: PostgresArgs,

    /// Address agents connect to (gRPC over HTTP/2).
    #[arg(long, env = "FERRY_HUB_ADDR", default_value = "0.0.0.0:7443")]
    pub hub_addr: SocketAddr,

    /// PEM certificate chain served to agents. Required unless `--insecure-plaintext`.
    #[arg(long, env = "FERRY_HUB_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of the certificate. Secret: read from a file, never logged.
    #[arg(long, env = "FERRY_HUB_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Serve plain TCP without TLS. Only for local development and tests.
    #[arg(long, env = "FERRY_HUB_INSECURE_PLAINTEXT", default_value_t = false)]
    pub insecure_plaintext: bool,

    /// This replica's identifier (its queue and its name in agent routes). Random by default;
    /// must be unique among live replicas.
    #[arg(long, env = "FERRY_HUB_REPLICA_ID")]
    pub replica_id: Option<String>,

    /// How long an agent's route lives without a heartbeat, in milliseconds.
    #[arg(long, env = "FERRY_HUB_LEASE_TTL_MS", default_value_t = 15_000)]
    pub lease_ttl_ms: u64,

    /// How often agents send heartbeats (told to them in `Welcome`), in milliseconds. Must be
    /// well below the lease TTL.
    #[arg(long, env = "FERRY_HUB_HEARTBEAT_INTERVAL_MS", default_value_t = 5_000)]
    pub heartbeat_interval_ms: u64,

    /// How often, at most, an agent's heartbeat is recorded in Postgres (`last_heartbeat_at`),
    /// in milliseconds. Heartbeats refresh the Redis lease every time; this bounds the database
    /// writes to agents ÷ interval per second (10,000 agents at 30 s: about 333 a second).
    #[arg(
        long,
        env = "FERRY_HUB_HEARTBEAT_RECORD_INTERVAL_MS",
        default_value_t = 30_000
    )]
    pub heartbeat_record_interval_ms: u64,

    /// Token issuer URL: expected `iss`, and where keys are found by OIDC discovery
    /// (`/.well-known/openid-configuration` → `jwks_uri`) unless `--jwks-file` is given.
    #[arg(long, env = "FERRY_HUB_ISSUER")]
    pub issuer: String,

    /// A JWK set file to verify tokens with, instead of discovery.
    #[arg(long, env = "FERRY_HUB_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// The audience agent tokens must name.
    #[arg(long, env = "FERRY_HUB_AUDIENCE", default_value = "ferry-hub")]
    pub audience: String,
}

/// A setting that cannot work, named by its environment variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// TLS was not configured and plaintext was not explicitly allowed.
    #[error(
        "FERRY_HUB_TLS_CERT and FERRY_HUB_TLS_KEY are required unless FERRY_HUB_INSECURE_PLAINTEXT is set"
    )]
    TlsRequired,
    /// The heartbeat interval does not fit in the lease.
    #[error(
        "FERRY_HUB_HEARTBEAT_INTERVAL_MS ({heartbeat}) must be at most half of FERRY_HUB_LEASE_TTL_MS ({ttl})"
    )]
    HeartbeatTooSlow {
        /// The configured heartbeat interval.
        heartbeat: u64,
        /// The configured lease TTL.
        ttl: u64,
    },
    /// A zero record interval would write every heartbeat.
    #[error("FERRY_HUB_HEARTBEAT_RECORD_INTERVAL_MS must be more than 0")]
    RecordIntervalZero,
    /// A replica id with characters that do not fit queue names and keys.
    #[error("FERRY_HUB_REPLICA_ID {0:?} must be non-empty ASCII letters, digits, '-' or '_'")]
    BadReplicaId(String),
}

impl Settings {
    /// Checks the settings that clap cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !self.insecure_plaintext && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err(SettingsError::TlsRequired);
        }
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms * 2 > self.lease_ttl_ms {
            return Err(SettingsError::HeartbeatTooSlow {
                heartbeat: self.heartbeat_interval_ms,
                ttl: self.lease_ttl_ms,
            });
        }
        if self.heartbeat_record_interval_ms == 0 {
            return Err(SettingsError::RecordIntervalZero);
        }
        if let Some(id) = &self.replica_id {
            let ok = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(SettingsError::BadReplicaId(id.clone()));
            }
        }
        Ok(())
    }

    /// The lease TTL.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// The heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// The least time between two recorded heartbeats of one agent.
    pub fn heartbeat_record_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_record_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Settings {
        let mut all = vec!["hub", "--issuer", "https://issuer.test"];
        all.extend_from_slice(args);
        Settings::try_parse_from(all).unwrap()
    }

    #[test]
    fn tls_is_required_unless_plaintext_is_explicit() {
        assert!(matches!(
            parse(&[]).validate(),
            Err(SettingsError::TlsRequired)
        ));
        assert!(parse(&["--insecure-plaintext"]).validate().is_ok());
        assert!(
            parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn heartbeats_must_fit_the_lease_and_ids_must_be_plain() {
        let s = parse(&[
            "--insecure-plaintext",
            "--lease-ttl-ms",
            "1000",
            "--heartbeat-interval-ms",
            "600",
        ]);
        assert!(matches!(
            s.validate(),
            Err(SettingsError::HeartbeatTooSlow { .. })
        ));
        let s = parse(&["--insecure-plaintext", "--replica-id", "a.b"]);
        assert!(matches!(s.validate(), Err(SettingsError::BadReplicaId(_))));
        let s = parse(&["--insecure-plaintext"]);
        assert_eq!(s.heartbeat_record_interval(), Duration::from_secs(30));
        let s = parse(&[
            "--insecure-plaintext",
            "--heartbeat-record-interval-ms",
            "0",
        ]);
        assert!(matches!(
            s.validate(),
            Err(SettingsError::RecordIntervalZero)
        ));
    }
}
