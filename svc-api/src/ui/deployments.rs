//! Deployment pages: the list (filters by application and status, newest first, paged), and a
//! deployment's page: the pipeline graph ([`super::graph`]), a card per target (steps, weight,
//! workloads, constraints, analyses with their explanations, webhook results as Markdown,
//! preview addresses, the actions that apply), the history of every state change with its
//! reason, and the manifests as planned per target. The page listens to the deployment's
//! server-sent events (the `/v1` stream's source, [`crate::v1::events::open`]) and re-renders
//! its panel on each; no polling.
//!
//! Every read checks `can_read` and goes through the same store functions as the `/v1`
//! handlers (analyses through the `/v1` handler itself).

use super::graph::{self, Gate, GateState, Node};
use super::layout::{self, Nav, badge, time, time_opt};
use super::markdown;
use super::names::{self, Names};
use super::pods::Pods;
use super::session::{Ui, UiError};
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;
use crate::v1;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_api::analysis::{Analysis, AnalysisStatus};
use ferry_deploy::summary::short_step;
use ferry_deploy::{Plan, Step, Strategy, TargetPlan};
use ferry_store::approvals::{self, Approval};
use ferry_store::deployments::{self, DeploymentDetail, DeploymentFilter, DeploymentStatus};
use ferry_store::events::StepRecord;
use ferry_store::targets::{Target, TargetPhase, TargetStatus};
use ferry_store::{Cursor, DeploymentId};
use futures::StreamExt;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

/// Longest application filter accepted (as application names).
const MAX_APPLICATION: usize = 253;
/// History entries shown.
const MAX_HISTORY: usize = 300;
/// Largest manifest text shown per target.
const MAX_MANIFEST_TEXT: usize = 256 * 1024;

/// `GET /ui/t/{tenant}`.
pub async fn tenant_home(ui: Ui) -> Response {
    Redirect::to(&format!("{}/deployments", ui.base())).into_response()
}

