//! Agent streams: the `AgentHub.Tunnel` gRPC handler. It authenticates the bearer token (an
//! unrevoked credential with the Agent role), reads the hello, checks that the agent identifier
//! belongs to that credential (see [`ferry_store::agents::bind`]), claims the agent's route in
//! Redis under a fresh session, registers the stream in this replica's table, records the
//! connection in Postgres (off the stream's path, see [`crate::presence`]), and then reads the
//! agent's messages: heartbeats refresh the lease (and end the stream when the route moved),
//! responses go to the request waiting for them. [`sweep_revoked`] ends the streams of
//! credentials revoked since they connected.

use crate::metrics::Metrics;
use crate::presence::{Presence, Record};
use crate::routes::Routes;
use bytes::Bytes;
use ferry_proto::agent::agent_hub_server::AgentHub;
use ferry_proto::agent::{
    AgentMessage, GoAway, Hello, HubMessage, Welcome, agent_message, hub_message, response,
};
use ferry_store::agents::Binding;
use ferry_store::revocations::{self, Revocations};
use ferry_store::{Store, TenantId};
use futures::{Stream, StreamExt};
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

/// How long an agent has to send its hello after opening the stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages queued towards one agent before senders wait: requests are small, bodies are sent
/// in chunks, so this bounds the memory of a slow agent.
const OUTBOUND_CAPACITY: usize = 16;

/// Response parts queued for one request between the agent's stream and the bus. With
/// chunks of at most [`ferry_proto::MAX_CHUNK_BYTES`] this bounds the body bytes the hub holds
/// per request to (`PENDING_CAPACITY` + 3) chunks: the queue, one part waiting to enter it, and
/// the message being published (less than a chunk's worth plus one last chunk).
pub const PENDING_CAPACITY: usize = 8;

/// The longest agent identifier accepted (a DNS name's length).
const MAX_AGENT_ID_LEN: usize = 253;

/// Agent bindings a replica remembers having checked; past this it forgets them all (they are
/// only a shortcut past Postgres for reconnects).
const MAX_KNOWN_BINDINGS: usize = 100_000;

/// Credentials checked in one revocation query of [`sweep_revoked`].
const SWEEP_BATCH: usize = 5_000;

/// A machine credential: its tenant and id (a token's `tenant` and `sub`).
pub type CredentialKey = (TenantId, Uuid);

/// A request waiting for its response parts.
pub struct Pending {
    /// Where the agent's parts go.
    pub parts: mpsc::Sender<response::Part>,
    /// Body bytes queued in `parts` and not yet published.
    pub buffered: Arc<AtomicUsize>,
}

/// One registered agent stream.
pub struct AgentConn {
    /// The owning tenant (from the token).
    pub tenant: String,
    /// The agent identifier (from the hello).
    pub agent: String,
    /// The credential whose token opened the stream.
    pub credential: CredentialKey,
    /// The fencing session of this stream.
    pub session: u64,
    /// Messages to the agent.
    pub outbound: mpsc::Sender<Result<HubMessage, Status>>,
    /// Requests in flight on this stream, by request id.
    pub pending: Mutex<HashMap<String, Pending>>,
    /// Cancelled when the stream is over; ends the outbound half.
    pub closed: CancellationToken,
    /// Cancelled when the credential was found revoked; the stream then ends.
    pub revoked: CancellationToken,
}

impl AgentConn {
    /// Removes a request's entry (its forwarder finished or gave up).
    pub fn forget(&self, request_id: &str) {
        self.lock_pending().remove(request_id);
    }

