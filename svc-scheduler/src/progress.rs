//! The engine's durable record of a target's rollout, kept in the target row's `observed` JSON
//! next to its status, phase and step index: which ReplicaSets are new and stable and at what
//! size, what each gate and step waits for, and the readiness deadline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The phases of a target, stored in the target row's `phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for `dependsOn`.
    Pending,
    /// Running `beforeDeployment` gates.
    BeforeDeployment,
    /// Applying manifests and creating the new ReplicaSets.
    Deploying,
    /// Walking the strategy's steps (`step_index`).
    Steps,
    /// Taking the new version to 100% and removing the old one.
    Promoting,
    /// Running `afterDeployment` gates.
    AfterDeployment,
    /// Ended.
    Done,
}

impl Phase {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::BeforeDeployment => "before_deployment",
            Phase::Deploying => "deploying",
            Phase::Steps => "steps",
            Phase::Promoting => "promoting",
            Phase::AfterDeployment => "after_deployment",
            Phase::Done => "done",
        }
    }

    /// The phase a stored spelling names; no phase yet is `Pending`.
    pub fn parse(text: Option<&str>) -> Phase {
        match text {
            Some("before_deployment") => Phase::BeforeDeployment,
            Some("deploying") => Phase::Deploying,
            Some("steps") => Phase::Steps,
            Some("promoting") => Phase::Promoting,
            Some("after_deployment") => Phase::AfterDeployment,
            Some("done") => Phase::Done,
            _ => Phase::Pending,
        }
    }

    /// Whether the cluster holds this deployment's new version (a failure must roll back).
    pub fn has_deployed(self) -> bool {
        matches!(self, Phase::Steps | Phase::Promoting)
    }
}

/// One user `Deployment` of the target and its managed ReplicaSets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// The user's Deployment name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The new version's ReplicaSet.
    pub new_rs: String,
    /// Replicas the new ReplicaSet had before this deployment (0: this deployment created it).
    pub new_initial: i32,
    /// The desired replica count.
    pub replicas: i32,
    /// The running versions being replaced, with their sizes before the rollout.
    pub stable: Vec<Stable>,
}

/// A running version being replaced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stable {
    /// ReplicaSet name.
    pub name: String,
    /// Its size before the rollout, restored on rollback.
    pub replicas: i32,
}

/// What one waiting step (pause, approval, analysis, webhook) has started and observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitState {
    /// The step has been started (timer written, approval or request sent).
    pub started: bool,
    /// The step finished successfully.
    pub done: bool,
    /// A timed pause ends here.
    pub wait_until: Option<DateTime<Utc>>,
    /// The approval row, once created.
    pub approval_id: Option<Uuid>,
    /// When the approval expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The analysis or webhook request id.
    pub request_id: Option<Uuid>,
    /// The analysis or webhook result, once its completion arrived.
    pub outcome: Option<bool>,
    /// The completion's reason.
    pub outcome_reason: Option<String>,
    /// A person's roll-forward (`true`) or roll-back decision, for manual rollout modes.
    pub decision: Option<bool>,
    /// Who made `decision`.
    pub decided_by: Option<String>,
}

/// The engine's record of a target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Managed workloads, filled when the target deploys.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// No earlier version ran on the target: straight to 100%.
    #[serde(default)]
    pub first: bool,
    /// The current gates (before or after deployment), one per gate.
    #[serde(default)]
    pub gates: Vec<WaitState>,
    /// The current strategy step's wait.
    #[serde(default)]
    pub wait: WaitState,
    /// Pods must be ready by then, else the target rolls back.
    pub deadline: Option<DateTime<Utc>>,
    /// A reconcile tick is scheduled for then (ticks are not written twice).
    pub next_tick: Option<DateTime<Utc>>,
    /// The canary weight reached.
    pub weight: Option<u8>,
    /// Objects this deployment created on the target (they did not exist before), removed
    /// again when the target rolls back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<crate::objects::ObjectRef>,
    /// Where traffic goes while the rollout runs (blue/green Services, Istio or SMI objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<crate::routing::Routing>,
    /// Temporary preview addresses by Service name (`exposeServices`), shown by the API.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub preview: std::collections::BTreeMap<String, crate::expose::Preview>,
}

impl Progress {
    /// The record stored in `observed`; an empty or foreign value starts afresh.
    pub fn from_json(value: &serde_json::Value) -> Progress {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    /// The JSON stored in `observed`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The wait with this request id, to record a completion in.
    pub fn wait_for_request(&mut self, id: Uuid) -> Option<&mut WaitState> {
        if self.wait.request_id == Some(id) {
            return Some(&mut self.wait);
        }
        self.gates.iter_mut().find(|g| g.request_id == Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_round_trip_and_progress_survives_json() {
        for p in [
            Phase::Pending,
            Phase::BeforeDeployment,
            Phase::Deploying,
            Phase::Steps,
            Phase::Promoting,
            Phase::AfterDeployment,
            Phase::Done,
        ] {
            assert_eq!(Phase::parse(Some(p.as_str())), p);
        }
        assert_eq!(Phase::parse(None), Phase::Pending);
        let mut p = Progress::from_json(&serde_json::json!({}));
        assert_eq!(p, Progress::default());
        let id = Uuid::now_v7();
        p.gates.push(WaitState {
            request_id: Some(id),
            ..WaitState::default()
        });
        p.wait_for_request(id).unwrap().outcome = Some(true);
        let back = Progress::from_json(&p.to_json());
        assert_eq!(back.gates[0].outcome, Some(true));
        assert!(back.clone().wait_for_request(Uuid::now_v7()).is_none());
    }
}