/// The list's filters.
#[derive(Debug, Default, Deserialize)]
pub struct ListFilter {
    #[serde(default)]
    application: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

const STATUSES: [&str; 8] = [
    "waiting",
    "running",
    "paused",
    "succeeded",
    "failed",
    "aborted",
    "rolled_back",
    "superseded",
];

/// `GET /ui/t/{tenant}/deployments`.
pub async fn list(
    State(state): State<AppState>,
    ui: Ui,
    Query(filter): Query<ListFilter>,
) -> Result<Response, UiError> {
    ui.principal.can_read()?;
    let application = filter
        .application
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string);
    if application
        .as_ref()
        .is_some_and(|a| a.len() > MAX_APPLICATION)
    {
        return Err(ApiError::BadRequest("the application filter is too long".into()).into());
    }
    let status = filter
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<DeploymentStatus>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let cursor = filter
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let query = DeploymentFilter {
        application: application.clone(),
        status,
    };
    let page = deployments::list(&state.store, ui.principal.tenant, &query, cursor, 50).await?;
    let who = Names::of(
        &state,
        ui.principal.tenant,
        &ui.principal.subject,
        page.items.iter().map(|d| d.created_by.as_str()),
    )
    .await?;
    let base = ui.base();
    let next = page.next.map(|c| {
        let mut pairs = vec![("cursor", c.to_string())];
        if let Some(a) = &application {
            pairs.push(("application", a.clone()));
        }
        if let Some(s) = &filter.status {
            pairs.push(("status", s.clone()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    });
    let filtered = application.is_some() || status.is_some();
    let body = html! {
        h1 { "Deployments" @if let Some(a) = &application { " of " (a) } }
        form.filters method="get" action={ (base) "/deployments" } role="search" {
            div {
                label for="f-app" { "Application" }
                input #f-app name="application" value=[application.as_deref()] maxlength=(MAX_APPLICATION) placeholder="any";
            }
            div {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="" { "any" }
                    @for s in STATUSES {
                        option value=(s) selected[filter.status.as_deref() == Some(s)] { (s.replace('_', " ")) }
                    }
                }
            }
            button type="submit" { "Filter" }
            @if filtered { a.button href={ (base) "/deployments" } { "Clear" } }
        }
        @if page.items.is_empty() {
            @if filtered {
                (layout::empty("No deployment matches these filters.", html! { a href={ (base) "/deployments" } { "Show every deployment" } }))
            } @else {
                (layout::empty("No deployments yet.", html! { "Start one with " code { "ferry deploy start -f deploy.yml" } " or the GitHub Action." }))
            }
        } @else {
            div.table-wrap {
                table {
                    caption.visually-hidden { "Deployments, newest first" }
                    thead { tr { th { "Application" } th { "Status" } th { "Started by" } th { "Created" } th.hide-narrow { "Ended" } th { span.visually-hidden { "Open" } } } }
                    tbody {
                        @for d in &page.items {
                            tr {
                                td { a href={ (base) "/deployments?" (serde_urlencoded::to_string([("application", d.application.as_str())]).unwrap_or_default()) } { (d.application) } }
                                td { (badge(d.status.as_str())) }
                                td { (who.show(&d.created_by)) }
                                td { (time(&d.created_at)) }
                                td.hide-narrow { (time_opt(d.ended_at.as_ref())) }
                                td { a href={ (base) "/deployments/" (d.id) } aria-label={ "Open deployment " (d.id) } { "Open" } }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next { p { a href={ (base) "/deployments?" (next) } { "Older deployments →" } } }
        }
    };
    Ok(layout::page(&ui, Nav::Deployments, "Deployments", body).into_response())
}

/// Everything a deployment's page shows.
pub struct View {
    pub detail: DeploymentDetail,
    pub pending: Vec<Approval>,
    pub plan: Option<Plan>,
    pub analyses: Vec<Analysis>,
    pub names: Names,
}

/// Loads a deployment's page data as the `/v1` handlers read it (404 for another tenant's).
pub async fn load(state: &AppState, ui: &Ui, id: DeploymentId) -> Result<View, UiError> {
    ui.principal.can_read()?;
    let detail = deployments::detail(&state.store, ui.principal.tenant, id).await?;
    let pending = approvals::list_pending(&state.store, ui.principal.tenant, Some(id)).await?;
    let config = deployments::config(&state.store, ui.principal.tenant, id).await?;
    // The page still shows the deployment without its plan; the log says why.
    let plan = Plan::from_stored(&config.plan.0)
        .inspect_err(
            |e| tracing::error!(%id, error = %e, "a deployment's stored plan does not decode"),
        )
        .ok();
    let analyses = v1::analysis::analyses(State(state.clone()), ui.principal.clone(), ApiPath(id))
        .await?
        .0;
    // Who started it, and the people and credentials the history's reasons name by id.
    let mut actors = vec![detail.deployment.created_by.clone()];
    actors.extend(detail.steps.iter().flat_map(|s| names::ids_in(&s.reason)));
    actors.extend(
        detail
            .targets
            .iter()
            .flat_map(|t| names::ids_in(t.reason.as_deref().unwrap_or_default())),
    );
    actors.extend(names::ids_in(
        detail.deployment.reason.as_deref().unwrap_or_default(),
    ));
    let names = Names::of(
        state,
        ui.principal.tenant,
        &ui.principal.subject,
        actors.iter().map(String::as_str),
    )
    .await?;
    Ok(View {
        detail,
        pending,
        plan,
        analyses,
        names,
    })
}

/// `GET /ui/t/{tenant}/deployments/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    ui: Ui,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let id = parse_id(&id)?;
    let view = load(&state, &ui, id).await?;
    let d = &view.detail.deployment;
    let base = ui.base();
    let live = !d.status.is_terminal();
    let body = html! {
        p { a href={ (base) "/deployments" } { "← Deployments" } }
        @if live {
            div #live hx-ext="sse" sse-connect={ (base) "/deployments/" (d.id) "/live?after=" (d.last_event_seq) } sse-close="end" {
                div hx-get={ (base) "/deployments/" (d.id) "/panel" } hx-trigger="sse:update" hx-target="#panel" hx-swap="innerHTML" hx-sync="this:queue last" {}
                p.muted { span.live-dot aria-hidden="true" {} "Live: this page follows the deployment as it changes." }
            }
        }
        div #panel { (panel_body(&ui, &view, None)) }
        h2 { "Manifests as planned, per target" }
        @match &view.plan {
            Some(plan) => { @for t in &plan.targets { (manifests(t)) } }
            None => { p.muted { "The stored plan cannot be read by this version of Ferry." } }
        }
    };
    Ok(layout::page(&ui, Nav::Deployments, &d.application, body).into_response())
}

/// `GET /ui/t/{tenant}/deployments/{id}/panel`: the part of the page that changes.
pub async fn panel(
    State(state): State<AppState>,
    ui: Ui,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let id = parse_id(&id)?;
    let view = load(&state, &ui, id).await?;
    Ok(panel_body(&ui, &view, None).into_response())
}

/// A deployment id from the path (404 when it is not one: no such deployment).
pub fn parse_id(text: &str) -> Result<DeploymentId, UiError> {
    text.parse::<uuid::Uuid>()
        .map(DeploymentId::from)
        .map_err(|_| ApiError::Store(ferry_store::StoreError::not_found("deployment")).into())
}

/// A flash message over the panel.
pub enum Flash {
    Good(String),
    Bad(String),
}

/// The graph, the deployment's actions, the target cards and the history.
pub fn panel_body(ui: &Ui, view: &View, flash: Option<Flash>) -> Markup {
    let d = &view.detail.deployment;
    let plan_targets: Vec<Option<&TargetPlan>> = view
        .detail
        .targets
        .iter()
        .map(|t| {
            view.plan
                .as_ref()
                .and_then(|p| p.targets.iter().find(|pt| pt.name == t.name))
        })
        .collect();
    let nodes: Vec<Node> = view
        .detail
        .targets
        .iter()
        .zip(&plan_targets)
        .map(|(t, p)| node(t, *p, &view.detail.steps))
        .collect();
    let mut history: Vec<_> = view.detail.steps.iter().rev().take(MAX_HISTORY).collect();
    history.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    html! {
        h1 { (d.application) " " (badge(d.status.as_str())) }
        dl.kv {
            dt { "Deployment" } dd { code { (d.id) } }
            dt { "Started by" } dd.started-by { (view.names.show(&d.created_by)) }
            dt { "Created" } dd { (time(&d.created_at)) }
            dt { "Ended" } dd { (time_opt(d.ended_at.as_ref())) }
        }
        @match flash {
            Some(Flash::Good(text)) => { p.flash.good role="status" { (text) } }
            Some(Flash::Bad(text)) => { p.flash.bad role="alert" { (text) } }
            None => {}
        }
        @if let Some(reason) = d.reason.as_deref().filter(|r| !r.is_empty()) {
            p { strong { "Status: " } (d.status.as_str().replace('_', " ")) " — " (view.names.text(reason)) }
        }
        h2 { "Pipeline" }
        @if nodes.is_empty() {
            (layout::empty("This deployment has no targets.", html! {}))
        } @else {
            div.graph { (graph::render(&nodes)) }
        }
        (super::actions::deployment_actions(ui, view))
        h2 { "Targets" }
        div.targets {
            @for (t, p) in view.detail.targets.iter().zip(&plan_targets) {
                (target_card(ui, view, t, *p))
            }
        }
        h2 { "History" }
        @if history.is_empty() {
            (layout::empty("Nothing has happened yet.", html! { "The scheduler records every step here as it goes." }))
        } @else {
            div.table-wrap {
                table {
                    caption.visually-hidden { "State changes, newest first" }
                    thead { tr { th { "When" } th { "Target" } th { "Step" } th { "Change" } th { "Reason" } } }
                    tbody {
                        @for s in history {
                            tr {
                                td { (time(&s.created_at)) }
                                td { (s.target_name) }
                                td { @if let Some(i) = s.step_index { (i + 1) } @else { "—" } }
                                td { (badge(s.status.as_str())) }
                                td { (view.names.text(&s.reason)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The target's recorded progress (the scheduler's `observed` record).
fn progress(t: &Target) -> &Value {
    &t.observed
}

/// A constraint's state from the phase and its wait record.
fn gate_state(
    t: &Target,
    wait: Option<&Value>,
    own_phase: TargetPhase,
    later: &[TargetPhase],
) -> GateState {
    let phase = t.phase.unwrap_or(TargetPhase::Pending);
    let terminal_ok = t.status == TargetStatus::Succeeded;
    if phase == own_phase {
        if let Some(w) = wait {
            if w["outcome"] == Value::Bool(false) {
                return GateState::Failed;
            }
            if w["done"] == Value::Bool(true) || w["outcome"] == Value::Bool(true) {
                return GateState::Passed;
            }
            if w["started"] == Value::Bool(true) {
                return if t.status.is_terminal() {
                    GateState::Failed
                } else {
                    GateState::Running
                };
            }
        }
        return GateState::Pending;
    }
    if later.contains(&phase) || terminal_ok {
        GateState::Passed
    } else {
        GateState::Pending
    }
}

fn gates(t: &Target, steps: &[Step], own_phase: TargetPhase, later: &[TargetPhase]) -> Vec<Gate> {
    let waits = progress(t)["gates"].as_array();
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| Gate {
            label: short_step(step),
            state: gate_state(t, waits.and_then(|w| w.get(i)), own_phase, later),
        })
        .collect()
}

/// The graph node of a target.
fn node(t: &Target, plan: Option<&TargetPlan>, history: &[StepRecord]) -> Node {
    let mut lines = Vec::new();
    let phase = t.phase.unwrap_or(TargetPhase::Pending);
    if let Some(p) = plan {
        if let Strategy::Canary { steps } = &p.strategy {
            let i = t.step_index.max(0) as usize;
            if phase == TargetPhase::Steps && i < steps.len() {
                lines.push(format!(
                    "step {}/{}: {}",
                    i + 1,
                    steps.len(),
                    short_step(&steps[i])
                ));
            } else if !steps.is_empty() {
                lines.push(format!(
                    "{} steps · {}",
                    steps.len(),
                    phase.as_str().replace('_', " ")
                ));
            }
        } else {
            lines.push(phase.as_str().replace('_', " "));
        }
    }
    if let Some(w) = progress(t)["weight"].as_u64() {
        lines.push(format!("weight {w}%"));
    }
    if let Some(pods) = Pods::of(t, history).and_then(|p| p.short()) {
        lines.push(pods);
    }
    let (before, after) = match plan {
        Some(p) => (
            gates(
                t,
                &p.before_deployment,
                TargetPhase::BeforeDeployment,
                &[
                    TargetPhase::Deploying,
                    TargetPhase::Steps,
                    TargetPhase::Promoting,
                    TargetPhase::AfterDeployment,
                    TargetPhase::Done,
                ],
            ),
            gates(
                t,
                &p.after_deployment,
                TargetPhase::AfterDeployment,
                &[TargetPhase::Done],
            ),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Node {
        name: t.name.clone(),
        status: t.status.as_str().to_string(),
        lines,
        depends_on: plan.map(|p| p.depends_on.clone()).unwrap_or_default(),
        before,
        after,
        href: format!("#{}", anchor(&t.name)),
    }
}

/// An id-safe form of a target name, for anchors.
pub fn anchor(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("target-{safe}")
}

/// A target's card.
fn target_card(ui: &Ui, view: &View, t: &Target, plan: Option<&TargetPlan>) -> Markup {
    let p = progress(t);
    let phase = t.phase.unwrap_or(TargetPhase::Pending);
    let step_index = t.step_index.max(0) as usize;
    let analyses: Vec<&Analysis> = view
        .analyses
        .iter()
        .filter(|a| a.target == t.name)
        .collect();
    let webhook_results = webhook_results(t, plan);
    let previews = p["preview"].as_object();
    html! {
        section.card id=(anchor(&t.name)) aria-labelledby={ (anchor(&t.name)) "-h" } {
            h3 id={ (anchor(&t.name)) "-h" } { (t.name) " " (badge(t.status.as_str())) }
            dl.kv {
                dt { "Cluster" } dd { (t.account) " / " (t.namespace) }
                dt { "Phase" } dd { (phase.as_str().replace('_', " ")) }
                @if let Some(plan) = plan { @if !plan.depends_on.is_empty() { dt { "Depends on" } dd { (plan.depends_on.join(", ")) } } }
                @if let Some(w) = p["weight"].as_u64() { dt { "Weight" } dd { (w) "%" } }
                @if let Some(pods) = Pods::of(t, &view.detail.steps) { dt { "Pods" } dd.pods { (pods.line()) } }
                @if let Some(reason) = t.reason.as_deref().filter(|r| !r.is_empty()) { dt { "Now" } dd { (view.names.text(reason)) } }
            }
            @if let Some(plan) = plan {
                @match &plan.strategy {
                    Strategy::Canary { steps } => {
                        ol.steps aria-label="Canary steps" {
                            @for (i, step) in steps.iter().enumerate() {
                                @let done = t.status == TargetStatus::Succeeded
                                    || (!t.status.is_terminal() && matches!(phase, TargetPhase::Promoting | TargetPhase::AfterDeployment))
                                    || (matches!(phase, TargetPhase::Steps | TargetPhase::Done) && i < step_index && t.status != TargetStatus::Succeeded);
                                @let current = phase == TargetPhase::Steps && i == step_index && !t.status.is_terminal();
                                li.done[done].current[current] aria-current=[current.then_some("step")] { (short_step(step)) }
                            }
                        }
                    }
                    Strategy::BlueGreen { active_service, .. } => { p { "Blue/green: the active Service " code { (active_service) } " switches to the new version." } }
                    _ => { p.muted { "Direct: applied as is." } }
                }
            }
            @if let Some(workloads) = p["workloads"].as_array() {
                @for w in workloads {
                    p.muted {
                        "Deployment " code { (w["name"].as_str().unwrap_or("?")) } ": new ReplicaSet "
                        code { (w["newRs"].as_str().unwrap_or("?")) } " (" (w["replicas"].as_i64().unwrap_or(0)) " replicas)"
                        @if let Some(stable) = w["stable"].as_array() { @for s in stable { ", replacing " code { (s["name"].as_str().unwrap_or("?")) } " (" (s["replicas"].as_i64().unwrap_or(0)) ")" } }
                    }
                }
            }
            @if let Some(previews) = previews {
                @if !previews.is_empty() {
                    h4 { "Preview" }
                    ul { @for (service, preview) in previews {
                        @let address = preview["address"].as_str().unwrap_or("");
                        li { (service) ": "
                            @if address.starts_with("http://") || address.starts_with("https://") { a href=(address) rel="noreferrer noopener" { (address) } } @else { (address) }
                            @if let Some(until) = preview["expiresAt"].as_str() { span.muted { " until " (until) } } }
                    } }
                }
            }
            @for (name, passed, message) in &webhook_results {
                div {
                    strong { "Webhook " (name) ": " } (if *passed { "succeeded" } else { "failed" })
                    @if let Some(message) = message { div.md { (markdown::render(message)) } }
                }
            }
            @for a in &analyses {
                details.analysis open[a.status != AnalysisStatus::Passed] {
                    summary { "Analysis " (badge(a.status.as_str())) " " (a.runs_done) "/" (a.total_runs) " runs" }
                    @if let Some(reason) = &a.reason { p { (reason) } }
                    ol { @for r in &a.runs { li { (if r.passed { "passed" } else { "failed" }) ": " (r.explanation) } } }
                }
            }
            (super::actions::target_actions(ui, view, t))
        }
    }
}

/// The finished webhooks of a target's constraints and current step, with their messages.
fn webhook_results(t: &Target, plan: Option<&TargetPlan>) -> Vec<(String, bool, Option<String>)> {
    let Some(plan) = plan else { return Vec::new() };
    let p = progress(t);
    let mut out = Vec::new();
    let gate_steps = match t.phase {
        Some(TargetPhase::BeforeDeployment) => Some(&plan.before_deployment),
        Some(TargetPhase::AfterDeployment) => Some(&plan.after_deployment),
        _ => None,
    };
    let mut waits: Vec<(&Step, &Value)> = Vec::new();
    if let (Some(steps), Some(gates)) = (gate_steps, p["gates"].as_array()) {
        waits.extend(steps.iter().zip(gates));
    }
    if let Strategy::Canary { steps } = &plan.strategy
        && let Some(step) = steps.get(t.step_index.max(0) as usize)
    {
        waits.push((step, &p["wait"]));
    }
    for (step, wait) in waits {
        if let (Step::RunWebhook { webhook, .. }, Some(outcome)) = (step, wait["outcome"].as_bool())
        {
            let message = wait["outcomeReason"].as_str().map(str::to_string);
            out.push((webhook.name.clone(), outcome, message));
        }
    }
    out
}

/// A target's manifests as planned (namespace forced where the target has one).
fn manifests(t: &TargetPlan) -> Markup {
    let mut text = String::new();
    for m in &t.manifests {
        text.push_str(&format!("# {} {} (from {})\n", m.kind, m.name, m.source));
        text.push_str(&serde_json::to_string_pretty(&m.object).unwrap_or_default());
        text.push_str("\n\n");
        if text.len() > MAX_MANIFEST_TEXT {
            text.truncate(MAX_MANIFEST_TEXT);
            text.push_str("\n… (cut: see GET /v1/deployments/{id}/config)");
            break;
        }
    }
    html! {
        details {
            summary { (t.name) " — " (t.manifests.len()) " objects" @if !t.remote_manifests.is_empty() { ", " (t.remote_manifests.len()) " fetched by URL" } }
            pre.manifest tabindex="0" { (text) }
        }
    }
}

/// `?after=` of the live stream.
#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    after: Option<i64>,
}

/// `GET /ui/t/{tenant}/deployments/{id}/live`: the deployment's events for the page: each is an
/// `update` event (the page re-renders its panel), and `end` once the deployment ended (the
/// page closes the stream; nothing reconnects). A reconnect resumes after `Last-Event-ID`.
pub async fn live(
    State(state): State<AppState>,
    ui: Ui,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let id = parse_id(&id)?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(query.after)
        .unwrap_or(0)
        .max(0);
    let stream = v1::events::open(&state, &ui.principal, id, after)
        .await?
        .map(|item| {
            Ok::<_, std::convert::Infallible>(match item {
                v1::events::Tailed::Event(event) => SseEvent::default()
                    .id(event.seq.to_string())
                    .event("update")
                    .data(event.kind),
                v1::events::Tailed::Finished => SseEvent::default().event("end").data("ended"),
            })
        });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(state.api.events_keep_alive))
        .into_response())
}
