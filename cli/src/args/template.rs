//! The grammar of `ferry schema` and `ferry template`: the deploy file's JSON Schema, and a
//! commented starting deploy file for a strategy with chosen features.

use clap::{Args, ValueEnum};

/// `ferry template`.
#[derive(Debug, Args)]
pub(crate) struct TemplateArgs {
    /// The strategy the file starts from.
    #[arg(value_enum)]
    pub strategy: TemplateStrategy,
    /// What to add (comma-separated or repeated): manual (an approval pause), automated (an
    /// analysis step and its queries), traffic (trafficManagement), webhook (a runWebhook step
    /// and the webhook it calls).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FEATURE,...")]
    pub features: Vec<Feature>,
    /// The schema named in the file's `yaml-language-server` line (default: the API's
    /// `/v1/schema/deploy.json`).
    #[arg(long, value_name = "URL")]
    pub schema_url: Option<String>,
}

/// The strategy of a starting file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TemplateStrategy {
    /// Shift traffic to the new version step by step.
    Canary,
    /// Bring the new version up beside the old one, then switch.
    #[value(alias = "blue-green")]
    Bluegreen,
}

/// A feature of a starting file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Feature {
    /// A pause until a person approves.
    Manual,
    /// An analysis step judging metric queries.
    Automated,
    /// Traffic management (SMI for canary, Kubernetes Services for blue/green).
    Traffic,
    /// A webhook call that waits for its callback.
    Webhook,
}
