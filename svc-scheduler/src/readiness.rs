//! Readiness by watch: while a target waits for pods, the replica that decided the wait watches
//! the managed ReplicaSets of that namespace (one kube-rs watcher per tenant, cluster and
//! namespace in use, shared by every deployment waiting there, resumed with backoff after the
//! agent or the watch drops) and wakes the deployment through the outbox the moment every
//! ReplicaSet it waits on has its pods ready.
//!
//! The durable readiness tick stays as the safety net: a wait whose watch is not running (the
//! replica restarted, the agent is away, [`MAX_WATCHES`] reached) is only as slow as the tick.
//! A wake-up is a hint, never a decision: the engine looks at the cluster again, so an early or
//! repeated wake-up only costs a pass.

use crate::clusters::Clusters;
use crate::metrics::SchedulerMetrics;
use crate::render::LABEL_APPLICATION;
use chrono::{DateTime, Utc};
use ferry_bus::outbox;
use ferry_store::{DeploymentId, Store, TenantId};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Namespaces one replica watches at most; waits beyond rely on the tick.
pub const MAX_WATCHES: usize = 2_000;

/// A namespace nobody waits on any more is watched this much longer (the next step of the same
/// rollouts usually waits there again).
const IDLE: Duration = Duration::from_secs(120);

/// Wake-ups written to the outbox in one transaction at most.
const WAKE_BATCH: usize = 256;

/// The watches of one scheduler replica. Cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watches = self.inner.scopes.lock().map_or(0, |s| s.len());
        f.debug_struct("Readiness")
            .field("watches", &watches)
            .finish()
    }
}

struct Inner {
    clusters: Arc<dyn Clusters>,
    scopes: Mutex<HashMap<Scope, Watched>>,
    wakes: mpsc::UnboundedSender<(TenantId, DeploymentId)>,
    metrics: Option<SchedulerMetrics>,
}

/// What one watch covers.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Scope {
    tenant: TenantId,
    account: String,
    namespace: String,
}

/// One namespace's watch and who waits on it.
struct Watched {
    /// Whether each managed ReplicaSet has every pod ready, as last seen; empty until the
    /// watch listed the namespace.
    ready: HashMap<String, bool>,
    /// The listing in progress after a (re)start of the watch, swapped in when complete.
    listing: Option<HashMap<String, bool>>,
    waiters: Vec<Waiter>,
    /// When the last waiter left.
    idle_since: Option<Instant>,
    task: tokio::task::AbortHandle,
}

struct Waiter {
    deployment: DeploymentId,
    replica_sets: Vec<String>,
    /// The wait's deadline: past it the waiter is dropped (the target rolled back by then).
    until: DateTime<Utc>,
}

/// Whether the ReplicaSet runs every pod it wants, for the generation it was last changed to.
fn all_ready(rs: &ReplicaSet) -> bool {
    let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &rs.status else {
        return desired == 0;
    };
    let current = match (rs.metadata.generation, status.observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        _ => true,
    };
    current && status.ready_replicas.unwrap_or(0) >= desired
}

