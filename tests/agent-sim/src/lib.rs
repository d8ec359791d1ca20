//! ferry-agent-sim: a simulated Ferry agent for tests and load. A [`SimAgent`] holds one hub
//! stream like a real agent (bearer token, hello, heartbeats, reconnect with backoff and
//! jitter, rotating through the hub addresses it was given as a load balancer would) and
//! answers the hub's requests from a [`Script`] instead of a real cluster.
//!
//! Its stream is opened by the real agent's [`ferry_agent::dial`] (dial, authenticate, hello,
//! welcome), re-exported here as [`connection`].

pub mod script;

pub use ferry_agent::dial as connection;
pub use ferry_agent::dial::{AgentStream, Dial, DialError};
pub use script::{Script, SimBody, SimReply, pattern_byte};

use bytes::{Bytes, BytesMut};
use ferry_proto::agent::{
    AgentMessage, BodyChunk, Header, Heartbeat, Hello, HubMessage, ResponseEnd, ResponseHead,
    Welcome, agent_message, hub_message, response,
};
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Everything a simulated agent needs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Hub addresses (`http://…` or `https://…`), tried in turn on each reconnect.
    pub endpoints: Vec<String>,
    /// CA to trust for `https` endpoints.
    pub ca_pem: Option<Vec<u8>>,
    /// TLS server name to expect, if not the endpoint's host.
    pub tls_domain: Option<String>,
    /// The bearer token.
    pub token: String,
    /// The agent identifier sent in hello.
    pub agent_id: String,
    /// The replies.
    pub script: Script,
    /// Whether to reconnect after the stream ends (true for agents, false for one-shot tests).
    pub reconnect: bool,
}

impl SimOptions {
    /// Options for one hub address with reconnects on.
    pub fn new(hub_url: &str, token: &str, agent_id: &str, script: Script) -> SimOptions {
        SimOptions {
            endpoints: vec![hub_url.to_string()],
            ca_pem: None,
            tls_domain: None,
            token: token.to_string(),
            agent_id: agent_id.to_string(),
            script,
            reconnect: true,
        }
    }
}

/// A running simulated agent. Dropping it ends its stream.
pub struct SimAgent {
    shared: Arc<Shared>,
    welcome: watch::Receiver<Option<Welcome>>,
    stop: CancellationToken,
}

impl std::fmt::Debug for SimAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimAgent")
            .field("welcome", &*self.welcome.borrow())
            .finish_non_exhaustive()
    }
}

struct Shared {
    options: SimOptions,
    requests: AtomicU64,
    received: AtomicU64,
    connects: AtomicU64,
    welcome: watch::Sender<Option<Welcome>>,
}

impl SimAgent {
    /// Connects one agent to `hub_url` and returns once the hub welcomed it.
    pub async fn connect(
        hub_url: &str,
        token: &str,
        identifier: &str,
        script: Script,
    ) -> Result<SimAgent, DialError> {
        SimAgent::start(SimOptions::new(hub_url, token, identifier, script)).await
    }

    /// Connects with explicit options; fails if the first connection fails or is refused.
    pub async fn start(options: SimOptions) -> Result<SimAgent, DialError> {
        if options.endpoints.is_empty() {
            return Err(DialError::NoEndpoint);
        }
        let (welcome_tx, welcome) = watch::channel(None);
        let shared = Arc::new(Shared {
            options,
            requests: AtomicU64::new(0),
            received: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            welcome: welcome_tx,
        });
        let first = dial(&shared, 0).await?;
        let stop = CancellationToken::new();
        tokio::spawn(drive(shared.clone(), first, stop.clone()));
        Ok(SimAgent {
            shared,
            welcome,
            stop,
        })
    }

    /// The hub's latest welcome (replica, session); `None` while reconnecting.
    pub fn welcome(&self) -> Option<Welcome> {
        self.welcome.borrow().clone()
    }

    /// Requests received so far (answered or not).
    pub fn requests_received(&self) -> u64 {
        self.shared.received.load(Ordering::SeqCst)
    }

