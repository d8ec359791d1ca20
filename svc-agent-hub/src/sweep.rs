//! The presence sweeper: the agents table must not show agents of a killed replica as connected.
//!
//! A replica killed outright records no disconnects (see [`crate::presence`]). Every replica
//! marks itself alive in Redis with a short TTL ([`crate::routes::LIVENESS_TTL`]), and every
//! replica sweeps: each second it lists the replicas the agents table names and records the
//! agents of each replica without a liveness mark as disconnected. A replica is swept only after
//! its mark was found missing twice, at least one TTL apart, so a Redis restart (every mark gone
//! for a moment, until each replica writes its own again) sweeps nobody. Agents that reconnected
//! elsewhere name their new replica and are untouched. Several replicas sweeping the same dead one
//! write the same thing, so no coordination is needed.

use crate::agents::HubState;
use crate::routes::LIVENESS_TTL;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often a replica sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Sweeps until the task is aborted (at shutdown).
pub async fn run(state: Arc<HubState>) {
    let mut missing: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sweep_once(&state, &mut missing).await {
            tracing::debug!(error = %e, "presence sweep failed; trying again");
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SweepError {
    #[error("store: {0}")]
    Store(#[from] ferry_store::StoreError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// One sweep: `missing` remembers since when each replica's mark has been missing.
async fn sweep_once(
    state: &HubState,
    missing: &mut HashMap<String, Instant>,
) -> Result<(), SweepError> {
    let replicas = ferry_store::agents::connected_replicas(&state.store).await?;
    missing.retain(|r, _| replicas.contains(r));
    for replica in replicas {
        if replica == state.replica {
            continue;
        }
        if state.routes.is_alive(&replica).await? {
            missing.remove(&replica);
            continue;
        }
        let since = *missing.entry(replica.clone()).or_insert_with(Instant::now);
        if since.elapsed() < LIVENESS_TTL {
            continue;
        }
        let swept = ferry_store::agents::disconnect_replica(&state.store, &replica).await?;
        missing.remove(&replica);
        if swept > 0 {
            state.metrics.swept_agents.inc_by(swept);
            tracing::info!(dead_replica = %replica, agents = swept, "recorded the agents of a dead replica as disconnected");
        }
    }
    Ok(())
}
