//! Actions on a deployment: approve and reject a pending approval, abort, roll back, skip a
//! pause, roll forward, and webhook callbacks. Each checks the deployment's state, then writes
//! its scheduler message to the outbox and an audit entry in one transaction; the scheduler
//! does the work.

use super::{audit, enqueue, limits};
use crate::auth::{Principal, roles};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, OptionalJson};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
pub use ferry_api::actions::{
    AbortRequest, Accepted, CallbackRequest, DecisionRequest, RollbackRequest, TargetRequest,
};
use ferry_bus::StepKey;
use ferry_bus::messages::{
    AbortRequested, ApprovalDecided, RollbackRequested, RolloutDecided, RolloutDecision,
    SchedulerMessage, SkipPauseRequested, WebhookCompleted,
};
use ferry_store::approvals::{self, Approval, Decision};
use ferry_store::deployments::{self, Deployment, DeploymentStatus};
use ferry_store::roles::PrincipalKind;
use ferry_store::targets::{self, Target};
use ferry_store::{DeploymentId, StoreError, callbacks, credentials};

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/deployments/{id}/approve", post(approve))
        .route("/deployments/{id}/reject", post(reject))
        .route("/deployments/{id}/abort", post(abort))
        .route("/deployments/{id}/rollback", post(rollback))
        .route("/deployments/{id}/skip-pause", post(skip_pause))
        .route("/deployments/{id}/roll-forward", post(roll_forward))
        .route(
            "/deployments/{id}/webhooks/{token}/callback",
            post(callback),
        )
}

/// How a webhook callback token is stored (shared with the scheduler, which hands tokens out).
pub use ferry_store::callbacks::token_hash as callback_token_hash;

fn accepted(deployment: DeploymentId, action: &'static str, target: Option<String>) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            deployment,
            action: action.to_string(),
            target,
        }),
    )
        .into_response()
}

/// The deployment, which must hold its application's slot (`running` or `paused`).
async fn active_deployment(
    state: &AppState,
    principal: &Principal,
    id: DeploymentId,
) -> Result<Deployment, ApiError> {
    let deployment = deployments::get(&state.store, principal.tenant, id).await?;
    if !deployment.status.is_active() {
        return Err(ApiError::Conflict(format!(
            "deployment {id} is {}, not running",
            deployment.status
        )));
    }
    Ok(deployment)
}

/// The target of an active deployment, which must not have ended.
async fn active_target(
    state: &AppState,
    principal: &Principal,
    id: DeploymentId,
    name: &str,
) -> Result<Target, ApiError> {
    active_deployment(state, principal, id).await?;
    let target = targets::get(&state.store, principal.tenant, id, name).await?;
    if target.status.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "target {name:?} already ended ({})",
            target.status
        )));
    }
    Ok(target)
}

/// Who acts, as people read it in the deployment's history: a person's email, or
/// `credential NAME` for a machine credential (its id when it is gone). The same for the API
/// and the web UI, which calls these handlers.
pub(crate) async fn actor(state: &AppState, principal: &Principal) -> Result<String, ApiError> {
    if let Some(email) = &principal.email {
        return Ok(email.clone());
    }
    if principal.kind == PrincipalKind::Credential
        && let Ok(id) = principal.subject.parse::<uuid::Uuid>()
    {
        return match credentials::get(&state.store, principal.tenant, id).await {
            Ok(c) => Ok(format!("credential {}", c.name)),
            Err(StoreError::NotFound { .. }) => Ok(format!("credential {id}")),
            Err(e) => Err(e.into()),
        };
    }
    Ok(principal.subject.clone())
}

/// The step a scheduler approval key names (`step:<index>`, a [`StepKey`]); `None` for a
/// constraint or a key that is not one.
fn step_of(step_key: &str) -> Option<u32> {
    step_key.parse::<StepKey>().ok()?.step_index()
}

fn step_index(target: &Target) -> Result<u32, ApiError> {
    u32::try_from(target.step_index)
        .map_err(|_| ApiError::Conflict(format!("target {:?} has no current step", target.name)))
}

