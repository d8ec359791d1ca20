//! Canary analysis: a deployment's analyses, retrospective analysis, and the metric providers
//! analyses query.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ids::{DeploymentId, TenantId};
use crate::wire_enum;

wire_enum! {
    /// Where an analysis is.
    #[derive(utoipa::ToSchema)]
    pub enum AnalysisStatus {
        Running = "running",
        Passed = "passed",
        Failed = "failed",
        Inconclusive = "inconclusive",
    }
}

wire_enum! {
    /// The query languages Ferry speaks.
    #[derive(utoipa::ToSchema)]
    pub enum ProviderKind {
        Prometheus = "prometheus",
        Datadog = "datadog",
        Newrelic = "newrelic",
    }
}

#[cfg(feature = "sqlx")]
mod stored {
    use super::{AnalysisStatus, ProviderKind};
    use crate::sqlx_text;

    sqlx_text!(AnalysisStatus);
    sqlx_text!(ProviderKind);
}

/// `POST /v1/analysis/retrospective`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrospectiveRequest {
    /// The queries, as a deploy file's `analysis.queries` entries (`name`, `queryTemplate`,
    /// `upperLimit`, `lowerLimit`, `metricProviderName`, `judge`).
    #[schema(value_type = Vec<Object>)]
    pub queries: Vec<ferry_deploy::AnalysisQuery>,
    /// The provider of queries that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_provider_name: Option<String>,
    /// Start of the time range (RFC 3339).
    pub from: DateTime<Utc>,
    /// End of the time range, in the past.
    pub to: DateTime<Utc>,
    /// Length of one judgment run's interval in seconds (default: the whole range, one run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// `growing` (default) or `sliding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback_method: Option<String>,
    /// `{{context.X}}` values.
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// `{{ferry.X}}` values (e.g. `replicaSetName`), over those of the deployment's target.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// A past deployment whose target fills the variables (application, environment,
    /// account, namespace, the new and baseline ReplicaSets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub deployment_id: Option<DeploymentId>,
    /// The target of `deploymentId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// One judgment run: of a retrospective analysis, or of a deployment's analysis.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgmentRun {
    /// 0-based.
    pub index: u32,
    /// Start of the run's window.
    pub window_start: DateTime<Utc>,
    /// End of the run's window.
    pub window_end: DateTime<Utc>,
    /// Whether every query passed in this run.
    pub passed: bool,
    /// One line per query.
    pub explanation: String,
    /// Values per query, comparisons with their samples and numbers (the judge's record,
    /// `summary` and `comparisons`; its shape may change between releases).
    #[schema(value_type = Object)]
    pub results: serde_json::Value,
}

/// One query's final judgement.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct QueryVerdict {
    /// The query's name.
    pub query: String,
    /// Whether it passed.
    pub passed: bool,
    /// Why, one line.
    pub explanation: String,
}

/// The verdict of a retrospective analysis.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct Verdict {
    /// `passed`, `failed` or `inconclusive` (never `running`).
    pub status: AnalysisStatus,
    /// Why, one line.
    pub reason: String,
    /// Each query's judgement.
    pub queries: Vec<QueryVerdict>,
}

/// The answer of a retrospective analysis.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct RetrospectiveResponse {
    /// Every run, in order.
    pub runs: Vec<JudgmentRun>,
    /// The status, its one-line reason, and each query's judgement.
    pub verdict: Verdict,
}

/// An analysis of a deployment (`GET /v1/deployments/{id}/analyses`).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Its id.
    pub id: Uuid,
    /// The target it judges.
    pub target: String,
    /// Names the step within the target, e.g. `step:1`.
    pub step_key: String,
    /// Where it is.
    pub status: AnalysisStatus,
    /// Why it ended as it did, one line (`null` while it runs).
    pub reason: Option<String>,
    /// Judgment runs finished.
    pub runs_done: i32,
    /// Judgment runs it makes in all.
    pub total_runs: i32,
    /// When it started (growing windows begin here).
    pub started_at: DateTime<Utc>,
    /// When its next run is due (`null` unless it runs).
    pub next_run_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// The verdict as svc-canary recorded it: `status`, `reason`, and, when its runs were
    /// judged, `queries` (as a retrospective verdict's) and `runs` (`null` while it runs; the
    /// record's shape may change between releases).
    #[schema(value_type = Option<Object>)]
    pub verdict: Option<serde_json::Value>,
    /// Its finished runs, in order.
    pub runs: Vec<JudgmentRun>,
}

/// `PUT /v1/metric-providers/{name}`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutProvider {
    /// `prometheus`, `datadog` or `newrelic`.
    pub kind: String,
    /// The provider's base URL (`http://` or `https://`).
    pub base_url: String,
    /// Credential fields (e.g. `apiKey`) mapped to names of the tenant's secrets.
    #[serde(default)]
    pub secret_refs: BTreeMap<String, String>,
    /// The agent that reaches a provider inside a private network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// A configured metric provider (its credentials by the names of the tenant's secrets that
/// hold them; the values are never shown).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct MetricProvider {
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Its name, what deploy files call `metricProviderName`.
    pub name: String,
    /// Its query language.
    pub kind: ProviderKind,
    /// Where queries go.
    pub base_url: String,
    /// Credential field to secret name, e.g. `apiKey` to `datadog-api-key`.
    pub secret_refs: BTreeMap<String, String>,
    /// The agent that relays queries when the provider is in a private network.
    pub agent: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}
