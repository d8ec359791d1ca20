//! The test bench: a fresh database and tenant, a bus with its own prefix, deployments stored
//! as svc-api stores them, metric providers and sealed secrets, the worker started in process,
//! and helpers that request an analysis as the scheduler does and wait for its end.

use ferry_bus::messages::{AnalysisCompleted, AnalysisRequested};
use ferry_bus::{
    Bus, CanaryMessage, ConsumerMetrics, Envelope, SchedulerMessage, Topology, outbox,
};
use ferry_deploy::{Overrides, Plan, Source};
use ferry_store::analysis::{self, Analysis, AnalysisRun, AnalysisStatus};
use ferry_store::deployments::{self, Created, NewDeployment, OnBusy};
use ferry_store::metric_providers::{self, ProviderKind, ProviderSettings};
use ferry_store::targets::NewTarget;
use ferry_store::tenants::{self, NewTenant};
use ferry_store::{DeploymentId, Store, TenantId, secrets};
use ferry_svc_canary::providers::Fetcher;
use ferry_svc_canary::providers::transport::{HttpTransport, Transport};
use ferry_svc_canary::run::RunContext;
use ferry_svc_canary::runner::RunnerConfig;
use ferry_svc_canary::secrets::MasterKey;
use ferry_testkit::{TestDb, amqp, eventually};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a test waits for a condition before failing.
pub(crate) const WAIT: Duration = Duration::from_secs(90);

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello-ferry");

/// A running worker.
pub(crate) struct Worker {
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// The worker's metrics (canary, consumer, relay), as its `/metrics` would show them.
    pub registry: prometheus::Registry,
}

impl Worker {
    /// The text exposition of the worker's metrics, as Prometheus scrapes it.
    pub(crate) fn scrape(&self) -> String {
        use prometheus::Encoder;
        let mut body = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut body)
            .unwrap();
        String::from_utf8(body).unwrap()
    }
}

impl Worker {
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

/// Everything one test runs against.
pub(crate) struct Bench {
    pub db: TestDb,
    pub store: Store,
    pub tenant: TenantId,
    pub bus: Bus,
    pub key: MasterKey,
    _cleanup: amqp::Cleanup,
}

impl Bench {
    pub(crate) async fn new() -> Bench {
        let _ = tracing_subscriber_init();
        ferry_runtime::telemetry::install_crypto();
        let db = TestDb::new().await;
        let store = Store::from_pool(db.pool.clone());
        let mut tx = store.begin().await.unwrap();
        let tenant = tenants::create(
            &mut tx,
            &NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
                organization_id: None,
            },
        )
        .await
        .unwrap()
        .id;
        tx.commit().await.unwrap();
        let topology = Topology::new(amqp::prefix());
        let cleanup = amqp::Cleanup::new(topology.queue_names(), topology.exchange_names());
        let bus = Bus::connect(&amqp::amqp_url(), "canary-test", topology)
            .await
            .unwrap();
        bus.declare().await.unwrap();
        let key = MasterKey::from_base64(&"A".repeat(43)).expect("32 zero-ish bytes");
        Bench {
            db,
            store,
            tenant,
            bus,
            key,
            _cleanup: cleanup,
        }
    }

    /// Starts a worker (relay, consumer, run loop) sending through `transport`.
    pub(crate) fn start_worker_with(
        &self,
        owner: &str,
        transport: Arc<dyn Transport>,
        lease: Duration,
    ) -> Worker {
        let registry = prometheus::Registry::new();
        let ctx = RunContext {
            store: self.store.clone(),
            fetcher: Fetcher::new(transport, 3, Duration::from_millis(50)),
            key: Arc::new(self.key.clone()),
            metrics: ferry_svc_canary::metrics::CanaryMetrics::register(&registry).unwrap(),
        };
        let config = RunnerConfig {
            owner: owner.to_string(),
            lease,
            poll: Duration::from_millis(100),
            batch: 8,
        };
        let stop = CancellationToken::new();
        let metrics = ConsumerMetrics::register(&registry).unwrap();
        let relay_metrics = ferry_bus::RelayMetrics::register(&registry).unwrap();
        let task = tokio::spawn(ferry_svc_canary::run_worker(
            self.db.pool.clone(),
            self.bus.clone(),
            ctx,
            config,
            metrics,
            relay_metrics,
            stop.clone(),
        ));
        Worker {
            stop,
            task,
            registry,
        }
    }

    /// Starts a worker with the real HTTP transport.
    pub(crate) fn start_worker(&self) -> Worker {
        let transport =
            HttpTransport::new(None, Duration::from_secs(5), 1024 * 1024).expect("a transport");
        self.start_worker_with("worker-1", Arc::new(transport), Duration::from_secs(30))
    }

