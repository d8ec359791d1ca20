//! The retry loop every replica runs: it leases pending deliveries that are due (a retry whose
//! backoff passed, or one whose replica died mid-send and whose lease expired), counting the
//! attempt, and sends each in a tracked task. A lease, not a lock: no transaction stays open
//! while a receiver answers.

use crate::deliver::{Context, deliver};
use ferry_store::webhooks;
use ferry_store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the loop looks for due deliveries.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Between looks.
    pub poll: Duration,
    /// Deliveries claimed per look at most.
    pub batch: i64,
}

async fn claim(ctx: &Context, limit: i64) -> Result<Vec<webhooks::Delivery>, StoreError> {
    let store: &Store = &ctx.store;
    let mut tx = store.begin().await?;
    let due = webhooks::claim_due_all_tenants(&mut tx, &ctx.config.owner, ctx.config.lease, limit)
        .await?;
    tx.commit().await?;
    Ok(due)
}

/// Sends due deliveries until `shutdown`, at most as many at once as `room` allows (shared with
/// the consumers); `wake` makes it look at once.
pub async fn run(
    ctx: Context,
    config: RunnerConfig,
    tracker: TaskTracker,
    room: Arc<Semaphore>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let free = room.available_permits().min(config.batch.max(1) as usize);
        if free > 0 {
            match claim(&ctx, free as i64).await {
                Ok(due) => {
                    for d in due {
                        let Ok(permit) = room.clone().acquire_owned().await else {
                            return;
                        };
                        let ctx = ctx.clone();
                        tracker.spawn(async move {
                            deliver(&ctx, d).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "looking for due deliveries failed; trying again");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(config.poll) => {}
        }
    }
}
