//! Pure rendering of a target's manifests into what the engine applies: Ferry-managed
//! ReplicaSets made from the user's `Deployment`s (labels, pod annotations, environment
//! variables, pod-template hash), the other objects in apply order, and canary pod counts.
//!
//! Nothing here touches a cluster, so every rule is unit-tested alone.

use serde_json::{Map, Value, json};

/// Label: the application that owns a managed object (its slug:
/// [`ferry_deploy::application_slug`], collision-safe, unlike [`label_value`]).
pub const LABEL_APPLICATION: &str = "ferry.dev/application";
/// Label: the target (sanitised to a label value) that owns a managed object.
pub const LABEL_TARGET: &str = "ferry.dev/target";
/// Label: the deployment that created the ReplicaSet.
pub const LABEL_DEPLOYMENT_ID: &str = "ferry.dev/deployment-id";
/// Label: the user's Deployment name the ReplicaSet stands for.
pub const LABEL_WORKLOAD: &str = "ferry.dev/workload";
/// Label: the pod-template hash, also part of the selector so versions never share pods.
pub const LABEL_HASH: &str = "ferry.dev/pod-template-hash";
/// Annotation on a kept user Deployment: Ferry manages its pods now.
pub const ANNOTATION_MANAGED: &str = "ferry.dev/managed-by";

/// What the engine knows about the version it deploys, written onto pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderContext {
    /// The application name.
    pub application: String,
    /// The deployment id.
    pub deployment_id: String,
    /// The target (environment) name as written.
    pub target: String,
}

/// A user's `Deployment` turned into a Ferry-managed ReplicaSet.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedReplicaSet {
    /// The user's Deployment name.
    pub workload: String,
    /// The namespace.
    pub namespace: String,
    /// `<workload>-<hash>`.
    pub name: String,
    /// The pod-template hash.
    pub hash: String,
    /// The Deployment's `spec.replicas` (default 1).
    pub replicas: i32,
    /// The ReplicaSet object, `spec.replicas` set to 0 (the engine scales it).
    pub object: Value,
}

/// A Kubernetes label value made from free text: `[a-z0-9A-Z-_.]`, at most 63 characters,
/// starting and ending with an alphanumeric (target names may hold spaces and parentheses).
pub fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(63)
        .collect();
    trimmed
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The value with object keys sorted at every level, so its text is canonical whatever map
/// order serde_json was built with.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A stable hash of the user's pod template and the target: the same template deployed again
/// to the same target names the same ReplicaSet. FNV-1a, 40 bits, as 10 hex digits.
pub fn pod_template_hash(template: &Value, target: &str) -> String {
    let text = format!("{}\u{0}{target}", canonical(template));
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

/// The labels that find a target's managed ReplicaSets of one workload.
pub fn workload_selector(application: &str, target: &str, workload: &str) -> String {
    format!(
        "{LABEL_APPLICATION}={},{LABEL_TARGET}={},{LABEL_WORKLOAD}={}",
        ferry_deploy::application_slug(application),
        label_value(target),
        label_value(workload)
    )
}

fn object_mut<'a>(value: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !value[key].is_object() {
        value[key] = json!({});
    }
    value[key].as_object_mut().expect("just made an object")
}

