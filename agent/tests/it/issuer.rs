//! svc-api's real OAuth2 issuer in process, on the test's own database and bus prefix, with a
//! bootstrapped tenant and machine credential for the agent.

use ferry_svc_api::identity::bootstrap::BootstrapOutcome;
use ferry_svc_api::testing::{TestConfig, TestServer};
use ferry_testkit::TestDb;

/// A running svc-api.
pub(crate) struct Issuer {
    /// `http://127.0.0.1:PORT`: the issuer URL.
    pub base: String,
    server: TestServer,
}

impl Issuer {
    /// Starts svc-api issuing tokens that live `token_ttl_secs`, and waits until it is ready.
    /// svc-api uses `db`, the hubs' database, so the hub knows the credentials it issues for.
    pub(crate) async fn start(token_ttl_secs: u64, db: &TestDb) -> Issuer {
        let config = TestConfig::new(
            &db.url,
            &ferry_testkit::amqp::amqp_url(),
            &ferry_testkit::amqp::prefix(),
        )
        .flag("--token-ttl-secs", token_ttl_secs);
        let server = TestServer::start(&config).await;
        Issuer {
            base: server.base.clone(),
            server,
        }
    }

    /// Creates a tenant and an agent credential (with its secret).
    pub(crate) async fn credential(&self) -> BootstrapOutcome {
        self.server
            .bootstrap("agents", "cluster-agent", &[ferry_auth::AGENT_ROLE])
            .await
    }

    /// Stops svc-api.
    pub(crate) async fn stop(self) {
        let _ = self.server.stop().await;
    }
}
