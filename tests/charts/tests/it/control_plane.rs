//! helm/ferry: the control plane.

use crate::support::{
    check_references, container, env, ferry_values, merged, pod, refused, rendered, selects, var,
};
use ferry_chart_tests::render::{Refused, Rendered};
use ferry_chart_tests::settings;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The chart's name for each service, its values key, its binary and its admin port.
const SERVICES: &[(&str, &str, &str, u64)] = &[
    ("api", "api", "ferry-svc-api", 9101),
    ("scheduler", "scheduler", "ferry-svc-scheduler", 9102),
    ("canary", "canary", "ferry-svc-canary", 9103),
    ("webhook", "webhook", "ferry-svc-webhook", 9104),
    ("agent-hub", "hub", "ferry-svc-agent-hub", 9105),
];

fn ferry(overlay: Value) -> Rendered {
    rendered("ferry", "ferry", &ferry_values(overlay))
}

/// Every FERRY_* setting of a service (values.schema.json), each set to a sample value.
fn every_setting(key: &str) -> Value {
    let schema: Value = serde_json::from_str(&ferry_chart_tests::workspace::read(
        "helm/ferry/values.schema.json",
    ))
    .unwrap();
    let names = schema["properties"][key]["properties"]["settings"]["properties"]
        .as_object()
        .unwrap();
    Value::Object(names.keys().map(|k| (k.clone(), json!("1"))).collect())
}

/// The notable combinations: each renders, validates and passes the workload checks.
fn cases() -> Vec<(&'static str, Value)> {
    let everything = {
        let mut v = json!({
            "image": {"digest": format!("sha256:{}", "a".repeat(64)), "pullPolicy": "Always"},
            "imagePullSecrets": [{"name": "existing-pull"}],
            "busPrefix": "blue",
            "logging": {"format": "text", "level": "debug"},
            "tracing": {"otlpEndpoint": "http://otel-collector.observability:4318"},
            "serviceAccount": {"create": false, "name": "existing-sa"},
            "priorityClassName": "ferry-critical",
            "nodeSelector": {"pool": "system"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ferry", "effect": "NoSchedule"}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/part-of": "ferry"}}}],
            "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}},
            "networkPolicy": {"enabled": true,
                "publicFrom": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
            "api": {"ingress": {"enabled": true, "className": "nginx", "tls": {"secretName": "existing-api-tls"}},
                    "logLevel": "info,ferry_svc_api=debug"},
            "hub": {"ingress": {"enabled": true, "className": "nginx", "host": "hub.example.com"},
                    "service": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24"],
                                "externalTrafficPolicy": "Local"}},
        });
        for (_, key, _, _) in SERVICES {
            v[*key]["settings"] = every_setting(key);
            v[*key]["autoscaling"] =
                json!({"enabled": true, "targetMemoryUtilizationPercentage": 80});
            v[*key]["pdb"] = json!({"minAvailable": 1});
            v[*key]["extraEnv"] = json!([{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "deployment.environment=prod"}]);
            v[*key]["extraVolumes"] =
                json!([{"name": "jwks", "configMap": {"name": "existing-jwks"}}]);
            v[*key]["extraVolumeMounts"] =
                json!([{"name": "jwks", "mountPath": "/etc/ferry/jwks", "readOnly": true}]);
            v[*key]["podAnnotations"] = json!({"team": "platform"});
            v[*key]["affinity"] = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                 "labelSelector": {"matchLabels": {"app.kubernetes.io/part-of": "ferry"}}}}]}});
        }
        v
    };
    vec![
        ("defaults", json!({})),
        (
            "existing secret, master key as a variable",
            json!({"secrets": {"existingSecret": "existing-conn", "masterKeyAsFile": false,
                   "databaseUrl": "", "amqpUrl": "", "redisUrl": "", "masterKey": "",
                   "keys": {"databaseUrl": "db"}}}),
        ),
        ("everything on", everything),
        (
            "plaintext hub behind a TLS-terminating ingress",
            json!({"hub": {"tls": {"enabled": false}, "service": {"type": "ClusterIP"},
                   "ingress": {"enabled": true, "className": "nginx"}}}),
        ),
        (
            "no disruption budgets, no pod annotations",
            json!({"metrics": {"podAnnotations": false},
                   "api": {"pdb": {"enabled": false}}, "webhook": {"pdb": {"enabled": false}}}),
        ),
    ]
}

