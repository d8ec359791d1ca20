//! The test bench: a fresh database and tenant, a bus with its own prefix, one Kubernetes API
//! simulator per account (the clusters the engine deploys to), the engine started in process,
//! and helpers that write deployments and decisions the way svc-api does.

use async_trait::async_trait;
use ferry_bus::messages::{AbortRequested, ApprovalDecided, DeploymentStarted, RollbackRequested};
use ferry_bus::{Bus, ConsumerMetrics, Envelope, SchedulerMessage, Topology, outbox};
use ferry_deploy::{Overrides, Plan, Source};
use ferry_kube_sim::{RunningSim, SimConfig};
use ferry_store::approvals::{self, Decision};
use ferry_store::deployments::{self, Created, DeploymentStatus, NewDeployment, OnBusy};
use ferry_store::targets::{self, NewTarget, Target};
use ferry_store::tenants::{self, NewTenant};
use ferry_store::{DeploymentId, Store, TenantId};
use ferry_svc_scheduler::{ClusterError, Clusters, EngineConfig, run_engine};
use ferry_testkit::{TestDb, amqp, eventually};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for a condition before failing.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello-ferry");

/// Kubernetes clients of simulators, one per account: the clusters of the tests.
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

/// Everything one test runs against.
pub(crate) struct Bench {
    pub db: TestDb,
    pub store: Store,
    pub tenant: TenantId,
    pub bus: Bus,
    /// The bus connection's name at the broker (unique to the test).
    pub bus_name: String,
    /// Kept alive for the test: dropping a simulator stops nothing, but keeps ownership clear.
    _sims: HashMap<String, RunningSim>,
    pub clients: HashMap<String, kube::Client>,
    engine: Option<(CancellationToken, JoinHandle<()>)>,
    _cleanup: amqp::Cleanup,
}

impl Bench {
    /// A bench with a simulator for each account, whose namespaces exist.
    pub(crate) async fn new(accounts: &[&str], namespaces: &[&str]) -> Bench {
        // Logs show with `RUST_LOG=ferry_svc_scheduler=debug` and `--no-capture`.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
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
        // Named after the test's prefix, so a test can drop its connection at the broker.
        let bus_name = format!("{}scheduler-test", topology.prefix());
        let bus = Bus::connect(&amqp::amqp_url(), &bus_name, topology)
            .await
            .unwrap();
        bus.declare().await.unwrap();
        let mut sims = HashMap::new();
        let mut clients = HashMap::new();
        for account in accounts {
            let mut ns: Vec<String> = vec!["default".into()];
            ns.extend(namespaces.iter().map(std::string::ToString::to_string));
            let sim = ferry_kube_sim::start(SimConfig {
                ready_delay: Duration::from_millis(200),
                namespaces: ns,
                ..SimConfig::default()
            })
            .await
            .unwrap();
            clients.insert(account.to_string(), sim.client().await.unwrap());
            sims.insert(account.to_string(), sim);
        }
        Bench {
            db,
            store,
            tenant,
            bus,
            bus_name,
            _sims: sims,
            clients,
            engine: None,
            _cleanup: cleanup,
        }
    }

    /// The simulator standing in for `account`'s cluster (for its fault switches).
    pub(crate) fn sim(&self, account: &str) -> &RunningSim {
        &self._sims[account]
    }

    /// Starts an engine instance (relay, consumer, timer loop) with fast ticks.
    pub(crate) fn start_engine(&mut self) {
        self.start_engine_with(|_| {});
    }

    /// Like [`Bench::start_engine`], with the test's changes to the configuration.
    pub(crate) fn start_engine_with(&mut self, change: impl FnOnce(&mut EngineConfig)) {
        let token = CancellationToken::new();
        let clusters: Arc<dyn Clusters> = Arc::new(SimClusters(self.clients.clone()));
        let mut config = EngineConfig {
            tick: Duration::from_millis(200),
            timer_poll: Duration::from_millis(100),
            retry_delay: Duration::from_millis(500),
            ..EngineConfig::default()
        };
        change(&mut config);
        let metrics = ConsumerMetrics::register(&prometheus::Registry::new()).unwrap();
        let handle = tokio::spawn(run_engine(
            self.db.pool.clone(),
            self.bus.clone(),
            clusters,
            config,
            metrics,
            token.clone(),
        ));
        self.engine = Some((token, handle));
    }

