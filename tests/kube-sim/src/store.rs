//! Object storage: JSON objects keyed by resource, namespace and name, a global monotonically
//! increasing resourceVersion, and per resource a bounded event log plus a broadcast channel
//! that watches read from. Every write happens under one lock, so events are totally ordered
//! and a watch that subscribes under the lock never misses or repeats an event.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{Notify, broadcast};

use crate::error::ApiError;

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was deleted (the event carries its last state).
    Deleted,
}

/// One change to one object.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// What happened.
    pub kind: EventType,
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// The object after the change (before it, for deletions).
    pub object: Value,
    /// The object before a modification, so selector watches can turn it into ADDED/DELETED.
    pub previous: Option<Value>,
}

/// Storage key of an object within a resource: (namespace, name); namespace empty when
/// cluster-scoped.
pub(crate) type ObjKey = (String, String);

struct Bucket {
    /// Shared, so the controller's listings cost reference counts rather than deep copies.
    objects: BTreeMap<ObjKey, Arc<Value>>,
    log: VecDeque<Arc<Event>>,
    /// Highest resourceVersion whose event was dropped from `log`.
    compacted: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Bucket {
    /// A bucket whose live-event channel holds `capacity` events. The channel keeps its last
    /// `capacity` events alive (whole objects) until they are overwritten, so it is sized like
    /// the history rather than generously: a watcher further behind ends and starts again.
    fn new(capacity: usize) -> Bucket {
        Bucket {
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            compacted: 0,
            tx: broadcast::channel(capacity).0,
        }
    }
}

struct Inner {
    rv: u64,
    buckets: HashMap<String, Bucket>,
    /// Bumped by every change that can make an orphan: a delete, or a write that sets or changes
    /// an object's owner references.
    ownership: u64,
}

/// A subscription to a resource's changes, taken atomically with a backlog.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// Events after the requested resourceVersion that are already in the log.
    pub backlog: Vec<Arc<Event>>,
    /// Current objects, when the watch asked for the initial state.
    pub initial: Vec<Value>,
    /// The resourceVersion at the moment of subscribing.
    pub rv: u64,
    /// Live events from here on.
    pub rx: broadcast::Receiver<Arc<Event>>,
}

/// The object store shared by the API handlers and the controller.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    history: usize,
    /// Capacity of each resource's live-event channel.
    channel: usize,
    changed: Notify,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

fn obj_key(obj: &Value) -> ObjKey {
    let meta = &obj["metadata"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (s(&meta["namespace"]), s(&meta["name"]))
}

/// Whether `obj` names owners.
fn has_owners(obj: &Value) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| !refs.is_empty())
}

