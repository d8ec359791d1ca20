//! The grammar of `ferry deploy …`: validate and start a deploy file, read deployments, and act
//! on one (approve, reject, abort, rollback, skip a pause, roll forward, redeploy).

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};
use clap_complete::engine::ArgValueCompleter;

/// `ferry deploy …`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The deploy subcommand.
    #[command(subcommand)]
    pub command: DeployCommand,
}

/// `ferry deploy` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DeployCommand {
    /// Check a deploy file and its manifests locally and print the plan's summary.
    Validate(ValidateArgs),
    /// Send a deploy file and its manifests to Ferry and start a deployment.
    Start(StartArgs),
    /// Show a deployment: its targets, their steps, and what it waits for.
    Status(StatusArgs),
    /// List deployments, newest first.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Approve a target's pending approval.
    Approve(DecideArgs),
    /// Reject a target's pending approval (the target rolls back).
    Reject(DecideArgs),
    /// Stop a deployment; targets in progress roll back.
    Abort(AbortArgs),
    /// Roll back a deployment, or one of its targets.
    Rollback(RollbackArgs),
    /// End a target's current timed pause now.
    SkipPause(TargetArgs),
    /// Continue a target waiting on a manual judgement.
    RollForward(TargetArgs),
    /// Start a new deployment from a stored deployment's configuration.
    Redeploy(RedeployArgs),
    /// An application's deployments, newest first, with the versions each rolled out.
    History(HistoryArgs),
    /// Redeploy an earlier deployment of an application: by default the newest succeeded one
    /// before the one running now.
    Undo(UndoArgs),
}

/// `ferry deploy validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The deploy file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Overrides the file's `application` (`-n` as in Armory's CLI).
    #[arg(short = 'n', long, value_name = "NAME")]
    pub application: Option<String>,
    /// Adds or overrides context variables: `k=v,k2=v2` (repeatable).
    #[arg(long = "add-context", value_name = "K=V,...")]
    pub add_context: Vec<String>,
    /// Deploys only these targets (`-t a -t b`, `--target a b`; Armory's `--targetFilters`
    /// too); fills `targetFilters`.
    #[arg(short = 't', long = "target", visible_alias = "targetFilters", value_name = "TARGET", num_args = 1..)]
    pub targets: Vec<String>,
    /// Reads manifest paths that lead outside the deploy file's repository (`..`, absolute
    /// paths, symbolic links); by default they are refused.
    #[arg(long)]
    pub allow_outside_repo: bool,
}

/// How `--watch` behaves.
#[derive(Debug, Clone, Args)]
pub(crate) struct WatchArgs {
    /// Follow the deployment live until it ends; the exit code tells how it ended.
    #[arg(long)]
    pub watch: bool,
    /// While watching, approve every pending approval yourself (for unattended runs).
    #[arg(long, requires = "watch")]
    pub auto_approve: bool,
    /// Stop watching after this long (e.g. 30m, 1h30m) with exit code 6; the deployment goes
    /// on.
    #[arg(long, requires = "watch", value_parser = crate::exit::parse_duration, value_name = "DURATION")]
    pub timeout: Option<std::time::Duration>,
}

/// `ferry deploy start`.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The deploy file, its manifest overrides and target filters.
    #[command(flatten)]
    pub file: ValidateArgs,
    /// Follow the deployment.
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// `ferry deploy status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The deployment's id.
    #[arg(value_parser = NonEmptyStringValueParser::new(), add = ArgValueCompleter::new(crate::complete::deployment_ids))]
    pub id: String,
    /// Follow the deployment.
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// `ferry deploy list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this application's deployments.
    #[arg(long, value_name = "NAME")]
    pub application: Option<String>,
    /// Only deployments in this status (waiting, running, paused, succeeded, failed, aborted,
    /// rolled_back, superseded).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// At most this many per page (1 to 200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub limit: u32,
    /// Follow every page (up to 10,000 deployments) instead of printing the first.
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
    /// Start at this page: the `next` cursor a previous `-o json` answer gave.
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

/// `ferry deploy history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// The application, as its deploy file names it.
    pub application: String,
    /// At most this many, newest first (1 to 200).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub limit: u32,
}

