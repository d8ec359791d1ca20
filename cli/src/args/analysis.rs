//! The `ferry analysis` group: `compare` (the comparison judge on two local samples, offline)
//! and `try` (queries of a deploy file run over a past time range by the API).

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `ferry analysis …`.
#[derive(Debug, Args)]
pub(crate) struct AnalysisArgs {
    /// The analysis subcommand.
    #[command(subcommand)]
    pub command: AnalysisCommand,
}

/// `ferry analysis` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AnalysisCommand {
    /// Compare a canary sample with a baseline sample (one number per line) with Ferry's
    /// comparison judge: Mann-Whitney U, Hodges-Lehmann shift and interval, classification.
    Compare(CompareArgs),
    /// Run queries of a deploy file over a past time range (the API runs them against the
    /// tenant's metric providers) and print every run's values and the verdict.
    Try(TryArgs),
    /// Configure a metric provider of the tenant (Tenant Admin): its kind, base URL, the
    /// secrets holding its credentials, and the agent that reaches it if it is private.
    SetProvider(SetProviderArgs),
    /// List the tenant's metric providers.
    Providers,
}

/// `ferry analysis set-provider`.
#[derive(Debug, Args)]
pub(crate) struct SetProviderArgs {
    /// The provider's name (what deploy files call `metricProviderName`).
    pub name: String,
    /// `prometheus`, `datadog` or `newrelic`.
    #[arg(long)]
    pub kind: String,
    /// Its base URL.
    #[arg(long)]
    pub base_url: String,
    /// A credential field and the tenant secret that holds it, `FIELD=SECRET` (repeatable):
    /// prometheus `token` or `username`/`password`, datadog `apiKey`/`applicationKey`,
    /// newrelic `apiKey` (and `accountId`).
    #[arg(long = "secret-ref", value_name = "FIELD=SECRET")]
    pub secret_refs: Vec<String>,
    /// The agent that relays queries into a private network.
    #[arg(long)]
    pub agent: Option<String>,
}

/// `ferry analysis try`.
#[derive(Debug, Args)]
pub(crate) struct TryArgs {
    /// The deploy file whose `analysis.queries` to run (its manifests are read too).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Reads manifest paths that lead outside the deploy file's repository.
    #[arg(long)]
    pub allow_outside_repo: bool,
    /// A query to run (repeatable; default: every query of the file).
    #[arg(long = "query", value_name = "NAME")]
    pub queries: Vec<String>,
    /// Start of the range: RFC 3339 (2026-12-02T18:00:00Z) or relative (-2h, -30m, -90s).
    #[arg(long, allow_hyphen_values = true)]
    pub from: String,
    /// End of the range, as `--from` (default: now).
    #[arg(long, allow_hyphen_values = true, default_value = "now")]
    pub to: String,
    /// One judgment run's interval: seconds, or with a unit (90s, 5m, 1h); default the range.
    #[arg(long)]
    pub interval: Option<String>,
    /// `growing` (each window from the start) or `sliding`.
    #[arg(long)]
    pub lookback: Option<String>,
    /// `{{context.KEY}}` values, `KEY=VALUE` (repeatable, or comma-separated).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// `{{ferry.NAME}}` values such as replicaSetName, `NAME=VALUE` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// A past deployment whose target fills the variables (with `--target`).
    #[arg(long)]
    pub deployment: Option<String>,
    /// The target of `--deployment`.
    #[arg(long)]
    pub target: Option<String>,
}

/// How the Mann-Whitney p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MethodArg {
    /// Exact for small samples without ties, else asymptotic (as SciPy's `auto`).
    Auto,
    /// The exact null distribution.
    Exact,
    /// The normal approximation with tie and continuity correction.
    Asymptotic,
}

/// The harmful direction of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DirectionArg {
    /// Higher is worse.
    Increase,
    /// Lower is worse.
    Decrease,
    /// Any change is harmful.
    Either,
}

/// `ferry analysis compare`.
#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The baseline sample: one number per line (blank lines and `#` comments skipped).
    #[arg(long, value_name = "FILE")]
    pub baseline: PathBuf,
    /// The canary sample, in the same form.
    #[arg(long, value_name = "FILE")]
    pub canary: PathBuf,
    /// How the p-value is computed.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// Which change is harmful.
    #[arg(long, value_enum, default_value_t = DirectionArg::Increase)]
    pub direction: DirectionArg,
    /// Confidence of the interval (the test's level is 1 - confidence).
    #[arg(long, default_value_t = 0.98)]
    pub confidence: f64,
    /// The smallest shift that counts, as a share of the baseline's median.
    #[arg(long, default_value_t = 0.25)]
    pub tolerance: f64,
    /// Points per side below which the result is Inconclusive.
    #[arg(long, default_value_t = 30)]
    pub min_samples: u32,
    /// The metric's name in the explanation.
    #[arg(long, default_value = "metric")]
    pub name: String,
}
