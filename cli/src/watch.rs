//! `--watch`: follows a deployment until it ends. The event stream (see [`sse`]) says when
//! something changed and a slow poll covers a stream that cannot be had; each time, the
//! deployment's detail is read and drawn with [`progress`]: redrawn in place on a terminal,
//! otherwise one line per changed row (no escape codes). With `--auto-approve`, pending
//! approvals are approved by the CLI, which says so. The exit code tells how it ended: 0 only
//! when it succeeded.

use std::collections::HashSet;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ferry_deploy::Plan;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::args::{Format, WatchArgs};
use crate::client::Client;
use crate::commands::segment;
use crate::error::ApiError;
use crate::output;
use crate::progress::{self, Row};
use crate::sse::{self, Signal};

/// How often the detail is read when no event arrives.
const POLL: Duration = Duration::from_secs(2);

/// Consecutive failed reads tolerated (the API restarting, a network blip) before giving up.
const MAX_FAILURES: u32 = 10;

/// The plan of deployment `id` (for step names), if it can be read. A stored plan this CLI
/// cannot decode (a newer schema version) is said on stderr; the tree then shows steps by number.
pub async fn plan(client: &Client, id: &str) -> Option<Plan> {
    let config = client
        .get(&format!("/v1/deployments/{}/config", segment(id)), &[])
        .await
        .ok()?;
    Plan::from_stored(&config["plan"])
        .inspect_err(|e| eprintln!("warning: {e}; steps are shown without their names"))
        .ok()
}

/// Where and how progress is drawn.
struct Screen {
    /// Redraw in place (stdout is a terminal and the format is text).
    redraw: bool,
    /// Progress goes to stderr (stdout is kept for the final JSON/YAML document).
    to_stderr: bool,
    /// Lines drawn last time (terminal mode).
    drawn: usize,
    /// Rows shown last time.
    shown: Vec<Row>,
    /// Terminal width, to keep each row on one line so the redraw can count lines.
    width: usize,
}

impl Screen {
    fn new(format: Format) -> Screen {
        let to_stderr = format != Format::Text;
        let terminal = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let redraw = terminal && std::env::var_os("TERM").is_some_and(|t| t != "dumb");
        Screen {
            redraw,
            to_stderr,
            drawn: 0,
            shown: Vec::new(),
            width: if redraw { terminal_width() } else { usize::MAX },
        }
    }

