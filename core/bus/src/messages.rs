//! Ferry's messages: one serde-tagged enum per consumer, with versioned kinds.
//!
//! A kind never changes meaning once released: a new shape is a new variant (`….v2`) that
//! consumers learn before producers send it, and the old variant stays until no producer writes
//! it. Payloads carry ids and the few facts the consumer cannot look up; consumers read the rest
//! from the database (the message says *that* something happened, the row says *what is now*).
//!
//! Each message knows where it goes ([`Message::route`]): scheduler, canary and webhook work goes
//! to `ferry.work` with the service as routing key; [`DeploymentEvent`]s go to `ferry.events` with
//! `tenant.deployment.kind`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::topology::{Exchange, WorkQueue};

/// Where a message is published: exchange (by role, the prefix is applied when publishing) and
/// routing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The exchange.
    pub exchange: Exchange,
    /// The routing key.
    pub routing_key: String,
}

impl Route {
    /// Work for a service's queue.
    pub fn work(queue: WorkQueue) -> Route {
        Route {
            exchange: Exchange::Work,
            routing_key: queue.service().to_string(),
        }
    }

    /// A request for the hub replica `replica_id` (which owns the agent's connection).
    pub fn hub(replica_id: &str) -> Route {
        Route {
            exchange: Exchange::Hub,
            routing_key: replica_id.to_string(),
        }
    }

    /// A deployment event: routing key `tenant.deployment.kind` on the topic exchange.
    pub fn event(tenant_id: Uuid, deployment_id: Uuid, event: &str) -> Route {
        Route {
            exchange: Exchange::Events,
            routing_key: event_routing_key(tenant_id, deployment_id, event),
        }
    }
}

/// The `ferry.events` routing key of an event.
pub fn event_routing_key(tenant_id: Uuid, deployment_id: Uuid, event: &str) -> String {
    format!("{tenant_id}.{deployment_id}.{event}")
}

/// A message type the bus can carry: a serde-tagged enum whose tag is [`Message::kind`].
pub trait Message:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// The versioned kind, equal to the serde tag, e.g. `deployment.started.v1`.
    fn kind(&self) -> &'static str;

    /// Where this message is published.
    fn route(&self, tenant_id: Uuid) -> Route;
}

/// A new deployment was stored; the scheduler plans and starts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStarted {
    /// The deployment.
    pub deployment_id: Uuid,
}

/// Someone approved or rejected a manual approval (a `pause: untilApproved` step, or a
/// `beforeDeployment` approval constraint when `step_index` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecided {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The target the approval gates.
    pub target: String,
    /// The strategy step waiting for approval; `None` for a constraint before the target starts.
    pub step_index: Option<u32>,
    /// Approved (go on) or rejected (roll the target back).
    pub approved: bool,
    /// Who decided (user or client id), for the audit trail.
    pub decided_by: Option<String>,
    /// The reason given, if any.
    pub reason: Option<String>,
}

/// A user asked to abort a deployment: stop every target and roll back those in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortRequested {
    /// The deployment.
    pub deployment_id: Uuid,
    /// Who asked.
    pub requested_by: Option<String>,
    /// The reason given, if any.
    pub reason: Option<String>,
}

/// A user asked to roll back a deployment, or one target of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequested {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The target to roll back; `None` for every target.
    pub target: Option<String>,
    /// Who asked.
    pub requested_by: Option<String>,
    /// The reason given, if any.
    pub reason: Option<String>,
}

/// A user asked to end a timed pause early.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipPauseRequested {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The paused target.
    pub target: String,
    /// The pause step.
    pub step_index: u32,
}

/// Which way a rollout continues after a manual judgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutDecision {
    /// Continue with the next step.
    Forward,
    /// Roll the target back.
    Back,
}

/// A manual roll-forward or roll-back decision for a target waiting on one (for example after an
/// analysis that asked for a judgement).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutDecided {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The target.
    pub target: String,
    /// The step the target waits at.
    pub step_index: u32,
    /// Forward or back.
    pub decision: RolloutDecision,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The reason given, if any.
    pub reason: Option<String>,
}

