//! One request's journey: look the agent's route up, publish to its replica, read the numbered
//! replies, and on a lost replica or agent decide whether to look up again and retry.

use crate::error::TunnelError;
use crate::routing::{self, Route};
use crate::{AgentTunnel, Inner};
use bytes::Bytes;
use ferry_proto::agent::{self, Header};
use ferry_proto::tunnel::{TunnelErrorCode, TunnelReply, TunnelRequest, tunnel_reply};
use lapin::BasicProperties;
use lapin::Confirmation;
use lapin::options::BasicPublishOptions;
use prost::Message;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the agent should do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Send to the cluster's API server (the URI's path and query).
    Kubernetes,
    /// Send to an absolute URL inside the agent's network.
    Http,
}

/// An answer whose head has arrived; the body streams on.
pub struct TunnelResponse {
    /// Status and headers.
    pub head: http::response::Parts,
    /// The rest of the answer.
    pub body: ReplyStream,
}

impl std::fmt::Debug for TunnelResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelResponse")
            .field("status", &self.head.status)
            .finish_non_exhaustive()
    }
}

impl TunnelResponse {
    /// Reads the whole body.
    pub async fn bytes(self) -> Result<Bytes, TunnelError> {
        let mut body = self.body;
        let mut all = Vec::new();
        while let Some(chunk) = body.next_chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(all))
    }
}

/// The replies of one request, read with its deadline and with checks that its replica is
/// still the agent's.
pub struct ReplyStream {
    inner: std::sync::Arc<Inner>,
    request_id: String,
    replies: mpsc::UnboundedReceiver<TunnelReply>,
    next_seq: u64,
    deadline: Instant,
    timeout: Duration,
    tenant: String,
    agent: String,
    route: Route,
    done: bool,
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        self.inner.lock_waiters().remove(&self.request_id);
    }
}

/// What ended a wait for the next reply other than the reply itself.
enum Lost {
    /// The route now names another replica or session, or none: the replica lost the agent.
    RouteMoved,
}

impl ReplyStream {
    /// The next reply in order, or an error when the deadline passed or the route moved.
    async fn next_reply(&mut self) -> Result<Result<tunnel_reply::Part, Lost>, TunnelError> {
        // A replica unregisters an agent as soon as its stream ends, while the last replies it
        // took from the agent may still be on their way through the bus: the route must be
        // found moved at two silence checks in a row before the request counts as lost.
        let mut moved = false;
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                return Err(TunnelError::Timeout(self.timeout));
            }
            let wake = self.deadline.min(now + self.inner.config.silence_check);
            match tokio::time::timeout_at(wake, self.replies.recv()).await {
                Ok(Some(reply)) => {
                    if reply.seq != self.next_seq {
                        return Err(TunnelError::Protocol(format!(
                            "reply {} arrived when {} was expected",
                            reply.seq, self.next_seq
                        )));
                    }
                    self.next_seq += 1;
                    let part = reply
                        .part
                        .ok_or_else(|| TunnelError::Protocol("empty reply".into()))?;
                    return Ok(Ok(part));
                }
                Ok(None) => return Err(TunnelError::Closed),
                Err(_) if Instant::now() >= self.deadline => {
                    return Err(TunnelError::Timeout(self.timeout));
                }
                Err(_) => {
                    // Silence: a replica that died sends nothing, so ask Redis whether the
                    // agent is still where we sent the request.
                    let tunnel = AgentTunnel {
                        inner: self.inner.clone(),
                    };
                    let current = tunnel.lookup(&self.tenant, &self.agent).await?;
                    if current.as_ref() == Some(&self.route) {
                        moved = false;
                    } else if moved {
                        return Ok(Err(Lost::RouteMoved));
                    } else {
                        moved = true;
                    }
                }
            }
        }
    }

    /// The next body chunk; `None` after the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, TunnelError> {
        if self.done {
            return Ok(None);
        }
        match self.next_reply().await? {
            Ok(tunnel_reply::Part::Chunk(chunk)) => Ok(Some(chunk.data)),
            Ok(tunnel_reply::Part::End(_)) => {
                self.done = true;
                Ok(None)
            }
            Ok(tunnel_reply::Part::Error(error)) => {
                self.done = true;
                Err(reply_error(error, &self.tenant, &self.agent, self.timeout))
            }
            Ok(other) => Err(TunnelError::Protocol(format!(
                "unexpected reply in a body: {other:?}"
            ))),
            Err(Lost::RouteMoved) => {
                self.done = true;
                Err(TunnelError::AgentDisconnected(
                    "the agent's replica was lost mid-body".into(),
                ))
            }
        }
    }
}

/// Whether a method may be repeated without changing the outcome.
fn idempotent(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::PUT
            | http::Method::DELETE
            | http::Method::OPTIONS
    )
}

