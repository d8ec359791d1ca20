//! The consumer loop: takes messages from a service's work queue and hands them to a [`Handler`].
//!
//! - Manual acks, only after the handler returned `Ok` (the handler commits its own transaction,
//!   including its [`crate::inbox::first_delivery`] marker, before returning).
//! - Bounded prefetch (`basic.qos`); messages are handled concurrently up to that bound.
//! - Failures are decided in one place, [`HandlerError`]: a retryable error republishes the
//!   message to the queue's retry queue, whose TTL brings it back after the delay, with the
//!   attempt count in the `x-ferry-attempts` header; a permanent error, too many attempts, or a
//!   body that does not decode republishes it to the dead-letter queue with the reason
//!   (`x-ferry-error`, `x-ferry-reason`, `x-ferry-attempts`, `x-ferry-queue`). Either way the
//!   original is acked only after the broker confirmed the republish, so a crash in between leaves
//!   it in the work queue rather than nowhere.
//! - Shutdown on a [`CancellationToken`]: stop taking deliveries (cancel the AMQP consumer), let
//!   in-flight handlers finish and ack, then close. Prefetched messages not yet started return to
//!   the queue when the channel closes.
//! - A lost channel or connection restarts the loop after a backoff.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::connection::{Bus, close_channel};
use crate::envelope::Envelope;
use crate::error::{BusError, error_chain};
use crate::headers::{self, MessageHeaders};
use crate::messages::Message;
use crate::metrics::ConsumerMetrics;
use crate::publisher::{JSON, Outgoing, Publisher};
use crate::topology::{Topology, WorkQueue, short};

/// Any error a handler wants to report.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The `x-ferry-reason` of a message whose handler returned [`HandlerError::Permanent`].
pub const REASON_PERMANENT: &str = "permanent";
/// The `x-ferry-reason` of a message that failed `max_attempts` times with retryable errors.
pub const REASON_RETRIES_EXHAUSTED: &str = "retries_exhausted";
/// The `x-ferry-reason` of a message whose body is not an envelope the queue's message type knows.
pub const REASON_UNDECODABLE: &str = "undecodable";
/// The metrics `kind` label of messages that did not decode (their kind cannot be trusted).
pub const KIND_UNDECODABLE: &str = "undecodable";

/// Dead-letter reason headers are kept to this many bytes; an error text is a diagnosis, and an
/// unbounded one could exceed the broker's header frame limit.
const MAX_ERROR_HEADER: usize = 4096;

/// How a handler failed: the one place that decides between trying again and giving up.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A transient failure (database or broker away, serialization conflict, a cluster that did
    /// not answer): retried after the queue's delay, up to the configured attempts.
    #[error("retryable: {0}")]
    Retryable(#[source] BoxError),
    /// The message can never succeed (it contradicts the stored state, names something that does
    /// not exist): dead-lettered at once with the reason.
    #[error("permanent: {0}")]
    Permanent(#[source] BoxError),
}

impl HandlerError {
    /// A transient failure.
    pub fn retryable(error: impl Into<BoxError>) -> HandlerError {
        HandlerError::Retryable(error.into())
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(error: impl Into<BoxError>) -> HandlerError {
        HandlerError::Permanent(error.into())
    }

    /// Whether the consumer will try the message again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HandlerError::Retryable(_))
    }
}

/// Database errors: connection trouble, pool exhaustion, serialization failures, deadlocks, lock
/// timeouts and server shutdown are transient; everything else (constraint violations, a missing
/// row, a decode error) will fail the same way next time.
impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> HandlerError {
        if is_transient(&error) {
            HandlerError::Retryable(Box::new(error))
        } else {
            HandlerError::Permanent(Box::new(error))
        }
    }
}

/// Bus errors while handling (publishing, inbox): transient unless the message itself is bad.
impl From<BusError> for HandlerError {
    fn from(error: BusError) -> HandlerError {
        let transient = match &error {
            BusError::Database(db) => is_transient(db),
            BusError::Json(_) | BusError::UnknownExchange { .. } | BusError::Metrics(_) => false,
            _ => true,
        };
        if transient {
            HandlerError::Retryable(Box::new(error))
        } else {
            HandlerError::Permanent(Box::new(error))
        }
    }
}

/// Whether a database error is worth retrying.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available,
            // class 08 connection exceptions, class 53 insufficient resources, class 57P
            // operator intervention (admin shutdown, crash shutdown, cannot connect now).
            matches!(code.as_ref(), "40001" | "40P01" | "55P03")
                || code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
        }),
        _ => false,
    }
}

