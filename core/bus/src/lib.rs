//! ferry-bus: Ferry's RabbitMQ message bus.
//!
//! It owns everything between a committed state change and the handler that reacts to it:
//!
//! - [`topology`]: every exchange and queue name (with a per-deployment prefix) and their
//!   idempotent declaration;
//! - [`envelope`] and [`messages`]: the JSON envelope and the tagged, versioned message enums,
//!   each message knowing its exchange and routing key, and [`step_key`], the typed key of a
//!   target's waiting step they carry;
//! - [`publisher`]: publishing with publisher confirms, persistent and mandatory;
//! - [`outbox`]: writing messages in the caller's transaction and the relay that publishes them;
//! - [`inbox`]: consumer-side deduplication by message id;
//! - [`consumer`]: the consumer loop with manual acks, delayed retries and a dead-letter queue;
//! - [`connection`]: the [`Bus`] connection holder with reconnect and readiness.
//!
//! Delivery is at least once end to end: the outbox may publish a message twice (a relay dying
//! between the broker's confirm and marking the row sent), the broker may redeliver it, and the
//! consumer's [`inbox::first_delivery`] in the handler's own transaction makes the effect happen
//! once.

pub mod connection;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod headers;
pub mod inbox;
pub mod messages;
pub mod metrics;
pub mod outbox;
pub mod publisher;
pub mod step_key;
pub mod topology;

pub use connection::{Backoff, Bus};
pub use consumer::{ConsumerConfig, Handler, HandlerError, Incoming, run_consumer};
pub use envelope::Envelope;
pub use error::BusError;
pub use headers::MessageHeaders;
pub use messages::{
    CanaryMessage, DeploymentEvent, Message, Route, SchedulerMessage, WebhookMessage,
};
pub use metrics::{ConsumerMetrics, RelayMetrics};
pub use outbox::{PublishedBatch, Relay, RelayConfig, enqueue, enqueue_with_headers};
pub use publisher::{Outgoing, Publisher};
pub use step_key::StepKey;
pub use topology::{Exchange, Topology, WorkQueue};
