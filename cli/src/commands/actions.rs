//! Acting on a deployment: approve or reject a target's pending approval (the target may be
//! left out when exactly one approval is pending), abort, roll back, skip a pause, roll
//! forward. Each prints what the API accepted.

use std::process::ExitCode;

use anyhow::bail;
use ferry_api::actions::{AbortRequest, Accepted, DecisionRequest, RollbackRequest, TargetRequest};
use ferry_api::deployments::{Approval, DeploymentDetail};
use serde::Serialize;

use super::{Ctx, segment};
use crate::args::{AbortArgs, DecideArgs, RollbackArgs, TargetArgs};
use crate::client::Client;
use crate::output;

/// Runs `ferry deploy approve|reject`.
pub(super) async fn decide(
    ctx: &Ctx,
    args: &DecideArgs,
    approve: bool,
) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => only_pending_target(&client, &args.id).await?,
    };
    let verb = if approve { "approve" } else { "reject" };
    let path = format!("/v1/deployments/{}/{verb}", segment(&args.id));
    let body = DecisionRequest {
        target,
        comment: args.comment.clone(),
    };
    let decided: Approval = client.post(&path, &body).await?;
    output::emit(ctx.format(), &decided, |d| {
        let done = if approve { "Approved" } else { "Rejected" };
        format!(
            "{done} target {} of deployment {} ({}).\n",
            d.target_name, d.deployment_id, d.step_key
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// The one target with a pending approval, or an error listing the choices.
async fn only_pending_target(client: &Client, id: &str) -> anyhow::Result<String> {
    let detail: DeploymentDetail = client
        .get(&format!("/v1/deployments/{}", segment(id)), &[])
        .await?;
    let pending: Vec<&str> = (detail.pending_approvals.iter())
        .map(|p| p.target_name.as_str())
        .collect();
    match pending.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!("deployment {id} has no pending approval"),
        many => bail!(
            "deployment {id} has pending approvals on several targets ({}): choose one with --target",
            many.join(", ")
        ),
    }
}

/// Runs `ferry deploy abort`.
pub(super) async fn abort(ctx: &Ctx, args: &AbortArgs) -> anyhow::Result<ExitCode> {
    let body = AbortRequest {
        reason: args.reason.clone(),
    };
    act(ctx, &args.id, "abort", &body).await
}

/// Runs `ferry deploy rollback`.
pub(super) async fn rollback(ctx: &Ctx, args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let body = RollbackRequest {
        target: args.target.clone(),
        reason: args.reason.clone(),
    };
    act(ctx, &args.id, "rollback", &body).await
}

/// Runs `ferry deploy skip-pause|roll-forward`.
pub(super) async fn on_target(
    ctx: &Ctx,
    args: &TargetArgs,
    action: &str,
) -> anyhow::Result<ExitCode> {
    let body = TargetRequest {
        target: args.target.clone(),
        reason: None,
    };
    act(ctx, &args.id, action, &body).await
}

async fn act(ctx: &Ctx, id: &str, action: &str, body: &impl Serialize) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let path = format!("/v1/deployments/{}/{action}", segment(id));
    let accepted: Accepted = client.post(&path, body).await?;
    output::emit(ctx.format(), &accepted, |a| {
        let on = (a.target.as_deref())
            .map(|t| format!(" for target {t}"))
            .unwrap_or_default();
        format!(
            "Requested {}{on} of deployment {}; the scheduler carries it out.\n",
            a.action, a.deployment
        )
    });
    Ok(ExitCode::SUCCESS)
}