impl Store {
    /// An empty store keeping `history` events per resource for watch resumption.
    pub(crate) fn new(history: usize) -> Store {
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                buckets: HashMap::new(),
                ownership: 0,
            }),
            history: history.max(1),
            channel: history.clamp(256, 4096),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write is a single insert
        // or remove), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resolves when any object changes (the controller's wake-up).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The current (latest) resourceVersion.
    pub(crate) fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub(crate) fn get(&self, res: &str, ns: &str, name: &str) -> Option<Value> {
        let inner = self.lock();
        inner
            .buckets
            .get(res)?
            .objects
            .get(&(ns.to_string(), name.to_string()))
            .map(|v| Value::clone(v))
    }

    /// All objects of a resource, in one namespace or all, with the resourceVersion of the list.
    pub(crate) fn list(&self, res: &str, ns: Option<&str>) -> (Vec<Value>, u64) {
        let (shared, rv) = self.list_shared(res, ns);
        (shared.iter().map(|v| Value::clone(v)).collect(), rv)
    }

    /// [`Store::list`] without copying the objects (for the controller's frequent passes).
    pub(crate) fn list_shared(&self, res: &str, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = match inner.buckets.get(res) {
            Some(b) => b
                .objects
                .iter()
                .filter(|((n, _), _)| ns.is_none_or(|want| want == n))
                .map(|(_, v)| v.clone())
                .collect(),
            None => Vec::new(),
        };
        (items, inner.rv)
    }

    fn record(&self, inner: &mut Inner, res: &str, event: Event) {
        let bucket = inner
            .buckets
            .entry(res.to_string())
            .or_insert_with(|| Bucket::new(self.channel));
        let event = Arc::new(event);
        bucket.log.push_back(event.clone());
        while bucket.log.len() > self.history {
            if let Some(old) = bucket.log.pop_front() {
                bucket.compacted = old.rv;
            }
        }
        // No receivers is normal; watches subscribe and unsubscribe freely.
        let _ = bucket.tx.send(event);
        // notify_one keeps a permit, so a change made while the controller is busy is not lost.
        self.changed.notify_one();
    }

    /// Inserts a new object; `make` gets the new resourceVersion and returns the object to
    /// store (it fails with AlreadyExists if the key is taken).
    pub(crate) fn create(
        &self,
        res: &str,
        obj: Value,
        exists: impl FnOnce(&Value) -> ApiError,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let key = obj_key(&obj);
        if let Some(b) = inner.buckets.get(res)
            && b.objects.contains_key(&key)
        {
            return Err(exists(&obj));
        }
        inner.rv += 1;
        let rv = inner.rv;
        if has_owners(&obj) {
            inner.ownership += 1;
        }
        let mut obj = obj;
        obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        inner
            .buckets
            .entry(res.to_string())
            .or_insert_with(|| Bucket::new(self.channel))
            .objects
            .insert(key, Arc::new(obj.clone()));
        self.record(
            &mut inner,
            res,
            Event {
                kind: EventType::Added,
                rv,
                object: obj.clone(),
                previous: None,
            },
        );
        Ok(obj)
    }

    /// Read-modify-write of one object under the store lock. `f` gets the current object (or
    /// `None`) and returns the new one; an unchanged result writes nothing and keeps the
    /// resourceVersion, as the real API server does for no-op updates.
    pub(crate) fn modify(
        &self,
        res: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<(Value, bool), ApiError> {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let current = inner
            .buckets
            .get(res)
            .and_then(|b| b.objects.get(&key))
            .cloned();
        let mut new = f(current.as_deref())?;
        if let Some(cur) = &current {
            let mut probe = new.clone();
            probe["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
            if probe == **cur {
                return Ok((Value::clone(cur), false));
            }
        }
        inner.rv += 1;
        let rv = inner.rv;
        let owners_before = current
            .as_deref()
            .map(|c| &c["metadata"]["ownerReferences"]);
        if has_owners(&new) && owners_before != Some(&new["metadata"]["ownerReferences"]) {
            inner.ownership += 1;
        }
        new["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        inner
            .buckets
            .entry(res.to_string())
            .or_insert_with(|| Bucket::new(self.channel))
            .objects
            .insert(key, Arc::new(new.clone()));
        let kind = if current.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(
            &mut inner,
            res,
            Event {
                kind,
                rv,
                object: new.clone(),
                previous: current.map(Arc::unwrap_or_clone),
            },
        );
        Ok((new, true))
    }

    /// Removes an object, returning its last state.
    pub(crate) fn delete(&self, res: &str, ns: &str, name: &str) -> Option<Value> {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let mut obj = Arc::unwrap_or_clone(inner.buckets.get_mut(res)?.objects.remove(&key)?);
        inner.rv += 1;
        inner.ownership += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.record(
            &mut inner,
            res,
            Event {
                kind: EventType::Deleted,
                rv,
                object: obj.clone(),
                previous: None,
            },
        );
        Some(obj)
    }

    /// Every object (with its resource key) whose `ownerReferences` name `uid`.
    pub(crate) fn dependents(&self, uid: &str) -> Vec<(String, Value)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (res, b) in &inner.buckets {
            for obj in b.objects.values() {
                let refs = obj["metadata"]["ownerReferences"].as_array();
                if refs
                    .into_iter()
                    .flatten()
                    .any(|r| r["uid"].as_str() == Some(uid))
                {
                    out.push((res.clone(), Value::clone(obj)));
                }
            }
        }
        out
    }

    /// A number that changes whenever an orphan may have appeared (see [`Store::orphans`]): the
    /// garbage collector need not look while it stays the same.
    pub(crate) fn ownership(&self) -> u64 {
        self.lock().ownership
    }

    /// Every object (with its resource key) that has owner references and none of whose owners
    /// exists any more: what the garbage collector deletes.
    pub(crate) fn orphans(&self) -> Vec<(String, Value)> {
        let inner = self.lock();
        let uids: std::collections::HashSet<&str> = inner
            .buckets
            .values()
            .flat_map(|b| b.objects.values())
            .filter_map(|o| o["metadata"]["uid"].as_str())
            .collect();
        let mut out = Vec::new();
        for (res, b) in &inner.buckets {
            for obj in b.objects.values() {
                let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
                    continue;
                };
                if !refs.is_empty()
                    && refs
                        .iter()
                        .all(|r| !r["uid"].as_str().is_some_and(|u| uids.contains(u)))
                {
                    out.push((res.clone(), Value::clone(obj)));
                }
            }
        }
        out
    }

    /// Every namespaced object in namespace `ns`, with its resource key.
    pub(crate) fn in_namespace(&self, ns: &str) -> Vec<(String, Value)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (res, b) in &inner.buckets {
            for ((n, _), obj) in &b.objects {
                if n == ns {
                    out.push((res.clone(), Value::clone(obj)));
                }
            }
        }
        out
    }

    /// Subscribes to a resource's events after `from` (`None`: from now, with the current
    /// objects as the initial state). Fails with 410 when events after `from` were compacted.
    pub(crate) fn subscribe(&self, res: &str, from: Option<u64>) -> Result<Subscription, ApiError> {
        let mut inner = self.lock();
        let rv = inner.rv;
        let bucket = inner
            .buckets
            .entry(res.to_string())
            .or_insert_with(|| Bucket::new(self.channel));
        let rx = bucket.tx.subscribe();
        match from {
            None => Ok(Subscription {
                backlog: Vec::new(),
                initial: bucket.objects.values().map(|v| Value::clone(v)).collect(),
                rv,
                rx,
            }),
            Some(from) if from < bucket.compacted => Err(ApiError::gone(from)),
            Some(from) => Ok(Subscription {
                backlog: bucket.log.iter().filter(|e| e.rv > from).cloned().collect(),
                initial: Vec::new(),
                rv,
                rx,
            }),
        }
    }

    /// The current resourceVersion if no event of `res` is waiting in `rx` (a safe bookmark:
    /// resuming from it misses nothing this watch has not delivered yet).
    pub(crate) fn bookmark_rv(&self, rx: &broadcast::Receiver<Arc<Event>>) -> Option<u64> {
        let inner = self.lock();
        rx.is_empty().then_some(inner.rv)
    }

    /// Whether events after `from` of resource `res` have been compacted away (list with an
    /// exact old resourceVersion).
    pub(crate) fn compacted_after(&self, res: &str, from: u64) -> bool {
        let inner = self.lock();
        inner.buckets.get(res).is_some_and(|b| from < b.compacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}})
    }

    #[test]
    fn history_is_bounded_and_old_versions_are_gone() {
        let store = Store::new(2);
        let conflict = |_: &Value| ApiError::conflict("exists");
        let first = store.create("/pods", obj("a"), conflict).unwrap();
        let first_rv: u64 = first["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        store.create("/pods", obj("b"), conflict).unwrap();
        store.create("/pods", obj("c"), conflict).unwrap();
        assert_eq!(
            store
                .subscribe("/pods", Some(first_rv - 1))
                .unwrap_err()
                .code,
            410
        );
        let sub = store.subscribe("/pods", Some(first_rv)).unwrap();
        assert_eq!(sub.backlog.len(), 2);
        assert!(store.create("/pods", obj("a"), conflict).is_err());
    }

    #[test]
    fn no_op_modify_keeps_the_resource_version() {
        let store = Store::new(10);
        store
            .create("/cm", obj("a"), |_| ApiError::conflict("x"))
            .unwrap();
        let rv = store.current_rv();
        let (_, changed) = store
            .modify("/cm", "default", "a", |cur| Ok(cur.unwrap().clone()))
            .unwrap();
        assert!(!changed);
        assert_eq!(store.current_rv(), rv);
    }
}
