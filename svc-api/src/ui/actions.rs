//! Actions from a deployment's page: approve, reject, skip pause, roll forward, roll back
//! (a target or the deployment), abort and redeploy. Each is a form that opens for a
//! confirmation and a reason; the POST is CSRF-checked, validated and limited, and then handed
//! to the `/v1` action handler itself, so roles, state checks, outbox message and audit entry
//! are exactly the API's. A person without the role sees the button disabled with the reason;
//! a POST they forge anyway is refused by the same handler (403).

use super::deployments::{Flash, View, load, panel_body, parse_id};
use super::session::{Ui, UiError, describe, parse_form};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, OptionalJson};
use crate::state::AppState;
use crate::v1::actions::{
    self as api, AbortRequest, DecisionRequest, RollbackRequest, TargetRequest, may_decide,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_store::targets::{Target, TargetPhase, TargetStatus};
use maud::{Markup, html};
use serde::Deserialize;

/// Longest reason accepted.
pub const MAX_REASON: usize = 1000;
/// Longest target name accepted.
const MAX_TARGET: usize = 253;

/// An action's form.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    reason: String,
}

/// What each action is called on its button and in messages.
fn label(action: &str) -> Option<&'static str> {
    Some(match action {
        "approve" => "Approve",
        "reject" => "Reject",
        "skip-pause" => "Skip pause",
        "roll-forward" => "Roll forward",
        "rollback" => "Roll back",
        "abort" => "Abort",
        "redeploy" => "Redeploy",
        _ => return None,
    })
}