    /// Requests answered completely so far.
    pub fn requests_handled(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Streams opened so far (1 + reconnects).
    pub fn connects(&self) -> u64 {
        self.shared.connects.load(Ordering::SeqCst)
    }

    /// Ends the stream and stops reconnecting.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn hello(agent_id: &str) -> Hello {
    Hello {
        agent_id: agent_id.to_string(),
        agent_version: concat!("ferry-agent-sim/", env!("CARGO_PKG_VERSION")).to_string(),
        kubernetes_version: "v1.33.0-sim".to_string(),
        capabilities: vec!["kubernetes".to_string(), "http".to_string()],
        protocol_version: ferry_proto::PROTOCOL_VERSION,
    }
}

async fn dial(shared: &Shared, attempt: usize) -> Result<AgentStream, DialError> {
    let options = &shared.options;
    let url = &options.endpoints[attempt % options.endpoints.len().max(1)];
    let dial = Dial {
        url: url.clone(),
        ca_pem: options.ca_pem.clone(),
        tls_domain: options.tls_domain.clone(),
        token: options.token.clone(),
        hello: hello(&options.agent_id),
        connect_timeout: Duration::from_secs(5),
    };
    let channel = connection::channel(&dial).await?;
    let stream = connection::open(channel, &dial).await?;
    shared.connects.fetch_add(1, Ordering::SeqCst);
    shared.welcome.send_replace(Some(stream.welcome.clone()));
    Ok(stream)
}

/// Serves streams until stopped, reconnecting with backoff and jitter.
async fn drive(shared: Arc<Shared>, first: AgentStream, stop: CancellationToken) {
    let mut stream = first;
    let mut attempt = 0usize;
    loop {
        serve(&shared, stream, &stop).await;
        shared.welcome.send_replace(None);
        if stop.is_cancelled() || !shared.options.reconnect {
            return;
        }
        let mut backoff = Duration::from_millis(20);
        stream = loop {
            // The next address: after losing a replica, try another first.
            attempt += 1;
            let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
            let wait = backoff + Duration::from_millis(jitter);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match dial(&shared, attempt).await {
                Ok(stream) => break stream,
                Err(e) => {
                    tracing::debug!(error = %e, "reconnect failed");
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        };
    }
}

/// A request whose body is still arriving.
struct Partial {
    request: ferry_proto::agent::Request,
    body: BytesMut,
}

/// Handles one stream until it ends.
async fn serve(shared: &Arc<Shared>, stream: AgentStream, stop: &CancellationToken) {
    let AgentStream {
        welcome,
        outbound,
        mut inbound,
    } = stream;
    let interval = Duration::from_millis(welcome.heartbeat_interval_ms.max(10) as u64);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let cancels: Arc<Mutex<HashMap<String, CancellationToken>>> = Arc::default();
    let mut partial: HashMap<String, Partial> = HashMap::new();
    // Ends the handlers of this stream when it goes.
    let stream_done = stop.child_token();
    let _done = stream_done.clone().drop_guard();
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return,
            _ = heartbeat.tick() => {
                if outbound.send(heartbeat_message(0)).await.is_err() {
                    return;
                }
                continue;
            }
            message = inbound.message() => message,
        };
        let Ok(Some(HubMessage { kind: Some(kind) })) = message else {
            if matches!(message, Ok(Some(HubMessage { kind: None }))) {
                continue;
            }
            return;
        };
        match kind {
            hub_message::Kind::Request(request) => {
                if request.body_complete {
                    spawn_handler(shared, &outbound, &cancels, &stream_done, request);
                } else {
                    let id = request.request_id.clone();
                    let body = BytesMut::from(&request.body[..]);
                    partial.insert(id, Partial { request, body });
                }
            }
            hub_message::Kind::RequestBody(part) => {
                let Some(p) = partial.get_mut(&part.request_id) else {
                    continue;
                };
                p.body.extend_from_slice(&part.data);
                if part.end
                    && let Some(mut p) = partial.remove(&part.request_id)
                {
                    p.request.body = p.body.freeze();
                    p.request.body_complete = true;
                    spawn_handler(shared, &outbound, &cancels, &stream_done, p.request);
                }
            }
            hub_message::Kind::Cancel(cancel) => {
                partial.remove(&cancel.request_id);
                let token = lock(&cancels).remove(&cancel.request_id);
                if let Some(token) = token {
                    token.cancel();
                }
            }
            hub_message::Kind::Ping(ping) => {
                if outbound.send(heartbeat_message(ping.nonce)).await.is_err() {
                    return;
                }
            }
            hub_message::Kind::GoAway(go_away) => {
                tracing::debug!(reason = %go_away.reason, "hub said go away");
                return;
            }
            hub_message::Kind::Welcome(_) => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn heartbeat_message(nonce: u64) -> AgentMessage {
    AgentMessage {
        kind: Some(agent_message::Kind::Heartbeat(Heartbeat {
            sent_at_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            ping_nonce: nonce,
        })),
    }
}

fn spawn_handler(
    shared: &Arc<Shared>,
    outbound: &mpsc::Sender<AgentMessage>,
    cancels: &Arc<Mutex<HashMap<String, CancellationToken>>>,
    stream_done: &CancellationToken,
    request: ferry_proto::agent::Request,
) {
    shared.received.fetch_add(1, Ordering::SeqCst);
    let cancel = stream_done.child_token();
    lock(cancels).insert(request.request_id.clone(), cancel.clone());
    let shared = shared.clone();
    let outbound = outbound.clone();
    let cancels = cancels.clone();
    tokio::spawn(async move {
        let id = request.request_id.clone();
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = answer(&shared, &outbound, request) => {}
        }
        lock(&cancels).remove(&id);
    });
}

/// Sends the scripted reply: head, chunks, end.
async fn answer(
    shared: &Shared,
    outbound: &mpsc::Sender<AgentMessage>,
    request: ferry_proto::agent::Request,
) {
    let reply = shared
        .options
        .script
        .reply(&request.method, &request.target);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let id = request.request_id;
    let mut seq = 0u64;
    let mut send = |part: response::Part| {
        let message = AgentMessage {
            kind: Some(agent_message::Kind::Response(
                ferry_proto::agent::Response {
                    request_id: id.clone(),
                    seq,
                    part: Some(part),
                },
            )),
        };
        seq += 1;
        let outbound = outbound.clone();
        async move { outbound.send(message).await.is_ok() }
    };
    let head = ResponseHead {
        status: reply.status as u32,
        headers: reply
            .headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: Bytes::copy_from_slice(value.as_bytes()),
            })
            .collect(),
    };
    if !send(response::Part::Head(head)).await {
        return;
    }
    let max = ferry_proto::MAX_CHUNK_BYTES;
    match reply.body {
        SimBody::Bytes(body) => {
            for start in (0..body.len()).step_by(max) {
                let data = body.slice(start..(start + max).min(body.len()));
                if !send(response::Part::Chunk(BodyChunk { data })).await {
                    return;
                }
            }
        }
        SimBody::Generated { len } => {
            for start in (0..len).step_by(max) {
                let data: Vec<u8> = (start..(start + max).min(len)).map(pattern_byte).collect();
                let chunk = BodyChunk {
                    data: Bytes::from(data),
                };
                if !send(response::Part::Chunk(chunk)).await {
                    return;
                }
            }
        }
    }
    if send(response::Part::End(ResponseEnd {})).await {
        shared.requests.fetch_add(1, Ordering::SeqCst);
    }
}
