//! Keeping a stream to the hub open: dial (TLS with the system's roots or a given CA, HTTP/2
//! keepalives), authenticate with the current token, say hello; serve the stream; when it ends
//! or cannot be opened, reconnect with exponential backoff and jitter. A refused token is
//! renewed before the next attempt.

use crate::dial::{self, AgentStream, Dial, DialError};
use crate::metrics::Metrics;
use crate::session::{self, SessionEnd, Shared};
use crate::token::{TokenError, TokenProvider};
use ferry_proto::agent::Hello;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// HTTP/2 pings find a hub that vanished without closing the connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The least time between two background token renewals.
const MIN_RENEWAL_GAP: Duration = Duration::from_secs(1);

/// How long a stream must have stayed open for the reconnect delays to start over.
const STABLE_STREAM: Duration = Duration::from_secs(10);

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No token could be had.
    #[error("getting a token")]
    Token(#[from] TokenError),
    /// Dialing or the hello failed, or the hub refused the stream.
    #[error("opening the hub stream")]
    Dial(#[from] DialError),
    /// Dialing took too long.
    #[error("no welcome from the hub within {0:?}")]
    Timeout(Duration),
}

impl ConnectError {
    /// Whether the hub refused the token (it must be renewed before trying again).
    fn unauthenticated(&self) -> bool {
        matches!(self, ConnectError::Dial(DialError::Refused(status)) if status.code() == tonic::Code::Unauthenticated)
    }
}

/// Where the hub is and how to trust it.
#[derive(Debug, Clone)]
pub struct HubEndpoint {
    /// `https://…` or `http://…`.
    pub url: String,
    /// A CA to trust instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The TLS server name to expect.
    pub tls_domain: Option<String>,
    /// How long dialing (through the welcome) may take.
    pub connect_timeout: Duration,
}

impl HubEndpoint {
    async fn channel(&self) -> Result<Channel, DialError> {
        let mut endpoint = Endpoint::from_shared(self.url.clone())?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        if self.url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            tls = match &self.ca_pem {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
                None => tls.with_native_roots(),
            };
            if let Some(domain) = &self.tls_domain {
                tls = tls.domain_name(domain.clone());
            }
            endpoint = endpoint.tls_config(tls)?;
        }
        Ok(endpoint.connect().await?)
    }

    /// Opens a welcomed stream with `token`.
    async fn open(&self, token: String, hello: Hello) -> Result<AgentStream, ConnectError> {
        let target = Dial {
            url: self.url.clone(),
            ca_pem: self.ca_pem.clone(),
            tls_domain: self.tls_domain.clone(),
            token,
            hello,
            connect_timeout: self.connect_timeout,
        };
        let open = async {
            let channel = self.channel().await?;
            dial::open(channel, &target).await
        };
        match tokio::time::timeout(self.connect_timeout, open).await {
            Ok(stream) => Ok(stream?),
            Err(_) => Err(ConnectError::Timeout(self.connect_timeout)),
        }
    }
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random, so agents that
/// lost the same replica do not all return at once.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The next delay.
    pub fn delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = base / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }

    /// Back to the initial delay (after a stream was open).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Who the agent is, for the hello.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The agent identifier.
    pub agent_id: String,
    /// What the agent relays.
    pub capabilities: Vec<String>,
    /// The cluster's Kubernetes version once known (filled in the background).
    pub kubernetes_version: Arc<Mutex<String>>,
}

impl Identity {
    fn hello(&self) -> Hello {
        Hello {
            agent_id: self.agent_id.clone(),
            agent_version: concat!("ferry-agent/", env!("CARGO_PKG_VERSION")).to_string(),
            kubernetes_version: self
                .kubernetes_version
                .lock()
                .map(|v| v.clone())
                .unwrap_or_default(),
            capabilities: self.capabilities.clone(),
            protocol_version: ferry_proto::PROTOCOL_VERSION,
        }
    }
}

/// Everything the reconnect loop needs.
#[derive(Debug)]
pub struct Link {
    /// Where the hub is.
    pub hub: HubEndpoint,
    /// Tokens.
    pub tokens: Arc<TokenProvider>,
    /// The hello's content.
    pub identity: Identity,
    /// Shared with every stream.
    pub shared: Arc<Shared>,
    /// True while a stream is open (the readiness check).
    pub connected: Arc<AtomicBool>,
    /// Reconnect delays.
    pub backoff: Backoff,
}

