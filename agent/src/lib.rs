//! ferry-agent: the agent that runs inside a customer's cluster. It dials the hub, holds one
//! authenticated gRPC stream and relays what the control plane asks: Kubernetes API calls made
//! with the agent's own credentials, and HTTP requests into its network. It carries no
//! deployment logic (DESIGN.md, principle 1).
//!
//! Modules: [`settings`] (flags and environment), [`token`] (OIDC discovery, client
//! credentials, token file, renewal), [`dial`] (opening one hub stream: TLS, bearer token,
//! hello, welcome), [`hub`] (dialing and reconnecting), [`session`] (one
//! stream: requests, cancels, deadlines, heartbeats, the concurrency bound), [`execute`]
//! (running one request and streaming its answer), [`metrics`].

pub mod dial;
pub mod execute;
pub mod hub;
pub mod metrics;
pub mod session;
pub mod settings;
pub mod token;

pub use settings::Settings;

use crate::execute::Executor;
use crate::hub::{Backoff, HubEndpoint, Identity, Link};
use crate::metrics::Metrics;
use crate::session::Shared;
use crate::token::{Secret, TokenProvider, TokenSource};
use anyhow::Context;
use ferry_runtime::{Health, ReadinessCheck};
use futures::future::BoxFuture;
use prometheus::Registry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The admin address used when `FERRY_ADMIN_ADDR` is not set.
pub const DEFAULT_ADMIN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9090);

/// Runs the agent until `shutdown` fires, with a fresh metrics registry.
pub async fn run(
    settings: Settings,
    admin_listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_registry(
        settings,
        admin_listener,
        ferry_runtime::admin::new_registry(),
        shutdown,
    )
    .await
}

/// Runs the agent until `shutdown` fires, registering its metrics in `registry`.
///
/// The admin server answers `/healthz`, `/readyz` (ready while a hub stream is open) and
/// `/metrics`. On shutdown the agent refuses new requests, lets in-flight ones finish within
/// the grace period, closes its stream and returns.
pub async fn run_with_registry(
    settings: Settings,
    admin_listener: TcpListener,
    registry: Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    settings.validate()?;
    // kube-rs, tonic and reqwest all use rustls; pick its provider once per process.
    ferry_runtime::telemetry::install_crypto();
    let metrics = Metrics::register(&registry).context("registering metrics")?;

    let kube = kube_client(&settings).await?;
    let http = if settings.http_relay {
        Some(Executor::http_client().context("building the HTTP relay client")?)
    } else {
        None
    };
    let executor = Executor::new(kube.clone(), http);
    let tokens = Arc::new(
        TokenProvider::new(token_source(&settings), metrics.clone())
            .context("setting up the token client")?,
    );
    let ca_pem = match &settings.hub_ca_file {
        Some(path) => Some(
            tokio::fs::read(path)
                .await
                .with_context(|| format!("reading FERRY_AGENT_HUB_CA_FILE {}", path.display()))?,
        ),
        None => None,
    };
    let grace = Duration::from_secs(settings.common.shutdown_grace_secs);
    // Leave the end of the grace period for closing the stream and the admin server.
    let drain = grace.saturating_sub(Duration::from_secs(2)).max(grace / 2);
    let connected = Arc::new(AtomicBool::new(false));
    let kubernetes_version = Arc::new(Mutex::new(String::new()));
    let link = Link {
        hub: HubEndpoint {
            url: settings.hub_url.clone(),
            ca_pem,
            tls_domain: settings.hub_tls_domain.clone(),
            connect_timeout: settings.connect_timeout(),
        },
        tokens: tokens.clone(),
        identity: Identity {
            agent_id: settings.agent_id.clone(),
            capabilities: executor.capabilities(),
            kubernetes_version: kubernetes_version.clone(),
        },
        shared: Arc::new(Shared {
            executor,
            metrics,
            slots: Arc::new(Semaphore::new(settings.max_in_flight)),
            admitted: AtomicUsize::new(0),
            max_admitted: settings.max_in_flight + settings.max_queued,
            max_body: settings.max_request_body_bytes,
            drain,
        }),
        connected: connected.clone(),
        backoff: Backoff::new(settings.reconnect_initial(), settings.reconnect_max()),
    };
    tracing::info!(
        agent = %settings.agent_id,
        hub = %settings.hub_url,
        max_in_flight = settings.max_in_flight,
        http_relay = settings.http_relay,
        "agent starting"
    );

    let health = Health::new(vec![
        Arc::new(HubStream(connected)) as Arc<dyn ReadinessCheck>
    ]);
    let work_shutdown = shutdown.clone();
    let work = async move {
        let helpers = CancellationToken::new();
        let _stop_helpers = helpers.clone().drop_guard();
        tokio::spawn(hub::renew_tokens(tokens, helpers.clone()));
        tokio::spawn(hub::learn_kubernetes_version(
            kube,
            kubernetes_version,
            helpers.clone(),
        ));
        hub::maintain(link, work_shutdown).await;
        Ok(())
    };
    ferry_runtime::lifecycle::run(
        "ferry-agent",
        admin_listener,
        health,
        registry,
        shutdown,
        grace,
        work,
    )
    .await
}

/// The kube-rs client with the agent's own credentials: from the given kubeconfig, or
/// inferred (kubeconfig from the environment, else the in-cluster service account).
async fn kube_client(settings: &Settings) -> anyhow::Result<kube::Client> {
    let options = kube::config::KubeConfigOptions {
        context: settings.kube_context.clone(),
        ..Default::default()
    };
    let config = match &settings.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading FERRY_AGENT_KUBECONFIG {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("using FERRY_AGENT_KUBECONFIG {}", path.display()))?
        }
        None if settings.kube_context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .context("using the kubeconfig context FERRY_AGENT_KUBE_CONTEXT")?,
        None => kube::Config::infer()
            .await
            .context("finding Kubernetes credentials (no kubeconfig and not in a cluster)")?,
    };
    tracing::info!(cluster = %config.cluster_url, "Kubernetes configuration loaded");
    kube::Client::try_from(config).context("building the Kubernetes client")
}

/// Where tokens come from, per the (validated) settings.
fn token_source(settings: &Settings) -> TokenSource {
    match (&settings.token_file, &settings.client_id) {
        (Some(path), _) => TokenSource::File {
            path: path.clone(),
            refresh: Duration::from_secs(settings.token_file_refresh_secs),
        },
        (None, client_id) => TokenSource::ClientCredentials {
            issuer: settings.issuer_url.clone().unwrap_or_default(),
            client_id: client_id.clone().unwrap_or_default(),
            secret: match (&settings.client_secret, &settings.client_secret_file) {
                (Some(secret), _) => Secret::Value(secret.clone()),
                (None, Some(path)) => Secret::File(path.clone()),
                (None, None) => Secret::Value(String::new()),
            },
            audience: settings.audience.clone(),
        },
    }
}

/// Readiness: a stream to the hub is open.
struct HubStream(Arc<AtomicBool>);

impl ReadinessCheck for HubStream {
    fn name(&self) -> &'static str {
        "hub"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let connected = self.0.load(Ordering::SeqCst);
        Box::pin(async move {
            if connected {
                Ok(())
            } else {
                Err("no open stream to the hub".to_string())
            }
        })
    }
}
