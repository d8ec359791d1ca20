//! The agent's settings: every field a flag or a `FERRY_AGENT_*` (or shared `FERRY_*`)
//! environment variable, checked at start with errors that name the variable.

use clap::{ArgAction, Parser};
use ferry_runtime::CommonArgs;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one agent process.
#[derive(Clone, Parser)]
#[command(
    name = "ferry-agent",
    version,
    about = "The Ferry agent: relays Kubernetes API and HTTP requests from the hub into its cluster"
)]
pub struct Settings {
    /// Admin port and logging.
    #[command(flatten)]
    pub common: CommonArgs,

    /// The hub's address: `https://host:port`, or `http://host:port` for local plaintext.
    #[arg(long, env = "FERRY_AGENT_HUB_URL")]
    pub hub_url: String,

    /// A PEM CA certificate to trust for the hub instead of the system's roots.
    #[arg(long, env = "FERRY_AGENT_HUB_CA_FILE")]
    pub hub_ca_file: Option<PathBuf>,

    /// The TLS server name to expect from the hub, when it differs from the URL's host.
    #[arg(long, env = "FERRY_AGENT_HUB_TLS_DOMAIN")]
    pub hub_tls_domain: Option<String>,

    /// This agent's identifier, unique within its tenant (for example the cluster's name):
    /// 1-253 ASCII letters, digits, '-', '_' or '.'.
    #[arg(long, env = "FERRY_AGENT_ID")]
    pub agent_id: String,

    /// The OAuth2/OIDC issuer URL; its `/.well-known/openid-configuration` names the token
    /// endpoint. Required with a client id.
    #[arg(long, env = "FERRY_AGENT_ISSUER_URL")]
    pub issuer_url: Option<String>,

    /// The OAuth2 client id of the agent's machine credential.
    #[arg(long, env = "FERRY_AGENT_CLIENT_ID")]
    pub client_id: Option<String>,

    /// The OAuth2 client secret. Secret: never logged; prefer `--client-secret-file`.
    #[arg(long, env = "FERRY_AGENT_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,

    /// A file holding the OAuth2 client secret (for example a mounted Kubernetes Secret).
    #[arg(long, env = "FERRY_AGENT_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,

    /// A file holding a ready-made bearer token, re-read on every renewal, instead of the
    /// client-credentials grant.
    #[arg(long, env = "FERRY_AGENT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// The audience asked for in the client-credentials grant.
    #[arg(long, env = "FERRY_AGENT_AUDIENCE", default_value = "ferry-hub")]
    pub audience: String,

    /// How often a token file is re-read at most, in seconds, when its token's expiry does not
    /// call for an earlier renewal.
    #[arg(
        long,
        env = "FERRY_AGENT_TOKEN_FILE_REFRESH_SECS",
        default_value_t = 60
    )]
    pub token_file_refresh_secs: u64,

    /// A kubeconfig file to reach Kubernetes with. Without it the configuration is inferred
    /// as kube-rs does: `KUBECONFIG` or `~/.kube/config` when present, else the in-cluster
    /// service account.
    #[arg(long, env = "FERRY_AGENT_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (its current context by default).
    #[arg(long, env = "FERRY_AGENT_KUBE_CONTEXT")]
    pub kube_context: Option<String>,

    /// Whether plain HTTP requests into the agent's network (webhooks, metric providers) are
    /// relayed.
    #[arg(long, env = "FERRY_AGENT_HTTP_RELAY", default_value_t = true, action = ArgAction::Set)]
    pub http_relay: bool,

    /// Requests executed at once; more wait for a slot.
    #[arg(long, env = "FERRY_AGENT_MAX_IN_FLIGHT", default_value_t = 64)]
    pub max_in_flight: usize,

    /// Requests allowed to wait for a slot; beyond this they are refused at once.
    #[arg(long, env = "FERRY_AGENT_MAX_QUEUED", default_value_t = 256)]
    pub max_queued: usize,

    /// The largest request body accepted, in bytes.
    #[arg(long, env = "FERRY_AGENT_MAX_REQUEST_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_request_body_bytes: usize,

    /// The first reconnect delay, in milliseconds; it doubles (with jitter) on each failure.
    #[arg(long, env = "FERRY_AGENT_RECONNECT_INITIAL_MS", default_value_t = 250)]
    pub reconnect_initial_ms: u64,

    /// The longest reconnect delay, in milliseconds.
    #[arg(long, env = "FERRY_AGENT_RECONNECT_MAX_MS", default_value_t = 30_000)]
    pub reconnect_max_ms: u64,

    /// How long dialing the hub (TCP, TLS, hello, welcome) may take, in seconds.
    #[arg(long, env = "FERRY_AGENT_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    pub connect_timeout_secs: u64,
}

impl std::fmt::Debug for Settings {
    // The client secret is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("common", &self.common)
            .field("hub_url", &self.hub_url)
            .field("hub_ca_file", &self.hub_ca_file)
            .field("agent_id", &self.agent_id)
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("client_secret_file", &self.client_secret_file)
            .field("token_file", &self.token_file)
            .field("audience", &self.audience)
            .field("kubeconfig", &self.kubeconfig)
            .field("kube_context", &self.kube_context)
            .field("http_relay", &self.http_relay)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_queued", &self.max_queued)
            .finish_non_exhaustive()
    }
}

