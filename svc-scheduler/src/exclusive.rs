//! One reconcile of a deployment at a time, across every replica: a pass holds its deployment's
//! lease (a `deployment_leases` row) from before it reads the state until after it commits.
//!
//! The version check at commit keeps the state right when two passes race, but not the
//! cluster: a pass that loses the race has already done its cluster work, and work decided on a
//! state that never commits can be destructive (a rollback's deletes, carried out while the
//! winner committed "waiting for pods", left a target waiting for a ReplicaSet that no longer
//! existed). With the readiness watch and the tick both waking a deployment, such races are
//! ordinary, so passes of one deployment are serialized.
//!
//! A lease is taken, renewed and released by single statements, so a pass holds no connection
//! while it talks to clusters (design principle 3): a replica's passes are bounded by its pass
//! permits, not by its pool. The holder renews the lease every third of [`LEASE_TTL`] while the
//! pass runs; a killed holder's lease expires after at most [`LEASE_TTL`], and the next pass of
//! the deployment takes it over. Time is Postgres's clock, the same for every replica. A pass
//! that finds the lease taken waits holding neither a connection nor one of the replica's pass
//! permits (so the replica's other passes go on) and tries again, up to a bound; then its
//! message is retried later.
//!
//! A released lease keeps its row with the time the deployment's last completed pass began
//! ([`Exclusive::last_pass`]): a wake-up that occurred before then is stale, since that pass saw
//! everything the wake-up could signal, and the engine acks it without a pass while a readiness
//! tick is pending (which wakes the deployment anyway; see `Engine::reconcile_sent`). Under load this
//! drops the second of two wake-ups that queued for the same wait (the readiness watch's and the
//! tick's), each of which would otherwise cost a pass with cluster calls.

use crate::EngineError;
use chrono::{DateTime, Utc};
use ferry_store::{DeploymentId, Store, StoreError};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long a lease lives without renewal: how long a killed replica's deployment waits before
/// another replica takes it over.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(15);

/// The held lease and the pass permit. [`Exclusive::release`] gives the lease back; dropping
/// the guard without it (an error path, a cancelled future) releases it in the background.
pub(crate) struct Exclusive<'a> {
    lease: Option<Lease>,
    _permit: SemaphorePermit<'a>,
}

struct Lease {
    store: Store,
    id: DeploymentId,
    holder: Uuid,
    renewal: JoinHandle<()>,
    /// When this lease was taken (Postgres's clock): the pass's start, once it completes.
    taken_at: DateTime<Utc>,
    /// When the deployment's last completed pass began, if one did.
    last_pass: Option<DateTime<Utc>>,
}

impl Exclusive<'_> {
    /// When the deployment's last completed pass began (Postgres's clock), if one did.
    pub(crate) fn last_pass(&self) -> Option<DateTime<Utc>> {
        self.lease.as_ref().and_then(|l| l.last_pass)
    }

    /// Gives the lease back, so the deployment's next pass (on any replica) runs at once.
    /// `completed`: a pass completed under it, so wake-ups that occurred before the lease was
    /// taken are stale from now on (not so for a pass that failed or a stale message).
    pub(crate) async fn release(mut self, completed: bool) {
        if let Some(lease) = self.lease.take() {
            lease.renewal.abort();
            let passed = completed.then_some(lease.taken_at);
            release(&lease.store, lease.id, lease.holder, passed).await;
        }
    }
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        lease.renewal.abort();
        // Without a runtime (the process is ending) the lease simply expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release(&lease.store, lease.id, lease.holder, None).await });
        }
    }
}

/// Expires the lease now (the row stays, keeping the last completed pass's start, set to
/// `passed` when this pass completed).
async fn release(store: &Store, id: DeploymentId, holder: Uuid, passed: Option<DateTime<Utc>>) {
    let released = sqlx::query(
        "UPDATE deployment_leases SET expires_at = now(), \
             passed_at = COALESCE($3, passed_at) \
         WHERE deployment_id = $1 AND holder = $2",
    )
    .bind(id.as_uuid())
    .bind(holder)
    .bind(passed)
    .execute(store.pool())
    .await;
    if let Err(e) = released {
        tracing::warn!(deployment = %id, error = %e, "releasing a deployment's lease; it expires instead");
    }
}

