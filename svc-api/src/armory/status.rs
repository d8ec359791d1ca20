//! `GET /pipelines/{id}` and `GET /deployments/{id}`: a Ferry deployment in Armory's shapes.
//!
//! A pipeline is the deployment; its `steps` are, per target in plan order, the target's
//! `beforeDeployment` constraints, its `deployment` step and its `afterDeployment` constraints
//! (`constraintFor` names the target), linked by `dependsOn` refs the way the targets'
//! `dependsOn` links them. A constraint's own progress is known while its target runs that
//! phase (the scheduler's gate record); once the target ended unsuccessfully, constraints whose
//! outcome is not recorded show `CANCELLED`. A deployment step's id is
//! `<deployment id>.<target index>`, which `GET /deployments/{id}` reads.

use super::ArmoryError;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ferry_deploy::{Pause, Plan, Step, Strategy, TargetPlan};
use ferry_store::approvals::{self, Approval};
use ferry_store::deployments::{self, DeploymentDetail, DeploymentStatus};
use ferry_store::targets::{Target, TargetPhase, TargetStatus};
use ferry_store::{DeploymentId, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Armory's workflow status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkflowStatus {
    /// Not started yet (queued, or waiting for what it depends on).
    NotStarted,
    Running,
    /// A timed pause.
    Paused,
    /// Waiting for a manual approval.
    AwaitingApproval,
    Succeeded,
    /// Failed or rolled back.
    Failed,
    /// Aborted, superseded in the queue, or never run because of another's failure.
    Cancelled,
}

/// A deployment as Armory's pipeline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatusResponse {
    /// The deployment's id.
    pub id: String,
    pub application: String,
    pub description: String,
    pub status: WorkflowStatus,
    /// RFC 3339; empty before the deployment started.
    pub started_at_iso8601: String,
    /// RFC 3339; empty until it ended.
    pub completed_at_iso8601: String,
    /// The credential or person who started it.
    pub initiated_by: String,
    /// The deployment's context variables.
    pub context: BTreeMap<String, String>,
    /// The targets.
    pub environments: Vec<Environment>,
    pub steps: Vec<PipelineStep>,
}

/// One target, as Armory's environment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Environment {
    /// The target's name.
    pub name: String,
    /// Its agent.
    pub account: String,
    pub namespace: String,
}

/// One step of a pipeline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStep {
    pub status: WorkflowStatus,
    /// This step's reference, named by others' `dependsOn`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Refs of the steps that must succeed first.
    pub depends_on: Vec<String>,
    /// `deployment`, `pause`, `webhook`, `analysis` or `exposeServices`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For a constraint, the target it is a constraint of; empty for a deployment step.
    pub constraint_for: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<NamedStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSummary>,
}

/// A deployment step's target.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStep {
    /// `GET /deployments/{id}` reads it.
    pub id: String,
    /// The target's name.
    pub environment: String,
    /// Strategy steps done.
    pub step: u32,
    /// Strategy steps in all.
    pub total_steps: u32,
}

/// A pause constraint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub until_approved: bool,
}

/// A webhook constraint.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamedStep {
    pub name: String,
}

/// An analysis constraint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSummary {
    /// Query names.
    pub queries: Vec<String>,
    pub number_of_judgment_runs: u32,
}

/// One target of a deployment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatusResponse {
    /// `<deployment id>.<target index>`.
    pub id: String,
    /// The deployment (`GET /pipelines/{id}`).
    pub pipeline_id: String,
    pub application: String,
    /// The target's name.
    pub environment: String,
    pub account: String,
    pub namespace: String,
    pub status: WorkflowStatus,
    /// `canary`, `blueGreen` or `direct`.
    pub strategy: String,
    pub step: u32,
    pub total_steps: u32,
    /// Ferry's own status and phase of the target, and why.
    pub ferry_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<TargetPhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started_at_iso8601: String,
    pub completed_at_iso8601: String,
}

