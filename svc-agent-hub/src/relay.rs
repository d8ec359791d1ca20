//! The bus side of the hub: this replica's queue on the `ferry.hub` exchange, and for each
//! request taken off it, the relay to the agent's stream and the replies back to the caller's
//! reply queue (accepted, head, body chunks, end; or an error).
//!
//! The queue is exclusive to the replica's connection, so it goes when the connection goes. When
//! the broker restarts or drops the connection, [`QueueLoop::run`] reconnects through the bus
//! with backoff and declares the queue again; agents' gRPC streams are untouched meanwhile (the
//! replica only cannot receive requests for them, which callers retry), and readiness
//! ([`ReplicaQueueCheck`]) says the queue is not consumed.

use crate::agents::{AgentConn, HubState, PENDING_CAPACITY, Pending, split_body};
use crate::metrics::outcome;
use ferry_bus::Bus;
use ferry_proto::agent::{Cancel, HubMessage, RequestBody, hub_message, response};
use ferry_proto::tunnel;
use ferry_proto::tunnel::{
    Accepted, TunnelErrorCode, TunnelReply, TunnelReplyBatch, TunnelRequest, tunnel_reply,
};
use ferry_runtime::ReadinessCheck;
use ferry_runtime::trace::TraceContext;
use ferry_tunnel::routing;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, ExchangeKind};
use prost::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Errors of the relay's bus plumbing.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A broker operation failed.
    #[error("RabbitMQ")]
    Amqp(#[from] lapin::Error),
    /// The consumer stopped: the connection or channel closed.
    #[error("the replica queue consumer stopped")]
    ConsumerEnded,
    /// The bus could not give a connection.
    #[error("bus")]
    Bus(#[source] ferry_bus::BusError),
}

/// The replica queue being consumed: its channel, the channel replies are published on, and the
/// consumer.
pub struct Consuming {
    consume: Channel,
    replies: Channel,
    consumer: lapin::Consumer,
}

impl Consuming {
    /// Opens both channels on the bus's connection (reconnecting it if it was lost), declares the
    /// exchange and the replica's queue and starts consuming.
    pub async fn open(bus: &Bus, prefix: &str, replica: &str) -> Result<Consuming, RelayError> {
        let connection = bus.connection().await.map_err(RelayError::Bus)?;
        let channel = connection.create_channel().await?;
        let replies = connection.create_channel().await?;
        let consumer = consume(&channel, prefix, replica).await?;
        Ok(Consuming {
            consume: channel,
            replies,
            consumer,
        })
    }

    /// A shared "is the queue consumed" flag, for [`ReplicaQueueCheck`].
    pub fn state() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }
}

async fn close_channels(channels: &[&Channel]) {
    for channel in channels {
        if channel.status().connected()
            && let Err(e) = channel.close(200, "replica shutting down".into()).await
        {
            tracing::warn!(error = %e, "closing a RabbitMQ channel");
        }
    }
}

/// Consumes the replica queue for as long as the replica runs, reconnecting when it is lost.
pub struct QueueLoop {
    /// The replica's bus (its connection named after the replica).
    pub bus: Bus,
    /// The bus prefix.
    pub prefix: String,
    /// The queue opened at start.
    pub first: Consuming,
    /// Set while the queue is consumed.
    pub consuming: Arc<AtomicBool>,
}

