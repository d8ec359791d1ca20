//! `ferry deploy history APP` and `ferry deploy undo APP [--to N]`: an application's
//! deployments with the versions (container images) each rolled out, and redeploying an
//! earlier one. Entry 1 is the newest; `undo` without `--to` goes back to the newest succeeded
//! deployment before the one running now.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{Ctx, segment, start};
use crate::args::{HistoryArgs, UndoArgs};
use crate::client::Client;
use crate::output::{self, Table, creator, field, time};

/// One deployment of the application, with what it rolled out.
struct Entry {
    deployment: Value,
    versions: Vec<String>,
}

/// Runs `ferry deploy history`.
pub(super) async fn history(ctx: &Ctx, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let entries = entries(&client, &args.application, args.limit).await?;
    let json = Value::Array(
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut d = e.deployment.clone();
                d["number"] = json!(i + 1);
                d["versions"] = json!(e.versions);
                d
            })
            .collect(),
    );
    output::emit(ctx.format(), &json, |all| {
        let mut table = Table::new(&["#", "ID", "STATUS", "CREATED", "BY", "VERSIONS"]);
        for d in all.as_array().into_iter().flatten() {
            let versions: Vec<&str> = d["versions"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            table.row(vec![
                field(d, "number"),
                field(d, "id"),
                field(d, "status"),
                time(d, "created_at"),
                creator(d),
                if versions.is_empty() {
                    "-".into()
                } else {
                    versions.join(", ")
                },
            ]);
        }
        table.render(&format!("No deployments of {}.", args.application))
    });
    Ok(ExitCode::SUCCESS)
}

/// Runs `ferry deploy undo`.
pub(super) async fn undo(ctx: &Ctx, args: &UndoArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let entries = entries(&client, &args.application, 200).await?;
    let chosen = match args.to {
        Some(n) => entries.get(n.saturating_sub(1) as usize).with_context(|| {
            format!(
                "{} has {} deployment(s) in its history; --to counts from 1 (the newest)",
                args.application,
                entries.len()
            )
        })?,
        None => {
            let mut succeeded = entries
                .iter()
                .filter(|e| e.deployment["status"] == "succeeded");
            let _running = succeeded.next();
            match succeeded.next() {
                Some(previous) => previous,
                None => bail!(
                    "{} has no earlier succeeded deployment to go back to (see `ferry deploy history {}`)",
                    args.application,
                    args.application
                ),
            }
        }
    };
    let id = chosen.deployment["id"].as_str().unwrap_or_default();
    if !args.watch.watch {
        eprintln!(
            "Redeploying {id} ({}).",
            if chosen.versions.is_empty() {
                "no container images".to_string()
            } else {
                chosen.versions.join(", ")
            }
        );
    }
    let path = format!("/v1/deployments/{}/redeploy", segment(id));
    let started = client.post(&path, None).await?;
    start::follow(ctx, client, &started, &args.watch).await
}

/// The application's deployments, newest first, with their versions.
async fn entries(client: &Client, application: &str, limit: u32) -> anyhow::Result<Vec<Entry>> {
    let query = [
        ("application", application.to_string()),
        ("limit", limit.to_string()),
    ];
    let page = client.get("/v1/deployments", &query).await?;
    let mut out = Vec::new();
    for d in page["items"].as_array().into_iter().flatten() {
        let id = d["id"].as_str().unwrap_or_default();
        let config = client
            .get(&format!("/v1/deployments/{}/config", segment(id)), &[])
            .await?;
        out.push(Entry {
            deployment: d.clone(),
            versions: versions(&config["plan"]),
        });
    }
    Ok(out)
}

/// The container images a plan rolls out, each once, in order.
fn versions(plan: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for target in plan["targets"].as_array().into_iter().flatten() {
        for m in target["manifests"].as_array().into_iter().flatten() {
            if m["kind"] != "Deployment" {
                continue;
            }
            let containers = &m["object"]["spec"]["template"]["spec"]["containers"];
            for c in containers.as_array().into_iter().flatten() {
                if let Some(image) = c["image"].as_str()
                    && !out.iter().any(|i| i == image)
                {
                    out.push(image.to_string());
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
    fn versions_are_the_deployments_images_once_each() {
        let deployment = |image: &str| {
            json!({"kind": "Deployment", "object": {"spec": {"template": {"spec": {
                "containers": [{"image": image}, {"image": "sidecar:1"}]}}}}})
        };
        let plan = json!({"targets": [
            {"manifests": [deployment("app:2"), {"kind": "Service", "object": {}}]},
            {"manifests": [deployment("app:2")]},
        ]});
        assert_eq!(versions(&plan), ["app:2", "sidecar:1"]);
        assert!(versions(&json!({})).is_empty());
    }
}