/// Approves the pending approval of a target.
#[utoipa::path(post, path = "/v1/deployments/{id}/approve", tag = "actions",
    params(("id" = String, Path, description = "Deployment id")), request_body = DecisionRequest,
    responses((status = 200, description = "The decided approval"),
        (status = 403, description = "The caller holds none of the approval's requiresRoles"),
        (status = 404, description = "No such deployment or target in this tenant"),
        (status = 409, description = "No pending approval (already decided or expired)")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
    ApiJson(request): ApiJson<DecisionRequest>,
) -> Result<Response, ApiError> {
    decide(&state, &principal, id, request, Decision::Approve).await
}

/// Rejects the pending approval of a target (it rolls back).
#[utoipa::path(post, path = "/v1/deployments/{id}/reject", tag = "actions",
    params(("id" = String, Path, description = "Deployment id")), request_body = DecisionRequest,
    responses((status = 200, description = "The decided approval"),
        (status = 403, description = "The caller holds none of the approval's requiresRoles"),
        (status = 404, description = "No such deployment or target in this tenant"),
        (status = 409, description = "No pending approval (already decided or expired)")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub(crate) async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
    ApiJson(request): ApiJson<DecisionRequest>,
) -> Result<Response, ApiError> {
    decide(&state, &principal, id, request, Decision::Reject).await
}

/// `Ok` when `principal` may decide `approval`: one of its `requiresRoles` (or a tenant
/// admin's), or, when it names none, a role that may deploy. Else 403 naming the roles.
pub(crate) fn may_decide(principal: &Principal, approval: &Approval) -> Result<(), ApiError> {
    if approval.requires_roles.is_empty() {
        return principal.can_deploy();
    }
    if principal.is_admin()
        || approval
            .requires_roles
            .iter()
            .any(|r| principal.has_role(r))
    {
        return Ok(());
    }
    let mut allowed = approval.requires_roles.clone();
    allowed.extend(roles::ADMIN.iter().map(std::string::ToString::to_string));
    Err(ApiError::Forbidden(allowed))
}

