//! `ferry deploy history APP` and `ferry deploy undo APP [--to N]`: an application's
//! deployments with the versions (container images) each rolled out, and redeploying an
//! earlier one. Entry 1 is the newest; `undo` without `--to` goes back to the newest succeeded
//! deployment before the one running now.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ferry_api::deployments::{DeploymentConfig, DeploymentPage, ListedDeployment, StartResponse};
use ferry_api::status::DeploymentStatus;
use ferry_deploy::Plan;
use serde::Serialize;

use super::{Ctx, segment, start};
use crate::args::{HistoryArgs, UndoArgs};
use crate::client::Client;
use crate::output::{self, Table, creator, joined, when};

/// One deployment of the application, with what it rolled out (`number` 1 is the newest).
#[derive(Debug, Serialize)]
struct Entry {
    number: usize,
    #[serde(flatten)]
    deployment: ListedDeployment,
    versions: Vec<String>,
}

/// Runs `ferry deploy history`.
pub(super) async fn history(ctx: &Ctx, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let entries = entries(&client, &args.application, args.limit).await?;
    output::emit(ctx.format(), &entries, |all| {
        let mut table = Table::new(&["#", "ID", "STATUS", "CREATED", "BY", "VERSIONS"]);
        for e in all {
            let d = &e.deployment.deployment;
            table.row(vec![
                e.number.to_string(),
                d.id.to_string(),
                d.status.to_string(),
                when(Some(d.created_at)),
                creator(&e.deployment),
                joined(&e.versions),
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
                .filter(|e| e.deployment.deployment.status == DeploymentStatus::Succeeded);
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
    let id = chosen.deployment.deployment.id.to_string();
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
    let path = format!("/v1/deployments/{}/redeploy", segment(&id));
    let started: StartResponse = client.post_empty(&path).await?;
    start::follow(ctx, client, &started, &args.watch).await
}

/// The application's deployments, newest first, with their versions.
async fn entries(client: &Client, application: &str, limit: u32) -> anyhow::Result<Vec<Entry>> {
    let query = [
        ("application", application.to_string()),
        ("limit", limit.to_string()),
    ];
    let page: DeploymentPage = client.get("/v1/deployments", &query).await?;
    let mut out = Vec::new();
    for (i, deployment) in page.items.into_iter().enumerate() {
        let id = deployment.deployment.id;
        let config: DeploymentConfig = client
            .get(&format!("/v1/deployments/{id}/config"), &[])
            .await?;
        // A plan this CLI cannot decode (a newer schema version) is said on stderr; the
        // entry is then listed without its versions.
        let versions = Plan::from_stored(&config.plan)
            .inspect_err(|e| eprintln!("warning: deployment {id}: {e}; its versions are not shown"))
            .map(|plan| versions(&plan))
            .unwrap_or_default();
        out.push(Entry {
            number: i + 1,
            deployment,
            versions,
        });
    }
    Ok(out)
}

/// The container images a plan rolls out, each once, in order.
fn versions(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for target in &plan.targets {
        for image in target.manifests.iter().flat_map(crate::progress::images) {
            if !out.contains(&image) {
                out.push(image);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ferry_deploy::{Overrides, Source};

    use super::*;

    #[test]
    fn versions_are_the_deployments_images_once_each() {
        let file = "application: app\ntargets:\n  a: {account: c, namespace: n, strategy: s}\n  b: {account: c, namespace: m, strategy: s}\nmanifests:\n  - path: app.yaml\n  - path: svc.yaml\nstrategies:\n  s: {canary: {steps: [{setWeight: 100}]}}\n";
        let app = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec: {containers: [{name: a, image: 'app:2'}, {name: s, image: 'sidecar:1'}]}\n";
        let svc =
            "apiVersion: v1\nkind: Service\nmetadata: {name: app}\nspec: {ports: [{port: 80}]}\n";
        let sources = [
            Source {
                path: "app.yaml".into(),
                content: app.into(),
            },
            Source {
                path: "svc.yaml".into(),
                content: svc.into(),
            },
        ];
        let plan = ferry_deploy::check("deploy.yml", file, &sources, &Overrides::default())
            .unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(plan.targets.len(), 2);
        assert_eq!(versions(&plan), ["app:2", "sidecar:1"]);
        let mut none = plan;
        none.targets.clear();
        assert!(versions(&none).is_empty());
    }
}