/// How one attempt ended when it did not produce a response head.
enum Attempt {
    /// The replica answered that it does not hold the agent: retry if the route now names
    /// someone else, or still names this replica (which may be registering the agent's stream
    /// right now: a route is written before the replica's own table), within the grace.
    NotHeld,
    /// Never reached the agent (replica lost before accepting): retry after a new look-up.
    NotDelivered,
    /// Reached the agent (or may have), then the agent or its replica was lost.
    LostAfterAccept(String),
}

/// A route an attempt lost, and what to report if the agent does not come back.
struct Loss {
    route: Route,
    /// Whether the replica itself said it does not hold the agent: a missing route then means
    /// the agent is gone for good rather than on its way to another replica, and the same
    /// route may be tried again.
    refused: bool,
    /// The error if no usable route appears within the reconnect grace.
    error: TunnelError,
    /// When waiting for the agent ends. Repeated refusals on one route share one grace.
    give_up: Instant,
}

impl Loss {
    fn new(
        route: Route,
        refused: bool,
        error: TunnelError,
        previous: Option<&Loss>,
        grace: Duration,
    ) -> Loss {
        let give_up = match previous {
            Some(p) if p.route == route => p.give_up,
            _ => Instant::now() + grace,
        };
        Loss {
            route,
            refused,
            error,
            give_up,
        }
    }
}

/// Sends a request with the deadline of the tunnel's configuration or its [`crate::Deadline`]
/// extension, retrying as the crate documentation describes, and records it in the tunnel's
/// metrics if it has them.
pub(crate) async fn send(
    tunnel: &AgentTunnel,
    tenant: &str,
    agent: &str,
    kind: RequestKind,
    request: http::Request<Bytes>,
) -> Result<TunnelResponse, TunnelError> {
    let started = Instant::now();
    let result = attempt_until_answered(tunnel, tenant, agent, kind, request).await;
    if let Some(metrics) = tunnel.inner.metrics.get() {
        let outcome = crate::metrics::outcome(result.as_ref().map(|_| ()));
        metrics.record(kind, outcome, started.elapsed().as_secs_f64());
    }
    result
}

