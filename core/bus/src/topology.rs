//! Every exchange and queue name Ferry uses, and their declaration.
//!
//! All names carry a configurable prefix: empty in production, unique per test, so parallel tests
//! share one broker without seeing each other's messages.
//!
//! The shape:
//!
//! - `ferry.work` (direct): work for services. Each service has a quorum work queue
//!   `ferry.work.<service>` bound with routing key `<service>`.
//! - `ferry.events` (topic): deployment events, routing key `<tenant>.<deployment>.<kind>`. Whoever
//!   streams events binds its own queue.
//! - `ferry.hub` (direct): requests for agents, routing key = hub replica id. Each hub replica
//!   declares and binds its own queue ([`Topology::hub_queue`]), deleted when the replica goes.
//! - For each work queue, a retry queue `ferry.retry.<service>`: the consumer republishes a message
//!   whose handler failed with a retryable error there with a per-message TTL; when it expires the
//!   broker dead-letters it back to the work queue through the default exchange. No consumer reads
//!   the retry queue, so the TTL is the delay.
//! - For each work queue, a dead-letter queue `ferry.dead.<service>`: messages that failed for good,
//!   carrying the reason in headers. The work queue also dead-letters there itself when a message
//!   is redelivered more than [`DELIVERY_LIMIT`] times (a handler that crashes the process).
//!
//! Retry and dead-letter queues are addressed through the default exchange (routing key = queue
//! name), so they need no exchanges of their own.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::error::BusError;

/// How many times the broker redelivers a work message (consumer died or its channel closed before
/// acking) before dead-lettering it. Generous, because a message prefetched by a replica that shuts
/// down counts as a delivery too; it only exists to stop a message that crashes every replica.
pub const DELIVERY_LIMIT: i64 = 50;

/// One of Ferry's exchanges, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// `ferry.work`: direct, routing key = service.
    Work,
    /// `ferry.events`: topic, routing key `tenant.deployment.kind`.
    Events,
    /// `ferry.hub`: direct, routing key = hub replica id.
    Hub,
}

impl Exchange {
    /// Every exchange, in declaration order.
    pub const ALL: [Exchange; 3] = [Exchange::Work, Exchange::Events, Exchange::Hub];

    /// The name without prefix; this is what the outbox stores, so rows stay valid whatever prefix
    /// the relay runs with.
    pub fn logical_name(self) -> &'static str {
        match self {
            Exchange::Work => "ferry.work",
            Exchange::Events => "ferry.events",
            Exchange::Hub => "ferry.hub",
        }
    }

    /// The exchange for a logical name, as stored in an outbox row.
    pub fn from_logical_name(name: &str) -> Option<Exchange> {
        Exchange::ALL.into_iter().find(|e| e.logical_name() == name)
    }

    /// The AMQP exchange type.
    pub fn kind(self) -> ExchangeKind {
        match self {
            Exchange::Work | Exchange::Hub => ExchangeKind::Direct,
            Exchange::Events => ExchangeKind::Topic,
        }
    }

    /// Whether a message published here must reach a queue. Work and hub requests must (losing one
    /// silently would stall a deployment); events may have no listener at all.
    pub fn mandatory(self) -> bool {
        match self {
            Exchange::Work | Exchange::Hub => true,
            Exchange::Events => false,
        }
    }
}

/// A service's work queue on `ferry.work`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkQueue {
    /// svc-scheduler: deployment orchestration.
    Scheduler,
    /// svc-canary: analysis requests.
    Canary,
    /// svc-webhook: outgoing webhooks.
    Webhook,
    /// svc-api: work the API does asynchronously.
    Api,
    /// svc-webhook's notifications: besides its `ferry.work` binding, bound to `ferry.events`
    /// for deployment and target status changes ([`NOTIFY_EVENT_KEYS`]).
    Notify,
}

/// The `ferry.events` routing keys the notification queue receives.
pub const NOTIFY_EVENT_KEYS: [&str; 2] = ["*.*.deployment_status", "*.*.target_status"];

impl WorkQueue {
    /// Every work queue, in declaration order.
    pub const ALL: [WorkQueue; 5] = [
        WorkQueue::Scheduler,
        WorkQueue::Canary,
        WorkQueue::Webhook,
        WorkQueue::Api,
        WorkQueue::Notify,
    ];

    /// The service name: routing key on `ferry.work`, suffix of the queue names, metrics label.
    pub fn service(self) -> &'static str {
        match self {
            WorkQueue::Scheduler => "scheduler",
            WorkQueue::Canary => "canary",
            WorkQueue::Webhook => "webhook",
            WorkQueue::Api => "api",
            WorkQueue::Notify => "notify",
        }
    }
}

