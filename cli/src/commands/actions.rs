//! Acting on a deployment: approve or reject a target's pending approval (the target may be
//! left out when exactly one approval is pending), abort, roll back, skip a pause, roll
//! forward. Each prints what the API accepted.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use super::{Ctx, segment};
use crate::args::{AbortArgs, DecideArgs, RollbackArgs, TargetArgs};
use crate::client::Client;
use crate::output::{self, field};

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
    let body = json!({ "target": target, "comment": args.comment });
    let decided = client.post(&path, Some(&body)).await?;
    output::emit(ctx.format(), &decided, |d| {
        let done = if approve { "Approved" } else { "Rejected" };
        format!(
            "{done} target {} of deployment {} ({}).\n",
            field(d, "target_name"),
            field(d, "deployment_id"),
            field(d, "step_key")
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// The one target with a pending approval, or an error listing the choices.
async fn only_pending_target(client: &Client, id: &str) -> anyhow::Result<String> {
    let detail = client
        .get(&format!("/v1/deployments/{}", segment(id)), &[])
        .await?;
    let pending: Vec<&str> = detail["pending_approvals"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["target_name"].as_str()).collect())
        .unwrap_or_default();
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
    let body = json!({ "reason": args.reason });
    act(ctx, &args.id, "abort", &body).await
}

/// Runs `ferry deploy rollback`.
pub(super) async fn rollback(ctx: &Ctx, args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let body = json!({ "target": args.target, "reason": args.reason });
    act(ctx, &args.id, "rollback", &body).await
}

/// Runs `ferry deploy skip-pause|roll-forward`.
pub(super) async fn on_target(
    ctx: &Ctx,
    args: &TargetArgs,
    action: &str,
) -> anyhow::Result<ExitCode> {
    act(ctx, &args.id, action, &json!({ "target": args.target })).await
}

async fn act(ctx: &Ctx, id: &str, action: &str, body: &Value) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let path = format!("/v1/deployments/{}/{action}", segment(id));
    let accepted = client.post(&path, Some(body)).await?;
    output::emit(ctx.format(), &accepted, |a| {
        let on = a["target"]
            .as_str()
            .map(|t| format!(" for target {t}"))
            .unwrap_or_default();
        format!(
            "Requested {}{on} of deployment {}; the scheduler carries it out.\n",
            field(a, "action"),
            field(a, "deployment")
        )
    });
    Ok(ExitCode::SUCCESS)
}