async fn attempt_until_answered(
    tunnel: &AgentTunnel,
    tenant: &str,
    agent: &str,
    kind: RequestKind,
    request: http::Request<Bytes>,
) -> Result<TunnelResponse, TunnelError> {
    let inner = &tunnel.inner;
    // The caller's trace goes with the request, through the hub to the agent.
    let trace = ferry_runtime::trace::current();
    let (parts, body) = request.into_parts();
    let timeout = parts
        .extensions
        .get::<crate::Deadline>()
        .map_or(inner.config.default_timeout, |d| d.0);
    let deadline = Instant::now() + timeout;
    let deadline_unix_ms = unix_ms() + timeout.as_millis() as u64;
    let target = match kind {
        RequestKind::Kubernetes => parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        RequestKind::Http => {
            if parts.uri.scheme().is_none() || parts.uri.host().is_none() {
                return Err(TunnelError::InvalidRequest(format!(
                    "a plain HTTP request needs an absolute URL, not {}",
                    parts.uri
                )));
            }
            parts.uri.to_string()
        }
    };
    let headers: Vec<Header> = parts
        .headers
        .iter()
        .filter(|(name, _)| !hop_by_hop(name))
        .map(|(name, value)| Header {
            name: name.as_str().to_string(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        })
        .collect();
    let retry_lost = idempotent(&parts.method);

    let not_connected = || TunnelError::AgentNotConnected {
        tenant: tenant.to_string(),
        agent: agent.to_string(),
    };
    let grace = inner.config.reconnect_grace;
    // The route a previous attempt lost; a retry waits for a usable one.
    let mut lost: Option<Loss> = None;
    // The loss before, whose grace a repeated refusal on the same route shares.
    let mut previous: Option<Loss> = None;
    loop {
        if lost.is_some()
            && let Some(metrics) = inner.metrics.get()
        {
            metrics.retried(kind);
        }
        let route = match lost.take() {
            None => match cached_or_lookup(tunnel, tenant, agent).await? {
                Some(route) => route,
                None => return Err(not_connected()),
            },
            Some(loss) => {
                let (route, loss) =
                    wait_for_route(tunnel, tenant, agent, loss, deadline, timeout).await?;
                previous = Some(loss);
                route
            }
        };
        // While the tunnel reconnects its channel, wait for it within the deadline.
        let channel = inner.channel(deadline).await?;
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let message = TunnelRequest {
            tenant: tenant.to_string(),
            agent_id: agent.to_string(),
            session: route.session,
            request: Some(agent::Request {
                request_id: request_id.clone(),
                kind: match kind {
                    RequestKind::Kubernetes => agent::RequestKind::Kubernetes as i32,
                    RequestKind::Http => agent::RequestKind::Http as i32,
                },
                method: parts.method.as_str().to_string(),
                target: target.clone(),
                headers: headers.clone(),
                body: body.clone(),
                body_complete: true,
                deadline_unix_ms,
                traceparent: trace.traceparent.clone().unwrap_or_default(),
                tracestate: trace.tracestate.clone().unwrap_or_default(),
            }),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        inner.lock_waiters().insert(request_id.clone(), tx);
        let mut stream = ReplyStream {
            inner: inner.clone(),
            request_id: request_id.clone(),
            replies: rx,
            next_seq: 0,
            deadline,
            timeout,
            tenant: tenant.to_string(),
            agent: agent.to_string(),
            route: route.clone(),
            done: false,
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let properties = BasicProperties::default()
            .with_correlation_id(request_id.as_str().into())
            .with_reply_to(crate::DIRECT_REPLY_TO.into())
            // A request still queued after its deadline is useless: let the broker drop it.
            .with_expiration(remaining.as_millis().max(1).to_string().as_str().into());
        let confirmation = channel
            .basic_publish(
                routing::hub_exchange(&inner.prefix).as_str().into(),
                route.replica.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &message.encode_to_vec(),
                properties,
            )
            .await?
            .await?;
        if matches!(
            &confirmation,
            Confirmation::Ack(Some(_)) | Confirmation::Nack(_)
        ) {
            // Returned: the replica's queue is gone, the replica with it.
            tracing::debug!(replica = %route.replica, "request returned by the broker");
            forget_route(inner, tenant, agent);
            lost = Some(Loss::new(
                route,
                false,
                not_connected(),
                previous.as_ref(),
                grace,
            ));
            continue;
        }

        match run_attempt(&mut stream).await? {
            Ok(head) => {
                remember_route(inner, tenant, agent, &route);
                return Ok(TunnelResponse { head, body: stream });
            }
            Err(Attempt::NotHeld) => {
                forget_route(inner, tenant, agent);
                lost = Some(Loss::new(
                    route,
                    true,
                    not_connected(),
                    previous.as_ref(),
                    grace,
                ));
            }
            Err(Attempt::NotDelivered) => {
                forget_route(inner, tenant, agent);
                lost = Some(Loss::new(
                    route,
                    false,
                    not_connected(),
                    previous.as_ref(),
                    grace,
                ));
            }
            Err(Attempt::LostAfterAccept(why)) => {
                forget_route(inner, tenant, agent);
                if !retry_lost {
                    return Err(TunnelError::AgentDisconnected(why));
                }
                tracing::debug!(reason = %why, "retrying an idempotent request");
                let error = TunnelError::AgentDisconnected(why);
                lost = Some(Loss::new(route, false, error, previous.as_ref(), grace));
            }
        }
    }
}

/// Reads replies up to the response head.
async fn run_attempt(
    stream: &mut ReplyStream,
) -> Result<Result<http::response::Parts, Attempt>, TunnelError> {
    let mut accepted = false;
    loop {
        let part = match stream.next_reply().await? {
            Ok(part) => part,
            Err(Lost::RouteMoved) if accepted => {
                return Ok(Err(Attempt::LostAfterAccept(
                    "the agent's replica was lost".into(),
                )));
            }
            Err(Lost::RouteMoved) => return Ok(Err(Attempt::NotDelivered)),
        };
        match part {
            tunnel_reply::Part::Accepted(_) => accepted = true,
            tunnel_reply::Part::Head(head) => return Ok(Ok(response_head(head)?)),
            tunnel_reply::Part::Error(error) => {
                let code = TunnelErrorCode::try_from(error.code).unwrap_or_default();
                return match code {
                    TunnelErrorCode::NotConnected => Ok(Err(Attempt::NotHeld)),
                    TunnelErrorCode::AgentDisconnected if !accepted => {
                        Ok(Err(Attempt::NotDelivered))
                    }
                    TunnelErrorCode::AgentDisconnected => {
                        Ok(Err(Attempt::LostAfterAccept(error.message)))
                    }
                    _ => Err(reply_error(
                        error,
                        &stream.tenant,
                        &stream.agent,
                        stream.timeout,
                    )),
                };
            }
            other => {
                return Err(TunnelError::Protocol(format!(
                    "unexpected reply before the head: {other:?}"
                )));
            }
        }
    }
}

fn response_head(head: agent::ResponseHead) -> Result<http::response::Parts, TunnelError> {
    let status = u16::try_from(head.status)
        .ok()
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .ok_or_else(|| TunnelError::Protocol(format!("invalid status {}", head.status)))?;
    let mut builder = http::Response::builder().status(status);
    for header in head.headers {
        let name = http::HeaderName::from_bytes(header.name.as_bytes());
        let value = http::HeaderValue::from_bytes(&header.value);
        if let (Ok(name), Ok(value)) = (name, value) {
            if hop_by_hop(&name) {
                continue;
            }
            builder = builder.header(name, value);
        }
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|e| TunnelError::Protocol(e.to_string()))?
        .into_parts();
    Ok(parts)
}

fn reply_error(
    error: ferry_proto::tunnel::TunnelError,
    tenant: &str,
    agent: &str,
    timeout: Duration,
) -> TunnelError {
    match TunnelErrorCode::try_from(error.code).unwrap_or_default() {
        TunnelErrorCode::NotConnected => TunnelError::AgentNotConnected {
            tenant: tenant.to_string(),
            agent: agent.to_string(),
        },
        TunnelErrorCode::AgentDisconnected => TunnelError::AgentDisconnected(error.message),
        TunnelErrorCode::DeadlineExceeded => TunnelError::Timeout(timeout),
        TunnelErrorCode::Remote => TunnelError::Remote {
            code: agent::ErrorCode::try_from(error.agent_code).unwrap_or_default(),
            message: error.message,
        },
        TunnelErrorCode::InvalidRequest | TunnelErrorCode::Unspecified => {
            TunnelError::Refused(error.message)
        }
    }
}

/// Headers that describe one HTTP connection, not the message, and must not be relayed.
fn hop_by_hop(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "host"
    )
}

async fn cached_or_lookup(
    tunnel: &AgentTunnel,
    tenant: &str,
    agent: &str,
) -> Result<Option<Route>, TunnelError> {
    let key = (tenant.to_string(), agent.to_string());
    if let Some(route) = tunnel.inner.lock_routes().get(&key).cloned() {
        return Ok(Some(route));
    }
    let route = tunnel.lookup(tenant, agent).await?;
    if let Some(route) = &route {
        remember_route(&tunnel.inner, tenant, agent, route);
    }
    Ok(route)
}

/// Polls Redis for the route to try next, within the loss's grace and the deadline: a route
/// other than the lost one (the agent reconnected); or, after a refusal, the same route again
/// once a poll interval has passed (its replica may have been registering the stream). After a
/// refusal no route at all means the agent is gone; otherwise it may be on its way.
async fn wait_for_route(
    tunnel: &AgentTunnel,
    tenant: &str,
    agent: &str,
    loss: Loss,
    deadline: Instant,
    timeout: Duration,
) -> Result<(Route, Loss), TunnelError> {
    let poll = tunnel.inner.config.reconnect_poll;
    let mut polled = false;
    loop {
        match tunnel.lookup(tenant, agent).await? {
            Some(route) if route != loss.route => return Ok((route, loss)),
            Some(route) if loss.refused && polled => return Ok((route, loss)),
            None if loss.refused => return Err(loss.error),
            _ => {}
        }
        let next = Instant::now() + poll;
        if next >= deadline {
            return Err(TunnelError::Timeout(timeout));
        }
        if next >= loss.give_up {
            return Err(loss.error);
        }
        tokio::time::sleep_until(next).await;
        polled = true;
    }
}

fn remember_route(inner: &Inner, tenant: &str, agent: &str, route: &Route) {
    inner
        .lock_routes()
        .insert((tenant.to_string(), agent.to_string()), route.clone());
}

fn forget_route(inner: &Inner, tenant: &str, agent: &str) {
    inner
        .lock_routes()
        .remove(&(tenant.to_string(), agent.to_string()));
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_methods_are_repeated() {
        for m in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"] {
            assert!(idempotent(&m.parse().unwrap()), "{m}");
        }
        for m in ["POST", "PATCH"] {
            assert!(!idempotent(&m.parse().unwrap()), "{m}");
        }
    }

    #[test]
    fn heads_drop_hop_by_hop_headers_and_reject_bad_statuses() {
        let head = agent::ResponseHead {
            status: 200,
            headers: vec![
                Header {
                    name: "content-type".into(),
                    value: Bytes::from_static(b"application/json"),
                },
                Header {
                    name: "transfer-encoding".into(),
                    value: Bytes::from_static(b"chunked"),
                },
            ],
        };
        let parts = response_head(head).unwrap();
        assert_eq!(parts.status, 200);
        assert_eq!(parts.headers["content-type"], "application/json");
        assert!(parts.headers.get("transfer-encoding").is_none());
        let bad = agent::ResponseHead {
            status: 70_000,
            headers: vec![],
        };
        assert!(matches!(response_head(bad), Err(TunnelError::Protocol(_))));
    }
}
