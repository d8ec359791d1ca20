//! Publishing with publisher confirms.
//!
//! Every publish is persistent (delivery mode 2), carries the envelope id as `message_id`, is JSON,
//! and, for work and hub messages, mandatory. A publish returns only once the broker confirmed it:
//! a nack, or a mandatory message returned as unroutable, is an error, so a caller that got `Ok`
//! knows the broker holds the message in a queue.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, PublisherConfirm};

use crate::envelope::Envelope;
use crate::error::BusError;
use crate::headers::{self, MessageHeaders};
use crate::messages::Message;
use crate::topology::{Topology, short};

/// AMQP delivery mode for messages the broker writes to disk.
const PERSISTENT: u8 = 2;

/// The JSON content type all envelopes carry.
pub const JSON: &str = "application/json";

/// One message ready to publish, with the exchange already resolved to its declared name.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The declared exchange name; `""` is the default exchange (routing key = queue name).
    pub exchange: String,
    /// The routing key.
    pub routing_key: String,
    /// Whether an unroutable message is an error (returned by the broker) or silently dropped.
    pub mandatory: bool,
    /// The `message_id` property: the envelope id.
    pub message_id: String,
    /// The `type` property and `x-ferry-kind` header: the versioned kind, when known.
    pub kind: Option<String>,
    /// The `content-type` property.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// AMQP headers (trace context, bus bookkeeping).
    pub headers: FieldTable,
    /// Per-message TTL (the retry delay on retry queues).
    pub expiration: Option<Duration>,
}

impl Outgoing {
    /// A mandatory JSON message with no headers.
    pub fn new(
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
        message_id: impl Into<String>,
        body: Vec<u8>,
    ) -> Outgoing {
        Outgoing {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            mandatory: true,
            message_id: message_id.into(),
            kind: None,
            content_type: JSON.to_string(),
            body,
            headers: FieldTable::default(),
            expiration: None,
        }
    }

    /// An envelope routed as its message says, under `topology`'s prefix.
    pub fn envelope<M: Message>(
        topology: &Topology,
        envelope: &Envelope<M>,
        trace: &MessageHeaders,
    ) -> Result<Outgoing, BusError> {
        let route = envelope.payload.route(envelope.tenant_id);
        let mut outgoing = Outgoing::new(
            topology.exchange(route.exchange),
            route.routing_key,
            envelope.id.to_string(),
            envelope.to_json()?,
        );
        outgoing.mandatory = route.exchange.mandatory();
        outgoing.kind = Some(envelope.kind().to_string());
        outgoing.headers = headers::table_from_map(&trace.to_map());
        Ok(outgoing)
    }

    fn properties(&self) -> BasicProperties {
        let mut headers = self.headers.clone();
        let mut props = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type(short(&self.content_type))
            .with_message_id(short(&self.message_id))
            .with_timestamp(chrono::Utc::now().timestamp().max(0).unsigned_abs());
        if let Some(kind) = &self.kind {
            headers.insert(headers::KIND.into(), headers::long_string(kind));
            props = props.with_type(short(kind));
        }
        if let Some(ttl) = self.expiration {
            props = props.with_expiration(short(&ttl.as_millis().to_string()));
        }
        props.with_headers(headers)
    }
}

/// Publishes on its own confirm-mode channel. Cloning shares the channel (lapin channels are safe
/// to use from several tasks; confirms are matched per message).
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    topology: Topology,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("channel", &self.channel.id())
            .field("topology", &self.topology)
            .finish()
    }
}

impl Publisher {
    /// Opens a channel on `connection` and puts it in confirm mode.
    pub async fn open(connection: &Connection, topology: Topology) -> Result<Publisher, BusError> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher { channel, topology })
    }

    /// The names this publisher resolves exchanges with.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether the channel is still usable. A broker error (for example a publish to an exchange
    /// that does not exist) closes the channel; open a new publisher then.
    pub fn is_open(&self) -> bool {
        self.channel.status().connected()
    }

    /// Publishes an envelope where its message routes, and waits for the broker's confirm.
    pub async fn publish<M: Message>(
        &self,
        envelope: &Envelope<M>,
        trace: &MessageHeaders,
    ) -> Result<(), BusError> {
        let outgoing = Outgoing::envelope(&self.topology, envelope, trace)?;
        self.publish_outgoing(&outgoing).await
    }

    /// Publishes a prepared message and waits for the broker's confirm.
    pub async fn publish_outgoing(&self, outgoing: &Outgoing) -> Result<(), BusError> {
        self.send(outgoing).await?.confirmed().await
    }

    /// Sends without waiting for the confirm, so a batch can be pipelined; await each
    /// [`PendingConfirm::confirmed`] (in any order) before treating the batch as published.
    pub(crate) async fn send(&self, outgoing: &Outgoing) -> Result<PendingConfirm, BusError> {
        let confirm = self
            .channel
            .basic_publish(
                short(&outgoing.exchange),
                short(&outgoing.routing_key),
                BasicPublishOptions {
                    mandatory: outgoing.mandatory,
                    ..Default::default()
                },
                &outgoing.body,
                outgoing.properties(),
            )
            .await?;
        Ok(PendingConfirm {
            confirm,
            message_id: outgoing.message_id.clone(),
            exchange: outgoing.exchange.clone(),
            routing_key: outgoing.routing_key.clone(),
        })
    }

    /// Closes the channel (best effort: a channel the broker already closed is fine).
    pub async fn close(&self) {
        if self.is_open() {
            let _ = self.channel.close(200, short("publisher closed")).await;
        }
    }
}

/// A sent message whose confirm is still to come.
pub(crate) struct PendingConfirm {
    confirm: PublisherConfirm,
    message_id: String,
    exchange: String,
    routing_key: String,
}

impl PendingConfirm {
    /// Waits for the broker: ack is success; nack or a returned (unroutable) message is an error.
    pub(crate) async fn confirmed(self) -> Result<(), BusError> {
        match self.confirm.await? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                Err(BusError::Unroutable {
                    message_id: self.message_id,
                    exchange: self.exchange,
                    routing_key: self.routing_key,
                    reply_code: returned.reply_code,
                    reply_text: returned.reply_text.to_string(),
                })
            }
            Confirmation::Nack(None) => Err(BusError::Nacked {
                message_id: self.message_id,
                exchange: self.exchange,
            }),
            Confirmation::NotRequested => Err(BusError::ConfirmsNotEnabled),
        }
    }
}
