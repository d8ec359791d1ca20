//! Administration pages: agents (connected or not, last heartbeat, versions), machine
//! credentials (create, showing the secret once; revoke), secrets (names and dates only), users
//! and roles, metric providers. Each page calls the `/v1` handler of its resource with the
//! person's principal, so it needs exactly the role the API needs (agents and providers: any
//! reader; the rest: a tenant administrator) and shows what the API would answer.

use super::layout::{self, Nav, time_opt};
use super::session::{Ui, UiError, describe, parse_form};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::v1;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

/// The admin pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/t/{tenant}/agents", get(agents))
        .route(
            "/ui/t/{tenant}/credentials",
            get(credentials).post(create_credential),
        )
        .route(
            "/ui/t/{tenant}/credentials/{id}/revoke",
            post(revoke_credential),
        )
        .route("/ui/t/{tenant}/secrets", get(secrets))
        .route("/ui/t/{tenant}/users", get(users))
        .route("/ui/t/{tenant}/metric-providers", get(providers))
}

/// A `/v1` handler's answer as JSON.
async fn answer<R: IntoResponse>(result: Result<R, ApiError>) -> Result<Value, ApiError> {
    let response = result?.into_response();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading an answer: {e}")))?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Unavailable(format!("reading an answer: {e}")))
}

/// The page, or the refusal inside the layout (with its status).
fn page_or_refusal(
    ui: &Ui,
    nav: Nav,
    title: &str,
    body: Result<Markup, ApiError>,
) -> Result<Response, UiError> {
    match body {
        Ok(body) => Ok(layout::page(ui, nav, title, body).into_response()),
        Err(error) => {
            let (status, _, _) = error.classify();
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                return Err(error.into());
            }
            let body = html! { h1 { (title) } p.error role="alert" { (describe(&error)) } };
            Ok((status, layout::page(ui, nav, title, body)).into_response())
        }
    }
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}

fn when(value: &Value, key: &str) -> Markup {
    let at = value[key]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    time_opt(at.as_ref())
}

