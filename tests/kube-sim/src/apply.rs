//! Server-side apply and field ownership (`metadata.managedFields`, FieldsV1).
//!
//! Simplifications, documented because they differ from the real API server:
//! - Field paths come from the object itself: maps are walked field by field, lists of the
//!   built-in kinds with a merge key (see `patch::merge_key`) are associative with a single-key
//!   `k:{...}` element (the real server uses two keys for container ports), every other list is
//!   atomic; custom resources have no schema so all their lists are atomic (as for CRDs without
//!   `x-kubernetes-list-type`).
//! - A conflict is a field in the applied configuration that another manager (apply or update)
//!   owns with a different value; equal values become shared ownership; `force` takes conflicting
//!   fields away from their owners.
//! - A field the applier owned before and no longer applies is removed when no other manager
//!   owns it.
//! - Non-apply writes (create, replace, patch) move ownership of every changed field to their
//!   field manager, as an `Update` entry. Controller status writes are not tracked.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::patch::{merge_key, strategic_merge};

/// A field path in FieldsV1 notation (`f:spec`, `k:{"name":"app"}`, ...).
pub(crate) type FieldPath = Vec<String>;

/// Metadata fields the server owns; never part of a field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "selfLink",
];

/// Every leaf (and associative-list item) of `obj` with its value.
pub(crate) fn leaves(obj: &Value, builtin: bool) -> BTreeMap<FieldPath, Value> {
    let mut out = BTreeMap::new();
    let Some(top) = obj.as_object() else {
        return out;
    };
    for (k, v) in top {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        let mut path = vec![format!("f:{k}")];
        if k == "metadata" {
            for (mk, mv) in v.as_object().into_iter().flatten() {
                if SERVER_METADATA.contains(&mk.as_str()) {
                    continue;
                }
                path.push(format!("f:{mk}"));
                walk(mv, Some(mk), &mut path, &mut out, builtin);
                path.pop();
            }
        } else {
            walk(v, Some(k), &mut path, &mut out, builtin);
        }
    }
    out
}

fn walk(
    v: &Value,
    field: Option<&str>,
    path: &mut FieldPath,
    out: &mut BTreeMap<FieldPath, Value>,
    builtin: bool,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                path.push(format!("f:{k}"));
                walk(c, Some(k), path, out, builtin);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let key = field.and_then(|f| merge_key(f, items, builtin));
            match key {
                Some(key) if items.iter().all(|i| i.get(key).is_some()) => {
                    for item in items {
                        let id = json!({ key: item[key] });
                        path.push(format!("k:{id}"));
                        out.insert(path.clone(), id);
                        if let Some(m) = item.as_object() {
                            for (k, c) in m {
                                path.push(format!("f:{k}"));
                                walk(c, Some(k), path, out, builtin);
                                path.pop();
                            }
                        }
                        path.pop();
                    }
                }
                _ => {
                    out.insert(path.clone(), v.clone());
                }
            }
        }
        _ => {
            out.insert(path.clone(), v.clone());
        }
    }
}

/// A field set as a FieldsV1 tree.
pub(crate) fn to_fields_v1(set: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for seg in path {
            node = node
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("field tree nodes are objects");
        }
        if !node.is_empty()
            || set
                .iter()
                .any(|p| p.len() > path.len() && p.starts_with(path))
        {
            node.insert(".".to_string(), json!({}));
        }
    }
    Value::Object(root)
}

