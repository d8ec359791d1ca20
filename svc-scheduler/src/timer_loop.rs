//! The durable timer loop: any replica claims due timer rows (`FOR UPDATE SKIP LOCKED`, so two
//! replicas never claim the same row) and, in the same transaction, writes a wake-up of each
//! timer's deployment to the outbox. Pauses, approval expirations and readiness ticks therefore
//! survive restarts of every service: the timer is a row, the wake-up a message.

use crate::EngineError;
use crate::engine::wake_up;
use ferry_bus::outbox;
use ferry_store::{Store, timers};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Fires due timers until `shutdown`, looking every `poll` (at once again after a full batch).
pub async fn run(store: Store, poll: Duration, batch: i64, shutdown: CancellationToken) {
    loop {
        let busy = match fire_due(&store, batch).await {
            Ok(fired) => fired as i64 >= batch,
            Err(e) => {
                tracing::warn!(error = %e, "firing due timers failed; trying again");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Claims up to `batch` due timers and wakes their deployments, in one transaction; returns how
/// many timers fired.
pub async fn fire_due(store: &Store, batch: i64) -> Result<usize, EngineError> {
    let mut tx = store.begin().await?;
    let due = timers::claim_due_all_tenants(&mut tx, batch).await?;
    // A retry timer re-sends the message it holds; every other timer wakes its deployment.
    crate::retry::resend(&mut tx, &due).await?;
    let deployments: BTreeSet<_> = due
        .iter()
        .filter(|t| t.kind != crate::retry::KIND)
        .map(|t| (t.tenant_id.as_uuid(), t.deployment_id.as_uuid()))
        .collect();
    for (tenant, deployment) in deployments {
        outbox::enqueue(&mut tx, &wake_up(tenant, deployment)).await?;
    }
    tx.commit().await.map_err(ferry_store::StoreError::from)?;
    if !due.is_empty() {
        tracing::debug!(fired = due.len(), "timers fired");
    }
    Ok(due.len())
}
