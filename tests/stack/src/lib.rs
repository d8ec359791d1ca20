//! ferry-stack-tests: the whole system under test. [`Stack`] runs Ferry's real binaries wired as
//! in production — svc-api (the issuer), svc-agent-hub replicas, svc-scheduler replicas and one
//! `ferry-agent` per cluster that dials a hub with a real token — against the test's own
//! database, bus prefix and Redis keys, with a Kubernetes API simulator per cluster (the only
//! stand-in). Tests drive it with the `ferry` CLI and kill processes to prove nothing is lost.
//!
//! The binaries come from the cargo target directory of this test (`cargo build --bins` or a
//! workspace test run builds them).
//!
//! For load: [`fleet`] runs many simulated clusters with the real agent in process,
//! [`timeline`] reads rollouts' step timings off the simulators' journals, [`measure`] has
//! percentiles and memory readings.

pub mod api;
pub mod fleet;
pub mod measure;
pub mod timeline;

use base64::Engine as _;
use ferry_kube_sim::{RunningSim, SimConfig};
use ferry_store::{Store, TenantId};
use ferry_testkit::process::{Exited, ServiceProcess, free_port};
use ferry_testkit::{TestDb, amqp};
use ferry_tunnel::routing;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

/// How long a process may take to report ready.
const READY: Duration = Duration::from_secs(60);

/// A cluster of the stack: its account (the agent's id) and the namespaces that exist in it.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub account: &'static str,
    pub namespaces: &'static [&'static str],
}

/// The shape of a stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    pub clusters: Vec<Cluster>,
    pub hubs: usize,
    pub schedulers: usize,
    /// How long a simulated Pod takes to turn Ready.
    pub pod_ready_delay: Duration,
    /// Seconds between the schedulers' readiness ticks (`FERRY_SCHEDULER_TICK_SECS`).
    pub scheduler_tick_secs: u64,
}

/// A client credential made by `ferry-svc-api bootstrap`.
#[derive(Clone, Debug)]
pub struct Credential {
    pub client_id: String,
    pub client_secret: String,
}

/// Ferry, running.
pub struct Stack {
    pub db: TestDb,
    pub store: Store,
    pub tenant: TenantId,
    /// `http://127.0.0.1:<port>`: svc-api and the issuer.
    pub api_url: String,
    /// An admin of the tenant.
    pub admin: Credential,
    /// The hub replicas' agent endpoints (`http://127.0.0.1:<port>`, plaintext on loopback).
    pub hub_urls: Vec<String>,
    /// Direct clients of each cluster's simulator, by account (for assertions only: Ferry reaches
    /// the clusters through the hub and the agents).
    pub clusters: HashMap<String, kube::Client>,
    /// A scratch directory: deploy files, kubeconfigs, the CLI's HOME.
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    api: Option<ServiceProcess>,
    hubs: Vec<ServiceProcess>,
    schedulers: Vec<Option<ServiceProcess>>,
    scheduler_tick_secs: u64,
    agents: Vec<ServiceProcess>,
    canaries: Vec<ServiceProcess>,
    webhooks: Vec<ServiceProcess>,
    sims: Vec<RunningSim>,
    _cleanup: amqp::Cleanup,
}

/// The path of a Ferry binary built with the same profile as the running program: beside it (a
/// benchmark binary in target/<profile>/) or one level up (a test in target/<profile>/deps/).
pub fn binary(name: &str) -> String {
    let exe = std::env::current_exe().expect("the program's path");
    let here = exe.parent().expect("the program's directory");
    let candidates = [Some(here), here.parent()];
    let found = candidates
        .into_iter()
        .flatten()
        .map(|dir| dir.join(name))
        .find(|path| path.exists());
    let Some(path) = found else {
        panic!(
            "{name} is missing beside {}: build the binaries first (cargo build --bins, or run the \
             whole workspace's tests)",
            here.display()
        )
    };
    path.to_string_lossy().into_owned()
}

/// The master key svc-api seals secrets with, which svc-canary opens them with.
fn master_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

/// The id of hub replica `i`.
fn replica(i: usize) -> String {
    format!("hub-{}", i + 1)
}

