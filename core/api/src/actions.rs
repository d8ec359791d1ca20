//! Actions on a deployment: approve and reject a pending approval, abort, roll back, skip a
//! pause, roll forward, and webhook callbacks.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::DeploymentId;

/// Body of approve and reject.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The target whose pending approval is decided.
    pub target: String,
    /// Why, for the audit trail and the deployment's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Body of abort (optional).
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortRequest {
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of rollback (optional).
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Only this target; every target when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of skip-pause and roll-forward.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetRequest {
    /// The target.
    pub target: String,
    /// Why, for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of a webhook callback.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackRequest {
    /// Whether the webhook's work succeeded.
    pub success: bool,
    /// A message for the user (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md_message: Option<String>,
}

/// What an accepted action answers.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct Accepted {
    /// The deployment acted on.
    #[schema(value_type = String, format = Uuid)]
    pub deployment: DeploymentId,
    /// The action, e.g. `abort`.
    pub action: String,
    /// The target acted on, if the action names one.
    pub target: Option<String>,
}
