//! The validated deployment plan: what the scheduler executes, stored as JSON.
//!
//! Everything here is resolved: names point to nothing, durations are seconds, enum spellings
//! are normalised, context is merged and manifests are parsed Kubernetes objects.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A deploy file turned into an executable plan. Stored with its schema version
/// ([`crate::stored`]); unknown fields are errors, never ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// The application name (after `--application`).
    pub application: String,
    /// Free text shown in CLI and UI.
    pub description: Option<String>,
    /// The deployment-wide context: file context overridden by the caller's.
    pub context: IndexMap<String, String>,
    /// Timeouts and concurrency policy.
    pub deployment_config: DeploymentConfig,
    /// Targets in a topological order of `dependsOn` (file order among independent ones).
    pub targets: Vec<TargetPlan>,
    /// Every webhook the file defines.
    pub webhooks: Vec<Webhook>,
    /// Every analysis query the file defines, with its provider resolved where the file says.
    pub queries: Vec<AnalysisQuery>,
    /// `analysis.defaultMetricProviderName`.
    pub default_metric_provider_name: Option<String>,
    /// What the file does that is accepted but worth a look (e.g. a webhook defined twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::Diagnostic>,
}

/// `deploymentConfig`, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfig {
    /// How long a target may wait for readiness, in seconds (default 1800, at least 60).
    pub timeout_secs: u64,
    /// Keep the user's Deployment object scaled to zero instead of deleting it.
    pub keep_deployment_object: bool,
    /// What a second start of the same application does while one runs.
    pub if_deployment_in_progress: InProgressPolicy,
}

/// `deploymentConfig.ifDeploymentInProgress.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum InProgressPolicy {
    /// Refuse the second start (409 with the running deployment's id).
    #[default]
    Reject,
    /// Keep the newest waiting request; older waiting ones are superseded.
    EnqueueOne,
}

/// One target of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetPlan {
    /// The target's name as written.
    pub name: String,
    /// The agent identifier of the cluster.
    pub account: String,
    /// Namespace forced onto namespaced manifests, if any.
    pub namespace: Option<String>,
    /// Targets that must succeed first (only those kept by target filters).
    pub depends_on: Vec<String>,
    /// Gates run in parallel before the target starts.
    pub before_deployment: Vec<Step>,
    /// Gates run in parallel after the target deployed.
    pub after_deployment: Vec<Step>,
    /// The name of the strategy the file gives, if any.
    pub strategy_name: Option<String>,
    /// How the new version is rolled out.
    pub strategy: Strategy,
    /// Traffic management entries that apply to this target, merged.
    pub traffic_management: TrafficManagement,
    /// Parsed Kubernetes objects, Namespaces and CRDs first.
    pub manifests: Vec<Manifest>,
    /// `http(s)` manifest URLs, fetched by the server.
    pub remote_manifests: Vec<String>,
}

/// The rollout strategy of a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Strategy {
    /// Weighted steps; after the last one the canary goes to 100% by itself.
    Canary {
        /// The steps in order.
        steps: Vec<Step>,
    },
    /// Blue/green switch of Service selectors.
    #[serde(rename_all = "camelCase")]
    BlueGreen {
        /// The Service that carries production traffic.
        active_service: String,
        /// The Service pointed at the new version before the switch; none without one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preview_service: Option<String>,
        /// Conditions (in parallel) before the active Service switches.
        redirect_traffic_after: Vec<Step>,
        /// Conditions (in parallel) before the old version is deleted.
        shut_down_old_version_after: Vec<Step>,
    },
    /// Apply everything at once (no strategy, or no Deployment among the manifests).
    Direct,
}

impl Strategy {
    /// `canary`, `blueGreen` or `direct`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Strategy::Canary { .. } => "canary",
            Strategy::BlueGreen { .. } => "blueGreen",
            Strategy::Direct => "direct",
        }
    }
}

/// One normalised step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Step {
    /// Move the canary to a weight (percent).
    SetWeight {
        /// 0..=100.
        weight: u8,
    },
    /// Wait for a time or an approval.
    Pause {
        /// What to wait for.
        pause: Pause,
    },
    /// Run a canary analysis.
    Analysis(AnalysisStep),
    /// Call a webhook and (unless disabled) wait for its callback.
    #[serde(rename_all = "camelCase")]
    RunWebhook {
        /// The webhook definition.
        webhook: Webhook,
        /// Context merged file < step < caller.
        context: IndexMap<String, String>,
    },
    /// Publish temporary preview addresses for Services.
    #[serde(rename_all = "camelCase")]
    ExposeServices {
        /// Service names.
        services: Vec<String>,
        /// Lifetime of the addresses (60..=86400 seconds, default 300).
        ttl_secs: u64,
    },
}

impl Step {
    /// The step's kind as operators name it (a bounded metric label): `setWeight`, `pause`,
    /// `approval`, `analysis`, `runWebhook` or `exposeServices`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Step::SetWeight { .. } => "setWeight",
            Step::Pause {
                pause: Pause::Duration(_),
            } => "pause",
            Step::Pause {
                pause: Pause::UntilApproved { .. },
            } => "approval",
            Step::Analysis(_) => "analysis",
            Step::RunWebhook { .. } => "runWebhook",
            Step::ExposeServices { .. } => "exposeServices",
        }
    }
}

/// What a pause waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Pause {
    /// A fixed time, in seconds.
    Duration(u64),
    /// An approval through API, CLI or UI.
    #[serde(rename_all = "camelCase")]
    UntilApproved {
        /// Roles allowed to approve (empty: anyone with deployment rights).
        requires_roles: Vec<String>,
        /// When the approval expires and the target fails, in seconds.
        expiration_secs: Option<u64>,
    },
}

