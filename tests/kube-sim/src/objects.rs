//! Object lifecycle rules shared by the API handlers and the controller: what the server sets
//! on create (uid, creationTimestamp, generation, defaults), what it keeps on update
//! (immutable metadata, status behind the status subresource, generation bumped on spec
//! change), optimistic concurrency on `resourceVersion`, and validation of the few fields the
//! simulator's controller relies on.

use rand::Rng;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::selector::LabelSelector;

/// Now, as Kubernetes writes timestamps (RFC 3339, seconds, `Z`).
pub(crate) fn now_ts() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random suffix from the alphabet Kubernetes uses for generated names.
pub(crate) fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The object as served in `version` (all versions share storage, without conversion).
pub(crate) fn for_version(rt: &ResourceType, version: &str, mut obj: Value) -> Value {
    obj["apiVersion"] = Value::String(rt.api_version(version));
    obj["kind"] = Value::String(rt.kind.clone());
    obj
}

/// The name and namespace of an object, as stored.
pub(crate) fn name_of(obj: &Value) -> (&str, &str) {
    let meta = &obj["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default(),
        meta["name"].as_str().unwrap_or_default(),
    )
}

/// Prepares a new object for storage: identity, timestamps, generation, defaults, validation.
/// `ns` is the namespace from the request path (empty for cluster-scoped resources).
pub(crate) fn prepare_create(
    rt: &ResourceType,
    version: &str,
    ns: &str,
    obj: Value,
) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body is not an object"));
    }
    let mut obj = for_version(rt, version, obj);
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let meta = obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object");
    let name = match meta.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match meta.get("generateName").and_then(Value::as_str) {
            Some(prefix) => format!("{prefix}{}", random_suffix(5)),
            None => {
                return Err(ApiError::invalid(format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    rt.kind
                )));
            }
        },
    };
    if !valid_name(&name) {
        return Err(ApiError::invalid(format!(
            "{} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 \
             subdomain must consist of lower case alphanumeric characters, '-' or '.'",
            rt.kind
        )));
    }
    meta.insert("name".into(), Value::String(name.clone()));
    if rt.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace \
                     sent on the request ({ns})"
                )));
            }
            _ => {
                meta.insert("namespace".into(), Value::String(ns.to_string()));
            }
        }
    } else {
        meta.remove("namespace");
    }
    meta.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    meta.insert("creationTimestamp".into(), Value::String(now_ts()));
    meta.insert("generation".into(), json!(1));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    if rt.status {
        // Status is written through the status subresource only; create starts it afresh.
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }
    apply_defaults(rt, &mut obj);
    validate(rt, &obj)?;
    Ok(obj)
}

/// The stale-`resourceVersion` conflict, worded as the real API server does.
pub(crate) fn stale(rt: &ResourceType, name: &str) -> ApiError {
    let gr = if rt.group.is_empty() {
        rt.plural.clone()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    };
    ApiError::conflict(format!(
        "Operation cannot be fulfilled on {gr} \"{name}\": the object has been modified; please \
         apply your changes to the latest version and try again"
    ))
}

fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