/// Turns a user's `Deployment` object into the managed ReplicaSet of this version.
pub fn managed_replica_set(
    deployment: &Value,
    namespace: &str,
    ctx: &RenderContext,
) -> ManagedReplicaSet {
    let workload = deployment["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let replicas = deployment["spec"]["replicas"]
        .as_i64()
        .and_then(|r| i32::try_from(r).ok())
        .unwrap_or(1);
    let user_template = deployment["spec"]["template"].clone();
    let hash = pod_template_hash(&user_template, &ctx.target);
    let name = format!("{workload}-{hash}");
    let labels = [
        (
            LABEL_APPLICATION,
            ferry_deploy::application_slug(&ctx.application),
        ),
        (LABEL_TARGET, label_value(&ctx.target)),
        (LABEL_WORKLOAD, label_value(&workload)),
        (LABEL_HASH, hash.clone()),
    ];
    let mut template = user_template;
    {
        let meta = object_mut(&mut template, "metadata");
        let mut pod_labels = meta
            .get("labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in &labels {
            pod_labels.insert((*k).to_string(), json!(v));
        }
        meta.insert("labels".into(), Value::Object(pod_labels));
        let mut annotations = meta
            .get("annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for prefix in ["ferry.dev", "deploy.armory.io"] {
            annotations.insert(format!("{prefix}/application"), json!(ctx.application));
            annotations.insert(format!("{prefix}/deployment-id"), json!(ctx.deployment_id));
            annotations.insert(format!("{prefix}/environment"), json!(ctx.target));
            annotations.insert(format!("{prefix}/replica-set-name"), json!(name));
        }
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    let variables = [
        ("APPLICATION_NAME", ctx.application.as_str()),
        ("DEPLOYMENT_ID", ctx.deployment_id.as_str()),
        ("ENVIRONMENT_NAME", ctx.target.as_str()),
        ("REPLICA_SET_NAME", name.as_str()),
    ];
    if let Some(containers) = template["spec"]["containers"].as_array_mut() {
        for container in containers {
            let mut env: Vec<Value> = container["env"].as_array().cloned().unwrap_or_default();
            let ours: Vec<(String, &str)> = variables
                .iter()
                .flat_map(|(k, v)| [(format!("FERRY_{k}"), *v), (format!("ARMORY_{k}"), *v)])
                .collect();
            env.retain(|e| !ours.iter().any(|(k, _)| e["name"] == json!(k)));
            env.extend(ours.iter().map(|(k, v)| json!({"name": k, "value": v})));
            container["env"] = Value::Array(env);
        }
    }
    let mut match_labels = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    match_labels.insert(LABEL_HASH.into(), json!(hash));
    let mut rs_labels = Map::new();
    for (k, v) in &labels {
        rs_labels.insert((*k).to_string(), json!(v));
    }
    rs_labels.insert(LABEL_DEPLOYMENT_ID.into(), json!(ctx.deployment_id));
    let mut selector = json!({"matchLabels": match_labels});
    if let Some(expressions) = deployment["spec"]["selector"].get("matchExpressions") {
        selector["matchExpressions"] = expressions.clone();
    }
    let object = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": rs_labels,
            "annotations": {
                "ferry.dev/environment": ctx.target,
                "ferry.dev/replica-set-name": name,
            },
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": deployment["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    });
    ManagedReplicaSet {
        workload,
        namespace: namespace.to_string(),
        name,
        hash,
        replicas,
        object,
    }
}

/// The canary's pod count at `weight` percent of `replicas`: rounded, at least 1 when the
/// weight is above zero, never above `replicas`.
pub fn canary_pods(replicas: i32, weight: u8) -> i32 {
    if weight == 0 || replicas <= 0 {
        return 0;
    }
    let exact = f64::from(replicas) * f64::from(weight) / 100.0;
    (exact.round() as i32).clamp(1, replicas)
}

/// An object to server-side apply with the namespace forced (cluster-scoped kinds untouched).
pub fn with_namespace(object: &Value, namespace: Option<&str>) -> Value {
    let mut object = object.clone();
    if let Some(ns) = namespace {
        object_mut(&mut object, "metadata").insert("namespace".into(), json!(ns));
    }
    // Server-side apply refuses server-owned fields in the applied configuration.
    if let Some(meta) = object["metadata"].as_object_mut() {
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
        ] {
            meta.remove(field);
        }
    }
    object
}

