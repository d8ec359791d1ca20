//! The consumer of `webhook.requested`: stores the delivery (its id is the webhook run's id)
//! leased to this replica with its first attempt counted, commits, and sends it at once in a
//! tracked task; the message is acked after the commit, so from then on the row carries the
//! work (a replica that dies mid-send leaves it to the retry loop once the lease expires). A
//! redelivered request finds the row and changes nothing: a delivery is never started twice
//! and a finished one never re-run.

use crate::deliver::{Context, deliver};
use crate::policy;
use ferry_bus::{Handler, HandlerError, Incoming, WebhookMessage};
use ferry_store::webhooks::{self, DeliveryKind, NewDelivery};
use ferry_store::{DeploymentId, StoreError, TenantId};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// Handles svc-webhook's work queue.
#[derive(Debug)]
pub struct RequestHandler {
    ctx: Context,
    tracker: TaskTracker,
    room: Arc<Semaphore>,
}

impl RequestHandler {
    /// A handler sending with `ctx`, its sends tracked by `tracker` and at most as many at
    /// once as `room` has permits (it waits for room before taking more work).
    pub fn new(ctx: Context, tracker: TaskTracker, room: Arc<Semaphore>) -> RequestHandler {
        RequestHandler { ctx, tracker, room }
    }
}

fn store_error(e: StoreError) -> HandlerError {
    match e {
        StoreError::Database(db) => HandlerError::from(db),
        StoreError::NotFound { .. } | StoreError::Invalid { .. } => HandlerError::permanent(e),
        other => HandlerError::retryable(other),
    }
}

impl Handler for RequestHandler {
    type Message = WebhookMessage;

    async fn handle(&self, message: Incoming<WebhookMessage>) -> Result<(), HandlerError> {
        let envelope = message.envelope;
        let tenant = TenantId(envelope.tenant_id);
        let WebhookMessage::WebhookRequested(request) = &envelope.payload;
        let permit = self
            .room
            .clone()
            .acquire_owned()
            .await
            .map_err(HandlerError::retryable)?;
        let new = NewDelivery {
            id: request.webhook_id,
            kind: DeliveryKind::Webhook,
            deployment_id: DeploymentId(request.deployment_id),
            target: request.target.clone(),
            step_key: request.step_key.clone(),
            name: request.webhook_name.clone(),
            endpoint_id: None,
            request: serde_json::to_value(request).map_err(HandlerError::permanent)?,
            max_attempts: policy::max_attempts(request.call.retry_count),
            deadline: request.deadline,
        };
        let mut tx = self.ctx.store.begin().await.map_err(store_error)?;
        let created = webhooks::create_leased(
            &mut tx,
            tenant,
            &new,
            &self.ctx.config.owner,
            self.ctx.config.lease,
        )
        .await
        .map_err(store_error)?;
        tx.commit().await?;
        let Some(delivery) = created else {
            tracing::debug!(webhook = %request.webhook_id, "webhook already requested; nothing to do");
            return Ok(());
        };
        tracing::info!(
            webhook = %request.webhook_id,
            name = %request.webhook_name,
            deployment = %request.deployment_id,
            step = %request.step_key,
            "webhook requested"
        );
        let ctx = self.ctx.clone();
        self.tracker.spawn(async move {
            deliver(&ctx, delivery).await;
            drop(permit);
        });
        Ok(())
    }
}
