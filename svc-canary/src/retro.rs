//! Retrospective analysis: an analysis step's queries run over a past time range, every run
//! at once (no waiting, nothing stored), with the same rendering, providers and judges as a
//! live analysis. svc-api serves it (`POST /v1/analysis/retrospective`) so a user can tune a
//! query before putting it into a deploy file.

use crate::providers::Window;
use crate::run::{RunContext, RunOutcome, judgment_run};
use crate::spec;
use crate::verdict::{Conclusion, conclude};
use chrono::{DateTime, Utc};
use ferry_bus::messages::AnalysisRequested;
use ferry_deploy::AnalysisStep;
use ferry_store::TenantId;

/// One run of a retrospective analysis.
#[derive(Debug)]
pub struct RetroRun {
    /// Its window.
    pub window: Window,
    /// What it found.
    pub outcome: RunOutcome,
}

/// Runs every judgment run of `step` from `start`, in order, and concludes. `request` carries
/// the variables and context the queries are rendered with.
pub async fn run_all(
    ctx: &RunContext,
    tenant: TenantId,
    request: &AnalysisRequested,
    step: &AnalysisStep,
    start: DateTime<Utc>,
) -> (Vec<RetroRun>, Conclusion) {
    let mut runs = Vec::new();
    for k in 0..step.number_of_judgment_runs.max(1) {
        let window = spec::window(step, start, k);
        let outcome = judgment_run(ctx, tenant, request, step, window).await;
        runs.push(RetroRun { window, outcome });
    }
    let summaries: Vec<_> = runs.iter().map(|r| r.outcome.summary.clone()).collect();
    let conclusion = conclude(step, &summaries, None);
    (runs, conclusion)
}
