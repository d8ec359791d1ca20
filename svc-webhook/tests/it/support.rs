//! The test bench: a fresh database and tenant, a bus with its own prefix, deployments stored as
//! svc-api stores them, sealed secrets, svc-webhook's worker started in process, and helpers that
//! request a webhook as the scheduler does and read what svc-webhook answered.

use chrono::Utc;
use ferry_bus::messages::{NetworkMode, WebhookCall, WebhookCompleted, WebhookRequested};
use ferry_bus::{
    Bus, ConsumerMetrics, Envelope, SchedulerMessage, Topology, WebhookMessage, outbox,
};
use ferry_netguard::Cidr;
use ferry_outbound::secrets::MasterKey;
use ferry_outbound::transport::HttpTransport;
use ferry_store::deployments::{self, Created, NewDeployment, OnBusy};
use ferry_store::targets::NewTarget;
use ferry_store::tenants::{self, NewTenant};
use ferry_store::webhooks::{self, Delivery, DeliveryStatus};
use ferry_store::{DeploymentId, Store, TenantId, secrets};
use ferry_svc_webhook::deliver::{Context, DeliveryConfig};
use ferry_svc_webhook::metrics::WebhookMetrics;
use ferry_svc_webhook::policy::Backoff;
use ferry_svc_webhook::runner::RunnerConfig;
use ferry_svc_webhook::{WorkerConfig, run_worker};
use ferry_testkit::{TestDb, amqp, eventually};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a test waits for a condition before failing.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A running worker.
pub(crate) struct Worker {
    stop: CancellationToken,
    task: JoinHandle<()>,
    pub metrics: ConsumerMetrics,
    /// Every metric of the worker, as its `/metrics` would show them.
    pub registry: prometheus::Registry,
}

impl Worker {
    /// The value of a series (name and labels exactly as the text exposition writes them).
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        use prometheus::Encoder;
        let mut body = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut body)
            .unwrap();
        String::from_utf8(body)
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Stops it and waits for it to drain.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Kills it: its tasks are dropped mid-flight, as when a replica dies.
    pub(crate) fn kill(self) {
        self.task.abort();
    }
}

/// How a test's worker behaves.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub owner: String,
    pub attempt_timeout: Duration,
    pub lease: Duration,
    pub tunnel: Option<ferry_tunnel::AgentTunnel>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            owner: "webhook-1".into(),
            attempt_timeout: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            tunnel: None,
        }
    }
}

/// Everything one test runs against.
pub(crate) struct Bench {
    pub db: TestDb,
    pub store: Store,
    pub tenant: TenantId,
    pub bus: Bus,
    pub key: MasterKey,
    pub deployment: DeploymentId,
    _cleanup: amqp::Cleanup,
}

const DEPLOY_FILE: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: hello
"#;

impl Bench {
    pub(crate) async fn new() -> Bench {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        ferry_runtime::telemetry::install_crypto();
        let db = TestDb::new().await;
        let store = Store::from_pool(db.pool.clone());
        let tenant = Bench::tenant(&store, "acme").await;
        let topology = Topology::new(amqp::prefix());
        let cleanup = amqp::Cleanup::new(topology.queue_names(), topology.exchange_names());
        let bus = Bus::connect(&amqp::amqp_url(), "webhook-test", topology)
            .await
            .unwrap();
        bus.declare().await.unwrap();
        let key = MasterKey::from_base64(&"A".repeat(43)).expect("a key");
        let deployment = Bench::deployment(&store, tenant).await;
        Bench {
            db,
            store,
            tenant,
            bus,
            key,
            deployment,
            _cleanup: cleanup,
        }
    }

    /// Creates another tenant.
    pub(crate) async fn tenant(store: &Store, slug: &str) -> TenantId {
        let mut tx = store.begin().await.unwrap();
        let tenant = tenants::create(
            &mut tx,
            &NewTenant {
                slug: slug.into(),
                name: slug.into(),
                organization_id: None,
            },
        )
        .await
        .unwrap()
        .id;
        tx.commit().await.unwrap();
        tenant
    }

    /// Stores a deployment of `tenant` (its plan is not what svc-webhook reads).
    pub(crate) async fn deployment(store: &Store, tenant: TenantId) -> DeploymentId {
        let plan = ferry_deploy::check(
            "deploy.yml",
            DEPLOY_FILE,
            &[],
            &ferry_deploy::Overrides::default(),
        )
        .unwrap_or_else(|d| panic!("{d:?}"));
        let id = DeploymentId::new();
        let new = NewDeployment {
            id,
            application: plan.application.clone(),
            created_by: "alice@example.com".into(),
            deploy_file: DEPLOY_FILE.into(),
            manifests: Vec::new(),
            plan: plan.to_stored(),
            targets: vec![NewTarget {
                name: "prod".into(),
                account: "prod-cluster".into(),
                namespace: "hello-prod".into(),
                desired: serde_json::json!({}),
            }],
        };
        let mut tx = store.begin().await.unwrap();
        let created = deployments::create(&mut tx, tenant, &new, OnBusy::EnqueueOne)
            .await
            .unwrap();
        assert!(matches!(created, Created::Started(_)), "{created:?}");
        tx.commit().await.unwrap();
        id
    }