    fn write(&self, text: &str) {
        if self.to_stderr {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    /// Prints the rows and `notes` (on a terminal the notes stay above the redrawn picture).
    fn draw(&mut self, notes: &[String], rows: Vec<Row>) {
        let text = self.frame(notes, rows);
        self.write(&text);
    }

    /// The text that brings the screen from what was drawn last to `rows` and `notes`.
    fn frame(&mut self, notes: &[String], rows: Vec<Row>) -> String {
        let mut text = String::new();
        if self.redraw {
            if self.drawn > 0 {
                // Up to the first line drawn last time, then clear to the end of the screen.
                text.push_str(&format!("\x1b[{}F\x1b[J", self.drawn));
            }
            for note in notes {
                text.push_str(note);
                text.push('\n');
            }
            let tree = progress::tree(&rows);
            for line in tree.lines() {
                text.push_str(&clip(line, self.width));
                text.push('\n');
            }
            self.drawn = tree.lines().count();
        } else {
            // A log reads in order: the state first, then what the CLI did about it.
            for row in progress::changed(&self.shown, &rows) {
                let indent = match row.depth {
                    0 => "",
                    1 => "  ",
                    _ => "    → ",
                };
                text.push_str(&format!("{indent}{}\n", row.text));
            }
            for note in notes {
                text.push_str(note);
                text.push('\n');
            }
        }
        self.shown = rows;
        text
    }
}

/// Follows deployment `id` until it ends (or `--timeout` passes); the exit code says how it
/// ended ([`crate::exit`]).
pub async fn run(
    client: Arc<Client>,
    id: &str,
    format: Format,
    watch: &WatchArgs,
) -> anyhow::Result<ExitCode> {
    let auto_approve = watch.auto_approve;
    let deadline = watch.timeout.map(|t| tokio::time::Instant::now() + t);
    let detail_path = format!("/v1/deployments/{}", segment(id));
    // The first read also tells a wrong id (404) before anything else starts.
    let mut detail = client.get(&detail_path, &[]).await?;
    let plan = plan(&client, id).await;
    let (tx, mut signals) = mpsc::unbounded_channel();
    let follower = tokio::spawn(sse::follow(
        client.clone(),
        format!("{detail_path}/events"),
        tx,
    ));
    let mut screen = Screen::new(format);
    let mut approved: HashSet<String> = HashSet::new();
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
        let status = progress::status(&detail).to_string();
        if progress::is_terminal(&status) {
            break Ok(status);
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break Ok(TIMED_OUT.to_string());
        }
        // Wait for an event (several arriving together make one refresh) or the poll.
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
    let reason = detail["deployment"]["reason"]
        .as_str()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    if status == TIMED_OUT {
        let waited = watch.timeout.unwrap_or_default().as_secs();
        eprintln!(
            "Stopped watching deployment {id} after {waited}s (--timeout): it is still {}; \
             follow it with `ferry deploy status {id} --watch`.",
            progress::status(&detail).replace('_', " ")
        );
        return Ok(ExitCode::from(crate::exit::TIMED_OUT));
    }
    if status == "succeeded" {
        screen.write(&format!("Deployment {id} succeeded.\n"));
    } else {
        eprintln!(
            "Deployment {id} ended {}{reason}.",
            status.replace('_', " ")
        );
    }
    Ok(crate::exit::for_status(&status))
}

/// Marks a watch that ran out of `--timeout` (never a status the API uses).
const TIMED_OUT: &str = "--timeout";

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
    detail: &Value,
    tried: &mut HashSet<String>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for approval in detail["pending_approvals"].as_array().into_iter().flatten() {
        let (Some(approval_id), Some(target)) =
            (approval["id"].as_str(), approval["target_name"].as_str())
        else {
            continue;
        };
        if !tried.insert(approval_id.to_string()) {
            continue;
        }
        let body = json!({ "target": target, "comment": "approved by ferry --auto-approve" });
        let path = format!("/v1/deployments/{}/approve", segment(id));
        match client.post(&path, Some(&body)).await {
            Ok(_) => notes.push(format!(
                "auto-approved target {target} ({}) because of --auto-approve",
                approval["step_key"].as_str().unwrap_or("approval")
            )),
            Err(e) => notes.push(format!("could not auto-approve target {target}: {e}")),
        }
    }
    notes
}

/// The terminal's width: `COLUMNS`, else what `tput cols` says, else 80.
fn terminal_width() -> usize {
    let tput = || {
        let out = std::process::Command::new("tput")
            .arg("cols")
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()
    };
    std::env::var("COLUMNS")
        .ok()
        .or_else(tput)
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}

/// `line` cut to fit `width` columns (so a redraw knows how many lines it drew).
fn clip(line: &str, width: usize) -> String {
    if line.chars().count() < width {
        return line.to_string();
    }
    let mut out: String = line.chars().take(width.saturating_sub(2)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(redraw: bool) -> Screen {
        Screen {
            redraw,
            to_stderr: false,
            drawn: 0,
            shown: Vec::new(),
            width: 60,
        }
    }

    fn row(key: &str, depth: usize, text: &str) -> Row {
        Row {
            key: key.into(),
            depth,
            text: text.into(),
        }
    }

    #[test]
    fn a_terminal_is_redrawn_in_place_with_notes_kept_above() {
        let mut s = screen(true);
        let first = s.frame(
            &[],
            vec![
                row("deployment", 0, "d: running"),
                row("target:a", 1, "a: pending"),
            ],
        );
        assert_eq!(first, "d: running\n└─ a: pending\n");
        let second = s.frame(
            &["auto-approved target a".into()],
            vec![
                row("deployment", 0, "d: running"),
                row("target:a", 1, "a: running"),
            ],
        );
        assert_eq!(
            second,
            "\x1b[2F\x1b[Jauto-approved target a\nd: running\n└─ a: running\n"
        );
        let long = s.frame(&[], vec![row("deployment", 0, &"x".repeat(100))]);
        assert!(long.starts_with("\x1b[2F\x1b[J"), "{long:?}");
        assert_eq!(long.lines().count(), 1);
    }

    #[test]
    fn without_a_terminal_only_changes_are_printed_plainly() {
        let mut s = screen(false);
        let first = s.frame(
            &[],
            vec![
                row("deployment", 0, "d: running"),
                row("target:a", 1, "a: pending"),
            ],
        );
        assert_eq!(first, "d: running\n  a: pending\n");
        let second = s.frame(
            &["auto-approved target a".into()],
            vec![
                row("deployment", 0, "d: running"),
                row("target:a", 1, "a: paused"),
                row("hint:a", 2, "approve: ferry deploy approve d --target a"),
            ],
        );
        assert_eq!(
            second,
            "  a: paused\n    → approve: ferry deploy approve d --target a\nauto-approved target a\n"
        );
        assert!(!second.contains('\x1b'));
    }

    #[test]
    fn long_lines_are_clipped_to_the_terminal() {
        assert_eq!(clip("short", 80), "short");
        let long = "x".repeat(100);
        let clipped = clip(&long, 40);
        assert_eq!(clipped.chars().count(), 39);
        assert!(clipped.ends_with('…'));
    }
}
