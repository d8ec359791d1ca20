//! Deployments: start one from a deploy file and its manifests (`POST /v1/deployments`),
//! redeploy a stored one, list, read the detail and the configuration as submitted.
//!
//! Starting validates with `ferry_deploy::check` first and writes nothing when it fails; on
//! success the deployment, its targets, the `deployment.started` outbox message and the audit
//! entry commit in one transaction (DESIGN principles 4 and 7).
//!
//! Manifests the file names by URL are fetched once, at start ([`remote_manifests`]), and stored
//! with the submitted ones under their URL, so the configuration shows them and a redeploy
//! reuses them without fetching again.

use super::{audit, enqueue, remote_manifests};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::ui::names::Names;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
pub use ferry_api::deployments::{
    DeployFileBody, DeploymentConfig, DeploymentDetail, DeploymentPage, ListQuery,
    ListedDeployment, ManifestBody, OverridesBody, StartRequest, StartResponse,
};
use ferry_bus::messages::{DeploymentStarted, SchedulerMessage};
use ferry_deploy::{InProgressPolicy, Overrides, Plan, Source};
use ferry_store::approvals;
use ferry_store::deployments::{
    self, Created, DeploymentFilter, DeploymentStatus, ManifestFile, NewDeployment, OnBusy,
};
use ferry_store::targets::NewTarget;
use ferry_store::{Cursor, DeploymentId};

/// The file name a redeploy gives the stored deploy file in diagnostics (the original name is
/// not stored).
const REDEPLOY_FILE_NAME: &str = "deploy.yml";

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/deployments", post(start).get(list))
        .route("/deployments/{id}", get(detail))
        .route("/deployments/{id}/config", get(config))
        .route("/deployments/{id}/redeploy", post(redeploy))
}

/// Validates `request` and stores it as a new deployment.
#[utoipa::path(post, path = "/v1/deployments", tag = "deployments",
    request_body = StartRequest,
    responses(
        (status = 201, description = "Started", body = StartResponse),
        (status = 202, description = "Queued behind the running deployment (enqueueOne)", body = StartResponse),
        (status = 409, description = "The application is busy (reject); `running` names the deployment in progress"),
        (status = 400, description = "A submitted manifest's path is a URL"),
        (status = 413, description = "Body too large"),
        (status = 422, description = "Invalid deploy file, or a manifest URL could not be fetched; `errors` lists every problem"),
    ))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn start(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<StartRequest>,
) -> Result<Response, ApiError> {
    let overrides = request.overrides.unwrap_or_default();
    let input = StartInput {
        file_name: request.deploy_file.name,
        deploy_file: request.deploy_file.content,
        manifests: request
            .manifests
            .into_iter()
            .map(|m| ManifestFile {
                path: m.path,
                content: m.content,
            })
            .collect(),
        overrides: Overrides {
            application: overrides.application,
            context: overrides.context.into_iter().collect(),
            targets: overrides.targets,
        },
        audit: serde_json::Map::new(),
    };
    Ok(start_deployment(&state, &principal, input)
        .await?
        .into_response())
}

/// A deployment to start, however it was asked for (`/v1` or the Armory adapter).
#[derive(Debug)]
pub(crate) struct StartInput {
    /// The deploy file's name, used in error positions.
    pub file_name: String,
    /// The deploy file's text.
    pub deploy_file: String,
    /// The local manifest files it names (never URLs: those are fetched here).
    pub manifests: Vec<ManifestFile>,
    /// The caller's application, context and target overrides.
    pub overrides: Overrides,
    /// More details for the audit entry (e.g. the source control an Armory client sent).
    pub audit: serde_json::Map<String, serde_json::Value>,
}

/// A stored deployment: started (201) or queued behind the running one (202).
#[derive(Debug)]
pub(crate) struct Started {
    /// 201 or 202.
    pub status: StatusCode,
    /// What `/v1` answers.
    pub body: StartResponse,
}

