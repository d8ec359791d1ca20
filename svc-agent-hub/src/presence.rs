//! The agents table in Postgres (`ferry_store::agents`), which `GET /v1/agents` and
//! `ferry agents ls` read. Redis stays the source of truth for routing; this record is for
//! people and the API.
//!
//! Each accepted stream gets a [`Record`] with its own writer task, which writes in order: the
//! connect (starting a Postgres session), heartbeats at most once per record interval
//! (`FERRY_HUB_HEARTBEAT_RECORD_INTERVAL_MS`), and the disconnect once the record is dropped.
//! The stream's reader only drops a signal into a one-slot channel, so a slow or absent Postgres
//! never delays heartbeats or relayed requests: failed writes are logged, a failed connect is
//! tried again on a later heartbeat, and a stale session (the agent reconnected elsewhere) stops
//! this stream's writes.
//!
//! A replica killed outright writes no disconnect: its rows keep `hub_replica` set while
//! `last_heartbeat_at` stops moving. A reader should take a row whose last heartbeat is older
//! than twice the record interval as disconnected.

use ferry_proto::agent::Hello;
use ferry_runtime::error_chain;
use ferry_store::ids::TenantId;
use ferry_store::{Store, StoreError, agents};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// How long one write (pool wait included) may take before it is given up and logged.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes in flight at once per replica (a few per pooled connection). Writers beyond it wait
/// for a permit holding nothing but that small wait, so 10,000 agents connecting at once do not
/// hold 10,000 database futures in memory.
const WRITES_IN_FLIGHT: usize = 32;

/// Records this replica's agent connections in Postgres.
pub struct Presence {
    store: Store,
    replica: String,
    interval: Duration,
    tasks: TaskTracker,
    writes: Arc<Semaphore>,
}

impl Presence {
    /// Records into `store` as `replica`, heartbeats at most every `interval` per agent. Writer
    /// tasks run on `tasks`, so a draining replica waits for its disconnects.
    pub fn new(store: Store, replica: &str, interval: Duration, tasks: TaskTracker) -> Presence {
        Presence {
            store,
            replica: replica.to_string(),
            interval,
            tasks,
            writes: Arc::new(Semaphore::new(WRITES_IN_FLIGHT)),
        }
    }

    /// Starts recording an accepted stream of `tenant`'s agent that said `hello`. Never waits.
    pub fn record(&self, tenant: Uuid, hello: &Hello) -> Record {
        let (beats, rx) = mpsc::channel(1);
        let writer = Writer {
            store: self.store.clone(),
            tenant: TenantId::from(tenant),
            connect: agents::Connect {
                identifier: hello.agent_id.clone(),
                agent_version: hello.agent_version.clone(),
                kubernetes_version: hello.kubernetes_version.clone(),
                hub_replica: self.replica.clone(),
            },
            interval: self.interval,
            writes: self.writes.clone(),
        };
        self.tasks.spawn(writer.run(rx));
        Record { beats }
    }
}

/// One stream's record. Dropping it records the disconnect (whatever ended the stream).
pub struct Record {
    beats: mpsc::Sender<()>,
}

impl Record {
    /// Notes a heartbeat whose lease refresh succeeded. Never waits: when the writer is still
    /// busy with an earlier write, this beat is skipped.
    pub fn beat(&self) {
        let _ = self.beats.try_send(());
    }
}

/// Where the writer stands with the agent's row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Session {
    /// Not recorded yet (the connect failed); tried again on a later heartbeat.
    Unrecorded,
    /// Recorded under this Postgres session.
    Current(i64),
    /// A newer connection owns the row; this stream writes nothing more.
    Superseded,
}

/// The writer task of one stream.
struct Writer {
    store: Store,
    tenant: TenantId,
    connect: agents::Connect,
    interval: Duration,
    writes: Arc<Semaphore>,
}

