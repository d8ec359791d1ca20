//! The deployment engine: per message or timer, read the deployment with its version,
//! reconcile every target (cluster work outside any transaction), then commit the new target
//! states, step history, timers, approvals and outbox messages in one short transaction guarded
//! by the deployment's version. A version that moved means another replica committed first:
//! re-read and reconcile again. Redelivery is normal: the state decides, not the message.

use crate::clusters::Clusters;
use crate::outcome::{Input, Outcome, Request, Slot};
use crate::progress::Phase;
use crate::reports::Counted;
use crate::target::{self, Ctx};
use crate::{EngineConfig, EngineError};
use chrono::{DateTime, Utc};
use ferry_bus::consumer::{Handler, HandlerError, Incoming};
use ferry_bus::messages::{DeploymentStarted, RolloutDecision, Status};
use ferry_bus::{
    CanaryMessage, DeploymentEvent, Envelope, SchedulerMessage, WebhookMessage, outbox,
};
use ferry_deploy::Plan;
use ferry_store::deployments::{self, Deployment, DeploymentStatus};
use ferry_store::events::{self, NewEvent};
use ferry_store::targets::{self, TargetStatus};
use ferry_store::{DeploymentId, Store, TenantId, approvals, callbacks, timers};
use futures::future::join_all;
use std::sync::Arc;
use uuid::Uuid;

/// Reconciles deployments; cheap to clone, one per process.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    clusters: Arc<dyn Clusters>,
    config: EngineConfig,
    readiness: Option<crate::readiness::Readiness>,
    /// Passes in flight at once: a pass holds a pooled connection only for each of its short
    /// reads and its commit, so one per pooled connection (see `exclusive`).
    passes: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How much older than the deployment's last completed pass a wake-up must be to be dropped as
/// stale (a message's time is its sender's clock, the pass's Postgres's).
const STALE_MARGIN: chrono::Duration = chrono::Duration::seconds(1);

/// What one pass found.
enum Pass {
    /// Nothing more to do until the next wake-up.
    Settled,
    /// A target ended and others may now start: reconcile again at once.
    Again,
}

impl Input {
    /// The input a scheduler message brings.
    pub fn from_message(message: &SchedulerMessage) -> Input {
        match message {
            SchedulerMessage::DeploymentStarted(_) | SchedulerMessage::ApprovalDecided(_) => {
                Input::Wake
            }
            SchedulerMessage::RolloutDecided(m) => Input::Rollout {
                target: m.target.clone(),
                step_index: m.step_index,
                forward: m.decision == RolloutDecision::Forward,
                decided_by: m.decided_by.clone().unwrap_or_else(|| "someone".into()),
            },
            SchedulerMessage::AbortRequested(m) => Input::Abort {
                reason: requested_reason(m.reason.as_deref(), m.requested_by.as_deref()),
            },
            SchedulerMessage::RollbackRequested(m) => Input::Rollback {
                target: m.target.clone(),
                reason: requested_reason(m.reason.as_deref(), m.requested_by.as_deref()),
            },
            SchedulerMessage::SkipPauseRequested(m) => Input::SkipPause {
                target: m.target.clone(),
                step_index: m.step_index,
            },
            SchedulerMessage::AnalysisCompleted(m) => Input::Completed {
                id: m.analysis_id,
                success: m.success,
                reason: m.reason.clone(),
                inconclusive: m.inconclusive,
            },
            SchedulerMessage::WebhookCompleted(m) => Input::Completed {
                id: m.webhook_id,
                success: m.success,
                reason: m.reason.clone(),
                inconclusive: false,
            },
        }
    }
}

/// The reason an abort or rollback request carries: the one given, else who asked, else
/// "requested".
fn requested_reason(reason: Option<&str>, requested_by: Option<&str>) -> String {
    match (reason, requested_by) {
        (Some(reason), _) => reason.to_owned(),
        (None, Some(by)) => format!("requested by {by}"),
        (None, None) => "requested".into(),
    }
}