#[test]
fn every_notable_combination_renders_valid_objects() {
    for (name, overlay) in cases() {
        let r = ferry(overlay);
        let deployments: BTreeSet<&str> = r
            .kind("Deployment")
            .iter()
            .filter_map(|d| d["metadata"]["name"].as_str())
            .collect();
        assert_eq!(deployments.len(), 5, "{name}: {deployments:?}");
        check_references(&r);
    }
}

#[test]
fn a_tracing_endpoint_reaches_every_service_and_none_is_set_by_default() {
    let endpoint = "http://otel-collector.observability:4318";
    let on = ferry(json!({"tracing": {"otlpEndpoint": endpoint}}));
    let off = ferry(json!({}));
    for (component, ..) in SERVICES {
        let name = format!("ferry-{component}");
        let traced = env(container(on.get("Deployment", &name)));
        assert_eq!(var(&traced, "OTEL_EXPORTER_OTLP_ENDPOINT"), endpoint);
        let plain = env(container(off.get("Deployment", &name)));
        assert!(!plain.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"), "{name}");
    }
}

#[test]
fn each_service_has_its_own_deployment_binary_ports_resources_and_budget() {
    let r = ferry(json!({
        "canary": {"resources": {"requests": {"cpu": "300m", "memory": "200Mi"}, "limits": {"memory": "900Mi"}}},
        "webhook": {"replicas": 3},
    }));
    for (component, key, binary, admin) in SERVICES {
        let d = r.get("Deployment", &format!("ferry-{component}"));
        let c = container(d);
        assert_eq!(c["command"], json!([format!("/usr/local/bin/{binary}")]));
        let env = env(c);
        assert_eq!(
            var(&env, "FERRY_ADMIN_ADDR"),
            format!("0.0.0.0:{admin}"),
            "{component}"
        );
        assert_eq!(var(&env, "FERRY_LOG_FORMAT"), "json");
        let pdb = r.get("PodDisruptionBudget", &format!("ferry-{component}"));
        assert!(selects(
            &pdb["spec"]["selector"]["matchLabels"],
            &pod(d)["metadata"]["labels"]
        ));
        assert_eq!(pdb["spec"]["maxUnavailable"], 1, "{key}");
        let admin_service = if *component == "agent-hub" {
            "ferry-agent-hub-admin".to_string()
        } else {
            format!("ferry-{component}")
        };
        let svc = r.get("Service", &admin_service);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert!(
            svc["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == *admin)
        );
        // The control plane never calls the Kubernetes API of its own cluster.
        assert_eq!(pod(d)["spec"]["automountServiceAccountToken"], false);
        // Time to drain (FERRY_SHUTDOWN_GRACE_SECS) before the kill.
        let grace: u64 = var(&env, "FERRY_SHUTDOWN_GRACE_SECS").parse().unwrap();
        assert!(
            pod(d)["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap()
                > grace
        );
    }
    let canary = container(r.get("Deployment", "ferry-canary"));
    assert_eq!(canary["resources"]["requests"]["cpu"], "300m");
    assert_eq!(canary["resources"]["limits"]["memory"], "900Mi");
    assert_eq!(r.get("Deployment", "ferry-webhook")["spec"]["replicas"], 3);
    assert_eq!(r.get("Deployment", "ferry-api")["spec"]["replicas"], 2);
    // The issuer URL reaches the three services that need it.
    let issuer = "https://ferry.example.com";
    assert_eq!(
        var(
            &env(container(r.get("Deployment", "ferry-api"))),
            "FERRY_ISSUER_URL"
        ),
        issuer
    );
    assert_eq!(
        var(
            &env(container(r.get("Deployment", "ferry-scheduler"))),
            "FERRY_API_URL"
        ),
        issuer
    );
    assert_eq!(
        var(
            &env(container(r.get("Deployment", "ferry-agent-hub"))),
            "FERRY_HUB_ISSUER"
        ),
        issuer
    );
}

/// Every FERRY_* variable a service's binary reads is either set by the chart or settable in
/// its `settings` (values.schema.json); `settings` offers nothing the binary does not read, and
/// nothing the chart sets itself (which would set it twice).
#[test]
fn every_setting_the_binaries_read_is_settable_and_none_is_invented() {
    let schema: Value = serde_json::from_str(&ferry_chart_tests::workspace::read(
        "helm/ferry/values.schema.json",
    ))
    .unwrap();
    // What the chart sets itself: every case rendered without the settings it passes through.
    let renders: Vec<Rendered> = cases()
        .into_iter()
        .map(|(_, mut v)| {
            for (_, key, _, _) in SERVICES {
                if let Some(svc) = v.get_mut(*key).and_then(Value::as_object_mut) {
                    svc.remove("settings");
                    svc.remove("extraEnv");
                }
            }
            ferry(v)
        })
        .collect();
    for (component, key, _, _) in SERVICES {
        let crate_dir = settings::SERVICES.iter().find(|(k, _)| k == key).unwrap().1;
        let read = settings::read_by(crate_dir);
        assert!(
            read.contains("FERRY_ADMIN_ADDR"),
            "{crate_dir}: found no settings"
        );
        let mut managed = BTreeSet::new();
        for r in &renders {
            let d = r.get("Deployment", &format!("ferry-{component}"));
            managed.extend(
                env(container(d))
                    .into_keys()
                    .filter(|k| k.starts_with("FERRY_")),
            );
        }
        let offered: BTreeSet<String> =
            schema["properties"][*key]["properties"]["settings"]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
        let invented: Vec<_> = offered.difference(&read).collect();
        assert!(
            invented.is_empty(),
            "{key}.settings offers variables {crate_dir} does not read: {invented:?} \
             (python3 tests/charts/sync_settings.py removes them)"
        );
        let chart_only: Vec<_> = managed.difference(&read).collect();
        assert!(
            chart_only.is_empty(),
            "the chart sets variables {crate_dir} does not read: {chart_only:?}"
        );
        let twice: Vec<_> = managed.intersection(&offered).collect();
        assert!(
            twice.is_empty(),
            "{key}.settings offers variables the chart sets itself: {twice:?}"
        );
        let missing: Vec<_> = read
            .iter()
            .filter(|v| !managed.contains(*v) && !offered.contains(*v))
            .collect();
        assert!(
            missing.is_empty(),
            "{crate_dir} reads {missing:?}, which helm/ferry neither sets nor offers in {key}.settings \
             (python3 tests/charts/sync_settings.py adds them to values.schema.json)"
        );
    }
    // And a setting given is a setting passed, numbers written as the binary parses them.
    let r = ferry(
        json!({"api": {"settings": {"FERRY_MAX_BODY_BYTES": 10485760, "FERRY_TOKEN_FAILURES_PER_CLIENT": 0.2,
                                              "FERRY_MANIFEST_FETCH_ALLOW_PRIVATE": true,
                                              "FERRY_OIDC_AUDIENCE": {"secretKeyRef": {"name": "existing-oidc", "key": "aud"}}}}}),
    );
    let api = env(container(r.get("Deployment", "ferry-api")));
    assert_eq!(var(&api, "FERRY_MAX_BODY_BYTES"), "10485760");
    assert_eq!(var(&api, "FERRY_TOKEN_FAILURES_PER_CLIENT"), "0.2");
    assert_eq!(var(&api, "FERRY_MANIFEST_FETCH_ALLOW_PRIVATE"), "true");
    // A secret setting from a Secret.
    assert_eq!(
        api["FERRY_OIDC_AUDIENCE"]["secretKeyRef"],
        json!({"name": "existing-oidc", "key": "aud"})
    );
}

#[test]
fn secrets_are_referenced_or_created() {
    // Created: one Secret, every service's connection strings from it, the master key a file.
    let r = ferry(json!({}));
    let secret = r.get("Secret", "ferry-connections");
    let keys: BTreeSet<&str> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "FERRY_AMQP_URL",
            "FERRY_DATABASE_URL",
            "FERRY_MASTER_KEY",
            "FERRY_REDIS_URL"
        ])
    );
    for (component, ..) in SERVICES {
        let d = r.get("Deployment", &format!("ferry-{component}"));
        let e = env(container(d));
        assert_eq!(
            e["FERRY_DATABASE_URL"]["secretKeyRef"]["name"],
            "ferry-connections"
        );
        assert_eq!(e["FERRY_AMQP_URL"]["secretKeyRef"]["key"], "FERRY_AMQP_URL");
        let key_file = e.get("FERRY_MASTER_KEY_FILE").and_then(Value::as_str);
        if ["api", "canary", "webhook"].contains(component) {
            assert_eq!(
                key_file,
                Some("/etc/ferry/master-key/master-key"),
                "{component}"
            );
            assert!(!e.contains_key("FERRY_MASTER_KEY"));
        } else {
            assert_eq!(key_file, None, "{component} has no use for the master key");
        }
        assert_eq!(
            e.contains_key("FERRY_REDIS_URL"),
            ["scheduler", "canary", "webhook", "agent-hub"].contains(component),
            "{component}: Redis"
        );
        // Rolled when the created Secret changes.
        assert!(pod(d)["metadata"]["annotations"]["checksum/secret"].is_string());
    }
    // By reference: nothing created, every reference to the named Secret and its keys.
    let r = ferry(
        json!({"secrets": {"existingSecret": "existing-conn", "masterKeyAsFile": false,
        "keys": {"databaseUrl": "pg", "masterKey": "mk"}}}),
    );
    assert!(r.kind("Secret").is_empty(), "{:?}", r.names());
    for (component, ..) in SERVICES {
        let e = env(container(
            r.get("Deployment", &format!("ferry-{component}")),
        ));
        assert_eq!(
            e["FERRY_DATABASE_URL"]["secretKeyRef"],
            json!({"name": "existing-conn", "key": "pg"})
        );
        if ["api", "canary", "webhook"].contains(component) {
            assert_eq!(
                e["FERRY_MASTER_KEY"]["secretKeyRef"],
                json!({"name": "existing-conn", "key": "mk"})
            );
        }
    }
}

