//! Server-side field validation of built-in kinds against their published schemas, as the real
//! API server decodes a request body into its Go types: a value of the wrong type always fails
//! (400 BadRequest), and a field the schema does not declare is, by the request's
//! `fieldValidation`, refused (`Strict`), reported in a `Warning` header (`Warn`, the default)
//! or kept silently (`Ignore`). Objects under `x-kubernetes-preserve-unknown-fields` (custom
//! resources) and free-form objects (`RawExtension`, `FieldsV1`) are not checked.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The `fieldValidation` directive of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Directive {
    /// Unknown fields fail the request.
    Strict,
    /// Unknown fields are reported as warnings (the server's default).
    Warn,
    /// Unknown fields are kept silently.
    Ignore,
}

impl Directive {
    /// Parses the query parameter (absent: `Warn`).
    pub(crate) fn parse(v: Option<&str>) -> Result<Directive, ApiError> {
        match v.unwrap_or("") {
            "" | "Warn" => Ok(Directive::Warn),
            "Strict" => Ok(Directive::Strict),
            "Ignore" => Ok(Directive::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\", not {other:?}"
            ))),
        }
    }
}

/// What is wrong with an object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Findings {
    /// Paths of fields the schema does not declare (`spec.template.spec.containers[0].foo`).
    pub unknown: Vec<String>,
    /// Values of the wrong type: path and the expected type.
    pub wrong_type: Vec<(String, String)>,
}

/// Checks `obj` against the definition `def` in `defs`, and drops the fields the schema does
/// not declare, as decoding into the server's types does.
pub(crate) fn check(defs: &Map<String, Value>, def: &str, obj: &mut Value) -> Findings {
    let mut f = Findings::default();
    if let Some(schema) = defs.get(def) {
        walk(defs, schema, obj, "", &mut f, 0);
    }
    f
}

fn resolve<'a>(defs: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match r.rsplit('/').next().and_then(|name| defs.get(name)) {
                Some(next) => s = next,
                None => return s,
            }
        } else if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = only;
        } else {
            break;
        }
    }
    s
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(
    defs: &Map<String, Value>,
    schema: &Value,
    v: &mut Value,
    path: &str,
    f: &mut Findings,
    depth: usize,
) {
    if v.is_null() || depth > 64 {
        return;
    }
    let s = resolve(defs, schema);
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    if s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            f.wrong_type
                .push((path.to_string(), "int or string".into()));
        }
        return;
    }
    let ty = s.get("type").and_then(Value::as_str);
    let ok = match ty {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    if !ok {
        f.wrong_type
            .push((path.to_string(), ty.unwrap_or_default().to_string()));
        return;
    }
    match v {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && additional.is_none() {
                return; // free-form
            }
            m.retain(|k, cv| match (props.and_then(|p| p.get(k)), additional) {
                (Some(ps), _) | (None, Some(ps)) => {
                    walk(defs, ps, cv, &child(path, k), f, depth + 1);
                    true
                }
                (None, None) => {
                    f.unknown.push(child(path, k));
                    false
                }
            });
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, iv) in items.iter_mut().enumerate() {
                    walk(defs, is, iv, &format!("{path}[{i}]"), f, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Applies the directive to the findings: `Err` for a wrong type or (Strict) an unknown field,
/// otherwise the warnings to send (Warn).
pub(crate) fn enforce(
    kind: &str,
    version: &str,
    f: Findings,
    d: Directive,
) -> Result<Vec<String>, ApiError> {
    let prefix = format!("{kind} in version \"{version}\" cannot be handled as a {kind}");
    if let Some((path, ty)) = f.wrong_type.first() {
        return Err(ApiError::bad_request(format!(
            "{prefix}: json: cannot unmarshal a value of the wrong type into field {path} of type {ty}"
        )));
    }
    match d {
        Directive::Strict if !f.unknown.is_empty() => {
            let fields: Vec<String> = f
                .unknown
                .iter()
                .map(|p| format!("unknown field \"{p}\""))
                .collect();
            Err(ApiError::bad_request(format!(
                "{prefix}: strict decoding error: {}",
                fields.join(", ")
            )))
        }
        Directive::Warn => Ok(f
            .unknown
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect()),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::schemas;
    use serde_json::json;

    fn defs() -> Map<String, Value> {
        let mut g = schemas::generator();
        schemas::add_builtin(&mut g, "apps", "v1", "Deployment");
        g.take_definitions(true)
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_found() {
        let d = defs();
        let good = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "labels": {"x": "y"}, "creationTimestamp": null},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "a"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [
                        {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}],
                         "resources": {"limits": {"cpu": "1", "memory": 5}}}]}}}});
        let mut checked = good.clone();
        assert_eq!(
            check(&d, "io.k8s.api.apps.v1.Deployment", &mut checked),
            Findings::default()
        );
        assert_eq!(checked, good);
        let mut bad = good.clone();
        bad["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("x");
        bad["spec"]["bogus"] = json!(1);
        bad["spec"]["replicas"] = json!("two");
        let f = check(&d, "io.k8s.api.apps.v1.Deployment", &mut bad);
        assert!(
            bad["spec"].get("bogus").is_none(),
            "unknown fields are dropped"
        );
        assert_eq!(
            f.unknown,
            ["spec.bogus", "spec.template.spec.containers[0].imagee"]
        );
        assert_eq!(
            f.wrong_type,
            [("spec.replicas".to_string(), "integer".to_string())]
        );
        assert_eq!(
            enforce("Deployment", "v1", f.clone(), Directive::Strict)
                .unwrap_err()
                .code,
            400
        );
        let mut unknown_only = f;
        unknown_only.wrong_type.clear();
        let err = enforce("Deployment", "v1", unknown_only.clone(), Directive::Strict).unwrap_err();
        assert!(
            err.message
                .contains("strict decoding error: unknown field \"spec.bogus\""),
            "{}",
            err.message
        );
        assert_eq!(
            enforce("Deployment", "v1", unknown_only.clone(), Directive::Warn)
                .unwrap()
                .len(),
            2
        );
        assert!(
            enforce("Deployment", "v1", unknown_only, Directive::Ignore)
                .unwrap()
                .is_empty()
        );
    }
}
