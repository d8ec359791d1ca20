//! `ferry notifications ls|add|rm`, and the webhook calls of a deployment as `ferry deploy
//! status` shows them (each call's outcome and its callback's Markdown message).

use std::process::ExitCode;

use ferry_api::notifications::{CreateEndpoint, EndpointList, EndpointView};
use ferry_api::webhooks::WebhookRuns;
use serde::de::IgnoredAny;
use serde_json::json;

use super::{Ctx, segment};
use crate::args::notify::{EndpointKind, NotificationsCommand};
use crate::output::{self, Table, or_dash, when};

/// Runs `ferry notifications …`.
pub(super) async fn run(ctx: &Ctx, command: NotificationsCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command {
        NotificationsCommand::Ls => {
            let list: EndpointList = client.get("/v1/notification-endpoints", &[]).await?;
            output::emit(ctx.format(), &list, endpoints_text);
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
            let body = CreateEndpoint {
                name,
                kind: kind.to_string(),
                url,
                events,
                signing_secret,
            };
            let created: EndpointView = client.post("/v1/notification-endpoints", &body).await?;
            output::emit(ctx.format(), &created, |e| {
                format!("Notification endpoint {} added.\n", or_dash(Some(&e.name)))
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

/// The endpoints as `ferry notifications ls` lists them (the signing secret by name).
fn endpoints_text(list: &EndpointList) -> String {
    let mut table = Table::new(&["NAME", "KIND", "URL", "EVENTS", "SIGNED WITH", "CREATED"]);
    for e in &list.items {
        let events: Vec<&str> = e.events.iter().map(|event| event.as_str()).collect();
        table.row(vec![
            or_dash(Some(&e.name)),
            e.kind.to_string(),
            or_dash(Some(&e.url)),
            events.join(","),
            or_dash(e.signing_secret.as_deref()),
            when(Some(e.created_at)),
        ]);
    }
    table.render("No notification endpoints.")
}

/// The webhook calls under the progress tree: outcome, attempts, and the callback's message
/// (Markdown, shown as written, indented).
pub(super) fn webhooks_text(list: &WebhookRuns) -> String {
    if list.items.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nWebhooks:\n");
    for w in &list.items {
        out.push_str(&format!(
            "  {} {} {}  {} (attempt {} of {})",
            or_dash(w.target.as_deref()),
            or_dash(Some(&w.step)),
            or_dash(Some(&w.name)),
            w.status,
            w.attempts,
            w.max_attempts,
        ));
        if let Some(reason) = &w.reason {
            out.push_str(&format!(": {reason}"));
        }
        out.push('\n');
        if let Some(callback) = &w.callback {
            out.push_str(&format!("    callback: {}\n", callback.state()));
            for line in callback.md_message.iter().flat_map(|md| md.lines()) {
                out.push_str(&format!("      {line}\n"));
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
        let list: WebhookRuns = serde_json::from_value(json!({"items": [{
            "id": "0193a000-0000-7000-8000-000000000001", "created_at": "2026-01-01T00:00:00Z",
            "name": "security-scan", "target": "prod", "step": "before:0", "status": "delivered",
            "attempts": 1, "max_attempts": 3,
            "reason": "HTTP 202 from scanner",
            "callback": {"used_at": "2026-01-01T00:00:00Z", "success": true,
                         "md_message": "**0** critical\n- 2 low"}
        }]}))
        .unwrap();
        assert_eq!(
            webhooks_text(&list),
            "\nWebhooks:\n  prod before:0 security-scan  delivered (attempt 1 of 3): HTTP 202 from \
             scanner\n    callback: success\n      **0** critical\n      - 2 low\n"
        );
        assert_eq!(webhooks_text(&WebhookRuns { items: Vec::new() }), "");
    }
}