#[test]
fn the_hub_is_reached_over_tls_by_service_or_ingress() {
    // Default: the hub terminates TLS; a TCP load balancer passes it through.
    let r = ferry(json!({}));
    let hub = r.get("Deployment", "ferry-agent-hub");
    let e = env(container(hub));
    assert_eq!(var(&e, "FERRY_HUB_TLS_CERT"), "/etc/ferry/hub-tls/tls.crt");
    assert_eq!(var(&e, "FERRY_HUB_TLS_KEY"), "/etc/ferry/hub-tls/tls.key");
    assert!(!e.contains_key("FERRY_HUB_INSECURE_PLAINTEXT"));
    assert_eq!(
        e["FERRY_HUB_REPLICA_ID"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let volumes = pod(hub)["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["secret"]["secretName"] == "ferry-hub-tls")
    );
    let svc = r.get("Service", "ferry-agent-hub");
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "grpc", "port": 443, "targetPort": "grpc", "protocol": "TCP"}])
    );
    assert!(r.kind("Ingress").is_empty());
    // The admin port stays inside the cluster.
    assert!(r.get("Service", "ferry-agent-hub-admin")["spec"]["type"] == "ClusterIP");

    // An Ingress terminating TLS for gRPC, re-encrypting to the hub.
    let r = ferry(
        json!({"hub": {"ingress": {"enabled": true, "className": "nginx", "host": "hub.example.com"},
                                 "service": {"type": "ClusterIP"}}}),
    );
    let ing = r.get("Ingress", "ferry-agent-hub");
    assert_eq!(
        ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"],
        "GRPCS"
    );
    assert_eq!(ing["spec"]["tls"][0]["hosts"], json!(["hub.example.com"]));
    // A plaintext hub only behind the Ingress.
    let r = ferry(
        json!({"hub": {"tls": {"enabled": false}, "ingress": {"enabled": true, "className": "nginx"},
                                 "service": {"type": "ClusterIP"}}}),
    );
    let e = env(container(r.get("Deployment", "ferry-agent-hub")));
    assert_eq!(var(&e, "FERRY_HUB_INSECURE_PLAINTEXT"), "true");
    assert!(!e.contains_key("FERRY_HUB_TLS_CERT"));
    let ing = r.get("Ingress", "ferry-agent-hub");
    assert_eq!(
        ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"],
        "GRPC"
    );
    // Or a load balancer that terminates TLS itself, in front of a plaintext hub.
    let r = ferry(json!({"hub": {"tls": {"enabled": false},
        "service": {"terminatesTls": true, "annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-ssl-cert": "arn:aws:acm:eu-west-1:1:certificate/x",
            "service.beta.kubernetes.io/aws-load-balancer-ssl-ports": "443"}}}}));
    let e = env(container(r.get("Deployment", "ferry-agent-hub")));
    assert_eq!(var(&e, "FERRY_HUB_INSECURE_PLAINTEXT"), "true");
    assert_eq!(
        r.get("Service", "ferry-agent-hub")["spec"]["type"],
        "LoadBalancer"
    );
    for overlay in [
        json!({"hub": {"tls": {"enabled": false}, "service": {"type": "ClusterIP"}}}),
        json!({"hub": {"tls": {"enabled": false}, "ingress": {"enabled": true}}}),
        json!({"hub": {"tls": {"enabled": false}, "service": {"type": "NodePort", "terminatesTls": true}}}),
        json!({"hub": {"service": {"terminatesTls": true}}}),
    ] {
        let why = refused("ferry", &ferry_values(overlay));
        assert!(why.message().contains("plaintext"), "{}", why.message());
    }
}

