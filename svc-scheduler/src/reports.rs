//! What a commit reports besides the deployment's state: the scheduler's automatic actions go to
//! the audit log in the commit's own transaction (actor `scheduler`), and what operators count
//! is gathered here and observed in [`SchedulerMetrics`] only once the transaction lands.

use crate::EngineError;
use crate::metrics::SchedulerMetrics;
use crate::outcome::{Outcome, Report};
use chrono::Utc;
use ferry_store::audit::{self, NewAuditEntry};
use ferry_store::events;
use ferry_store::{DeploymentId, TenantId};
use sqlx::PgConnection;

/// The audit log's actor for what the scheduler does on its own.
pub const ACTOR: &str = "scheduler";

/// The audit action of a target rolled back without a person asking.
pub const ROLLBACK: &str = "target.rollback";

/// The audit action of an approval that expired undecided.
pub const APPROVAL_EXPIRE: &str = "approval.expire";

/// What one commit counts, observed after it lands.
#[derive(Debug, Default)]
pub(crate) struct Counted {
    /// The deployment's first moving pass.
    pub starts: bool,
    /// Final statuses of deployments that ended (this one, and any it superseded).
    pub ended: Vec<String>,
    /// Canary steps that ended: kind, result, seconds.
    steps: Vec<(&'static str, String, f64)>,
    /// Approvals decided or expired: decision, seconds.
    approvals: Vec<(&'static str, f64)>,
    /// Automatic actions by name.
    automatic: Vec<&'static str>,
}

impl Counted {
    /// Adds everything to `metrics`.
    pub(crate) fn observe(self, metrics: &SchedulerMetrics) {
        if self.starts {
            metrics.started();
        }
        for outcome in &self.ended {
            metrics.finished(outcome);
        }
        for (kind, result, seconds) in &self.steps {
            metrics.step_ended(kind, result, *seconds);
        }
        for (decision, seconds) in &self.approvals {
            metrics.approval_waited(decision, *seconds);
        }
        for action in &self.automatic {
            metrics.automatic(action);
        }
    }
}

/// Audits the outcome's automatic actions in the commit's transaction and gathers what it
/// counts. Call before the outcome's step rows are written (a step's start is read from them).
pub(crate) async fn record(
    tx: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    outcome: &Outcome,
    counted: &mut Counted,
) -> Result<(), EngineError> {
    for report in &outcome.reports {
        match report {
            Report::StepEnded {
                step_index,
                kind,
                result,
            } => {
                let started =
                    events::step_started_at(tx, tenant, deployment, &outcome.target, *step_index)
                        .await?;
                if let Some(started) = started {
                    let seconds = (Utc::now() - started).num_milliseconds().max(0) as f64 / 1e3;
                    counted.steps.push((kind, result.to_string(), seconds));
                }
            }
            Report::ApprovalDecided { approved, waited } => {
                let decision = if *approved { "approved" } else { "rejected" };
                counted.approvals.push((decision, waited.as_secs_f64()));
            }
            Report::ApprovalExpired {
                approval_id,
                step_key,
                waited,
            } => {
                counted.approvals.push(("expired", waited.as_secs_f64()));
                let details = serde_json::json!({
                    "target": outcome.target,
                    "approvalId": approval_id,
                    "stepKey": step_key,
                    "waitedSecs": waited.as_secs(),
                });
                audit(tx, tenant, deployment, APPROVAL_EXPIRE, details).await?;
                counted.automatic.push(APPROVAL_EXPIRE);
            }
            Report::RolledBack { reason } => {
                let details = serde_json::json!({"target": outcome.target, "reason": reason});
                audit(tx, tenant, deployment, ROLLBACK, details).await?;
                counted.automatic.push(ROLLBACK);
            }
        }
    }
    Ok(())
}

async fn audit(
    tx: &mut PgConnection,
    tenant: TenantId,
    deployment: DeploymentId,
    action: &str,
    details: serde_json::Value,
) -> Result<(), EngineError> {
    let entry = NewAuditEntry {
        actor: ACTOR.into(),
        action: action.into(),
        resource_kind: "deployment".into(),
        resource_id: deployment.to_string(),
        details,
    };
    audit::append(tx, tenant, &entry).await?;
    Ok(())
}
