//! Deployments: starting one (`POST /v1/deployments`), the list, the detail with targets, step
//! history and pending approvals, and the configuration as submitted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ids::{DeploymentId, TenantId};
use crate::status::{Decision, DeploymentStatus, StepStatus, TargetPhase, TargetStatus};

/// The deploy file as submitted.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct DeployFileBody {
    /// The file's name, used in error positions (e.g. `deploy.yml`).
    pub name: String,
    /// The YAML text.
    pub content: String,
}

/// A manifest file as submitted, by its path relative to the deploy file (or, for manifests the
/// deploy file names by URL, as the server fetched it, under its URL).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct ManifestBody {
    /// Relative path, as the deploy file's `manifests[].path` names it (or a file inside).
    pub path: String,
    /// The file's text.
    pub content: String,
}

/// Caller overrides of the deploy file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverridesBody {
    /// Replaces `application`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Added to (and overriding) every context.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
    /// Only these targets (and what they depend on, as the file's filters would).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

/// `POST /v1/deployments`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRequest {
    /// The deploy file.
    pub deploy_file: DeployFileBody,
    /// The local manifest files the deploy file names (those it names by URL are fetched by
    /// the server and must not be sent).
    #[serde(default)]
    pub manifests: Vec<ManifestBody>,
    /// Overrides of application, context and targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<OverridesBody>,
}

/// A stored (started or queued) deployment: what starting and redeploying answer.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct StartResponse {
    /// The new deployment's id.
    #[schema(value_type = String, format = Uuid)]
    pub id: DeploymentId,
    /// The application deployed.
    pub application: String,
    /// `running`, or `waiting` when queued behind the application's running deployment.
    pub status: DeploymentStatus,
    /// Older waiting deployments this one replaced in the queue.
    #[schema(value_type = Vec<String>)]
    pub superseded: Vec<DeploymentId>,
    /// What the deploy file does that is accepted but worth a look, one line each
    /// (`file:line:column: path: message`).
    pub warnings: Vec<String>,
}

/// Query of `GET /v1/deployments`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this application's deployments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Only deployments in this status (`waiting`, `running`, `paused`, `succeeded`, `failed`,
    /// `aborted`, `rolled_back`, `superseded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Page size, 1..=200 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A deployment's state, without its (possibly large) configuration.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Deployment {
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: DeploymentId,
    /// The application deployed.
    pub application: String,
    /// Where it is in its life.
    pub status: DeploymentStatus,
    /// Why it is in this status, for humans.
    pub reason: Option<String>,
    /// The id of the person or credential that started it.
    pub created_by: String,
    /// Bumped by every change.
    pub version: i64,
    /// The last event sequence number written (0 before any event).
    pub last_event_seq: i64,
    /// When it began rolling out (`null` while queued).
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (`null` while it runs).
    pub ended_at: Option<DateTime<Utc>>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A listed deployment and who started it, as people read it.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct ListedDeployment {
    /// The deployment.
    #[serde(flatten)]
    pub deployment: Deployment,
    /// The email (a person) or `credential NAME` its `created_by` id names (`null` when it
    /// names neither any more).
    pub created_by_name: Option<String>,
}

/// One page of `GET /v1/deployments`, newest first.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct DeploymentPage {
    /// The deployments.
    pub items: Vec<ListedDeployment>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

// Also the store's row of the `targets` table (ferry-store re-exports it).
/// A target of a deployment: one environment's rollout.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Target {
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Its deployment.
    #[schema(value_type = String, format = Uuid)]
    pub deployment_id: DeploymentId,
    /// The target's name in the deploy file; unique within the deployment.
    pub name: String,
    /// The agent identifier that reaches the target's cluster.
    pub account: String,
    /// The namespace deployed to.
    pub namespace: String,
    /// Where it is in its rollout.
    pub status: TargetStatus,
    /// The engine's phase within the status, e.g. `steps` or `promoting` (`null` before it
    /// starts).
    pub phase: Option<TargetPhase>,
    /// What the target should become (the engine's record; its shape may change between
    /// releases).
    #[cfg_attr(feature = "sqlx", sqlx(json))]
    pub desired: serde_json::Value,
    /// What the engine has done and seen: weights, ReplicaSets and their sizes before the
    /// rollout (`workloads`), pods ready (the engine's record; its shape may change between
    /// releases).
    #[cfg_attr(feature = "sqlx", sqlx(json))]
    pub observed: serde_json::Value,
    /// Index of the current strategy step.
    pub step_index: i32,
    /// Why it is where it is, for humans.
    pub reason: Option<String>,
    /// Bumped by every change.
    pub version: i64,
    /// When it started rolling out.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One recorded state change of a target's step.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct StepRecord {
    /// Its sequence number among all step records.
    pub id: i64,
    /// The target it belongs to.
    pub target_name: String,
    /// The strategy step (`null` for changes outside the steps, e.g. the target's rollback).
    pub step_index: Option<i32>,
    /// What happened.
    pub status: StepStatus,
    /// For humans: "canary at 25% (1/4 pods ready)".
    pub reason: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A manual approval a target waits for (or, once decided, its decision).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Approval {
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Its id.
    pub id: Uuid,
    /// Its deployment.
    #[schema(value_type = String, format = Uuid)]
    pub deployment_id: DeploymentId,
    /// The target that waits.
    pub target_name: String,
    /// Names the waiting step within the target, e.g. `strategy/2`.
    pub step_key: String,
    /// Role names of which the decider must hold one (empty: anyone who may deploy).
    pub requires_roles: Vec<String>,
    /// When it expires unanswered (`null`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// The answer, once given.
    pub decision: Option<Decision>,
    /// Who answered.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/deployments/{id}`: the deployment with its targets (status, phase, step, desired
/// and observed state), step history and pending approvals.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct DeploymentDetail {
    /// The deployment.
    pub deployment: Deployment,
    /// The email (a person) or `credential NAME` its `created_by` id names (`null` when it
    /// names neither any more).
    pub created_by_name: Option<String>,
    /// Its targets.
    pub targets: Vec<Target>,
    /// Its step history, in the order recorded.
    pub steps: Vec<StepRecord>,
    /// Approvals its targets wait for.
    pub pending_approvals: Vec<Approval>,
}

/// `GET /v1/deployments/{id}/config`: the configuration as submitted, and the validated plan
/// derived from it.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfig {
    /// The deploy file's text.
    pub deploy_file: String,
    /// The manifests, those the file names by URL under their URL.
    pub manifests: Vec<ManifestBody>,
    /// The plan Ferry derived (`ferry_deploy::Plan` as JSON).
    pub plan: serde_json::Value,
}
