//! kube-sim: a Kubernetes API simulator (not a cluster) for Ferry's tests and demo.
//!
//! It serves the Kubernetes REST API over HTTPS (or plain HTTP) on 127.0.0.1 well enough for
//! kube-rs (`Api<T>`, `kube::runtime::watcher`) and kubectl to work unchanged through an
//! ordinary kubeconfig: discovery, get/list/watch with selectors and resourceVersion
//! semantics, create/replace/delete with propagation policy, merge/JSON/strategic merge patch,
//! server-side apply with field managers, `status` and `scale` subresources, OpenAPI v3/v2
//! documents with server-side field validation, and the protobuf bodies kubectl's typed commands
//! send. A small
//! controller makes ReplicaSets create Pods, Deployments own ReplicaSets, and Pods turn Ready
//! after a delay (never, with an image tagged `bad`). Fault switches inject latency, errors
//! and dropped connections.
//!
//! Start one in process with [`start`]; the `kube-sim` binary wraps the same call.

mod apply;
mod controller;
mod discovery;
mod error;
mod faults;
mod handlers;
mod http;
pub mod journal;
mod kubeconfig;
mod objects;
mod openapi;
mod ops;
mod patch;
mod protobuf;
mod resources;
mod selector;
mod state;
mod store;
mod table;
mod tls;
mod watch;
mod yaml;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use error::SimError;
pub use faults::Faults;
pub use resources::CustomResource;

use state::SimState;

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Serve plain HTTP instead of HTTPS with a generated CA. The bearer token is then not
    /// checked (kubectl does not send tokens over plain HTTP).
    pub plain_http: bool,
    /// How long a Pod takes to turn Ready after it is created.
    pub ready_delay: Duration,
    /// Up to this much more, spread over Pods by their uid (the same Pod always gets the same).
    pub ready_jitter: Duration,
    /// Keep a [`journal`] of requests and Pods turning Ready (read with [`RunningSim::journal`]).
    pub journal: bool,
    /// The bearer token clients must send; `None` generates a random one.
    pub token: Option<String>,
    /// Fault switches in force from the start.
    pub faults: Faults,
    /// Watch events kept per resource for resuming watches; older resourceVersions get 410.
    pub watch_history: usize,
    /// How often a watch that allows bookmarks (`allowWatchBookmarks=true`) gets one.
    pub bookmark_interval: Duration,
    /// Custom resources served with generic storage (defaults: Istio VirtualService and
    /// DestinationRule, SMI TrafficSplit, Gateway API HTTPRoute).
    pub custom_resources: Vec<CustomResource>,
    /// Namespaces that exist at start (defaults: `default`, `kube-system`, `kube-public`).
    pub namespaces: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            plain_http: false,
            ready_delay: Duration::from_millis(500),
            ready_jitter: Duration::ZERO,
            journal: false,
            token: None,
            faults: Faults::default(),
            watch_history: 1000,
            bookmark_interval: Duration::from_secs(5),
            custom_resources: CustomResource::ferry_defaults(),
            namespaces: vec!["default".into(), "kube-system".into(), "kube-public".into()],
        }
    }
}

/// A running simulator; dropping it without [`RunningSim::shutdown`] leaves the server running
/// until the runtime ends.
#[derive(Debug)]
pub struct RunningSim {
    state: Arc<SimState>,
    addr: SocketAddr,
    base_url: String,
    kubeconfig: String,
    server: JoinHandle<()>,
    controller: JoinHandle<()>,
}

/// Starts a simulator: binds 127.0.0.1:`port`, generates TLS material, creates the initial
/// namespaces and starts the server and the controller.
pub async fn start(config: SimConfig) -> Result<RunningSim, SimError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
    let addr = listener.local_addr()?;
    let token = config
        .token
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let state = Arc::new(SimState::new(
        resources::Registry::new(&config.custom_resources),
        config.watch_history,
        token.clone(),
        !config.plain_http,
        state::Readiness {
            delay: config.ready_delay,
            jitter: config.ready_jitter,
        },
        config.faults,
        addr.to_string(),
        config.bookmark_interval,
        journal::Journal::new(config.journal),
    ));
    let ns_type = state
        .registry
        .by_plural("", "namespaces")
        .expect("namespaces are built in")
        .clone();
    for ns in &config.namespaces {
        ops::create(
            &state,
            &ns_type,
            "v1",
            "",
            json!({"metadata": {"name": ns}}),
            None,
        )
        .map_err(|e| {
            SimError::Io(std::io::Error::other(format!(
                "creating namespace {ns}: {e}"
            )))
        })?;
    }
    let app = http::router(state.clone());
    let shutdown = state.shutdown.clone();
    let (base_url, kubeconfig, server) = if config.plain_http {
        let base_url = format!("http://{addr}");
        let server = tokio::spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "kube-sim server failed");
            }
        });
        (
            base_url.clone(),
            kubeconfig::render(&base_url, None, &token),
            server,
        )
    } else {
        let certs = tls::generate()?;
        let base_url = format!("https://{addr}");
        let tls_listener = tls::TlsListener::new(listener, certs.server.clone(), shutdown.clone())?;
        let server = tokio::spawn(async move {
            let serve =
                axum::serve(tls_listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "kube-sim server failed");
            }
        });
        (
            base_url.clone(),
            kubeconfig::render(&base_url, Some(&certs.ca_pem), &token),
            server,
        )
    };
    let controller = tokio::spawn(controller::run(state.clone()));
    tracing::info!(%base_url, "kube-sim (Kubernetes API simulator) listening");
    Ok(RunningSim {
        state,
        addr,
        base_url,
        kubeconfig,
        server,
        controller,
    })
}

impl RunningSim {
    /// `https://127.0.0.1:PORT` (or `http://` with plain HTTP).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// The kubeconfig (YAML) pointing at this simulator.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// Writes the kubeconfig to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        std::fs::write(path, &self.kubeconfig)?;
        Ok(())
    }

    /// A kube-rs client configured from the kubeconfig, exactly as an ordinary client would be.
    pub async fn client(&self) -> Result<kube::Client, SimError> {
        // kube-rs with the `ring` feature expects a process-wide rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Takes the journal's entries so far and how many were dropped for want of room (empty
    /// unless [`SimConfig::journal`] was set).
    pub fn journal(&self) -> (Vec<journal::Entry>, u64) {
        self.state.journal.take()
    }

    /// The fault switches in force.
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Changes the fault switches at run time.
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// Stops the server, open watches and the controller, and waits for them.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        let _ = self.server.await;
        let _ = self.controller.await;
    }
}

/// Parses a duration such as `500ms`, `2s`, `1m` or a bare number of seconds (for flags).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("fast").is_err());
    }
}
