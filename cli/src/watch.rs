//! `--watch`: follows a deployment until it ends. The event stream (see [`sse`]) says when
//! something changed and a slow poll covers a stream that cannot be had; each time, the
//! deployment's detail is read and drawn with [`progress`]: redrawn in place on a terminal,
//! otherwise one line per changed row (no escape codes). With `--auto-approve`, pending
//! approvals are approved by the CLI, which says so. The exit code tells how it ended: 0 only
//! when it succeeded.

mod screen;

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::actions::DecisionRequest;
use ferry_api::deployments::{Approval, DeploymentConfig, DeploymentDetail};
use ferry_api::status::DeploymentStatus;
use ferry_deploy::Plan;
use tokio::sync::mpsc;

use crate::args::{Format, WatchArgs};
use crate::client::Client;
use crate::commands::segment;
use crate::error::ApiError;
use crate::output;
use crate::progress;
use crate::sse::{self, Signal};

use self::screen::Screen;

/// How often the detail is read when no event arrives.
const POLL: Duration = Duration::from_secs(2);

/// Consecutive failed reads tolerated (the API restarting, a network blip) before giving up.
const MAX_FAILURES: u32 = 10;

/// The plan of deployment `id` (for step names), if it can be read. A stored plan this CLI
/// cannot decode (a newer schema version) is said on stderr; the tree then shows steps by number.
pub(crate) async fn plan(client: &Client, id: &str) -> Option<Plan> {
    let config: DeploymentConfig = client
        .get(&format!("/v1/deployments/{}/config", segment(id)), &[])
        .await
        .ok()?;
    Plan::from_stored(&config.plan)
        .inspect_err(|e| eprintln!("warning: {e}; steps are shown without their names"))
        .ok()
}

/// Follows deployment `id` until it ends (or `--timeout` passes); the exit code says how it
/// ended ([`crate::exit`]).
pub(crate) async fn run(
    client: Arc<Client>,
    id: &str,
    format: Format,
    watch: &WatchArgs,
) -> anyhow::Result<ExitCode> {
    let auto_approve = watch.auto_approve;
    let deadline = watch.timeout.map(|t| tokio::time::Instant::now() + t);
    let detail_path = format!("/v1/deployments/{}", segment(id));
    // The first read also tells a wrong id (404) before anything else starts.
    let mut detail: DeploymentDetail = client.get(&detail_path, &[]).await?;
    let plan = plan(&client, id).await;
    let (tx, mut signals) = mpsc::unbounded_channel();
    let follower = tokio::spawn(sse::follow(
        client.clone(),
        format!("{detail_path}/events"),
        tx,
    ));
    let mut screen = Screen::new(format);
    let mut approved = HashSet::new();
    let mut failures = 0;
    // Whether the event follower still runs.
    let mut live = true;
    // Messages for the user, printed with the next picture (so a redraw can count its lines).
    let mut notes: Vec<String> = Vec::new();
    let outcome = loop {
        if auto_approve {
            notes.extend(approve_pending(&client, id, &detail, &mut approved).await);
        }
        screen.draw(&notes, progress::rows(&detail, plan.as_ref()));
        notes.clear();
        let status = detail.deployment.status;
        if status.is_terminal() {
            break Ok(Some(status));
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            // Timed out: it goes on.
            break Ok(None);
        }
        // Wait for an event (several arriving together make one refresh), the poll, or a resize
        // of the terminal (redrawn at its new width without reading the detail again).
        let mut resized = false;
        tokio::select! {
            signal = signals.recv(), if live => match signal {
                Some(Signal::GaveUp(e)) => notes.push(format!(
                    "note: live events unavailable ({e}); polling every {}s",
                    POLL.as_secs()
                )),
                Some(_) => while signals.try_recv().is_ok() {},
                None => live = false,
            },
            _ = tokio::time::sleep(POLL) => {}
            _ = sleep_until(deadline) => {}
            _ = screen.resized() => resized = true,
        }
        if resized {
            continue;
        }
        match client.get(&detail_path, &[]).await {
            Ok(d) => {
                detail = d;
                failures = 0;
            }
            Err(e @ (ApiError::Unreachable { .. } | ApiError::Refused { .. }))
                if failures < MAX_FAILURES =>
            {
                failures += 1;
                notes.push(format!("note: {e}; retrying"));
                tokio::time::sleep(POLL).await;
            }
            Err(e) => break Err(e),
        }
    };
    follower.abort();
    let status = outcome?;
    if format != Format::Text {
        output::emit(format, &detail, |_| String::new());
    }
    let reason = (detail.deployment.reason.as_deref())
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let Some(status) = status else {
        let waited = watch.timeout.unwrap_or_default().as_secs();
        eprintln!(
            "Stopped watching deployment {id} after {waited}s (--timeout): it is still {}; \
             follow it with `ferry deploy status {id} --watch`.",
            detail.deployment.status.as_str().replace('_', " ")
        );
        return Ok(ExitCode::from(crate::exit::TIMED_OUT));
    };
    if status == DeploymentStatus::Succeeded {
        screen.write(&format!("Deployment {id} succeeded.\n"));
    } else {
        eprintln!(
            "Deployment {id} ended {}{reason}.",
            status.as_str().replace('_', " ")
        );
    }
    Ok(crate::exit::for_status(status))
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Approves every pending approval not tried yet; returns what it did, for the user.
async fn approve_pending(
    client: &Client,
    id: &str,
    detail: &DeploymentDetail,
    tried: &mut HashSet<uuid::Uuid>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for approval in &detail.pending_approvals {
        if !tried.insert(approval.id) {
            continue;
        }
        let target = &approval.target_name;
        let body = DecisionRequest {
            target: target.clone(),
            comment: Some("approved by ferry --auto-approve".into()),
        };
        let path = format!("/v1/deployments/{}/approve", segment(id));
        match client.post::<_, Approval>(&path, &body).await {
            Ok(_) => notes.push(format!(
                "auto-approved target {target} ({}) because of --auto-approve",
                approval.step_key
            )),
            Err(e) => notes.push(format!("could not auto-approve target {target}: {e}")),
        }
    }
    notes
}
