//! One open hub stream: reads the hub's messages, runs each request in its own task within the
//! agent's concurrency bound, answers pings and sends heartbeats, honours cancels and deadlines,
//! and on shutdown drains in-flight requests for a bounded time before closing.

use crate::dial::AgentStream;
use crate::execute::{Executor, Outcome, ResponseSink};
use crate::metrics::{Metrics, outcome};
use bytes::BytesMut;
use ferry_proto::agent::{
    AgentMessage, ErrorCode, Heartbeat, HubMessage, Request, RequestKind, agent_message,
    hub_message,
};
use prometheus::IntGauge;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// The shortest heartbeat interval honoured, whatever the hub asks.
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

/// How long a closing stream waits for its request tasks to record their outcome.
const TASK_CLEAN_UP: Duration = Duration::from_secs(5);

/// How long a stream closed for shutdown waits for the hub to close its half (by then every
/// queued answer has reached the hub).
const FLUSH: Duration = Duration::from_secs(2);

/// What every stream of the process shares: the executor and the limits.
#[derive(Debug)]
pub struct Shared {
    /// Runs requests.
    pub executor: Executor,
    /// Metrics.
    pub metrics: Metrics,
    /// Execution slots (`max_in_flight` permits).
    pub slots: Arc<Semaphore>,
    /// Requests admitted and not finished (waiting or executing).
    pub admitted: AtomicUsize,
    /// The most requests admitted at once: executing plus waiting.
    pub max_admitted: usize,
    /// The largest request body accepted.
    pub max_body: usize,
    /// How long in-flight requests may finish after shutdown began.
    pub drain: Duration,
}

/// Why a stream ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// The hub asked the agent to reconnect (it is shutting down or the route moved).
    GoAway(String),
    /// The hub closed the stream.
    Closed,
    /// The stream failed.
    Failed(tonic::Status),
    /// The agent is shutting down.
    Shutdown,
}

type Cancels = Arc<Mutex<HashMap<String, CancellationToken>>>;

/// A request whose body is still arriving.
struct Partial {
    request: Request,
    body: BytesMut,
}

/// Serves `stream` until it ends or `shutdown` fires (then drains and closes it).
pub async fn serve(
    shared: Arc<Shared>,
    stream: AgentStream,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let AgentStream {
        welcome,
        outbound,
        mut inbound,
    } = stream;
    // Cancels every task of this stream when it ends.
    let done = CancellationToken::new();
    let (nonce_tx, nonce_rx) = watch::channel(0u64);
    let interval =
        Duration::from_millis(u64::from(welcome.heartbeat_interval_ms)).max(MIN_HEARTBEAT);
    tokio::spawn(heartbeats(
        outbound.clone(),
        interval,
        nonce_rx,
        done.clone(),
    ));

    let mut session = Session {
        shared,
        outbound,
        cancels: Arc::default(),
        partial: HashMap::new(),
        tasks: TaskTracker::new(),
        done: done.clone(),
        draining: false,
    };
    let mut drain_until = Instant::now();
    let end = loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled(), if !session.draining => {
                session.draining = true;
                drain_until = Instant::now() + session.shared.drain;
                session.tasks.close();
                tracing::info!(
                    in_flight = session.tasks.len(),
                    "draining in-flight requests before closing the hub stream"
                );
                continue;
            }
            _ = session.tasks.wait(), if session.draining => break SessionEnd::Shutdown,
            _ = tokio::time::sleep_until(drain_until), if session.draining => {
                tracing::warn!(abandoned = session.tasks.len(), "drain period over");
                break SessionEnd::Shutdown;
            }
            next = inbound.message() => next,
        };
        let kind = match next {
            Ok(Some(HubMessage { kind: Some(kind) })) => kind,
            Ok(Some(HubMessage { kind: None })) => continue,
            Ok(None) => break SessionEnd::Closed,
            Err(status) => break SessionEnd::Failed(status),
        };
        match kind {
            hub_message::Kind::Request(request) => session.request(request),
            hub_message::Kind::RequestBody(part) => session.body(part),
            hub_message::Kind::Cancel(cancel) => session.cancel(&cancel.request_id),
            hub_message::Kind::Ping(ping) => {
                nonce_tx.send_replace(ping.nonce);
            }
            hub_message::Kind::GoAway(go_away) => break SessionEnd::GoAway(go_away.reason),
            hub_message::Kind::Welcome(_) => {}
        }
    };
    // Ends the heartbeats and every request still running, then lets the tasks record how
    // they ended; dropping the last sender closes the agent's half of the stream.
    done.cancel();
    session.tasks.close();
    let _ = tokio::time::timeout(TASK_CLEAN_UP, session.tasks.wait()).await;
    if matches!(end, SessionEnd::Shutdown) {
        // The drained answers may still be queued behind our half of the stream: close it (the
        // session holds the last sender) and wait for the hub to close its half, so the
        // connection is not torn down under them.
        drop(session);
        let _ = tokio::time::timeout(FLUSH, async {
            while let Ok(Some(_)) = inbound.message().await {}
        })
        .await;
    }
    end
}

