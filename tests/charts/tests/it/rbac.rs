//! The agent's RBAC against what svc-scheduler actually calls through it.
//!
//! The calls are read from svc-scheduler's source ([`ferry_chart_tests::kube_calls`]): typed
//! `Api<ReplicaSet>` and the like, the mesh objects of a fixed table, and the objects applied by
//! their own `apiVersion`/`kind` (found by discovery). Which kinds reach the last ones is data,
//! not code: [`DYNAMIC_KINDS`] below lists them with the functions that send them, and the test
//! checks that list against who calls the apply functions. The chart's rules must then grant
//! exactly these verbs on exactly these resources: nothing missing, nothing more.

use crate::support::agent_values;
use ferry_chart_tests::kube_calls::{self, Analysis, Target};
use ferry_chart_tests::render;
use ferry_chart_tests::workspace;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// `(group, resource, verb)`.
type Grant = (String, String, String);

/// The functions that apply or delete an object of whatever kind it names (the dynamic sites).
const DYNAMIC_SITES: &[&str] = &[
    "cluster.rs::apply",
    "objects.rs::apply_keeping",
    "objects.rs::delete_created",
    // A rollback putting back the contents an object had before the deployment (replace, or
    // create when it is gone): only objects the manifests had changed.
    "previous.rs::restore",
];

/// The functions that hand objects to the apply functions.
const APPLY_FUNCTIONS: &[&str] = &[
    "cluster.rs::apply",
    "objects.rs::apply",
    "objects.rs::apply_keeping",
];

/// Kinds Ferry itself applies through the dynamic sites, with the functions that do, and the
/// chart switch that covers them (None: always).
struct DynamicKind {
    group: &'static str,
    resource: &'static str,
    switch: Option<&'static str>,
    via: &'static [&'static str],
}

const DYNAMIC_KINDS: &[DynamicKind] = &[
    DynamicKind {
        group: "",
        resource: "services",
        switch: None,
        via: &["routing.rs::point_service", "routing.rs::ensure_copy"],
    },
    DynamicKind {
        group: "autoscaling",
        resource: "horizontalpodautoscalers",
        switch: None,
        via: &["autoscalers.rs::promote_autoscalers"],
    },
    DynamicKind {
        group: "split.smi-spec.io",
        resource: "trafficsplits",
        switch: Some("smi"),
        via: &["mesh.rs::set_smi"],
    },
    DynamicKind {
        group: "gateway.networking.k8s.io",
        resource: "httproutes",
        switch: Some("gatewayApi"),
        via: &["mesh.rs::write"],
    },
    DynamicKind {
        group: "networking.istio.io",
        resource: "virtualservices",
        switch: Some("istio"),
        via: &["mesh.rs::write"],
    },
    DynamicKind {
        group: "networking.istio.io",
        resource: "destinationrules",
        switch: Some("istio"),
        via: &["mesh.rs::write"],
    },
];

/// The functions that apply the deploy file's own manifests, of any kind: the chart's
/// `rbac.manifestResources` and `rbac.clusterManifestResources` are those kinds.
const MANIFEST_APPLIERS: &[&str] = &["target.rs::deploy"];

/// The chart switch covering a mesh group.
fn switch_of(group: &str) -> Option<&'static str> {
    match group {
        "networking.istio.io" => Some("istio"),
        "split.smi-spec.io" => Some("smi"),
        "gateway.networking.k8s.io" => Some("gatewayApi"),
        _ => None,
    }
}

/// The resource of a k8s-openapi type.
fn resource_of(ty: &str) -> (&'static str, &'static str) {
    match ty {
        "ReplicaSet" => ("apps", "replicasets"),
        "Deployment" => ("apps", "deployments"),
        "StatefulSet" => ("apps", "statefulsets"),
        "DaemonSet" => ("apps", "daemonsets"),
        "Service" => ("", "services"),
        "Pod" => ("", "pods"),
        "ConfigMap" => ("", "configmaps"),
        "Secret" => ("", "secrets"),
        "Namespace" => ("", "namespaces"),
        "Endpoints" => ("", "endpoints"),
        "ServiceAccount" => ("", "serviceaccounts"),
        "Event" => ("", "events"),
        "Job" => ("batch", "jobs"),
        "Ingress" => ("networking.k8s.io", "ingresses"),
        "HorizontalPodAutoscaler" => ("autoscaling", "horizontalpodautoscalers"),
        "PodDisruptionBudget" => ("policy", "poddisruptionbudgets"),
        other => {
            panic!("svc-scheduler calls Api<{other}>: add its group and resource to resource_of")
        }
    }
}