/// The deployment's end once every target ended, with its reason.
fn final_status(
    outcomes: &[Outcome],
    before: &[targets::Target],
    input: &Input,
) -> Option<(DeploymentStatus, String)> {
    let ends: Vec<(&str, TargetStatus, Option<&str>)> = before
        .iter()
        .map(|t| match outcomes.iter().find(|o| o.target == t.name) {
            Some(o) => (t.name.as_str(), o.state.status, o.state.reason.as_deref()),
            None => (t.name.as_str(), t.status, t.reason.as_deref()),
        })
        .collect();
    if ends.iter().any(|(_, s, _)| !s.is_terminal()) {
        return None;
    }
    if ends.iter().all(|(_, s, _)| *s == TargetStatus::Succeeded) {
        return Some((
            DeploymentStatus::Succeeded,
            format!("all {} targets succeeded", ends.len()),
        ));
    }
    let failures: Vec<String> = ends
        .iter()
        .filter(|(_, s, _)| !matches!(s, TargetStatus::Succeeded | TargetStatus::Skipped))
        .map(|(name, s, r)| format!("{name} {s}: {}", r.unwrap_or("no reason")))
        .collect();
    let status = match input {
        Input::Abort { .. } => DeploymentStatus::Aborted,
        Input::Rollback { .. } => DeploymentStatus::RolledBack,
        _ => DeploymentStatus::Failed,
    };
    Some((status, failures.join("; ")))
}

/// `paused` while every target still open waits (on a pause, an approval, a person's decision,
/// or for a target that does), else `running`.
fn active_status(outcomes: &[Outcome], before: &[targets::Target]) -> DeploymentStatus {
    let open: Vec<TargetStatus> = before
        .iter()
        .map(|t| match outcomes.iter().find(|o| o.target == t.name) {
            Some(o) => o.state.status,
            None => t.status,
        })
        .filter(|s| !s.is_terminal())
        .collect();
    let waiting = |s: &TargetStatus| matches!(s, TargetStatus::Paused | TargetStatus::Pending);
    if open.iter().all(waiting) && open.contains(&TargetStatus::Paused) {
        DeploymentStatus::Paused
    } else {
        DeploymentStatus::Running
    }
}

fn bus_status(status: DeploymentStatus) -> Status {
    match status {
        DeploymentStatus::Waiting => Status::Pending,
        DeploymentStatus::Running => Status::Running,
        DeploymentStatus::Paused => Status::Paused,
        DeploymentStatus::Succeeded => Status::Succeeded,
        DeploymentStatus::Failed => Status::Failed,
        DeploymentStatus::Aborted | DeploymentStatus::Superseded => Status::Aborted,
        DeploymentStatus::RolledBack => Status::RolledBack,
    }
}

impl Engine {
    /// An engine over `store`, reaching clusters through `clusters`.
    pub fn new(store: Store, clusters: Arc<dyn Clusters>, config: EngineConfig) -> Engine {
        let connections = store.pool().options().get_max_connections() as usize;
        Engine {
            store,
            clusters,
            config,
            readiness: None,
            passes: Arc::new(tokio::sync::Semaphore::new(connections.max(1))),
        }
    }

    /// The engine, with targets waiting for pods woken by `readiness`'s watches.
    pub fn with_readiness(mut self, readiness: crate::readiness::Readiness) -> Engine {
        self.readiness = Some(readiness);
        self
    }

    /// Moves every target of the deployment as far as it can go now and commits the result.
    /// Idempotent: running it again with nothing new changes nothing.
    #[tracing::instrument(skip(self, input), fields(%tenant, %id))]
    pub async fn reconcile(
        &self,
        tenant: TenantId,
        id: DeploymentId,
        input: &Input,
    ) -> Result<(), EngineError> {
        self.reconcile_sent(tenant, id, input, None).await
    }