struct Session {
    shared: Arc<Shared>,
    outbound: mpsc::Sender<AgentMessage>,
    cancels: Cancels,
    partial: HashMap<String, Partial>,
    tasks: TaskTracker,
    done: CancellationToken,
    draining: bool,
}

impl Session {
    fn request(&mut self, request: Request) {
        if request.body_complete {
            self.admit(request);
            return;
        }
        if request.body.len() > self.shared.max_body {
            self.refuse_too_large(request);
            return;
        }
        // Bodies still arriving count against the same bound as admitted requests, so a hub
        // cannot make the agent hold more than that many partial bodies (each at most max_body).
        if !self.partial.contains_key(&request.request_id)
            && self.partial.len() >= self.shared.max_admitted
        {
            let message = format!(
                "the agent is busy: {} request bodies are still arriving",
                self.partial.len()
            );
            self.refuse(request, ErrorCode::Internal, outcome::REJECTED, message);
            return;
        }
        let id = request.request_id.clone();
        let body = BytesMut::from(&request.body[..]);
        self.partial.insert(id, Partial { request, body });
    }

    fn body(&mut self, part: ferry_proto::agent::RequestBody) {
        // Parts of unknown requests (cancelled, refused) are dropped.
        let Some(partial) = self.partial.get_mut(&part.request_id) else {
            return;
        };
        if partial.body.len() + part.data.len() > self.shared.max_body {
            if let Some(partial) = self.partial.remove(&part.request_id) {
                self.refuse_too_large(partial.request);
            }
            return;
        }
        partial.body.extend_from_slice(&part.data);
        if part.end
            && let Some(mut partial) = self.partial.remove(&part.request_id)
        {
            partial.request.body = partial.body.freeze();
            partial.request.body_complete = true;
            self.admit(partial.request);
        }
    }

    fn cancel(&mut self, request_id: &str) {
        self.partial.remove(request_id);
        let token = lock(&self.cancels).remove(request_id);
        if let Some(token) = token {
            token.cancel();
        }
    }

    fn refuse_too_large(&self, request: Request) {
        let message = format!(
            "the request body exceeds FERRY_AGENT_MAX_REQUEST_BODY_BYTES ({})",
            self.shared.max_body
        );
        self.refuse(
            request,
            ErrorCode::InvalidRequest,
            outcome::INVALID,
            message,
        );
    }

    /// Answers with an error without executing, from a task so the reader never waits.
    fn refuse(&self, request: Request, code: ErrorCode, label: &'static str, message: String) {
        let kind = kind_label(request.kind);
        self.shared.metrics.finished(kind, label, 0.0);
        let mut sink = ResponseSink::new(request.request_id, self.outbound.clone());
        let done = self.done.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = done.cancelled() => {}
                _ = sink.error(code, message) => {}
            }
        });
    }

    /// Starts a request's task, or refuses it when the agent is draining or full.
    fn admit(&mut self, request: Request) {
        if self.draining {
            let message = "the agent is shutting down".to_string();
            self.refuse(request, ErrorCode::Unreachable, outcome::REJECTED, message);
            return;
        }
        let shared = &self.shared;
        if shared.admitted.fetch_add(1, Ordering::SeqCst) >= shared.max_admitted {
            shared.admitted.fetch_sub(1, Ordering::SeqCst);
            let message = format!(
                "the agent is busy: {} requests are executing or waiting",
                shared.max_admitted
            );
            self.refuse(request, ErrorCode::Internal, outcome::REJECTED, message);
            return;
        }
        let admitted = Admitted(shared.clone());
        let cancel = self.done.child_token();
        lock(&self.cancels).insert(request.request_id.clone(), cancel.clone());
        let sink = ResponseSink::new(request.request_id.clone(), self.outbound.clone());
        let cancels = self.cancels.clone();
        self.tasks.spawn(async move {
            let id = request.request_id.clone();
            run_request(&admitted.0, request, sink, &cancel).await;
            lock(&cancels).remove(&id);
            drop(admitted);
        });
    }
}

/// How a request's task ended.
enum Ended {
    Cancelled,
    Deadline,
    Done(Outcome),
}

