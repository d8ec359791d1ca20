//! helm/ferry-agent: the agent of one cluster.

use crate::support::{agent_values, container, env, pod, refused, rendered, var};
use ferry_chart_tests::render::{Refused, Rendered};
use ferry_chart_tests::settings;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn agent(overlay: Value) -> Rendered {
    rendered("ferry-agent", "edge", &agent_values(overlay))
}

const PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n";

/// The notable combinations.
pub(crate) fn cases() -> Vec<(&'static str, Value)> {
    let all_settings = {
        let schema: Value = serde_json::from_str(&ferry_chart_tests::workspace::read(
            "helm/ferry-agent/values.schema.json",
        ))
        .unwrap();
        let names = schema["properties"]["settings"]["properties"]
            .as_object()
            .unwrap()
            .clone();
        Value::Object(names.keys().map(|k| (k.clone(), json!("1"))).collect())
    };
    vec![
        ("defaults: created credential, cluster-wide RBAC", json!({})),
        (
            "existing credential as variables, CA from a Secret, TLS name",
            json!({"credentials": {"existingSecret": "existing-cred", "clientId": "", "clientSecret": "",
                   "secretAsFile": false, "clientIdKey": "id", "clientSecretKey": "secret"},
                   "hub": {"tlsDomain": "hub.internal", "ca": {"existingSecret": "existing-ca"}}}),
        ),
        (
            "token file, inline CA, proxy, every setting",
            json!({"credentials": {"clientId": "", "clientSecret": "", "tokenSecret": {"name": "existing-token"}},
                   "hub": {"ca": {"pem": PEM}},
                   "proxy": {"httpsProxy": "http://proxy:3128", "httpProxy": "http://proxy:3128",
                             "noProxy": "10.0.0.0/8,.svc,.cluster.local"},
                   "settings": all_settings}),
        ),
        (
            "namespaced RBAC without mesh kinds",
            json!({"rbac": {"scope": "namespaced", "namespaces": ["web", "payments"], "istio": false, "smi": false,
                   "gatewayApi": false, "manifestResources": [{"apiGroups": [""], "resources": ["configmaps"]}]},
                   "hub": {"ca": {"existingConfigMap": "existing-ca"}}}),
        ),
        (
            "cluster-scoped manifest kinds, existing ServiceAccount",
            json!({"rbac": {"clusterManifestResources": [{"apiGroups": [""], "resources": ["namespaces"]}]},
                   "serviceAccount": {"create": false, "name": "existing-agent"},
                   "image": {"tag": "1.2.3"}, "nodeSelector": {"pool": "system"},
                   "tolerations": [{"operator": "Exists"}], "resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "128Mi"}}}),
        ),
        ("no RBAC", json!({"rbac": {"create": false}})),
        (
            "traces to a collector",
            json!({"tracing": {"otlpEndpoint": "http://otel-collector.observability:4318"}}),
        ),
    ]
}

#[test]
fn a_tracing_endpoint_reaches_the_agent_and_none_is_set_by_default() {
    let endpoint = "http://otel-collector.observability:4318";
    let on = agent(json!({"tracing": {"otlpEndpoint": endpoint}}));
    let traced = env(container(on.kind("Deployment")[0]));
    assert_eq!(var(&traced, "OTEL_EXPORTER_OTLP_ENDPOINT"), endpoint);
    let off = agent(json!({}));
    let plain = env(container(off.kind("Deployment")[0]));
    assert!(!plain.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"));
}

#[test]
fn every_notable_combination_renders_valid_objects() {
    for (name, overlay) in cases() {
        let r = agent(overlay);
        let d = r.kind("Deployment");
        assert_eq!(d.len(), 1, "{name}");
        // One process per agent id: never two at once, not even during a rollout.
        assert_eq!(d[0]["spec"]["replicas"], 1);
        assert_eq!(d[0]["spec"]["strategy"]["type"], "Recreate");
        assert_eq!(
            pod(d[0])["spec"]["automountServiceAccountToken"],
            true,
            "{name}"
        );
    }
}

/// Every FERRY_* variable ferry-agent reads is set by the chart or offered in `settings`.
#[test]
fn every_setting_the_agent_reads_is_settable_and_none_is_invented() {
    let read = settings::read_by("agent");
    assert!(read.contains("FERRY_AGENT_ID"));
    let mut managed = BTreeSet::new();
    for (_, mut overlay) in cases() {
        // What the chart sets itself, not what it passes through.
        overlay.as_object_mut().unwrap().remove("settings");
        overlay.as_object_mut().unwrap().remove("extraEnv");
        let r = agent(overlay);
        managed.extend(
            env(container(r.kind("Deployment")[0]))
                .into_keys()
                .filter(|k| k.starts_with("FERRY_")),
        );
    }
    let schema: Value = serde_json::from_str(&ferry_chart_tests::workspace::read(
        "helm/ferry-agent/values.schema.json",
    ))
    .unwrap();
    let offered: BTreeSet<String> = schema["properties"]["settings"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(
        offered.is_subset(&read),
        "settings offers {:?}",
        offered.difference(&read).collect::<Vec<_>>()
    );
    assert!(
        managed.is_subset(&read),
        "the chart sets {:?}",
        managed.difference(&read).collect::<Vec<_>>()
    );
    assert!(
        managed.is_disjoint(&offered),
        "set twice: {:?}",
        managed.intersection(&offered).collect::<Vec<_>>()
    );
    let missing: Vec<_> = read
        .iter()
        .filter(|v| !managed.contains(*v) && !offered.contains(*v))
        .collect();
    assert!(
        missing.is_empty(),
        "ferry-agent reads {missing:?}, which the chart neither sets nor offers \
         (python3 tests/charts/sync_settings.py adds them)"
    );
}

#[test]
fn the_credential_comes_from_a_secret() {
    // Created from values: the id as a variable, the secret as a file.
    let r = agent(json!({}));
    let secret = r.get("Secret", "edge-ferry-agent-credentials");
    assert_eq!(
        secret["stringData"],
        json!({"client-id": "cid-123", "client-secret": "s3cret"})
    );
    let d = r.kind("Deployment")[0];
    let e = env(container(d));
    assert_eq!(
        e["FERRY_AGENT_CLIENT_ID"]["secretKeyRef"],
        json!({"name": "edge-ferry-agent-credentials", "key": "client-id"})
    );
    assert_eq!(
        var(&e, "FERRY_AGENT_CLIENT_SECRET_FILE"),
        "/etc/ferry/credentials/client-secret"
    );
    assert!(!e.contains_key("FERRY_AGENT_CLIENT_SECRET"));
    assert_eq!(
        var(&e, "FERRY_AGENT_ISSUER_URL"),
        "https://ferry.example.com"
    );
    assert_eq!(var(&e, "FERRY_AGENT_ID"), "prod-eu");
    assert_eq!(
        var(&e, "FERRY_AGENT_HUB_URL"),
        "https://hub.ferry.example.com:443"
    );
    assert_eq!(var(&e, "FERRY_AGENT_AUDIENCE"), "ferry-hub");
    assert!(
        !e.contains_key("FERRY_AGENT_HUB_CA_FILE"),
        "system roots by default"
    );
    // An existing Secret, the client secret as a variable.
    let r = agent(
        json!({"credentials": {"existingSecret": "existing-cred", "clientId": "", "clientSecret": "",
                                          "secretAsFile": false}}),
    );
    assert!(r.kind("Secret").is_empty());
    let e = env(container(r.kind("Deployment")[0]));
    assert_eq!(
        e["FERRY_AGENT_CLIENT_SECRET"]["secretKeyRef"],
        json!({"name": "existing-cred", "key": "client-secret"})
    );
    // A token file instead: no client id, no issuer.
    let r = agent(
        json!({"credentials": {"clientId": "", "clientSecret": "", "tokenSecret": {"name": "existing-token"}}}),
    );
    let e = env(container(r.kind("Deployment")[0]));
    assert_eq!(var(&e, "FERRY_AGENT_TOKEN_FILE"), "/etc/ferry/token/token");
    for absent in [
        "FERRY_AGENT_CLIENT_ID",
        "FERRY_AGENT_ISSUER_URL",
        "FERRY_AGENT_CLIENT_SECRET_FILE",
    ] {
        assert!(!e.contains_key(absent), "{absent} with a token file");
    }
}

#[test]
fn hub_ca_and_proxy() {
    let r = agent(
        json!({"hub": {"ca": {"pem": PEM}, "tlsDomain": "hub.internal"},
                         "proxy": {"httpsProxy": "http://proxy:3128", "noProxy": "10.0.0.0/8"}}),
    );
    let cm = r.get("ConfigMap", "edge-ferry-agent-hub-ca");
    assert_eq!(cm["data"]["ca.crt"], PEM);
    let d = r.kind("Deployment")[0];
    let e = env(container(d));
    assert_eq!(
        var(&e, "FERRY_AGENT_HUB_CA_FILE"),
        "/etc/ferry/hub-ca/ca.crt"
    );
    assert_eq!(var(&e, "FERRY_AGENT_HUB_TLS_DOMAIN"), "hub.internal");
    for (name, value) in [
        ("HTTPS_PROXY", "http://proxy:3128"),
        ("https_proxy", "http://proxy:3128"),
        ("NO_PROXY", "10.0.0.0/8"),
        ("no_proxy", "10.0.0.0/8"),
    ] {
        assert_eq!(var(&e, name), value);
    }
    assert!(!e.contains_key("HTTP_PROXY"));
    let volumes = pod(d)["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["configMap"]["name"] == "edge-ferry-agent-hub-ca")
    );
}

#[test]
fn rbac_scope_is_cluster_or_the_listed_namespaces() {
    let r = agent(json!({}));
    let binding = r.get("ClusterRoleBinding", "edge-ferry-agent");
    assert_eq!(binding["roleRef"]["name"], "edge-ferry-agent");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "edge-ferry-agent", "namespace": "ferry"}])
    );
    assert!(r.kind("Role").is_empty() && r.kind("RoleBinding").is_empty());

    let r = agent(json!({"rbac": {"scope": "namespaced", "namespaces": ["web", "payments"]}}));
    assert!(r.kind("ClusterRole").is_empty() && r.kind("ClusterRoleBinding").is_empty());
    let namespaces: BTreeSet<&str> = r
        .kind("Role")
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    assert_eq!(namespaces, BTreeSet::from(["payments", "web"]));
    for b in r.kind("RoleBinding") {
        assert_eq!(b["roleRef"]["kind"], "Role");
        assert_eq!(
            b["subjects"][0]["namespace"], "ferry",
            "the agent's own namespace"
        );
    }
    let r = agent(json!({"rbac": {"create": false}}));
    assert!(r.kind("ClusterRole").is_empty() && r.kind("Role").is_empty());
}