/// One delivery as a handler sees it.
#[derive(Clone, Debug)]
pub struct Incoming<M> {
    /// The decoded message.
    pub envelope: Envelope<M>,
    /// The trace context the producer attached.
    pub headers: MessageHeaders,
    /// 1 on the first attempt, 2 on the first retry, and so on.
    pub attempt: u32,
    /// Whether the broker flagged this as a redelivery (an earlier delivery was not acked).
    pub redelivered: bool,
}

/// What a service does with its messages. Implementations must be idempotent: a message can
/// arrive more than once (use [`crate::inbox::first_delivery`] in the same transaction as the
/// effect), and may arrive concurrently with other messages.
pub trait Handler: Send + Sync + 'static {
    /// The message enum this handler's queue carries.
    type Message: Message;

    /// Applies one message. Return `Ok` only after the effect is durably committed: the message is
    /// acked right after and never seen again.
    fn handle(
        &self,
        message: Incoming<Self::Message>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// How a consumer reads its queue.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The work queue to consume.
    pub queue: WorkQueue,
    /// Messages delivered but not yet acked, which is also how many are handled at once.
    pub prefetch: u16,
    /// Attempts (first delivery included) before a retryable failure is dead-lettered.
    pub max_attempts: u32,
    /// How long a retried message waits in the retry queue.
    pub retry_delay: Duration,
}

impl ConsumerConfig {
    /// Defaults for `queue`: prefetch 16, 5 attempts, 5 s between attempts.
    pub fn new(queue: WorkQueue) -> ConsumerConfig {
        ConsumerConfig {
            queue,
            prefetch: 16,
            max_attempts: 5,
            retry_delay: Duration::from_secs(5),
        }
    }
}

/// Consumes `config.queue` with `handler` until `shutdown` fires, then drains in-flight messages
/// and returns. Channel and connection losses are logged and the loop restarts after a backoff.
pub async fn run_consumer<H: Handler>(
    bus: &Bus,
    config: ConsumerConfig,
    handler: Arc<H>,
    metrics: ConsumerMetrics,
    shutdown: CancellationToken,
) {
    let shared = Arc::new(Shared::new(bus.topology(), config, handler, metrics));
    let service = shared.config.queue.service();
    let mut failures: u32 = 0;
    loop {
        // connection_or_wait only gives up when shutdown fired.
        let Ok(connection) = bus.connection_or_wait(&shutdown).await else {
            return;
        };
        let mut started = false;
        match consume(&connection, &shared, &shutdown, &mut started).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(queue = service, error = %error_chain(&error), "consumer stopped; restarting");
            }
        }
        if started {
            failures = 0;
        }
        if !bus.backoff().wait(failures, &shutdown).await {
            return;
        }
        failures = failures.saturating_add(1);
    }
}

/// What every message task of a consumer needs.
struct Shared<H> {
    config: ConsumerConfig,
    handler: Arc<H>,
    metrics: ConsumerMetrics,
    topology: Topology,
    work_queue: String,
    retry_queue: String,
    dead_letter_queue: String,
}

impl<H: Handler> Shared<H> {
    fn new(
        topology: &Topology,
        config: ConsumerConfig,
        handler: Arc<H>,
        metrics: ConsumerMetrics,
    ) -> Shared<H> {
        Shared {
            work_queue: topology.work_queue(config.queue),
            retry_queue: topology.retry_queue(config.queue),
            dead_letter_queue: topology.dead_letter_queue(config.queue),
            topology: topology.clone(),
            config,
            handler,
            metrics,
        }
    }