/// A setting that cannot work, named by its environment variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The hub URL is neither `http://` nor `https://`.
    #[error("FERRY_AGENT_HUB_URL {0:?} must start with https:// (or http:// for local plaintext)")]
    HubUrl(String),
    /// The agent id does not fit the hub's rules.
    #[error("FERRY_AGENT_ID {0:?} must be 1-253 ASCII letters, digits, '-', '_' or '.'")]
    AgentId(String),
    /// Neither a token file nor a complete client credential was given.
    #[error(
        "give FERRY_AGENT_TOKEN_FILE, or FERRY_AGENT_ISSUER_URL with FERRY_AGENT_CLIENT_ID and \
         FERRY_AGENT_CLIENT_SECRET (or FERRY_AGENT_CLIENT_SECRET_FILE)"
    )]
    NoCredentials,
    /// A token file and a client credential were both given.
    #[error("FERRY_AGENT_TOKEN_FILE and FERRY_AGENT_CLIENT_ID exclude each other")]
    TwoCredentials,
    /// A limit is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The reconnect delays are inverted.
    #[error("FERRY_AGENT_RECONNECT_INITIAL_MS must not exceed FERRY_AGENT_RECONNECT_MAX_MS")]
    Backoff,
}

impl Settings {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(self.hub_url.starts_with("https://") || self.hub_url.starts_with("http://")) {
            return Err(SettingsError::HubUrl(self.hub_url.clone()));
        }
        let id = &self.agent_id;
        let id_ok = !id.is_empty()
            && id.len() <= 253
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !id_ok {
            return Err(SettingsError::AgentId(id.clone()));
        }
        let has_secret = self.client_secret.is_some() || self.client_secret_file.is_some();
        match (&self.token_file, &self.client_id) {
            (Some(_), Some(_)) => return Err(SettingsError::TwoCredentials),
            (None, Some(_)) if self.issuer_url.is_none() || !has_secret => {
                return Err(SettingsError::NoCredentials);
            }
            (None, None) => return Err(SettingsError::NoCredentials),
            _ => {}
        }
        for (name, value) in [
            ("FERRY_AGENT_MAX_IN_FLIGHT", self.max_in_flight as u64),
            (
                "FERRY_AGENT_MAX_REQUEST_BODY_BYTES",
                self.max_request_body_bytes as u64,
            ),
            (
                "FERRY_AGENT_RECONNECT_INITIAL_MS",
                self.reconnect_initial_ms,
            ),
            (
                "FERRY_AGENT_CONNECT_TIMEOUT_SECS",
                self.connect_timeout_secs,
            ),
            (
                "FERRY_AGENT_TOKEN_FILE_REFRESH_SECS",
                self.token_file_refresh_secs,
            ),
        ] {
            if value == 0 {
                return Err(SettingsError::Zero(name));
            }
        }
        if self.reconnect_initial_ms > self.reconnect_max_ms {
            return Err(SettingsError::Backoff);
        }
        Ok(())
    }

    /// The first reconnect delay.
    pub fn reconnect_initial(&self) -> Duration {
        Duration::from_millis(self.reconnect_initial_ms)
    }

    /// The longest reconnect delay.
    pub fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }

    /// How long dialing may take.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Settings {
        let mut all = vec![
            "ferry-agent",
            "--hub-url",
            "https://hub.test:7443",
            "--agent-id",
            "prod-eu.1",
        ];
        all.extend_from_slice(args);
        Settings::try_parse_from(all).unwrap()
    }

    #[test]
    fn a_credential_is_required_and_exclusive() {
        assert!(matches!(
            parse(&[]).validate(),
            Err(SettingsError::NoCredentials)
        ));
        assert!(parse(&["--token-file", "/t"]).validate().is_ok());
        let client = [
            "--issuer-url",
            "https://api.test",
            "--client-id",
            "c",
            "--client-secret",
            "s",
        ];
        assert!(parse(&client).validate().is_ok());
        assert!(matches!(
            parse(&["--client-id", "c", "--client-secret", "s"]).validate(),
            Err(SettingsError::NoCredentials)
        ));
        let mut both = client.to_vec();
        both.extend(["--token-file", "/t"]);
        assert!(matches!(
            parse(&both).validate(),
            Err(SettingsError::TwoCredentials)
        ));
    }

    #[test]
    fn urls_ids_and_limits_are_checked() {
        let mut s = parse(&["--token-file", "/t"]);
        s.hub_url = "hub.test:7443".into();
        assert!(matches!(s.validate(), Err(SettingsError::HubUrl(_))));
        let mut s = parse(&["--token-file", "/t"]);
        s.agent_id = "a/b".into();
        assert!(matches!(s.validate(), Err(SettingsError::AgentId(_))));
        let s = parse(&["--token-file", "/t", "--max-in-flight", "0"]);
        assert!(matches!(
            s.validate(),
            Err(SettingsError::Zero("FERRY_AGENT_MAX_IN_FLIGHT"))
        ));
        let s = parse(&["--token-file", "/t", "--http-relay", "false"]);
        assert!(!s.http_relay);
        let secret = parse(&["--client-secret", "hunter2"]);
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
