//! The command-line grammar (clap derive). New command groups (login, agents, creds, secrets,
//! deploy start/status) are added as variants of [`Command`] and [`DeployCommand`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Ferry: continuous deployment as a service.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with deployments and deploy files.
    Deploy(DeployArgs),
}

/// `ferry deploy …`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The deploy subcommand.
    #[command(subcommand)]
    pub command: DeployCommand,
}

/// `ferry deploy` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Check a deploy file and its manifests locally and print the plan's summary.
    Validate(ValidateArgs),
}

/// `ferry deploy validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The deploy file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Overrides the file's `application`.
    #[arg(long, value_name = "NAME")]
    pub application: Option<String>,
    /// Adds or overrides context variables: `k=v,k2=v2` (repeatable).
    #[arg(long = "add-context", value_name = "K=V,...")]
    pub add_context: Vec<String>,
    /// Deploys only these targets (`--target a b` or repeated); fills `targetFilters`.
    #[arg(long = "target", value_name = "TARGET", num_args = 1..)]
    pub targets: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn grammar_is_consistent_and_parses_validate() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "ferry",
            "deploy",
            "validate",
            "-f",
            "d.yml",
            "--target",
            "a",
            "b",
            "--target",
            "c",
            "--add-context",
            "k=v",
        ])
        .unwrap();
        let Command::Deploy(DeployArgs {
            command: DeployCommand::Validate(v),
        }) = cli.command;
        assert_eq!(v.file, PathBuf::from("d.yml"));
        assert_eq!(v.targets, ["a", "b", "c"]);
        assert_eq!(v.add_context, ["k=v"]);
    }
}
