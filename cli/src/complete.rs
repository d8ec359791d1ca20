//! Shell completion that knows Ferry's data. `source <(COMPLETE=bash ferry)` (or zsh, fish,
//! elvish, powershell) registers a completer that asks the `ferry` binary itself at each TAB:
//! deployment ids are offered from the API (the most recent first, each described by its
//! application and status), and target names from the deployments still in flight. The API is
//! asked with the saved context or the `FERRY_*` environment, within [`BUDGET`]; when it cannot
//! be reached nothing is offered, quickly, and the shell goes on.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use clap_complete::engine::CompletionCandidate;
use ferry_api::deployments::{Deployment, DeploymentDetail, DeploymentPage};

use crate::client::Client;

/// How long one TAB may wait for the API.
pub(crate) const BUDGET: Duration = Duration::from_secs(2);

/// Deployments asked for (one page).
const RECENT: usize = 50;

/// In-flight deployments whose targets are offered.
const IN_FLIGHT: usize = 10;

/// Deployment ids starting with what was typed.
pub(crate) fn deployment_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy().into_owned();
    ask(|client| async move {
        let listed = recent(&client).await;
        listed
            .iter()
            .filter_map(|d| {
                let id = d.id.to_string();
                id.starts_with(&typed).then(|| {
                    let help = format!("{} {}", d.application, d.status.as_str().replace('_', " "));
                    CompletionCandidate::new(id).help(Some(help.into()))
                })
            })
            .collect()
    })
}

/// Target names of the deployments in flight, starting with what was typed.
pub(crate) fn target_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy().into_owned();
    ask(|client| async move {
        let mut names: Vec<String> = Vec::new();
        let in_flight = recent(&client)
            .await
            .into_iter()
            .filter(|d| !d.status.is_terminal())
            .take(IN_FLIGHT);
        for deployment in in_flight {
            let path = format!("/v1/deployments/{}", deployment.id);
            let Ok(detail) = client.get::<DeploymentDetail>(&path, &[]).await else {
                continue;
            };
            for target in detail.targets {
                if target.name.starts_with(&typed) && !names.contains(&target.name) {
                    names.push(target.name);
                }
            }
        }
        names.into_iter().map(CompletionCandidate::new).collect()
    })
}

/// The most recent deployments (empty when the API cannot say).
async fn recent(client: &Client) -> Vec<Deployment> {
    let query = [("limit", RECENT.to_string())];
    match client
        .get::<DeploymentPage>("/v1/deployments", &query)
        .await
    {
        Ok(page) => page.items.into_iter().map(|l| l.deployment).collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs `work` with a client for the configured API within [`BUDGET`], on a runtime of its own
/// (completion runs before `main` starts one); nothing when no client can be made or time runs
/// out.
fn ask<F, Fut>(work: F) -> Vec<CompletionCandidate>
where
    F: FnOnce(Arc<Client>) -> Fut,
    Fut: Future<Output = Vec<CompletionCandidate>>,
{
    // The global options as the environment sets them (the command line being completed is not
    // parsed yet).
    let Ok(cli) = crate::args::Cli::try_parse_from(["ferry", "deploy", "list"]) else {
        return Vec::new();
    };
    let ctx = crate::commands::Ctx { global: cli.global };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    runtime.block_on(async move {
        let Ok(client) = ctx.client() else {
            return Vec::new();
        };
        tokio::time::timeout(BUDGET, work(client))
            .await
            .unwrap_or_default()
    })
}