#[test]
fn bad_values_are_refused_with_the_reason() {
    let cases = [
        (json!({"agentId": ""}), "agentId"),
        (json!({"agentId": "a/b"}), "agentId"),
        (json!({"hub": {"url": "hub:443"}}), "url"),
        (
            json!({"tracing": {"otlpEndpoint": "otel-collector:4318"}}),
            "otlpEndpoint",
        ),
        (json!({"rbac": {"scope": "namespaced"}}), "rbac.namespaces"),
        (
            json!({"rbac": {"scope": "namespaced", "namespaces": ["web"],
                         "clusterManifestResources": [{"apiGroups": [""], "resources": ["namespaces"]}]}}),
            "clusterManifestResources",
        ),
        (json!({"rbac": {"scope": "everywhere"}}), "scope"),
        (
            json!({"credentials": {"tokenSecret": {"name": "t"}}}),
            "tokenSecret",
        ),
        (
            json!({"credentials": {"clientSecret": ""}}),
            "credentials.clientSecret",
        ),
        (
            json!({"settings": {"FERRY_AGENT_ID": "x"}}),
            "FERRY_AGENT_ID",
        ),
        (
            json!({"settings": {"FERRY_HUB_AUDIENCE": "x"}}),
            "FERRY_HUB_AUDIENCE",
        ),
        (
            json!({"hub": {"ca": {"pem": PEM, "existingSecret": "existing-ca"}}}),
            "hub.ca",
        ),
    ];
    for (overlay, needle) in cases {
        let why = refused("ferry-agent", &agent_values(overlay.clone()));
        let message = match &why {
            Refused::Schema(m) | Refused::Render(m) => m,
        };
        assert!(
            message.contains(needle),
            "{overlay}: expected {needle} in: {message}"
        );
    }
}

#[test]
fn notes_name_the_agent_and_its_credential_rule() {
    let r = agent(json!({}));
    for needle in ["prod-eu", "Agent role", "rbac.manifestResources"] {
        assert!(
            r.notes.contains(needle),
            "NOTES.txt lacks {needle}:\n{}",
            r.notes
        );
    }
    let r = agent(json!({"hub": {"url": "http://hub:7443"}}));
    assert!(r.notes.contains("WARNING"), "{}", r.notes);
}