    /// Handles one delivery to the end: ack, retry or dead-letter. An error means the delivery is
    /// still unacked and the channel should be restarted (the broker then redelivers it).
    async fn process(&self, publisher: &Publisher, delivery: Delivery) -> Result<(), BusError> {
        let service = self.config.queue.service();
        let started = std::time::Instant::now();
        let attempt = headers::attempts(&delivery.properties).saturating_add(1);
        if delivery.redelivered {
            self.metrics.redelivered.with_label_values(&[service]).inc();
        }
        let envelope = match Envelope::<H::Message>::from_json(&delivery.data) {
            Ok(envelope) => envelope,
            Err(error) => {
                let text = format!("cannot decode message: {}", error_chain(&error));
                tracing::warn!(queue = service, error = %text, "dead-lettering undecodable message");
                return self
                    .dead_letter(
                        publisher,
                        &delivery,
                        KIND_UNDECODABLE,
                        REASON_UNDECODABLE,
                        &text,
                        attempt,
                    )
                    .await;
            }
        };
        let kind = envelope.kind();
        // Lag of the pipeline, not of retries: a retried or redelivered message waited on purpose.
        if attempt == 1 && !delivery.redelivered {
            let lag = (chrono::Utc::now() - envelope.occurred_at)
                .to_std()
                .unwrap_or_default();
            self.metrics
                .delivery_lag_seconds
                .with_label_values(&[service])
                .observe(lag.as_secs_f64());
        }
        let span = tracing::info_span!(
            "message",
            queue = service,
            kind,
            message_id = %envelope.id,
            tenant_id = %envelope.tenant_id,
            attempt,
            trace_id = tracing::field::Empty,
        );
        // The handler's work (and every message it writes) continues the producer's trace.
        let headers = MessageHeaders::from_properties(&delivery.properties);
        ferry_runtime::trace::follow(&span, &(&headers).into());
        let outcome = async {
            let incoming = Incoming {
                envelope,
                headers,
                attempt,
                redelivered: delivery.redelivered,
            };
            // A panicking handler must not take the consumer down with it; it is a failure like
            // any other, and retrying gives a transient cause a chance.
            let result = AssertUnwindSafe(self.handler.handle(incoming))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    Err(HandlerError::retryable(format!(
                        "handler panicked: {}",
                        panic_text(panic.as_ref())
                    )))
                });
            match result {
                Ok(()) => {
                    delivery.acker.ack(BasicAckOptions::default()).await?;
                    self.metrics.handled.with_label_values(&[service, kind]).inc();
                    Ok(())
                }
                Err(error) => {
                    let text = error_chain(&error);
                    match error {
                        HandlerError::Retryable(_) if attempt < self.config.max_attempts => {
                            tracing::info!(error = %text, "handler failed; retrying later");
                            self.retry(publisher, &delivery, kind, &text, attempt).await
                        }
                        HandlerError::Retryable(_) => {
                            tracing::warn!(error = %text, "handler failed on its last attempt; dead-lettering");
                            self.dead_letter(publisher, &delivery, kind, REASON_RETRIES_EXHAUSTED, &text, attempt)
                                .await
                        }
                        HandlerError::Permanent(_) => {
                            tracing::warn!(error = %text, "handler failed permanently; dead-lettering");
                            self.dead_letter(publisher, &delivery, kind, REASON_PERMANENT, &text, attempt)
                                .await
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await;
        self.metrics
            .handle_seconds
            .with_label_values(&[service, kind])
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    /// Republishes to the retry queue with the attempt count, then acks the original.
    async fn retry(
        &self,
        publisher: &Publisher,
        delivery: &Delivery,
        kind: &str,
        error: &str,
        attempt: u32,
    ) -> Result<(), BusError> {
        let mut table = original_headers(delivery);
        table.insert(
            headers::ATTEMPTS.into(),
            AMQPValue::LongLongInt(i64::from(attempt)),
        );
        table.insert(headers::ERROR.into(), headers::long_string(truncate(error)));
        let mut outgoing = self.republish(delivery, &self.retry_queue, kind, table);
        outgoing.expiration = Some(self.config.retry_delay);
        publisher.publish_outgoing(&outgoing).await?;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        self.metrics
            .retried
            .with_label_values(&[self.config.queue.service(), kind])
            .inc();
        Ok(())
    }

    /// Republishes to the dead-letter queue with the reason, then acks the original.
    async fn dead_letter(
        &self,
        publisher: &Publisher,
        delivery: &Delivery,
        kind: &str,
        reason: &str,
        error: &str,
        attempt: u32,
    ) -> Result<(), BusError> {
        let mut table = original_headers(delivery);
        table.insert(
            headers::ATTEMPTS.into(),
            AMQPValue::LongLongInt(i64::from(attempt)),
        );
        table.insert(headers::ERROR.into(), headers::long_string(truncate(error)));
        table.insert(headers::REASON.into(), headers::long_string(reason));
        table.insert(
            headers::QUEUE.into(),
            headers::long_string(&self.work_queue),
        );
        let outgoing = self.republish(delivery, &self.dead_letter_queue, kind, table);
        publisher.publish_outgoing(&outgoing).await?;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        self.metrics
            .dead_lettered
            .with_label_values(&[self.config.queue.service(), kind, reason])
            .inc();
        Ok(())
    }

    /// The delivery as a new message to `queue` through the default exchange, body and id intact.
    fn republish(
        &self,
        delivery: &Delivery,
        queue: &str,
        kind: &str,
        table: FieldTable,
    ) -> Outgoing {
        let props = &delivery.properties;
        let message_id = props
            .message_id()
            .as_ref()
            .map_or_else(|| Uuid::nil().to_string(), std::string::ToString::to_string);
        let mut outgoing = Outgoing::new("", queue, message_id, delivery.data.clone());
        outgoing.content_type = props
            .content_type()
            .as_ref()
            .map_or_else(|| JSON.to_string(), std::string::ToString::to_string);
        outgoing.kind = (kind != KIND_UNDECODABLE).then(|| kind.to_string());
        outgoing.headers = table;
        outgoing
    }
}

impl<H> std::fmt::Debug for Shared<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("config", &self.config)
            .field("topology", &self.topology)
            .finish()
    }
}

/// One consuming session on one channel; returns `Ok` only on shutdown. `started` is set once the
/// broker accepted the consumer, so the caller can tell a flapping start from a lost session.
async fn consume<H: Handler>(
    connection: &Connection,
    shared: &Arc<Shared<H>>,
    shutdown: &CancellationToken,
    started: &mut bool,
) -> Result<(), BusError> {
    let channel = connection.create_channel().await?;
    let publisher = match open_session(connection, &channel, shared).await {
        Ok(publisher) => publisher,
        Err(error) => {
            close_channel(&channel).await;
            return Err(error);
        }
    };
    let tag = format!(
        "{}-{}",
        shared.config.queue.service(),
        Uuid::new_v4().simple()
    );
    let mut deliveries = match channel
        .basic_consume(
            short(&shared.work_queue),
            short(&tag),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    {
        Ok(consumer) => consumer,
        Err(error) => {
            publisher.close().await;
            close_channel(&channel).await;
            return Err(error.into());
        }
    };
    *started = true;

    let mut in_flight = JoinSet::new();
    let mut outcome = loop {
        tokio::select! {
            // Shutdown first: once asked to stop, take nothing more even if deliveries are ready.
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            Some(joined) = in_flight.join_next() => {
                if let Err(error) = joined.map_err(BusError::from).and_then(|r| r) {
                    break Err(error);
                }
            }
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    let shared = shared.clone();
                    let publisher = publisher.clone();
                    in_flight.spawn(async move { shared.process(&publisher, delivery).await });
                }
                Some(Err(error)) => break Err(error.into()),
                None => break Err(BusError::ConsumerCancelled { queue: shared.work_queue.clone() }),
            },
        }
    };

    // Stop the broker sending more before waiting for the handlers, so a slow drain does not keep
    // pulling messages this replica will never start.
    if channel.status().connected() {
        let _ = channel.basic_cancel(short(&tag), Default::default()).await;
    }
    while let Some(joined) = in_flight.join_next().await {
        if let Err(error) = joined.map_err(BusError::from).and_then(|r| r)
            && outcome.is_ok()
        {
            outcome = Err(error);
        }
    }
    publisher.close().await;
    close_channel(&channel).await;
    outcome
}

/// Sets the prefetch bound and opens the confirm-mode channel retries and dead letters go out on.
async fn open_session<H>(
    connection: &Connection,
    channel: &lapin::Channel,
    shared: &Shared<H>,
) -> Result<Publisher, BusError> {
    channel
        .basic_qos(shared.config.prefetch, BasicQosOptions::default())
        .await?;
    Publisher::open(connection, shared.topology.clone()).await
}

/// The delivery's headers, to carry over (trace context, earlier bookkeeping) on a republish.
fn original_headers(delivery: &Delivery) -> FieldTable {
    delivery.properties.headers().clone().unwrap_or_default()
}

fn truncate(text: &str) -> &str {
    if text.len() <= MAX_ERROR_HEADER {
        return text;
    }
    let mut end = MAX_ERROR_HEADER;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-text panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_are_classified() {
        assert!(HandlerError::from(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!HandlerError::from(sqlx::Error::RowNotFound).is_retryable());
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!HandlerError::from(BusError::from(json)).is_retryable());
        let nack = BusError::Nacked {
            message_id: "m".into(),
            exchange: "e".into(),
        };
        assert!(HandlerError::from(nack).is_retryable());
    }

    #[test]
    fn long_errors_are_truncated_on_a_char_boundary() {
        let text = "é".repeat(MAX_ERROR_HEADER);
        let cut = truncate(&text);
        assert!(cut.len() <= MAX_ERROR_HEADER);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate("short"), "short");
    }
}
