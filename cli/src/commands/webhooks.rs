//! `ferry notifications ls|add|rm`, and the webhook calls of a deployment as `ferry deploy
//! status` shows them (each call's outcome and its callback's Markdown message).

use std::process::ExitCode;

use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::{Ctx, segment};
use crate::args::notify::{EndpointKind, NotificationsCommand};
use crate::output::{self, Table, field, time};

/// Runs `ferry notifications …`.
pub(super) async fn run(ctx: &Ctx, command: NotificationsCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command {
        NotificationsCommand::Ls => {
            let list: Value = client.get("/v1/notification-endpoints", &[]).await?;
            output::emit(ctx.format(), &list, |list| {
                let mut table =
                    Table::new(&["NAME", "KIND", "URL", "EVENTS", "SIGNED WITH", "CREATED"]);
                for e in list["items"].as_array().into_iter().flatten() {
                    let events: Vec<&str> = e["events"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    table.row(vec![
                        field(e, "name"),
                        field(e, "kind"),
                        field(e, "url"),
                        events.join(","),
                        field(e, "signing_secret"),
                        time(e, "created_at"),
                    ]);
                }
                table.render("No notification endpoints.")
            });
        }
        NotificationsCommand::Add {
            name,
            kind,
            url,
            events,
            signing_secret,
        } => {
            let kind = match kind {
                EndpointKind::Slack => "slack",
                EndpointKind::Generic => "generic",
            };
            let body = json!({
                "name": name, "kind": kind, "url": url, "events": events,
                "signing_secret": signing_secret,
            });
            let created: Value = client.post("/v1/notification-endpoints", &body).await?;
            output::emit(ctx.format(), &created, |e| {
                format!("Notification endpoint {} added.\n", field(e, "name"))
            });
        }
        NotificationsCommand::Rm { name } => {
            client
                .delete::<IgnoredAny>(&format!("/v1/notification-endpoints/{}", segment(&name)))
                .await?;
            output::emit(
                ctx.format(),
                &json!({ "name": name, "removed": true }),
                |_| format!("Notification endpoint {name} removed.\n"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The webhook calls under the progress tree: outcome, attempts, and the callback's message
/// (Markdown, shown as written, indented).
pub(super) fn webhooks_text(list: &Value) -> String {
    let Some(items) = list["items"].as_array().filter(|a| !a.is_empty()) else {
        return String::new();
    };
    let mut out = String::from("\nWebhooks:\n");
    for w in items {
        let attempts = format!(
            "attempt {} of {}",
            w["attempts"].as_i64().unwrap_or(0),
            w["max_attempts"].as_i64().unwrap_or(0)
        );
        out.push_str(&format!(
            "  {} {} {}  {} ({attempts})",
            field(w, "target"),
            field(w, "step"),
            field(w, "name"),
            field(w, "status"),
        ));
        if let Value::String(reason) = &w["reason"] {
            out.push_str(&format!(": {reason}"));
        }
        out.push('\n');
        let callback = &w["callback"];
        if callback.is_object() {
            let state = match (&callback["success"], &callback["used_at"]) {
                (Value::Bool(true), _) => "callback: success",
                (Value::Bool(false), _) => "callback: failure",
                (_, Value::Null) => "callback: waiting",
                _ => "callback: closed",
            };
            out.push_str(&format!("    {state}\n"));
            if let Value::String(md) = &callback["md_message"] {
                for line in md.lines() {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_callback_messages_are_listed() {
        let list = json!({"items": [{
            "name": "security-scan", "target": "prod", "step": "before:0", "status": "delivered",
            "attempts": 1, "max_attempts": 3,
            "reason": "HTTP 202 from scanner",
            "callback": {"used_at": "2026-01-01T00:00:00Z", "success": true,
                         "md_message": "**0** critical\n- 2 low"}
        }]});
        assert_eq!(
            webhooks_text(&list),
            "\nWebhooks:\n  prod before:0 security-scan  delivered (attempt 1 of 3): HTTP 202 from \
             scanner\n    callback: success\n      **0** critical\n      - 2 low\n"
        );
        assert_eq!(webhooks_text(&json!({"items": []})), "");
    }
}