    /// Stores a deployment of `deploy_file` (with the example's manifests) as svc-api does.
    pub(crate) async fn deployment(&self, deploy_file: &str) -> DeploymentId {
        let read = |p: &str| std::fs::read_to_string(format!("{EXAMPLES}/{p}")).unwrap();
        let sources = vec![Source {
            path: "manifests/app.yaml".into(),
            content: read("manifests/app.yaml"),
        }];
        let plan: Plan =
            ferry_deploy::check("deploy.yml", deploy_file, &sources, &Overrides::default())
                .unwrap_or_else(|d| panic!("{d:?}"));
        let id = DeploymentId::new();
        let new = NewDeployment {
            id,
            application: plan.application.clone(),
            created_by: "alice@example.com".into(),
            deploy_file: deploy_file.into(),
            manifests: Vec::new(),
            plan: plan.to_stored(),
            targets: plan
                .targets
                .iter()
                .map(|t| NewTarget {
                    name: t.name.clone(),
                    account: t.account.clone(),
                    namespace: t.namespace.clone().unwrap_or_default(),
                    desired: serde_json::json!({}),
                })
                .collect(),
        };
        let mut tx = self.store.begin().await.unwrap();
        let created = deployments::create(&mut tx, self.tenant, &new, OnBusy::EnqueueOne)
            .await
            .unwrap();
        assert!(
            matches!(created, Created::Started(_) | Created::Queued { .. }),
            "{created:?}"
        );
        tx.commit().await.unwrap();
        id
    }

    /// Configures the metric provider `name`.
    pub(crate) async fn provider(
        &self,
        name: &str,
        kind: ProviderKind,
        base_url: &str,
        refs: &[(&str, &str)],
    ) {
        let mut tx = self.store.begin().await.unwrap();
        metric_providers::put(
            &mut tx,
            self.tenant,
            &ProviderSettings {
                name: name.into(),
                kind,
                base_url: base_url.into(),
                secret_refs: refs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                agent: None,
            },
        )
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

    /// Requests the analysis of step `step:1` of target `prod`, as the scheduler does.
    pub(crate) async fn request(
        &self,
        deployment: DeploymentId,
        variables: &[(&str, &str)],
    ) -> AnalysisRequested {
        self.request_step(deployment, "step:1", variables).await
    }

    /// Requests the analysis of `step_key` of target `prod`.
    pub(crate) async fn request_step(
        &self,
        deployment: DeploymentId,
        step_key: &str,
        variables: &[(&str, &str)],
    ) -> AnalysisRequested {
        let mut vars: BTreeMap<String, String> = variables
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.entry("applicationName".into())
            .or_insert_with(|| "hello-ferry".into());
        vars.entry("environmentName".into())
            .or_insert_with(|| "prod".into());
        let request = AnalysisRequested {
            deployment_id: deployment.as_uuid(),
            target: "prod".into(),
            step_index: step_key
                .split_once(':')
                .and_then(|(_, i)| i.parse().ok())
                .unwrap_or(0),
            analysis_id: Uuid::now_v7(),
            step_key: step_key.into(),
            account: "prod-cluster".into(),
            variables: vars,
            context: BTreeMap::from([("owner".to_string(), "team-greetings".to_string())]),
        };
        self.send(&request).await;
        request
    }

    /// Sends `request` (again) through the outbox.
    pub(crate) async fn send(&self, request: &AnalysisRequested) {
        let message = CanaryMessage::AnalysisRequested(request.clone());
        let mut tx = self.store.begin().await.unwrap();
        outbox::enqueue(&mut tx, &Envelope::new(self.tenant.as_uuid(), message))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Waits until the analysis ended.
    pub(crate) async fn wait_done(&self, id: Uuid) -> Analysis {
        eventually("the analysis ends", WAIT, || async {
            match analysis::get(&self.store, self.tenant, id).await {
                Ok(a) if a.status != AnalysisStatus::Running => Some(a),
                _ => None,
            }
        })
        .await
    }

    /// The analysis's finished runs.
    pub(crate) async fn runs(&self, id: Uuid) -> Vec<AnalysisRun> {
        analysis::runs(&self.store, self.tenant, id).await.unwrap()
    }

    /// Every `analysis.completed` written for analysis `id`.
    pub(crate) async fn completions(&self, id: Uuid) -> Vec<AnalysisCompleted> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT payload FROM outbox ORDER BY seq")
            .fetch_all(&self.db.pool)
            .await
            .unwrap();
        rows.into_iter()
            .filter_map(|(p,)| Envelope::<SchedulerMessage>::from_json(&p).ok())
            .filter_map(|e| match e.payload {
                SchedulerMessage::AnalysisCompleted(c) if c.analysis_id == id => Some(c),
                _ => None,
            })
            .collect()
    }
}

fn tracing_subscriber_init() -> Result<(), ()> {
    // Logs show with `RUST_LOG=ferry_svc_canary=debug` and `--no-capture`.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init()
        .map_err(|_| ())
}

/// A deploy file whose target `prod` runs `steps` of canary, with `queries` defined and the
/// default provider `provider`.
pub(crate) fn deploy_file(analysis_step: &str, queries: &str, provider: &str) -> String {
    format!(
        r#"
version: v1
application: hello-ferry
context:
  owner: team-greetings
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: judged
manifests:
  - path: manifests/app.yaml
strategies:
  judged:
    canary:
      steps:
        - setWeight: 25
        - analysis:
{analysis_step}
        - setWeight: 100
analysis:
  defaultMetricProviderName: {provider}
  queries:
{queries}
"#
    )
}