/// Runs one request in a span that joins the trace of the deployment step that asked for it
/// (the hub's relay span, from the request's `traceparent`).
async fn run_request(
    shared: &Shared,
    request: Request,
    sink: ResponseSink,
    cancel: &CancellationToken,
) {
    let span = tracing::info_span!(
        "request",
        request_id = %request.request_id,
        kind = kind_label(request.kind),
        trace_id = tracing::field::Empty,
    );
    let caller =
        ferry_runtime::trace::TraceContext::from_fields(&request.traceparent, &request.tracestate);
    ferry_runtime::trace::follow(&span, &caller);
    execute_request(shared, request, sink, cancel)
        .instrument(span)
        .await;
}

/// Waits for a slot, executes, and records the outcome; the deadline and a cancel stop it
/// wherever it is (waiting, connecting, streaming).
async fn execute_request(
    shared: &Shared,
    request: Request,
    mut sink: ResponseSink,
    cancel: &CancellationToken,
) {
    let started = Instant::now();
    let kind = kind_label(request.kind);
    let deadline = deadline_instant(request.deadline_unix_ms);
    let ended = {
        let deadline_passed = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let work = async {
            let waiting = Gauged::new(&shared.metrics.queued);
            // The semaphore is never closed, so acquiring fails only in theory.
            let Ok(_slot) = shared.slots.acquire().await else {
                return Outcome::StreamClosed;
            };
            drop(waiting);
            let _running = Gauged::new(&shared.metrics.in_flight);
            shared.executor.execute(request, &mut sink).await
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Ended::Cancelled,
            _ = deadline_passed => Ended::Deadline,
            outcome = work => Ended::Done(outcome),
        }
    };
    let label = match ended {
        Ended::Cancelled | Ended::Done(Outcome::StreamClosed) => outcome::CANCELLED,
        Ended::Deadline => {
            let message = "the deadline passed before the answer was complete";
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = sink.error(ErrorCode::DeadlineExceeded, message) => {}
            }
            outcome::DEADLINE
        }
        Ended::Done(Outcome::Complete) => outcome::OK,
        Ended::Done(Outcome::Failed(ErrorCode::InvalidRequest)) => outcome::INVALID,
        Ended::Done(Outcome::Failed(_)) => outcome::UNREACHABLE,
    };
    let metrics = &shared.metrics;
    metrics
        .response_bytes
        .with_label_values(&[kind])
        .inc_by(sink.body_bytes());
    let elapsed = started.elapsed();
    metrics.finished(kind, label, elapsed.as_secs_f64());
    tracing::debug!(
        outcome = label,
        elapsed_ms = elapsed.as_millis() as u64,
        body_bytes = sink.body_bytes(),
        "request finished"
    );
}

/// Sends a heartbeat every `interval`, and at once after each ping (echoing its nonce).
async fn heartbeats(
    outbound: mpsc::Sender<AgentMessage>,
    interval: Duration,
    mut nonce: watch::Receiver<u64>,
    done: CancellationToken,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tick.tick() => {}
            changed = nonce.changed() => if changed.is_err() { return },
        }
        let message = AgentMessage {
            kind: Some(agent_message::Kind::Heartbeat(Heartbeat {
                sent_at_unix_ms: unix_ms(),
                ping_nonce: *nonce.borrow_and_update(),
            })),
        };
        tokio::select! {
            _ = done.cancelled() => return,
            sent = outbound.send(message) => if sent.is_err() { return },
        }
    }
}

/// Releases an admission when the request's task ends, however it ends.
struct Admitted(Arc<Shared>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Holds a gauge one higher while alive.
struct Gauged<'a>(&'a IntGauge);

