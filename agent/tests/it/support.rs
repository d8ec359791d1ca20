//! The real pieces in process for every test: kube-sim (a Kubernetes API simulator, not a
//! cluster) reached through a kubeconfig file, a token issuer key, the real hub (plaintext, its
//! own bus and Redis prefix), the real agent, and a control-plane tunnel to reach it.

use ferry_agent::Settings;
use ferry_auth::{Claims, Signer};
use ferry_kube_sim::{RunningSim, SimConfig};
use ferry_tunnel::AgentTunnel;
use prometheus::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The issuer named in test tokens.
pub(crate) const ISSUER: &str = "https://issuer.ferry.test";

/// How long a test waits for something that should happen quickly.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// One test's world: simulator, keys, bus prefix, tunnel.
pub(crate) struct World {
    pub sim: RunningSim,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub signer: Signer,
    pub jwks_file: PathBuf,
    pub tenant: Uuid,
    pub prefix: String,
    pub tunnel: AgentTunnel,
    /// The hubs' database (they record agent connections).
    pub db: ferry_testkit::TestDb,
    /// The agent credential the world's tokens name (recorded in `db`).
    pub credential: Uuid,
}

impl World {
    /// Starts a simulator (Pods Ready after 200ms) and connects a tunnel under a fresh prefix.
    pub(crate) async fn new() -> World {
        ferry_runtime::telemetry::install_crypto();
        let sim = ferry_kube_sim::start(SimConfig {
            ready_delay: Duration::from_millis(200),
            ..SimConfig::default()
        })
        .await
        .expect("kube-sim starts");
        let dir = std::env::temp_dir().join(ferry_testkit::unique("ferry-agent-it"));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let signer = Signer::generate_es256("test-key").unwrap();
        let jwks_file = dir.join("jwks.json");
        std::fs::write(&jwks_file, serde_json::to_vec(&signer.jwk_set()).unwrap()).unwrap();
        let prefix = ferry_testkit::amqp::prefix();
        // A wedged broker accepts TCP and never answers the handshake: fail clearly instead.
        let bus = tokio::time::timeout(
            Duration::from_secs(30),
            ferry_bus::Bus::connect(
                &ferry_testkit::amqp::amqp_url(),
                &format!("{prefix}agent-test"),
                ferry_bus::Topology::new(prefix.clone()),
            ),
        )
        .await
        .expect("RabbitMQ answers the AMQP handshake within 30s")
        .expect("RabbitMQ is reachable");
        let redis = redis::aio::ConnectionManager::new(redis::Client::open(redis_url()).unwrap())
            .await
            .expect("Redis is reachable");
        let tunnel = AgentTunnel::connect(&bus, redis, &prefix)
            .await
            .expect("tunnel connects");
        World {
            sim,
            dir,
            kubeconfig,
            signer,
            jwks_file,
            tenant: Uuid::new_v4(),
            credential: Uuid::now_v7(),
            prefix,
            tunnel,
            db: ferry_testkit::TestDb::new().await,
        }
        .with_credential()
        .await
    }

