//! `GET /v1/deployments/{id}/events`: the deployment's events as server-sent events, read from
//! the store's events table. Each event's `id:` is its sequence number, so a client that
//! reconnects with `Last-Event-ID` resumes right after the last event it saw. New events are
//! found by polling the table at a short interval; the stream ends once the deployment has
//! ended and every event is sent, and sends keep-alive comments while idle. It also ends when
//! the caller's token expires or its credential is revoked (checked at every poll): the client
//! reconnects with a fresh token and resumes where it was.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use ferry_store::deployments;
use ferry_store::events::{self, Event};
use ferry_store::{DeploymentId, Store, TenantId};
use futures::{Stream, StreamExt};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events read per query.
const BATCH: i64 = 200;

/// The header a reconnecting `EventSource` sends.
const LAST_EVENT_ID: &str = "last-event-id";

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/deployments/{id}/events", get(stream_events))
}

/// Streams the deployment's events (`text/event-stream`): `id:` is the event's sequence
/// number, `event:` its kind, `data:` the event as JSON.
#[utoipa::path(get, path = "/v1/deployments/{id}/events", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event sequence number")),
    responses((status = 200, description = "text/event-stream of the deployment's events", content_type = "text/event-stream"),
        (status = 404, description = "No such deployment in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
async fn stream_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = match headers.get(LAST_EVENT_ID) {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|seq| *seq >= 0)
            .ok_or_else(|| {
                ApiError::BadRequest("Last-Event-ID must be an event sequence number".into())
            })?,
    };
    let stream = open(&state, &principal, id, after)
        .await?
        .filter_map(|item| async move {
            match item {
                Tailed::Event(event) => Some(Ok(to_sse(&event))),
                Tailed::Finished => None,
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(state.api.events_keep_alive)))
}

/// What a deployment's event stream yields.
#[derive(Debug)]
pub(crate) enum Tailed {
    /// The next event.
    Event(Event),
    /// The deployment ended and every event was yielded; nothing follows.
    Finished,
}

/// The deployment's events after `after`, as they are written, for a caller who may read
/// (the REST stream above and the web UI's live pages share it). Checked before answering, so a
/// missing (or foreign) deployment is a 404, not an empty stream.
pub(crate) async fn open(
    state: &AppState,
    principal: &Principal,
    id: DeploymentId,
    after: i64,
) -> Result<impl Stream<Item = Tailed> + use<>, ApiError> {
    principal.can_read()?;
    deployments::get(&state.store, principal.tenant, id).await?;
    let tail = Tail {
        store: state.store.clone(),
        state: state.clone(),
        principal: principal.clone(),
        tenant: principal.tenant,
        deployment: id,
        after,
        pending: VecDeque::new(),
        poll: state.api.events_poll,
        shutdown: state.api.shutdown.clone(),
        finished: false,
        finish_told: false,
    };
    Ok(futures::stream::unfold(tail, |mut tail| async move {
        let item = tail.next().await?;
        Some((item, tail))
    }))
}

/// The position of one stream in the deployment's events.
struct Tail {
    store: Store,
    /// For the caller's token checks.
    state: AppState,
    /// The caller, whose token must still stand for the stream to go on.
    principal: Principal,
    tenant: TenantId,
    deployment: DeploymentId,
    /// The last sequence number sent (or the client's `Last-Event-ID`).
    after: i64,
    /// Read but not yet sent.
    pending: VecDeque<Event>,
    poll: Duration,
    shutdown: CancellationToken,
    /// The deployment ended and everything up to its end was read.
    finished: bool,
    /// [`Tailed::Finished`] was yielded.
    finish_told: bool,
}

impl Tail {
    /// The next event, waiting for one to be written; `None` ends the stream.
    async fn next(&mut self) -> Option<Tailed> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.after = event.seq;
                return Some(Tailed::Event(event));
            }
            if self.finished && !self.finish_told {
                self.finish_told = true;
                return Some(Tailed::Finished);
            }
            if self.finished || self.shutdown.is_cancelled() {
                return None;
            }
            if !self.principal.still_valid(&self.state).await {
                tracing::info!("event stream ended: the caller's token expired or was revoked");
                return None;
            }
            match self.fill().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(
                        error = %crate::identity::keys::error_chain(&error),
                        "event stream stopped"
                    );
                    return None;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = self.shutdown.cancelled() => return None,
            }
        }
    }

    /// Reads what follows `after`; `Ok(true)` when something was read.
    async fn fill(&mut self) -> Result<bool, ferry_store::StoreError> {
        // The status is read before the events: every event committed before the deployment
        // ended is then in the read that follows, and nothing is missed at the end.
        let ended = deployments::get(&self.store, self.tenant, self.deployment)
            .await?
            .status
            .is_terminal();
        let batch =
            events::list_after(&self.store, self.tenant, self.deployment, self.after, BATCH)
                .await?;
        let full = batch.len() as i64 >= BATCH;
        let read = !batch.is_empty();
        self.pending.extend(batch);
        if ended && !full {
            self.finished = true;
        }
        Ok(read || self.finished)
    }
}

pub(crate) fn to_sse(event: &Event) -> SseEvent {
    let data = serde_json::json!({
        "seq": event.seq,
        "kind": event.kind,
        "target": event.target_name,
        "payload": event.payload.0,
        "createdAt": event.created_at,
    });
    SseEvent::default()
        .id(event.seq.to_string())
        .event(event.kind.as_str())
        .data(data.to_string())
}
