//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/{group}` and the resource list of
//! each group version, in the legacy (non-aggregated) format, which kubectl and kube-rs accept
//! when the aggregated `apidiscovery.k8s.io/v2` format is not offered.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceType};

/// `/version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-kube-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`: the core group's versions.
pub(crate) fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    })
}

fn group(name: &str, versions: &[String]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
}

/// `/apis`: all named groups.
pub(crate) fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry.groups().iter().map(|(g, v)| group(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`, or `None` when the group is not served.
pub(crate) fn group_doc(registry: &Registry, name: &str) -> Option<Value> {
    let groups = registry.groups();
    let (g, v) = groups.iter().find(|(g, _)| g == name)?;
    let mut doc = group(g, v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Whether `kubectl get all` lists the resource (the real `all` category).
fn in_all(t: &ResourceType) -> bool {
    t.builtin
        && matches!(
            t.plural.as_str(),
            "pods"
                | "services"
                | "deployments"
                | "replicasets"
                | "statefulsets"
                | "horizontalpodautoscalers"
        )
}

fn resource_entry(t: &ResourceType) -> Vec<Value> {
    let mut out = vec![json!({
        "name": t.plural,
        "singularName": t.singular(),
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": VERBS,
        "shortNames": t.short_names,
        "categories": if in_all(t) { json!(["all"]) } else { json!([]) },
    })];
    if t.status {
        out.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                        "kind": t.kind, "verbs": ["get", "patch", "update"]}));
    }
    if t.scale {
        out.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced,
                        "group": "autoscaling", "version": "v1", "kind": "Scale",
                        "verbs": ["get", "patch", "update"]}));
    }
    out
}

/// The `APIResourceList` of a group version, or `None` when nothing is served there.
pub(crate) fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = types.into_iter().flat_map(resource_entry).collect();
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}
