//! `ferry deploy …`: dispatches to validate (local), start and redeploy, reading deployments,
//! and the actions on one.

use std::process::ExitCode;

use super::{Ctx, actions, deployments, history, start, validate};
use crate::args::DeployCommand;

/// Runs a `ferry deploy` subcommand.
pub(super) async fn run(ctx: &Ctx, command: DeployCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeployCommand::Validate(args) => validate::run(&args, ctx.format()),
        DeployCommand::Start(args) => start::start(ctx, &args).await,
        DeployCommand::Redeploy(args) => start::redeploy(ctx, &args).await,
        DeployCommand::Status(args) => deployments::status(ctx, &args).await,
        DeployCommand::List(args) => deployments::list(ctx, &args).await,
        DeployCommand::History(args) => history::history(ctx, &args).await,
        DeployCommand::Undo(args) => history::undo(ctx, &args).await,
        DeployCommand::Approve(args) => actions::decide(ctx, &args, true).await,
        DeployCommand::Reject(args) => actions::decide(ctx, &args, false).await,
        DeployCommand::Abort(args) => actions::abort(ctx, &args).await,
        DeployCommand::Rollback(args) => actions::rollback(ctx, &args).await,
        DeployCommand::SkipPause(args) => actions::on_target(ctx, &args, "skip-pause").await,
        DeployCommand::RollForward(args) => actions::on_target(ctx, &args, "roll-forward").await,
    }
}