/// svc-canary finished an analysis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisCompleted {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The target analysed.
    pub target: String,
    /// The analysis step.
    pub step_index: u32,
    /// The analysis run (the id in [`AnalysisRequested`]).
    pub analysis_id: Uuid,
    /// Whether the canary passed.
    pub success: bool,
    /// Why it failed (or a summary), for the user.
    pub reason: Option<String>,
    /// The comparison judge could not decide (`success` is false): a person decides, as in a
    /// manual rollout mode, whatever the step's modes say.
    #[serde(default)]
    pub inconclusive: bool,
}

/// svc-webhook finished a webhook (its call and callback, or its failure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCompleted {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The target, for webhooks run by a target's step or constraint.
    pub target: Option<String>,
    /// The `runWebhook` step, when the webhook is a step.
    pub step_index: Option<u32>,
    /// The webhook run (the id in [`WebhookRequested`]).
    pub webhook_id: Uuid,
    /// Whether the webhook reported success.
    pub success: bool,
    /// Why it failed, for the user.
    pub reason: Option<String>,
}

/// svc-canary: run the analysis of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisRequested {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The target to analyse.
    pub target: String,
    /// The analysis step.
    pub step_index: u32,
    /// The analysis run, echoed in [`AnalysisCompleted`].
    pub analysis_id: Uuid,
    /// Which step of the target: `step:<i>` (strategy), `before:<i>` or `after:<i>` (gates).
    #[serde(default)]
    pub step_key: String,
    /// The target's account (agent identifier of its cluster).
    #[serde(default)]
    pub account: String,
    /// The `{{ferry.X}}` variables known when the analysis starts (`applicationName`,
    /// `deploymentId`, `environmentName`, `accountName`, `namespace`, `replicaSetName`, …); the
    /// time-window variables are the analysis service's to fill per run.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The step's context, merged file < step < caller.
    #[serde(default)]
    pub context: BTreeMap<String, String>,
}

/// svc-webhook: call a webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequested {
    /// The deployment.
    pub deployment_id: Uuid,
    /// The target, for webhooks run by a target's step or constraint.
    pub target: Option<String>,
    /// The `runWebhook` step, when the webhook is a step.
    pub step_index: Option<u32>,
    /// The webhook run, echoed in [`WebhookCompleted`].
    pub webhook_id: Uuid,
    /// The webhook's name in the deploy file.
    pub webhook_name: String,
    /// Which step of the target: `step:<i>` (strategy), `before:<i>` or `after:<i>` (gates).
    #[serde(default)]
    pub step_key: String,
    /// The target's account (agent identifier of its cluster).
    #[serde(default)]
    pub account: String,
    /// The call to make, rendered; `{{secrets.X}}` references are left for the sender to
    /// resolve, so no secret's plaintext is ever written to the outbox or a queue.
    #[serde(default)]
    pub call: WebhookCall,
    /// The step's context, merged file < step < caller (what the templates were rendered with).
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// When the scheduler stops waiting (the durable timer of the step): svc-webhook makes no
    /// attempt after it. `None` from older schedulers.
    #[serde(default)]
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
}

/// `networkMode` of a webhook call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NetworkMode {
    /// From the control plane.
    #[default]
    Direct,
    /// Through an agent into a private network.
    RemoteNetworkAgent,
}

/// A rendered webhook call: everything svc-webhook sends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCall {
    /// HTTP method, upper case.
    pub method: String,
    /// The URI.
    pub uri: String,
    /// Headers in order, `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
    /// Direct or through an agent.
    pub network_mode: NetworkMode,
    /// The agent to send through when `network_mode` is `remoteNetworkAgent`.
    pub agent_identifier: Option<String>,
    /// Retries on connection failure or non-2xx, with backoff.
    pub retry_count: u32,
    /// The scheduler waits for the callback (`callback_uri`), not for the HTTP answer: the
    /// sender reports only a failure to deliver. `None` when callbacks are disabled: the
    /// sender reports success or failure of the call itself.
    pub callback_uri: Option<String>,
}