impl<'a> Gauged<'a> {
    fn new(gauge: &'a IntGauge) -> Gauged<'a> {
        gauge.inc();
        Gauged(gauge)
    }
}

impl Drop for Gauged<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn kind_label(kind: i32) -> &'static str {
    match RequestKind::try_from(kind) {
        Ok(RequestKind::Kubernetes) => "kubernetes",
        Ok(RequestKind::Http) => "http",
        _ => "unknown",
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned map of tokens is still a usable map.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The caller's deadline (Unix milliseconds) as a local instant; `None` when it set none.
fn deadline_instant(unix_deadline_ms: u64) -> Option<Instant> {
    if unix_deadline_ms == 0 {
        return None;
    }
    let now_ms = unix_ms();
    let now = Instant::now();
    Some(now + Duration::from_millis(unix_deadline_ms.saturating_sub(now_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_kube_sim::{Faults, SimConfig};
    use ferry_proto::agent::response;

    /// A request task's world: an executor on a slow kube-sim (a simulator, not a cluster)
    /// and the outbound queue the task writes to.
    async fn slow_api() -> (ferry_kube_sim::RunningSim, Arc<Shared>) {
        let sim = ferry_kube_sim::start(SimConfig {
            faults: Faults {
                latency_ms: 5_000,
                ..Faults::default()
            },
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let kube = sim.client().await.unwrap();
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        let shared = Arc::new(Shared {
            executor: Executor::new(kube, None),
            metrics,
            slots: Arc::new(Semaphore::new(4)),
            admitted: AtomicUsize::new(0),
            max_admitted: 8,
            max_body: 1024,
            drain: Duration::from_secs(1),
        });
        (sim, shared)
    }

    fn list_namespaces(deadline_unix_ms: u64) -> Request {
        Request {
            request_id: "r-1".into(),
            kind: RequestKind::Kubernetes as i32,
            method: "GET".into(),
            target: "/api/v1/namespaces".into(),
            headers: vec![],
            body: bytes::Bytes::new(),
            body_complete: true,
            deadline_unix_ms,
            ..Request::default()
        }
    }

    #[tokio::test]
    async fn a_cancel_aborts_the_request_and_nothing_more_is_sent() {
        let (_sim, shared) = slow_api().await;
        let (tx, mut rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let task = {
            let shared = shared.clone();
            let cancel = cancel.clone();
            let sink = ResponseSink::new("r-1".into(), tx);
            tokio::spawn(
                async move { run_request(&shared, list_namespaces(0), sink, &cancel).await },
            )
        };
        ferry_testkit::eventually("the request to execute", Duration::from_secs(5), || async {
            (shared.metrics.in_flight.get() == 1).then_some(())
        })
        .await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the task ends at once")
            .unwrap();
        // The sink was dropped with the task: the queue is closed and empty.
        assert!(rx.recv().await.is_none());
        assert_eq!(shared.metrics.in_flight.get(), 0);
        let cancelled = shared
            .metrics
            .requests
            .with_label_values(&["kubernetes", outcome::CANCELLED])
            .get();
        assert_eq!(cancelled, 1);
    }

    #[tokio::test]
    async fn a_deadline_ends_the_request_with_deadline_exceeded() {
        let (_sim, shared) = slow_api().await;
        let (tx, mut rx) = mpsc::channel(16);
        let started = Instant::now();
        run_request(
            &shared,
            list_namespaces(unix_ms() + 300),
            ResponseSink::new("r-1".into(), tx),
            &CancellationToken::new(),
        )
        .await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        let message = rx.recv().await.expect("an error part");
        let Some(agent_message::Kind::Response(r)) = message.kind else {
            panic!("not a response: {message:?}");
        };
        assert_eq!(r.seq, 0);
        let Some(response::Part::Error(error)) = r.part else {
            panic!("not an error: {:?}", r.part);
        };
        assert_eq!(error.code, ErrorCode::DeadlineExceeded as i32);
        assert!(rx.recv().await.is_none(), "nothing after the error");
        assert_eq!(shared.metrics.in_flight.get(), 0);
    }

    #[tokio::test]
    async fn partial_bodies_are_bounded_by_the_admission_limit() {
        let (_sim, shared) = slow_api().await;
        let (tx, mut rx) = mpsc::channel(16);
        let mut session = Session {
            shared: shared.clone(),
            outbound: tx,
            cancels: Cancels::default(),
            partial: HashMap::new(),
            tasks: TaskTracker::new(),
            done: CancellationToken::new(),
            draining: false,
        };
        let started = |id: usize| Request {
            request_id: format!("r-{id}"),
            method: "POST".into(),
            body: bytes::Bytes::from_static(b"{"),
            body_complete: false,
            ..list_namespaces(0)
        };
        for id in 0..shared.max_admitted {
            session.request(started(id));
        }
        assert_eq!(session.partial.len(), shared.max_admitted);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), rx.recv())
                .await
                .is_err(),
            "nothing refused within the bound"
        );
        // One more is refused at once, the others are kept.
        session.request(started(shared.max_admitted));
        assert_eq!(session.partial.len(), shared.max_admitted);
        let message = rx.recv().await.expect("a refusal");
        let Some(agent_message::Kind::Response(r)) = message.kind else {
            panic!("not a response: {message:?}");
        };
        assert_eq!(r.request_id, format!("r-{}", shared.max_admitted));
        let Some(response::Part::Error(error)) = r.part else {
            panic!("not an error: {:?}", r.part);
        };
        assert!(error.message.contains("busy"), "{}", error.message);
    }

    #[test]
    fn deadlines_map_to_local_instants() {
        assert_eq!(deadline_instant(0), None);
        let past = deadline_instant(1).unwrap();
        assert!(past <= Instant::now());
        let soon = deadline_instant(unix_ms() + 60_000).unwrap();
        let left = soon - Instant::now();
        assert!(
            left > Duration::from_secs(58) && left <= Duration::from_secs(60),
            "{left:?}"
        );
    }
}