/// Holds a stream to the hub open until `shutdown`, reconnecting as needed.
pub async fn maintain(mut link: Link, shutdown: CancellationToken) {
    let metrics: Metrics = link.shared.metrics.clone();
    loop {
        let attempt = async {
            let token = link.tokens.token().await?;
            link.hub.open(token, link.identity.hello()).await
        };
        let opened = tokio::select! {
            _ = shutdown.cancelled() => return,
            opened = attempt => opened,
        };
        match opened {
            Ok(stream) => {
                metrics.connects.with_label_values(&["connected"]).inc();
                tracing::info!(
                    replica = %stream.welcome.replica,
                    session = stream.welcome.session,
                    "connected to the hub"
                );
                link.connected.store(true, Ordering::SeqCst);
                metrics.connected.set(1);
                let opened_at = tokio::time::Instant::now();
                let end = session::serve(link.shared.clone(), stream, &shutdown).await;
                link.connected.store(false, Ordering::SeqCst);
                metrics.connected.set(0);
                // Only a stream that held starts the delays over: a hub that accepts and then
                // drops the agent at once must not be redialled in a tight loop.
                if opened_at.elapsed() >= STABLE_STREAM {
                    link.backoff.reset();
                }
                match end {
                    SessionEnd::Shutdown => {
                        tracing::info!("closed the hub stream for shutdown");
                        return;
                    }
                    SessionEnd::GoAway(reason) => {
                        tracing::info!(%reason, "the hub asked the agent to reconnect");
                    }
                    SessionEnd::Closed => tracing::warn!("the hub closed the stream"),
                    SessionEnd::Failed(status) => {
                        if status.code() == tonic::Code::Unauthenticated {
                            link.tokens.invalidate().await;
                        }
                        tracing::warn!(error = %status, "the hub stream failed");
                    }
                }
            }
            Err(e) => {
                let refused = e.unauthenticated();
                let label = if refused { "refused" } else { "failed" };
                metrics.connects.with_label_values(&[label]).inc();
                if refused {
                    // The token expired or was revoked: the next attempt gets a fresh one.
                    link.tokens.invalidate().await;
                }
                tracing::warn!(error = ferry_runtime::errors::error_chain(&e), hub = %link.hub.url, "could not connect to the hub");
            }
        }
        let wait = link.backoff.delay();
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            "reconnecting after a pause"
        );
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Renews the token when due, so a reconnect never waits for the issuer; retries failures
/// with backoff.
pub async fn renew_tokens(tokens: Arc<TokenProvider>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let wait = match tokens.token().await {
            Ok(_) => {
                backoff.reset();
                match tokens.renew_at().await {
                    Some(at) => at.saturating_duration_since(tokio::time::Instant::now()),
                    None => backoff.delay(),
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = ferry_runtime::errors::error_chain(&e),
                    "renewing the hub token"
                );
                backoff.delay()
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            // At least a second between renewals, whatever the issuer's lifetimes (a token
            // file holding an expired token would otherwise be read in a tight loop).
            _ = tokio::time::sleep(wait.max(MIN_RENEWAL_GAP)) => {}
        }
    }
}

/// Learns the cluster's Kubernetes version for the hello, retrying while the API is away.
pub async fn learn_kubernetes_version(
    kube: kube::Client,
    version: Arc<Mutex<String>>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let ask = tokio::time::timeout(Duration::from_secs(10), kube.apiserver_version());
        let answer = tokio::select! {
            _ = shutdown.cancelled() => return,
            answer = ask => answer,
        };
        match answer {
            Ok(Ok(info)) => {
                tracing::info!(version = %info.git_version, "Kubernetes API reached");
                if let Ok(mut v) = version.lock() {
                    *v = info.git_version;
                }
                return;
            }
            Ok(Err(e)) => tracing::warn!(
                error = ferry_runtime::errors::error_chain(&e),
                "asking the Kubernetes API its version"
            ),
            Err(_) => tracing::warn!("the Kubernetes API did not tell its version within 10s"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.delay()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let bases = [100u64, 200, 400, 800, 800];
        for base in bases {
            let d = b.delay().as_millis() as u64;
            assert!(
                d >= base / 2 && d <= base,
                "{d} outside [{}, {base}]",
                base / 2
            );
        }
        b.reset();
        assert!(b.delay() <= Duration::from_millis(100));
    }
}