/// What svc-scheduler consumes from its work queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload")]
pub enum SchedulerMessage {
    /// See [`DeploymentStarted`].
    #[serde(rename = "deployment.started.v1")]
    DeploymentStarted(DeploymentStarted),
    /// See [`ApprovalDecided`].
    #[serde(rename = "approval.decided.v1")]
    ApprovalDecided(ApprovalDecided),
    /// See [`AbortRequested`].
    #[serde(rename = "deployment.abort_requested.v1")]
    AbortRequested(AbortRequested),
    /// See [`RollbackRequested`].
    #[serde(rename = "deployment.rollback_requested.v1")]
    RollbackRequested(RollbackRequested),
    /// See [`SkipPauseRequested`].
    #[serde(rename = "pause.skip_requested.v1")]
    SkipPauseRequested(SkipPauseRequested),
    /// See [`RolloutDecided`].
    #[serde(rename = "rollout.decided.v1")]
    RolloutDecided(RolloutDecided),
    /// See [`AnalysisCompleted`].
    #[serde(rename = "analysis.completed.v1")]
    AnalysisCompleted(AnalysisCompleted),
    /// See [`WebhookCompleted`].
    #[serde(rename = "webhook.completed.v1")]
    WebhookCompleted(WebhookCompleted),
}

impl SchedulerMessage {
    /// The deployment the message is about (the scheduler serialises work per deployment).
    pub fn deployment_id(&self) -> Uuid {
        match self {
            SchedulerMessage::DeploymentStarted(m) => m.deployment_id,
            SchedulerMessage::ApprovalDecided(m) => m.deployment_id,
            SchedulerMessage::AbortRequested(m) => m.deployment_id,
            SchedulerMessage::RollbackRequested(m) => m.deployment_id,
            SchedulerMessage::SkipPauseRequested(m) => m.deployment_id,
            SchedulerMessage::RolloutDecided(m) => m.deployment_id,
            SchedulerMessage::AnalysisCompleted(m) => m.deployment_id,
            SchedulerMessage::WebhookCompleted(m) => m.deployment_id,
        }
    }
}

impl Message for SchedulerMessage {
    fn kind(&self) -> &'static str {
        match self {
            SchedulerMessage::DeploymentStarted(_) => "deployment.started.v1",
            SchedulerMessage::ApprovalDecided(_) => "approval.decided.v1",
            SchedulerMessage::AbortRequested(_) => "deployment.abort_requested.v1",
            SchedulerMessage::RollbackRequested(_) => "deployment.rollback_requested.v1",
            SchedulerMessage::SkipPauseRequested(_) => "pause.skip_requested.v1",
            SchedulerMessage::RolloutDecided(_) => "rollout.decided.v1",
            SchedulerMessage::AnalysisCompleted(_) => "analysis.completed.v1",
            SchedulerMessage::WebhookCompleted(_) => "webhook.completed.v1",
        }
    }

    fn route(&self, _tenant_id: Uuid) -> Route {
        Route::work(WorkQueue::Scheduler)
    }
}

/// What svc-canary consumes from its work queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload")]
pub enum CanaryMessage {
    /// See [`AnalysisRequested`].
    #[serde(rename = "analysis.requested.v1")]
    AnalysisRequested(AnalysisRequested),
}

impl Message for CanaryMessage {
    fn kind(&self) -> &'static str {
        match self {
            CanaryMessage::AnalysisRequested(_) => "analysis.requested.v1",
        }
    }

    fn route(&self, _tenant_id: Uuid) -> Route {
        Route::work(WorkQueue::Canary)
    }
}

/// What svc-webhook consumes from its work queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload")]
pub enum WebhookMessage {
    /// See [`WebhookRequested`].
    #[serde(rename = "webhook.requested.v1")]
    WebhookRequested(WebhookRequested),
}

