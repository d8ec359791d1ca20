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

mod call;
mod error;
mod service;

pub use call::{RequestKind, TunnelResponse};
pub use error::{BoxError, TunnelError};
pub use service::{Deadline, TunnelBody, TunnelService};

use ferry_proto::routing::{self, Route};
use ferry_proto::tunnel::{TunnelReply, TunnelReplyBatch};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};
use prost::Message;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

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
    channel: Channel,
    redis: ConnectionManager,
    prefix: String,
    config: TunnelConfig,
    waiters: Mutex<HashMap<String, mpsc::UnboundedSender<TunnelReply>>>,
    routes: Mutex<HashMap<(String, String), Route>>,
    /// Set when the reply consumer stopped: no reply can arrive any more.
    closed: AtomicBool,
}

impl AgentTunnel {
    /// A tunnel with default tuning over a new channel of `amqp`, finding routes in `redis`
    /// under `prefix` (the hub's name prefix; empty in production).
    pub async fn connect(
        amqp: &Connection,
        redis: ConnectionManager,
        prefix: &str,
    ) -> Result<AgentTunnel, TunnelError> {
        AgentTunnel::connect_with(amqp, redis, prefix, TunnelConfig::default()).await
    }

    /// Like [`AgentTunnel::connect`] with explicit tuning.
    pub async fn connect_with(
        amqp: &Connection,
        redis: ConnectionManager,
        prefix: &str,
        config: TunnelConfig,
    ) -> Result<AgentTunnel, TunnelError> {
        let channel = amqp.create_channel().await?;
        // Confirms carry back requests the broker could not route (their replica is gone).
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
        let mut replies = channel
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
        let inner = Arc::new(Inner {
            channel,
            redis,
            prefix: prefix.to_string(),
            config,
            waiters: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        // The dispatcher holds only a weak reference so dropping the last tunnel ends it.
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            while let Some(delivery) = replies.next().await {
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
            if let Some(inner) = weak.upgrade() {
                tracing::warn!("the tunnel's reply consumer stopped");
                inner.closed.store(true, Ordering::SeqCst);
                // Dropping the senders fails every waiting request with `Closed`.
                inner.lock_waiters().clear();
            }
        });
        Ok(AgentTunnel { inner })
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

impl Inner {
    fn lock_waiters(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<TunnelReply>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_routes(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Route>> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }
}
