//! Rendering helpers and the checks every rendered workload must pass.

use ferry_chart_tests::render::{self, Refused, Rendered};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// `overlay` merged into `base` (objects key by key, anything else replaced).
pub(crate) fn merged(base: &Value, overlay: &Value) -> Value {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let next = match out.get(k) {
                    Some(existing) => merged(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), next);
            }
            Value::Object(out)
        }
        (_, o) => o.clone(),
    }
}

/// The least values helm/ferry renders with: the issuer and created secrets.
pub(crate) fn ferry_values(overlay: Value) -> Value {
    let base = json!({
        "issuerUrl": "https://ferry.example.com",
        "secrets": {
            "databaseUrl": "postgres://ferry:pw@postgres:5432/ferry",
            "amqpUrl": "amqp://ferry:pw@rabbitmq:5672/%2f",
            "redisUrl": "redis://redis:6379",
            "masterKey": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        },
    });
    merged(&base, &overlay)
}

/// The least values helm/ferry-agent renders with.
pub(crate) fn agent_values(overlay: Value) -> Value {
    let base = json!({
        "agentId": "prod-eu",
        "hub": {"url": "https://hub.ferry.example.com:443"},
        "issuerUrl": "https://ferry.example.com",
        "credentials": {"clientId": "cid-123", "clientSecret": "s3cret"},
    });
    merged(&base, &overlay)
}

/// Renders a chart that must render: its objects valid, lint clean, workloads sound.
pub(crate) fn rendered(chart: &str, release: &str, values: &Value) -> Rendered {
    let r = render::render(chart, release, "ferry", values)
        .unwrap_or_else(|e| panic!("{chart} with {values}: refused: {}", e.message()));
    assert!(
        r.invalid.is_empty(),
        "{chart} with {values}: objects that fail the Kubernetes schemas:\n{}",
        r.invalid.join("\n")
    );
    assert!(
        r.lint.is_empty(),
        "{chart}: helm lint --strict: {:?}",
        r.lint
    );
    check_workloads(&r);
    check_references(&r);
    r
}

/// Renders a chart that must be refused; returns why.
pub(crate) fn refused(chart: &str, values: &Value) -> Refused {
    match render::render(chart, "ferry", "ferry", values) {
        Ok(r) => panic!("{chart} rendered with {values}: {:?}", r.names()),
        Err(e) => e,
    }
}

/// The pod template of a Deployment.
pub(crate) fn pod(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]
}

/// The first container of a Deployment.
pub(crate) fn container(deployment: &Value) -> &Value {
    &pod(deployment)["spec"]["containers"][0]
}

/// A container's environment by name (value or valueFrom).
pub(crate) fn env(container: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if e.get("value").is_some() {
            e["value"].clone()
        } else {
            e["valueFrom"].clone()
        };
        assert!(
            out.insert(name.clone(), value).is_none(),
            "{name} is set twice in {}",
            container["name"]
        );
    }
    out
}

/// A plain variable's value.
pub(crate) fn var<'a>(env: &'a BTreeMap<String, Value>, name: &str) -> &'a str {
    env.get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{name} is not a plain value in {env:?}"))
}

/// Whether `selector` (matchLabels) selects `labels`.
pub(crate) fn selects(selector: &Value, labels: &Value) -> bool {
    let Some(want) = selector.as_object() else {
        return false;
    };
    !want.is_empty() && want.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Every workload: non-root, read-only root filesystem, no privilege escalation, no
/// capabilities, RuntimeDefault seccomp; liveness on /healthz and readiness on /readyz at the
/// admin port the process is told to listen on; resources; its binary from the image.
pub(crate) fn check_workloads(r: &Rendered) {
    for d in r.kind("Deployment") {
        let name = d["metadata"]["name"].as_str().unwrap();
        let spec = &pod(d)["spec"];
        let psc = &spec["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{name}: pod runAsNonRoot");
        assert!(
            psc["runAsUser"].as_u64().is_some_and(|u| u > 0),
            "{name}: runAsUser"
        );
        assert_eq!(
            psc["seccompProfile"]["type"], "RuntimeDefault",
            "{name}: seccomp"
        );
        let selector = &d["spec"]["selector"]["matchLabels"];
        assert!(
            selects(selector, &pod(d)["metadata"]["labels"]),
            "{name}: selector"
        );
        let containers = spec["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "{name}: one container");
        let c = &containers[0];
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}: read-only root");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}: escalation");
        assert_eq!(sc["privileged"], false, "{name}: privileged");
        assert_eq!(
            sc["capabilities"]["drop"],
            json!(["ALL"]),
            "{name}: capabilities"
        );
        assert!(
            c["resources"]["requests"]["memory"].is_string()
                && c["resources"]["limits"]["memory"].is_string(),
            "{name}: memory request and limit"
        );
        let env = env(c);
        let admin: u64 = var(&env, "FERRY_ADMIN_ADDR")
            .strip_prefix("0.0.0.0:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{name}: FERRY_ADMIN_ADDR must listen on all addresses"));
        let ports = c["ports"].as_array().unwrap();
        let admin_port = ports
            .iter()
            .find(|p| p["name"] == "admin")
            .expect("admin port");
        assert_eq!(admin_port["containerPort"], admin, "{name}: admin port");
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            assert_eq!(c[probe]["httpGet"]["path"], path, "{name}: {probe}");
            assert_eq!(c[probe]["httpGet"]["port"], "admin", "{name}: {probe} port");
        }
        let command = c["command"][0].as_str().unwrap();
        let binary = command
            .strip_prefix("/usr/local/bin/")
            .expect("binary in /usr/local/bin");
        assert!(
            crate::image::containerfile_binaries().contains(binary),
            "{name}: {binary} is not in the image"
        );
        // Every mount names a volume of the pod, and /tmp is writable.
        let volumes: BTreeSet<&str> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            assert!(
                volumes.contains(m["name"].as_str().unwrap()),
                "{name}: mount {m}"
            );
        }
    }
}

