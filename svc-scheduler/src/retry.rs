//! Durable retries: a scheduler message whose reconcile keeps failing (an agent away for minutes,
//! a cluster answering errors) does not end in the dead-letter queue with its deployment stuck.
//!
//! The consumer retries a failed message a few times on its own (seconds apart). On the last of
//! those attempts the engine instead *parks* it: a `retry` timer row on the deployment holds the
//! message, due after a backoff that doubles per round up to [`RetryPolicy::max`], and the
//! delivery is acknowledged. When the timer fires, the timer loop writes the held message to the
//! outbox again under a new id chosen when the timer was written (`resend_as`), and the round
//! continues; the next park finds the previous timer by that id, so rounds and the time of the
//! first failure carry over. The deployment resumes as soon as a reconcile succeeds.
//!
//! The application's slot is never held forever: once a message has failed for
//! [`RetryPolicy::give_up_after`], the deployment is failed with the last error as its reason,
//! its open targets marked failed where they stand (their clusters could not be reached to roll
//! them back), and a deployment waiting for the slot starts.

use crate::engine::Engine;
use crate::outcome::Outcome;
use chrono::{DateTime, Utc};
use ferry_bus::consumer::HandlerError;
use ferry_bus::{Envelope, SchedulerMessage, outbox};
use ferry_store::deployments::{self, DeploymentStatus};
use ferry_store::targets::{self, TargetState, TargetStatus};
use ferry_store::timers::{self, NewTimer, Timer};
use ferry_store::{DeploymentId, Store, TenantId};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// The timer kind of a parked message.
pub const KIND: &str = "retry";

/// How failing messages are retried durably.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// The consumer attempt on which a still-failing message is parked (the consumer's own
    /// attempts before it; `run_engine` sets the consumer's limit to this).
    pub park_at_attempt: u32,
    /// The first round's delay.
    pub initial: Duration,
    /// The longest delay between rounds.
    pub max: Duration,
    /// How long a message may keep failing before its deployment is failed.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            park_at_attempt: 5,
            initial: Duration::from_secs(15),
            max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The delay before round `round` (0-based).
    pub fn delay(&self, round: u32) -> Duration {
        self.initial
            .saturating_mul(2u32.saturating_pow(round.min(20)))
            .min(self.max)
    }
}

/// What a retry timer holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Parked {
    message: SchedulerMessage,
    /// The id the message is written to the outbox under when the timer fires.
    resend_as: Uuid,
    /// Rounds parked so far, this one included.
    round: u32,
    first_failed_at: DateTime<Utc>,
    error: String,
}

/// Parks a message that failed on its last consumer attempt, or fails its deployment once it
/// has failed for too long. `Ok` means the delivery may be acknowledged.
pub(crate) async fn park(
    engine: &Engine,
    envelope: &Envelope<SchedulerMessage>,
    error: &str,
) -> Result<(), HandlerError> {
    let policy = &engine.config().retry;
    let store = engine.store();
    let tenant = TenantId(envelope.tenant_id);
    let id = DeploymentId(envelope.payload.deployment_id());
    let mut tx = store.begin().await.map_err(retryable)?;
    let previous = timers::find_by_payload(
        &mut tx,
        tenant,
        id,
        KIND,
        "resend_as",
        &envelope.id.to_string(),
    )
    .await
    .map_err(retryable)?
    .and_then(|t| serde_json::from_value::<Parked>(t.payload.0).ok());
    let (round, first_failed_at) = match &previous {
        Some(p) => (p.round, p.first_failed_at),
        None => (0, Utc::now()),
    };
    let failing_for = (Utc::now() - first_failed_at).to_std().unwrap_or_default();
    if failing_for >= policy.give_up_after {
        drop(tx);
        let reason = format!(
            "gave up after {}s of failed attempts ({} rounds): {error}",
            failing_for.as_secs(),
            round
        );
        return give_up(engine, tenant, id, &reason).await;
    }
    let delay = policy.delay(round);
    let parked = Parked {
        message: envelope.payload.clone(),
        resend_as: Uuid::now_v7(),
        round: round + 1,
        first_failed_at,
        error: error.chars().take(2000).collect(),
    };
    let timer = NewTimer {
        target: None,
        kind: KIND.into(),
        // Unique per message and round: a redelivered last attempt parks the same timer.
        key: format!("retry:{}", envelope.id),
        fire_at: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
        payload: serde_json::to_value(&parked).map_err(HandlerError::permanent)?,
    };
    match timers::schedule(&mut tx, tenant, id, &timer).await {
        Ok(_) => {}
        // The deployment is gone: nothing to retry.
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(retryable(e)),
    }
    tx.commit().await.map_err(retryable)?;
    tracing::warn!(%id, round = round + 1, delay_s = delay.as_secs(), %error, "reconcile keeps failing; retrying later from a durable timer");
    Ok(())
}