    /// The pending table; a poisoned lock only means another task panicked mid-update of a
    /// plain map, which stays usable.
    pub fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What identifies an agent: (tenant, agent id).
pub type AgentKey = (String, String);

/// State shared by the gRPC handler and the relay.
pub struct HubState {
    /// This replica's id.
    pub replica: String,
    /// The Redis routes.
    pub routes: Routes,
    /// The agents table in Postgres.
    pub presence: Presence,
    /// The store, for agent bindings and revocations.
    pub store: Store,
    /// Cached revocation checks of the credentials that connect.
    pub revocations: Revocations,
    /// (tenant, agent, credential) bindings this replica found in Postgres: a reconnect of a
    /// known agent passes even while Postgres is away.
    pub known_bindings: Mutex<HashSet<(TenantId, String, Uuid)>>,
    /// Token verification.
    pub keys: crate::keys::IssuerKeys,
    /// Metrics.
    pub metrics: Metrics,
    /// Agents whose stream this replica holds.
    pub agents: Mutex<HashMap<AgentKey, Arc<AgentConn>>>,
    /// Told to agents in `Welcome`.
    pub heartbeat_interval: Duration,
    /// How long a stream may stay silent before it counts as dead.
    pub lease_ttl: Duration,
    /// Cancelled when the replica shuts down: every stream says go-away and ends.
    pub shutdown: CancellationToken,
    /// Every stream reader and request forwarder, so shutdown can wait for their clean-up.
    pub tasks: TaskTracker,
}

impl HubState {
    /// The stream registered for an agent, if this replica holds one.
    pub fn agent(&self, tenant: &str, agent: &str) -> Option<Arc<AgentConn>> {
        self.lock_agents()
            .get(&(tenant.to_string(), agent.to_string()))
            .cloned()
    }

