//! `ferry deploy start` sends the deploy file and every manifest it names (paths relative to
//! the file) with the caller's overrides to `POST /v1/deployments`; `ferry deploy redeploy`
//! starts again from a stored deployment's configuration. Both can follow the new deployment
//! (`--watch`). An invalid file prints every error with its position (exit 1); a busy
//! application names the running deployment (exit 3, from `main`).

use std::process::ExitCode;

use ferry_api::deployments::{
    DeployFileBody, DeploymentDetail, ManifestBody, OverridesBody, StartRequest, StartResponse,
};
use ferry_api::status::DeploymentStatus;

use super::{Ctx, segment};
use crate::args::{Format, RedeployArgs, StartArgs, WatchArgs};
use crate::client::Client;
use crate::error::ApiError;
use crate::files::{self, DeployInput};
use crate::github;
use crate::output;
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
    let request = StartRequest {
        deploy_file: DeployFileBody {
            name: name.clone(),
            content: input.text.clone(),
        },
        manifests: (input.sources.iter())
            .map(|s| ManifestBody {
                path: s.path.clone(),
                content: s.content.clone(),
            })
            .collect(),
        overrides: Some(OverridesBody {
            application: overrides.application,
            context: overrides.context.into_iter().collect(),
            targets: overrides.targets,
        }),
    };
    let client = ctx.client()?;
    let started = match client.post("/v1/deployments", &request).await {
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
    let started = client.post_empty(&path).await?;
    follow(ctx, client, &started, &args.watch).await
}

/// Prints what was started and, with `--watch`, follows it.
pub(super) async fn follow(
    ctx: &Ctx,
    client: std::sync::Arc<Client>,
    started: &StartResponse,
    args: &WatchArgs,
) -> anyhow::Result<ExitCode> {
    let id = started.id.to_string();
    if args.watch && ctx.format() != Format::Text {
        // stdout carries one document: the deployment's final state, printed by the watch.
        eprint!("{}", announcement(started, true));
    } else {
        output::emit(ctx.format(), started, |s| announcement(s, args.watch));
    }
    if !args.watch {
        report(&client, started, Some(started.status), false);
        return Ok(ExitCode::SUCCESS);
    }
    let code = watch::run(client.clone(), &id, ctx.format(), args).await?;
    // How it ended (or where it is, when the watch gave up first).
    let path = format!("/v1/deployments/{id}");
    let status = match client.get::<DeploymentDetail>(&path, &[]).await {
        Ok(detail) => Some(detail.deployment.status),
        Err(e) => {
            eprintln!("warning: cannot read how deployment {id} ended: {e}");
            None
        }
    };
    report(&client, started, status, true);
    Ok(code)
}

/// The GitHub Actions outputs and summary of a started deployment, when running in one.
fn report(
    client: &Client,
    started: &StartResponse,
    status: Option<DeploymentStatus>,
    watched: bool,
) {
    let id = started.id.to_string();
    github::report(&github::Report {
        link: format!("{}/v1/deployments/{id}", client.api().trim_end_matches('/')),
        id: &id,
        application: &started.application,
        status: status.map_or("", DeploymentStatus::as_str),
        watched,
        warnings: started.warnings.iter().map(String::as_str).collect(),
    });
}

/// `Deployment <id> of <app> started.` and how to follow it.
fn announcement(started: &StartResponse, watching: bool) -> String {
    let id = started.id;
    let mut out = format!("Deployment {id} of {}", started.application);
    if started.status == DeploymentStatus::Waiting {
        out.push_str(" is queued behind the application's running deployment.\n");
    } else {
        out.push_str(" started.\n");
    }
    if !started.superseded.is_empty() {
        let superseded: Vec<String> = started.superseded.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "It replaces the queued deployment(s) {}.\n",
            superseded.join(", ")
        ));
    }
    for warning in &started.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    if !watching {
        out.push_str(&format!("Follow it: ferry deploy status {id} --watch\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use ferry_api::DeploymentId;

    use super::*;

    #[test]
    fn announcements_say_started_or_queued_and_how_to_follow() {
        let [d1, d2, d0]: [DeploymentId; 3] = std::array::from_fn(|_| DeploymentId::new());
        let s = StartResponse {
            id: d1,
            application: "hello".into(),
            status: DeploymentStatus::Running,
            superseded: vec![],
            warnings: vec![],
        };
        assert_eq!(
            announcement(&s, false),
            format!(
                "Deployment {d1} of hello started.\nFollow it: ferry deploy status {d1} --watch\n"
            )
        );
        let q = StartResponse {
            id: d2,
            status: DeploymentStatus::Waiting,
            superseded: vec![d0],
            warnings: vec!["deploy.yml:3:5: targets.a: a warning".into()],
            ..s
        };
        assert_eq!(
            announcement(&q, true),
            format!(
                "Deployment {d2} of hello is queued behind the application's running deployment.\n\
                 It replaces the queued deployment(s) {d0}.\n\
                 warning: deploy.yml:3:5: targets.a: a warning\n"
            )
        );
    }
}