/// The deployment in Armory's pipeline shape.
#[utoipa::path(get, path = "/pipelines/{id}", tag = "armory",
    params(("id" = String, Path, description = "Deployment id (the start's pipelineId)")),
    responses(
        (status = 200, description = "The pipeline", body = PipelineStatusResponse),
        (status = 401, description = "No valid token", body = super::ArmoryErrorBody),
        (status = 403, description = "Needs a role that may read", body = super::ArmoryErrorBody),
        (status = 404, description = "No such deployment in this tenant", body = super::ArmoryErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn pipeline(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    id: Result<ApiPath<DeploymentId>, ApiError>,
) -> Result<Response, ArmoryError> {
    let principal = super::principal(principal)?;
    principal.can_read()?;
    let ApiPath(id) = id?;
    let (detail, plan, pending) = load(&state, &principal, id).await?;
    Ok(Json(to_pipeline(&detail, &plan, &pending)).into_response())
}

/// One target of a deployment (the id of a pipeline's deployment step).
#[utoipa::path(get, path = "/deployments/{id}", tag = "armory",
    params(("id" = String, Path, description = "A deployment step's id: <deployment id>.<target index>")),
    responses(
        (status = 200, description = "The target", body = DeploymentStatusResponse),
        (status = 400, description = "Not a deployment step's id", body = super::ArmoryErrorBody),
        (status = 401, description = "No valid token", body = super::ArmoryErrorBody),
        (status = 403, description = "Needs a role that may read", body = super::ArmoryErrorBody),
        (status = 404, description = "No such deployment or target in this tenant", body = super::ArmoryErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn deployment(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    id: Result<ApiPath<String>, ApiError>,
) -> Result<Response, ArmoryError> {
    let principal = super::principal(principal)?;
    principal.can_read()?;
    let ApiPath(id) = id?;
    let (deployment, index) = parse_step_id(&id)?;
    let (detail, plan, pending) = load(&state, &principal, deployment).await?;
    let response = to_deployment(&detail, &plan, &pending, index)
        .ok_or_else(|| ApiError::Store(StoreError::not_found("target")))?;
    Ok(Json(response).into_response())
}

/// Splits `<deployment id>.<target index>`.
fn parse_step_id(id: &str) -> Result<(DeploymentId, usize), ApiError> {
    let invalid = || {
        ApiError::BadRequest(format!(
            "{id:?} is not a deployment step's id (<deployment id>.<target index>, from \
             GET /pipelines/{{id}})"
        ))
    };
    let (deployment, index) = id.rsplit_once('.').ok_or_else(invalid)?;
    let deployment = deployment.parse().map_err(|_| invalid())?;
    let index = index.parse().map_err(|_| invalid())?;
    Ok((deployment, index))
}

async fn load(
    state: &AppState,
    principal: &Principal,
    id: DeploymentId,
) -> Result<(DeploymentDetail, Plan, Vec<Approval>), ApiError> {
    let detail = deployments::detail(&state.store, principal.tenant, id).await?;
    let plan = deployments::plan(&state.store, principal.tenant, id).await?;
    let plan = Plan::from_stored(&plan)
        .map_err(|e| ApiError::Conflict(format!("the stored plan cannot be read: {e}")))?;
    let pending = approvals::list_pending(&state.store, principal.tenant, Some(id)).await?;
    Ok((detail, plan, pending))
}

fn iso(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// The deployment's status.
fn pipeline_status(detail: &DeploymentDetail, pending: &[Approval]) -> WorkflowStatus {
    match detail.deployment.status {
        DeploymentStatus::Waiting => WorkflowStatus::NotStarted,
        DeploymentStatus::Running | DeploymentStatus::Paused => {
            if !pending.is_empty() {
                WorkflowStatus::AwaitingApproval
            } else if detail.deployment.status == DeploymentStatus::Paused
                || detail
                    .targets
                    .iter()
                    .any(|t| t.status == TargetStatus::Paused)
            {
                WorkflowStatus::Paused
            } else {
                WorkflowStatus::Running
            }
        }
        DeploymentStatus::Succeeded => WorkflowStatus::Succeeded,
        DeploymentStatus::Failed | DeploymentStatus::RolledBack => WorkflowStatus::Failed,
        DeploymentStatus::Aborted | DeploymentStatus::Superseded => WorkflowStatus::Cancelled,
    }
}

/// Strategy steps of a target.
fn total_steps(plan: &TargetPlan) -> u32 {
    let n = match &plan.strategy {
        Strategy::Canary { steps } => steps.len(),
        Strategy::BlueGreen {
            redirect_traffic_after,
            shut_down_old_version_after,
            ..
        } => redirect_traffic_after.len() + shut_down_old_version_after.len(),
        Strategy::Direct => 0,
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn steps_done(target: Option<&Target>, total: u32) -> u32 {
    match target {
        Some(t) if t.status == TargetStatus::Succeeded => total,
        Some(t) => u32::try_from(t.step_index.max(0)).unwrap_or(0).min(total),
        None => 0,
    }
}

/// Where a target is, as its deployment step sees it.
fn deployment_status(target: Option<&Target>, pending: &[&Approval]) -> WorkflowStatus {
    let Some(t) = target else {
        return WorkflowStatus::NotStarted;
    };
    match t.status {
        TargetStatus::Pending => WorkflowStatus::NotStarted,
        TargetStatus::Running | TargetStatus::Paused | TargetStatus::RollingBack => match t.phase {
            None | Some(TargetPhase::Pending | TargetPhase::BeforeDeployment) => {
                WorkflowStatus::NotStarted
            }
            Some(TargetPhase::AfterDeployment) => WorkflowStatus::Succeeded,
            _ if pending.iter().any(|a| !is_gate_key(&a.step_key)) => {
                WorkflowStatus::AwaitingApproval
            }
            _ if t.status == TargetStatus::Paused => WorkflowStatus::Paused,
            _ => WorkflowStatus::Running,
        },
        TargetStatus::Succeeded => WorkflowStatus::Succeeded,
        TargetStatus::Failed | TargetStatus::RolledBack => WorkflowStatus::Failed,
        TargetStatus::Aborted | TargetStatus::Skipped => WorkflowStatus::Cancelled,
    }
}

/// Approval keys of constraints (`before:<i>`, `after:<i>`); others are strategy steps'.
fn is_gate_key(key: &str) -> bool {
    key.starts_with("before:") || key.starts_with("after:")
}

/// The status of constraint `index` of `phase` (before or after deployment).
fn gate_status(
    target: Option<&Target>,
    step: &Step,
    phase: TargetPhase,
    index: usize,
    pending: &[&Approval],
) -> WorkflowStatus {
    let Some(t) = target else {
        return WorkflowStatus::NotStarted;
    };
    let before = phase == TargetPhase::BeforeDeployment;
    match t.status {
        TargetStatus::Succeeded => WorkflowStatus::Succeeded,
        TargetStatus::Pending => WorkflowStatus::NotStarted,
        TargetStatus::Failed
        | TargetStatus::RolledBack
        | TargetStatus::Aborted
        | TargetStatus::Skipped => WorkflowStatus::Cancelled,
        TargetStatus::Running | TargetStatus::Paused | TargetStatus::RollingBack => {
            if t.phase == Some(phase) {
                // The scheduler's record of this gate, in the target's progress.
                let gate = &t.desired["gates"][index];
                let key = format!("{}:{index}", if before { "before" } else { "after" });
                if gate["done"].as_bool() == Some(true) {
                    WorkflowStatus::Succeeded
                } else if gate["outcome"].as_bool() == Some(false) {
                    WorkflowStatus::Failed
                } else if pending.iter().any(|a| a.step_key == key) {
                    WorkflowStatus::AwaitingApproval
                } else if matches!(
                    step,
                    Step::Pause {
                        pause: Pause::Duration(_)
                    }
                ) {
                    WorkflowStatus::Paused
                } else {
                    WorkflowStatus::Running
                }
            } else if before && !matches!(t.phase, None | Some(TargetPhase::Pending)) {
                // The target is past its before-deployment constraints.
                WorkflowStatus::Succeeded
            } else {
                WorkflowStatus::NotStarted
            }
        }
    }
}

/// A constraint's type and detail.
fn describe(step: &Step, out: &mut PipelineStep) {
    match step {
        Step::Pause { pause } => {
            out.kind = "pause".into();
            out.pause = Some(match pause {
                Pause::Duration(secs) => PauseStep {
                    duration: Some(*secs),
                    unit: Some("SECONDS"),
                    until_approved: false,
                },
                Pause::UntilApproved { .. } => PauseStep {
                    duration: None,
                    unit: None,
                    until_approved: true,
                },
            });
        }
        Step::RunWebhook { webhook, .. } => {
            out.kind = "webhook".into();
            out.webhook = Some(NamedStep {
                name: webhook.name.clone(),
            });
        }
        Step::Analysis(analysis) => {
            out.kind = "analysis".into();
            out.analysis = Some(AnalysisSummary {
                queries: analysis.queries.iter().map(|q| q.name.clone()).collect(),
                number_of_judgment_runs: analysis.number_of_judgment_runs,
            });
        }
        Step::ExposeServices { .. } => out.kind = "exposeServices".into(),
        Step::SetWeight { .. } => out.kind = "setWeight".into(),
    }
}

fn deployment_ref(target: &str) -> String {
    format!("deployment:{target}")
}

/// The refs a dependent of `target` waits for: its after-deployment constraints, or its
/// deployment step when it has none.
fn done_refs(plan: &TargetPlan) -> Vec<String> {
    if plan.after_deployment.is_empty() {
        vec![deployment_ref(&plan.name)]
    } else {
        (0..plan.after_deployment.len())
            .map(|i| format!("after:{}:{i}", plan.name))
            .collect()
    }
}

/// The pipeline of a deployment.
pub(crate) fn to_pipeline(
    detail: &DeploymentDetail,
    plan: &Plan,
    pending: &[Approval],
) -> PipelineStatusResponse {
    let deployment = &detail.deployment;
    let mut steps = Vec::new();
    for (index, target_plan) in plan.targets.iter().enumerate() {
        let name = &target_plan.name;
        let target = detail.targets.iter().find(|t| &t.name == name);
        let waiting: Vec<&Approval> = pending.iter().filter(|a| &a.target_name == name).collect();
        let upstream: Vec<String> = target_plan
            .depends_on
            .iter()
            .filter_map(|d| plan.targets.iter().find(|t| &t.name == d))
            .flat_map(done_refs)
            .collect();
        let gate =
            |phase: TargetPhase, prefix: &str, i: usize, step: &Step, depends_on: Vec<String>| {
                let mut out = PipelineStep {
                    status: gate_status(target, step, phase, i, &waiting),
                    reference: format!("{prefix}:{name}:{i}"),
                    depends_on,
                    kind: String::new(),
                    constraint_for: name.clone(),
                    deployment: None,
                    pause: None,
                    webhook: None,
                    analysis: None,
                };
                describe(step, &mut out);
                out
            };
        let before: Vec<PipelineStep> = (target_plan.before_deployment.iter().enumerate())
            .map(|(i, step)| {
                gate(
                    TargetPhase::BeforeDeployment,
                    "before",
                    i,
                    step,
                    upstream.clone(),
                )
            })
            .collect();
        let deployment_depends = if before.is_empty() {
            upstream.clone()
        } else {
            before.iter().map(|s| s.reference.clone()).collect()
        };
        steps.extend(before);
        let total = total_steps(target_plan);
        steps.push(PipelineStep {
            status: deployment_status(target, &waiting),
            reference: deployment_ref(name),
            depends_on: deployment_depends,
            kind: "deployment".into(),
            constraint_for: String::new(),
            deployment: Some(DeploymentStep {
                id: format!("{}.{index}", deployment.id),
                environment: name.clone(),
                step: steps_done(target, total),
                total_steps: total,
            }),
            pause: None,
            webhook: None,
            analysis: None,
        });
        steps.extend(
            (target_plan.after_deployment.iter().enumerate()).map(|(i, step)| {
                gate(
                    TargetPhase::AfterDeployment,
                    "after",
                    i,
                    step,
                    vec![deployment_ref(name)],
                )
            }),
        );
    }
    PipelineStatusResponse {
        id: deployment.id.to_string(),
        application: deployment.application.clone(),
        description: plan.description.clone().unwrap_or_default(),
        status: pipeline_status(detail, pending),
        started_at_iso8601: iso(deployment.started_at),
        completed_at_iso8601: iso(deployment.ended_at),
        initiated_by: deployment.created_by.clone(),
        context: plan
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        environments: plan
            .targets
            .iter()
            .map(|t| Environment {
                name: t.name.clone(),
                account: t.account.clone(),
                namespace: t.namespace.clone().unwrap_or_default(),
            })
            .collect(),
        steps,
    }
}

/// Target `index` of a deployment.
pub(crate) fn to_deployment(
    detail: &DeploymentDetail,
    plan: &Plan,
    pending: &[Approval],
    index: usize,
) -> Option<DeploymentStatusResponse> {
    let target_plan = plan.targets.get(index)?;
    let target = detail.targets.iter().find(|t| t.name == target_plan.name);
    let waiting: Vec<&Approval> = (pending.iter())
        .filter(|a| a.target_name == target_plan.name)
        .collect();
    let total = total_steps(target_plan);
    Some(DeploymentStatusResponse {
        id: format!("{}.{index}", detail.deployment.id),
        pipeline_id: detail.deployment.id.to_string(),
        application: detail.deployment.application.clone(),
        environment: target_plan.name.clone(),
        account: target_plan.account.clone(),
        namespace: target.map(|t| t.namespace.clone()).unwrap_or_default(),
        status: deployment_status(target, &waiting),
        strategy: target_plan.strategy.kind_name().into(),
        step: steps_done(target, total),
        total_steps: total,
        ferry_status: target.map(|t| t.status.to_string()).unwrap_or_default(),
        phase: target.and_then(|t| t.phase),
        reason: target.and_then(|t| t.reason.clone()),
        started_at_iso8601: iso(target.and_then(|t| t.started_at)),
        completed_at_iso8601: iso(target.and_then(|t| t.ended_at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_are_a_deployment_and_a_target_index() {
        let id = DeploymentId::new();
        assert_eq!(parse_step_id(&format!("{id}.2")).unwrap(), (id, 2));
        for bad in [
            "",
            "x.1",
            &format!("{id}"),
            &format!("{id}.-1"),
            &format!("{id}.a"),
        ] {
            assert!(parse_step_id(bad).is_err(), "{bad}");
        }
    }
}