impl Readiness {
    /// Watches through `clusters`; wake-ups go to the outbox of `store` until `shutdown`,
    /// counted in `metrics` when given.
    pub fn start(
        store: Store,
        clusters: Arc<dyn Clusters>,
        metrics: Option<SchedulerMetrics>,
        shutdown: CancellationToken,
    ) -> Readiness {
        let (wakes, rx) = mpsc::unbounded_channel();
        let readiness = Readiness {
            inner: Arc::new(Inner {
                clusters,
                scopes: Mutex::new(HashMap::new()),
                wakes,
                metrics,
            }),
        };
        tokio::spawn(write_wakes(store, rx, shutdown.clone()));
        // Idle watches end even when no new wait comes; all end at shutdown.
        let inner = readiness.inner.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(IDLE / 4) => inner.prune(&mut inner.lock()),
                }
            }
            let scopes = std::mem::take(&mut *inner.lock());
            for watched in scopes.into_values() {
                watched.task.abort();
            }
        });
        readiness
    }

    /// Wakes `deployment` once every ReplicaSet of `replica_sets` in `namespace` of `account`
    /// has its pods ready (at once when the watch already saw them so). The wait is forgotten
    /// after `until`, or when the deployment waits again on the same ReplicaSets.
    pub fn wake_when_ready(
        &self,
        tenant: TenantId,
        account: &str,
        namespace: &str,
        deployment: DeploymentId,
        replica_sets: Vec<String>,
        until: DateTime<Utc>,
    ) {
        if replica_sets.is_empty() {
            return;
        }
        let scope = Scope {
            tenant,
            account: account.to_string(),
            namespace: namespace.to_string(),
        };
        let mut scopes = self.inner.lock();
        self.inner.prune(&mut scopes);
        if !scopes.contains_key(&scope) {
            if scopes.len() >= MAX_WATCHES {
                tracing::debug!(%tenant, account, namespace, "watch limit reached; the tick wakes this wait");
                return;
            }
            let task = tokio::spawn(watch(
                Arc::downgrade(&self.inner),
                scope.clone(),
                self.inner.clusters.clone(),
            ));
            scopes.insert(
                scope.clone(),
                Watched {
                    ready: HashMap::new(),
                    listing: None,
                    waiters: Vec::new(),
                    idle_since: None,
                    task: task.abort_handle(),
                },
            );
            if let Some(metrics) = &self.inner.metrics {
                metrics.readiness_watching(scopes.len());
            }
        }
        let watched = scopes.get_mut(&scope).expect("inserted above");
        // `prune` dropped the expired waits; a new wait replaces the same one.
        watched
            .waiters
            .retain(|w| !(w.deployment == deployment && w.replica_sets == replica_sets));
        watched.waiters.push(Waiter {
            deployment,
            replica_sets,
            until,
        });
        watched.idle_since = None;
        self.inner.wake_ready(&scope, watched);
    }

    /// Namespaces watched now.
    pub fn watches(&self) -> usize {
        self.inner.lock().len()
    }
}