async fn decide(
    state: &AppState,
    principal: &Principal,
    id: DeploymentId,
    request: DecisionRequest,
    decision: Decision,
) -> Result<Response, ApiError> {
    principal.can_read()?;
    limits::reason("comment", request.comment.as_deref())?;
    let pending = approvals::list_pending(&state.store, principal.tenant, Some(id)).await?;
    let Some(approval) = pending
        .into_iter()
        .find(|a| a.target_name == request.target)
    else {
        // Tell a missing target (404) from one with nothing to decide (409).
        targets::get(&state.store, principal.tenant, id, &request.target).await?;
        return Err(ApiError::Conflict(format!(
            "target {:?} has no pending approval (already decided, expired, or not waiting)",
            request.target
        )));
    };
    may_decide(principal, &approval)?;

    let mut tx = state.store.begin().await?;
    let decided = approvals::decide(
        &mut tx,
        principal.tenant,
        approval.id,
        decision,
        &principal.subject,
    )
    .await?;
    enqueue(
        &mut tx,
        principal,
        SchedulerMessage::ApprovalDecided(ApprovalDecided {
            deployment_id: id.as_uuid(),
            target: decided.target_name.clone(),
            step_index: step_of(&decided.step_key),
            approved: decision == Decision::Approve,
            decided_by: Some(actor(state, principal).await?),
            reason: request.comment.clone(),
        }),
    )
    .await?;
    audit(
        &mut tx,
        principal,
        &format!("approval.{decision}"),
        "approval",
        decided.id.to_string(),
        serde_json::json!({
            "deployment": id,
            "target": decided.target_name,
            "step": decided.step_key,
            "comment": request.comment,
        }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(decided).into_response())
}

/// Aborts the deployment: a waiting one ends at once; a running one is stopped by the
/// scheduler, which rolls back the targets in progress.
#[utoipa::path(post, path = "/v1/deployments/{id}/abort", tag = "actions",
    params(("id" = String, Path, description = "Deployment id")), request_body(content = AbortRequest, description = "Optional"),
    responses((status = 202, description = "Abort requested", body = Accepted),
        (status = 404, description = "No such deployment in this tenant"),
        (status = 409, description = "The deployment already ended")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub(crate) async fn abort(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
    OptionalJson(request): OptionalJson<AbortRequest>,
) -> Result<Response, ApiError> {
    principal.can_deploy()?;
    limits::reason("reason", request.reason.as_deref())?;
    let deployment = deployments::get(&state.store, principal.tenant, id).await?;
    let mut tx = state.store.begin().await?;
    match deployment.status {
        DeploymentStatus::Waiting => {
            // Never started: nothing for the scheduler to undo, so it ends here.
            let reason = match request.reason.clone() {
                Some(reason) => reason,
                None => format!("aborted by {}", actor(&state, &principal).await?),
            };
            deployments::transition(
                &mut tx,
                principal.tenant,
                id,
                deployment.version,
                DeploymentStatus::Aborted,
                Some(&reason),
            )
            .await?;
        }
        status if status.is_active() => {
            enqueue(
                &mut tx,
                &principal,
                SchedulerMessage::AbortRequested(AbortRequested {
                    deployment_id: id.as_uuid(),
                    requested_by: Some(actor(&state, &principal).await?),
                    reason: request.reason.clone(),
                }),
            )
            .await?;
        }
        status => {
            return Err(ApiError::Conflict(format!(
                "deployment {id} already ended ({status})"
            )));
        }
    }
    audit(
        &mut tx,
        &principal,
        "deployment.abort",
        "deployment",
        id.to_string(),
        serde_json::json!({ "reason": request.reason, "status": deployment.status }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(accepted(id, "abort", None))
}

/// Rolls back the deployment, or one target of it.
#[utoipa::path(post, path = "/v1/deployments/{id}/rollback", tag = "actions",
    params(("id" = String, Path, description = "Deployment id")), request_body(content = RollbackRequest, description = "Optional"),
    responses((status = 202, description = "Rollback requested", body = Accepted),
        (status = 404, description = "No such deployment or target in this tenant"),
        (status = 409, description = "The deployment or target already ended")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
    OptionalJson(request): OptionalJson<RollbackRequest>,
) -> Result<Response, ApiError> {
    principal.can_deploy()?;
    limits::reason("reason", request.reason.as_deref())?;
    match &request.target {
        Some(target) => {
            active_target(&state, &principal, id, target).await?;
        }
        None => {
            active_deployment(&state, &principal, id).await?;
        }
    }
    request_audited(
        &state,
        &principal,
        SchedulerMessage::RollbackRequested(RollbackRequested {
            deployment_id: id.as_uuid(),
            target: request.target.clone(),
            requested_by: Some(actor(&state, &principal).await?),
            reason: request.reason.clone(),
        }),
        "deployment.rollback",
        id,
        serde_json::json!({ "target": request.target, "reason": request.reason }),
    )
    .await?;
    Ok(accepted(id, "rollback", request.target))
}

/// Writes a request for the scheduler to the outbox with its audit entry, in one transaction.
async fn request_audited(
    state: &AppState,
    principal: &Principal,
    message: SchedulerMessage,
    action: &str,
    id: DeploymentId,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let mut tx = state.store.begin().await?;
    enqueue(&mut tx, principal, message).await?;
    audit(
        &mut tx,
        principal,
        action,
        "deployment",
        id.to_string(),
        details,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Ends the current pause of a target early.
#[utoipa::path(post, path = "/v1/deployments/{id}/skip-pause", tag = "actions",
    params(("id" = String, Path, description = "Deployment id")), request_body = TargetRequest,
    responses((status = 202, description = "Skip requested", body = Accepted),
        (status = 404, description = "No such deployment or target in this tenant"),
        (status = 409, description = "The deployment or target already ended")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub(crate) async fn skip_pause(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
    ApiJson(request): ApiJson<TargetRequest>,
) -> Result<Response, ApiError> {
    principal.can_deploy()?;
    limits::reason("reason", request.reason.as_deref())?;
    let target = active_target(&state, &principal, id, &request.target).await?;
    let step = step_index(&target)?;
    request_audited(
        &state,
        &principal,
        SchedulerMessage::SkipPauseRequested(SkipPauseRequested {
            deployment_id: id.as_uuid(),
            target: target.name.clone(),
            step_index: step,
        }),
        "deployment.skip_pause",
        id,
        serde_json::json!({ "target": target.name, "step": step, "reason": request.reason }),
    )
    .await?;
    Ok(accepted(id, "skip-pause", Some(target.name)))
}

/// Continues a target waiting on a manual judgement.
#[utoipa::path(post, path = "/v1/deployments/{id}/roll-forward", tag = "actions",
    params(("id" = String, Path, description = "Deployment id")), request_body = TargetRequest,
    responses((status = 202, description = "Roll-forward requested", body = Accepted),
        (status = 404, description = "No such deployment or target in this tenant"),
        (status = 409, description = "The deployment or target already ended")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub(crate) async fn roll_forward(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
    ApiJson(request): ApiJson<TargetRequest>,
) -> Result<Response, ApiError> {
    principal.can_deploy()?;
    limits::reason("reason", request.reason.as_deref())?;
    let target = active_target(&state, &principal, id, &request.target).await?;
    let step = step_index(&target)?;
    request_audited(
        &state,
        &principal,
        SchedulerMessage::RolloutDecided(RolloutDecided {
            deployment_id: id.as_uuid(),
            target: target.name.clone(),
            step_index: step,
            decision: RolloutDecision::Forward,
            decided_by: Some(actor(&state, &principal).await?),
            reason: request.reason.clone(),
        }),
        "deployment.roll_forward",
        id,
        serde_json::json!({ "target": target.name, "step": step, "reason": request.reason }),
    )
    .await?;
    Ok(accepted(id, "roll-forward", Some(target.name)))
}

/// Completes a webhook whose caller was handed `{{ferry.callbackUri}}`. Single use.
#[utoipa::path(post, path = "/v1/deployments/{id}/webhooks/{token}/callback", tag = "actions",
    params(("id" = String, Path, description = "Deployment id"), ("token" = String, Path, description = "The callback token from the callback URI")),
    request_body = CallbackRequest,
    responses((status = 202, description = "Recorded", body = Accepted),
        (status = 404, description = "No such callback for this deployment in this tenant"),
        (status = 409, description = "Already used or expired")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
async fn callback(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, token)): ApiPath<(DeploymentId, String)>,
    ApiJson(request): ApiJson<CallbackRequest>,
) -> Result<Response, ApiError> {
    principal.can_deploy()?;
    limits::message("mdMessage", request.md_message.as_deref())?;
    let hash = callback_token_hash(&token);
    let mut tx = state.store.begin().await?;
    let details = serde_json::json!({ "mdMessage": request.md_message });
    let used =
        callbacks::complete(&mut tx, principal.tenant, &hash, request.success, &details).await?;
    if used.deployment_id != id {
        // Dropping the transaction undoes the use: the token belongs to another deployment.
        return Err(StoreError::not_found("webhook callback").into());
    }
    enqueue(
        &mut tx,
        &principal,
        SchedulerMessage::WebhookCompleted(WebhookCompleted {
            deployment_id: id.as_uuid(),
            target: used.target_name.clone(),
            step_index: None,
            webhook_id: used.id,
            success: request.success,
            reason: request.md_message.clone(),
        }),
    )
    .await?;
    audit(
        &mut tx,
        &principal,
        "webhook.callback",
        "webhook_callback",
        used.id.to_string(),
        serde_json::json!({
            "deployment": id,
            "webhook": used.webhook_name,
            "success": request.success,
        }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(accepted(id, "callback", used.target_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_keys_name_strategy_steps_only() {
        assert_eq!(step_of("step:3"), Some(3));
        assert_eq!(step_of("before:0"), None);
        assert_eq!(step_of("step:x"), None);
    }
}
