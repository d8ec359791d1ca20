//! Test environment: an issuer key, a name prefix, a database, hub replicas on their own
//! runtimes, tokens, tunnels and metric readers.

use ferry_agent_sim::{Script, SimAgent, SimOptions};
use ferry_auth::{Claims, Signer};
use ferry_backends::{AmqpArgs, PostgresArgs, RedisArgs};
use ferry_runtime::{CommonArgs, LogFormat};
use ferry_store::{Store, tenants};
use ferry_svc_agent_hub::{Listeners, Settings};
use ferry_tunnel::{AgentTunnel, TunnelConfig};
use prometheus::Registry;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(crate) const ISSUER: &str = "https://issuer.ferry.test";
pub(crate) const AUDIENCE: &str = "ferry-hub";

/// How often the replicas of the tests record an agent's heartbeat in Postgres.
pub(crate) const RECORD_INTERVAL: Duration = Duration::from_millis(300);

/// One test's world: its own prefix for queues and keys, its own issuer key and database.
pub(crate) struct Env {
    pub prefix: String,
    pub signer: Signer,
    pub jwks_file: PathBuf,
    pub db: ferry_testkit::TestDb,
    /// Each agent's credential, by (tenant, agent).
    agents: std::sync::Mutex<std::collections::HashMap<(Uuid, String), Uuid>>,
}

impl Env {
    pub(crate) async fn new() -> Env {
        let signer = Signer::generate_es256(ferry_testkit::unique("kid")).unwrap();
        let jwks_file =
            std::env::temp_dir().join(format!("{}.jwks.json", ferry_testkit::unique("hub")));
        std::fs::write(&jwks_file, serde_json::to_vec(&signer.jwk_set()).unwrap()).unwrap();
        Env {
            prefix: ferry_testkit::amqp::prefix(),
            signer,
            jwks_file,
            db: ferry_testkit::TestDb::new().await,
            agents: Default::default(),
        }
    }

    /// The store over the test's database.
    pub(crate) fn store(&self) -> Store {
        Store::from_pool(self.db.pool.clone())
    }

    /// Creates a tenant in the test's database (agents of tenants it lacks are served but not
    /// recorded) and returns its id.
    pub(crate) async fn tenant(&self, slug: &str) -> Uuid {
        let mut conn = self.db.pool.acquire().await.unwrap();
        let new = tenants::NewTenant {
            slug: slug.into(),
            name: slug.into(),
            organization_id: None,
        };
        tenants::create(&mut conn, &new).await.unwrap().id.as_uuid()
    }

    /// A hub token, valid for an hour, of a new credential of `tenant` with the Agent role (the
    /// tenant is created when the database lacks it). Each agent needs its own.
    pub(crate) async fn token(&self, tenant: Uuid) -> String {
        let credential = self.credential(tenant).await;
        self.credential_token(tenant, credential, &[ferry_auth::AGENT_ROLE])
    }

    /// A hub token of the credential of `tenant`'s agent `agent` (created on first use, then
    /// the same for every connection of that agent).
    pub(crate) async fn agent_token(&self, tenant: Uuid, agent: &str) -> String {
        let known = self
            .agents
            .lock()
            .unwrap()
            .get(&(tenant, agent.to_string()))
            .copied();
        let credential = match known {
            Some(credential) => credential,
            None => {
                let credential = self.credential(tenant).await;
                self.agents
                    .lock()
                    .unwrap()
                    .insert((tenant, agent.to_string()), credential);
                credential
            }
        };
        self.credential_token(tenant, credential, &[ferry_auth::AGENT_ROLE])
    }

    /// A token with a subject that names no credential (for refusals before the hello).
    pub(crate) fn token_with(&self, tenant: Uuid, audience: &str, ttl: Duration) -> String {
        let claims = Claims::new(
            ISSUER,
            Uuid::nil().to_string(),
            audience,
            tenant,
            vec![ferry_auth::AGENT_ROLE.into()],
            ttl,
        );
        self.signer.sign(&claims).unwrap()
    }

    /// A hub token of `credential` with `roles`, valid for an hour.
    pub(crate) fn credential_token(
        &self,
        tenant: Uuid,
        credential: Uuid,
        roles: &[&str],
    ) -> String {
        let claims = Claims::new(
            ISSUER,
            credential.to_string(),
            AUDIENCE,
            tenant,
            roles.iter().map(std::string::ToString::to_string).collect(),
            Duration::from_secs(3600),
        );
        self.signer.sign(&claims).unwrap()
    }

