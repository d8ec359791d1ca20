//! `ferry deploy status ID` (the progress tree, or the API's detail as JSON/YAML; `--watch`
//! follows it) and `ferry deploy list` (newest first, filtered by application and status).

use std::process::ExitCode;

use ferry_api::analysis::Analysis;
use ferry_api::deployments::{DeploymentDetail, DeploymentPage, ListedDeployment};
use ferry_api::webhooks::WebhookRuns;

use super::{Ctx, segment};
use crate::args::{ListArgs, StatusArgs};
use crate::output::{self, Table, creator, or_dash, when};
use crate::{progress, watch};

/// Runs `ferry deploy status`.
pub(super) async fn status(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    if args.watch.watch {
        return watch::run(client, &args.id, ctx.format(), &args.watch).await;
    }
    let detail: DeploymentDetail = client
        .get(&format!("/v1/deployments/{}", segment(&args.id)), &[])
        .await?;
    let plan = watch::plan(&client, &args.id).await;
    // Each analysis's runs and reasons under the tree (text only; the API has them as JSON).
    let analyses = match ctx.format() {
        crate::args::Format::Text => client
            .get(
                &format!("/v1/deployments/{}/analyses", segment(&args.id)),
                &[],
            )
            .await
            .map(|a: Vec<Analysis>| super::analysis::analyses_text(&a))
            .unwrap_or_default(),
        _ => String::new(),
    };
    // Each webhook call and its callback's Markdown message (text only, like the analyses).
    let webhooks = match ctx.format() {
        crate::args::Format::Text => client
            .get(
                &format!("/v1/deployments/{}/webhooks", segment(&args.id)),
                &[],
            )
            .await
            .map(|w: WebhookRuns| super::webhooks::webhooks_text(&w))
            .unwrap_or_default(),
        _ => String::new(),
    };
    output::emit(ctx.format(), &detail, |d| {
        progress::tree(&progress::rows(d, plan.as_ref())) + &analyses + &webhooks
    });
    Ok(ExitCode::SUCCESS)
}

/// The most deployments `ferry deploy list --all` gathers.
const LIST_ALL_MAX: usize = 10_000;

/// Runs `ferry deploy list`: one page, or with `--all` every page (newest first).
pub(super) async fn list(ctx: &Ctx, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(application) = &args.application {
        query.push(("application", application.clone()));
    }
    if let Some(status) = &args.status {
        query.push(("status", status.clone()));
    }
    let mut items: Vec<ListedDeployment> = Vec::new();
    let mut cursor = args.cursor.clone();
    loop {
        let mut page_query = query.clone();
        if let Some(cursor) = &cursor {
            page_query.push(("cursor", cursor.clone()));
        }
        let page: DeploymentPage = client.get("/v1/deployments", &page_query).await?;
        items.extend(page.items);
        cursor = page.next;
        if !args.all || cursor.is_none() || items.len() >= LIST_ALL_MAX {
            break;
        }
    }
    let all = DeploymentPage {
        items,
        next: cursor,
    };
    output::emit(ctx.format(), &all, table);
    Ok(ExitCode::SUCCESS)
}

fn table(page: &DeploymentPage) -> String {
    let mut table = Table::new(&["ID", "APPLICATION", "STATUS", "CREATED", "BY", "REASON"]);
    for listed in &page.items {
        let d = &listed.deployment;
        table.row(vec![
            d.id.to_string(),
            d.application.clone(),
            d.status.to_string(),
            when(Some(d.created_at)),
            creator(listed),
            or_dash(d.reason.as_deref()),
        ]);
    }
    let mut out = table.render("No deployments.");
    if let Some(next) = &page.next {
        out.push_str(&format!(
            "(more: add --all, narrow with --application / --status, or see the next page with --cursor {next})\n"
        ));
    }
    out
}