impl Message for WebhookMessage {
    fn kind(&self) -> &'static str {
        match self {
            WebhookMessage::WebhookRequested(_) => "webhook.requested.v1",
        }
    }

    fn route(&self, _tenant_id: Uuid) -> Route {
        Route::work(WorkQueue::Webhook)
    }
}

/// The lifecycle state of a deployment or of one of its targets, as events report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for constraints or for its turn.
    Pending,
    /// Steps are being applied.
    Running,
    /// Waiting at a pause, an approval, an analysis or a webhook.
    Paused,
    /// Finished successfully.
    Succeeded,
    /// A step failed; the target was (or is being) rolled back.
    Failed,
    /// Aborted by a user.
    Aborted,
    /// Rolled back at a user's request.
    RolledBack,
}

/// Deployment events on `ferry.events`, streamed to CLI and UI and counted in metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload")]
pub enum DeploymentEvent {
    /// The deployment as a whole changed state.
    #[serde(rename = "event.deployment_status.v1")]
    DeploymentStatus {
        /// The deployment.
        deployment_id: Uuid,
        /// Its new state.
        status: Status,
        /// Why, when it failed or was stopped.
        reason: Option<String>,
    },
    /// One target changed state.
    #[serde(rename = "event.target_status.v1")]
    TargetStatus {
        /// The deployment.
        deployment_id: Uuid,
        /// The target.
        target: String,
        /// Its new state.
        status: Status,
        /// Why, when it failed or was stopped.
        reason: Option<String>,
    },
    /// A target moved to another strategy step.
    #[serde(rename = "event.step.v1")]
    Step {
        /// The deployment.
        deployment_id: Uuid,
        /// The target.
        target: String,
        /// The step now current.
        step_index: u32,
        /// The canary traffic weight after the step, when the strategy has one.
        weight: Option<u8>,
    },
}

impl DeploymentEvent {
    /// The deployment the event is about.
    pub fn deployment_id(&self) -> Uuid {
        match self {
            DeploymentEvent::DeploymentStatus { deployment_id, .. }
            | DeploymentEvent::TargetStatus { deployment_id, .. }
            | DeploymentEvent::Step { deployment_id, .. } => *deployment_id,
        }
    }

    /// The last word of the routing key, for subscribers binding `tenant.*.<word>`.
    pub fn routing_word(&self) -> &'static str {
        match self {
            DeploymentEvent::DeploymentStatus { .. } => "deployment_status",
            DeploymentEvent::TargetStatus { .. } => "target_status",
            DeploymentEvent::Step { .. } => "step",
        }
    }
}