    fn lock_agents(&self) -> std::sync::MutexGuard<'_, HashMap<AgentKey, Arc<AgentConn>>> {
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_bindings(&self) -> std::sync::MutexGuard<'_, HashSet<(TenantId, String, Uuid)>> {
        self.known_bindings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The gRPC service agents connect to.
#[derive(Clone)]
pub struct HubService {
    state: Arc<HubState>,
}

impl HubService {
    /// The service over the shared state.
    pub fn new(state: Arc<HubState>) -> HubService {
        HubService { state }
    }
}

type OutboundStream = Pin<Box<dyn Stream<Item = Result<HubMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentHub for HubService {
    type TunnelStream = OutboundStream;

    async fn tunnel(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::TunnelStream>, Status> {
        let state = &self.state;
        if state.shutdown.is_cancelled() {
            // A stream taken now would end at once; the agent should dial another replica.
            return Err(Status::unavailable(format!(
                "replica {} is shutting down; connect to another",
                state.replica
            )));
        }
        let claims = match authenticate(&state.keys, request.metadata()).await {
            Ok(claims) => claims,
            Err(status) => {
                state.metrics.refused_streams.inc();
                return Err(status);
            }
        };
        let credential = match admit(&claims) {
            Ok(credential) => credential,
            Err(status) => {
                state.metrics.refused_streams.inc();
                return Err(status);
            }
        };
        let tenant = claims.tenant.to_string();
        let mut inbound = request.into_inner();
        let hello = match read_hello(&mut inbound).await {
            Ok(hello) => hello,
            Err(status) => {
                state.metrics.refused_streams.inc();
                return Err(status);
            }
        };
        let agent = hello.agent_id.clone();
        if let Err(status) = check_binding(state, credential, &agent).await {
            state.metrics.refused_streams.inc();
            return Err(status);
        }
        let session = state.routes.claim(&tenant, &agent).await.map_err(|e| {
            tracing::error!(error = %e, "claiming an agent route in Redis");
            Status::unavailable("the hub cannot register agents right now")
        })?;

        let (outbound, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let conn = Arc::new(AgentConn {
            tenant: tenant.clone(),
            agent: agent.clone(),
            credential,
            session,
            outbound,
            pending: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            revoked: CancellationToken::new(),
        });
        let welcome = HubMessage {
            kind: Some(hub_message::Kind::Welcome(Welcome {
                protocol_version: hello.protocol_version.min(ferry_proto::PROTOCOL_VERSION),
                session,
                heartbeat_interval_ms: state.heartbeat_interval.as_millis() as u32,
                replica: state.replica.clone(),
            })),
        };
        // The channel is new and empty, so this cannot wait.
        let _ = conn.outbound.try_send(Ok(welcome));
        let previous = state
            .lock_agents()
            .insert((tenant.clone(), agent.clone()), conn.clone());
        if let Some(previous) = previous {
            // The same agent reconnected to this replica: its older stream is fenced out.
            previous.closed.cancel();
        } else {
            state.metrics.connected_agents.inc();
        }
        tracing::info!(
            tenant = %tenant,
            agent = %agent,
            session,
            credential = %claims.sub,
            agent_version = %hello.agent_version,
            kubernetes_version = %hello.kubernetes_version,
            "agent connected"
        );

        let record = state.presence.record(claims.tenant, &hello);
        state.tasks.spawn(read_agent(
            self.state.clone(),
            conn.clone(),
            inbound,
            record,
        ));
        let stream = ReceiverStream::new(rx).take_until(conn.closed.clone().cancelled_owned());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Checks the `authorization: Bearer …` metadata against the issuer's keys.
async fn authenticate(
    keys: &crate::keys::IssuerKeys,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<ferry_auth::Claims, Status> {
    let value = metadata
        .get(ferry_proto::AUTHORIZATION)
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("malformed authorization metadata"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| Status::unauthenticated("authorization is not a bearer token"))?;
    keys.verify(token).await.map_err(|e| {
        tracing::info!(error = %e, "agent token refused");
        Status::unauthenticated(format!("token refused: {e}"))
    })
}

/// Checks that the token's credential may act as an agent at all (it holds the Agent role and
/// names a machine credential), before the hello is read. Returns the credential.
fn admit(claims: &ferry_auth::Claims) -> Result<CredentialKey, Status> {
    if !claims.roles.iter().any(|r| r == ferry_auth::AGENT_ROLE) {
        tracing::info!(credential = %claims.sub, "agent stream refused: no Agent role");
        return Err(Status::permission_denied(format!(
            "the token's credential lacks the {} role; create a credential for the agent with \
             that role",
            ferry_auth::AGENT_ROLE
        )));
    }
    let id = Uuid::parse_str(&claims.sub)
        .map_err(|_| Status::unauthenticated("the token's subject is not a machine credential"))?;
    Ok((TenantId(claims.tenant), id))
}

/// Checks that `credential` is not revoked and that `agent` belongs to it, binding the agent
/// on its first connection: one credential per agent identifier, one identifier per
/// credential. While Postgres is away, only agents this replica already checked pass (the
/// revocation sweep catches up when it is back).
async fn check_binding(
    state: &HubState,
    credential: CredentialKey,
    agent: &str,
) -> Result<(), Status> {
    let (tenant, id) = credential;
    let key = (tenant, agent.to_string(), id);
    let known = state.lock_bindings().contains(&key);
    match state.revocations.is_revoked(tenant, id).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::info!(credential = %id, agent, "agent stream refused: credential revoked");
            return Err(Status::unauthenticated(
                "the token's credential was revoked",
            ));
        }
        Err(e) if known => {
            tracing::warn!(error = %e, agent, "cannot check a credential's revocation; admitting a known agent");
        }
        Err(e) => {
            tracing::error!(error = %e, "checking a credential's revocation");
            return Err(Status::unavailable(
                "the hub cannot check credentials right now; try again",
            ));
        }
    }
    if known {
        return Ok(());
    }
    let binding = async {
        let mut conn = state.store.pool().acquire().await?;
        ferry_store::agents::bind(&mut conn, tenant, agent, id).await
    }
    .await;
    match binding {
        Ok(Binding::Owned) => {
            let mut known = state.lock_bindings();
            if known.len() >= MAX_KNOWN_BINDINGS {
                known.clear();
            }
            known.insert(key);
            Ok(())
        }
        Ok(Binding::OwnedByAnother) => {
            tracing::warn!(tenant = %tenant, agent, credential = %id, "agent stream refused: the agent belongs to another credential");
            Err(Status::permission_denied(format!(
                "agent {agent:?} belongs to another credential of the tenant; each agent \
                 connects with its own credential"
            )))
        }
        Ok(Binding::CredentialOwns(own)) => {
            tracing::warn!(tenant = %tenant, agent, own, credential = %id, "agent stream refused: the credential belongs to another agent");
            Err(Status::permission_denied(format!(
                "this credential belongs to agent {own:?} and cannot connect as {agent:?}; \
                 give each agent its own credential"
            )))
        }
        Err(ferry_store::StoreError::NotFound { .. }) => Err(Status::unauthenticated(
            "the token's credential does not exist",
        )),
        Err(e) => {
            tracing::error!(error = %e, "binding an agent to its credential");
            Err(Status::unavailable(
                "the hub cannot check the agent's identity right now; try again",
            ))
        }
    }
}

/// Ends the streams of credentials revoked since they connected, checking every `every`, until
/// the replica shuts down.
pub async fn sweep_revoked(state: Arc<HubState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let held: Vec<Arc<AgentConn>> = state.lock_agents().values().cloned().collect();
        let credentials: Vec<CredentialKey> = held
            .iter()
            .map(|c| c.credential)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut revoked = HashSet::new();
        for batch in credentials.chunks(SWEEP_BATCH) {
            match revocations::revoked_among(&state.store, batch).await {
                Ok(found) => revoked.extend(found),
                Err(e) => {
                    tracing::warn!(error = %e, "checking connected agents' credentials");
                    break;
                }
            }
        }
        for &(tenant, credential) in &revoked {
            state.revocations.note_revoked(tenant, credential);
        }
        for conn in held.iter().filter(|c| revoked.contains(&c.credential)) {
            conn.revoked.cancel();
        }
    }
}

/// Reads and checks the first message, which must be a hello.
async fn read_hello(inbound: &mut Streaming<AgentMessage>) -> Result<Hello, Status> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no hello within 10s"))??;
    let Some(AgentMessage {
        kind: Some(agent_message::Kind::Hello(hello)),
    }) = first
    else {
        return Err(Status::invalid_argument(
            "the first message must be a hello",
        ));
    };
    if hello.protocol_version < ferry_proto::MIN_PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "protocol version {} is no longer served; the oldest served is {}",
            hello.protocol_version,
            ferry_proto::MIN_PROTOCOL_VERSION
        )));
    }
    let id = &hello.agent_id;
    let valid = !id.is_empty()
        && id.len() <= MAX_AGENT_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(Status::invalid_argument(
            "agent_id must be 1-253 ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(hello)
}

/// Why a stream ended, for logs and the error counter.
enum End {
    Closed,
    Shutdown,
    Replaced,
    Revoked,
    RouteMoved,
    Silent,
    Failed(Status),
}

/// Reads one agent's messages until the stream ends, then unregisters it (in Redis, in this
/// replica's table, and, by dropping `record`, in Postgres).
async fn read_agent(
    state: Arc<HubState>,
    conn: Arc<AgentConn>,
    mut inbound: Streaming<AgentMessage>,
    record: Record,
) {
    let end = loop {
        let next = tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => break End::Shutdown,
            _ = conn.closed.cancelled() => break End::Replaced,
            _ = conn.revoked.cancelled() => break End::Revoked,
            next = tokio::time::timeout(state.lease_ttl, inbound.message()) => next,
        };
        let message = match next {
            Err(_) => break End::Silent,
            Ok(Err(status)) => break End::Failed(status),
            Ok(Ok(None)) => break End::Closed,
            Ok(Ok(Some(AgentMessage { kind: None }))) => continue,
            Ok(Ok(Some(AgentMessage { kind: Some(kind) }))) => kind,
        };
        match message {
            agent_message::Kind::Heartbeat(_) => {
                match state
                    .routes
                    .refresh(&conn.tenant, &conn.agent, conn.session)
                    .await
                {
                    Ok(true) => record.beat(),
                    Ok(false) => break End::RouteMoved,
                    // Redis being briefly away is no reason to drop the agent: the lease runs
                    // on, and the next heartbeat tries again.
                    Err(e) => tracing::warn!(error = %e, "refreshing an agent lease"),
                }
            }
            agent_message::Kind::Response(response) => dispatch(&state, &conn, response).await,
            agent_message::Kind::Hello(_) => {
                break End::Failed(Status::invalid_argument("hello sent twice"));
            }
        }
    };

    let reason = match &end {
        End::Closed => "agent closed the stream",
        End::Shutdown => "replica shutting down",
        End::Replaced => "a newer stream of the same agent replaced this one",
        End::Revoked => "the agent's credential was revoked",
        End::RouteMoved => "the agent's route moved to another session",
        End::Silent => "no heartbeat within the lease",
        End::Failed(_) => "stream failed",
    };
    if !matches!(end, End::Closed) {
        let go_away = HubMessage {
            kind: Some(hub_message::Kind::GoAway(GoAway {
                reason: reason.to_string(),
            })),
        };
        let _ = conn.outbound.try_send(Ok(go_away));
    }
    match &end {
        End::Failed(status) => {
            state.metrics.stream_errors.inc();
            tracing::warn!(tenant = %conn.tenant, agent = %conn.agent, session = conn.session, error = %status, reason, "agent stream ended");
        }
        End::Silent | End::RouteMoved | End::Revoked => {
            state.metrics.stream_errors.inc();
            tracing::warn!(tenant = %conn.tenant, agent = %conn.agent, session = conn.session, reason, "agent stream ended");
        }
        _ => {
            tracing::info!(tenant = %conn.tenant, agent = %conn.agent, session = conn.session, reason, "agent stream ended");
        }
    }

    // Unregister only if the table still points at this stream (a reconnect may have replaced it).
    let removed = {
        let mut agents = state.lock_agents();
        let key = (conn.tenant.clone(), conn.agent.clone());
        match agents.get(&key) {
            Some(current) if Arc::ptr_eq(current, &conn) => agents.remove(&key).is_some(),
            _ => false,
        }
    };
    if removed {
        state.metrics.connected_agents.dec();
    }
    if !matches!(end, End::Replaced | End::RouteMoved)
        && let Err(e) = state
            .routes
            .release(&conn.tenant, &conn.agent, conn.session)
            .await
    {
        tracing::warn!(error = %e, "releasing an agent route");
    }
    // Dropping the senders tells every waiting forwarder the agent is gone.
    conn.lock_pending().clear();
    conn.closed.cancel();
    // Its writer records the disconnect (on its own task, tracked by `state.tasks`).
    drop(record);
}

