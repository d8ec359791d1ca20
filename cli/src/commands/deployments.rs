//! `ferry deploy status ID` (the progress tree, or the API's detail as JSON/YAML; `--watch`
//! follows it) and `ferry deploy list` (newest first, filtered by application and status).

use std::process::ExitCode;

use serde_json::Value;

use super::{Ctx, segment};
use crate::args::{ListArgs, StatusArgs};
use crate::output::{self, Table, field, time};
use crate::{progress, watch};

/// Runs `ferry deploy status`.
pub async fn status(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    if args.watch.watch {
        return watch::run(client, &args.id, ctx.format(), args.watch.auto_approve).await;
    }
    let detail = client
        .get(&format!("/v1/deployments/{}", segment(&args.id)), &[])
        .await?;
    let plan = watch::plan(&client, &args.id).await;
    output::emit(ctx.format(), &detail, |d| {
        progress::tree(&progress::rows(d, plan.as_ref()))
    });
    Ok(ExitCode::SUCCESS)
}

/// Runs `ferry deploy list`.
pub async fn list(ctx: &Ctx, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(application) = &args.application {
        query.push(("application", application.clone()));
    }
    if let Some(status) = &args.status {
        query.push(("status", status.clone()));
    }
    let page = ctx.client()?.get("/v1/deployments", &query).await?;
    output::emit(ctx.format(), &page, table);
    Ok(ExitCode::SUCCESS)
}

fn table(page: &Value) -> String {
    let mut table = Table::new(&["ID", "APPLICATION", "STATUS", "CREATED", "BY", "REASON"]);
    for d in page["items"].as_array().into_iter().flatten() {
        table.row(vec![
            field(d, "id"),
            field(d, "application"),
            field(d, "status"),
            time(d, "created_at"),
            field(d, "created_by"),
            field(d, "reason"),
        ]);
    }
    let mut out = table.render("No deployments.");
    if page["next"].is_string() {
        out.push_str("(more: raise --limit or narrow with --application / --status)\n");
    }
    out
}