#[test]
fn optional_autoscalers_monitors_and_network_policies() {
    let r = ferry(json!({}));
    for kind in ["HorizontalPodAutoscaler", "ServiceMonitor", "NetworkPolicy"] {
        assert!(r.kind(kind).is_empty(), "{kind} is off by default");
    }
    let r = ferry(json!({
        "scheduler": {"autoscaling": {"enabled": true, "minReplicas": 2, "maxReplicas": 8}},
        "metrics": {"serviceMonitor": {"enabled": true}},
        "networkPolicy": {"enabled": true},
    }));
    let hpa = r.get("HorizontalPodAutoscaler", "ferry-scheduler");
    assert_eq!(hpa["spec"]["maxReplicas"], 8);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    assert_eq!(r.kind("HorizontalPodAutoscaler").len(), 1);
    // The ServiceMonitor scrapes the admin port of the five services, and nothing public.
    let sm = &r.kind("ServiceMonitor")[0];
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "admin");
    let scraped: Vec<&Value> = r
        .kind("Service")
        .into_iter()
        .filter(|s| {
            selects(
                &sm["spec"]["selector"]["matchLabels"],
                &s["metadata"]["labels"],
            )
        })
        .collect();
    assert_eq!(scraped.len(), 5);
    assert!(scraped.iter().all(|s| s["spec"]["type"] == "ClusterIP"));
    // One policy per service: admin everywhere, HTTP on api, gRPC on the hub, nothing else.
    let policies = r.kind("NetworkPolicy");
    assert_eq!(policies.len(), 5);
    for p in policies {
        let ports: BTreeSet<String> = p["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| rule["ports"].as_array().unwrap().iter())
            .map(|port| port["port"].as_str().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = match p["metadata"]["name"].as_str().unwrap() {
            "ferry-api" => ["admin", "http"].map(String::from).into(),
            "ferry-agent-hub" => ["admin", "grpc"].map(String::from).into(),
            _ => ["admin"].map(String::from).into(),
        };
        assert_eq!(ports, expected, "{}", p["metadata"]["name"]);
        assert_eq!(p["spec"]["policyTypes"], json!(["Ingress"]));
    }
}

#[test]
fn bad_values_are_refused_with_the_reason() {
    let schema = |overlay: Value, needle: &str| match refused("ferry", &ferry_values(overlay)) {
        Refused::Schema(m) => assert!(m.contains(needle), "{needle}: {m}"),
        Refused::Render(m) => panic!("expected a schema error naming {needle}, got: {m}"),
    };
    schema(json!({"issuerUrl": ""}), "issuerUrl");
    schema(
        json!({"tracing": {"otlpEndpoint": "otel-collector:4318"}}),
        "otlpEndpoint",
    );
    schema(
        json!({"api": {"settings": {"FERRY_NOT_A_SETTING": "1"}}}),
        "FERRY_NOT_A_SETTING",
    );
    // The chart sets these itself.
    schema(
        json!({"api": {"settings": {"FERRY_ADMIN_ADDR": "0.0.0.0:1"}}}),
        "FERRY_ADMIN_ADDR",
    );
    schema(
        json!({"hub": {"settings": {"FERRY_HUB_TLS_CERT": "/x"}}}),
        "FERRY_HUB_TLS_CERT",
    );
    // A setting of another service.
    schema(
        json!({"webhook": {"settings": {"FERRY_RATE_LIMIT_PER_SEC": 5}}}),
        "FERRY_RATE_LIMIT_PER_SEC",
    );
    schema(json!({"image": {"pullPolicy": "Sometimes"}}), "pullPolicy");
    schema(json!({"replicas": 3}), "replicas");
    let why = refused(
        "ferry",
        &merged(
            &ferry_values(json!({})),
            &json!({"secrets": {"masterKey": ""}}),
        ),
    );
    assert!(
        why.message().contains("secrets.masterKey"),
        "{}",
        why.message()
    );
}

#[test]
fn notes_say_how_to_start() {
    let r = ferry(json!({}));
    for needle in [
        "ferry-svc-api bootstrap",
        "ferry creds create",
        "--role Agent",
        "ferry-agent-hub",
        "https://ferry.example.com",
    ] {
        assert!(
            r.notes.contains(needle),
            "NOTES.txt lacks {needle}:\n{}",
            r.notes
        );
    }
}
