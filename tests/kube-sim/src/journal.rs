//! The simulator's journal (off unless [`crate::SimConfig::journal`] is set): a timeline of what
//! reached the API (method and path with query, at arrival) and of Pods turning Ready (when the
//! controller wrote the Ready status), in one process-local monotonic clock. A benchmark reads it
//! to tell how long a client took to act on readiness, without instrumenting the client.
//!
//! Bounded: past [`Journal::CAPACITY`] entries, new ones are counted as dropped instead of kept.

use std::sync::Mutex;
use std::time::Instant;

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request reached the API (after authentication). `watch` when it asked for a watch.
    Request {
        method: String,
        path: String,
        watch: bool,
    },
    /// The controller marked Pod `namespace/name` Ready.
    PodReady { namespace: String, name: String },
}

impl Event {
    /// Whether the request changes something (POST, PUT, PATCH, DELETE).
    pub fn is_write(&self) -> bool {
        matches!(self, Event::Request { method, .. }
            if matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
    }
}

/// An event and when it happened.
#[derive(Clone, Debug)]
pub struct Entry {
    pub at: Instant,
    pub event: Event,
}

/// The timeline, shared by the HTTP layer and the controller.
#[derive(Debug, Default)]
pub struct Journal {
    /// Fixed when the simulator starts.
    enabled: bool,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Entry>,
    dropped: u64,
}

impl Journal {
    /// The most entries kept.
    pub const CAPACITY: usize = 1_000_000;

    /// A journal that records when `enabled`.
    pub fn new(enabled: bool) -> Journal {
        Journal {
            enabled,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether it records.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records `event` now.
    pub fn record(&self, event: Event) {
        if !self.enabled {
            return;
        }
        let at = Instant::now();
        let mut inner = self.lock();
        if inner.entries.len() >= Self::CAPACITY {
            inner.dropped += 1;
            return;
        }
        inner.entries.push(Entry { at, event });
    }

    /// Takes what was recorded so far (the journal starts empty again) and how many entries were
    /// dropped for want of room.
    pub fn take(&self) -> (Vec<Entry>, u64) {
        let mut inner = self.lock();
        let dropped = std::mem::take(&mut inner.dropped);
        (std::mem::take(&mut inner.entries), dropped)
    }
}

/// Whether a request's query asks for a watch (`watch=true` or `watch=1`).
pub fn is_watch(path: &str, query: Option<&str>) -> bool {
    path.contains("/watch/")
        || query.is_some_and(|q| {
            q.split('&')
                .any(|pair| matches!(pair, "watch=true" | "watch=1"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_when_enabled_and_up_to_capacity() {
        let off = Journal::new(false);
        off.record(Event::PodReady {
            namespace: "n".into(),
            name: "p".into(),
        });
        assert!(off.take().0.is_empty());

        let on = Journal::new(true);
        on.record(Event::Request {
            method: "PATCH".into(),
            path: "/apis/apps/v1/namespaces/n/replicasets/a".into(),
            watch: false,
        });
        let (entries, dropped) = on.take();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].event.is_write());
        assert_eq!(dropped, 0);
        assert!(on.take().0.is_empty(), "take empties the journal");
    }

    #[test]
    fn watches_are_told_by_their_query() {
        assert!(is_watch("/api/v1/pods", Some("labelSelector=a&watch=true")));
        assert!(is_watch("/api/v1/watch/pods", None));
        assert!(!is_watch("/api/v1/pods", Some("watchful=true")));
        assert!(!is_watch("/api/v1/pods", None));
    }
}