/// `POST /ui/t/{tenant}/deployments/{id}/actions/{action}`.
pub async fn act(
    State(state): State<AppState>,
    ui: Ui,
    Path((_, id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let id = parse_id(&id)?;
    let Some(name) = label(&action) else {
        return Err(ApiError::Store(ferry_store::StoreError::not_found("action")).into());
    };
    let form: ActionForm = parse_form(&state, &headers, &body, &ui.csrf)?;
    let htmx = headers.contains_key("hx-request");
    let reason = form.reason.trim().to_string();
    let target = form
        .target
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let checked = if reason.is_empty() {
        Err(ApiError::BadRequest("give a reason".into()))
    } else if reason.chars().count() > MAX_REASON {
        Err(ApiError::BadRequest(format!(
            "the reason is longer than {MAX_REASON} characters"
        )))
    } else if target.as_ref().is_some_and(|t| t.len() > MAX_TARGET) {
        Err(ApiError::BadRequest("the target name is too long".into()))
    } else {
        Ok(())
    };
    let outcome = match checked {
        Ok(()) => run(&state, &ui, id, &action, target.clone(), reason).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(Some(new_id)) => {
            let to = format!("{}/deployments/{new_id}", ui.base());
            if htmx {
                let mut response = StatusCode::OK.into_response();
                if let Ok(value) = HeaderValue::from_str(&to) {
                    response.headers_mut().insert("hx-redirect", value);
                }
                Ok(response)
            } else {
                Ok(Redirect::to(&to).into_response())
            }
        }
        Ok(None) if !htmx => {
            Ok(Redirect::to(&format!("{}/deployments/{id}", ui.base())).into_response())
        }
        Ok(None) => {
            let view = load(&state, &ui, id).await?;
            let what = match &target {
                Some(t) => format!("{name} of {t} requested."),
                None => format!("{name} requested."),
            };
            Ok(panel_body(&ui, &view, Some(Flash::Good(what))).into_response())
        }
        Err(error) if !htmx => Err(error.into()),
        Err(error) => {
            // The panel with the refusal, under the refusal's status (htmx is configured to
            // swap 4xx answers without treating them as errors).
            let (status, _, _) = error.classify();
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                return Err(error.into());
            }
            let view = load(&state, &ui, id).await?;
            let mut response = (
                status,
                panel_body(
                    &ui,
                    &view,
                    Some(Flash::Bad(format!("{name} refused: {}", describe(&error)))),
                ),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
    }
}

/// Calls the `/v1` handler of `action`; a redeploy answers the new deployment's id.
async fn run(
    state: &AppState,
    ui: &Ui,
    id: ferry_store::DeploymentId,
    action: &str,
    target: Option<String>,
    reason: String,
) -> Result<Option<String>, ApiError> {
    let s = || State(state.clone());
    let p = ui.principal.clone();
    let need_target = || {
        target
            .clone()
            .ok_or_else(|| ApiError::BadRequest("name the target".into()))
    };
    let response = match action {
        "approve" | "reject" => {
            let request = DecisionRequest {
                target: need_target()?,
                comment: Some(reason),
            };
            if action == "approve" {
                api::approve(s(), p, ApiPath(id), ApiJson(request)).await?
            } else {
                api::reject(s(), p, ApiPath(id), ApiJson(request)).await?
            }
        }
        "skip-pause" => {
            let request = TargetRequest {
                target: need_target()?,
                reason: Some(reason),
            };
            api::skip_pause(s(), p, ApiPath(id), ApiJson(request)).await?
        }
        "roll-forward" => {
            let request = TargetRequest {
                target: need_target()?,
                reason: Some(reason),
            };
            api::roll_forward(s(), p, ApiPath(id), ApiJson(request)).await?
        }
        "rollback" => {
            let request = RollbackRequest {
                target,
                reason: Some(reason),
            };
            api::rollback(s(), p, ApiPath(id), OptionalJson(request)).await?
        }
        "abort" => {
            let request = AbortRequest {
                reason: Some(reason),
            };
            api::abort(s(), p, ApiPath(id), OptionalJson(request)).await?
        }
        "redeploy" => {
            // The API's redeploy with the reason in its audit entry, as other actions have it.
            let mut audit = serde_json::Map::new();
            audit.insert("reason".into(), serde_json::Value::String(reason));
            let started =
                crate::v1::deployments::redeploy_deployment(state, &p, id, None, audit).await?;
            return Ok(Some(started.body.id.to_string()));
        }
        _ => {
            return Err(ApiError::Store(ferry_store::StoreError::not_found(
                "action",
            )));
        }
    };
    drop(response);
    Ok(None)
}

/// One action: a disclosure with the reason and the confirmation, or a disabled button with
/// why.
fn action(
    ui: &Ui,
    view: &View,
    action: &str,
    target: Option<&str>,
    allowed: Result<(), ApiError>,
    danger: bool,
) -> Markup {
    let name = label(action).unwrap_or(action);
    let id = view.detail.deployment.id;
    let url = format!("{}/deployments/{id}/actions/{action}", ui.base());
    let field = format!(
        "reason-{action}-{}",
        target.map(super::deployments::anchor).unwrap_or_default()
    );
    match allowed {
        Err(error) => html! {
            span {
                button type="button" disabled aria-describedby={ (field) "-why" } { (name) }
                " " span.why id={ (field) "-why" } { (describe(&error)) }
            }
        },
        // Kept as it is (open, with what was typed) while live updates re-render the panel.
        Ok(()) => html! {
            details.action id={ "action-" (field) } hx-preserve="true" {
                summary { (name) @if let Some(t) = target { span.visually-hidden { " " (t) } } }
                form method="post" action=(url) hx-post=(url) hx-target="#panel" hx-swap="innerHTML" {
                    input type="hidden" name="_csrf" value=(ui.csrf);
                    @if let Some(t) = target { input type="hidden" name="target" value=(t); }
                    label for=(field) { "Reason" }
                    textarea id=(field) name="reason" required maxlength=(MAX_REASON) rows="2" {}
                    button type="submit" class=(if danger { "danger" } else { "primary" }) {
                        "Confirm: " (name.to_lowercase()) @if let Some(t) = target { " " (t) }
                    }
                }
            }
        },
    }
}

/// The deployment-wide actions.
pub fn deployment_actions(ui: &Ui, view: &View) -> Markup {
    let status = view.detail.deployment.status;
    let deploy = || ui.principal.can_deploy();
    html! {
        div.actions aria-label="Deployment actions" {
            @if status.is_active() || status == ferry_store::deployments::DeploymentStatus::Waiting {
                (action(ui, view, "abort", None, deploy(), true))
            }
            @if status.is_active() {
                (action(ui, view, "rollback", None, deploy(), true))
            }
            (action(ui, view, "redeploy", None, deploy(), false))
        }
    }
}

/// A target's actions, as its state allows.
pub fn target_actions(ui: &Ui, view: &View, t: &Target) -> Markup {
    if !view.detail.deployment.status.is_active() || t.status.is_terminal() {
        return html! {};
    }
    let wait = &t.observed["wait"];
    let approval = view.pending.iter().find(|a| a.target_name == t.name);
    let timed_pause = t.status == TargetStatus::Paused && wait["waitUntil"].is_string();
    let judgement = wait["inconclusive"] == serde_json::Value::Bool(true)
        || (wait["outcome"].is_boolean()
            && wait["decision"].is_null()
            && t.status == TargetStatus::Paused);
    // Only a target whose new version reached the cluster has something to roll back.
    let started = matches!(
        t.phase,
        Some(
            TargetPhase::Deploying
                | TargetPhase::Steps
                | TargetPhase::Promoting
                | TargetPhase::AfterDeployment
        )
    );
    html! {
        div.actions aria-label={ "Actions on " (t.name) } {
            @if let Some(approval) = approval {
                @let allowed = || may_decide(&ui.principal, approval);
                (action(ui, view, "approve", Some(&t.name), allowed(), false))
                (action(ui, view, "reject", Some(&t.name), allowed(), true))
            }
            @if timed_pause { (action(ui, view, "skip-pause", Some(&t.name), ui.principal.can_deploy(), false)) }
            @if judgement { (action(ui, view, "roll-forward", Some(&t.name), ui.principal.can_deploy(), false)) }
            @if started { (action(ui, view, "rollback", Some(&t.name), ui.principal.can_deploy(), true)) }
        }
    }
}
