//! The `paths` of the OpenAPI documents: for each served resource its collection, object and
//! subresource paths with the operations the simulator serves, each tagged with
//! `x-kubernetes-action` and `x-kubernetes-group-version-kind` and listing the query parameters
//! it honours (`fieldManager`, `fieldValidation`, `force` on patch). `dryRun` is not listed:
//! the simulator refuses it, and kubectl then says the server does not support it.

use serde_json::{Map, Value, json};

use super::schemas::definition_name;
use crate::resources::{Registry, ResourceType};

/// Which document the paths are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavour {
    /// OpenAPI 3.0 (`schema` in parameters, `requestBody`, `content` in responses).
    V3,
    /// Swagger 2.0 (`type` in parameters, a `body` parameter, `schema` in responses).
    V2,
}

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

fn reference(def: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{def}")})
}

fn query(flavour: Flavour, name: &str, description: &str, ty: &str) -> Value {
    match flavour {
        Flavour::V3 => json!({"name": name, "in": "query", "description": description,
                              "schema": {"type": ty, "uniqueItems": true}}),
        Flavour::V2 => json!({"name": name, "in": "query", "description": description,
                              "type": ty, "uniqueItems": true}),
    }
}

fn path_param(flavour: Flavour, name: &str) -> Value {
    match flavour {
        Flavour::V3 => json!({"name": name, "in": "path", "required": true,
                              "schema": {"type": "string", "uniqueItems": true}}),
        Flavour::V2 => json!({"name": name, "in": "path", "required": true,
                              "type": "string", "uniqueItems": true}),
    }
}

fn write_params(flavour: Flavour, patch: bool) -> Vec<Value> {
    let mut out = vec![
        query(
            flavour,
            "fieldManager",
            "the name of the actor making the change",
            "string",
        ),
        query(
            flavour,
            "fieldValidation",
            "Ignore, Warn (the default) or Strict: what to do with unknown fields",
            "string",
        ),
    ];
    if patch {
        out.push(query(
            flavour,
            "force",
            "take conflicting fields (apply only)",
            "boolean",
        ));
    }
    out
}

struct Op<'a> {
    action: &'a str,
    id: String,
    gvk: Value,
    params: Vec<Value>,
    body: Option<(Vec<&'a str>, Value)>,
    response: Value,
}

fn operation(flavour: Flavour, op: Op<'_>) -> Value {
    let mut v = json!({
        "operationId": op.id,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    });
    let mut params = op.params;
    match flavour {
        Flavour::V3 => {
            if let Some((types, schema)) = &op.body {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": schema})))
                    .collect();
                v["requestBody"] = json!({"content": content, "required": true});
            }
            v["responses"] = json!({"200": {"description": "OK", "content": {
                "application/json": {"schema": op.response},
                "application/yaml": {"schema": op.response},
            }}});
        }
        Flavour::V2 => {
            if let Some((types, schema)) = &op.body {
                params.push(
                    json!({"name": "body", "in": "body", "required": true, "schema": schema}),
                );
                v["consumes"] = json!(types);
            }
            v["produces"] = json!(["application/json", "application/yaml"]);
            v["responses"] = json!({"200": {"description": "OK", "schema": op.response}});
        }
    }
    v["parameters"] = Value::Array(params);
    v
}

