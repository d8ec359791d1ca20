//! ferry-tunnel: the caller's side of the agent hub. [`AgentTunnel`] sends HTTP requests to an
//! agent of a tenant through RabbitMQ to whichever hub replica holds the agent's stream (found
//! in Redis), and streams the answer back from the caller's direct reply-to queue. A
//! [`TunnelService`] is a tower `Service<http::Request<B>>`, so
//! `kube::Client::new(tunnel.service(tenant, agent), "default")` is a normal kube-rs client for
//! the agent's cluster; [`AgentTunnel::http`] carries plain HTTP into the agent's network.
//!
//! Delivery: a request is published with `mandatory` to the owning replica's queue. It is
//! retried after a new route look-up, within its deadline, when it never reached the agent
//! (returned by the broker, refused by a replica that does not hold the agent, replica lost
//! before accepting) or when its method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS).
//!
//! With [`TunnelMetrics`] ([`AgentTunnel::with_metrics`]) each call is counted and timed by
//! request kind and outcome. [`routing`] names where agents are found (the hub's exchange and
//! queues, the Redis routes), for the hub replicas and the callers alike.

mod call;
mod error;
pub mod metrics;
pub mod routing;
mod service;

pub use call::{RequestKind, TunnelResponse};
pub use error::{BoxError, TunnelError};
pub use metrics::TunnelMetrics;
pub use service::{Deadline, TunnelBody, TunnelService};

use crate::routing::Route;
use ferry_bus::{Bus, BusError};
use ferry_proto::tunnel::{TunnelReply, TunnelReplyBatch};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};
use prost::Message;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// RabbitMQ's pseudo-queue for direct replies: no queue to declare, the lowest latency.
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Tuning of a tunnel.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// Deadline of a request that sets none (see [`Deadline`]).
    pub default_timeout: Duration,
    /// How long a request may see no reply before the caller checks in Redis that the
    /// agent's route is still the one it used (a dead replica sends nothing).
    pub silence_check: Duration,
    /// How often a retry looks the route up while waiting for the agent to reconnect.
    pub reconnect_poll: Duration,
    /// How long a retry waits for a lost agent to reconnect (to any replica) before failing
    /// with `AgentNotConnected` or `AgentDisconnected`, within the request's deadline.
    pub reconnect_grace: Duration,
}

impl Default for TunnelConfig {
    fn default() -> TunnelConfig {
        TunnelConfig {
            default_timeout: Duration::from_secs(30),
            silence_check: Duration::from_millis(500),
            reconnect_poll: Duration::from_millis(50),
            reconnect_grace: Duration::from_secs(5),
        }
    }
}

/// Sends requests to agents through the hub. Cheap to clone; share one per process.
///
/// It holds one confirm-mode channel on the process's [`Bus`], which both publishes requests and
/// consumes direct replies. When the channel or the connection is lost (a broker restart, a
/// dropped connection), the requests waiting for replies fail with [`TunnelError::Closed`] (a
/// transient error: the caller retries), and the tunnel reopens its channel on the bus with
/// backoff; requests made meanwhile wait for it within their deadline.
#[derive(Clone)]
pub struct AgentTunnel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTunnel")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