impl Writer {
    async fn run(self, mut beats: mpsc::Receiver<()>) {
        // The writes' futures are boxed: this task spends its life waiting for a beat, and an
        // inline database future would make every stream's resting task as large as a query.
        let mut session = self.limited(|| self.connect()).await;
        let mut last_write = Instant::now();
        // The channel closes when the stream's `Record` is dropped.
        while beats.recv().await.is_some() {
            if last_write.elapsed() < self.interval {
                continue;
            }
            last_write = Instant::now();
            session = match session {
                Session::Unrecorded => self.limited(|| self.connect()).await,
                Session::Current(number) => self.limited(|| self.heartbeat(number)).await,
                Session::Superseded => Session::Superseded,
            };
        }
        if let Session::Current(number) = session {
            self.limited(|| self.disconnect(number)).await;
        }
    }

    /// Starts `write` once a write permit is free; its (large) future exists, on the heap, only
    /// while it runs.
    async fn limited<'a, T, F>(&'a self, write: impl FnOnce() -> F) -> T
    where
        F: std::future::Future<Output = T> + 'a,
    {
        // The semaphore is never closed.
        let _permit = self.writes.acquire().await.ok();
        Box::pin(write()).await
    }

    async fn connect(&self) -> Session {
        let store = &self.store;
        let written = timed(async {
            let mut conn = store.pool().acquire().await?;
            agents::connect(&mut conn, self.tenant, &self.connect).await
        })
        .await;
        match written {
            Ok(agent) => Session::Current(agent.session),
            Err(e) => {
                tracing::warn!(
                    tenant = %self.tenant,
                    agent = %self.connect.identifier,
                    error = %error_chain(&e),
                    "recording an agent connection in Postgres (tried again on a later heartbeat)"
                );
                Session::Unrecorded
            }
        }
    }

    async fn heartbeat(&self, number: i64) -> Session {
        let store = &self.store;
        let identifier = &self.connect.identifier;
        let written = timed(async {
            let mut conn = store.pool().acquire().await?;
            agents::heartbeat(&mut conn, self.tenant, identifier, number).await
        })
        .await;
        match written {
            Ok(()) => Session::Current(number),
            Err(WriteError::Store(e)) if e.is_conflict() || e.is_not_found() => {
                tracing::info!(
                    tenant = %self.tenant,
                    agent = %identifier,
                    session = number,
                    error = %error_chain(&e),
                    "agent record belongs to a newer connection; no more heartbeats recorded"
                );
                Session::Superseded
            }
            Err(e) => {
                tracing::warn!(
                    tenant = %self.tenant,
                    agent = %identifier,
                    session = number,
                    error = %error_chain(&e),
                    "recording an agent heartbeat in Postgres"
                );
                Session::Current(number)
            }
        }
    }

    async fn disconnect(&self, number: i64) {
        let store = &self.store;
        let identifier = &self.connect.identifier;
        let written = timed(async {
            let mut conn = store.pool().acquire().await?;
            agents::disconnect(&mut conn, self.tenant, identifier, number).await
        })
        .await;
        match written {
            Ok(()) => {}
            // The agent already connected again (here or to another replica): its row is theirs.
            Err(WriteError::Store(e)) if e.is_conflict() => tracing::debug!(
                tenant = %self.tenant,
                agent = %identifier,
                session = number,
                "agent record belongs to a newer connection; disconnect not recorded"
            ),
            Err(e) => tracing::warn!(
                tenant = %self.tenant,
                agent = %identifier,
                session = number,
                error = %error_chain(&e),
                "recording an agent disconnect in Postgres"
            ),
        }
    }
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// The store refused or failed the write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The write took longer than [`WRITE_TIMEOUT`].
    #[error("Postgres did not answer within {WRITE_TIMEOUT:?}")]
    TimedOut,
}