    /// [`Engine::reconcile`] for a message that occurred at `occurred` (its envelope's time): a
    /// wake-up that occurred well before the deployment's last completed pass began is stale
    /// (that pass saw all it could signal) and is acked without a pass, but only while the
    /// deployment has a readiness tick pending. The message's time is its sender's clock and
    /// the pass's is Postgres's: with clocks far apart a wake-up could be taken for stale that
    /// the pass never saw (an approval decided as it began), and the tick then wakes the
    /// deployment in any case, a few seconds late. Without a tick nothing else would, so the
    /// wake-up runs its pass.
    pub async fn reconcile_sent(
        &self,
        tenant: TenantId,
        id: DeploymentId,
        input: &Input,
        occurred: Option<DateTime<Utc>>,
    ) -> Result<(), EngineError> {
        // One pass of this deployment at a time, on every replica, within this replica's bound
        // of concurrent passes (see `exclusive`).
        let exclusive =
            crate::exclusive::lock(&self.store, &self.passes, id, self.config.lock_wait).await?;
        if matches!(input, Input::Wake)
            && let (Some(occurred), Some(last)) = (occurred, exclusive.last_pass())
            && occurred + STALE_MARGIN < last
            && timers::has_pending(&self.store, tenant, id, timers::KIND_TICK).await?
        {
            tracing::debug!(%id, %occurred, %last, "a wake-up older than the last pass; nothing to do");
            if let Some(metrics) = &self.config.metrics {
                metrics.stale_wake();
            }
            exclusive.release(false).await;
            return Ok(());
        }
        let result = self.reconcile_held(tenant, id, input).await;
        exclusive.release(result.is_ok()).await;
        result
    }