impl QueueLoop {
    /// Relays requests until `stop`, then closes the channels (deleting the queue). A lost
    /// channel or connection is logged and reopened with the bus's backoff.
    pub async fn run(self, state: Arc<HubState>, stop: CancellationToken) {
        let QueueLoop {
            bus,
            prefix,
            first,
            consuming,
        } = self;
        let mut current = Some(first);
        let mut attempt: u32 = 0;
        loop {
            let open = match current.take() {
                Some(open) => open,
                None => match Consuming::open(&bus, &prefix, &state.replica).await {
                    Ok(open) => {
                        tracing::info!(replica = %state.replica, "replica queue declared again after a broker loss");
                        state.metrics.bus_reconnects.inc();
                        open
                    }
                    Err(e) => {
                        tracing::warn!(attempt, error = %e, "cannot declare the replica queue; retrying");
                        if !bus.backoff().wait(attempt, &stop).await {
                            return;
                        }
                        attempt = attempt.saturating_add(1);
                        continue;
                    }
                },
            };
            attempt = 0;
            consuming.store(true, Ordering::SeqCst);
            let Consuming {
                consume,
                replies,
                consumer,
            } = open;
            let stopped = tokio::select! {
                ended = serve(state.clone(), consumer, replies.clone()) => {
                    let error = ended.err().map(|e| e.to_string()).unwrap_or_default();
                    tracing::warn!(replica = %state.replica, %error, "the replica queue consumer stopped (broker lost?); agents stay connected, reconnecting");
                    false
                }
                () = stop.cancelled() => true,
            };
            consuming.store(false, Ordering::SeqCst);
            if stopped {
                // Closing the consuming channel cancels the consumer and deletes the
                // auto-delete queue: requests still on their way go back to their callers.
                close_channels(&[&consume, &replies]).await;
                return;
            }
            if !bus.backoff().wait(0, &stop).await {
                return;
            }
        }
    }
}

/// Readiness of the replica's bus side: its queue is consumed and the broker answers.
pub struct ReplicaQueueCheck {
    /// The replica's bus.
    pub bus: Bus,
    /// Set while the queue is consumed ([`QueueLoop`]).
    pub consuming: Arc<AtomicBool>,
}

impl ReadinessCheck for ReplicaQueueCheck {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if !self.consuming.load(Ordering::SeqCst) {
                return Err(
                    "the replica queue is not consumed (reconnecting to the broker)".into(),
                );
            }
            self.bus.ping().await.map_err(|e| e.to_string())
        })
    }
}

/// Declares the exchange and this replica's queue and starts consuming it.
pub async fn consume(
    channel: &Channel,
    prefix: &str,
    replica: &str,
) -> Result<lapin::Consumer, RelayError> {
    let exchange = routing::hub_exchange(prefix);
    let queue = routing::replica_queue(prefix, replica);
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    // Exclusive and auto-delete: the queue dies with this replica's connection, so a request
    // published to a dead replica is returned to its caller at once (mandatory flag).
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            replica.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // No acks: a request lives only as long as this replica anyway (the queue goes with it),
    // and callers retry what was lost, so acking would only add a round trip.
    let consumer = channel
        .basic_consume(
            queue.as_str().into(),
            format!("hub-{replica}").as_str().into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(consumer)
}

/// Takes requests off the queue until it ends, relaying each in its own task.
pub async fn serve(
    state: Arc<HubState>,
    mut consumer: lapin::Consumer,
    replies: Channel,
) -> Result<(), RelayError> {
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let reply_to = delivery
            .properties
            .reply_to()
            .as_ref()
            .map(std::string::ToString::to_string);
        let Some(reply_to) = reply_to else {
            tracing::warn!("request without reply_to dropped");
            continue;
        };
        let request = match TunnelRequest::decode(delivery.data.as_slice()) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable request");
                state
                    .metrics
                    .requests
                    .with_label_values(&[outcome::INVALID])
                    .inc();
                continue;
            }
        };
        let replier = Replier {
            channel: replies.clone(),
            reply_to,
            request_id: request
                .request
                .as_ref()
                .map(|r| r.request_id.clone())
                .unwrap_or_default(),
            seq: 0,
        };
        state.tasks.spawn(relay(state.clone(), request, replier));
    }
    Err(RelayError::ConsumerEnded)
}

/// Publishes the numbered replies of one request.
struct Replier {
    channel: Channel,
    reply_to: String,
    request_id: String,
    seq: u64,
}

impl Replier {
    async fn send(&mut self, part: tunnel_reply::Part) -> Result<(), lapin::Error> {
        self.send_batch(vec![part]).await
    }

    /// Publishes consecutive parts in one message.
    async fn send_batch(&mut self, parts: Vec<tunnel_reply::Part>) -> Result<(), lapin::Error> {
        let replies = parts
            .into_iter()
            .map(|part| {
                let reply = TunnelReply {
                    request_id: self.request_id.clone(),
                    seq: self.seq,
                    part: Some(part),
                };
                self.seq += 1;
                reply
            })
            .collect();
        let batch = TunnelReplyBatch { replies };
        self.channel
            .basic_publish(
                "".into(),
                self.reply_to.as_str().into(),
                Default::default(),
                &batch.encode_to_vec(),
                BasicProperties::default().with_correlation_id(self.request_id.as_str().into()),
            )
            .await?;
        Ok(())
    }

