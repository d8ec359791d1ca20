//! `ferry deploy start` sends the deploy file and every manifest it names (paths relative to
//! the file) with the caller's overrides to `POST /v1/deployments`; `ferry deploy redeploy`
//! starts again from a stored deployment's configuration. Both can follow the new deployment
//! (`--watch`). An invalid file prints every error with its position (exit 1); a busy
//! application names the running deployment (exit 3, from `main`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Ctx, segment};
use crate::args::{Format, RedeployArgs, StartArgs, WatchArgs};
use crate::client::Client;
use crate::error::ApiError;
use crate::files::{self, DeployInput};
use crate::github;
use crate::output::{self, field};
use crate::watch;

/// Runs `ferry deploy start`.
pub(super) async fn start(ctx: &Ctx, args: &StartArgs) -> anyhow::Result<ExitCode> {
    let overrides = files::overrides(&args.file)?;
    let input = DeployInput::read(&args.file.file, args.file.allow_outside_repo)?;
    if input.file.is_none() {
        // It does not parse far enough to name its manifests: nothing worth sending.
        return Ok(input.report(&input.parse_errors, &input.label));
    }
    let name = input.file_name();
    let context: BTreeMap<&str, &str> = overrides
        .context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let manifests: Vec<Value> = input
        .sources
        .iter()
        .map(|s| json!({ "path": s.path, "content": s.content }))
        .collect();
    let request = json!({
        "deployFile": { "name": name, "content": input.text },
        "manifests": manifests,
        "overrides": {
            "application": overrides.application,
            "context": context,
            "targets": overrides.targets,
        },
    });
    let client = ctx.client()?;
    let started = match client.post("/v1/deployments", Some(&request)).await {
        Ok(started) => started,
        Err(ApiError::InvalidDeployFile(diags)) => return Ok(input.report(&diags, &name)),
        Err(e) => return Err(e.into()),
    };
    follow(ctx, client, &started, &args.watch).await
}

/// Runs `ferry deploy redeploy`.
pub(super) async fn redeploy(ctx: &Ctx, args: &RedeployArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let path = format!("/v1/deployments/{}/redeploy", segment(&args.id));
    let started = client.post(&path, None).await?;
    follow(ctx, client, &started, &args.watch).await
}

/// Prints what was started and, with `--watch`, follows it.
pub(super) async fn follow(
    ctx: &Ctx,
    client: std::sync::Arc<Client>,
    started: &Value,
    args: &WatchArgs,
) -> anyhow::Result<ExitCode> {
    let id = started["id"].as_str().unwrap_or_default().to_string();
    if args.watch && ctx.format() != Format::Text {
        // stdout carries one document: the deployment's final state, printed by the watch.
        eprint!("{}", announcement(started, true));
    } else {
        output::emit(ctx.format(), started, |s| announcement(s, args.watch));
    }
    if !args.watch {
        report(
            &client,
            started,
            started["status"].as_str().unwrap_or_default(),
            false,
        );
        return Ok(ExitCode::SUCCESS);
    }
    let code = watch::run(client.clone(), &id, ctx.format(), args).await?;
    // How it ended (or where it is, when the watch gave up first).
    let path = format!("/v1/deployments/{}", segment(&id));
    let status = match client.get(&path, &[]).await {
        Ok(detail) => detail["deployment"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        Err(e) => {
            eprintln!("warning: cannot read how deployment {id} ended: {e}");
            String::new()
        }
    };
    report(&client, started, &status, true);
    Ok(code)
}

/// The GitHub Actions outputs and summary of a started deployment, when running in one.
fn report(client: &Client, started: &Value, status: &str, watched: bool) {
    let id = started["id"].as_str().unwrap_or_default();
    github::report(&github::Report {
        id,
        application: started["application"].as_str().unwrap_or_default(),
        link: format!(
            "{}/v1/deployments/{}",
            client.api().trim_end_matches('/'),
            segment(id)
        ),
        status,
        watched,
        warnings: (started["warnings"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect(),
    });
}

/// `Deployment <id> of <app> started.` and how to follow it.
fn announcement(started: &Value, watching: bool) -> String {
    let id = field(started, "id");
    let mut out = format!("Deployment {id} of {}", field(started, "application"));
    if started["status"].as_str() == Some("waiting") {
        out.push_str(" is queued behind the application's running deployment.\n");
    } else {
        out.push_str(" started.\n");
    }
    let superseded: Vec<&str> = started["superseded"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !superseded.is_empty() {
        out.push_str(&format!(
            "It replaces the queued deployment(s) {}.\n",
            superseded.join(", ")
        ));
    }
    for warning in started["warnings"].as_array().into_iter().flatten() {
        if let Some(warning) = warning.as_str() {
            out.push_str(&format!("warning: {warning}\n"));
        }
    }
    if !watching {
        out.push_str(&format!("Follow it: ferry deploy status {id} --watch\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_say_started_or_queued_and_how_to_follow() {
        let s = json!({"id": "d-1", "application": "hello", "status": "running", "superseded": []});
        assert_eq!(
            announcement(&s, false),
            "Deployment d-1 of hello started.\nFollow it: ferry deploy status d-1 --watch\n"
        );
        let q = json!({"id": "d-2", "application": "hello", "status": "waiting", "superseded": ["d-0"]});
        assert_eq!(
            announcement(&q, true),
            "Deployment d-2 of hello is queued behind the application's running deployment.\n\
             It replaces the queued deployment(s) d-0.\n"
        );
    }
}
