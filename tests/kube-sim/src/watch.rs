//! Watch streams: newline-delimited JSON watch events for one resource, filtered by namespace
//! and selectors. `resourceVersion` unset or `0` starts with the current objects as ADDED
//! events; a specific version replays the kept history after it, or sends an ERROR event with
//! a `410 Expired` Status when that history was compacted (as the real API does). Bookmarks are
//! sent when `allowWatchBookmarks=true`, `sendInitialEvents=true` ends the initial state with
//! the `k8s.io/initial-events-end` bookmark, and `timeoutSeconds` ends the stream.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::error::ApiError;
use crate::objects::for_version;
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::SimState;
use crate::store::{Event, EventType};

/// Server-side cap on a watch's length when the client sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What a watch request asks for.
#[derive(Debug, Clone)]
pub(crate) struct WatchRequest {
    /// The served resource and version.
    pub rt: ResourceType,
    /// The version the client speaks.
    pub version: String,
    /// Namespace filter (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// `resourceVersion` (`None` for unset, empty or `0`).
    pub from: Option<u64>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// How events carry objects (a one-row Table for `kubectl get -w`, metadata only, or the
    /// object).
    pub view: crate::table::View,
}

impl WatchRequest {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns))
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    /// The watch event a store event becomes for this watch, if any: a modification that moves
    /// an object into or out of the selection becomes ADDED or DELETED.
    fn translate(&self, ev: &Event) -> Option<Value> {
        let now = self.matches(&ev.object);
        let kind = match ev.kind {
            EventType::Added if now => "ADDED",
            EventType::Deleted if now => "DELETED",
            EventType::Modified => {
                let before = ev.previous.as_ref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            _ => return None,
        };
        Some(self.event(kind, ev.object.clone()))
    }

    fn event(&self, kind: &str, obj: Value) -> Value {
        let obj = for_version(&self.rt, &self.version, obj);
        let obj = self.view.one(&self.rt, obj);
        json!({"type": kind, "object": obj})
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"type": "BOOKMARK", "object": {
            "kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": meta}})
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn gone(err: &ApiError) -> Value {
    json!({"type": "ERROR", "object": err.status()})
}

/// Starts a watch and returns its streaming response.
pub(crate) fn start(state: Arc<SimState>, req: WatchRequest) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let sub = state.store.subscribe(&req.rt.key(), req.from);
    tokio::spawn(async move {
        let mut sub = match sub {
            Ok(sub) => sub,
            Err(err) => {
                let _ = tx.send(line(&gone(&err))).await;
                return;
            }
        };
        let mut initial: Vec<&Value> = sub.initial.iter().filter(|o| req.matches(o)).collect();
        initial.sort_by_key(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
        });
        for obj in initial {
            if tx
                .send(line(&req.event("ADDED", obj.clone())))
                .await
                .is_err()
            {
                return;
            }
        }
        for ev in &sub.backlog {
            if let Some(out) = req.translate(ev)
                && tx.send(line(&out)).await.is_err()
            {
                return;
            }
        }
        if req.send_initial
            && req.bookmarks
            && tx.send(line(&req.bookmark(sub.rv, true))).await.is_err()
        {
            return;
        }
        let deadline = tokio::time::sleep(req.timeout.unwrap_or(DEFAULT_TIMEOUT));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(state.bookmark_interval);
        tick.tick().await;
        loop {
            let out = tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if req.bookmarks => {
                    match state.store.bookmark_rv(&sub.rx) {
                        Some(rv) => req.bookmark(rv, false),
                        None => continue,
                    }
                }
                ev = sub.rx.recv() => match ev {
                    Ok(ev) => match req.translate(&ev) {
                        Some(out) => out,
                        None => continue,
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // The watch fell behind the channel: like a compacted history, the
                        // client must relist.
                        let _ = tx.send(line(&gone(&ApiError::gone(sub.rv)))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(line(&out)).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    }));
    Response::builder()
        .header("content-type", "application/json")
        .header("cache-control", "no-cache")
        .body(body)
        .unwrap_or_else(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal("watch"))
        })
}