    async fn error(&mut self, code: TunnelErrorCode, message: impl Into<String>) {
        let part = tunnel_reply::Part::Error(tunnel::TunnelError {
            code: code as i32,
            agent_code: 0,
            message: message.into(),
        });
        if let Err(e) = self.send(part).await {
            tracing::warn!(error = %e, "publishing an error reply");
        }
    }
}

/// Relays one request to its agent and the agent's answer back to the caller.
async fn relay(state: Arc<HubState>, mut request: TunnelRequest, mut replier: Replier) {
    let started = Instant::now();
    let span = tracing::info_span!(
        "relay",
        agent = %request.agent_id,
        trace_id = tracing::field::Empty,
    );
    if let Some(agent_request) = request.request.as_mut() {
        let caller =
            TraceContext::from_fields(&agent_request.traceparent, &agent_request.tracestate);
        ferry_runtime::trace::follow(&span, &caller);
        // The agent's work is a child of this relay.
        let own = ferry_runtime::trace::of(&span);
        agent_request.traceparent = own.traceparent.unwrap_or_default();
        agent_request.tracestate = own.tracestate.unwrap_or_default();
    }
    let outcome = relay_inner(&state, request, &mut replier)
        .instrument(span)
        .await;
    state.metrics.requests.with_label_values(&[outcome]).inc();
    state
        .metrics
        .request_seconds
        .observe(started.elapsed().as_secs_f64());
}

async fn relay_inner(
    state: &HubState,
    request: TunnelRequest,
    replier: &mut Replier,
) -> &'static str {
    let Some(mut agent_request) = request.request else {
        replier
            .error(TunnelErrorCode::InvalidRequest, "request without a body")
            .await;
        return outcome::INVALID;
    };
    let conn = state
        .agent(&request.tenant, &request.agent_id)
        .filter(|c| request.session == 0 || c.session == request.session)
        .filter(|c| !c.closed.is_cancelled());
    let Some(conn) = conn else {
        if state.shutdown.is_cancelled() {
            // The agent is on its way to another replica: the caller waits for its new route
            // instead of taking "not connected" for an answer.
            replier
                .error(
                    TunnelErrorCode::AgentDisconnected,
                    format!(
                        "replica {} is shutting down and its agents are moving",
                        state.replica
                    ),
                )
                .await;
            return outcome::NOT_CONNECTED;
        }
        replier
            .error(
                TunnelErrorCode::NotConnected,
                format!(
                    "agent {} is not connected to replica {}",
                    request.agent_id, state.replica
                ),
            )
            .await;
        return outcome::NOT_CONNECTED;
    };
    let deadline = deadline_instant(agent_request.deadline_unix_ms);
    if deadline.is_some_and(|d| d <= Instant::now()) {
        replier
            .error(
                TunnelErrorCode::DeadlineExceeded,
                "deadline passed before relaying",
            )
            .await;
        return outcome::DEADLINE;
    }

    let request_id = agent_request.request_id.clone();
    let (parts_tx, mut parts) = tokio::sync::mpsc::channel(PENDING_CAPACITY);
    let buffered = Arc::new(AtomicUsize::new(0));
    conn.lock_pending().insert(
        request_id.clone(),
        Pending {
            parts: parts_tx,
            buffered: buffered.clone(),
        },
    );
    let _forget = Forget {
        conn: &conn,
        request_id: &request_id,
    };

    let (first, rest) = split_body(std::mem::take(&mut agent_request.body));
    agent_request.body = first;
    agent_request.body_complete = rest.is_empty();
    if send(&conn, hub_message::Kind::Request(agent_request))
        .await
        .is_err()
    {
        replier
            .error(
                TunnelErrorCode::AgentDisconnected,
                "the agent's stream closed",
            )
            .await;
        return outcome::DISCONNECTED;
    }
    let last = rest.len().saturating_sub(1);
    for (i, data) in rest.into_iter().enumerate() {
        let body = RequestBody {
            request_id: request_id.clone(),
            data,
            end: i == last,
        };
        if send(&conn, hub_message::Kind::RequestBody(body))
            .await
            .is_err()
        {
            replier
                .error(
                    TunnelErrorCode::AgentDisconnected,
                    "the agent's stream closed",
                )
                .await;
            return outcome::DISCONNECTED;
        }
    }
    if let Err(e) = replier
        .send(tunnel_reply::Part::Accepted(Accepted {}))
        .await
    {
        tracing::warn!(error = %e, "publishing accepted");
    }

    loop {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline.into(), parts.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    let cancel = Cancel {
                        request_id: request_id.clone(),
                    };
                    let _ = send(&conn, hub_message::Kind::Cancel(cancel)).await;
                    replier
                        .error(
                            TunnelErrorCode::DeadlineExceeded,
                            "the agent did not answer in time",
                        )
                        .await;
                    return outcome::DEADLINE;
                }
            },
            None => parts.recv().await,
        };
        let Some(part) = next else {
            replier
                .error(
                    TunnelErrorCode::AgentDisconnected,
                    "the agent disconnected before answering completely",
                )
                .await;
            return outcome::DISCONNECTED;
        };
        // Parts already waiting travel in the same message, up to about one chunk's worth.
        let mut batch = Vec::new();
        let mut size = 0;
        let mut done = into_reply(part, &mut batch, &mut size);
        while done.is_none() && size < ferry_proto::MAX_CHUNK_BYTES {
            match parts.try_recv() {
                Ok(part) => done = into_reply(part, &mut batch, &mut size),
                Err(_) => break,
            }
        }
        let published = replier.send_batch(batch).await;
        buffered.fetch_sub(size, Ordering::SeqCst);
        if let Err(e) = published {
            // The caller's reply queue is unreachable: nobody can use the rest.
            tracing::warn!(error = %e, "publishing a reply");
            let cancel = Cancel {
                request_id: request_id.clone(),
            };
            let _ = send(&conn, hub_message::Kind::Cancel(cancel)).await;
            return outcome::DISCONNECTED;
        }
        if let Some(outcome) = done {
            return outcome;
        }
    }
}