    /// A new machine credential of `tenant` (created when missing); its roles are the token's.
    pub(crate) async fn credential(&self, tenant: Uuid) -> Uuid {
        let slug = format!("t-{}", &tenant.simple().to_string()[..20]);
        sqlx::query(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&slug)
        .execute(&self.db.pool)
        .await
        .unwrap();
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO credentials (tenant_id, id, name, client_id, secret_hash)
             VALUES ($1, $2, $3, $3, 'not-used')",
        )
        .bind(tenant)
        .bind(id)
        .bind(id.to_string())
        .execute(&self.db.pool)
        .await
        .unwrap();
        id
    }

    /// Revokes `credential`, as the API does.
    pub(crate) async fn revoke(&self, tenant: Uuid, credential: Uuid) {
        let mut conn = self.db.pool.acquire().await.unwrap();
        ferry_store::credentials::revoke(&mut conn, tenant.into(), credential)
            .await
            .unwrap();
    }

    pub(crate) fn settings(&self, replica: &str) -> Settings {
        Settings {
            common: CommonArgs {
                admin_addr: None,
                log_format: LogFormat::Text,
                log: "info".into(),
                shutdown_grace_secs: 10,
            },
            amqp: AmqpArgs {
                amqp_url: ferry_testkit::amqp::amqp_url(),
                bus_prefix: self.prefix.clone(),
            },
            redis: RedisArgs {
                redis_url: redis_url(),
            },
            postgres: PostgresArgs {
                database_url: self.db.url.clone(),
                database_max_connections: 4,
            },
            hub_addr: "127.0.0.1:0".parse().unwrap(),
            tls_cert: None,
            tls_key: None,
            insecure_plaintext: true,
            replica_id: Some(replica.to_string()),
            lease_ttl_ms: 1_000,
            heartbeat_interval_ms: 200,
            heartbeat_record_interval_ms: RECORD_INTERVAL.as_millis() as u64,
            issuer: ISSUER.into(),
            jwks_file: Some(self.jwks_file.clone()),
            audience: AUDIENCE.into(),
        }
    }

    /// Starts a plaintext replica.
    pub(crate) async fn replica(&self, id: &str) -> Replica {
        Replica::start(self.settings(id), "http").await
    }

    pub(crate) async fn redis(&self) -> redis::aio::ConnectionManager {
        let client = redis::Client::open(redis_url()).unwrap();
        redis::aio::ConnectionManager::new(client).await.unwrap()
    }

    /// A caller's tunnel with quick silence checks.
    pub(crate) async fn tunnel(&self) -> TestTunnel {
        let bus = ferry_bus::Bus::connect(
            &ferry_testkit::amqp::amqp_url(),
            &format!("{}tunnel", self.prefix),
            ferry_bus::Topology::new(self.prefix.clone()),
        )
        .await
        .unwrap();
        let config = TunnelConfig {
            default_timeout: Duration::from_secs(10),
            silence_check: Duration::from_millis(200),
            reconnect_poll: Duration::from_millis(20),
            reconnect_grace: Duration::from_secs(5),
        };
        let tunnel = AgentTunnel::connect_with(&bus, self.redis().await, &self.prefix, config)
            .await
            .unwrap();
        TestTunnel { tunnel }
    }

    /// An agent connected to `endpoints` (tried in turn on reconnects).
    pub(crate) async fn agent(
        &self,
        endpoints: &[&Replica],
        tenant: Uuid,
        agent_id: &str,
        script: Script,
    ) -> SimAgent {
        let token = self.agent_token(tenant, agent_id).await;
        let mut options = SimOptions::new(&endpoints[0].url, &token, agent_id, script);
        options.endpoints = endpoints.iter().map(|r| r.url.clone()).collect();
        SimAgent::start(options).await.unwrap()
    }

    /// The replica and session an agent's route names in Redis, if any.
    pub(crate) async fn route_replica(&self, tenant: Uuid, agent: &str) -> Option<(String, u64)> {
        let mut redis = self.redis().await;
        let key = ferry_tunnel::routing::route_key(&self.prefix, &tenant.to_string(), agent);
        let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        ferry_tunnel::routing::Route::from_fields(&fields).map(|r| (r.replica, r.session))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.jwks_file);
    }
}