impl Inner {
    /// Ends the watches nobody waited on for [`IDLE`], and the waits past their deadline.
    fn prune(&self, scopes: &mut HashMap<Scope, Watched>) {
        let now = Instant::now();
        let today = Utc::now();
        scopes.retain(|_, w| {
            w.waiters.retain(|waiter| waiter.until > today);
            if w.waiters.is_empty() && w.idle_since.is_none() {
                w.idle_since = Some(now);
            }
            let keep = w.idle_since.is_none_or(|t| now.duration_since(t) < IDLE);
            if !keep {
                w.task.abort();
            }
            keep
        });
        if let Some(metrics) = &self.metrics {
            metrics.readiness_watching(scopes.len());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Scope, Watched>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the watch of `scope` saw.
    fn observe(&self, scope: &Scope, event: watcher::Event<ReplicaSet>) {
        let mut scopes = self.lock();
        let Some(watched) = scopes.get_mut(scope) else {
            return;
        };
        let name = |rs: &ReplicaSet| rs.metadata.name.clone().unwrap_or_default();
        match event {
            watcher::Event::Init => watched.listing = Some(HashMap::new()),
            watcher::Event::InitApply(rs) => {
                let listing = watched.listing.get_or_insert_with(HashMap::new);
                listing.insert(name(&rs), all_ready(&rs));
            }
            watcher::Event::InitDone => {
                watched.ready = watched.listing.take().unwrap_or_default();
            }
            watcher::Event::Apply(rs) => {
                watched.ready.insert(name(&rs), all_ready(&rs));
            }
            watcher::Event::Delete(rs) => {
                watched.ready.remove(&name(&rs));
            }
        }
        self.wake_ready(scope, watched);
    }

    /// Wakes (and forgets) every waiter of `scope` whose ReplicaSets are all ready.
    fn wake_ready(&self, scope: &Scope, watched: &mut Watched) {
        let ready = &watched.ready;
        watched.waiters.retain(|w| {
            let done = w
                .replica_sets
                .iter()
                .all(|rs| ready.get(rs).copied().unwrap_or(false));
            if done {
                // The writer ends only at shutdown, when nothing needs waking.
                let _ = self.wakes.send((scope.tenant, w.deployment));
                if let Some(metrics) = &self.metrics {
                    metrics.readiness_woke();
                }
            }
            !done
        });
        if watched.waiters.is_empty() && watched.idle_since.is_none() {
            watched.idle_since = Some(Instant::now());
        }
    }
}

/// Watches the managed ReplicaSets of `scope` until aborted or the [`Readiness`] is gone.
async fn watch(inner: Weak<Inner>, scope: Scope, clusters: Arc<dyn Clusters>) {
    let client = loop {
        match clusters.client(scope.tenant, &scope.account).await {
            Ok(client) => break client,
            Err(e) => {
                tracing::debug!(error = %ferry_runtime::error_chain(&e), account = %scope.account,
                    "no client for a readiness watch yet; trying again");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    let api: Api<ReplicaSet> = Api::namespaced(client, &scope.namespace);
    let config = watcher::Config::default().labels(LABEL_APPLICATION);
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match event {
            Ok(event) => inner.observe(&scope, event),
            Err(e) => tracing::debug!(
                error = %ferry_runtime::error_chain(&e),
                account = %scope.account,
                namespace = %scope.namespace,
                "a readiness watch failed; it resumes after a backoff"
            ),
        }
    }
}

/// Writes the wake-ups to the outbox, a batch per transaction, each deployment once per batch.
async fn write_wakes(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<(TenantId, DeploymentId)>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(WAKE_BATCH);
    loop {
        let got = tokio::select! {
            () = shutdown.cancelled() => return,
            got = rx.recv_many(&mut batch, WAKE_BATCH) => got,
        };
        if got == 0 {
            return;
        }
        let unique: HashSet<_> = batch.drain(..).collect();
        if let Err(e) = write(&store, &unique).await {
            // The tick wakes these deployments instead.
            tracing::warn!(error = %ferry_runtime::error_chain(&e), wakes = unique.len(),
                "writing readiness wake-ups failed");
        }
    }
}

async fn write(
    store: &Store,
    wakes: &HashSet<(TenantId, DeploymentId)>,
) -> Result<(), crate::EngineError> {
    let mut tx = store.begin().await?;
    for (tenant, deployment) in wakes {
        let wake = crate::engine::wake_up(tenant.as_uuid(), deployment.as_uuid());
        outbox::enqueue(&mut tx, &wake).await?;
    }
    tx.commit().await.map_err(ferry_store::StoreError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{ReplicaSetSpec, ReplicaSetStatus};
    use kube::api::ObjectMeta;

    fn rs(desired: i32, ready: Option<i32>, generation: (i64, Option<i64>)) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                generation: Some(generation.0),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(desired),
                ..ReplicaSetSpec::default()
            }),
            status: ready.map(|ready| ReplicaSetStatus {
                ready_replicas: Some(ready),
                observed_generation: generation.1,
                replicas: ready,
                ..ReplicaSetStatus::default()
            }),
        }
    }

    #[test]
    fn a_replica_set_is_ready_when_its_current_generation_runs_every_pod() {
        assert!(all_ready(&rs(3, Some(3), (2, Some(2)))));
        assert!(!all_ready(&rs(3, Some(2), (2, Some(2)))));
        // Scaled (generation 3) but the controller has not looked yet: the old counts do not
        // say anything about the new size.
        assert!(!all_ready(&rs(3, Some(3), (3, Some(2)))));
        assert!(!all_ready(&rs(1, None, (1, None))));
        assert!(all_ready(&rs(0, None, (1, None))));
        // No generations reported (an older API server): the counts decide.
        assert!(all_ready(&rs(2, Some(2), (1, None))));
    }
}