struct Inner {
    bus: Bus,
    /// The live channel, `None` while the tunnel reconnects. Bumping the generation wakes
    /// requests waiting for a channel.
    channel: watch::Sender<Option<Channel>>,
    redis: ConnectionManager,
    prefix: String,
    config: TunnelConfig,
    waiters: Mutex<HashMap<String, mpsc::UnboundedSender<TunnelReply>>>,
    routes: Mutex<HashMap<(String, String), Route>>,
    /// Set once by [`AgentTunnel::with_metrics`].
    metrics: OnceLock<TunnelMetrics>,
    /// Cancelled when the last tunnel is dropped: stops reconnecting.
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl AgentTunnel {
    /// A tunnel with default tuning over a channel of `bus`, finding routes in `redis` under
    /// `prefix` (the hub's name prefix; empty in production). Fails when the first channel
    /// cannot be opened; later losses are reconnected.
    pub async fn connect(
        bus: &Bus,
        redis: ConnectionManager,
        prefix: &str,
    ) -> Result<AgentTunnel, TunnelError> {
        AgentTunnel::connect_with(bus, redis, prefix, TunnelConfig::default()).await
    }

    /// Like [`AgentTunnel::connect`] with explicit tuning.
    pub async fn connect_with(
        bus: &Bus,
        redis: ConnectionManager,
        prefix: &str,
        config: TunnelConfig,
    ) -> Result<AgentTunnel, TunnelError> {
        let (channel, replies) = open(bus, prefix).await?;
        let inner = Arc::new(Inner {
            bus: bus.clone(),
            channel: watch::Sender::new(Some(channel)),
            redis,
            prefix: prefix.to_string(),
            config,
            waiters: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            metrics: OnceLock::new(),
            stop: CancellationToken::new(),
        });
        // The supervisor holds only a weak reference so dropping the last tunnel ends it.
        tokio::spawn(supervise(
            Arc::downgrade(&inner),
            inner.stop.clone(),
            replies,
        ));
        Ok(AgentTunnel { inner })
    }

    /// Records every call of this tunnel (and its clones) in `metrics`. A tunnel has one set of
    /// metrics: a second call keeps the first set and logs a warning.
    pub fn with_metrics(self, metrics: TunnelMetrics) -> AgentTunnel {
        if self.inner.metrics.set(metrics).is_err() {
            tracing::warn!("the tunnel already records metrics; keeping the first registry");
        }
        self
    }

    /// A tower service sending requests to the Kubernetes API of `agent` of `tenant`.
    pub fn service(&self, tenant: impl Into<String>, agent: impl Into<String>) -> TunnelService {
        TunnelService::new(self.clone(), tenant.into(), agent.into())
    }

    /// A kube-rs client for the cluster of `agent` of `tenant`.
    pub fn kube_client(
        &self,
        tenant: impl Into<String>,
        agent: impl Into<String>,
        default_namespace: &str,
    ) -> kube::Client {
        kube::Client::new(self.service(tenant, agent), default_namespace)
    }

    /// Sends a plain HTTP request (absolute URL) into the agent's network.
    pub async fn http(
        &self,
        tenant: &str,
        agent: &str,
        request: http::Request<bytes::Bytes>,
    ) -> Result<TunnelResponse, TunnelError> {
        call::send(self, tenant, agent, RequestKind::Http, request).await
    }

    /// Sends a request to the agent's Kubernetes API (path and query only).
    pub async fn kubernetes(
        &self,
        tenant: &str,
        agent: &str,
        request: http::Request<bytes::Bytes>,
    ) -> Result<TunnelResponse, TunnelError> {
        call::send(self, tenant, agent, RequestKind::Kubernetes, request).await
    }

    /// The agent's current route in Redis, if it is connected.
    pub async fn lookup(&self, tenant: &str, agent: &str) -> Result<Option<Route>, TunnelError> {
        let mut conn = self.inner.redis.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(routing::route_key(&self.inner.prefix, tenant, agent))
            .query_async(&mut conn)
            .await?;
        Ok(Route::from_fields(&fields))
    }
}

/// Opens the tunnel's channel: confirms (they carry back requests the broker could not route,
/// whose replica is gone), the hub exchange declared, and the direct reply-to consumer.
async fn open(bus: &Bus, prefix: &str) -> Result<(Channel, lapin::Consumer), TunnelError> {
    let connection = bus.connection().await.map_err(bus_error)?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .exchange_declare(
            routing::hub_exchange(prefix).as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let replies = channel
        .basic_consume(
            DIRECT_REPLY_TO.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((channel, replies))
}

fn bus_error(error: BusError) -> TunnelError {
    match error {
        BusError::Amqp(e) => TunnelError::Amqp(e),
        _ => TunnelError::Closed,
    }
}

/// Dispatches replies to their waiters while the channel lives; when it is lost, fails the
/// waiting requests and reopens the channel with backoff, until the tunnel is dropped.
async fn supervise(weak: Weak<Inner>, stop: CancellationToken, mut replies: lapin::Consumer) {
    loop {
        while let Some(delivery) = tokio::select! {
            next = replies.next() => next,
            () = stop.cancelled() => return,
        } {
            let Some(inner) = weak.upgrade() else { return };
            let Ok(delivery) = delivery else { break };
            let batch = match TunnelReplyBatch::decode(delivery.data.as_slice()) {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable hub reply dropped");
                    continue;
                }
            };
            for reply in batch.replies {
                let waiter = inner.lock_waiters().get(&reply.request_id).cloned();
                // Replies to requests nobody waits for any more are dropped.
                if let Some(waiter) = waiter {
                    let _ = waiter.send(reply);
                }
            }
        }
        let Some(bus) = weak.upgrade().map(|inner| {
            tracing::warn!("the tunnel's channel was lost; reconnecting");
            inner.channel.send_replace(None);
            // Replies to the old channel can no longer arrive: dropping the senders fails every
            // waiting request with `Closed`.
            inner.lock_waiters().clear();
            inner.bus.clone()
        }) else {
            return;
        };
        let mut attempt = 0;
        replies = loop {
            if !bus.backoff().wait(attempt, &stop).await {
                return;
            }
            let Some(prefix) = weak.upgrade().map(|inner| inner.prefix.clone()) else {
                return;
            };
            match open(&bus, &prefix).await {
                Ok((channel, replies)) => {
                    let Some(inner) = weak.upgrade() else { return };
                    inner.channel.send_replace(Some(channel));
                    tracing::info!("the tunnel's channel is back");
                    break replies;
                }
                Err(error) => {
                    tracing::warn!(attempt, error = %error, "reopening the tunnel's channel failed");
                    attempt = attempt.saturating_add(1);
                }
            }
        };
    }
}

impl Inner {
    /// The live channel, waiting for a reconnect until `deadline`.
    async fn channel(&self, deadline: tokio::time::Instant) -> Result<Channel, TunnelError> {
        let mut rx = self.channel.subscribe();
        let wait = rx.wait_for(|c| c.as_ref().is_some_and(|c| c.status().connected()));
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(Ok(channel)) => channel.clone().ok_or(TunnelError::Closed),
            _ => Err(TunnelError::Closed),
        }
    }

    fn lock_waiters(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<TunnelReply>>> {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_routes(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Route>> {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