/// Runs one write with [`WRITE_TIMEOUT`].
async fn timed<T>(write: impl Future<Output = Result<T, StoreError>>) -> Result<T, WriteError> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(result) => result.map_err(WriteError::from),
        Err(_) => Err(WriteError::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_store::tenants;

    async fn tenant(store: &Store) -> Uuid {
        let mut conn = store.pool().acquire().await.unwrap();
        let new = tenants::NewTenant {
            slug: "presence-unit".into(),
            name: "presence unit".into(),
            organization_id: None,
        };
        tenants::create(&mut conn, &new).await.unwrap().id.as_uuid()
    }

    fn hello(agent: &str) -> Hello {
        Hello {
            agent_id: agent.into(),
            agent_version: "1.2.3".into(),
            kubernetes_version: "v1.33.1".into(),
            ..Hello::default()
        }
    }

    /// The agent's row once `check` holds.
    async fn row_where(
        store: &Store,
        tenant: Uuid,
        what: &str,
        check: impl Fn(&agents::Agent) -> bool,
    ) -> agents::Agent {
        ferry_testkit::eventually(what, Duration::from_secs(10), || {
            let store = store.clone();
            let check = &check;
            async move {
                agents::get(&store, TenantId::from(tenant), "edge")
                    .await
                    .ok()
                    .filter(check)
            }
        })
        .await
    }

    #[tokio::test]
    async fn heartbeats_within_the_interval_are_not_written() {
        let db = ferry_testkit::TestDb::new().await;
        let store = Store::from_pool(db.pool.clone());
        let tenant = tenant(&store).await;
        let tasks = TaskTracker::new();
        let presence = Presence::new(
            store.clone(),
            "r1",
            Duration::from_secs(3600),
            tasks.clone(),
        );

        let record = presence.record(tenant, &hello("edge"));
        let connected = row_where(
            &store,
            tenant,
            "the connect",
            ferry_store::agents::Agent::is_connected,
        )
        .await;
        assert_eq!(connected.hub_replica.as_deref(), Some("r1"));
        assert_eq!(connected.agent_version, "1.2.3");
        assert_eq!(connected.kubernetes_version, "v1.33.1");
        for _ in 0..5 {
            record.beat();
            tokio::task::yield_now().await;
        }
        drop(record);
        tasks.close();
        tasks.wait().await;
        let gone = agents::get(&store, TenantId::from(tenant), "edge")
            .await
            .unwrap();
        assert_eq!(gone.hub_replica, None);
        assert!(gone.disconnected_at.is_some());
        assert_eq!(gone.last_heartbeat_at, connected.last_heartbeat_at);
    }

    #[tokio::test]
    async fn a_failed_connect_is_tried_again_on_a_later_heartbeat_which_is_then_written() {
        let db = ferry_testkit::TestDb::new().await;
        let store = Store::from_pool(db.pool.clone());
        let tasks = TaskTracker::new();
        let presence = Presence::new(store.clone(), "r1", Duration::ZERO, tasks.clone());
        // The tenant does not exist yet, so the connect fails on the foreign key.
        let tenant = Uuid::now_v7();
        let record = presence.record(tenant, &hello("edge"));
        sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, 'late', 'late')")
            .bind(tenant)
            .execute(store.pool())
            .await
            .unwrap();

        // With no interval every beat that reaches the writer is written: the first retries
        // the connect, a later one records a heartbeat.
        let first =
            ferry_testkit::eventually("the retried connect", Duration::from_secs(10), || {
                record.beat();
                let store = store.clone();
                async move {
                    agents::get(&store, TenantId::from(tenant), "edge")
                        .await
                        .ok()
                }
            })
            .await;
        assert_eq!(first.session, 1);
        let beat = ferry_testkit::eventually("a heartbeat", Duration::from_secs(10), || {
            record.beat();
            let store = store.clone();
            let before = first.last_heartbeat_at;
            async move {
                agents::get(&store, TenantId::from(tenant), "edge")
                    .await
                    .ok()
                    .filter(|a| a.last_heartbeat_at > before)
            }
        })
        .await;
        assert_eq!(beat.session, first.session);
        assert!(beat.is_connected());
    }
}