/// A FieldsV1 tree as a field set.
pub(crate) fn from_fields_v1(tree: &Value) -> BTreeSet<FieldPath> {
    fn go(node: &Map<String, Value>, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        for (k, child) in node {
            if k == "." {
                out.insert(path.clone());
                continue;
            }
            path.push(k.clone());
            match child.as_object() {
                Some(m) if !m.is_empty() => go(m, path, out),
                _ => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    if let Some(m) = tree.as_object() {
        go(m, &mut Vec::new(), &mut out);
    }
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    fields: BTreeSet<FieldPath>,
}

fn read_entries(obj: Option<&Value>) -> Vec<Entry> {
    let Some(list) = obj.and_then(|o| o["metadata"]["managedFields"].as_array()) else {
        return Vec::new();
    };
    list.iter()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().to_string(),
            operation: e["operation"].as_str().unwrap_or("Update").to_string(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: e["time"].as_str().unwrap_or_default().to_string(),
            subresource: e["subresource"].as_str().map(str::to_string),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(sub) = e.subresource {
                v["subresource"] = Value::String(sub);
            }
            v
        })
        .collect();
    if list.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(list);
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Renders a path as the real API does in conflict messages: `.spec.replicas`,
/// `.spec.containers[name="app"].image`.
fn display(path: &FieldPath) -> String {
    let mut s = String::new();
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let obj: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let inner: Vec<String> = obj
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!("[{}]", inner.join(",")));
        }
    }
    s
}

/// Removes the field at `path` from `obj` (missing paths are ignored).
fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parents {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = seg.strip_prefix("k:") {
            let id: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            cur.as_array_mut()
                .and_then(|items| items.iter_mut().find(|i| item_matches(i, &id)))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        let id: Value = serde_json::from_str(k).unwrap_or(Value::Null);
        if let Some(items) = cur.as_array_mut() {
            items.retain(|i| !item_matches(i, &id));
        }
    }
}

fn item_matches(item: &Value, id: &Value) -> bool {
    id.as_object()
        .is_some_and(|m| m.iter().all(|(k, v)| item.get(k) == Some(v)))
}

/// What a server-side apply request asks for.
#[derive(Debug, Clone)]
pub(crate) struct ApplyRequest<'a> {
    /// The field manager (required by the API for apply).
    pub manager: &'a str,
    /// Take conflicting fields from their owners.
    pub force: bool,
    /// `apiVersion` recorded in the managedFields entry.
    pub api_version: &'a str,
    /// Whether list merge keys of the built-in kinds apply.
    pub builtin: bool,
    /// `Some("status")` when applying to the status subresource.
    pub subresource: Option<&'a str>,
}