/// Takes one of `passes` (the replica's concurrent passes) and the deployment's lease, waiting
/// at most `wait` for another pass of the deployment to finish.
pub(crate) async fn lock<'a>(
    store: &Store,
    passes: &'a Semaphore,
    id: DeploymentId,
    wait: Duration,
) -> Result<Exclusive<'a>, EngineError> {
    lock_for(store, passes, id, wait, LEASE_TTL).await
}

async fn lock_for<'a>(
    store: &Store,
    passes: &'a Semaphore,
    id: DeploymentId,
    wait: Duration,
    ttl: Duration,
) -> Result<Exclusive<'a>, EngineError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    let holder = Uuid::new_v4();
    loop {
        let permit = passes
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if let Some(Taken { at, last_pass }) = try_take(store, id, holder, ttl).await? {
            let renewal = tokio::spawn(renew(store.clone(), id, holder, ttl));
            return Ok(Exclusive {
                lease: Some(Lease {
                    store: store.clone(),
                    id,
                    holder,
                    renewal,
                    taken_at: at,
                    last_pass,
                }),
                _permit: permit,
            });
        }
        drop(permit);
        if started.elapsed() >= wait {
            return Err(EngineError::Busy(wait));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A lease just taken.
struct Taken {
    /// When (Postgres's clock).
    at: DateTime<Utc>,
    /// When the deployment's last completed pass began.
    last_pass: Option<DateTime<Utc>>,
}

/// Takes the lease if nobody holds it, it was released or its holder's lease expired.
async fn try_take(
    store: &Store,
    id: DeploymentId,
    holder: Uuid,
    ttl: Duration,
) -> Result<Option<Taken>, EngineError> {
    let taken: Option<(DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "INSERT INTO deployment_leases (deployment_id, holder, expires_at) \
         VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
         ON CONFLICT (deployment_id) DO UPDATE \
             SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
             WHERE deployment_leases.expires_at < now() \
         RETURNING now(), passed_at",
    )
    .bind(id.as_uuid())
    .bind(holder)
    .bind(ttl.as_millis() as i64)
    .fetch_optional(store.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(taken.map(|(at, last_pass)| Taken { at, last_pass }))
}

/// Extends the lease every third of its life until aborted (the pass ended) or lost.
async fn renew(store: Store, id: DeploymentId, holder: Uuid, ttl: Duration) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let renewed = sqlx::query(
            "UPDATE deployment_leases SET expires_at = now() + $3 * interval '1 millisecond' \
             WHERE deployment_id = $1 AND holder = $2",
        )
        .bind(id.as_uuid())
        .bind(holder)
        .bind(ttl.as_millis() as i64)
        .execute(store.pool())
        .await;
        match renewed {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => {
                // Only possible if this replica stalled for a whole lease: the pass goes on,
                // and the version check at commit keeps the state right.
                tracing::error!(deployment = %id, "a pass lost its deployment's lease to another replica");
                return;
            }
            // Postgres briefly away: the lease runs on, the next tick tries again.
            Err(e) => tracing::warn!(deployment = %id, error = %e, "renewing a deployment's lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_testkit::TestDb;

    async fn expires_at(store: &Store, id: DeploymentId) -> Option<chrono::DateTime<chrono::Utc>> {
        sqlx::query_scalar("SELECT expires_at FROM deployment_leases WHERE deployment_id = $1")
            .bind(id.as_uuid())
            .fetch_optional(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_deployment_is_reconciled_by_one_pass_at_a_time() {
        let db = TestDb::new().await;
        let store = Store::from_pool(db.pool.clone());
        let passes = Semaphore::new(4);
        let (one, other) = (DeploymentId::new(), DeploymentId::new());
        let held = lock(&store, &passes, one, Duration::ZERO).await.unwrap();
        let wait = Duration::from_millis(50);
        assert!(matches!(
            lock(&store, &passes, one, wait).await,
            Err(EngineError::Busy(_))
        ));
        // Another deployment is not held up.
        let _other = lock(&store, &passes, other, Duration::ZERO).await.unwrap();
        held.release(false).await;
        assert!(
            expires_at(&store, one).await.unwrap() <= chrono::Utc::now(),
            "a released lease is expired"
        );
        let again = lock(&store, &passes, one, Duration::ZERO).await.unwrap();
        // A guard dropped without releasing gives the lease back all the same.
        drop(again);
        lock(&store, &passes, one, Duration::from_secs(5))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_lease_remembers_when_the_last_completed_pass_began() {
        let db = TestDb::new().await;
        let store = Store::from_pool(db.pool.clone());
        let passes = Semaphore::new(2);
        let id = DeploymentId::new();
        let first = lock(&store, &passes, id, Duration::ZERO).await.unwrap();
        assert_eq!(first.last_pass(), None, "no pass completed yet");
        let began = first.lease.as_ref().unwrap().taken_at;
        first.release(true).await;

        let second = lock(&store, &passes, id, Duration::ZERO).await.unwrap();
        assert_eq!(second.last_pass(), Some(began));
        assert!(second.lease.as_ref().unwrap().taken_at >= began);
        // A pass that did not complete (failed, or its message was stale) changes nothing.
        second.release(false).await;
        let third = lock(&store, &passes, id, Duration::ZERO).await.unwrap();
        assert_eq!(third.last_pass(), Some(began));
        // Nor does a guard dropped without releasing.
        drop(third);
        let fourth = lock(&store, &passes, id, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(fourth.last_pass(), Some(began));
    }

    #[tokio::test]
    async fn a_held_lease_needs_no_connection() {
        let db = TestDb::new().await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&db.url)
            .await
            .unwrap();
        let store = Store::from_pool(pool.clone());
        let passes = Semaphore::new(2);
        let _held = lock(&store, &passes, DeploymentId::new(), Duration::ZERO)
            .await
            .unwrap();
        // The pool's only connection is free for the pass's own reads and commit (the
        // advisory lock this replaced kept it for the whole pass).
        let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
        assert_eq!(one, 1);
        let _other = lock(&store, &passes, DeploymentId::new(), Duration::ZERO)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_lease_is_renewed_while_held_and_taken_over_once_its_holder_is_gone() {
        let db = TestDb::new().await;
        let store = Store::from_pool(db.pool.clone());
        let passes = Semaphore::new(4);
        let id = DeploymentId::new();
        let ttl = Duration::from_millis(600);
        let held = lock_for(&store, &passes, id, Duration::ZERO, ttl)
            .await
            .unwrap();
        let first = expires_at(&store, id).await.unwrap();
        ferry_testkit::eventually("the lease to be renewed", Duration::from_secs(5), || {
            let store = &store;
            async move { (expires_at(store, id).await? > first).then_some(()) }
        })
        .await;
        // Renewed past its first expiry, it still keeps other passes out.
        ferry_testkit::eventually(
            "the first expiry to pass",
            Duration::from_secs(5),
            || async { (chrono::Utc::now() > first).then_some(()) },
        )
        .await;
        assert!(matches!(
            lock_for(&store, &passes, id, Duration::ZERO, ttl).await,
            Err(EngineError::Busy(_))
        ));

        // Its holder dies: no renewal, no release (what `kill -9` leaves behind).
        let mut dead = held;
        if let Some(lease) = dead.lease.take() {
            lease.renewal.abort();
        }
        drop(dead);
        let taken_over = lock_for(&store, &passes, id, Duration::from_secs(5), ttl).await;
        assert!(taken_over.is_ok(), "the expired lease was taken over");
    }

    #[tokio::test]
    async fn a_pass_waiting_for_its_deployment_leaves_the_permits_to_others() {
        let db = TestDb::new().await;
        let store = Store::from_pool(db.pool.clone());
        // Two permits: the holder of `one` takes a permit, a pass waiting for `one` must not
        // take the other for as long as it waits.
        let passes = Semaphore::new(2);
        let (one, other) = (DeploymentId::new(), DeploymentId::new());
        let _held = lock(&store, &passes, one, Duration::ZERO).await.unwrap();
        let waiting = lock(&store, &passes, one, Duration::from_secs(30));
        let other_pass = async {
            // Let the waiter find `one` taken at least once.
            tokio::task::yield_now().await;
            let taken = lock(&store, &passes, other, Duration::ZERO).await;
            assert!(
                taken.is_ok(),
                "another deployment's pass got a permit and its lease"
            );
        };
        // The other pass finishes while the waiter still waits (it would wait 30 s).
        tokio::select! {
            result = waiting => panic!(
                "the waiter ended before another deployment's pass could run (got the lease: {})",
                result.is_ok()
            ),
            () = other_pass => {}
        }
    }
}
