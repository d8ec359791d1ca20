//! The consumer of `analysis.requested`: resolves the analysis step from the deployment's plan
//! and stores the analysis (its first run due one interval later), in one transaction with the
//! inbox marker, so a redelivered request changes nothing. A request naming no analysis step
//! is answered at once with a failed `analysis.completed` that says why.

use crate::spec;
use chrono::Utc;
use ferry_bus::messages::{AnalysisCompleted, AnalysisRequested};
use ferry_bus::{CanaryMessage, Envelope, Handler, HandlerError, Incoming, SchedulerMessage};
use ferry_deploy::Plan;
use ferry_store::analysis::{self, AnalysisStatus, NewAnalysis};
use ferry_store::{DeploymentId, Store, StoreError, TenantId, deployments};
use std::sync::Arc;
use tokio::sync::Notify;

/// The consumer name (inbox) of svc-canary.
pub const CONSUMER: &str = "canary";

/// Handles svc-canary's queue.
#[derive(Debug)]
pub struct RequestHandler {
    store: Store,
    /// Wakes the run loop when an analysis arrives.
    wake: Arc<Notify>,
}

impl RequestHandler {
    /// A handler over `store` that wakes `wake` after storing an analysis.
    pub fn new(store: Store, wake: Arc<Notify>) -> RequestHandler {
        RequestHandler { store, wake }
    }
}

fn store_error(e: StoreError) -> HandlerError {
    match e {
        StoreError::Database(db) => HandlerError::from(db),
        StoreError::NotFound { .. } | StoreError::Invalid { .. } => HandlerError::permanent(e),
        other => HandlerError::retryable(other),
    }
}

/// The completion message of an analysis.
pub fn completed(
    request: &AnalysisRequested,
    success: bool,
    inconclusive: bool,
    reason: &str,
) -> SchedulerMessage {
    SchedulerMessage::AnalysisCompleted(AnalysisCompleted {
        deployment_id: request.deployment_id,
        target: request.target.clone(),
        step_index: request.step_index,
        analysis_id: request.analysis_id,
        success,
        reason: Some(reason.to_string()),
        inconclusive,
    })
}

impl Handler for RequestHandler {
    type Message = CanaryMessage;

    async fn handle(&self, message: Incoming<CanaryMessage>) -> Result<(), HandlerError> {
        let envelope = message.envelope;
        let tenant = TenantId(envelope.tenant_id);
        let CanaryMessage::AnalysisRequested(request) = &envelope.payload;
        let deployment = DeploymentId(request.deployment_id);
        let config = deployments::config(&self.store, tenant, deployment)
            .await
            .map_err(store_error)?;
        let step = Plan::from_stored(&config.plan.0)
            .map_err(|e| e.to_string())
            .and_then(|plan| spec::find_step(&plan, &request.target, &request.step_key));
        let now = Utc::now();
        let mut tx = self.store.begin().await.map_err(store_error)?;
        if !ferry_bus::inbox::first_delivery(&mut tx, CONSUMER, &envelope).await? {
            return Ok(());
        }
        let (spec_json, runs, first_run_at) = match &step {
            Ok(s) => (
                serde_json::to_value(s).map_err(HandlerError::permanent)?,
                s.number_of_judgment_runs.max(1) as i32,
                now + chrono::Duration::seconds(crate::spec::interval_secs(s) as i64),
            ),
            Err(_) => (serde_json::Value::Null, 1, now),
        };
        let new = NewAnalysis {
            id: request.analysis_id,
            deployment_id: deployment,
            target: request.target.clone(),
            step_key: request.step_key.clone(),
            step_index: request.step_index as i32,
            request: serde_json::to_value(request).map_err(HandlerError::permanent)?,
            spec: spec_json,
            total_runs: runs,
            started_at: now,
            first_run_at,
        };
        let created = analysis::create(&mut tx, tenant, &new)
            .await
            .map_err(store_error)?;
        if created && let Err(why) = &step {
            let reason = format!("analysis cannot run: {why}");
            analysis::finish(
                &mut tx,
                tenant,
                request.analysis_id,
                AnalysisStatus::Failed,
                &serde_json::json!({ "error": reason }),
                &reason,
            )
            .await
            .map_err(store_error)?;
            let done = Envelope::new(
                envelope.tenant_id,
                completed(request, false, false, &reason),
            )
            .with_correlation_id(envelope.id);
            ferry_bus::outbox::enqueue(&mut tx, &done).await?;
        }
        tx.commit().await?;
        tracing::info!(
            analysis = %request.analysis_id,
            deployment = %request.deployment_id,
            target = %request.target,
            step = %request.step_key,
            "analysis requested"
        );
        self.wake.notify_one();
        Ok(())
    }
}
