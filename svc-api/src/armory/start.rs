//! `POST /pipelines/kubernetes` and `POST /pipelines`: Armory's deployment start, answered 202
//! `{pipelineId, warnings}` whether Ferry started the deployment or queued it (`enqueueOne`).

use super::request::{self, Link, Location};
use super::{ArmoryError, ArmoryErrorBody, MEDIA_TYPE_PIPELINE_V2, MEDIA_TYPE_PIPELINE_V2_LINK};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use crate::v1::deployments::{StartInput, Started, redeploy_deployment, start_deployment};
use crate::v1::remote_manifests;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_deploy::{Diagnostic, Diagnostics, Overrides};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The body of a `pipeline.v2+json` start: the deploy file's own keys (`version`, `kind`,
/// `application`, `targets`, `manifests`, `strategies`, `analysis`, `webhooks`,
/// `trafficManagement`, `deploymentConfig`, ...) as JSON, plus the members below.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct StartPipelineRequest {
    /// The application (the CLI's `--application` replaces the file's here).
    application: String,
    /// The deploy file's targets.
    #[schema(value_type = Object)]
    targets: serde_json::Value,
    /// The deploy file's manifests.
    #[schema(value_type = Vec<Object>)]
    manifests: Vec<serde_json::Value>,
    /// The contents of every local file a `manifests[].path` names: that path (as written) to
    /// the contents of the file, or of each YAML file under the directory.
    files: BTreeMap<String, Vec<String>>,
    /// Context variables: the file's with the CLI's `--add-context` merged in.
    context: Option<BTreeMap<String, String>>,
    /// Deploy only these targets (the CLI's `-t`); `null` or empty for all.
    #[schema(value_type = Option<Vec<Object>>)]
    target_filters: Option<Vec<serde_json::Value>>,
    /// Where the change comes from (repository, commit, pull request); kept in the audit log.
    #[schema(value_type = Option<Object>)]
    source_control: Option<serde_json::Value>,
}

/// The body of a `pipeline.v2.link+json` start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct LinkRequest {
    /// Armory's override of every target's account: refused when not empty.
    account: Option<String>,
    /// Deploy only these targets: `[{"includeTarget": "<name>"}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    target_filters: Option<Vec<serde_json::Value>>,
    /// Context added to a fetched deploy file's (refused on a redeploy, which reuses the
    /// stored context).
    context: Option<BTreeMap<String, String>>,
    /// Kept in the audit log.
    #[schema(value_type = Option<Object>)]
    source_control: Option<serde_json::Value>,
}

/// A started (or queued) deployment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartPipelineResponse {
    /// The deployment's id (`GET /pipelines/{id}`, and `/v1/deployments/{id}`).
    pub pipeline_id: String,
    /// What the deploy file does that is accepted but worth a look.
    pub warnings: Vec<String>,
}