/// A resolved analysis step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStep {
    /// Length of one judgment window, in seconds.
    pub interval_secs: u64,
    /// Number of judgment runs (≥ 1).
    pub number_of_judgment_runs: u32,
    /// How windows are laid out.
    pub lookback_method: LookbackMethod,
    /// Who decides a rollback after a failed analysis.
    pub roll_back_mode: Mode,
    /// Who decides to go on after a passed analysis.
    pub roll_forward_mode: Mode,
    /// Stop at the first failing run.
    pub abort_on_failed_judgment: bool,
    /// Context merged file < step < caller.
    pub context: IndexMap<String, String>,
    /// The queries, each with its provider resolved.
    pub queries: Vec<AnalysisQuery>,
}

/// `lookbackMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum LookbackMethod {
    /// Each window starts at the analysis start.
    #[default]
    Growing,
    /// Each window is the last interval.
    Sliding,
}

/// `rollBackMode` / `rollForwardMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Ferry decides.
    #[default]
    Automatic,
    /// A person decides through API, CLI or UI.
    Manual,
}

/// One analysis query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisQuery {
    /// Unique name.
    pub name: String,
    /// The query with template variables unrendered.
    pub query_template: String,
    /// Inclusive upper limit of the mean.
    pub upper_limit: Option<f64>,
    /// Inclusive lower limit of the mean.
    pub lower_limit: Option<f64>,
    /// The metric provider (query's own, else the step's, else the default).
    pub metric_provider_name: Option<String>,
    /// Ferry's opt-in comparison judge.
    pub judge: Option<Judge>,
}

/// The comparison judge settings of a query (ANALYSIS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judge {
    /// Which change is harmful.
    pub direction: Direction,
    /// Confidence of the interval (default 0.98).
    pub confidence: f64,
    /// Relative tolerance of the shift (default 0.25).
    pub tolerance: f64,
    /// Allowed effect size as a mean ratio (default 1.0).
    pub allowed_effect_size: f64,
    /// Minimum points per side, below which the verdict is Inconclusive (default 30).
    pub min_samples: u32,
    /// A failure of this metric fails the whole judgement.
    pub critical: bool,
    /// No data counts as a failure.
    pub must_have_data: bool,
    /// Metric group for weighting.
    pub group: Option<String>,
    /// Weight of the group (default 1).
    pub weight: f64,
    /// Score at or above which the verdict is Pass (default 95).
    pub pass: f64,
    /// Score at or above which the verdict is Inconclusive (default 75).
    pub marginal: f64,
}

/// The harmful direction of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Higher is worse.
    #[default]
    Increase,
    /// Lower is worse.
    Decrease,
    /// Any change is harmful.
    Either,
}

/// A webhook definition with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Unique name.
    pub name: String,
    /// HTTP method in upper case (default POST).
    pub method: String,
    /// URI with template variables unrendered.
    pub uri_template: String,
    /// Direct or through an agent.
    pub network_mode: NetworkMode,
    /// The agent to send through (default: the target's account).
    pub agent_identifier: Option<String>,
    /// Headers in order.
    pub headers: Vec<Header>,
    /// Body template.
    pub body_template: Option<String>,
    /// Retries on connection failure or non-2xx.
    pub retry_count: u32,
    /// Do not wait for a callback.
    pub disable_callback: bool,
}

/// One webhook header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value template.
    pub value: String,
}

/// `networkMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum NetworkMode {
    /// From the control plane.
    #[default]
    Direct,
    /// Through an agent into a private network.
    RemoteNetworkAgent,
}

/// Traffic management applying to a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TrafficManagement {
    /// Istio routes.
    pub istio: Vec<Istio>,
    /// SMI (Linkerd) TrafficSplits.
    pub smi: Vec<Smi>,
    /// Gateway API HTTPRoutes. Plans stored before the key existed have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_api: Vec<GatewayApi>,
    /// Blue/green Service pairs.
    pub kubernetes: Vec<KubernetesServices>,
}

impl TrafficManagement {
    /// Whether nothing applies.
    pub fn is_empty(&self) -> bool {
        self.istio.is_empty()
            && self.smi.is_empty()
            && self.gateway_api.is_empty()
            && self.kubernetes.is_empty()
    }
}

/// A Gateway API HTTPRoute whose backends Ferry weights, names defaulted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApi {
    /// The HTTPRoute.
    pub http_route_name: String,
    /// The Service its rules send to.
    pub root_service_name: String,
    /// The canary Service (default `<root>-canary`).
    pub canary_service_name: String,
}

/// An Istio VirtualService (and optional DestinationRule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Istio {
    /// VirtualService name.
    pub virtual_service: String,
    /// The HTTP route to weight (default: the only one).
    pub http_route_name: Option<String>,
    /// The DestinationRule, if subsets are used.
    pub destination_rule: Option<DestinationRule>,
}

/// An Istio DestinationRule reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    /// DestinationRule name.
    pub name: String,
    /// Subset of the stable version.
    pub active_subset_name: Option<String>,
    /// Subset of the canary.
    pub canary_subset_name: Option<String>,
}

/// An SMI TrafficSplit, names defaulted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Smi {
    /// The root Service.
    pub root_service_name: String,
    /// The canary Service (default `<root>-canary`).
    pub canary_service_name: String,
    /// The TrafficSplit (default `<root>`).
    pub traffic_split_name: String,
}

/// A blue/green Service pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServices {
    /// The production Service.
    pub active_service: String,
    /// The preview Service, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_service: Option<String>,
}

/// One parsed Kubernetes object of a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Where it came from: a source path or `manifests[i].inline`.
    pub source: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// The namespace it will be applied in (None for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// The whole object, namespace forced where the target has one.
    pub object: Value,
}