impl Message for DeploymentEvent {
    fn kind(&self) -> &'static str {
        match self {
            DeploymentEvent::DeploymentStatus { .. } => "event.deployment_status.v1",
            DeploymentEvent::TargetStatus { .. } => "event.target_status.v1",
            DeploymentEvent::Step { .. } => "event.step.v1",
        }
    }

    fn route(&self, tenant_id: Uuid) -> Route {
        Route::event(tenant_id, self.deployment_id(), self.routing_word())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde tag and `kind()` must agree, or the kind a consumer logs and counts would not be
    /// the kind on the wire.
    fn assert_tag_is_kind<M: Message>(message: M) {
        let value = serde_json::to_value(&message).unwrap();
        assert_eq!(value["kind"], message.kind(), "{message:?}");
        let back: M = serde_json::from_value(value).unwrap();
        assert_eq!(back.kind(), message.kind());
    }

    #[test]
    fn every_kind_matches_its_tag() {
        let d = Uuid::new_v4();
        let id = Uuid::new_v4();
        let t = || "prod".to_string();
        for m in [
            SchedulerMessage::DeploymentStarted(DeploymentStarted { deployment_id: d }),
            SchedulerMessage::ApprovalDecided(ApprovalDecided {
                deployment_id: d,
                target: t(),
                step_index: Some(2),
                approved: true,
                decided_by: Some("ana".into()),
                reason: None,
            }),
            SchedulerMessage::AbortRequested(AbortRequested {
                deployment_id: d,
                requested_by: None,
                reason: Some("bad build".into()),
            }),
            SchedulerMessage::RollbackRequested(RollbackRequested {
                deployment_id: d,
                target: None,
                requested_by: None,
                reason: None,
            }),
            SchedulerMessage::SkipPauseRequested(SkipPauseRequested {
                deployment_id: d,
                target: t(),
                step_index: 1,
            }),
            SchedulerMessage::RolloutDecided(RolloutDecided {
                deployment_id: d,
                target: t(),
                step_index: 3,
                decision: RolloutDecision::Back,
                decided_by: None,
                reason: None,
            }),
            SchedulerMessage::AnalysisCompleted(AnalysisCompleted {
                deployment_id: d,
                target: t(),
                step_index: 4,
                analysis_id: id,
                success: false,
                reason: Some("error rate 7% > 1%".into()),
                inconclusive: false,
            }),
            SchedulerMessage::WebhookCompleted(WebhookCompleted {
                deployment_id: d,
                target: Some(t()),
                step_index: None,
                webhook_id: id,
                success: true,
                reason: None,
            }),
        ] {
            assert_eq!(m.deployment_id(), d);
            assert_eq!(m.route(id), Route::work(WorkQueue::Scheduler));
            assert_tag_is_kind(m);
        }
        assert_tag_is_kind(CanaryMessage::AnalysisRequested(AnalysisRequested {
            deployment_id: d,
            target: t(),
            step_index: 4,
            analysis_id: id,
            step_key: "step:4".into(),
            account: "prod-cluster".into(),
            variables: BTreeMap::from([("replicaSetName".into(), "web-1".into())]),
            context: BTreeMap::new(),
        }));
        assert_tag_is_kind(WebhookMessage::WebhookRequested(WebhookRequested {
            deployment_id: d,
            target: None,
            step_index: None,
            webhook_id: id,
            webhook_name: "smoke".into(),
            step_key: "before:0".into(),
            account: "prod-cluster".into(),
            call: WebhookCall::default(),
            context: BTreeMap::new(),
            deadline: None,
        }));
        for e in [
            DeploymentEvent::DeploymentStatus {
                deployment_id: d,
                status: Status::Running,
                reason: None,
            },
            DeploymentEvent::TargetStatus {
                deployment_id: d,
                target: t(),
                status: Status::RolledBack,
                reason: None,
            },
            DeploymentEvent::Step {
                deployment_id: d,
                target: t(),
                step_index: 0,
                weight: Some(25),
            },
        ] {
            assert_tag_is_kind(e);
        }
    }

    /// Fields added to a released kind carry defaults, so a message written before they existed
    /// still decodes (a compatible extension, not a new meaning).
    #[test]
    fn requests_written_before_the_rendered_fields_still_decode() {
        let d = Uuid::new_v4();
        let old = serde_json::json!({"kind": "webhook.requested.v1", "payload": {
            "deployment_id": d, "target": "prod", "step_index": 0,
            "webhook_id": d, "webhook_name": "smoke"}});
        let WebhookMessage::WebhookRequested(m) = serde_json::from_value(old).unwrap();
        assert_eq!((m.call, m.step_key.as_str()), (WebhookCall::default(), ""));
        let old = serde_json::json!({"kind": "analysis.requested.v1", "payload": {
            "deployment_id": d, "target": "prod", "step_index": 0, "analysis_id": d}});
        let CanaryMessage::AnalysisRequested(m) = serde_json::from_value(old).unwrap();
        assert!(m.variables.is_empty() && m.context.is_empty());
    }

    #[test]
    fn events_route_by_tenant_deployment_and_kind() {
        let tenant = Uuid::new_v4();
        let d = Uuid::new_v4();
        let event = DeploymentEvent::TargetStatus {
            deployment_id: d,
            target: "prod".into(),
            status: Status::Succeeded,
            reason: None,
        };
        let route = event.route(tenant);
        assert_eq!(route.exchange, Exchange::Events);
        assert_eq!(route.routing_key, format!("{tenant}.{d}.target_status"));
    }
}
