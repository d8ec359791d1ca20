//! The run loop: every replica leases analyses whose next judgment run is due (a lease, not a
//! lock: no transaction stays open while providers answer), runs it, and records it with the
//! run count it read, so a run is counted once even when two replicas raced or one died
//! mid-run (its lease expires and another replica runs that run again). The last run, or a
//! failed one under `abortOnFailedJudgment`, ends the analysis: verdict and
//! `analysis.completed` commit together.

use crate::handler::completed;
use crate::run::{RunContext, RunSummary, judgment_run};
use crate::spec;
use crate::verdict::conclude;
use ferry_bus::Envelope;
use ferry_bus::messages::AnalysisRequested;
use ferry_deploy::AnalysisStep;
use ferry_store::analysis::{self, Analysis, AnalysisStatus, NewRun};
use ferry_store::{Store, StoreError, targets};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How the loop paces itself.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// This replica's name in leases.
    pub owner: String,
    /// How long a lease lasts: longer than a run can take.
    pub lease: Duration,
    /// How often the loop looks for due runs.
    pub poll: Duration,
    /// Judgment runs in flight at most (each of another analysis).
    pub batch: i64,
}

/// Why a run could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The database failed or the lease moved on.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The outbox refused the completion.
    #[error("outbox: {0}")]
    Bus(#[from] ferry_bus::BusError),
    /// A stored row does not decode.
    #[error("stored analysis: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Runs due judgment runs until `shutdown`; `wake` makes it look at once. At most
/// `config.batch` runs are in flight; a slow provider holds up only its own analysis. On
/// shutdown the runs in flight finish (a run cut short would wait for its lease to expire).
pub async fn run(
    ctx: RunContext,
    config: RunnerConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let room = config.batch - tasks.len() as i64;
        if room > 0 {
            match claim(&ctx.store, &config, room).await {
                Ok(due) => {
                    for a in due {
                        let (ctx, owner) = (ctx.clone(), config.owner.clone());
                        tasks.spawn(async move {
                            let id = a.id;
                            if let Err(e) = run_one(&ctx, &owner, a).await {
                                tracing::warn!(analysis = %id, error = %e, "judgment run not recorded");
                            }
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "looking for due analyses failed; trying again");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wake.notified() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = tokio::time::sleep(config.poll) => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Why the analysis's target no longer waits for it (it ended, or is gone), if so.
async fn target_ended(ctx: &RunContext, a: &Analysis) -> Result<Option<String>, RunError> {
    match targets::get(&ctx.store, a.tenant_id, a.deployment_id, &a.target_name).await {
        Ok(t) if t.status.is_terminal() => Ok(Some(format!(
            "stopped: target {:?} ended ({}) before the analysis finished",
            t.name, t.status
        ))),
        Ok(_) => Ok(None),
        Err(e) if e.is_not_found() => Ok(Some(format!(
            "stopped: target {:?} no longer exists",
            a.target_name
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn claim(
    store: &Store,
    config: &RunnerConfig,
    limit: i64,
) -> Result<Vec<Analysis>, StoreError> {
    let mut tx = store.begin().await?;
    let due = analysis::claim_due_all_tenants(&mut tx, &config.owner, config.lease, limit).await?;
    tx.commit().await?;
    Ok(due)
}

/// Runs the next judgment run of the leased analysis `a` and records it (ending the analysis
/// when it was the last or a failed one under abortOnFailedJudgment).
pub async fn run_one(ctx: &RunContext, owner: &str, a: Analysis) -> Result<(), RunError> {
    let tenant = a.tenant_id;
    if let Some(why) = target_ended(ctx, &a).await? {
        // Nobody waits for this verdict any more: stop querying, tell no one.
        let mut tx = ctx.store.begin().await?;
        let verdict = serde_json::json!({ "status": AnalysisStatus::Failed, "reason": why });
        if analysis::finish(
            &mut tx,
            tenant,
            a.id,
            AnalysisStatus::Failed,
            &verdict,
            &why,
        )
        .await?
        {
            ctx.metrics
                .analysis(AnalysisStatus::Failed.as_str(), since(a.started_at));
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(analysis = %a.id, reason = %why, "analysis stopped");
        return Ok(());
    }
    let request: AnalysisRequested = serde_json::from_value(a.request.0.clone())?;
    let step: AnalysisStep = serde_json::from_value(a.spec.0.clone())?;
    let k = a.runs_done.max(0) as u32;
    let window = spec::window(&step, a.started_at, k);
    let run_started = std::time::Instant::now();
    let outcome = judgment_run(ctx, tenant, &request, &step, window).await;
    let run_seconds = run_started.elapsed().as_secs_f64();
    let last = k + 1 >= a.total_runs.max(1) as u32;
    let abort = step.abort_on_failed_judgment && !outcome.summary.passed;
    let next = spec::window(&step, a.started_at, k + 1).end;
    let mut tx = ctx.store.begin().await?;
    analysis::record_run(
        &mut tx,
        tenant,
        a.id,
        owner,
        &NewRun {
            run_index: k as i32,
            window_start: window.start,
            window_end: window.end,
            passed: outcome.summary.passed,
            results: outcome.to_json(),
            explanation: outcome.explanation.clone(),
        },
        next,
    )
    .await?;
    tracing::info!(
        analysis = %a.id, run = k + 1, of = a.total_runs, passed = outcome.summary.passed,
        "judgment run recorded"
    );
    let mut ended = None;
    if last || abort {
        let mut runs: Vec<RunSummary> = Vec::with_capacity(k as usize + 1);
        for r in analysis::runs_in(&mut tx, tenant, a.id).await? {
            let summary = r.results.0.get("summary").cloned().unwrap_or_default();
            runs.push(serde_json::from_value(summary)?);
        }
        let aborted = (abort && !last).then_some(k as usize);
        let c = conclude(&step, &runs, aborted);
        let verdict = serde_json::json!({
            "status": c.status,
            "reason": c.reason,
            "queries": c.queries.iter().map(|(q, ok, why)| serde_json::json!({
                "query": q, "passed": ok, "explanation": why,
            })).collect::<Vec<_>>(),
            "runs": runs.len(),
        });
        if analysis::finish(&mut tx, tenant, a.id, c.status, &verdict, &c.reason).await? {
            let message = completed(
                &request,
                c.status == AnalysisStatus::Passed,
                c.status == AnalysisStatus::Inconclusive,
                &c.reason,
            );
            let envelope = Envelope::new(tenant.0, message).with_correlation_id(a.id);
            ferry_bus::outbox::enqueue(&mut tx, &envelope).await?;
            ended = Some(c.status);
            tracing::info!(analysis = %a.id, status = %c.status, reason = %c.reason, "analysis finished");
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    // Counted once committed, so a run that lost its lease is not counted.
    ctx.metrics.run(outcome.summary.passed, run_seconds);
    if let Some(status) = ended {
        ctx.metrics.analysis(status.as_str(), since(a.started_at));
    }
    Ok(())
}

/// Seconds from `start` to now (0 for a start in the future: clocks of replicas differ).
fn since(start: chrono::DateTime<chrono::Utc>) -> f64 {
    (chrono::Utc::now() - start)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64()
}
