//! GitHub Actions integration of `ferry deploy start` (and `redeploy`): when `GITHUB_OUTPUT`
//! is set, the step's outputs are appended to it under the names Armory's deploy action uses
//! (`DEPLOYMENT_ID`, `LINK`, `RUN_RESULT` when the deployment was watched), plus Ferry's own
//! status (`FERRY_STATUS`); when `GITHUB_STEP_SUMMARY` is set, a short Markdown summary is
//! appended to it. A file that cannot be written is a warning, never a failed deployment.

use std::io::Write as _;
use std::path::Path;

/// The step's output file.
pub(crate) const OUTPUT: &str = "GITHUB_OUTPUT";

/// The job summary file.
pub(crate) const SUMMARY: &str = "GITHUB_STEP_SUMMARY";

/// What a start reports to the workflow.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    /// The deployment's id.
    pub id: &'a str,
    /// Its application.
    pub application: &'a str,
    /// Where to read it (the API URL of the deployment).
    pub link: String,
    /// Ferry's status of the deployment (`running`, `waiting`, or how it ended).
    pub status: &'a str,
    /// Whether the run followed the deployment (then `RUN_RESULT` is set).
    pub watched: bool,
    /// The deploy file's warnings.
    pub warnings: Vec<&'a str>,
}

/// Armory's name of a Ferry deployment status (`RUN_RESULT`, and the `/pipelines` API's).
pub(crate) fn run_result(status: &str) -> &'static str {
    match status {
        "succeeded" => "SUCCEEDED",
        "failed" | "rolled_back" => "FAILED",
        "aborted" | "superseded" => "CANCELLED",
        "running" => "RUNNING",
        "paused" => "PAUSED",
        "waiting" => "NOT_STARTED",
        _ => "UNKNOWN",
    }
}

/// Appends the outputs and the summary where the environment says; warns on failure.
pub(crate) fn report(report: &Report<'_>) {
    for (variable, text, what) in [
        (OUTPUT, outputs(report), "the step's outputs"),
        (SUMMARY, summary(report), "the job summary"),
    ] {
        let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) else {
            continue;
        };
        if let Err(e) = append(Path::new(&path), &text) {
            eprintln!("warning: cannot write {what} to {variable}: {e}");
        }
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// `NAME=value` lines; every value is one line (ids, URLs, status words).
fn outputs(report: &Report<'_>) -> String {
    let mut out = format!(
        "DEPLOYMENT_ID={}\nLINK={}\nFERRY_STATUS={}\n",
        report.id, report.link, report.status
    );
    if report.watched {
        out.push_str(&format!("RUN_RESULT={}\n", run_result(report.status)));
    }
    out
}

fn summary(report: &Report<'_>) -> String {
    let mut out = format!(
        "### Ferry deployment of {}\n\n- Deployment: [`{}`]({})\n- Status: {}\n",
        markdown_text(report.application),
        report.id,
        report.link,
        report.status
    );
    for warning in &report.warnings {
        out.push_str(&format!("- Warning: {}\n", markdown_text(warning)));
    }
    out.push('\n');
    out
}

/// Text with Markdown's active characters escaped, so a name cannot format the summary.
fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_{}[]()<>#+-.!|~".contains(c) {
            out.push('\\');
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_use_armorys_names_and_run_result_only_when_watched() {
        let mut report = Report {
            id: "d-1",
            application: "Potato *Facts*",
            link: "https://ferry.example/v1/deployments/d-1".into(),
            status: "running",
            watched: false,
            warnings: vec!["deploy.yml:3:1: webhooks: defined twice"],
        };
        assert_eq!(
            outputs(&report),
            "DEPLOYMENT_ID=d-1\nLINK=https://ferry.example/v1/deployments/d-1\nFERRY_STATUS=running\n"
        );
        report.watched = true;
        report.status = "rolled_back";
        assert!(outputs(&report).ends_with("RUN_RESULT=FAILED\n"));
        let summary = summary(&report);
        assert!(
            summary.starts_with("### Ferry deployment of Potato \\*Facts\\*\n"),
            "{summary}"
        );
        assert!(summary.contains("- Warning: deploy\\.yml:3:1: webhooks: defined twice\n"));
        assert_eq!(run_result("succeeded"), "SUCCEEDED");
        assert_eq!(run_result("superseded"), "CANCELLED");
        assert_eq!(run_result("something new"), "UNKNOWN");
    }
}
