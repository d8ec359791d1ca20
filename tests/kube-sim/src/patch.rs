//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902, via the `json-patch` crate) and
//! strategic merge patch for the built-in kinds. Strategic merge merges lists by a merge key
//! chosen from the field name (containers, env, volumes by `name`; container ports by
//! `containerPort`, service ports by `port`; volumeMounts by `mountPath`; conditions by `type`;
//! ownerReferences by `uid`) and honours the `$patch: replace|delete` directives; other
//! directives (`$setElementOrder`, `$retainKeys`) are accepted and ignored.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch flavours, from the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchKind {
    /// The patch kind for a content type, ignoring parameters such as `charset`.
    pub(crate) fn from_content_type(ct: &str) -> Option<PatchKind> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Applies a merge, JSON or strategic merge patch to `target`.
pub(crate) fn apply(
    kind: PatchKind,
    target: &Value,
    patch: &Value,
    builtin: bool,
) -> Result<Value, ApiError> {
    let mut out = target.clone();
    match kind {
        PatchKind::Merge => json_patch::merge(&mut out, patch),
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut out, &ops).map_err(|e| {
                ApiError::invalid(format!("the JSON patch could not be applied: {e}"))
            })?;
        }
        PatchKind::Strategic => {
            if !builtin {
                return Err(ApiError::unsupported_media_type(
                    "the body of the request was in an unknown format - accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml",
                ));
            }
            strategic_merge(&mut out, patch, true);
        }
        PatchKind::Apply => {
            return Err(ApiError::bad_request(
                "apply patches go through server-side apply",
            ));
        }
    }
    Ok(out)
}

/// The merge key of a list field, or `None` when the list is atomic (replaced whole).
pub(crate) fn merge_key(field: &str, items: &[Value], builtin: bool) -> Option<&'static str> {
    if !builtin {
        return None;
    }
    let has = |k: &str| items.iter().any(|i| i.get(k).is_some());
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "secrets"
        | "resourceClaims"
        | "schedulingGates" => Some("name"),
        "podIPs" => Some("ip"),
        "ports" if has("containerPort") => Some("containerPort"),
        "ports" => Some("port"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        _ => None,
    }
}

/// Removes SMP directives (`$patch`, `$setElementOrder/...`, ...) recursively.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|i| i.get("$patch").is_none())
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Strategic merge of `patch` into `target`; also the merge step of server-side apply (whose
/// applied configurations carry no directives).
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value, builtin: bool) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                *target = clean(patch);
                return;
            }
            merge_map(t, p, builtin);
        }
        _ => *target = clean(patch),
    }
}

fn merge_map(t: &mut Map<String, Value>, p: &Map<String, Value>, builtin: bool) {
    for (k, pv) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) = (t.get_mut(field), pv.as_array()) {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), pv) {
            (Some(tv @ Value::Object(_)), Value::Object(pm)) => {
                match pm.get("$patch").and_then(Value::as_str) {
                    Some("delete") => {
                        t.remove(k);
                    }
                    _ => strategic_merge(tv, pv, builtin),
                }
            }
            (Some(Value::Array(tl)), Value::Array(pl)) => {
                let key = merge_key(k, pl, builtin).or_else(|| merge_key(k, tl, builtin));
                match key {
                    Some(key) => merge_list(tl, pl, key, builtin),
                    None => {
                        t.insert(k.clone(), clean(pv));
                    }
                }
            }
            _ => {
                t.insert(k.clone(), clean(pv));
            }
        }
    }
}

fn merge_list(t: &mut Vec<Value>, p: &[Value], key: &str, builtin: bool) {
    if p.iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *t = p
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(clean)
            .collect();
        return;
    }
    for item in p {
        let Some(kv) = item.get(key) else {
            t.push(clean(item));
            continue;
        };
        let pos = t.iter().position(|e| e.get(key) == Some(kv));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                t.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut t[i], item, builtin),
            (None, false) => t.push(clean(item)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let pod = json!({"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "proxy:1"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]},
            {"name": "sidecar", "$patch": "delete"},
            {"name": "new", "image": "new:1"}
        ], "$setElementOrder/containers": [{"name": "app"}]}});
        let out = apply(PatchKind::Strategic, &pod, &patch, true).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [
                {"name": "app", "image": "app:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "new", "image": "new:1"}
            ]}})
        );
    }

    #[test]
    fn merge_patch_replaces_lists_and_json_patch_applies_ops() {
        let obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "replicas": 1}});
        let merged = apply(
            PatchKind::Merge,
            &obj,
            &json!({"spec": {"containers": [{"name": "c"}], "replicas": null}}),
            true,
        )
        .unwrap();
        assert_eq!(merged, json!({"spec": {"containers": [{"name": "c"}]}}));
        let ops = json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]);
        assert_eq!(
            apply(PatchKind::Json, &obj, &ops, true).unwrap()["spec"]["replicas"],
            3
        );
        let bad = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
        assert_eq!(
            apply(PatchKind::Json, &obj, &bad, true).unwrap_err().code,
            422
        );
        assert_eq!(
            apply(PatchKind::Strategic, &obj, &json!({}), false)
                .unwrap_err()
                .code,
            415
        );
    }
}