/// Prepares an update of `old` to `new`. With `subresource == Some("status")` only the status
/// changes; otherwise the status of a resource with a status subresource is kept.
pub(crate) fn prepare_update(
    rt: &ResourceType,
    version: &str,
    old: &Value,
    new: Value,
    subresource: Option<&str>,
) -> Result<Value, ApiError> {
    if !new.is_object() {
        return Err(ApiError::bad_request("the request body is not an object"));
    }
    let (ns, name) = name_of(old);
    if let Some(body_name) = new["metadata"]["name"].as_str()
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(stale(rt, name));
    }
    let mut out = match subresource {
        Some("status") => {
            let mut o = old.clone();
            o["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            if o["status"].is_null()
                && let Some(m) = o.as_object_mut()
            {
                m.remove("status");
            }
            o
        }
        _ => {
            let mut o = for_version(rt, version, new);
            if !o["metadata"].is_object() {
                o["metadata"] = json!({});
            }
            if rt.status {
                match old.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            o
        }
    };
    let meta = &mut out["metadata"];
    meta["name"] = Value::String(name.to_string());
    if rt.namespaced {
        meta["namespace"] = Value::String(ns.to_string());
    }
    for keep in ["uid", "creationTimestamp", "resourceVersion"] {
        meta[keep] = old["metadata"][keep].clone();
    }
    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
    let bumped = if spec_part(old) != spec_part(&out) {
        generation + 1
    } else {
        generation
    };
    out["metadata"]["generation"] = json!(bumped);
    apply_defaults(rt, &mut out);
    validate(rt, &out)?;
    Ok(out)
}

fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    if !rt.builtin {
        return;
    }
    match rt.kind.as_str() {
        "Namespace" => {
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            if obj["status"]["phase"].is_null() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        "Pod" => {
            if obj["spec"]["restartPolicy"].is_null() {
                obj["spec"]["restartPolicy"] = json!("Always");
            }
            if obj["status"]["phase"].is_null() {
                obj["status"]["phase"] = json!("Pending");
            }
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" => {
            let spec = &mut obj["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = json!(1);
            }
            if rt.kind == "Deployment" {
                if spec["strategy"]["type"].is_null() {
                    spec["strategy"]["type"] = json!("RollingUpdate");
                }
                if spec["strategy"]["type"] == "RollingUpdate"
                    && spec["strategy"]["rollingUpdate"].is_null()
                {
                    spec["strategy"]["rollingUpdate"] =
                        json!({"maxSurge": "25%", "maxUnavailable": "25%"});
                }
                for (field, value) in [
                    ("revisionHistoryLimit", 10),
                    ("progressDeadlineSeconds", 600),
                ] {
                    if spec[field].is_null() {
                        spec[field] = json!(value);
                    }
                }
            }
        }
        "Service" => {
            let spec = &mut obj["spec"];
            if spec["type"].is_null() {
                spec["type"] = json!("ClusterIP");
            }
            if spec["clusterIP"].is_null() && spec["type"] != "ExternalName" {
                let uid = obj["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec();
                let (a, b) = (
                    uid.first().copied().unwrap_or(1),
                    uid.get(1).copied().unwrap_or(1),
                );
                let ip = format!("10.96.{a}.{}", b.max(1));
                obj["spec"]["clusterIP"] = json!(ip);
                obj["spec"]["clusterIPs"] = json!([ip]);
            }
            if let Some(ports) = obj["spec"]["ports"].as_array_mut() {
                for port in ports {
                    if port["protocol"].is_null() {
                        port["protocol"] = json!("TCP");
                    }
                    if port["targetPort"].is_null() {
                        port["targetPort"] = port["port"].clone();
                    }
                }
            }
        }
        _ => {}
    }
}

fn validate(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if !rt.builtin
        || !matches!(
            rt.kind.as_str(),
            "Deployment" | "ReplicaSet" | "StatefulSet"
        )
    {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let invalid = |field: &str, why: &str| {
        ApiError::invalid(format!(
            "{}.apps \"{name}\" is invalid: {field}: {why}",
            rt.kind
        ))
    };
    let selector = &obj["spec"]["selector"];
    if !selector.is_object() {
        return Err(invalid("spec.selector", "Required value"));
    }
    let sel = LabelSelector::from_object(selector);
    if sel.is_empty() {
        return Err(invalid(
            "spec.selector",
            "Invalid value: empty selector is invalid for deployment",
        ));
    }
    if !sel.matches(&obj["spec"]["template"]) {
        return Err(invalid(
            "spec.template.metadata.labels",
            "Invalid value: `selector` does not match template `labels`",
        ));
    }
    if obj["spec"]["replicas"].as_i64().is_some_and(|r| r < 0) {
        return Err(invalid(
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn create_then_update_tracks_generation_and_keeps_status() {
        let reg = Registry::new(&[]);
        let rt = reg.find("apps", "v1", "replicasets").unwrap();
        let rs = json!({"metadata": {"name": "web"}, "status": {"replicas": 9},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}}}});
        let created = prepare_create(rt, "v1", "default", rs).unwrap();
        assert_eq!(created["spec"]["replicas"], 1);
        assert!(created.get("status").is_none());
        let mut stored = created.clone();
        stored["status"] = json!({"replicas": 1});
        let mut new = created.clone();
        new["spec"]["replicas"] = json!(3);
        new["status"] = json!({"replicas": 42});
        let updated = prepare_update(rt, "v1", &stored, new, None).unwrap();
        assert_eq!(updated["metadata"]["generation"], 2);
        assert_eq!(updated["status"]["replicas"], 1);
        let status_only = prepare_update(
            rt,
            "v1",
            &stored,
            json!({"spec": {}, "status": {"replicas": 5}}),
            Some("status"),
        )
        .unwrap();
        assert_eq!(status_only["spec"]["replicas"], 1);
        assert_eq!(status_only["status"]["replicas"], 5);
        assert_eq!(status_only["metadata"]["generation"], 1);
        let bad = json!({"metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}}}}});
        assert_eq!(
            prepare_create(rt, "v1", "default", bad).unwrap_err().code,
            422
        );
    }
}