    /// Records this world's tenant and agent credential in the hubs' database: the hub admits
    /// only a credential it knows, and binds the agent id to it on the first connection.
    async fn with_credential(self) -> World {
        let slug = format!("t-{}", &self.tenant.simple().to_string()[..20]);
        sqlx::query(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2) ON CONFLICT DO NOTHING",
        )
        .bind(self.tenant)
        .bind(&slug)
        .execute(&self.db.pool)
        .await
        .expect("a tenant row");
        sqlx::query(
            "INSERT INTO credentials (tenant_id, id, name, client_id, secret_hash)
             VALUES ($1, $2, 'agent', $3, 'not-used')",
        )
        .bind(self.tenant)
        .bind(self.credential)
        .bind(self.credential.to_string())
        .execute(&self.db.pool)
        .await
        .expect("a credential row");
        self
    }

    /// A hub token of this world's agent credential, valid for `ttl`.
    pub(crate) fn token(&self, ttl: Duration) -> String {
        let claims = Claims::new(
            ISSUER,
            self.credential.to_string(),
            "ferry-hub",
            self.tenant,
            vec![ferry_auth::AGENT_ROLE.into()],
            ttl,
        );
        self.signer.sign(&claims).unwrap()
    }

    /// Writes a token file and returns its path.
    pub(crate) fn token_file(&self, token: &str) -> PathBuf {
        let path = self.dir.join("token");
        std::fs::write(&path, token).unwrap();
        path
    }

    /// Starts a hub replica on `port` (0 for any) trusting this world's test key.
    pub(crate) async fn hub(&self, port: u16) -> Hub {
        let jwks = self.jwks_file.to_str().unwrap().to_string();
        self.hub_trusting(port, ISSUER, Some(&jwks)).await
    }

    /// Starts a hub replica on `port` trusting `issuer`, with its keys from `jwks_file` or, when
    /// none, found by OIDC discovery.
    pub(crate) async fn hub_trusting(
        &self,
        port: u16,
        issuer: &str,
        jwks_file: Option<&str>,
    ) -> Hub {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("hub port");
        let addr = listener.local_addr().unwrap();
        let replica = ferry_testkit::unique("hub").replace('_', "-");
        let redis = redis_url();
        let amqp = ferry_testkit::amqp::amqp_url();
        let mut args = vec![
            "--insecure-plaintext",
            "--issuer",
            issuer,
            "--bus-prefix",
            &self.prefix,
            "--redis-url",
            &redis,
            "--amqp-url",
            &amqp,
            "--replica-id",
            &replica,
            "--database-url",
            &self.db.url,
            "--heartbeat-interval-ms",
            "200",
            "--lease-ttl-ms",
            "3000",
            "--shutdown-grace-secs",
            "5",
        ];
        if let Some(jwks) = jwks_file {
            args.extend(["--jwks-file", jwks]);
        }
        let settings = ferry_svc_agent_hub::Settings::try_parse_from_args(&args);
        let listeners = ferry_svc_agent_hub::Listeners {
            hub: listener,
            admin: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(ferry_svc_agent_hub::run(settings, listeners, stop.clone()));
        Hub {
            url: format!("http://{addr}"),
            addr,
            replica,
            stop,
            task,
        }
    }

    /// Starts an agent with a token file, the simulator's kubeconfig and `extra` flags.
    pub(crate) async fn agent(
        &self,
        agent_id: &str,
        hub_url: &str,
        token_file: &str,
        extra: &[&str],
    ) -> Agent {
        let mut args = vec![
            "ferry-agent",
            "--hub-url",
            hub_url,
            "--agent-id",
            agent_id,
            "--token-file",
            token_file,
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
            "--reconnect-initial-ms",
            "50",
            "--reconnect-max-ms",
            "400",
            "--shutdown-grace-secs",
            "4",
        ];
        args.extend_from_slice(extra);
        self.agent_with(args).await
    }

    /// Starts an agent with exactly these arguments (the simulator's kubeconfig added).
    pub(crate) async fn agent_with(&self, args: Vec<&str>) -> Agent {
        use clap::Parser;
        let settings = Settings::try_parse_from(args).expect("agent settings parse");
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let registry = Registry::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(ferry_agent::run_with_registry(
            settings,
            admin,
            registry.clone(),
            stop.clone(),
        ));
        Agent {
            registry,
            admin_addr,
            stop,
            task,
        }
    }

    /// Waits until the agent's route names `replica` and the agent counts its stream open
    /// (the hub claims the route just before the agent hears its welcome).
    pub(crate) async fn connected_to(&self, agent: &Agent, agent_id: &str, replica: &str) {
        let tenant = self.tenant.to_string();
        ferry_testkit::eventually("the agent's route to name the replica", WAIT, || async {
            let route = self.tunnel.lookup(&tenant, agent_id).await.ok()??;
            (route.replica == replica).then_some(())
        })
        .await;
        ferry_testkit::eventually("the agent to count its stream open", WAIT, || async {
            (agent.metric("ferry_agent_hub_connected", &[]) == 1.0).then_some(())
        })
        .await;
    }

    /// Starts a hub and an agent `agent_id` (a 10-minute token, `extra` flags) and waits until
    /// the agent is connected to that hub.
    pub(crate) async fn connected_agent(&self, agent_id: &str, extra: &[&str]) -> (Hub, Agent) {
        let hub = self.hub(0).await;
        let token = self.token_file(&self.token(Duration::from_secs(600)));
        let agent = self
            .agent(agent_id, &hub.url, token.to_str().unwrap(), extra)
            .await;
        self.connected_to(&agent, agent_id, &hub.replica).await;
        (hub, agent)
    }

    /// A kube-rs client for the agent's cluster, through hub and agent.
    pub(crate) fn client(&self, agent_id: &str) -> kube::Client {
        self.tunnel
            .kube_client(self.tenant.to_string(), agent_id, "default")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running hub replica.
pub(crate) struct Hub {
    pub url: String,
    pub addr: SocketAddr,
    pub replica: String,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Hub {
    /// Shuts the replica down (go-away to its agents) and waits for it.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("hub task")
            .expect("hub stops cleanly");
    }
}

/// A running agent.
pub(crate) struct Agent {
    pub registry: Registry,
    pub admin_addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Agent {
    /// A metric's value: the sample of `name` whose labels include all of `labels`, summed.
    pub(crate) fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric(&self.registry, name, labels)
    }

    /// The status of the agent's `/readyz`.
    pub(crate) async fn readyz(&self) -> u16 {
        let url = format!("http://{}/readyz", self.admin_addr);
        reqwest::get(url).await.map_or(0, |r| r.status().as_u16())
    }

    /// Shuts the agent down and returns how `run` ended.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await.expect("agent task")
    }
}

/// A metric's value in `registry`: the samples of `name` whose labels include all of `labels`,
/// summed (usable after the agent that owned the registry has stopped).
pub(crate) fn metric(registry: &Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for family in registry.gather() {
        if family.name() != name {
            continue;
        }
        for metric in family.get_metric() {
            let matches = labels.iter().all(|(k, v)| {
                metric
                    .get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            });
            if !matches {
                continue;
            }
            // Only one of the two is set, the other reads 0.
            total += metric.get_counter().get_value() + metric.get_gauge().get_value();
        }
    }
    total
}

/// The Redis the tests use.
pub(crate) fn redis_url() -> String {
    std::env::var("FERRY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Parsing hub settings from flags only.
trait FromArgs: Sized {
    fn try_parse_from_args(args: &[&str]) -> Self;
}

impl FromArgs for ferry_svc_agent_hub::Settings {
    fn try_parse_from_args(args: &[&str]) -> Self {
        use clap::Parser;
        let mut all = vec!["ferry-svc-agent-hub"];
        all.extend_from_slice(args);
        ferry_svc_agent_hub::Settings::try_parse_from(all).expect("hub settings parse")
    }
}
