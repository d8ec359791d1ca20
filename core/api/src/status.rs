//! Where deployments, targets, steps and approvals are in their lives, as the API reports them
//! and the store keeps them.

use crate::wire_enum;

wire_enum! {
    /// Where a deployment is in its life.
    #[derive(utoipa::ToSchema)]
    pub enum DeploymentStatus {
        /// Queued behind the application's active deployment (`enqueueOne`).
        Waiting = "waiting",
        Running = "running",
        Paused = "paused",
        Succeeded = "succeeded",
        Failed = "failed",
        Aborted = "aborted",
        RolledBack = "rolled_back",
        /// A newer deployment of the same application was queued while this one waited.
        Superseded = "superseded",
    }
}

impl DeploymentStatus {
    /// Holds the application's single in-flight slot.
    pub fn is_active(self) -> bool {
        matches!(self, DeploymentStatus::Running | DeploymentStatus::Paused)
    }

    /// Ended; no further status change is accepted.
    pub fn is_terminal(self) -> bool {
        !self.is_active() && self != DeploymentStatus::Waiting
    }
}

wire_enum! {
    /// Where a target is in its rollout.
    #[derive(utoipa::ToSchema)]
    pub enum TargetStatus {
        /// Not started: waiting for its constraints (dependsOn, ...).
        Pending = "pending",
        Running = "running",
        Paused = "paused",
        RollingBack = "rolling_back",
        Succeeded = "succeeded",
        Failed = "failed",
        RolledBack = "rolled_back",
        Aborted = "aborted",
        /// Never ran because a target it depends on failed or the deployment was aborted.
        Skipped = "skipped",
    }
}

impl TargetStatus {
    /// Ended; the target will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TargetStatus::Succeeded
                | TargetStatus::Failed
                | TargetStatus::RolledBack
                | TargetStatus::Aborted
                | TargetStatus::Skipped
        )
    }
}

wire_enum! {
    /// Where the engine is within a target's rollout (stored in the target row's `phase`, whose
    /// CHECK constraint keeps it to these spellings; no phase yet is `pending`).
    #[derive(utoipa::ToSchema)]
    pub enum TargetPhase {
        /// Waiting for `dependsOn`.
        Pending = "pending",
        /// Running `beforeDeployment` gates.
        BeforeDeployment = "before_deployment",
        /// Applying manifests and creating the new ReplicaSets.
        Deploying = "deploying",
        /// Walking the strategy's steps (`step_index`).
        Steps = "steps",
        /// Taking the new version to 100% and removing the old one.
        Promoting = "promoting",
        /// Running `afterDeployment` gates.
        AfterDeployment = "after_deployment",
        /// Ended.
        Done = "done",
    }
}

impl TargetPhase {
    /// Whether the cluster holds the deployment's new version (a failure must roll back).
    pub fn has_deployed(self) -> bool {
        matches!(self, TargetPhase::Steps | TargetPhase::Promoting)
    }
}

wire_enum! {
    /// What happened to a step.
    #[derive(utoipa::ToSchema)]
    pub enum StepStatus {
        Started = "started",
        /// Moved on within the step, e.g. another canary pod became ready.
        Progressing = "progressing",
        /// Waiting on a pause, approval, analysis or webhook.
        Waiting = "waiting",
        Succeeded = "succeeded",
        Failed = "failed",
        Skipped = "skipped",
        RolledBack = "rolled_back",
        Aborted = "aborted",
    }
}

wire_enum! {
    /// An approver's answer.
    #[derive(utoipa::ToSchema)]
    pub enum Decision {
        Approve = "approve",
        Reject = "reject",
    }
}

#[cfg(feature = "sqlx")]
mod stored {
    use super::{Decision, DeploymentStatus, StepStatus, TargetPhase, TargetStatus};
    use crate::sqlx_text;

    sqlx_text!(TargetPhase);
    sqlx_text!(DeploymentStatus);
    sqlx_text!(TargetStatus);
    sqlx_text!(StepStatus);
    sqlx_text!(Decision);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text_and_json_and_refuse_unknown_text() {
        for status in DeploymentStatus::ALL {
            assert_eq!(
                status.as_str().parse::<DeploymentStatus>().unwrap(),
                *status
            );
            let json = serde_json::to_string(status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
        }
        for phase in TargetPhase::ALL {
            assert_eq!(phase.as_str().parse::<TargetPhase>().unwrap(), *phase);
        }
        assert!("canarying".parse::<TargetPhase>().is_err());
        for status in TargetStatus::ALL {
            assert_eq!(status.to_string().parse::<TargetStatus>().unwrap(), *status);
        }
        let unknown = "paused_forever".parse::<TargetStatus>().unwrap_err();
        assert_eq!(
            unknown.to_string(),
            r#"unknown TargetStatus "paused_forever""#
        );
        assert!(serde_json::from_str::<StepStatus>("\"nope\"").is_err());
    }

    #[test]
    fn only_ended_statuses_are_terminal() {
        let ended: Vec<_> = DeploymentStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            ended,
            [
                &DeploymentStatus::Succeeded,
                &DeploymentStatus::Failed,
                &DeploymentStatus::Aborted,
                &DeploymentStatus::RolledBack,
                &DeploymentStatus::Superseded
            ]
        );
        assert!(!TargetStatus::RollingBack.is_terminal());
        assert!(TargetStatus::Skipped.is_terminal());
    }
}
