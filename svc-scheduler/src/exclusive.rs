//! One reconcile of a deployment at a time, across every replica: a pass holds a Postgres
//! advisory lock on its deployment from before it reads the state until after it commits.
//!
//! The version check at commit keeps the state right when two passes race, but not the
//! cluster: a pass that loses the race has already done its cluster work, and work decided on a
//! state that never commits can be destructive (a rollback's deletes, carried out while the
//! winner committed "waiting for pods", left a target waiting for a ReplicaSet that no longer
//! existed). With the readiness watch and the tick both waking a deployment, such races are
//! ordinary, so passes of one deployment are serialized.
//!
//! The lock is transaction-scoped (`pg_try_advisory_xact_lock` in a transaction held for the
//! pass): it goes when the guard is dropped, when the process dies and when Postgres restarts,
//! never left behind on a pooled connection. A pass that finds it taken waits holding neither
//! a connection nor one of the replica's pass permits (so the replica's other passes go on) and
//! tries again, up to a bound; then its message is retried later.

use crate::EngineError;
use ferry_store::{DeploymentId, Store, StoreError};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The held lock and the pass permit; dropping it releases the lock (the connection goes back
/// to the pool first), then the permit.
pub(crate) struct Exclusive<'a> {
    _tx: sqlx::Transaction<'static, sqlx::Postgres>,
    _permit: SemaphorePermit<'a>,
}

/// The advisory lock key of a deployment: its id folded to 64 bits (a collision only makes two
/// deployments take turns).
fn key(id: DeploymentId) -> i64 {
    let (high, low) = id.as_uuid().as_u64_pair();
    (high ^ low) as i64
}

/// Takes one of `passes` (the replica's concurrent passes) and the deployment's lock, waiting at
/// most `wait` for another pass of the deployment to finish.
pub(crate) async fn lock<'a>(
    store: &Store,
    passes: &'a Semaphore,
    id: DeploymentId,
    wait: Duration,
) -> Result<Exclusive<'a>, EngineError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let permit = passes
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut tx = store.begin().await?;
        let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
            .bind(key(id))
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        if taken {
            return Ok(Exclusive {
                _tx: tx,
                _permit: permit,
            });
        }
        drop(tx);
        drop(permit);
        if started.elapsed() >= wait {
            return Err(EngineError::Busy(wait));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_testkit::TestDb;

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
        drop(held);
        lock(&store, &passes, one, wait).await.unwrap();
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
                "another deployment's pass got a permit and its lock"
            );
        };
        // The other pass finishes while the waiter still waits (it would wait 30 s).
        tokio::select! {
            result = waiting => panic!(
                "the waiter ended before another deployment's pass could run (got the lock: {})",
                result.is_ok()
            ),
            () = other_pass => {}
        }
    }
}
