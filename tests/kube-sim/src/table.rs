//! `meta.k8s.io/v1` Table output for `kubectl get` (which asks with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): name, a few kind-specific columns,
//! and age.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::resources::ResourceType;

/// Whether the client asked for a Table.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=Table"))
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
pub fn render(rt: &ResourceType, objects: &[Value], rv: Option<u64>) -> Value {
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