/// `ferry deploy undo`.
#[derive(Debug, Args)]
pub(crate) struct UndoArgs {
    /// The application, as its deploy file names it.
    pub application: String,
    /// The history entry to redeploy (1 is the newest; see `ferry deploy history`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=200))]
    pub to: Option<u32>,
    /// Follow the new deployment.
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// `ferry deploy approve|reject`.
#[derive(Debug, Args)]
pub(crate) struct DecideArgs {
    /// The deployment's id.
    #[arg(value_parser = NonEmptyStringValueParser::new(), add = ArgValueCompleter::new(crate::complete::deployment_ids))]
    pub id: String,
    /// The target whose approval is decided (default: the only one pending).
    #[arg(long, value_name = "TARGET", add = ArgValueCompleter::new(crate::complete::target_names))]
    pub target: Option<String>,
    /// Why, for the audit trail.
    #[arg(long)]
    pub comment: Option<String>,
}

/// `ferry deploy abort`.
#[derive(Debug, Args)]
pub(crate) struct AbortArgs {
    /// The deployment's id.
    #[arg(value_parser = NonEmptyStringValueParser::new(), add = ArgValueCompleter::new(crate::complete::deployment_ids))]
    pub id: String,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `ferry deploy rollback`.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The deployment's id.
    #[arg(value_parser = NonEmptyStringValueParser::new(), add = ArgValueCompleter::new(crate::complete::deployment_ids))]
    pub id: String,
    /// Only this target (default: every target).
    #[arg(long, value_name = "TARGET", add = ArgValueCompleter::new(crate::complete::target_names))]
    pub target: Option<String>,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `ferry deploy skip-pause|roll-forward`.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The deployment's id.
    #[arg(value_parser = NonEmptyStringValueParser::new(), add = ArgValueCompleter::new(crate::complete::deployment_ids))]
    pub id: String,
    /// The target.
    #[arg(long, value_name = "TARGET", add = ArgValueCompleter::new(crate::complete::target_names))]
    pub target: String,
}

/// `ferry deploy redeploy`.
#[derive(Debug, Args)]
pub(crate) struct RedeployArgs {
    /// The deployment whose configuration is deployed again.
    pub id: String,
    /// Follow the new deployment.
    #[command(flatten)]
    pub watch: WatchArgs,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::args::{Cli, Command};

    use super::*;

    fn deploy(args: &[&str]) -> DeployCommand {
        let mut all = vec!["ferry", "deploy"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all).unwrap().command {
            Command::Deploy(d) => d.command,
            other => panic!("not a deploy command: {other:?}"),
        }
    }

    #[test]
    fn validate_takes_repeated_and_multiple_targets() {
        let DeployCommand::Validate(v) = deploy(&[
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
        ]) else {
            panic!("validate");
        };
        assert_eq!(v.file, PathBuf::from("d.yml"));
        assert_eq!(v.targets, ["a", "b", "c"]);
        assert_eq!(v.add_context, ["k=v"]);
    }

    #[test]
    fn start_takes_the_file_options_and_watch() {
        let DeployCommand::Start(s) = deploy(&[
            "start",
            "-f",
            "d.yml",
            "--watch",
            "--auto-approve",
            "--application",
            "x",
        ]) else {
            panic!("start");
        };
        assert!(s.watch.watch && s.watch.auto_approve);
        assert_eq!(s.file.application.as_deref(), Some("x"));
        let parsed = Cli::try_parse_from(["ferry", "deploy", "start", "-f", "d", "--auto-approve"]);
        assert!(parsed.is_err(), "--auto-approve needs --watch");
    }

    #[test]
    fn actions_name_their_target() {
        let DeployCommand::Approve(a) = deploy(&["approve", "d1", "--target", "prod-us"]) else {
            panic!("approve");
        };
        assert_eq!(
            (a.id.as_str(), a.target.as_deref()),
            ("d1", Some("prod-us"))
        );
        let DeployCommand::SkipPause(s) = deploy(&["skip-pause", "d1", "--target", "t"]) else {
            panic!("skip-pause");
        };
        assert_eq!(s.target, "t");
        assert!(matches!(deploy(&["ls"]), DeployCommand::List(_)));
    }
}
