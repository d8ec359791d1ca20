//! Alternative views of objects: `meta.k8s.io/v1` Tables for `kubectl get` (which asks with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: name, a few kind-specific columns,
//! and age) and `PartialObjectMetadata` for metadata-only clients.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::resources::ResourceType;

/// How the client asked to see objects (from `Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// The objects themselves.
    Object,
    /// A `meta.k8s.io/v1` Table (`kubectl get`).
    Table,
    /// `PartialObjectMetadata` (kube-rs `get_metadata`, `metadata_watcher`).
    Metadata,
}

impl View {
    /// The view the `Accept` header asks for.
    pub(crate) fn from_headers(headers: &HeaderMap) -> View {
        let accept: Vec<&str> = headers
            .get_all("accept")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if accept.iter().any(|v| v.contains("as=Table")) {
            View::Table
        } else if accept
            .iter()
            .any(|v| v.contains("as=PartialObjectMetadata"))
        {
            View::Metadata
        } else {
            View::Object
        }
    }

    /// One object (a get or a watch event) in this view.
    pub(crate) fn one(self, rt: &ResourceType, obj: Value) -> Value {
        match self {
            View::Object => obj,
            View::Table => render(rt, &[obj], None),
            View::Metadata => partial(&obj),
        }
    }

    /// A list in this view; `list` is the plain list document.
    pub(crate) fn list(self, rt: &ResourceType, list: Value) -> Value {
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok());
        match self {
            View::Object => list,
            View::Table => render(rt, &items, rv),
            View::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list["metadata"],
                "items": items.iter().map(partial).collect::<Vec<_>>(),
            }),
        }
    }
}

/// An object's `PartialObjectMetadata`.
fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

fn age(obj: &Value) -> String {
    let Some(created) = obj["metadata"]["creationTimestamp"].as_str() else {
        return "<unknown>".into();
    };
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn columns(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["Name", "Ready", "Status", "Restarts", "Age"],
        "Deployment" => &["Name", "Ready", "Up-to-date", "Available", "Age"],
        "ReplicaSet" => &["Name", "Desired", "Current", "Ready", "Age"],
        "StatefulSet" => &["Name", "Ready", "Age"],
        "Service" => &["Name", "Type", "Cluster-IP", "Ports", "Age"],
        "Namespace" => &["Name", "Status", "Age"],
        _ => &["Name", "Age"],
    }
}

fn cells(kind: &str, o: &Value) -> Vec<Value> {
    let name = o["metadata"]["name"].clone();
    let (spec, status) = (&o["spec"], &o["status"]);
    let mid: Vec<Value> = match kind {
        "Pod" => {
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let statuses = status["containerStatuses"].as_array();
            let ready = statuses
                .into_iter()
                .flatten()
                .filter(|c| c["ready"] == true)
                .count();
            let waiting = statuses
                .into_iter()
                .flatten()
                .find_map(|c| c["state"]["waiting"]["reason"].as_str())
                .map(str::to_string);
            let phase = status["phase"].as_str().unwrap_or("Pending").to_string();
            vec![
                json!(format!("{ready}/{total}")),
                json!(waiting.unwrap_or(phase)),
                json!(0),
            ]
        }
        "Deployment" => vec![
            json!(format!(
                "{}/{}",
                int(&status["readyReplicas"]),
                int(&spec["replicas"])
            )),
            json!(int(&status["updatedReplicas"])),
            json!(int(&status["availableReplicas"])),
        ],
        "ReplicaSet" => vec![
            json!(int(&spec["replicas"])),
            json!(int(&status["replicas"])),
            json!(int(&status["readyReplicas"])),
        ],
        "StatefulSet" => {
            vec![json!(format!(
                "{}/{}",
                int(&status["readyReplicas"]),
                int(&spec["replicas"])
            ))]
        }
        "Service" => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{}/{}",
                        int(&p["port"]),
                        p["protocol"].as_str().unwrap_or("TCP")
                    )
                })
                .collect();
            vec![
                spec["type"].clone(),
                spec["clusterIP"].clone(),
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                }),
            ]
        }
        "Namespace" => vec![status["phase"].clone()],
        _ => vec![],
    };
    let mut row = vec![name];
    row.extend(mid);
    row.push(json!(age(o)));
    row
}

/// A Table of `objects` (each row carries its object, as `includeObject=Object` asks).
pub(crate) fn render(rt: &ResourceType, objects: &[Value], rv: Option<u64>) -> Value {
    let defs: Vec<Value> = columns(&rt.kind)
        .iter()
        .map(|c| {
            let format = if *c == "Name" { "name" } else { "" };
            json!({"name": c, "type": "string", "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| json!({"cells": cells(&rt.kind, o), "object": o}))
        .collect();
    let mut meta = json!({});
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv.to_string());
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows})
}