/// Exchange and queue names under one prefix. Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// Names under `prefix` (for tests: `ferry_testkit::amqp::prefix()`; it should end in a
    /// separator such as `.`).
    pub fn new(prefix: impl Into<String>) -> Topology {
        Topology {
            prefix: prefix.into(),
        }
    }

    /// The production names: no prefix.
    pub fn production() -> Topology {
        Topology::default()
    }

    /// The prefix every name starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The declared name of an exchange.
    pub fn exchange(&self, exchange: Exchange) -> String {
        format!("{}{}", self.prefix, exchange.logical_name())
    }

    /// The service's work queue.
    pub fn work_queue(&self, queue: WorkQueue) -> String {
        format!("{}ferry.work.{}", self.prefix, queue.service())
    }

    /// The delay queue retried messages wait in before returning to the work queue.
    pub fn retry_queue(&self, queue: WorkQueue) -> String {
        format!("{}ferry.retry.{}", self.prefix, queue.service())
    }

    /// The queue messages that failed for good end in.
    pub fn dead_letter_queue(&self, queue: WorkQueue) -> String {
        format!("{}ferry.dead.{}", self.prefix, queue.service())
    }

    /// The queue of one hub replica, bound to `ferry.hub` with the replica id as routing key.
    /// Declared (exclusive or auto-delete) by the hub replica itself, not by [`declare`].
    pub fn hub_queue(&self, replica_id: &str) -> String {
        format!("{}ferry.hub.{replica_id}", self.prefix)
    }

    /// Every queue [`declare`] creates.
    pub fn queue_names(&self) -> Vec<String> {
        WorkQueue::ALL
            .into_iter()
            .flat_map(|q| {
                [
                    self.work_queue(q),
                    self.retry_queue(q),
                    self.dead_letter_queue(q),
                ]
            })
            .collect()
    }

    /// Every exchange [`declare`] creates.
    pub fn exchange_names(&self) -> Vec<String> {
        Exchange::ALL
            .into_iter()
            .map(|e| self.exchange(e))
            .collect()
    }

    /// Declares everything; see [`declare`].
    pub async fn declare(&self, channel: &Channel) -> Result<(), BusError> {
        declare(channel, self).await
    }

    /// Deletes every queue and exchange [`declare`] created, ignoring ones already gone. For tests
    /// (whose prefixes are unique, so nothing else uses them) and for tearing down a prefix; never
    /// call it on the production topology of a running system.
    pub async fn delete(&self, channel: &Channel) -> Result<(), BusError> {
        // Deleting a missing queue or exchange is not an error in RabbitMQ, so one failure here is a
        // real one.
        for queue in self.queue_names() {
            channel
                .queue_delete(queue.as_str().into(), Default::default())
                .await?;
        }
        for exchange in self.exchange_names() {
            channel
                .exchange_delete(exchange.as_str().into(), Default::default())
                .await?;
        }
        Ok(())
    }
}

/// Declares every exchange, work, retry and dead-letter queue and binding under the topology's
/// prefix. Idempotent: the arguments are fixed, so declaring again (on every start, by many
/// replicas at once) is a no-op for the broker. A changed argument would make the broker refuse
/// the declaration (PRECONDITION_FAILED), which is why nothing here is configurable per replica.
pub async fn declare(channel: &Channel, topology: &Topology) -> Result<(), BusError> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for exchange in Exchange::ALL {
        channel
            .exchange_declare(
                topology.exchange(exchange).as_str().into(),
                exchange.kind(),
                durable,
                FieldTable::default(),
            )
            .await?;
    }

    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for queue in WorkQueue::ALL {
        let work = topology.work_queue(queue);
        let retry = topology.retry_queue(queue);
        let dead = topology.dead_letter_queue(queue);

        channel
            .queue_declare(dead.as_str().into(), durable, quorum_args(None))
            .await?;

        let mut work_args = quorum_args(Some(&dead));
        work_args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(DELIVERY_LIMIT),
        );
        channel
            .queue_declare(work.as_str().into(), durable, work_args)
            .await?;
        channel
            .queue_bind(
                work.as_str().into(),
                topology.exchange(Exchange::Work).as_str().into(),
                queue.service().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        // Expired messages go back to the work queue: that is the whole retry mechanism.
        if queue == WorkQueue::Notify {
            for key in NOTIFY_EVENT_KEYS {
                channel
                    .queue_bind(
                        work.as_str().into(),
                        topology.exchange(Exchange::Events).as_str().into(),
                        key.into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }

        channel
            .queue_declare(retry.as_str().into(), durable, quorum_args(Some(&work)))
            .await?;
    }
    Ok(())
}

/// Arguments of a quorum queue, optionally dead-lettering to `dead_letter_to` through the default
/// exchange. At-least-once dead-lettering (which requires `reject-publish` overflow) keeps a
/// message until the target queue confirms it, so a retry or a dead letter is never lost in transit.
fn quorum_args(dead_letter_to: Option<&str>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string("quorum"));
    if let Some(target) = dead_letter_to {
        args.insert("x-dead-letter-exchange".into(), long_string(""));
        args.insert("x-dead-letter-routing-key".into(), long_string(target));
        args.insert(
            "x-dead-letter-strategy".into(),
            long_string("at-least-once"),
        );
        args.insert("x-overflow".into(), long_string("reject-publish"));
    }
    args
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Shorthand used across the crate: a broker name as the protocol's short string.
pub(crate) fn short(name: &str) -> ShortString {
    ShortString::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let t = Topology::new("t_1.");
        assert_eq!(t.exchange(Exchange::Work), "t_1.ferry.work");
        assert_eq!(t.work_queue(WorkQueue::Canary), "t_1.ferry.work.canary");
        assert_eq!(t.retry_queue(WorkQueue::Canary), "t_1.ferry.retry.canary");
        assert_eq!(
            t.dead_letter_queue(WorkQueue::Canary),
            "t_1.ferry.dead.canary"
        );
        assert_eq!(t.hub_queue("hub-7"), "t_1.ferry.hub.hub-7");
        assert_eq!(
            Topology::production().exchange(Exchange::Events),
            "ferry.events"
        );
        assert_eq!(t.queue_names().len(), 15);
        assert!(t.queue_names().iter().all(|q| q.starts_with("t_1.")));
    }

    #[test]
    fn logical_names_round_trip() {
        for exchange in Exchange::ALL {
            assert_eq!(
                Exchange::from_logical_name(exchange.logical_name()),
                Some(exchange)
            );
        }
        assert_eq!(Exchange::from_logical_name("ferry.nope"), None);
    }
}