    /// Lets the tenant's direct webhooks reach `networks`.
    pub(crate) async fn allow(&self, networks: &[&str]) {
        let networks: Vec<String> = networks
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        let mut tx = self.store.begin().await.unwrap();
        webhooks::set_allowed_networks(&mut tx, self.tenant, &networks, "test")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Stores the secret `name`, sealed as svc-api seals it.
    pub(crate) async fn secret(&self, name: &str, value: &str) {
        let (ciphertext, nonce) = self.key.seal(self.tenant, name, value.as_bytes());
        let mut tx = self.store.begin().await.unwrap();
        secrets::put(&mut tx, self.tenant, name, &ciphertext, &nonce, "master-v1")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Starts a worker.
    pub(crate) fn start_worker_with(&self, options: Options) -> Worker {
        let registry = prometheus::Registry::new();
        let transport =
            HttpTransport::new(options.tunnel.clone(), options.attempt_timeout, 64 * 1024)
                .unwrap()
                .named("svc-webhook");
        let config = DeliveryConfig {
            owner: options.owner.clone(),
            lease: options.lease,
            attempt_timeout: options.attempt_timeout,
            max_redirects: 3,
            backoff: Backoff {
                base: Duration::from_millis(50),
                max: Duration::from_millis(200),
                retry_after_max: Duration::from_secs(2),
            },
            allowed_networks: Vec::<Cidr>::new(),
        };
        let ctx = Context::new(
            self.store.clone(),
            transport,
            Arc::new(self.key.clone()),
            WebhookMetrics::register(&registry).unwrap(),
            config,
        );
        let worker = WorkerConfig {
            concurrency: 32,
            prefetch: 16,
            runner: RunnerConfig {
                poll: Duration::from_millis(50),
                batch: 16,
            },
            drain: Duration::from_secs(10),
        };
        let stop = CancellationToken::new();
        let metrics = ConsumerMetrics::register(&registry).unwrap();
        let relay_metrics = ferry_bus::RelayMetrics::register(&registry).unwrap();
        let task = tokio::spawn(run_worker(
            self.db.pool.clone(),
            self.bus.clone(),
            ctx,
            worker,
            metrics.clone(),
            relay_metrics,
            stop.clone(),
        ));
        Worker {
            stop,
            task,
            metrics,
            registry,
        }
    }

    pub(crate) fn start_worker(&self) -> Worker {
        self.start_worker_with(Options::default())
    }

    /// Requests `call` as the scheduler does (a new webhook run id each time).
    pub(crate) async fn request(&self, call: WebhookCall) -> WebhookRequested {
        let request = self.request_unsent(call);
        self.send(&request).await;
        request
    }

    /// Requests `call` with run id `id` (a callback's row id, as the scheduler does).
    pub(crate) async fn request_with_id(&self, call: WebhookCall, id: Uuid) -> WebhookRequested {
        let mut request = self.request_unsent(call);
        request.webhook_id = id;
        self.send(&request).await;
        request
    }

    /// The request the scheduler would send for `call`, not sent.
    pub(crate) fn request_unsent(&self, call: WebhookCall) -> WebhookRequested {
        WebhookRequested {
            deployment_id: self.deployment.as_uuid(),
            target: Some("prod".into()),
            step_index: Some(2),
            webhook_id: Uuid::now_v7(),
            webhook_name: "smoke".into(),
            step_key: "step:2".into(),
            account: "prod-cluster".into(),
            call,
            context: BTreeMap::new(),
            deadline: Some(Utc::now() + chrono::Duration::minutes(10)),
        }
    }

    /// Sends `request` (again) through the outbox.
    pub(crate) async fn send(&self, request: &WebhookRequested) {
        let message = WebhookMessage::WebhookRequested(request.clone());
        let mut tx = self.store.begin().await.unwrap();
        outbox::enqueue(&mut tx, &Envelope::new(self.tenant.as_uuid(), message))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Waits until the delivery is no longer pending.
    pub(crate) async fn wait_done(&self, id: Uuid) -> Delivery {
        eventually("the delivery ends", WAIT, || async {
            match webhooks::get(&self.store, self.tenant, id).await {
                Ok(d) if d.status != DeliveryStatus::Pending => Some(d),
                _ => None,
            }
        })
        .await
    }

    /// Every `webhook.completed` written for webhook run `id`.
    pub(crate) async fn completions(&self, id: Uuid) -> Vec<WebhookCompleted> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT payload FROM outbox ORDER BY seq")
            .fetch_all(&self.db.pool)
            .await
            .unwrap();
        rows.into_iter()
            .filter_map(|(p,)| Envelope::<SchedulerMessage>::from_json(&p).ok())
            .filter_map(|e| match e.payload {
                SchedulerMessage::WebhookCompleted(c) if c.webhook_id == id => Some(c),
                _ => None,
            })
            .collect()
    }
}

/// A direct POST of `body` to `uri`, `retries` retries, without callback.
pub(crate) fn post(uri: &str, body: &str, retries: u32) -> WebhookCall {
    WebhookCall {
        method: "POST".into(),
        uri: uri.into(),
        headers: vec![],
        body: Some(body.into()),
        network_mode: NetworkMode::Direct,
        agent_identifier: None,
        retry_count: retries,
        callback_uri: None,
    }
}