impl IntoResponse for Started {
    fn into_response(self) -> Response {
        let location = format!("/v1/deployments/{}", self.body.id);
        let mut response = (self.status, Json(self.body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        response
    }
}

/// The one way a deployment is started: checks the caller may deploy, refuses manifests sent
/// under a URL, fetches those the file names by URL, then validates and stores ([`submit`]).
pub(crate) async fn start_deployment(
    state: &AppState,
    principal: &Principal,
    input: StartInput,
) -> Result<Started, ApiError> {
    principal.can_deploy()?;
    if let Some((i, m)) =
        (input.manifests.iter().enumerate()).find(|(_, m)| ferry_deploy::manifests::is_url(&m.path))
    {
        return Err(ApiError::BadRequest(format!(
            "manifests[{i}].path \"{}\" is a URL: manifests named by URL are fetched by the \
             server, send only local files",
            m.path
        )));
    }
    let mut manifests = input.manifests;
    // Only a file without errors is worth fetching for; `submit` reports the errors of one
    // that has them.
    if let Ok(file) = ferry_deploy::parse(&input.file_name, &input.deploy_file) {
        let fetched = remote_manifests::fetch_all(&state.api.manifest_fetch, &file)
            .await
            .map_err(ApiError::InvalidDeployFile)?;
        manifests.extend(fetched);
    }
    submit(
        state,
        principal,
        &input.file_name,
        input.deploy_file,
        manifests,
        &input.overrides,
        None,
        input.audit,
    )
    .await
}

/// Starts a new deployment from the stored configuration of `id`, with the same rules as a
/// start.
#[utoipa::path(post, path = "/v1/deployments/{id}/redeploy", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")),
    responses(
        (status = 201, description = "Started", body = StartResponse),
        (status = 202, description = "Queued", body = StartResponse),
        (status = 404, description = "No such deployment in this tenant"),
        (status = 409, description = "The application is busy"),
    ))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub(crate) async fn redeploy(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
) -> Result<Response, ApiError> {
    Ok(
        redeploy_deployment(&state, &principal, id, None, serde_json::Map::new())
            .await?
            .into_response(),
    )
}

/// Starts a new deployment from the stored configuration of `id`, with the same rules as a
/// start; `targets`, when given, replaces the stored plan's targets (Armory's `targetFilters`
/// on a redeploy).
pub(crate) async fn redeploy_deployment(
    state: &AppState,
    principal: &Principal,
    id: DeploymentId,
    targets: Option<Vec<String>>,
    audit: serde_json::Map<String, serde_json::Value>,
) -> Result<Started, ApiError> {
    principal.can_deploy()?;
    let stored = deployments::config(&state.store, principal.tenant, id).await?;
    // The stored plan already reflects the original overrides; passing its application,
    // context and targets again reproduces it from the stored file.
    let plan = Plan::from_stored(&stored.plan.0)
        .map_err(|e| ApiError::Conflict(format!("the stored plan cannot be reused: {e}")))?;
    let overrides = Overrides {
        application: Some(plan.application.clone()),
        context: plan.context.into_iter().collect(),
        targets: targets.unwrap_or_else(|| plan.targets.iter().map(|t| t.name.clone()).collect()),
    };
    submit(
        state,
        principal,
        REDEPLOY_FILE_NAME,
        stored.deploy_file,
        stored.manifests.0,
        &overrides,
        Some(id),
        audit,
    )
    .await
}

/// Validates, then stores the deployment, its targets, the outbox message and the audit entry
/// in one transaction.
#[allow(clippy::too_many_arguments)]
async fn submit(
    state: &AppState,
    principal: &Principal,
    file_name: &str,
    deploy_file: String,
    manifests: Vec<ManifestFile>,
    overrides: &Overrides,
    redeploy_of: Option<DeploymentId>,
    audit_extra: serde_json::Map<String, serde_json::Value>,
) -> Result<Started, ApiError> {
    let sources: Vec<Source> = manifests
        .iter()
        .map(|m| Source {
            path: m.path.clone(),
            content: m.content.clone(),
        })
        .collect();
    let plan = ferry_deploy::check(file_name, &deploy_file, &sources, overrides)
        .map_err(ApiError::InvalidDeployFile)?;
    let on_busy = match plan.deployment_config.if_deployment_in_progress {
        InProgressPolicy::Reject => OnBusy::Reject,
        InProgressPolicy::EnqueueOne => OnBusy::EnqueueOne,
    };
    let targets = plan
        .targets
        .iter()
        .map(|t| NewTarget {
            name: t.name.clone(),
            account: t.account.clone(),
            namespace: t.namespace.clone().unwrap_or_else(|| "default".into()),
            desired: serde_json::json!({ "weight": 0 }),
        })
        .collect();
    let new = NewDeployment {
        id: DeploymentId::new(),
        application: plan.application.clone(),
        created_by: principal.subject.clone(),
        deploy_file,
        manifests,
        plan: plan.to_stored(),
        targets,
    };

    let mut tx = state.store.begin().await?;
    let created = deployments::create(&mut tx, principal.tenant, &new, on_busy).await?;
    let (status, deployment, superseded) = match created {
        // Dropping the transaction rolls back: nothing of this request is stored.
        Created::Busy { running } => return Err(ApiError::Busy { running }),
        Created::Started(deployment) => {
            enqueue(
                &mut tx,
                principal,
                SchedulerMessage::DeploymentStarted(DeploymentStarted {
                    deployment_id: deployment.id.as_uuid(),
                }),
            )
            .await?;
            (StatusCode::CREATED, deployment, Vec::new())
        }
        Created::Queued {
            deployment,
            superseded,
        } => (StatusCode::ACCEPTED, deployment, superseded),
    };
    let mut details = serde_json::json!({
        "application": deployment.application,
        "status": deployment.status,
        "superseded": superseded,
        "redeployOf": redeploy_of,
    });
    if let Some(details) = details.as_object_mut() {
        details.extend(audit_extra);
    }
    audit(
        &mut tx,
        principal,
        if redeploy_of.is_some() {
            "deployment.redeploy"
        } else {
            "deployment.start"
        },
        "deployment",
        deployment.id.to_string(),
        details,
    )
    .await?;
    tx.commit().await.map_err(ferry_store::StoreError::from)?;

    Ok(Started {
        status,
        body: StartResponse {
            id: deployment.id,
            application: deployment.application,
            status: deployment.status,
            superseded,
            warnings: plan.warnings.iter().map(ToString::to_string).collect(),
        },
    })
}

/// Deployments newest first, filtered, one page at a time.
#[utoipa::path(get, path = "/v1/deployments", tag = "deployments", params(ListQuery),
    responses((status = 200, description = "One page, newest first", body = DeploymentPage)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    principal.can_read()?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<DeploymentStatus>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let cursor = query
        .cursor
        .as_deref()
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let filter = DeploymentFilter {
        application: query.application,
        status,
    };
    let page = deployments::list(
        &state.store,
        principal.tenant,
        &filter,
        cursor,
        query.limit.unwrap_or(50),
    )
    .await?;
    let names = Names::of(
        &state,
        principal.tenant,
        &principal.subject,
        page.items.iter().map(|d| d.created_by.as_str()),
    )
    .await?;
    let items = page
        .items
        .into_iter()
        .map(|deployment| ListedDeployment {
            created_by_name: names.name(&deployment.created_by).map(str::to_string),
            deployment,
        })
        .collect();
    Ok(Json(DeploymentPage {
        items,
        next: page.next.map(|cursor| cursor.to_string()),
    })
    .into_response())
}

/// The deployment with its targets (status, phase, step, desired and observed state: weights,
/// pods ready), step history, reasons and pending approvals.
#[utoipa::path(get, path = "/v1/deployments/{id}", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")),
    responses((status = 200, description = "The deployment", body = DeploymentDetail), (status = 404, description = "No such deployment in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
) -> Result<Response, ApiError> {
    principal.can_read()?;
    let detail = deployments::detail(&state.store, principal.tenant, id).await?;
    let pending_approvals =
        approvals::list_pending(&state.store, principal.tenant, Some(id)).await?;
    let creator = detail.deployment.created_by.as_str();
    let names = Names::of(&state, principal.tenant, &principal.subject, [creator]).await?;
    Ok(Json(DeploymentDetail {
        created_by_name: names.name(creator).map(str::to_string),
        deployment: detail.deployment,
        targets: detail.targets,
        steps: detail.steps,
        pending_approvals,
    })
    .into_response())
}

/// The deploy file and manifests as submitted, and the plan derived from them.
#[utoipa::path(get, path = "/v1/deployments/{id}/config", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")),
    responses((status = 200, description = "The configuration as submitted", body = DeploymentConfig), (status = 404, description = "No such deployment in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
async fn config(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
) -> Result<Response, ApiError> {
    principal.can_read()?;
    let stored = deployments::config(&state.store, principal.tenant, id).await?;
    Ok(Json(DeploymentConfig {
        deploy_file: stored.deploy_file,
        manifests: (stored.manifests.0.into_iter())
            .map(|m| ManifestBody {
                path: m.path,
                content: m.content,
            })
            .collect(),
        plan: stored.plan.0,
    })
    .into_response())
}