/// Server-side apply of `applied` onto `live` (`None`: the object does not exist yet). Returns
/// the merged object with updated `managedFields`; the caller handles the rest of metadata.
pub(crate) fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    req: &ApplyRequest<'_>,
) -> Result<Value, ApiError> {
    let applied_leaves = leaves(applied, req.builtin);
    let live_leaves = live.map(|l| leaves(l, req.builtin)).unwrap_or_default();
    let mut entries = read_entries(live);
    let is_mine = |e: &Entry| {
        e.manager == req.manager
            && e.operation == "Apply"
            && e.subresource.as_deref() == req.subresource
    };

    let mut conflicts: Vec<(usize, FieldPath)> = Vec::new();
    for (i, entry) in entries.iter().enumerate().filter(|(_, e)| !is_mine(e)) {
        for path in entry
            .fields
            .iter()
            .filter(|p| applied_leaves.contains_key(*p))
        {
            if live_leaves.get(path) != applied_leaves.get(path) {
                conflicts.push((i, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(i, p)| {
                json!({"reason": "FieldManagerConflict",
                       "message": format!("conflict with \"{}\"", entries[*i].manager),
                       "field": display(p)})
            })
            .collect();
        // Worded as the real API server words it.
        let message = match conflicts.as_slice() {
            [(i, p)] => format!(
                "Apply failed with 1 conflict: conflict with \"{}\" using {}: {}",
                entries[*i].manager,
                entries[*i].api_version,
                display(p)
            ),
            many => {
                let lines: Vec<String> = many
                    .iter()
                    .map(|(i, p)| {
                        format!(
                            "- {}: conflict with \"{}\"",
                            display(p),
                            entries[*i].manager
                        )
                    })
                    .collect();
                format!(
                    "Apply failed with {} conflicts:\n{}",
                    many.len(),
                    lines.join("\n")
                )
            }
        };
        return Err(ApiError::conflict(message).with_details(json!({"causes": causes})));
    }
    for (i, path) in &conflicts {
        entries[*i].fields.remove(path);
    }

    let previous: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| is_mine(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut merged = live.cloned().unwrap_or_else(|| json!({}));
    let mut dropped: Vec<&FieldPath> = previous
        .iter()
        .filter(|p| !applied_leaves.contains_key(*p))
        .filter(|p| !entries.iter().any(|e| !is_mine(e) && e.fields.contains(*p)))
        .collect();
    // Deepest first, so removing a list item never hides a field still to be removed.
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in dropped {
        remove_path(&mut merged, path);
    }
    let mut config = applied.clone();
    if let Some(meta) = config["metadata"].as_object_mut() {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    strategic_merge(&mut merged, &config, req.builtin);

    entries.retain(|e| !is_mine(e));
    entries.push(Entry {
        manager: req.manager.to_string(),
        operation: "Apply".to_string(),
        api_version: req.api_version.to_string(),
        time: now(),
        subresource: req.subresource.map(str::to_string),
        fields: applied_leaves.into_keys().collect(),
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Records a non-apply write by `manager`: every field that changed between `old` and `new`
/// moves to the manager's `Update` entry; fields that disappeared leave every entry.
pub(crate) fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    builtin: bool,
    subresource: Option<&str>,
) {
    let old_leaves = old.map(|o| leaves(o, builtin)).unwrap_or_default();
    let new_leaves = leaves(new, builtin);
    let changed: BTreeSet<FieldPath> = new_leaves
        .iter()
        .filter(|(p, v)| old_leaves.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    let mut entries = read_entries(old);
    for e in &mut entries {
        e.fields
            .retain(|p| new_leaves.contains_key(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let pos = entries.iter().position(|e| {
            e.manager == manager
                && e.operation == "Update"
                && e.subresource.as_deref() == subresource
        });
        let entry = match pos {
            Some(i) => &mut entries[i],
            None => {
                entries.push(Entry {
                    manager: manager.to_string(),
                    operation: "Update".to_string(),
                    api_version: api_version.to_string(),
                    time: String::new(),
                    subresource: subresource.map(str::to_string),
                    fields: BTreeSet::new(),
                });
                entries.last_mut().expect("just pushed")
            }
        };
        entry.time = now();
        entry.fields.extend(changed);
    }
    write_entries(new, entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(manager: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            manager,
            force,
            api_version: "apps/v1",
            builtin: true,
            subresource: None,
        }
    }

    #[test]
    fn fields_v1_round_trips() {
        let obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "app", "image": "i"}]}});
        let set: BTreeSet<FieldPath> = leaves(&obj, true).into_keys().collect();
        let tree = to_fields_v1(&set);
        assert_eq!(
            tree["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["."],
            json!({})
        );
        assert_eq!(from_fields_v1(&tree), set);
    }

    #[test]
    fn apply_conflicts_then_force_takes_ownership() {
        let a = json!({"spec": {"replicas": 2, "paused": false}});
        let live = server_side_apply(None, &a, &req("alice", false)).unwrap();
        let b = json!({"spec": {"replicas": 3}});
        let err = server_side_apply(Some(&live), &b, &req("bob", false)).unwrap_err();
        assert_eq!(err.code, 409);
        assert!(err.message.contains(".spec.replicas"), "{}", err.message);
        let same = json!({"spec": {"replicas": 2}});
        assert!(server_side_apply(Some(&live), &same, &req("bob", false)).is_ok());
        let forced = server_side_apply(Some(&live), &b, &req("bob", true)).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        // alice stops applying `paused`: nobody else owns it, so it goes away.
        let again =
            server_side_apply(Some(&forced), &json!({"spec": {}}), &req("alice", false)).unwrap();
        assert!(again["spec"].get("paused").is_none());
        assert_eq!(again["spec"]["replicas"], 3);
    }
}
