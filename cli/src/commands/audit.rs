//! `ferry audit list`: the tenant's audit log (Tenant Admin), newest first, with the API's
//! filters; `--all` follows every page.

use std::process::ExitCode;

use ferry_api::audit::{AuditEntry, AuditPage};

use super::Ctx;
use crate::args::AuditListArgs;
use crate::output::{self, Table, or_dash, when};

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
    let mut entries: Vec<AuditEntry> = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut page_query = query.clone();
        if let Some(before) = before {
            page_query.push(("before", before.to_string()));
        }
        let page: AuditPage = client.get("/v1/audit", &page_query).await?;
        entries.extend(page.entries);
        before = page.next;
        if !args.all || before.is_none() {
            break;
        }
    }
    let all = AuditPage {
        entries,
        next: before,
    };
    output::emit(ctx.format(), &all, page_text);
    Ok(ExitCode::SUCCESS)
}

/// The entries as a table, and how to see more when there are.
fn page_text(page: &AuditPage) -> String {
    let mut table = Table::new(&["WHEN", "ACTOR", "ACTION", "RESOURCE"]);
    for e in &page.entries {
        table.row(vec![
            when(Some(e.created_at)),
            or_dash(Some(&e.actor)),
            or_dash(Some(&e.action)),
            format!(
                "{} {}",
                or_dash(Some(&e.resource_kind)),
                or_dash(Some(&e.resource_id))
            ),
        ]);
    }
    let mut text = table.render("No audit entries match.");
    if let Some(next) = page.next {
        text.push_str(&format!(
            "More: add --all, or filter further (next page before {next}).\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entries_are_listed_and_a_further_page_is_pointed_to() {
        let page: AuditPage = serde_json::from_value(json!({
            "entries": [{
                "id": 7, "tenant_id": "0193a000-0000-7000-8000-000000000001",
                "actor": "alice", "action": "credential.revoke", "resource_kind": "credential",
                "resource_id": "ci", "details": {}, "created_at": "2026-11-22T22:12:56.123Z",
            }],
            "next": 7,
        }))
        .unwrap();
        assert_eq!(
            page_text(&page),
            "WHEN                 ACTOR  ACTION             RESOURCE\n\
             2026-11-22 22:12:56  alice  credential.revoke  credential ci\n\
             More: add --all, or filter further (next page before 7).\n"
        );
        let last = AuditPage {
            entries: Vec::new(),
            next: None,
        };
        assert_eq!(page_text(&last), "No audit entries match.\n");
    }
}