    /// Stops the running engine instance and waits until it drained.
    pub(crate) async fn stop_engine(&mut self) {
        if let Some((token, handle)) = self.engine.take() {
            token.cancel();
            handle.await.unwrap();
        }
    }

    /// Stores a deployment with `plan` and writes `deployment.started`, in one transaction, as
    /// svc-api does.
    pub(crate) async fn start_deployment(&self, plan: &Plan) -> DeploymentId {
        let (id, created) = self.create(plan, OnBusy::Reject).await;
        assert!(matches!(created, Created::Started(_)), "{created:?}");
        id
    }

    /// Stores a deployment as svc-api does, with `on_busy` deciding what happens when another
    /// is in flight, and writes `deployment.started` in the same transaction only when it
    /// started at once.
    pub(crate) async fn create(&self, plan: &Plan, on_busy: OnBusy) -> (DeploymentId, Created) {
        let id = DeploymentId::new();
        let new = NewDeployment {
            id,
            application: plan.application.clone(),
            created_by: "alice@example.com".into(),
            deploy_file: String::new(),
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
        let created = deployments::create(&mut tx, self.tenant, &new, on_busy)
            .await
            .unwrap();
        if let Created::Started(_) = created {
            let started = SchedulerMessage::DeploymentStarted(DeploymentStarted {
                deployment_id: id.as_uuid(),
            });
            outbox::enqueue(&mut tx, &Envelope::new(self.tenant.as_uuid(), started))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        (id, created)
    }

    /// Starts a deployment with `plan` and waits until it succeeded, failing the test otherwise.
    pub(crate) async fn deploy_succeeded(&self, plan: &Plan) {
        let id = self.start_deployment(plan).await;
        let end = self.wait_end(id).await;
        assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    }

    /// Decides the target's pending approval and writes `approval.decided`, as svc-api does.
    pub(crate) async fn decide(&self, id: DeploymentId, target: &str, approve: bool) {
        self.decide_with_message(id, target, approve, true).await;
    }

    /// Approves the target's pending approval in the database alone, without the message that
    /// would wake the deployment.
    pub(crate) async fn approve_without_message(&self, id: DeploymentId, target: &str) {
        self.decide_with_message(id, target, true, false).await;
    }

    async fn decide_with_message(
        &self,
        id: DeploymentId,
        target: &str,
        approve: bool,
        message: bool,
    ) {
        let pending = eventually("a pending approval", WAIT, || async {
            approvals::list_pending(&self.store, self.tenant, Some(id))
                .await
                .unwrap()
                .into_iter()
                .find(|a| a.target_name == target)
        })
        .await;
        let decision = if approve {
            Decision::Approve
        } else {
            Decision::Reject
        };
        let mut tx = self.store.begin().await.unwrap();
        approvals::decide(
            &mut tx,
            self.tenant,
            pending.id,
            decision,
            "rita@example.com",
        )
        .await
        .unwrap();
        if !message {
            tx.commit().await.unwrap();
            return;
        }
        let message = SchedulerMessage::ApprovalDecided(ApprovalDecided {
            deployment_id: id.as_uuid(),
            target: target.into(),
            step_index: None,
            approved: approve,
            decided_by: Some("rita@example.com".into()),
            reason: None,
        });
        outbox::enqueue(&mut tx, &Envelope::new(self.tenant.as_uuid(), message))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Requests an abort through the outbox, as svc-api does.
    pub(crate) async fn abort(&self, id: DeploymentId, reason: &str) {
        let message = SchedulerMessage::AbortRequested(AbortRequested {
            deployment_id: id.as_uuid(),
            requested_by: Some("alice@example.com".into()),
            reason: Some(reason.into()),
        });
        self.send(message).await;
    }

    /// Requests a rollback of `target` through the outbox, as svc-api does.
    pub(crate) async fn roll_back(&self, id: DeploymentId, target: &str, reason: &str) {
        let message = SchedulerMessage::RollbackRequested(RollbackRequested {
            deployment_id: id.as_uuid(),
            target: Some(target.into()),
            requested_by: Some("alice@example.com".into()),
            reason: Some(reason.into()),
        });
        self.send(message).await;
    }

    /// Writes `message` to the scheduler through the outbox, in its own transaction.
    pub(crate) async fn send(&self, message: SchedulerMessage) {
        self.send_envelope(Envelope::new(self.tenant.as_uuid(), message))
            .await;
    }

    /// Writes `envelope` to the outbox as it is (its id and time included).
    pub(crate) async fn send_envelope(&self, envelope: Envelope<SchedulerMessage>) {
        let mut tx = self.store.begin().await.unwrap();
        outbox::enqueue(&mut tx, &envelope).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// The target as stored now.
    pub(crate) async fn target(&self, id: DeploymentId, name: &str) -> Target {
        targets::get(&self.store, self.tenant, id, name)
            .await
            .unwrap()
    }

    /// Waits until `check` holds for the target, returning it.
    pub(crate) async fn wait_target(
        &self,
        id: DeploymentId,
        name: &str,
        what: &str,
        check: impl Fn(&Target) -> bool,
    ) -> Target {
        eventually(what, WAIT, || async {
            let t = self.target(id, name).await;
            check(&t).then_some(t)
        })
        .await
    }

    /// Waits until the deployment ended, returning its status. On a timeout the panic says
    /// where each target stood, with its step history and timers, so a failure explains itself.
    pub(crate) async fn wait_end(&self, id: DeploymentId) -> deployments::Deployment {
        let ended = tokio::time::timeout(
            WAIT,
            eventually("the deployment to end", WAIT * 2, || async {
                let d = deployments::get(&self.store, self.tenant, id)
                    .await
                    .unwrap();
                d.status.is_terminal().then_some(d)
            }),
        )
        .await;
        match ended {
            Ok(d) => d,
            Err(_) => panic!(
                "timed out after {WAIT:?} waiting for deployment {id} to end:\n{}",
                self.where_it_stands(id).await
            ),
        }
    }

    /// Each target's status, phase, step and reason, the step history and the pending timers.
    async fn where_it_stands(&self, id: DeploymentId) -> String {
        let mut out = String::new();
        for t in targets::list(&self.store, self.tenant, id).await.unwrap() {
            out.push_str(&format!(
                "target {}: {:?} phase {:?} step {} reason {:?}\n  observed {}\n",
                t.name, t.status, t.phase, t.step_index, t.reason, t.observed
            ));
        }
        for s in ferry_store::events::step_history(&self.store, self.tenant, id)
            .await
            .unwrap()
        {
            out.push_str(&format!(
                "  step {} {:?}: {}\n",
                s.target_name, s.step_index, s.reason
            ));
        }
        let timers: Vec<(String, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as("SELECT key, fire_at FROM timers WHERE deployment_id = $1")
                .bind(id.as_uuid())
                .fetch_all(&self.db.pool)
                .await
                .unwrap_or_default();
        out.push_str(&format!(
            "timers: {} (now {})\n",
            timers.len(),
            chrono::Utc::now()
        ));
        for (account, client) in &self.clients {
            let sets: Api<ReplicaSet> = Api::all(client.clone());
            let sets = sets.list(&ListParams::default()).await;
            for rs in sets.map(|l| l.items).unwrap_or_default() {
                out.push_str(&format!(
                    "{account} rs {}: spec {:?} status {:?}\n",
                    rs.metadata.name.unwrap_or_default(),
                    rs.spec.and_then(|s| s.replicas),
                    rs.status
                        .map(|s| (s.replicas, s.ready_replicas, s.observed_generation)),
                ));
            }
            let pods: Api<Pod> = Api::all(client.clone());
            let pods = pods.list(&ListParams::default()).await;
            for pod in pods.map(|l| l.items).unwrap_or_default() {
                out.push_str(&format!(
                    "{account} pod {} ready {} created {:?}\n",
                    pod.metadata.name.clone().unwrap_or_default(),
                    is_ready(&pod),
                    pod.metadata.creation_timestamp.map(|t| t.0),
                ));
            }
        }
        out
    }

    /// The step history reasons of a target, in order.
    pub(crate) async fn reasons(&self, id: DeploymentId, target: &str) -> Vec<String> {
        ferry_store::events::step_history(&self.store, self.tenant, id)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.target_name == target)
            .map(|s| s.reason)
            .collect()
    }

    /// The account's ReplicaSets in `namespace`: name → (spec replicas, ready replicas, image).
    pub(crate) async fn replica_sets(
        &self,
        account: &str,
        namespace: &str,
    ) -> HashMap<String, (i32, i32, String)> {
        let api: Api<ReplicaSet> = Api::namespaced(self.clients[account].clone(), namespace);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|rs| {
                let image = rs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| t.spec.as_ref())
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                (
                    rs.metadata.name.unwrap_or_default(),
                    (
                        rs.spec.and_then(|s| s.replicas).unwrap_or(0),
                        rs.status.and_then(|s| s.ready_replicas).unwrap_or(0),
                        image,
                    ),
                )
            })
            .collect()
    }

    /// Ready pods of the account in `namespace`.
    pub(crate) async fn ready_pods(&self, account: &str, namespace: &str) -> usize {
        let api: Api<Pod> = Api::namespaced(self.clients[account].clone(), namespace);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| is_ready(p))
            .count()
    }
}

/// Whether the pod reports the `Ready` condition as `True`.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The sizes (spec replicas) of ReplicaSets running `image` suffix, summed.
pub(crate) fn size_of(sets: &HashMap<String, (i32, i32, String)>, image: &str) -> i32 {
    sets.values()
        .filter(|(_, _, i)| i.ends_with(image))
        .map(|(spec, _, _)| *spec)
        .sum()
}

/// A plan from a deploy file of the hello-ferry example (text given, so a test can shorten
/// pauses), with the example's manifests at `image`.
pub(crate) fn plan(deploy_file: &str, image: &str) -> Plan {
    plan_from(
        deploy_file,
        image,
        &["manifests/app.yaml", "manifests/service.yaml"],
    )
}

/// One target, `dev` (dev-cluster, namespace hello-dev), whose deployment waits for a
/// `pause` constraint first; `pause` is the pause's body, indented for its place, e.g.
/// `"untilApproved: true"` or `"duration: 2\n            unit: seconds"`.
pub(crate) fn pause_gated(pause: &str, image: &str) -> Plan {
    let file = format!(
        "version: v1\napplication: hello-ferry\ntargets:\n  dev:\n    account: dev-cluster\n    \
         namespace: hello-dev\n    constraints:\n      beforeDeployment:\n        - pause:\n            \
         {pause}\nmanifests:\n  - path: manifests/app.yaml\n"
    );
    plan(&file, image)
}

/// Like [`plan`], with these files of the example as the manifests sent.
pub(crate) fn plan_from(deploy_file: &str, image: &str, paths: &[&str]) -> Plan {
    let read = |p: &str| std::fs::read_to_string(format!("{EXAMPLES}/{p}")).unwrap();
    let sources: Vec<Source> = paths
        .iter()
        .map(|p| Source {
            path: (*p).into(),
            content: read(p).replace("registry.example/hello-ferry:1.1.0", image),
        })
        .collect();
    ferry_deploy::check("deploy.yml", deploy_file, &sources, &Overrides::default())
        .unwrap_or_else(|d| panic!("{d:?}"))
}

/// The example's deploy-canary.yml.
pub(crate) fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{EXAMPLES}/{name}")).unwrap()
}