/// A human duration for reasons: `45s`, `10m`, `1h30m`.
pub fn human_duration(secs: u64) -> String {
    match (secs / 3600, (secs % 3600) / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "hello", "namespace": "web"},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "hello"}},
                "template": {
                    "metadata": {"labels": {"app": "hello"}},
                    "spec": {"containers": [{"name": "web", "image": image,
                        "env": [{"name": "FERRY_ENVIRONMENT_NAME", "value": "stale"},
                                {"name": "KEEP", "value": "1"}]}]}
                }
            }
        })
    }

    fn ctx(target: &str) -> RenderContext {
        RenderContext {
            application: "hello-ferry".into(),
            deployment_id: "d-1".into(),
            target: target.into(),
        }
    }

    #[test]
    fn a_deployment_becomes_a_labelled_annotated_replica_set() {
        let rs = managed_replica_set(&deployment("app:1"), "web", &ctx("prod-eu (blue)"));
        assert_eq!(rs.name, format!("hello-{}", rs.hash));
        assert_eq!(rs.replicas, 4);
        let o = &rs.object;
        assert_eq!(o["kind"], "ReplicaSet");
        assert_eq!(o["metadata"]["namespace"], "web");
        assert_eq!(o["spec"]["replicas"], 0);
        assert_eq!(o["metadata"]["labels"][LABEL_TARGET], "prod-eu--blue");
        assert_eq!(o["metadata"]["labels"][LABEL_DEPLOYMENT_ID], "d-1");
        assert_eq!(o["spec"]["selector"]["matchLabels"]["app"], "hello");
        assert_eq!(o["spec"]["selector"]["matchLabels"][LABEL_HASH], rs.hash);
        let pod = &o["spec"]["template"]["metadata"];
        assert_eq!(pod["labels"][LABEL_HASH], rs.hash);
        assert_eq!(pod["labels"]["app"], "hello");
        for prefix in ["ferry.dev", "deploy.armory.io"] {
            assert_eq!(
                pod["annotations"][format!("{prefix}/application")],
                "hello-ferry"
            );
            assert_eq!(pod["annotations"][format!("{prefix}/deployment-id")], "d-1");
            assert_eq!(
                pod["annotations"][format!("{prefix}/environment")],
                "prod-eu (blue)"
            );
            assert_eq!(
                pod["annotations"][format!("{prefix}/replica-set-name")],
                rs.name
            );
        }
        let env = o["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        let get = |k: &str| {
            let found: Vec<&Value> = env.iter().filter(|e| e["name"] == k).collect();
            assert_eq!(found.len(), 1, "{k} exactly once in {env:?}");
            found[0]["value"].clone()
        };
        assert_eq!(get("KEEP"), "1");
        for p in ["FERRY", "ARMORY"] {
            assert_eq!(get(&format!("{p}_APPLICATION_NAME")), "hello-ferry");
            assert_eq!(get(&format!("{p}_DEPLOYMENT_ID")), "d-1");
            assert_eq!(get(&format!("{p}_ENVIRONMENT_NAME")), "prod-eu (blue)");
            assert_eq!(get(&format!("{p}_REPLICA_SET_NAME")), json!(rs.name));
        }
    }

    #[test]
    fn an_application_named_as_people_write_it_labels_by_its_slug() {
        let mut named = ctx("dev");
        named.application = "Potato Facts".into();
        let rs = managed_replica_set(&deployment("app:1"), "web", &named);
        let slug = ferry_deploy::application_slug("Potato Facts");
        assert_eq!(rs.object["metadata"]["labels"][LABEL_APPLICATION], slug);
        assert!(workload_selector("Potato Facts", "dev", "hello").contains(&slug));
        // Shown as written wherever people read it.
        let pod = &rs.object["spec"]["template"]["metadata"];
        assert_eq!(pod["annotations"]["ferry.dev/application"], "Potato Facts");
    }

    #[test]
    fn the_hash_follows_the_template_and_target_not_the_deployment() {
        let a = managed_replica_set(&deployment("app:1"), "web", &ctx("dev"));
        let mut other_ctx = ctx("dev");
        other_ctx.deployment_id = "d-2".into();
        let again = managed_replica_set(&deployment("app:1"), "web", &other_ctx);
        let changed = managed_replica_set(&deployment("app:2"), "web", &ctx("dev"));
        let elsewhere = managed_replica_set(&deployment("app:1"), "web", &ctx("prod"));
        assert_eq!(a.name, again.name);
        assert_ne!(a.hash, changed.hash);
        assert_ne!(a.hash, elsewhere.hash);
        assert_eq!(a.hash.len(), 10);
    }

    #[test]
    fn canary_pod_counts_round_and_never_vanish() {
        assert_eq!(canary_pods(4, 25), 1);
        assert_eq!(canary_pods(4, 50), 2);
        assert_eq!(canary_pods(4, 100), 4);
        assert_eq!(canary_pods(3, 10), 1);
        assert_eq!(canary_pods(3, 50), 2);
        assert_eq!(canary_pods(10, 0), 0);
        assert_eq!(canary_pods(1, 1), 1);
    }

    #[test]
    fn label_values_and_namespaces_and_durations() {
        assert_eq!(label_value("prod-eu (blue-green)"), "prod-eu--blue-green");
        assert_eq!(label_value(" (x) "), "x");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a",
            "resourceVersion": "7"}});
        let forced = with_namespace(&cm, Some("b"));
        assert_eq!(forced["metadata"]["namespace"], "b");
        assert!(forced["metadata"].get("resourceVersion").is_none());
        assert_eq!(with_namespace(&cm, None)["metadata"]["namespace"], "a");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(5400), "1h30m");
    }
}
