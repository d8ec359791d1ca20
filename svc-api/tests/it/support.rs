//! Starting svc-api in process on 127.0.0.1:0 against the test's own database and bus prefix,
//! and small HTTP helpers.

use base64::Engine;
use ferry_svc_api::settings::BootstrapArgs;
use ferry_svc_api::testing::{TestConfig, TestServer};
use ferry_svc_api::{Settings, identity::bootstrap::BootstrapOutcome};
use ferry_testkit::TestDb;
use ferry_testkit::amqp::Cleanup;
use openidconnect::reqwest;
use std::time::Duration;

/// The master key every test instance uses (tests only).
pub(crate) fn master_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}

/// Knobs a test may turn.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub rotation_secs: u64,
    pub token_ttl_secs: u64,
    /// The issuer URL; by default the server's own address.
    pub issuer: Option<&'static str>,
    /// Requests per tenant in a burst (token bucket size).
    pub rate_limit_burst: u32,
    /// Largest accepted body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rotation_secs: 30 * 24 * 3600,
            token_ttl_secs: 3600,
            issuer: None,
            rate_limit_burst: 10_000,
            max_body_bytes: 10 * 1024 * 1024,
        }
    }
}

/// A running svc-api (the shared harness, [`TestServer`]) with an HTTP client.
pub(crate) struct TestApp {
    server: TestServer,
    pub http: reqwest::Client,
    /// Deletes the test's queues and exchanges when the app is dropped.
    _bus_cleanup: Cleanup,
}

impl std::ops::Deref for TestApp {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

/// The harness's configuration for a service on `db` publishing under `bus_prefix`.
fn config(db: &TestDb, bus_prefix: &str, options: Options, extra: &[String]) -> TestConfig {
    let mut config = TestConfig::new(&db.url, &ferry_testkit::amqp::amqp_url(), bus_prefix)
        .flag("--key-rotation-secs", options.rotation_secs)
        .flag("--token-ttl-secs", options.token_ttl_secs)
        .flag("--shutdown-grace-secs", 10)
        .flag("--rate-limit-burst", options.rate_limit_burst)
        .flag("--rate-limit-per-sec", 1)
        .flag("--max-body-bytes", options.max_body_bytes)
        .flags(extra);
    config.master_key = [42; 32];
    config.issuer = options.issuer.map(str::to_string);
    config
}

/// Settings for a service on `db` whose issuer is `issuer`.
pub(crate) fn settings(db: &TestDb, issuer: &str, bus_prefix: &str, options: Options) -> Settings {
    config(db, bus_prefix, options, &[]).settings(issuer)
}

/// An HTTP client that follows no redirects (as OIDC libraries require).
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build HTTP client")
}

impl TestApp {
    /// Starts svc-api on `db` with its own bus prefix and waits until `/readyz` answers 200.
    pub(crate) async fn start(db: &TestDb, options: Options) -> TestApp {
        TestApp::start_with(db, options, &[]).await
    }

    /// [`TestApp::start`] with more flags.
    pub(crate) async fn start_with(db: &TestDb, options: Options, extra: &[String]) -> TestApp {
        let prefix = ferry_testkit::amqp::prefix();
        let topology = ferry_bus::Topology::new(prefix.clone());
        let bus_cleanup = Cleanup::new(topology.queue_names(), topology.exchange_names());
        let server = TestServer::start(&config(db, &prefix, options, extra)).await;
        TestApp {
            server,
            http: http_client(),
            _bus_cleanup: bus_cleanup,
        }
    }

    /// Creates a tenant (unique slug) and a credential with `roles`, returning the outcome
    /// with its secret.
    pub(crate) async fn credential(&self, roles: &[&str]) -> BootstrapOutcome {
        self.server.bootstrap("t", "test-client", roles).await
    }

    /// `POST /oauth/token` with `form`, authenticating with HTTP Basic when `basic` is given.
    pub(crate) async fn token_request(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
        let mut request = self.http.post(format!("{}/oauth/token", self.base));
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        read(request.form(form).send().await.expect("token request")).await
    }

    /// A token for `outcome`'s credential and `audience`, via client_secret_basic.
    pub(crate) async fn token(&self, outcome: &BootstrapOutcome, audience: &str) -> String {
        let secret = outcome.client_secret.as_deref().expect("a fresh secret");
        let (status, body, _) = self
            .token_request(
                Some((&outcome.client_id, secret)),
                &[("grant_type", "client_credentials"), ("audience", audience)],
            )
            .await;
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// `GET path` with an optional bearer token: status and JSON body.
    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let (status, body, _) = self.send(reqwest::Method::GET, path, token, None).await;
        (status, body)
    }