fn list_of(value: &Value, key: &str) -> String {
    value[key]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /ui/t/{tenant}/agents`.
pub async fn agents(State(state): State<AppState>, ui: Ui) -> Result<Response, UiError> {
    let found = answer(v1::tenant::list_agents(State(state), ui.principal.clone()).await).await;
    let body = found.map(|agents| html! {
        h1 { "Agents" }
        @if items(&agents).is_empty() {
            (layout::empty("No agent has connected yet.", html! { "Install the ferry-agent chart in a cluster with an Agent credential." }))
        } @else {
            div.table-wrap { table {
                thead { tr { th { "Agent (account)" } th { "Connection" } th { "Last heartbeat" } th.hide-narrow { "Agent version" } th.hide-narrow { "Kubernetes" } } }
                tbody { @for a in items(&agents) { tr {
                    td { code { (text(a, "identifier")) } }
                    td { @if a["connected"].as_bool() == Some(true) { (layout::badge("succeeded")) " connected" } @else { (layout::badge("skipped")) " not connected" } }
                    td { (when(a, "last_heartbeat_at")) }
                    td.hide-narrow { (text(a, "agent_version")) }
                    td.hide-narrow { (text(a, "kubernetes_version")) }
                } } }
            } }
        }
    });
    page_or_refusal(&ui, Nav::Agents, "Agents", body)
}

/// The credentials page, with a secret shown once after a create.
async fn credentials_page(
    state: &AppState,
    ui: &Ui,
    created: Option<Value>,
    error: Option<String>,
) -> Result<Markup, ApiError> {
    let list =
        answer(v1::credentials::list(State(state.clone()), ui.principal.clone()).await).await?;
    let roles = answer(v1::roles::list(State(state.clone()), ui.principal.clone()).await).await?;
    let base = ui.base();
    Ok(html! {
        h1 { "Machine credentials" }
        @if let Some(created) = &created {
            div.card role="status" {
                h2 { "Created " (text(created, "name")) }
                p { "Client id: " code { (text(created, "clientId")) } }
                p { strong { "Secret (shown only this once; store it now):" } }
                p.secret id="new-secret" { (text(created, "clientSecret")) }
            }
        }
        @if let Some(error) = &error { p.flash.bad role="alert" { (error) } }
        @if items(&list).is_empty() {
            (layout::empty("No credentials.", html! { "Create one below for CI, an agent or a script." }))
        } @else {
            div.table-wrap { table {
                thead { tr { th { "Name" } th { "Client id" } th { "Roles" } th.hide-narrow { "Created" } th { "State" } } }
                tbody { @for c in items(&list) { tr {
                    td { (text(c, "name")) }
                    td { code { (text(c, "client_id")) } }
                    td { (list_of(c, "roles")) }
                    td.hide-narrow { (when(c, "created_at")) }
                    td {
                        @if c["revoked_at"].is_string() { "revoked " (when(c, "revoked_at")) } @else {
                            details.action { summary { "Revoke" span.visually-hidden { " " (text(c, "name")) } }
                                form method="post" action={ (base) "/credentials/" (text(c, "id")) "/revoke" } {
                                    input type="hidden" name="_csrf" value=(ui.csrf);
                                    p { "Its tokens stop working within seconds." }
                                    button.danger type="submit" { "Confirm: revoke " (text(c, "name")) }
                                }
                            }
                        }
                    }
                } } }
            } }
        }
        h2 { "Create a credential" }
        form.card method="post" action={ (base) "/credentials" } {
            input type="hidden" name="_csrf" value=(ui.csrf);
            label for="c-name" { "Name" }
            input #c-name name="name" required maxlength="100";
            fieldset { legend { "Roles" }
                @for r in items(&roles) { @let name = text(r, "name"); label { input type="checkbox" name="roles" value=(name); " " (name) } br; }
            }
            button.primary type="submit" { "Create" }
        }
    })
}

/// `GET /ui/t/{tenant}/credentials`.
pub async fn credentials(State(state): State<AppState>, ui: Ui) -> Result<Response, UiError> {
    let body = credentials_page(&state, &ui, None, None).await;
    page_or_refusal(&ui, Nav::Credentials, "Credentials", body)
}

/// The create form (roles repeat).
#[derive(Debug, Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
}

/// `POST /ui/t/{tenant}/credentials`: creates, then shows the secret once (never stored).
pub async fn create_credential(
    State(state): State<AppState>,
    ui: Ui,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: CreateForm = parse_form(&state, &headers, &body, &ui.csrf)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let roles: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| k == "roles")
        .map(|(_, v)| v)
        .take(50)
        .collect();
    if roles.iter().any(|r| r.len() > 100) {
        return Err(ApiError::BadRequest("a role name is 100 characters at most".into()).into());
    }
    let request = v1::credentials::CreateCredential {
        name: form.name.trim().to_string(),
        roles,
    };
    let created = answer(
        v1::credentials::create(State(state.clone()), ui.principal.clone(), ApiJson(request)).await,
    )
    .await;
    let page = match created {
        Ok(created) => credentials_page(&state, &ui, Some(created), None).await,
        Err(error)
            if error.classify().0 != StatusCode::INTERNAL_SERVER_ERROR
                && error.classify().0 != StatusCode::FORBIDDEN =>
        {
            credentials_page(
                &state,
                &ui,
                None,
                Some(format!("Not created: {}", describe(&error))),
            )
            .await
        }
        Err(error) => Err(error),
    };
    page_or_refusal(&ui, Nav::Credentials, "Credentials", page)
}

/// `POST /ui/t/{tenant}/credentials/{id}/revoke`.
pub async fn revoke_credential(
    State(state): State<AppState>,
    ui: Ui,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let _: std::collections::HashMap<String, String> =
        parse_form(&state, &headers, &body, &ui.csrf)?;
    let id = id
        .parse::<uuid::Uuid>()
        .map_err(|_| ApiError::Store(ferry_store::StoreError::not_found("credential")))?;
    answer(v1::credentials::revoke(State(state), ui.principal.clone(), ApiPath(id)).await).await?;
    Ok(Redirect::to(&format!("{}/credentials", ui.base())).into_response())
}

/// `GET /ui/t/{tenant}/secrets`: names and dates only.
pub async fn secrets(State(state): State<AppState>, ui: Ui) -> Result<Response, UiError> {
    let found = answer(v1::secrets::list(State(state), ui.principal.clone()).await).await;
    let body = found.map(|list| html! {
        h1 { "Secrets" }
        p.muted { "Values are sealed and never shown. Set them with " code { "ferry secrets set NAME" } "." }
        @if items(&list).is_empty() {
            (layout::empty("No secrets.", html! { "Deploy files and metric providers refer to secrets by name." }))
        } @else {
            div.table-wrap { table {
                thead { tr { th { "Name" } th { "Created" } th { "Updated" } } }
                tbody { @for s in items(&list) { tr { td { code { (text(s, "name")) } } td { (when(s, "created_at")) } td { (when(s, "updated_at")) } } } }
            } }
        }
    });
    page_or_refusal(&ui, Nav::Secrets, "Secrets", body)
}

/// `GET /ui/t/{tenant}/users`.
pub async fn users(State(state): State<AppState>, ui: Ui) -> Result<Response, UiError> {
    let found = async {
        let users =
            answer(v1::users::list(State(state.clone()), ui.principal.clone()).await).await?;
        let roles =
            answer(v1::roles::list(State(state.clone()), ui.principal.clone()).await).await?;
        Ok::<_, ApiError>((users, roles))
    }
    .await;
    let body = found.map(|(users, roles)| html! {
        h1 { "Users and roles" }
        @if items(&users).is_empty() {
            (layout::empty("No users.", html! { "Invite people with " code { "PUT /v1/users/{email}/roles" } "." }))
        } @else {
            div.table-wrap { table {
                thead { tr { th { "Email" } th { "Roles" } th.hide-narrow { "Since" } } }
                tbody { @for u in items(&users) { tr { td { (text(u, "email")) } td { (list_of(u, "roles")) } td.hide-narrow { (when(u, "created_at")) } } } }
            } }
        }
        h2 { "Roles" }
        div.table-wrap { table {
            thead { tr { th { "Role" } th { "Details" } } }
            tbody { @for r in items(&roles) { tr { td { (text(r, "name")) } td.muted { (list_of(r, "grants")) } } } }
        } }
    });
    page_or_refusal(&ui, Nav::Users, "Users and roles", body)
}

/// `GET /ui/t/{tenant}/metric-providers`.
pub async fn providers(State(state): State<AppState>, ui: Ui) -> Result<Response, UiError> {
    let found = answer(v1::metric_providers::list(State(state), ui.principal.clone()).await).await;
    let body = found.map(|list| html! {
        h1 { "Metric providers" }
        @if items(&list).is_empty() {
            (layout::empty("No metric providers.", html! { "Add one with " code { "ferry analysis set-provider" } "." }))
        } @else {
            div.table-wrap { table {
                thead { tr { th { "Name" } th { "Kind" } th { "Base URL" } th.hide-narrow { "Agent" } } }
                tbody { @for p in items(&list) { tr {
                    td { (text(p, "name")) } td { (text(p, "kind")) }
                    td { code { (p["settings"]["baseUrl"].as_str().or(p["baseUrl"].as_str()).or(p["base_url"].as_str()).unwrap_or("")) } }
                    td.hide-narrow { (p["agent"].as_str().unwrap_or("—")) }
                } } }
            } }
        }
    });
    page_or_refusal(&ui, Nav::Providers, "Metric providers", body)
}