/// Writes the messages held by fired retry timers to the outbox, in the timer loop's
/// transaction.
pub(crate) async fn resend(
    conn: &mut sqlx::PgConnection,
    fired: &[Timer],
) -> Result<(), ferry_bus::BusError> {
    for timer in fired.iter().filter(|t| t.kind == KIND) {
        let Ok(parked) = serde_json::from_value::<Parked>(timer.payload.0.clone()) else {
            tracing::error!(timer = %timer.id, "a retry timer's payload does not decode; dropped");
            continue;
        };
        let mut envelope = Envelope::new(timer.tenant_id.as_uuid(), parked.message);
        envelope.id = parked.resend_as;
        outbox::enqueue(conn, &envelope).await?;
    }
    Ok(())
}

/// Fails the deployment where it stands: open targets failed with `reason`, the deployment
/// failed, its timers cancelled, a waiting deployment promoted (the engine's commit).
pub(crate) async fn give_up(
    engine: &Engine,
    tenant: TenantId,
    id: DeploymentId,
    reason: &str,
) -> Result<(), HandlerError> {
    let store: &Store = engine.store();
    let deployment = match deployments::get(store, tenant, id).await {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(retryable(e)),
    };
    if !deployment.status.is_active() {
        return Ok(());
    }
    let rows = targets::list(store, tenant, id).await.map_err(retryable)?;
    let outcomes = rows
        .iter()
        .filter(|t| !t.status.is_terminal())
        .map(|t| Outcome {
            target: t.name.clone(),
            version: t.version,
            state: TargetState {
                status: TargetStatus::Failed,
                phase: Some(crate::progress::Phase::Done),
                desired: t.desired.clone(),
                observed: t.observed.clone(),
                step_index: t.step_index,
                reason: Some(reason.to_string()),
            },
            progress: None,
            steps: vec![],
            timers: vec![],
            approvals: vec![],
            requests: vec![],
            events: vec![ferry_bus::DeploymentEvent::TargetStatus {
                deployment_id: id.as_uuid(),
                target: t.name.clone(),
                status: ferry_bus::messages::Status::Failed,
                reason: Some(reason.to_string()),
            }],
            reports: vec![],
        })
        .collect();
    let end = Some((DeploymentStatus::Failed, reason.to_string()));
    engine
        .commit_outcomes(tenant, &deployment, outcomes, end)
        .await
        .map_err(|e| {
            if e.is_permanent() {
                HandlerError::permanent(e)
            } else {
                HandlerError::retryable(e)
            }
        })?;
    tracing::error!(%id, %reason, "deployment failed where it stood");
    Ok(())
}

fn retryable(e: impl Into<ferry_bus::consumer::BoxError>) -> HandlerError {
    HandlerError::retryable(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_round_up_to_the_cap() {
        let p = RetryPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(0), Duration::from_secs(10));
        assert_eq!(p.delay(1), Duration::from_secs(20));
        assert_eq!(p.delay(2), Duration::from_secs(40));
        assert_eq!(p.delay(3), Duration::from_secs(60));
        assert_eq!(p.delay(99), Duration::from_secs(60));
    }
}
