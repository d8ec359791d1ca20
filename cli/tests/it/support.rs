//! The bench the CLI tests run against: svc-api started in process on 127.0.0.1:0 with the
//! test's own database and bus prefix, optionally the scheduler engine in process deploying to
//! Kubernetes API simulators, a private HOME for the credentials file, and the real `ferry`
//! binary run as a child process with a clean environment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_bus::{Bus, ConsumerMetrics, Topology};
use ferry_kube_sim::{RunningSim, SimConfig};
use ferry_store::TenantId;
use ferry_svc_api::identity::bootstrap::BootstrapOutcome;
use ferry_svc_api::testing::{TestConfig, TestServer};
use ferry_svc_scheduler::{ClusterError, Clusters, EngineConfig};
use ferry_testkit::TestDb;
use ferry_testkit::amqp::{self, Cleanup};
use tokio::io::AsyncWriteExt as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long one `ferry` run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Clusters of the engine: one simulator client per account.
struct SimClusters(HashMap<String, kube::Client>);

#[async_trait]
impl Clusters for SimClusters {
    async fn client(&self, _tenant: TenantId, account: &str) -> Result<kube::Client, ClusterError> {
        self.0
            .get(account)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownAccount(account.to_string()))
    }
}

/// svc-api (and optionally the scheduler) for one test.
pub(crate) struct Stack {
    pub db: TestDb,
    /// `http://127.0.0.1:<port>`.
    pub api: String,
    server: TestServer,
    prefix: String,
    engine: Option<(CancellationToken, JoinHandle<()>)>,
    sims: Vec<RunningSim>,
    _cleanup: Cleanup,
}

impl Stack {
    /// Starts svc-api and waits until it answers.
    pub(crate) async fn start() -> Stack {
        Stack::start_with(&[]).await
    }

    /// [`Stack::start`] with more svc-api flags (e.g. an external sign-in issuer's).
    pub(crate) async fn start_with(extra: &[String]) -> Stack {
        let db = TestDb::new().await;
        let prefix = amqp::prefix();
        let topology = Topology::new(prefix.clone());
        let cleanup = Cleanup::new(topology.queue_names(), topology.exchange_names());
        let config = TestConfig::new(&db.url, &amqp::amqp_url(), &prefix)
            .flag("--shutdown-grace-secs", 10)
            .flags(extra);
        let server = TestServer::start(&config).await;
        Stack {
            db,
            api: server.base.clone(),
            server,
            prefix,
            engine: None,
            sims: Vec::new(),
            _cleanup: cleanup,
        }
    }

    /// A new tenant and a credential in it holding `roles` (with its secret).
    pub(crate) async fn tenant(&self, roles: &[&str]) -> BootstrapOutcome {
        self.server.bootstrap("t", "cli-test", roles).await
    }

    /// A new tenant and credential holding `roles`, and a fresh home logged in with it.
    pub(crate) async fn logged_in(&self, roles: &[&str]) -> (BootstrapOutcome, Home) {
        let credential = self.tenant(roles).await;
        let home = Home::new();
        login(&home, self, &credential).await;
        (credential, home)
    }

    /// Starts the scheduler engine, deploying to one simulator per account (each with
    /// `namespaces`).
    pub(crate) async fn start_engine(&mut self, accounts: &[&str], namespaces: &[&str]) {
        let mut clients = HashMap::new();
        for account in accounts {
            let mut ns = vec!["default".to_string()];
            ns.extend(namespaces.iter().map(std::string::ToString::to_string));
            let sim = ferry_kube_sim::start(SimConfig {
                ready_delay: Duration::from_millis(100),
                namespaces: ns,
                ..SimConfig::default()
            })
            .await
            .expect("start a Kubernetes API simulator");
            clients.insert(account.to_string(), sim.client().await.unwrap());
            self.sims.push(sim);
        }
        ferry_runtime::telemetry::install_crypto();
        let bus = Bus::connect(
            &amqp::amqp_url(),
            "cli-test-scheduler",
            Topology::new(self.prefix.clone()),
        )
        .await
        .expect("connect the scheduler's bus");
        bus.declare().await.unwrap();
        let config = EngineConfig {
            tick: Duration::from_millis(200),
            timer_poll: Duration::from_millis(100),
            retry_delay: Duration::from_millis(500),
            ..EngineConfig::default()
        };
        let metrics = ConsumerMetrics::register(&prometheus::Registry::new()).unwrap();
        let token = CancellationToken::new();
        let clusters: Arc<dyn Clusters> = Arc::new(SimClusters(clients));
        let handle = tokio::spawn(ferry_svc_scheduler::run_engine(
            self.db.pool.clone(),
            bus,
            clusters,
            config,
            metrics,
            token.clone(),
        ));
        self.engine = Some((token, handle));
    }

    /// Stops the engine and svc-api.
    pub(crate) async fn stop(mut self) {
        if let Some((token, handle)) = self.engine.take() {
            token.cancel();
            handle.await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(20), self.server.stop())
            .await
            .expect("svc-api stops")
            .expect("svc-api ended cleanly");
        for sim in self.sims {
            sim.shutdown().await;
        }
    }
}

/// A private HOME (and XDG_CONFIG_HOME) for one test's `ferry` runs.
pub(crate) struct Home {
    pub dir: PathBuf,
}

impl Home {
    /// A fresh, empty home.
    pub(crate) fn new() -> Home {
        let dir = std::env::temp_dir().join(ferry_testkit::unique("ferry-cli-home"));
        std::fs::create_dir_all(&dir).unwrap();
        Home { dir }
    }

    /// Where `ferry login` writes the credentials.
    pub(crate) fn credentials(&self) -> PathBuf {
        self.dir.join("config/ferry/credentials.json")
    }

    /// `ferry args` with this home and `env`, and no other `FERRY_*` variable.
    pub(crate) fn command(&self, env: &[(&str, &str)], args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
        for (key, _) in std::env::vars() {
            if key.starts_with("FERRY_") || key == "COLUMNS" {
                command.env_remove(key);
            }
        }
        command
            .env("HOME", &self.dir)
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `ferry args` to its end.
    pub(crate) async fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        self.run_with_stdin(env, args, None).await
    }

    /// Runs `ferry args` with `stdin` as its standard input.
    pub(crate) async fn run_with_stdin(
        &self,
        env: &[(&str, &str)],
        args: &[&str],
        stdin: Option<&str>,
    ) -> Run {
        let mut command = self.command(env, args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().expect("the ferry binary starts");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).await.unwrap();
            drop(pipe);
        }
        let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("ferry {args:?} did not finish within {RUN_LIMIT:?}"))
            .unwrap();
        Run::from(output)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How one `ferry` run ended.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Run {
        let run = Run {
            code: output.status.code().expect("ferry exited, not killed"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
            "ferry panicked:\n{}",
            run.stderr
        );
        run
    }
}

impl Run {
    /// Asserts exit code 0 and returns stdout.
    pub(crate) fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "ferry failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// stdout as JSON, after asserting success.
    pub(crate) fn json(self) -> serde_json::Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
    }
}

/// The repository's examples folder.
pub(crate) fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Logs `home` in to `stack` with `credential`.
pub(crate) async fn login(home: &Home, stack: &Stack, credential: &BootstrapOutcome) {
    let secret = credential.client_secret.as_deref().unwrap();
    home.run(
        &[],
        &[
            "login",
            "--api",
            &stack.api,
            "--client-id",
            &credential.client_id,
            "--client-secret",
            secret,
        ],
    )
    .await
    .ok();
}
