//! The API of Armory CD-as-a-Service, as its CLI (`armory deploy start|status`) and GitHub
//! Action call it, so CI written for Armory keeps working against Ferry with only the URLs
//! changed:
//!
//! - `POST /pipelines/kubernetes` and `POST /pipelines`: start a deployment from the deploy
//!   file sent as JSON with its manifests' contents (`files`), or, as
//!   `application/vnd.start.kubernetes.pipeline.v2.link+json`, from the configuration named by
//!   `X-Armory-Config-Location` (a stored deployment's, for a redeploy, or a deploy file's URL);
//! - `GET /pipelines/{id}`: the deployment in Armory's pipeline shape;
//! - `GET /deployments/{id}`: one target of a deployment (the ids come from the pipeline's
//!   steps).
//!
//! These are thin adapters: they translate the request, then call the same functions as the
//! `/v1` handlers ([`crate::v1::deployments::start_deployment`],
//! [`crate::v1::deployments::redeploy_deployment`]), with the same [`Principal`], roles, tenant
//! isolation, rate limit and body limit. Errors are answered in Armory's envelope
//! (`{error_id, errors: [{message, code, metadata}]}`, [`ArmoryError`]) with the status `/v1`
//! would give; `error_id` is the request id.

mod request;
pub(crate) mod start;
pub(crate) mod status;
mod yaml;

pub use start::{LinkRequest, StartPipelineRequest, StartPipelineResponse};
pub use status::{DeploymentStatusResponse, PipelineStatusResponse, PipelineStep, WorkflowStatus};

use crate::auth::Principal;
use crate::error::{ApiError, current_request_id};
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The deploy file as JSON with its manifests' contents.
pub const MEDIA_TYPE_PIPELINE_V2: &str = "application/vnd.start.kubernetes.pipeline.v2+json";

/// A start from a configuration somewhere else (`X-Armory-Config-Location`).
pub const MEDIA_TYPE_PIPELINE_V2_LINK: &str =
    "application/vnd.start.kubernetes.pipeline.v2.link+json";

/// The header naming the configuration of a link start: `armory::<api>/pipelines/<id>/config`
/// (a redeploy) or an `http(s)` URL of a deploy file.
pub const CONFIG_LOCATION_HEADER: &str = "x-armory-config-location";

/// The Armory routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pipelines", post(start::start_generic))
        .route("/pipelines/kubernetes", post(start::start_kubernetes))
        .route("/pipelines/{id}", get(status::pipeline))
        .route("/deployments/{id}", get(status::deployment))
}

/// The caller, with an authentication failure answered in Armory's envelope.
fn principal(extracted: Result<Principal, ApiError>) -> Result<Principal, ArmoryError> {
    extracted.map_err(ArmoryError)
}

/// Armory's error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArmoryErrorBody {
    /// Identifies the failure in the server's logs (the request id).
    pub error_id: String,
    /// One entry per problem (one per deploy-file error).
    pub errors: Vec<ArmoryErrorItem>,
}

/// One problem of [`ArmoryErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ArmoryErrorItem {
    /// What is wrong, for people.
    pub message: String,
    /// Ferry's stable problem code (`invalid_deploy_file`, `deployment_in_progress`, ...).
    pub code: String,
    /// Where a deploy-file error is (`file`, `line`, `column`, `path`), or the running
    /// deployment of a busy application (`running`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// An [`ApiError`] answered with its `/v1` status and headers but Armory's body.
#[derive(Debug)]
pub struct ArmoryError(pub ApiError);

impl From<ApiError> for ArmoryError {
    fn from(error: ApiError) -> ArmoryError {
        ArmoryError(error)
    }
}

impl ArmoryError {
    /// The envelope's entries; internals never show (a 500 says only where to look).
    fn items(&self) -> Vec<ArmoryErrorItem> {
        let (status, code, _) = self.0.classify();
        if status.is_server_error() && !matches!(self.0, ApiError::Unavailable(_)) {
            return vec![ArmoryErrorItem {
                message: "internal error; the error_id identifies it in the server's logs".into(),
                code: code.into(),
                metadata: None,
            }];
        }
        match &self.0 {
            ApiError::InvalidDeployFile(diagnostics) => diagnostics
                .items()
                .iter()
                .map(|d| ArmoryErrorItem {
                    message: d.to_string(),
                    code: code.into(),
                    metadata: Some(json!({
                        "file": d.file,
                        "line": d.line,
                        "column": d.column,
                        "path": d.path,
                        "suggestion": d.suggestion,
                    })),
                })
                .collect(),
            ApiError::Busy { running } => vec![ArmoryErrorItem {
                message: format!(
                    "cannot start a deployment of this application: deployment {running} is in \
                     progress (deploymentConfig.ifDeploymentInProgress.strategy is reject)"
                ),
                code: code.into(),
                metadata: Some(json!({ "running": running.to_string() })),
            }],
            other => vec![ArmoryErrorItem {
                message: other.to_string(),
                code: code.into(),
                metadata: None,
            }],
        }
    }
}

impl IntoResponse for ArmoryError {
    fn into_response(self) -> Response {
        let body = ArmoryErrorBody {
            error_id: current_request_id().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            errors: self.items(),
        };
        // The /v1 response gives the status, the headers (WWW-Authenticate, Retry-After) and
        // the single log line of a 500; only its body is replaced.
        let mut response = self.0.into_response();
        response.headers_mut().remove(header::CONTENT_LENGTH);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        *response.body_mut() = Body::from(serde_json::to_vec(&body).unwrap_or_default());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use ferry_store::DeploymentId;

    async fn body(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_keep_their_status_and_take_armorys_envelope() {
        let running = DeploymentId::new();
        let response = ArmoryError(ApiError::Busy { running }).into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let busy = body(response).await;
        assert!(!busy["error_id"].as_str().unwrap().is_empty());
        assert_eq!(busy["errors"][0]["code"], "deployment_in_progress");
        assert_eq!(
            busy["errors"][0]["metadata"]["running"],
            running.to_string()
        );

        let response = ArmoryError(ApiError::Unauthorized("token expired".into())).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            body(response).await["errors"][0]["message"],
            "token expired"
        );

        let hidden = ApiError::Store(ferry_store::StoreError::Database(sqlx::Error::Protocol(
            "secret internals".into(),
        )));
        let response = ArmoryError(hidden).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !body(response)
                .await
                .to_string()
                .contains("secret internals")
        );
    }
}