    /// [`Engine::reconcile`] with the deployment's lease held.
    async fn reconcile_held(
        &self,
        tenant: TenantId,
        id: DeploymentId,
        input: &Input,
    ) -> Result<(), EngineError> {
        let mut conflicts = 0;
        let mut input = input.clone();
        loop {
            match self.pass(tenant, id, &input).await {
                Ok(Pass::Settled) => return Ok(()),
                // Whatever the message carried is committed; the next pass only looks.
                Ok(Pass::Again) => input = Input::Wake,
                Err(EngineError::Store(e))
                    if e.is_conflict() && conflicts < self.config.max_conflicts =>
                {
                    conflicts += 1;
                    tracing::debug!(error = %e, "another replica moved the deployment; re-reading");
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn pass(
        &self,
        tenant: TenantId,
        id: DeploymentId,
        input: &Input,
    ) -> Result<Pass, EngineError> {
        let deployment = deployments::get(&self.store, tenant, id).await?;
        if !deployment.status.is_active() {
            // Only cleanup timers wake an ended deployment: its preview addresses expire.
            let rows = targets::list(&self.store, tenant, id).await?;
            crate::expose::remove_expired(self.clusters.as_ref(), tenant, &rows, Utc::now())
                .await?;
            return Ok(Pass::Settled);
        }
        let config = deployments::config(&self.store, tenant, id).await?;
        let plan = Plan::from_stored(&config.plan.0)?;
        let rows = targets::list(&self.store, tenant, id).await?;
        let ended: Vec<_> = rows
            .iter()
            .filter(|t| t.status.is_terminal())
            .cloned()
            .collect();
        // Ended targets' expired previews; an unreachable cluster must not stall the others
        // (the next pass tries again).
        if let Err(e) =
            crate::expose::remove_expired(self.clusters.as_ref(), tenant, &ended, Utc::now()).await
        {
            tracing::warn!(error = %e, "removing expired preview Services failed; trying later");
        }
        let ctx = Ctx {
            tenant,
            deployment: &deployment,
            plan: &plan,
            targets: &rows,
            now: Utc::now(),
            input,
            store: &self.store,
            clusters: self.clusters.as_ref(),
            config: &self.config,
            readiness: self.readiness.as_ref(),
        };
        // Targets move in parallel: independent branches never wait for each other.
        let runs = plan.targets.iter().filter_map(|tp| {
            rows.iter()
                .find(|t| t.name == tp.name)
                .map(|t| target::reconcile(&ctx, t, tp))
        });
        // One unreachable cluster must not stall the other branches: commit what the others
        // decided, then report the failure so the message is retried.
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut failure = None;
        for result in join_all(runs).await {
            match result {
                Ok(outcome) => outcomes.extend(outcome),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        let end = match failure {
            Some(_) => None,
            None => final_status(&outcomes, &rows, input),
        };
        // Running or paused: the deployment as a whole reflects whether any target moves.
        let pause = match (&end, &failure) {
            (None, None) => {
                Some(active_status(&outcomes, &rows)).filter(|s| *s != deployment.status)
            }
            _ => None,
        };
        if outcomes.is_empty() && end.is_none() && pause.is_none() {
            return failure.map_or(Ok(Pass::Settled), Err);
        }
        let unblocks = end.is_none()
            && outcomes
                .iter()
                .any(|o| o.state.status.is_terminal() || o.state.phase == Some(Phase::Done));
        // No target has a phase before the first pass that moves one.
        let starts = rows.iter().all(|t| t.phase.is_none());
        let change = Change {
            outcomes,
            end,
            pause,
            starts,
        };
        self.commit(tenant, &deployment, change).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(if unblocks { Pass::Again } else { Pass::Settled }),
        }
    }

    async fn commit(
        &self,
        tenant: TenantId,
        deployment: &Deployment,
        change: Change,
    ) -> Result<(), EngineError> {
        let Change {
            outcomes,
            end,
            pause,
            starts,
        } = change;
        let id = deployment.id;
        let tenant_uuid = tenant.as_uuid();
        let mut tx = self.store.begin().await?;
        let bumped = deployments::bump_version(&mut tx, tenant, id, deployment.version).await?;
        // Counted once the transaction lands.
        let mut counted = Counted::default();
        counted.starts = starts;
        for mut o in outcomes {
            crate::reports::record(&mut tx, tenant, id, &o, &mut counted).await?;
            for (slot, new) in &o.approvals {
                let approval = approvals::create(&mut tx, tenant, id, new).await?;
                let wait = o.progress.as_mut().and_then(|p| match slot {
                    Slot::Step => Some(&mut p.wait),
                    Slot::Gate(i) => p.gates.get_mut(*i),
                });
                if let Some(wait) = wait {
                    wait.approval_id = Some(approval.id);
                }
            }
            // Before the target row: a callback changes the run id kept in the progress.
            for request in &o.requests {
                match request {
                    Request::Analysis(m) => {
                        let message = CanaryMessage::AnalysisRequested(m.clone());
                        outbox::enqueue(&mut tx, &Envelope::new(tenant_uuid, message)).await?;
                    }
                    Request::Webhook(m, callback) => {
                        let mut m = (**m).clone();
                        if let Some(callback) = callback {
                            // The API reports the callback by its row id: make it the run's id.
                            let row = callbacks::create(&mut tx, tenant, id, &callback.row).await?;
                            let wait = o.progress.as_mut().and_then(|p| match callback.slot {
                                Slot::Step => Some(&mut p.wait),
                                Slot::Gate(i) => p.gates.get_mut(i),
                            });
                            if let Some(wait) = wait.filter(|w| w.request_id == Some(m.webhook_id))
                            {
                                wait.request_id = Some(row.id);
                            }
                            m.webhook_id = row.id;
                        }
                        let message = WebhookMessage::WebhookRequested(m);
                        outbox::enqueue(&mut tx, &Envelope::new(tenant_uuid, message)).await?;
                    }
                }
            }
            let mut state = o.state.clone();
            if let Some(progress) = &o.progress {
                state.observed = progress.to_json();
            }
            targets::save(&mut tx, tenant, id, &o.target, o.version, &state).await?;
            for step in &o.steps {
                events::record_step(&mut tx, tenant, id, step).await?;
            }
            for timer in &o.timers {
                timers::schedule(&mut tx, tenant, id, timer).await?;
            }
            for event in &o.events {
                outbox::enqueue(&mut tx, &Envelope::new(tenant_uuid, event.clone())).await?;
            }
        }
        if let Some(status) = pause {
            deployments::transition(&mut tx, tenant, id, bumped.version, status, None).await?;
            events::append(
                &mut tx,
                tenant,
                id,
                &NewEvent {
                    kind: format!("deployment.{status}"),
                    target: None,
                    payload: serde_json::json!({"status": status}),
                },
            )
            .await?;
            let event = DeploymentEvent::DeploymentStatus {
                deployment_id: id.as_uuid(),
                status: bus_status(status),
                reason: None,
            };
            outbox::enqueue(&mut tx, &Envelope::new(tenant_uuid, event)).await?;
        }
        if let Some((status, reason)) = end {
            let done =
                deployments::transition(&mut tx, tenant, id, bumped.version, status, Some(&reason))
                    .await?;
            events::append(
                &mut tx,
                tenant,
                id,
                &NewEvent {
                    kind: format!("deployment.{status}"),
                    target: None,
                    payload: serde_json::json!({"status": status, "reason": reason}),
                },
            )
            .await?;
            timers::cancel_for_deployment(&mut tx, tenant, id).await?;
            let event = DeploymentEvent::DeploymentStatus {
                deployment_id: id.as_uuid(),
                status: bus_status(status),
                reason: Some(reason),
            };
            outbox::enqueue(&mut tx, &Envelope::new(tenant_uuid, event)).await?;
            counted.ended.push(status.to_string());
            for old in &done.superseded {
                counted.ended.push(DeploymentStatus::Superseded.to_string());
                let event = DeploymentEvent::DeploymentStatus {
                    deployment_id: old.as_uuid(),
                    status: Status::Aborted,
                    reason: Some("superseded by a newer deployment".into()),
                };
                outbox::enqueue(&mut tx, &Envelope::new(tenant_uuid, event)).await?;
            }
            // The application's queued deployment (enqueueOne) starts now.
            if let Some(next) = done.promoted {
                let start = SchedulerMessage::DeploymentStarted(DeploymentStarted {
                    deployment_id: next.id.as_uuid(),
                });
                outbox::enqueue(&mut tx, &Envelope::new(tenant_uuid, start)).await?;
            }
            tracing::info!(%status, "deployment ended");
        }
        tx.commit().await.map_err(ferry_store::StoreError::from)?;
        if let Some(metrics) = &self.config.metrics {
            counted.observe(metrics);
        }
        Ok(())
    }
}

/// What one commit writes besides the deployment's version.
struct Change {
    /// Each changed target.
    outcomes: Vec<Outcome>,
    /// The deployment ends with this status and reason.
    end: Option<(DeploymentStatus, String)>,
    /// The deployment's running/paused status changes.
    pause: Option<DeploymentStatus>,
    /// This is the deployment's first moving pass (counted as started).
    starts: bool,
}

impl Handler for Engine {
    type Message = SchedulerMessage;

    async fn handle(&self, message: Incoming<SchedulerMessage>) -> Result<(), HandlerError> {
        let envelope = &message.envelope;
        let tenant = TenantId(envelope.tenant_id);
        let id = DeploymentId(envelope.payload.deployment_id());
        let input = Input::from_message(&envelope.payload);
        match (self.reconcile_sent(tenant, id, &input, Some(envelope.occurred_at))).await {
            Ok(()) => Ok(()),
            // No retry can decode it: the deployment is failed with the reason instead of
            // staying open with its messages dead-lettered.
            Err(EngineError::Plan(e)) => {
                let reason = e.to_string();
                tracing::error!(%id, %reason, "failing the deployment");
                crate::retry::give_up(self, tenant, id, &reason).await
            }
            Err(e) if e.is_permanent() => {
                tracing::error!(error = %e, %id, "deployment cannot be reconciled");
                Err(HandlerError::permanent(e))
            }
            // Out of quick attempts: a durable timer takes over (see `retry`).
            Err(e) if message.attempt >= self.config.retry.park_at_attempt => {
                crate::retry::park(self, envelope, &e.to_string()).await
            }
            Err(e) => {
                tracing::warn!(error = %e, %id, "reconcile failed; retrying later");
                Err(HandlerError::retryable(e))
            }
        }
    }
}

impl Engine {
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Commits outcomes decided outside a reconcile pass (a deployment given up on).
    pub(crate) async fn commit_outcomes(
        &self,
        tenant: TenantId,
        deployment: &Deployment,
        outcomes: Vec<Outcome>,
        end: Option<(DeploymentStatus, String)>,
    ) -> Result<(), EngineError> {
        let change = Change {
            outcomes,
            end,
            pause: None,
            starts: false,
        };
        self.commit(tenant, deployment, change).await
    }
}

/// A wake-up of `deployment`, in the caller's transaction: the scheduler consumes it and
/// reconciles the deployment (timers use it to turn a due row into a reconcile).
pub(crate) fn wake_up(tenant: Uuid, deployment: Uuid) -> Envelope<SchedulerMessage> {
    Envelope::new(
        tenant,
        SchedulerMessage::DeploymentStarted(DeploymentStarted {
            deployment_id: deployment,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_bus::messages::{AbortRequested, AnalysisCompleted};
    use ferry_store::targets::TargetState;

    fn target(name: &str, status: TargetStatus, reason: Option<&str>) -> targets::Target {
        targets::Target {
            tenant_id: TenantId::new(),
            deployment_id: DeploymentId::new(),
            name: name.into(),
            account: "a".into(),
            namespace: "n".into(),
            status,
            phase: None,
            desired: serde_json::json!({}),
            observed: serde_json::json!({}),
            step_index: 0,
            reason: reason.map(str::to_string),
            version: 1,
            started_at: None,
            ended_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn outcome(name: &str, status: TargetStatus, reason: &str) -> Outcome {
        Outcome {
            target: name.into(),
            version: 1,
            state: TargetState {
                status,
                phase: Some(Phase::Done),
                desired: serde_json::json!({}),
                observed: serde_json::json!({}),
                step_index: 0,
                reason: Some(reason.into()),
            },
            progress: Default::default(),
            steps: vec![],
            timers: vec![],
            approvals: vec![],
            requests: vec![],
            events: vec![],
            reports: vec![],
        }
    }

    #[test]
    fn the_deployment_ends_only_when_every_target_ended() {
        let rows = vec![
            target("dev", TargetStatus::Succeeded, None),
            target("prod", TargetStatus::Running, None),
        ];
        assert_eq!(final_status(&[], &rows, &Input::Wake), None);
        let done = [outcome("prod", TargetStatus::Succeeded, "deployed")];
        assert_eq!(
            final_status(&done, &rows, &Input::Wake),
            Some((
                DeploymentStatus::Succeeded,
                "all 2 targets succeeded".into()
            ))
        );
        let failed = [outcome("prod", TargetStatus::RolledBack, "rolled back: x")];
        assert_eq!(
            final_status(&failed, &rows, &Input::Wake),
            Some((
                DeploymentStatus::Failed,
                "prod rolled_back: rolled back: x".into()
            ))
        );
        let abort = Input::Abort { reason: "r".into() };
        let aborted = [outcome("prod", TargetStatus::Aborted, "aborted: r")];
        assert_eq!(
            final_status(&aborted, &rows, &abort).map(|(s, _)| s),
            Some(DeploymentStatus::Aborted)
        );
    }

    #[test]
    fn the_deployment_is_paused_while_every_open_target_waits() {
        let rows = vec![
            target("dev", TargetStatus::Succeeded, None),
            target("prod-us", TargetStatus::Running, None),
            target("prod-eu", TargetStatus::Paused, None),
            target("prod-ap", TargetStatus::Pending, None),
        ];
        assert_eq!(active_status(&[], &rows), DeploymentStatus::Running);
        let mut waits = outcome("prod-us", TargetStatus::Paused, "waiting for approval");
        waits.state.phase = Some(Phase::BeforeDeployment);
        assert_eq!(active_status(&[waits], &rows), DeploymentStatus::Paused);
        let only_pending = vec![target("prod-ap", TargetStatus::Pending, None)];
        assert_eq!(active_status(&[], &only_pending), DeploymentStatus::Running);
    }

    #[test]
    fn messages_become_inputs() {
        let d = Uuid::now_v7();
        let id = Uuid::now_v7();
        let completed = SchedulerMessage::AnalysisCompleted(AnalysisCompleted {
            deployment_id: d,
            target: "prod".into(),
            step_index: 2,
            analysis_id: id,
            success: false,
            reason: Some("error rate 3.2 above 1".into()),
            inconclusive: false,
        });
        assert_eq!(
            Input::from_message(&completed),
            Input::Completed {
                id,
                success: false,
                reason: Some("error rate 3.2 above 1".into()),
                inconclusive: false,
            }
        );
        let abort = SchedulerMessage::AbortRequested(AbortRequested {
            deployment_id: d,
            requested_by: Some("ana".into()),
            reason: None,
        });
        assert_eq!(
            Input::from_message(&abort),
            Input::Abort {
                reason: "requested by ana".into()
            }
        );
        assert_eq!(
            Input::from_message(&wake_up(Uuid::now_v7(), d).payload),
            Input::Wake
        );
        let back = SchedulerMessage::RolloutDecided(ferry_bus::messages::RolloutDecided {
            deployment_id: d,
            target: "prod".into(),
            step_index: 1,
            decision: RolloutDecision::Back,
            decided_by: None,
            reason: None,
        });
        assert_eq!(
            Input::from_message(&back),
            Input::Rollout {
                target: "prod".into(),
                step_index: 1,
                forward: false,
                decided_by: "someone".into()
            }
        );
    }
}