/// Hands one response part to the request waiting for it.
async fn dispatch(state: &HubState, conn: &AgentConn, response: ferry_proto::agent::Response) {
    let Some(part) = response.part else {
        return;
    };
    let finished = matches!(part, response::Part::End(_) | response::Part::Error(_));
    let target = {
        let mut pending = conn.lock_pending();
        let entry = pending
            .get(&response.request_id)
            .map(|p| (p.parts.clone(), p.buffered.clone()));
        if finished {
            pending.remove(&response.request_id);
        }
        entry
    };
    // Parts of requests nobody waits for any more (cancelled, timed out) are dropped.
    let Some((parts, buffered)) = target else {
        return;
    };
    let size = match &part {
        response::Part::Chunk(chunk) => chunk.data.len(),
        _ => 0,
    };
    if size > 0 {
        let now = buffered.fetch_add(size, Ordering::SeqCst) + size;
        state.metrics.observe_buffered(now);
    }
    // Waiting here is the back-pressure: a slow bus slows the agent's stream (HTTP/2 flow
    // control) instead of growing the hub's memory.
    if parts.send(part).await.is_err() && size > 0 {
        buffered.fetch_sub(size, Ordering::SeqCst);
    }
}

/// Splits a request body into the first piece (sent inside the request) and the rest.
pub fn split_body(body: Bytes) -> (Bytes, Vec<Bytes>) {
    let max = ferry_proto::MAX_CHUNK_BYTES;
    if body.len() <= max {
        return (body, Vec::new());
    }
    let first = body.slice(..max);
    let rest = (max..body.len())
        .step_by(max)
        .map(|start| body.slice(start..(start + max).min(body.len())))
        .collect();
    (first, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_bounded_chunks() {
        let max = ferry_proto::MAX_CHUNK_BYTES;
        let (first, rest) = split_body(Bytes::from_static(b"small"));
        assert_eq!((first.as_ref(), rest.len()), (&b"small"[..], 0));
        let body = Bytes::from(vec![7u8; max * 2 + 10]);
        let (first, rest) = split_body(body.clone());
        assert_eq!(first.len(), max);
        assert_eq!(
            rest.iter().map(Bytes::len).collect::<Vec<_>>(),
            vec![max, 10]
        );
        let mut joined = first.to_vec();
        rest.iter().for_each(|c| joined.extend_from_slice(c));
        assert_eq!(joined, body.to_vec());
    }
}
