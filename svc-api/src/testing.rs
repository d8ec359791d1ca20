//! svc-api in process for other crates' tests (feature `testing`): [`TestServer::start`] binds
//! the public and admin servers on 127.0.0.1:0, runs the real service against the test's
//! database and bus prefix with settings parsed exactly as the binary parses its flags, and
//! waits until `/readyz` answers; [`TestServer::bootstrap`] creates a tenant and a credential.
//! One harness for svc-api's own, the CLI's and the agent's tests.

use crate::Settings;
use crate::identity::bootstrap::BootstrapOutcome;
use crate::settings::{BootstrapArgs, Cli};
use base64::Engine;
use clap::Parser;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How a test server is configured: the flags every test needs, then the test's own.
#[derive(Clone, Debug)]
pub struct TestConfig {
    /// The test's database.
    pub database_url: String,
    /// The AMQP URL.
    pub amqp_url: String,
    /// The test's own prefix for queues and exchanges.
    pub bus_prefix: String,
    /// The issuer URL tokens carry; the server's own address when `None`.
    pub issuer: Option<String>,
    /// The master key sealing secrets (32 bytes; tests only).
    pub master_key: [u8; 32],
    /// More flags, as on the command line (`["--token-ttl-secs", "60"]`); a flag given here
    /// overrides the same flag among the defaults.
    pub flags: Vec<String>,
}

impl TestConfig {
    /// Defaults for a server on `database_url` publishing under `bus_prefix`.
    pub fn new(database_url: &str, amqp_url: &str, bus_prefix: &str) -> TestConfig {
        TestConfig {
            database_url: database_url.to_string(),
            amqp_url: amqp_url.to_string(),
            bus_prefix: bus_prefix.to_string(),
            issuer: None,
            master_key: [7; 32],
            flags: Vec::new(),
        }
    }

    /// Adds `flag` with `value`.
    pub fn flag(mut self, flag: &str, value: impl ToString) -> TestConfig {
        self.flags.push(flag.to_string());
        self.flags.push(value.to_string());
        self
    }

    /// Adds flags as they would appear on the command line.
    pub fn flags<S: AsRef<str>>(mut self, flags: &[S]) -> TestConfig {
        self.flags
            .extend(flags.iter().map(|f| f.as_ref().to_string()));
        self
    }

    /// The settings for a server whose own address is `base`, parsed as the binary does.
    pub fn settings(&self, base: &str) -> Settings {
        let key = base64::engine::general_purpose::STANDARD.encode(self.master_key);
        let issuer = self.issuer.clone().unwrap_or_else(|| base.to_string());
        let defaults = [
            ("--database-url", self.database_url.as_str()),
            ("--database-max-connections", "4"),
            ("--amqp-url", self.amqp_url.as_str()),
            ("--bus-prefix", self.bus_prefix.as_str()),
            ("--issuer-url", issuer.as_str()),
            ("--master-key", key.as_str()),
            ("--shutdown-grace-secs", "5"),
            ("--rate-limit-burst", "10000"),
            ("--events-poll-ms", "50"),
        ];
        let mut args = vec!["ferry-svc-api".to_string()];
        for (flag, value) in defaults {
            if !self.flags.iter().any(|f| f == flag) {
                args.push(flag.to_string());
                args.push(value.to_string());
            }
        }
        args.extend(self.flags.iter().cloned());
        Cli::try_parse_from(args)
            .expect("valid test settings")
            .settings
    }
}

/// A running svc-api; stopped when dropped (or with [`TestServer::stop`]).
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:<port>`: the public server.
    pub base: String,
    /// `http://127.0.0.1:<port>`: the admin server (health, metrics).
    pub admin: String,
    /// The settings it runs with.
    pub settings: Settings,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts svc-api with `config` and waits (up to 30 s) until `/readyz` answers 200.
    pub async fn start(config: &TestConfig) -> TestServer {
        ferry_runtime::telemetry::install_crypto();
        let public = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", public.local_addr().expect("address"));
        let admin = format!("http://{}", admin_listener.local_addr().expect("address"));
        let settings = config.settings(&base);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(crate::run(
            settings.clone(),
            admin_listener,
            public,
            shutdown.clone(),
        ));
        let readyz = format!("{admin}/readyz");
        let http = reqwest::Client::new();
        ferry_testkit::eventually("svc-api ready", Duration::from_secs(30), || {
            let request = http.get(&readyz).send();
            async move { (request.await.ok()?.status() == 200).then_some(()) }
        })
        .await;
        TestServer {
            base,
            admin,
            settings,
            shutdown,
            task: Some(task),
        }
    }

    /// A new tenant (a unique slug starting with `tenant_prefix`) and a credential in it named
    /// `client_name` holding `roles`, with its secret.
    pub async fn bootstrap(
        &self,
        tenant_prefix: &str,
        client_name: &str,
        roles: &[&str],
    ) -> BootstrapOutcome {
        let args = BootstrapArgs {
            tenant: ferry_testkit::unique(tenant_prefix).replace('_', "-"),
            client_name: client_name.to_string(),
            roles: roles.iter().map(|r| (*r).to_string()).collect(),
            json: true,
        };
        crate::bootstrap(&self.settings, &args)
            .await
            .expect("bootstrap a tenant and credential")
    }

    /// Stops the server and waits for it to finish; its result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.expect("svc-api task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