fn camel(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The paths of every resource served in a group version.
pub(super) fn for_group_version(
    registry: &Registry,
    group: &str,
    version: &str,
    flavour: Flavour,
) -> Map<String, Value> {
    let mut out = Map::new();
    for rt in registry.in_group_version(group, version) {
        resource_paths(rt, version, flavour, &mut out);
    }
    out
}

fn resource_paths(
    rt: &ResourceType,
    version: &str,
    flavour: Flavour,
    out: &mut Map<String, Value>,
) {
    let prefix = if rt.group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{}/{version}", rt.group)
    };
    let collection = if rt.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", rt.plural)
    } else {
        format!("{prefix}/{}", rt.plural)
    };
    let item = format!("{collection}/{{name}}");
    let def = reference(&definition_name(rt, version));
    let gvk = json!({"group": rt.group, "version": version, "kind": rt.kind});
    let id = format!(
        "{}{}{}",
        camel(
            &rt.group
                .split('.')
                .next()
                .unwrap_or_default()
                .replace('-', "")
        ),
        camel(version),
        if rt.namespaced {
            format!("Namespaced{}", rt.kind)
        } else {
            rt.kind.clone()
        }
    );
    let scope_params: Vec<Value> = if rt.namespaced {
        vec![path_param(flavour, "namespace")]
    } else {
        vec![]
    };
    let op = |action: &'static str,
              verb: &str,
              params: Vec<Value>,
              body: Option<(Vec<&'static str>, Value)>| {
        operation(
            flavour,
            Op {
                action,
                id: format!("{verb}{id}"),
                gvk: gvk.clone(),
                params,
                body,
                response: def.clone(),
            },
        )
    };
    let patch_body = json!({"type": "object", "description": "a patch"});
    let mut coll = json!({
        "get": op("list", "list", vec![query(flavour, "labelSelector", "", "string"),
                                       query(flavour, "fieldSelector", "", "string"),
                                       query(flavour, "watch", "", "boolean")], None),
        "post": op("post", "create", write_params(flavour, false), Some((vec!["application/json", "application/yaml"], def.clone()))),
        "delete": op("deletecollection", "deleteCollection", vec![query(flavour, "labelSelector", "", "string")], None),
    });
    coll["parameters"] = json!(scope_params);
    out.insert(collection.clone(), coll);

    let mut item_params = scope_params.clone();
    item_params.push(path_param(flavour, "name"));
    let mut obj = json!({
        "get": op("get", "read", vec![], None),
        "put": op("put", "replace", write_params(flavour, false), Some((vec!["application/json", "application/yaml"], def.clone()))),
        "patch": op("patch", "patch", write_params(flavour, true), Some((PATCH_TYPES.to_vec(), patch_body.clone()))),
        "delete": op("delete", "delete", vec![query(flavour, "propagationPolicy", "", "string")], None),
    });
    obj["parameters"] = json!(item_params);
    out.insert(item.clone(), obj);

    if rt.status {
        let mut status = json!({
            "get": op("get", "read", vec![], None),
            "put": op("put", "replace", write_params(flavour, false), Some((vec!["application/json"], def.clone()))),
            "patch": op("patch", "patch", write_params(flavour, true), Some((PATCH_TYPES.to_vec(), patch_body.clone()))),
        });
        status["parameters"] = json!(item_params);
        out.insert(format!("{item}/status"), status);
    }
    if rt.scale {
        let scale_def = reference("io.k8s.api.autoscaling.v1.Scale");
        let scale_gvk = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
        let sop =
            |action: &str, verb: &str, params: Vec<Value>, body: Option<(Vec<&str>, Value)>| {
                operation(
                    flavour,
                    Op {
                        action,
                        id: format!("{verb}{id}Scale"),
                        gvk: scale_gvk.clone(),
                        params,
                        body,
                        response: scale_def.clone(),
                    },
                )
            };
        let mut scale = json!({
            "get": sop("get", "read", vec![], None),
            "put": sop("put", "replace", write_params(flavour, false), Some((vec!["application/json"], scale_def.clone()))),
            "patch": sop("patch", "patch", write_params(flavour, false), Some((PATCH_TYPES[..3].to_vec(), patch_body))),
        });
        scale["parameters"] = json!(item_params);
        out.insert(format!("{item}/scale"), scale);
    }
    if rt.namespaced {
        let all = format!("{prefix}/{}", rt.plural);
        out.insert(all, json!({"get": op("list", "list", vec![], None)}));
    }
}