/// References between objects hold: Services select pods and name their ports, PDBs and
/// NetworkPolicies select pods, HPAs and Ingresses name existing targets, secretKeyRefs and
/// volumes name Secrets and ConfigMaps that are rendered (or were named as existing).
pub(crate) fn check_references(r: &Rendered) {
    let deployments = r.kind("Deployment");
    let pods_matching = |selector: &Value| -> Vec<&Value> {
        deployments
            .iter()
            .copied()
            .filter(|d| selects(selector, &pod(d)["metadata"]["labels"]))
            .collect()
    };
    for s in r.kind("Service") {
        let name = &s["metadata"]["name"];
        let matched = pods_matching(&s["spec"]["selector"]);
        assert_eq!(matched.len(), 1, "Service {name} selects one Deployment");
        let ports: BTreeSet<&str> = container(matched[0])["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for p in s["spec"]["ports"].as_array().unwrap() {
            let target = p["targetPort"].as_str().expect("named targetPort");
            assert!(
                ports.contains(target),
                "Service {name}: no container port {target}"
            );
        }
    }
    for kind in ["PodDisruptionBudget"] {
        for o in r.kind(kind) {
            let m = pods_matching(&o["spec"]["selector"]["matchLabels"]);
            assert_eq!(
                m.len(),
                1,
                "{kind} {} selects one Deployment",
                o["metadata"]["name"]
            );
        }
    }
    for o in r.kind("NetworkPolicy") {
        let m = pods_matching(&o["spec"]["podSelector"]["matchLabels"]);
        assert_eq!(
            m.len(),
            1,
            "NetworkPolicy {} selects one Deployment",
            o["metadata"]["name"]
        );
        let ports: BTreeSet<&str> = container(m[0])["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for rule in o["spec"]["ingress"].as_array().unwrap() {
            for p in rule["ports"].as_array().unwrap() {
                assert!(
                    ports.contains(p["port"].as_str().unwrap()),
                    "NetworkPolicy port {p}"
                );
            }
        }
    }
    for h in r.kind("HorizontalPodAutoscaler") {
        let target = h["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
        let d = r.get("Deployment", target);
        assert!(
            d["spec"].get("replicas").is_none(),
            "{target}: replicas left to the HPA"
        );
    }
    for i in r.kind("Ingress") {
        for rule in i["spec"]["rules"].as_array().unwrap() {
            for p in rule["http"]["paths"].as_array().unwrap() {
                let svc = r.get("Service", p["backend"]["service"]["name"].as_str().unwrap());
                let port = &p["backend"]["service"]["port"]["name"];
                assert!(
                    svc["spec"]["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|sp| &sp["name"] == port),
                    "Ingress backend port {port}"
                );
            }
        }
    }
    let secrets: BTreeSet<&str> = r
        .kind("Secret")
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .collect();
    let configmaps: BTreeSet<&str> = r
        .kind("ConfigMap")
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .collect();
    for d in &deployments {
        let spec = &pod(d)["spec"];
        for (_, v) in env(container(d)) {
            if let Some(name) = v["secretKeyRef"]["name"].as_str() {
                assert!(
                    secrets.contains(name) || name.starts_with("existing-"),
                    "secretKeyRef to {name}, which is neither rendered nor named as existing"
                );
            }
        }
        for v in spec["volumes"].as_array().into_iter().flatten() {
            if let Some(name) = v["secret"]["secretName"].as_str() {
                assert!(
                    secrets.contains(name)
                        || name.starts_with("existing-")
                        || name.ends_with("-tls"),
                    "volume of Secret {name}, which is neither rendered nor named as existing"
                );
            }
            if let Some(name) = v["configMap"]["name"].as_str() {
                assert!(
                    configmaps.contains(name) || name.starts_with("existing-"),
                    "volume of ConfigMap {name}"
                );
            }
        }
        let sa = spec["serviceAccountName"].as_str().unwrap();
        let made = r
            .kind("ServiceAccount")
            .iter()
            .any(|s| s["metadata"]["name"] == sa);
        assert!(made || sa.starts_with("existing-"), "ServiceAccount {sa}");
    }
}
