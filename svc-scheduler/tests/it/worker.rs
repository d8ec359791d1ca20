//! Tests play svc-webhook and svc-canary: a [`Worker`] consumes a service's work queue and hands
//! each request to the test, which answers through the outbox as the real service would.

use crate::support::{Bench, WAIT};
use ferry_bus::consumer::{ConsumerConfig, Handler, HandlerError, Incoming};
use ferry_bus::messages::{
    AnalysisCompleted, AnalysisRequested, Message, WebhookCompleted, WebhookRequested,
};
use ferry_bus::{
    CanaryMessage, ConsumerMetrics, Envelope, SchedulerMessage, WebhookMessage, WorkQueue,
};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Forward<M>(mpsc::UnboundedSender<Envelope<M>>);

impl<M: Message> Handler for Forward<M> {
    type Message = M;

    async fn handle(&self, message: Incoming<M>) -> Result<(), HandlerError> {
        let _ = self.0.send(message.envelope);
        Ok(())
    }
}

/// A consumer of one work queue whose messages the test receives in order.
pub(crate) struct Worker<M> {
    received: mpsc::UnboundedReceiver<Envelope<M>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl<M: Message> Worker<M> {
    /// Starts consuming `queue` on the bench's bus.
    pub(crate) fn start(bench: &Bench, queue: WorkQueue) -> Worker<M> {
        let (tx, received) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let bus = bench.bus.clone();
        let metrics = ConsumerMetrics::register(&prometheus::Registry::new()).unwrap();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            ferry_bus::run_consumer(
                &bus,
                ConsumerConfig::new(queue),
                Arc::new(Forward(tx)),
                metrics,
                token,
            )
            .await;
        });
        Worker {
            received,
            stop,
            task,
        }
    }

    /// The next message, failing the test when none comes within the wait.
    pub(crate) async fn next(&mut self, what: &str) -> Envelope<M> {
        tokio::time::timeout(WAIT, self.received.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
            .expect("the worker stopped")
    }

    /// Stops consuming.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// The next webhook request.
pub(crate) async fn webhook_request(worker: &mut Worker<WebhookMessage>) -> WebhookRequested {
    let WebhookMessage::WebhookRequested(m) = worker.next("webhook.requested").await.payload;
    m
}

/// The next analysis request.
pub(crate) async fn analysis_request(worker: &mut Worker<CanaryMessage>) -> AnalysisRequested {
    let CanaryMessage::AnalysisRequested(m) = worker.next("analysis.requested").await.payload;
    m
}

/// Reports the webhook's result as svc-webhook (or the callback through svc-api) does.
pub(crate) async fn complete_webhook(
    bench: &Bench,
    request: &WebhookRequested,
    success: bool,
    why: &str,
) {
    bench
        .send(SchedulerMessage::WebhookCompleted(WebhookCompleted {
            deployment_id: request.deployment_id,
            target: request.target.clone(),
            step_index: request.step_index,
            webhook_id: request.webhook_id,
            success,
            reason: Some(why.into()),
        }))
        .await;
}

/// Reports the analysis verdict as svc-canary does.
pub(crate) async fn complete_analysis(
    bench: &Bench,
    request: &AnalysisRequested,
    success: bool,
    why: &str,
) {
    bench
        .send(SchedulerMessage::AnalysisCompleted(AnalysisCompleted {
            deployment_id: request.deployment_id,
            target: request.target.clone(),
            step_index: request.step_index,
            analysis_id: request.analysis_id,
            success,
            reason: Some(why.into()),
            inconclusive: false,
        }))
        .await;
}

/// A person's roll-forward or roll-back decision, written as svc-api does.
pub(crate) async fn decide_rollout(bench: &Bench, request: &AnalysisRequested, forward: bool) {
    use ferry_bus::messages::{RolloutDecided, RolloutDecision};
    bench
        .send(SchedulerMessage::RolloutDecided(RolloutDecided {
            deployment_id: request.deployment_id,
            target: request.target.clone(),
            step_index: request.step_index,
            decision: if forward {
                RolloutDecision::Forward
            } else {
                RolloutDecision::Back
            },
            decided_by: Some("olga@example.com".into()),
            reason: None,
        }))
        .await;
}

/// How many requests the engine wrote for a service (`webhook`, `canary`) through the outbox:
/// the transactional record, whether or not the relay published them yet.
pub(crate) async fn requests_written(bench: &Bench, service: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE routing_key = $1")
        .bind(service)
        .fetch_one(&bench.db.pool)
        .await
        .unwrap()
}