/// Turns an agent's part into a reply part, adding body bytes to `size`; returns the outcome
/// when the part ends the answer.
fn into_reply(
    part: response::Part,
    batch: &mut Vec<tunnel_reply::Part>,
    size: &mut usize,
) -> Option<&'static str> {
    let (reply, done) = match part {
        response::Part::Head(head) => (tunnel_reply::Part::Head(head), None),
        response::Part::Chunk(chunk) => {
            *size += chunk.data.len();
            (tunnel_reply::Part::Chunk(chunk), None)
        }
        response::Part::End(end) => (tunnel_reply::Part::End(end), Some(outcome::OK)),
        response::Part::Error(error) => (
            tunnel_reply::Part::Error(tunnel::TunnelError {
                code: TunnelErrorCode::Remote as i32,
                agent_code: error.code,
                message: error.message,
            }),
            Some(outcome::REMOTE_ERROR),
        ),
    };
    batch.push(reply);
    done
}

/// Removes the pending entry however the relay ends.
struct Forget<'a> {
    conn: &'a AgentConn,
    request_id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.conn.forget(self.request_id);
    }
}

/// Queues a message to the agent, failing when its stream is over.
async fn send(conn: &AgentConn, kind: hub_message::Kind) -> Result<(), ()> {
    if conn.closed.is_cancelled() {
        return Err(());
    }
    let message = HubMessage { kind: Some(kind) };
    tokio::select! {
        sent = conn.outbound.send(Ok(message)) => sent.map_err(|_| ()),
        _ = conn.closed.cancelled() => Err(()),
    }
}

/// The deadline as a local instant; `None` when the caller set none.
fn deadline_instant(unix_ms: u64) -> Option<Instant> {
    if unix_ms == 0 {
        return None;
    }
    let now_ms = crate::routes::unix_ms();
    let now = Instant::now();
    Some(if unix_ms <= now_ms {
        now
    } else {
        now + Duration::from_millis(unix_ms - now_ms)
    })
}