pub(crate) fn redis_url() -> String {
    std::env::var("FERRY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A caller's tunnel (its bus connection is named after the test's prefix).
#[derive(Clone)]
pub(crate) struct TestTunnel {
    tunnel: AgentTunnel,
}

impl std::ops::Deref for TestTunnel {
    type Target = AgentTunnel;
    fn deref(&self) -> &AgentTunnel {
        &self.tunnel
    }
}

/// A hub replica running on its own runtime and thread.
pub(crate) struct Replica {
    pub id: String,
    prefix: String,
    pub url: String,
    /// The admin server (`/healthz`, `/readyz`, `/metrics`).
    pub admin_url: String,
    pub registry: Registry,
    shutdown: CancellationToken,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    finished: Option<tokio::sync::oneshot::Receiver<Result<(), String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    pub(crate) async fn start(settings: Settings, scheme: &str) -> Replica {
        let hub = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        hub.set_nonblocking(true).unwrap();
        admin.set_nonblocking(true).unwrap();
        let port = hub.local_addr().unwrap().port();
        let host = if scheme == "https" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let url = format!("{scheme}://{host}:{port}");
        let admin_url = format!("http://{}", admin.local_addr().unwrap());
        let id = settings.replica_id.clone().unwrap();
        let prefix = settings.amqp.bus_prefix.clone();
        let registry = Registry::new();
        let shutdown = CancellationToken::new();
        let (kill, kill_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, finished) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = {
            let registry = registry.clone();
            let shutdown = shutdown.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                let outcome = rt.block_on(async move {
                    let listeners = Listeners {
                        hub: tokio::net::TcpListener::from_std(hub).unwrap(),
                        admin: tokio::net::TcpListener::from_std(admin).unwrap(),
                    };
                    let _ = ready_tx.send(());
                    tokio::select! {
                        result = ferry_svc_agent_hub::run_with_registry(settings, listeners, registry, shutdown) => {
                            Some(result.map_err(|e| format!("{e:#}")))
                        }
                        _ = kill_rx => None,
                    }
                });
                // A kill drops every task of the replica at once: sockets close, nothing
                // cleans up in Redis.
                rt.shutdown_background();
                if let Some(outcome) = outcome {
                    let _ = done_tx.send(outcome);
                }
            })
        };
        ready_rx.await.unwrap();
        let mut replica = Replica {
            id,
            prefix,
            url,
            admin_url,
            registry,
            shutdown,
            kill: Some(kill),
            finished: Some(finished),
            thread: Some(thread),
        };
        // Ready once the replica's queue exists and its liveness key is written.
        let redis = {
            let client = redis::Client::open(redis_url()).unwrap();
            redis::aio::ConnectionManager::new(client).await.unwrap()
        };
        replica.wait_ready(redis).await;
        replica
    }

    async fn wait_ready(&mut self, redis: redis::aio::ConnectionManager) {
        let key = ferry_tunnel::routing::replica_key(&self.prefix, &self.id);
        let finished = self.finished.as_mut().unwrap();
        let ready =
            ferry_testkit::eventually("the replica to be ready", Duration::from_secs(20), || {
                let mut redis = redis.clone();
                let key = key.clone();
                async move {
                    let exists: bool = redis::cmd("EXISTS")
                        .arg(&key)
                        .query_async(&mut redis)
                        .await
                        .ok()?;
                    exists.then_some(())
                }
            });
        tokio::select! {
            () = ready => {}
            // A replica that fails to start says why instead of timing out silently.
            outcome = finished => panic!("replica {} stopped while starting: {outcome:?}", self.id),
        }
    }

    /// SIGTERM: the replica drains and exits; returns its outcome.
    pub(crate) async fn stop(mut self) -> Result<(), String> {
        self.shutdown.cancel();
        let finished = self.finished.take().unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(15), finished)
            .await
            .expect("the replica drains within 15s")
            .expect("the replica reports its outcome");
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        outcome
    }

    /// Kills the replica outright: no go-away, no route release, sockets just close.
    pub(crate) async fn kill(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    /// Waits until a metric reaches `expected` (outcomes are counted just after the last
    /// reply is published, so a caller can see its answer a moment before the count).
    pub(crate) async fn wait_metric(&self, name: &str, label: Option<(&str, &str)>, expected: f64) {
        self.wait_metric_within(name, label, expected, Duration::from_secs(5))
            .await;
    }

    /// [`Replica::wait_metric`] with its own deadline.
    pub(crate) async fn wait_metric_within(
        &self,
        name: &str,
        label: Option<(&str, &str)>,
        expected: f64,
        deadline: Duration,
    ) {
        let what = format!("{name} {label:?} to reach {expected}");
        ferry_testkit::eventually(&what, deadline, || {
            let value = self.metric(name, label);
            async move { (value == expected).then_some(()) }
        })
        .await;
    }

    /// Whether `/readyz` answers 200.
    pub(crate) async fn ready(&self) -> bool {
        let url = format!("{}/readyz", self.admin_url);
        let Ok(uri) = url.parse::<http::Uri>() else {
            return false;
        };
        let Some(authority) = uri.authority().map(|a| a.as_str().to_string()) else {
            return false;
        };
        let Ok(mut stream) = tokio::net::TcpStream::connect(&authority).await else {
            return false;
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!("GET /readyz HTTP/1.0\r\nHost: {authority}\r\n\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            return false;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    }

    /// A counter or gauge of this replica, summed over labels matching `label`.
    pub(crate) fn metric(&self, name: &str, label: Option<(&str, &str)>) -> f64 {
        metric(&self.registry, name, label)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

pub(crate) fn metric(registry: &Registry, name: &str, label: Option<(&str, &str)>) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| match label {
            None => true,
            Some((k, v)) => m
                .get_label()
                .iter()
                .any(|l| l.name() == k && l.value() == v),
        })
        // A family is either counters or gauges; the other field reads as zero.
        .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
        .sum()
}

/// A GET request for the tunnel.
pub(crate) fn get(target: &str) -> http::Request<bytes::Bytes> {
    http::Request::get(target)
        .body(bytes::Bytes::new())
        .unwrap()
}