/// `base` followed by `extra`: the environment of one process.
fn extended(base: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let extra = extra.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    base.iter().cloned().chain(extra).collect()
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Stack {
    /// Starts everything and waits until every process is ready and every agent connected.
    pub async fn start(options: StackOptions) -> Stack {
        Stack::start_with_env(options, &[]).await
    }

    /// Like [`Stack::start`], with `extra` environment variables for every process (e.g. the
    /// OTLP endpoint).
    pub async fn start_with_env(options: StackOptions, extra: &[(&str, &str)]) -> Stack {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDb::new().await;
        let store = Store::connect(&db.url, 4)
            .await
            .expect("connect to the test database");
        let prefix = amqp::prefix();
        let topology = ferry_bus::Topology::new(prefix.clone());
        let hub_queues = (0..options.hubs).map(|i| routing::replica_queue(&prefix, &replica(i)));
        let cleanup = amqp::Cleanup::new(
            topology.queue_names().into_iter().chain(hub_queues),
            topology
                .exchange_names()
                .into_iter()
                .chain([routing::hub_exchange(&prefix)]),
        );
        let dir = std::env::temp_dir().join(ferry_testkit::unique("ferry-stack"));
        std::fs::create_dir_all(dir.join("home")).expect("create the scratch directory");
        let api_port = free_port();
        let api_url = format!("http://127.0.0.1:{api_port}");
        let master_key = master_key();
        let env: Vec<(String, String)> = [
            ("FERRY_DATABASE_URL", db.url.as_str()),
            ("FERRY_DATABASE_MAX_CONNECTIONS", "4"),
            ("FERRY_AMQP_URL", &amqp::amqp_url()),
            ("FERRY_BUS_PREFIX", &prefix),
            ("FERRY_LOG", "info"),
            ("FERRY_SHUTDOWN_GRACE_SECS", "5"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

        let api_env = extended(
            &env,
            &[
                ("FERRY_HTTP_ADDR", &format!("127.0.0.1:{api_port}")),
                ("FERRY_ISSUER_URL", &api_url),
                ("FERRY_MASTER_KEY", &master_key),
                ("FERRY_DEV", "true"),
            ],
        );
        let mut api = ServiceProcess::spawn(&binary("ferry-svc-api"), &pairs(&api_env));
        api.wait_ready(READY).await;

        let mut stack = Stack {
            db,
            store,
            tenant: TenantId::default(),
            api_url,
            admin: Credential {
                client_id: String::new(),
                client_secret: String::new(),
            },
            hub_urls: Vec::new(),
            clusters: HashMap::new(),
            dir,
            env,
            api: Some(api),
            hubs: Vec::new(),
            schedulers: Vec::new(),
            scheduler_tick_secs: options.scheduler_tick_secs,
            agents: Vec::new(),
            canaries: Vec::new(),
            webhooks: Vec::new(),
            sims: Vec::new(),
            _cleanup: cleanup,
        };
        let (tenant, admin) = stack.bootstrap("admin", "Tenant Admin").await;
        stack.tenant = tenant;
        stack.admin = admin;

        for i in 0..options.hubs {
            let port = free_port();
            let hub_env = extended(
                &stack.env,
                &[
                    ("FERRY_HUB_ADDR", &format!("127.0.0.1:{port}")),
                    ("FERRY_HUB_INSECURE_PLAINTEXT", "true"),
                    ("FERRY_HUB_ISSUER", &stack.api_url),
                    ("FERRY_HUB_REPLICA_ID", &replica(i)),
                ],
            );
            let mut hub = ServiceProcess::spawn(&binary("ferry-svc-agent-hub"), &pairs(&hub_env));
            hub.wait_ready(READY).await;
            stack.hubs.push(hub);
            stack.hub_urls.push(format!("http://127.0.0.1:{port}"));
        }
        for _ in 0..options.schedulers {
            stack.start_scheduler().await;
        }

        for (n, cluster) in options.clusters.iter().enumerate() {
            let mut config = SimConfig {
                ready_delay: options.pod_ready_delay,
                ..SimConfig::default()
            };
            config.namespaces.extend(
                cluster
                    .namespaces
                    .iter()
                    .map(std::string::ToString::to_string),
            );
            let sim = ferry_kube_sim::start(config)
                .await
                .expect("start a kube-sim");
            let kubeconfig = stack.dir.join(format!("{}.kubeconfig", cluster.account));
            sim.write_kubeconfig(&kubeconfig)
                .expect("write the kubeconfig");
            stack.clusters.insert(
                cluster.account.to_string(),
                sim.client().await.expect("a client of the simulator"),
            );
            stack.sims.push(sim);
            let (_, cred) = stack
                .bootstrap(&format!("agent-{}", cluster.account), "Agent")
                .await;
            let agent_env = extended(
                &stack.env,
                &[
                    (
                        "FERRY_AGENT_HUB_URL",
                        &stack.hub_urls[n % stack.hub_urls.len()],
                    ),
                    ("FERRY_AGENT_ID", cluster.account),
                    ("FERRY_AGENT_ISSUER_URL", &stack.api_url),
                    ("FERRY_AGENT_CLIENT_ID", &cred.client_id),
                    ("FERRY_AGENT_CLIENT_SECRET", &cred.client_secret),
                    ("FERRY_AGENT_KUBECONFIG", &kubeconfig.to_string_lossy()),
                ],
            );
            let mut agent = ServiceProcess::spawn(&binary("ferry-agent"), &pairs(&agent_env));
            agent.wait_ready(READY).await;
            stack.agents.push(agent);
        }
        stack
    }

    /// Runs a one-shot `ferry-svc-api` command (`bootstrap`, `local-user`) against the stack's
    /// database, with `extra` environment variables.
    pub async fn svc_api_command(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        tokio::process::Command::new(binary("ferry-svc-api"))
            .args(args)
            .envs(pairs(&self.env))
            .envs(extra.iter().copied())
            .output()
            .await
            .expect("run ferry-svc-api")
    }

    /// Creates a credential in the `demo` tenant with `roles` through `ferry-svc-api bootstrap`.
    async fn bootstrap(&self, name: &str, roles: &str) -> (TenantId, Credential) {
        let output = tokio::process::Command::new(binary("ferry-svc-api"))
            .args(["bootstrap", "--tenant", "demo", "--client-name", name])
            .args(["--roles", roles, "--json"])
            .envs(pairs(&self.env))
            .output()
            .await
            .expect("run ferry-svc-api bootstrap");
        assert!(
            output.status.success(),
            "bootstrap failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("bootstrap prints JSON");
        let field = |k: &str| json[k].as_str().unwrap_or_default().to_string();
        let tenant: uuid::Uuid = field("tenant_id").parse().expect("a tenant id");
        (
            TenantId::from(tenant),
            Credential {
                client_id: field("client_id"),
                client_secret: field("client_secret"),
            },
        )
    }

    /// Starts one more svc-scheduler replica; returns its index.
    pub async fn start_scheduler(&mut self) -> usize {
        let env = extended(
            &self.env,
            &[
                (
                    "FERRY_SCHEDULER_TICK_SECS",
                    &self.scheduler_tick_secs.to_string(),
                ),
                ("FERRY_SCHEDULER_TIMER_POLL_MS", "200"),
                ("FERRY_API_URL", &self.api_url),
            ],
        );
        let mut scheduler = ServiceProcess::spawn(&binary("ferry-svc-scheduler"), &pairs(&env));
        scheduler.wait_ready(READY).await;
        self.schedulers.push(Some(scheduler));
        self.schedulers.len() - 1
    }

    /// The admin addresses (`/metrics`) of the running scheduler replicas.
    pub fn scheduler_admins(&self) -> Vec<std::net::SocketAddr> {
        self.schedulers.iter().flatten().map(|s| s.admin).collect()
    }

    /// The process ids of the running scheduler replicas.
    pub fn scheduler_pids(&self) -> Vec<u32> {
        self.schedulers
            .iter()
            .flatten()
            .filter_map(ServiceProcess::pid)
            .collect()
    }

    /// Kills scheduler replica `index` with SIGKILL.
    pub async fn kill_9_scheduler(&mut self, index: usize) -> Exited {
        let scheduler = self.schedulers[index]
            .take()
            .expect("the scheduler replica is running");
        scheduler.kill_9().await
    }

    /// Starts an svc-canary (canary analysis), with svc-api's master key to open provider
    /// credentials and the hub tunnel for providers behind agents.
    pub async fn start_canary(&mut self) {
        let master_key = master_key();
        let env = extended(
            &self.env,
            &[
                ("FERRY_MASTER_KEY", &master_key),
                ("FERRY_CANARY_POLL_MS", "200"),
            ],
        );
        let mut canary = ServiceProcess::spawn(&binary("ferry-svc-canary"), &pairs(&env));
        canary.wait_ready(READY).await;
        self.canaries.push(canary);
    }

    /// Stops svc-api and starts it again at the same address with `extra` settings (which win
    /// over the stack's), e.g. a benchmark's production-sized pool and quieter logs.
    pub async fn restart_api(&mut self, extra: &[(&str, &str)]) {
        if let Some(api) = self.api.take() {
            api.terminate(READY).await;
        }
        let addr = self.api_url.trim_start_matches("http://").to_string();
        let issuer = self.api_url.clone();
        let master_key = master_key();
        let mut env = extended(
            &self.env,
            &[
                ("FERRY_HTTP_ADDR", &addr),
                ("FERRY_ISSUER_URL", &issuer),
                ("FERRY_MASTER_KEY", &master_key),
                ("FERRY_DEV", "true"),
            ],
        );
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut api = ServiceProcess::spawn(&binary("ferry-svc-api"), &pairs(&env));
        api.wait_ready(READY).await;
        self.api = Some(api);
    }

    /// Starts an svc-webhook (webhooks and notifications), with svc-api's master key to open
    /// secrets, the hub tunnel for webhooks sent through agents, and `extra` settings.
    pub async fn start_webhook(&mut self, extra: &[(&str, &str)]) {
        let master_key = master_key();
        let mut env = extended(
            &self.env,
            &[
                ("FERRY_MASTER_KEY", &master_key),
                ("FERRY_WEBHOOK_POLL_MS", "200"),
            ],
        );
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut webhook = ServiceProcess::spawn(&binary("ferry-svc-webhook"), &pairs(&env));
        webhook.wait_ready(READY).await;
        self.webhooks.push(webhook);
    }

    /// The logs of every process so far, for a failing test's message.
    pub fn logs(&self) -> String {
        self.named()
            .map(|(name, p)| format!("----- {name}\n{}", p.stderr_so_far()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every running service process by name (`svc-api`, `hub-0`, `scheduler-1`, …) and pid.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.named()
            .filter_map(|(name, p)| p.pid().map(|pid| (name, pid)))
            .collect()
    }

    fn named(&self) -> impl Iterator<Item = (String, &ServiceProcess)> {
        self.api
            .iter()
            .map(|p| ("svc-api".to_string(), p))
            .chain(
                self.hubs
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("hub-{i}"), p)),
            )
            .chain(
                self.schedulers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| p.as_ref().map(|p| (format!("scheduler-{i}"), p))),
            )
            .chain(
                self.agents
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("agent-{i}"), p)),
            )
            .chain(
                self.canaries
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("canary-{i}"), p)),
            )
            .chain(
                self.webhooks
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("webhook-{i}"), p)),
            )
    }

    /// Runs the `ferry` CLI with the admin's credentials (from the environment, as CI does) and
    /// a HOME of its own; no terminal.
    pub async fn ferry(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(binary("ferry"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.join("home"))
            .env("FERRY_API", &self.api_url)
            .env("FERRY_CLIENT_ID", &self.admin.client_id)
            .env("FERRY_CLIENT_SECRET", &self.admin.client_secret)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run ferry")
    }

    /// Writes `files` (relative path → content) under the scratch directory; returns its path.
    pub fn write_files(&self, sub: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.dir.join(sub);
        for (path, content) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, content).expect("write a file");
        }
        root
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
