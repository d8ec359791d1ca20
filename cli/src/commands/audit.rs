//! `ferry audit list`: the tenant's audit log (Tenant Admin), newest first, with the API's
//! filters; `--all` follows every page.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::Ctx;
use crate::args::AuditListArgs;
use crate::output::{self, Table, field, time};

/// Runs `ferry audit list`.
pub(super) async fn list(ctx: &Ctx, args: &AuditListArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let mut query: Vec<(&str, String)> = Vec::new();
    for (key, value) in [
        ("actor", &args.actor),
        ("action", &args.action),
        ("resourceKind", &args.resource_kind),
        ("resourceId", &args.resource_id),
        ("since", &args.since),
        ("until", &args.until),
    ] {
        if let Some(value) = value {
            query.push((key, value.clone()));
        }
    }
    query.push(("limit", args.limit.to_string()));
    let mut entries: Vec<Value> = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut page_query = query.clone();
        if let Some(before) = before {
            page_query.push(("before", before.to_string()));
        }
        let page: Value = client.get("/v1/audit", &page_query).await?;
        entries.extend(page["entries"].as_array().cloned().unwrap_or_default());
        before = page["next"].as_i64();
        if !args.all || before.is_none() {
            break;
        }
    }
    let all = json!({ "entries": entries, "next": before });
    output::emit(ctx.format(), &all, |page| {
        let mut table = Table::new(&["WHEN", "ACTOR", "ACTION", "RESOURCE"]);
        for e in page["entries"].as_array().into_iter().flatten() {
            table.row(vec![
                time(e, "created_at"),
                field(e, "actor"),
                field(e, "action"),
                format!("{} {}", field(e, "resource_kind"), field(e, "resource_id")),
            ]);
        }
        let mut text = table.render("No audit entries match.");
        if let Some(next) = page["next"].as_i64() {
            text.push_str(&format!(
                "More: add --all, or filter further (next page before {next}).\n"
            ));
        }
        text
    });
    Ok(ExitCode::SUCCESS)
}
