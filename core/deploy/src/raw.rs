//! The raw model: the deploy file as written, every value with its position and field path.
//!
//! Decoding fills this model and reports shape errors; validation and planning read it. Values
//! that failed to decode are left out (their error is already reported), so a [`DeployFile`]
//! returned by [`crate::parse`] is complete and consistent.

use indexmap::IndexMap;

use crate::plan::{
    AnalysisQuery, GatewayApi, InProgressPolicy, Istio, KubernetesServices, LookbackMethod, Mode,
    Smi, Webhook,
};

/// Where a value sits: 1-based line and column and its field path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path, e.g. `targets.prod.strategy`.
    pub path: String,
}

/// A value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The decoded value.
    pub value: T,
    /// Where it was written.
    pub pos: Pos,
}

/// A string-to-string map with each value's position (`context`).
pub type ContextMap = IndexMap<String, Spanned<String>>;

/// A parsed deploy file (structurally valid and cross-checked).
#[derive(Debug, Clone, PartialEq)]
pub struct DeployFile {
    /// The file name used in diagnostics.
    pub file: String,
    /// `application`.
    pub application: Spanned<String>,
    /// `description`.
    pub description: Option<String>,
    /// `context`.
    pub context: ContextMap,
    /// `deploymentConfig`.
    pub deployment_config: RawDeploymentConfig,
    /// `targets`, in file order.
    pub targets: Vec<RawTarget>,
    /// `manifests`.
    pub manifests: Vec<RawManifest>,
    /// `strategies`.
    pub strategies: Vec<RawStrategy>,
    /// `analysis.defaultMetricProviderName`.
    pub default_metric_provider_name: Option<String>,
    /// `analysis.queries`.
    pub queries: Vec<Spanned<AnalysisQuery>>,
    /// `webhooks`.
    pub webhooks: Vec<Spanned<Webhook>>,
    /// `trafficManagement`.
    pub traffic_management: Vec<RawTraffic>,
    /// `targetFilters[].includeTarget`.
    pub target_filters: Vec<Spanned<String>>,
    /// What the file does that is accepted but worth a look (never errors).
    pub warnings: Vec<crate::Diagnostic>,
}

/// `deploymentConfig` with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawDeploymentConfig {
    /// Timeout in seconds, if given.
    pub timeout_secs: Option<u64>,
    /// `keepDeploymentObject`.
    pub keep_deployment_object: bool,
    /// `ifDeploymentInProgress.strategy`.
    pub if_deployment_in_progress: InProgressPolicy,
}

/// `targets.<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTarget {
    /// The name (the map key) and its position.
    pub name: Spanned<String>,
    /// `account`.
    pub account: Spanned<String>,
    /// `namespace`.
    pub namespace: Option<Spanned<String>>,
    /// `strategy`.
    pub strategy: Option<Spanned<String>>,
    /// `constraints.dependsOn` entries.
    pub depends_on: Vec<Spanned<String>>,
    /// `constraints.beforeDeployment`.
    pub before_deployment: Vec<RawStep>,
    /// `constraints.afterDeployment`.
    pub after_deployment: Vec<RawStep>,
}

/// Where a manifest entry's objects come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// A local file or directory, normalised, relative to the deploy file's folder.
    Path(String),
    /// An `http(s)` URL fetched by the server.
    Url(String),
    /// Inline YAML text.
    Inline(String),
}

/// `manifests[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawManifest {
    /// The entry's source.
    pub source: Spanned<ManifestSource>,
    /// `targets` (None = every target).
    pub targets: Option<Vec<Spanned<String>>>,
}

/// `strategies.<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawStrategy {
    /// The name (the map key) and its position.
    pub name: Spanned<String>,
    /// Canary or blue/green.
    pub kind: RawStrategyKind,
}

/// The body of a strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum RawStrategyKind {
    /// `canary.steps`.
    Canary {
        /// The steps.
        steps: Vec<RawStep>,
    },
    /// `blueGreen`.
    BlueGreen {
        /// `activeService`.
        active_service: Option<String>,
        /// `previewService`.
        preview_service: Option<String>,
        /// `redirectTrafficAfter`.
        redirect_traffic_after: Vec<RawStep>,
        /// `shutDownOldVersionAfter` (or `shutdownOldVersionAfter`).
        shut_down_old_version_after: Vec<RawStep>,
        /// Position of the `blueGreen` mapping.
        pos: Pos,
    },
}

/// One step as written, with the position of its kind key's value.
#[derive(Debug, Clone, PartialEq)]
pub struct RawStep {
    /// Path like `strategies.x.canary.steps[0].pause`.
    pub pos: Pos,
    /// The step.
    pub kind: RawStepKind,
}

/// The step kinds, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum RawStepKind {
    /// `setWeight`.
    SetWeight(Spanned<u8>),
    /// `pause` with a duration, in seconds.
    PauseDuration(u64),
    /// `pause.untilApproved`.
    PauseUntilApproved {
        /// `requiresRoles`.
        requires_roles: Vec<String>,
        /// `approvalExpiration` in seconds.
        expiration_secs: Option<u64>,
    },
    /// `analysis`.
    Analysis(RawAnalysisStep),
    /// `runWebhook`.
    RunWebhook {
        /// `name`.
        name: Spanned<String>,
        /// `context`.
        context: ContextMap,
    },
    /// `exposeServices`.
    ExposeServices {
        /// `services`.
        services: Vec<String>,
        /// `ttl` in seconds (default 300).
        ttl_secs: u64,
    },
}

/// An `analysis` step as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RawAnalysisStep {
    /// `interval` × `units`, in seconds.
    pub interval_secs: u64,
    /// `numberOfJudgmentRuns`.
    pub number_of_judgment_runs: u32,
    /// `lookbackMethod`.
    pub lookback_method: LookbackMethod,
    /// `rollBackMode`.
    pub roll_back_mode: Mode,
    /// `rollForwardMode`.
    pub roll_forward_mode: Mode,
    /// `abortOnFailedJudgment`.
    pub abort_on_failed_judgment: bool,
    /// `metricProviderName`.
    pub metric_provider_name: Option<String>,
    /// `context`.
    pub context: ContextMap,
    /// `queries` (names).
    pub queries: Vec<Spanned<String>>,
}

/// `trafficManagement[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTraffic {
    /// `targets` (None = every target).
    pub targets: Option<Vec<Spanned<String>>>,
    /// `istio`.
    pub istio: Vec<Istio>,
    /// `smi`, names defaulted.
    pub smi: Vec<Smi>,
    /// `gatewayApi`, names defaulted.
    pub gateway_api: Vec<GatewayApi>,
    /// `kubernetes`.
    pub kubernetes: Vec<KubernetesServices>,
}

impl RawTraffic {
    /// Whether this entry applies to the target.
    pub fn applies_to(&self, target: &str) -> bool {
        self.targets
            .as_ref()
            .is_none_or(|ts| ts.iter().any(|t| t.value == target))
    }
}
