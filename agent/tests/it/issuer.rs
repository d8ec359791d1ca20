//! svc-api's real OAuth2 issuer in process, on the test's own database and bus prefix, with a
//! bootstrapped tenant and machine credential for the agent.

use clap::Parser;
use ferry_svc_api::identity::bootstrap::BootstrapOutcome;
use ferry_svc_api::settings::{BootstrapArgs, Cli};
use ferry_testkit::TestDb;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running svc-api.
pub(crate) struct Issuer {
    /// `http://127.0.0.1:PORT`: the issuer URL.
    pub base: String,
    settings: ferry_svc_api::Settings,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Issuer {
    /// Starts svc-api issuing tokens that live `token_ttl_secs`, and waits until it answers
    /// discovery.
    /// svc-api uses `db`, the hubs' database, so the hub knows the credentials it issues for.
    pub(crate) async fn start(token_ttl_secs: u64, db: &TestDb) -> Issuer {
        use base64::Engine;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", http.local_addr().unwrap());
        let amqp = ferry_testkit::amqp::amqp_url();
        let prefix = ferry_testkit::amqp::prefix();
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let ttl = token_ttl_secs.to_string();
        let settings = Cli::try_parse_from([
            "ferry-svc-api",
            "--database-url",
            &db.url,
            "--database-max-connections",
            "4",
            "--amqp-url",
            &amqp,
            "--bus-prefix",
            &prefix,
            "--issuer-url",
            &base,
            "--master-key",
            &key,
            "--token-ttl-secs",
            &ttl,
            "--shutdown-grace-secs",
            "5",
        ])
        .expect("svc-api settings parse")
        .settings;
        let stop = CancellationToken::new();
        let task = tokio::spawn(ferry_svc_api::run(
            settings.clone(),
            admin,
            http,
            stop.clone(),
        ));
        let discovery = format!("{base}/.well-known/openid-configuration");
        ferry_testkit::eventually(
            "svc-api serving discovery",
            Duration::from_secs(30),
            || async {
                let response = reqwest::get(&discovery).await.ok()?;
                (response.status() == 200).then_some(())
            },
        )
        .await;
        Issuer {
            base,
            settings,
            stop,
            task,
        }
    }

    /// Creates a tenant and an agent credential (with its secret).
    pub(crate) async fn credential(&self) -> BootstrapOutcome {
        let args = BootstrapArgs {
            tenant: ferry_testkit::unique("agents").replace('_', "-"),
            client_name: "cluster-agent".into(),
            roles: vec![ferry_auth::AGENT_ROLE.into()],
            json: true,
        };
        ferry_svc_api::bootstrap(&self.settings, &args)
            .await
            .expect("bootstrap a credential")
    }

    /// Stops svc-api.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