/// Starts a Kubernetes deployment from the deploy file sent as JSON with its manifests, or
/// from the configuration `X-Armory-Config-Location` names.
#[utoipa::path(post, path = "/pipelines/kubernetes", tag = "armory",
    request_body(content = StartPipelineRequest, content_type = "application/vnd.start.kubernetes.pipeline.v2+json",
        description = "The deploy file as JSON with `files`. With content type \
                       `application/vnd.start.kubernetes.pipeline.v2.link+json`, a `LinkRequest` \
                       instead, and the header `X-Armory-Config-Location: \
                       armory::<api>/pipelines/<id>/config` (redeploy) or an http(s) URL of a \
                       deploy file. `application/json` is read like the v2 type."),
    params(("X-Armory-Config-Location" = Option<String>, Header,
        description = "For a link start: the configuration to deploy")),
    responses(
        (status = 202, description = "Started, or queued behind the running deployment", body = StartPipelineResponse),
        (status = 400, description = "Malformed body, unknown content type, bad config location", body = ArmoryErrorBody),
        (status = 401, description = "No valid token", body = ArmoryErrorBody),
        (status = 403, description = "Needs a role that may deploy", body = ArmoryErrorBody),
        (status = 404, description = "A redeploy of a deployment this tenant does not have", body = ArmoryErrorBody),
        (status = 409, description = "The application is busy; metadata.running names the deployment in progress", body = ArmoryErrorBody),
        (status = 413, description = "Body too large", body = ArmoryErrorBody),
        (status = 422, description = "Invalid deploy file: one error per problem, with its position", body = ArmoryErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn start_kubernetes(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ArmoryError> {
    start(&state, principal, &headers, body).await
}

/// Armory's generic start (the CLI uses it for `enqueueOne` files); the same as
/// `/pipelines/kubernetes`, whose deploy files are the only kind Ferry runs.
#[utoipa::path(post, path = "/pipelines", tag = "armory",
    request_body(content = StartPipelineRequest, content_type = "application/json",
        description = "As `POST /pipelines/kubernetes`."),
    params(("X-Armory-Config-Location" = Option<String>, Header,
        description = "For a link start: the configuration to deploy")),
    responses(
        (status = 202, description = "Started, or queued behind the running deployment", body = StartPipelineResponse),
        (status = 400, description = "Malformed body, unknown content type, bad config location", body = ArmoryErrorBody),
        (status = 401, description = "No valid token", body = ArmoryErrorBody),
        (status = 403, description = "Needs a role that may deploy", body = ArmoryErrorBody),
        (status = 409, description = "The application is busy", body = ArmoryErrorBody),
        (status = 413, description = "Body too large", body = ArmoryErrorBody),
        (status = 422, description = "Invalid deploy file (a `kind` other than kubernetes among them)", body = ArmoryErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn start_generic(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ArmoryError> {
    start(&state, principal, &headers, body).await
}

/// What a content type asks for.
enum Form {
    /// The deploy file as JSON.
    Deploy,
    /// A configuration named by header.
    Link,
}

fn form(headers: &HeaderMap) -> Result<Form, ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match essence.as_deref() {
        None | Some("application/json" | MEDIA_TYPE_PIPELINE_V2) => Ok(Form::Deploy),
        Some(MEDIA_TYPE_PIPELINE_V2_LINK) => Ok(Form::Link),
        Some(other) => Err(ApiError::BadRequest(format!(
            "content type {other:?} is not accepted; use {MEDIA_TYPE_PIPELINE_V2}, \
             {MEDIA_TYPE_PIPELINE_V2_LINK} or application/json"
        ))),
    }
}

async fn start(
    state: &AppState,
    principal: Result<Principal, ApiError>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ArmoryError> {
    let principal = super::principal(principal)?;
    // Refuse a caller who may not deploy before reading (or fetching) anything for them.
    principal.can_deploy()?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    let started = match form(headers)? {
        Form::Deploy => {
            let input = request::deploy_request(&body)?;
            start_deployment(state, &principal, input).await?
        }
        Form::Link => {
            let location = headers
                .get(super::CONFIG_LOCATION_HEADER)
                .and_then(|v| v.to_str().ok());
            let link = request::link_request(&body, location)?;
            start_link(state, &principal, link).await?
        }
    };
    let id = started.body.id.to_string();
    let mut response = (
        StatusCode::ACCEPTED,
        Json(StartPipelineResponse {
            pipeline_id: id.clone(),
            warnings: started.body.warnings,
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("/pipelines/{id}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// A redeploy of a stored deployment, or a start from a fetched deploy file.
async fn start_link(
    state: &AppState,
    principal: &Principal,
    link: Link,
) -> Result<Started, ApiError> {
    let Link {
        location,
        targets,
        context,
        audit,
    } = link;
    match location {
        Location::Pipeline(id) => {
            if !context.is_empty() {
                return Err(ApiError::BadRequest(
                    "a redeploy reuses the stored deployment's context; context cannot be added"
                        .into(),
                ));
            }
            let targets = (!targets.is_empty()).then_some(targets);
            redeploy_deployment(state, principal, id, targets, audit).await
        }
        Location::Url(url) => {
            let text = remote_manifests::fetch(&state.api.manifest_fetch, &url)
                .await
                .map_err(|e| {
                    ApiError::InvalidDeployFile(Diagnostics(vec![Diagnostic {
                        file: url.clone(),
                        line: 1,
                        column: 1,
                        path: "X-Armory-Config-Location".into(),
                        message: format!("cannot fetch the deploy file: {e}"),
                        suggestion: None,
                    }]))
                })?;
            let input = StartInput {
                file_name: url,
                deploy_file: text,
                manifests: Vec::new(),
                overrides: Overrides {
                    application: None,
                    context,
                    targets,
                },
                audit,
            };
            start_deployment(state, principal, input).await
        }
    }
}
