//! A fleet of simulated clusters for load: each a Kubernetes API simulator with its journal on,
//! served by the real agent ([`ferry_agent::run_with_registry`], the code the `ferry-agent`
//! binary runs) inside this process rather than as a process of its own, so a thousand clusters
//! fit on one machine. Each agent has its own credential (made through `POST /v1/credentials`
//! with the Agent role), dials one of the stack's hubs and signs in with client credentials,
//! exactly as a deployed agent does.

use crate::Stack;
use crate::api::Api;
use clap::Parser;
use ferry_kube_sim::{RunningSim, SimConfig};
use ferry_testkit::process::http_get;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One cluster of the fleet.
pub struct Member {
    /// The agent's id: the `account` deploy files name.
    pub account: String,
    /// The namespace made for the load.
    pub namespace: String,
    /// The simulator (its journal holds what reached it).
    pub sim: RunningSim,
    /// A direct client of the simulator (to seed it and to check it; Ferry goes through the agent).
    pub client: kube::Client,
    admin: SocketAddr,
}

/// The fleet, running; dropping it stops the agents.
pub struct Fleet {
    pub members: Vec<Member>,
    _stop: tokio_util::sync::DropGuard,
}

/// How the fleet's clusters behave.
#[derive(Clone, Copy, Debug)]
pub struct FleetOptions {
    /// Clusters (each with its own agent).
    pub clusters: usize,
    /// The least time a Pod takes to turn Ready.
    pub ready_delay: Duration,
    /// Up to this much more, spread over Pods.
    pub ready_jitter: Duration,
}

impl Fleet {
    /// Starts `options.clusters` simulators and agents (accounts `a0000`, `a0001`, …, namespace
    /// `load` in each), spreading the agents over the stack's hubs, and waits until every
    /// agent holds a hub stream.
    pub async fn start(stack: &Stack, api: &Api, options: FleetOptions) -> Fleet {
        let stop = CancellationToken::new();
        // Credentials first, a few at a time: each is an argon2 hash in svc-api.
        let mut credentials = JoinSet::new();
        let mut made = Vec::with_capacity(options.clusters);
        for i in 0..options.clusters {
            let api = api.clone();
            credentials.spawn(async move {
                let account = format!("a{i:04}");
                let credential = api
                    .create_credential(&format!("agent-{account}"), &["Agent"])
                    .await;
                (i, account, credential)
            });
            if credentials.len() >= 8 {
                made.push(
                    credentials
                        .join_next()
                        .await
                        .expect("a task")
                        .expect("joins"),
                );
            }
        }
        while let Some(done) = credentials.join_next().await {
            made.push(done.expect("joins"));
        }
        made.sort_by_key(|(i, _, _)| *i);

        let mut members = Vec::with_capacity(options.clusters);
        for (i, account, credential) in made {
            let namespace = "load".to_string();
            let mut config = SimConfig {
                plain_http: true,
                ready_delay: options.ready_delay,
                ready_jitter: options.ready_jitter,
                journal: true,
                // Watch history and live events keep whole objects alive; a hundred per resource
                // (not a thousand) keeps a thousand simulators within one machine's memory. A
                // watch resuming from further back gets 410 Gone and lists again.
                watch_history: 100,
                ..SimConfig::default()
            };
            config.namespaces.push(namespace.clone());
            let sim = ferry_kube_sim::start(config)
                .await
                .expect("start a kube-sim");
            let kubeconfig = stack.dir.join(format!("{account}.kubeconfig"));
            sim.write_kubeconfig(&kubeconfig)
                .expect("write the kubeconfig");
            let client = sim.client().await.expect("a client of the simulator");
            let hub = &stack.hub_urls[i % stack.hub_urls.len()];
            // `--flag=value`: a generated secret may begin with '-'.
            let kubeconfig = kubeconfig.to_string_lossy();
            let flags = [
                ("hub-url", hub.as_str()),
                ("agent-id", &account),
                ("issuer-url", &stack.api_url),
                ("client-id", &credential.client_id),
                ("client-secret", &credential.client_secret),
                ("kubeconfig", &kubeconfig),
                ("log", "warn"),
            ];
            let settings = ferry_agent::Settings::try_parse_from(
                std::iter::once("ferry-agent".to_string()).chain(
                    flags
                        .iter()
                        .map(|(flag, value)| format!("--{flag}={value}")),
                ),
            )
            .expect("agent settings");
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind an admin port");
            let admin = listener.local_addr().expect("its address");
            let shutdown = stop.child_token();
            tokio::spawn(async move {
                let registry = prometheus::Registry::new();
                if let Err(e) =
                    ferry_agent::run_with_registry(settings, listener, registry, shutdown).await
                {
                    eprintln!("agent ended: {e:#}");
                }
            });
            members.push(Member {
                account,
                namespace,
                sim,
                client,
                admin,
            });
        }
        let fleet = Fleet {
            members,
            _stop: stop.drop_guard(),
        };
        fleet.wait_connected(Duration::from_secs(300)).await;
        fleet
    }

    /// Waits until every agent reports a hub stream (`/readyz`), or panics at `deadline`.
    async fn wait_connected(&self, deadline: Duration) {
        let began = Instant::now();
        let mut waiting: Vec<&Member> = self.members.iter().collect();
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for member in waiting {
                if !matches!(http_get(member.admin, "/readyz").await, Some((200, _))) {
                    still.push(member);
                }
            }
            assert!(
                began.elapsed() < deadline,
                "{} of {} agents had no hub stream after {deadline:?}",
                still.len(),
                self.members.len()
            );
            waiting = still;
            if !waiting.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