    /// `method path` with an optional token and JSON body: status, headers and JSON body (a
    /// string when the body is not JSON).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).unwrap());
        }
        read(request.send().await.expect("request")).await
    }

    /// `method path` as a person: bearer `token` of the external issuer, `X-Ferry-Tenant:
    /// tenant` when given, and an optional JSON body. Status and JSON body.
    pub(crate) async fn person(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        tenant: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(tenant) = tenant {
            request = request.header("x-ferry-tenant", tenant);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).unwrap());
        }
        let (status, body, _) = read(request.send().await.expect("request")).await;
        (status, body)
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let (status, body, _) = self
            .send(reqwest::Method::POST, path, Some(token), Some(body))
            .await;
        (status, body)
    }

    /// `PUT path` with a JSON body.
    pub(crate) async fn put(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let (status, body, _) = self
            .send(reqwest::Method::PUT, path, Some(token), Some(body))
            .await;
        (status, body)
    }

    /// `DELETE path` without a body.
    pub(crate) async fn delete(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let (status, body, _) = self
            .send(reqwest::Method::DELETE, path, Some(token), None)
            .await;
        (status, body)
    }

    /// A new tenant with a credential holding `roles`, and an API token for it.
    pub(crate) async fn tenant_token(&self, roles: &[&str]) -> (BootstrapOutcome, String) {
        let credential = self.credential(roles).await;
        let token = self.token(&credential, "ferry-api").await;
        (credential, token)
    }

    /// Another credential in `tenant`'s tenant holding `roles`, and its API token.
    pub(crate) async fn same_tenant_token(
        &self,
        tenant: &BootstrapOutcome,
        roles: &[&str],
    ) -> String {
        let outcome = self.same_tenant_credential(tenant, roles).await;
        self.token(&outcome, "ferry-api").await
    }

    /// Another credential in `tenant`'s tenant holding `roles`.
    pub(crate) async fn same_tenant_credential(
        &self,
        tenant: &BootstrapOutcome,
        roles: &[&str],
    ) -> BootstrapOutcome {
        let args = BootstrapArgs {
            tenant: tenant.tenant.clone(),
            client_name: ferry_testkit::unique("c"),
            roles: roles.iter().map(std::string::ToString::to_string).collect(),
            json: true,
        };
        ferry_svc_api::bootstrap(&self.settings, &args)
            .await
            .expect("bootstrap a second credential")
    }

    /// Stops the service and returns how `run` ended.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        tokio::time::timeout(Duration::from_secs(20), self.server.stop())
            .await
            .expect("svc-api stops within its grace period")
    }
}

/// The `kid` in a token's header.
pub(crate) fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT")
        .kid
        .expect("a kid")
}

/// The key ids of a JWK set document.
pub(crate) fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("a keys array")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid on every key").to_string())
        .collect()
}

/// The repository's examples folder.
pub(crate) fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A start request for the example deploy file `relative` (under examples/) with every
/// manifest of hello-ferry, as the CLI sends it (paths relative to the deploy file).
pub(crate) fn start_request(relative: &str) -> serde_json::Value {
    let path = examples().join(relative);
    let content = std::fs::read_to_string(&path).expect("read the example deploy file");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let manifests: Vec<serde_json::Value> = ["app.yaml", "service.yaml"]
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(examples().join("hello-ferry/manifests").join(file))
                .expect("read a manifest");
            serde_json::json!({ "path": format!("manifests/{file}"), "content": text })
        })
        .collect();
    serde_json::json!({
        "deployFile": { "name": name, "content": content },
        "manifests": manifests,
    })
}

/// The hello-ferry canary example with `extra` appended under `deploymentConfig`, as another
/// application.
pub(crate) fn canary_request(application: &str, in_progress: &str) -> serde_json::Value {
    let mut request = start_request("hello-ferry/deploy-canary.yml");
    let content = request["deployFile"]["content"].as_str().unwrap().replace(
        "deploymentConfig:\n",
        &format!("deploymentConfig:\n  ifDeploymentInProgress:\n    strategy: {in_progress}\n"),
    );
    assert!(content.contains(in_progress));
    request["deployFile"]["content"] = content.into();
    request["overrides"] = serde_json::json!({ "application": application });
    request
}

/// Rows of `table` (a fixed name from the test) in the test database.
pub(crate) async fn count(db: &TestDb, table: &str) -> i64 {
    // `table` is a fixed name from the test itself, never input.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&db.pool)
        .await
        .expect("count rows")
}

/// Outbox rows of message kind `kind` for `tenant`.
pub(crate) async fn outbox_count(db: &TestDb, tenant: uuid::Uuid, kind: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND headers->>'x-ferry-kind' = $2",
    )
    .bind(tenant)
    .bind(kind)
    .fetch_one(&db.pool)
    .await
    .expect("count outbox rows")
}

/// The status, JSON body (a string when the body is not JSON) and headers of `response`.
async fn read(response: reqwest::Response) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body, headers)
}
