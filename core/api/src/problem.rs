//! The error answer of every `/v1` endpoint: a problem document (RFC 9457,
//! `application/problem+json`) with Ferry's stable `code`, and the members some codes add.

use serde::{Deserialize, Serialize};

use crate::ids::DeploymentId;

/// A problem document. Its schema in the OpenAPI document is svc-api's `Problem`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Problem {
    /// A URI naming the problem type: `urn:ferry:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, fixed summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this case; never internals.
    pub detail: String,
    /// Stable, machine-readable code clients switch on (e.g. `invalid_deploy_file`,
    /// `deployment_in_progress`).
    pub code: String,
    /// The request id, to find the server's log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `invalid_deploy_file`: every problem of the deploy file and its manifests, positioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ferry_deploy::Diagnostic>>,
    /// `deployment_in_progress`: the deployment holding the application's slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<DeploymentId>,
}