fn scheduler() -> Analysis {
    kube_calls::analyse(&workspace::root().join("svc-scheduler/src"))
}

fn grants(group: &str, resource: &str, verbs: &BTreeSet<&str>) -> Vec<Grant> {
    verbs
        .iter()
        .map(|v| (group.to_string(), resource.to_string(), v.to_string()))
        .collect()
}

/// What the agent needs, for chart values `rbac`.
fn needed(a: &Analysis, rbac: &Value, cluster: bool) -> BTreeSet<Grant> {
    let on = |switch: Option<&str>| switch.is_none_or(|s| rbac[s].as_bool().unwrap_or(true));
    let mut out = BTreeSet::new();
    let mut dynamic_verbs = BTreeSet::new();
    for call in &a.calls {
        let verbs: BTreeSet<&str> = call.verbs.iter().copied().collect();
        match &call.target {
            Target::Typed(ty) => {
                let (g, r) = resource_of(ty);
                out.extend(grants(g, r, &verbs));
            }
            Target::Kinds(kinds) => {
                for (g, r) in kinds {
                    if on(switch_of(g)) {
                        out.extend(grants(g, r, &verbs));
                    }
                }
            }
            Target::Dynamic => dynamic_verbs.extend(verbs),
        }
    }
    for k in DYNAMIC_KINDS.iter().filter(|k| on(k.switch)) {
        out.extend(grants(k.group, k.resource, &dynamic_verbs));
    }
    let mut manifest_rules: Vec<&Value> = rbac["manifestResources"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    if cluster {
        manifest_rules.extend(rbac["clusterManifestResources"].as_array().unwrap());
    }
    for rule in manifest_rules {
        for g in rule["apiGroups"].as_array().unwrap() {
            for r in rule["resources"].as_array().unwrap() {
                out.extend(grants(
                    g.as_str().unwrap(),
                    r.as_str().unwrap(),
                    &dynamic_verbs,
                ));
            }
        }
    }
    out
}

/// The resource rules of a rendered Role or ClusterRole, expanded, and its non-resource URLs.
fn granted(role: &Value) -> (BTreeSet<Grant>, BTreeSet<String>) {
    let (mut resources, mut urls) = (BTreeSet::new(), BTreeSet::new());
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    for rule in role["rules"].as_array().unwrap() {
        assert!(rule.get("resourceNames").is_none());
        for verb in list(&rule["verbs"]) {
            assert_ne!(verb, "*", "no wildcard verbs");
            for u in list(&rule["nonResourceURLs"]) {
                assert_eq!(verb, "get");
                urls.insert(u);
            }
            for g in list(&rule["apiGroups"]) {
                for r in list(&rule["resources"]) {
                    assert!(g != "*" && r != "*", "no wildcard resources");
                    resources.insert((g.clone(), r, verb.clone()));
                }
            }
        }
    }
    (resources, urls)
}

fn describe(set: &BTreeSet<Grant>) -> String {
    set.iter()
        .map(|(g, r, v)| {
            format!(
                "{v} {}{r}",
                if g.is_empty() {
                    String::new()
                } else {
                    format!("{g}/")
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn every_kubernetes_call_of_the_scheduler_is_traced() {
    let a = scheduler();
    assert!(
        a.untraced.is_empty(),
        "calls the RBAC check cannot see:\n{}",
        a.untraced.join("\n")
    );
    // The analysis does find the calls it must (a parser that sees nothing would pass anything).
    let has =
        |site: &str, method: &str| a.calls.iter().any(|c| c.site == site && c.method == method);
    assert!(
        has("cluster.rs::ensure_replica_set", "create"),
        "{:#?}",
        a.calls
    );
    assert!(has("cluster.rs::scale", "patch"));
    assert!(has("cluster.rs::adopt_user_deployment", "delete"));
    assert!(has("routing.rs::find_service", "get_opt"));
    assert!(has("mesh.rs::delete", "delete"));
    assert!(a.calls.len() >= 25, "only {} calls found", a.calls.len());
    // Applying creates: a server-side apply needs `create` as well as `patch`.
    let apply = a
        .calls
        .iter()
        .find(|c| c.site == "cluster.rs::apply")
        .unwrap();
    assert_eq!(apply.verbs, ["patch", "create"]);
    assert!(a.discovery.contains("cluster.rs::dynamic_api"));
}

#[test]
fn the_kinds_reaching_the_dynamic_sites_are_listed_with_who_sends_them() {
    let a = scheduler();
    let sites: BTreeSet<&str> = a
        .calls
        .iter()
        .filter(|c| c.target == Target::Dynamic)
        .map(|c| c.site.as_str())
        .collect();
    assert_eq!(
        sites,
        DYNAMIC_SITES.iter().copied().collect(),
        "calls on an Api found by discovery changed: say in DYNAMIC_KINDS which kinds reach the new ones"
    );
    let mut senders = BTreeSet::new();
    for f in APPLY_FUNCTIONS {
        for caller in a.callers.get(*f).into_iter().flatten() {
            if !APPLY_FUNCTIONS.contains(&caller.as_str()) {
                senders.insert(caller.as_str());
            }
        }
    }
    let listed: BTreeSet<&str> = DYNAMIC_KINDS
        .iter()
        .flat_map(|k| k.via.iter().copied())
        .chain(MANIFEST_APPLIERS.iter().copied())
        .collect();
    assert_eq!(
        senders, listed,
        "the functions applying objects changed: update DYNAMIC_KINDS (and the chart's rules) with the kinds they apply"
    );
}

#[test]
fn the_agents_rbac_is_exactly_what_the_scheduler_calls() {
    let a = scheduler();
    let defaults = render::yaml_file("helm/ferry-agent/values.yaml");
    let configurations = [
        json!({}),
        json!({"rbac": {"istio": false}}),
        json!({"rbac": {"smi": false, "manifestResources": []}}),
        json!({"rbac": {"gatewayApi": false}}),
        json!({"rbac": {"clusterManifestResources": [{"apiGroups": [""], "resources": ["namespaces"]},
                        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"]}]}}),
        json!({"rbac": {"scope": "namespaced", "namespaces": ["web", "api"], "istio": false,
                        "manifestResources": [{"apiGroups": ["", "apps"], "resources": ["configmaps", "statefulsets"]}]}}),
    ];
    for overlay in configurations {
        let values = agent_values(overlay.clone());
        let overlay_rbac = values.get("rbac").cloned().unwrap_or(json!({}));
        let rbac = crate::support::merged(&defaults["rbac"], &overlay_rbac);
        let r = render::render("ferry-agent", "edge", "ferry", &values)
            .unwrap_or_else(|e| panic!("{}", e.message()));
        let cluster = rbac["scope"] == "cluster";
        let roles = if cluster {
            r.kind("ClusterRole")
        } else {
            r.kind("Role")
        };
        assert!(!roles.is_empty(), "{overlay}: no role");
        let need = needed(&a, &rbac, cluster);
        for role in roles {
            let (have, urls) = granted(role);
            let missing: BTreeSet<Grant> = need.difference(&have).cloned().collect();
            let extra: BTreeSet<Grant> = have.difference(&need).cloned().collect();
            assert!(
                missing.is_empty(),
                "{overlay}: the scheduler calls, the chart does not grant: {}",
                describe(&missing)
            );
            assert!(
                extra.is_empty(),
                "{overlay}: the chart grants what nothing calls: {}",
                describe(&extra)
            );
            if cluster {
                // Discovery finds each manifest's resource; the agent reports the server's version.
                let want: BTreeSet<String> = ["/api", "/api/*", "/apis", "/apis/*", "/version"]
                    .map(String::from)
                    .into();
                assert!(!a.discovery.is_empty());
                assert!(workspace::read("agent/src/hub.rs").contains("apiserver_version"));
                assert_eq!(urls, want, "{overlay}");
            } else {
                assert!(urls.is_empty());
            }
        }
    }
}
