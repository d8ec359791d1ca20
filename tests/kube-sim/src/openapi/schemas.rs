//! The schemas behind the OpenAPI documents: the built-in kinds' published schemas (k8s-openapi's
//! `schemars` implementations, named as the real API server names them, `io.k8s.api.apps.v1.Deployment`),
//! completed with what those omit and kubectl reads: `x-kubernetes-group-version-kind` on each
//! kind and the strategic-merge-patch metadata (`x-kubernetes-patch-strategy`,
//! `x-kubernetes-patch-merge-key`) of the lists and maps Ferry's kinds carry. Custom resources
//! get an open schema (`x-kubernetes-preserve-unknown-fields`), as a CRD without a structural
//! schema for its body.

use k8s_openapi::api::{apps, autoscaling, core};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// Strategic merge patch metadata of the built-in types, as the Kubernetes sources declare it
/// (`patchStrategy`/`patchMergeKey` struct tags): definition, property, strategy, merge key.
/// Lists not named here are atomic (replaced whole by a strategic merge patch).
pub(crate) const PATCH_METADATA: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        None,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "merge",
        Some("uid"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    ("io.k8s.api.core.v1.Container", "env", "merge", Some("name")),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "merge",
        Some("port"),
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        None,
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
];

/// The definition name of a served kind (custom resources: the reversed group, as CRDs are named).
pub(crate) fn definition_name(rt: &ResourceType, version: &str) -> String {
    if rt.builtin {
        let group = match rt.group.as_str() {
            "" => "core",
            g => g,
        };
        format!("io.k8s.api.{group}.{version}.{}", rt.kind)
    } else {
        let reversed: Vec<&str> = rt.group.split('.').rev().collect();
        format!("{}.{version}.{}", reversed.join("."), rt.kind)
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "version": version, "kind": kind}])
}

/// A generator for OpenAPI 3 schemas (`#/components/schemas/...` references).
pub(crate) fn generator() -> SchemaGenerator {
    SchemaSettings::openapi3().into_generator()
}

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    let _ = generator.subschema_for::<T>();
}

/// Adds the schema of a built-in kind (and everything it references) to `generator`; `false`
/// when the kind has no published schema here.
pub(crate) fn add_builtin(
    generator: &mut SchemaGenerator,
    group: &str,
    version: &str,
    kind: &str,
) -> bool {
    match (group, version, kind) {
        ("", "v1", "Namespace") => add::<core::v1::Namespace>(generator),
        ("", "v1", "Pod") => add::<core::v1::Pod>(generator),
        ("", "v1", "Service") => add::<core::v1::Service>(generator),
        ("", "v1", "Endpoints") => add::<core::v1::Endpoints>(generator),
        ("", "v1", "ConfigMap") => add::<core::v1::ConfigMap>(generator),
        ("", "v1", "Secret") => add::<core::v1::Secret>(generator),
        ("", "v1", "ServiceAccount") => add::<core::v1::ServiceAccount>(generator),
        ("apps", "v1", "Deployment") => add::<apps::v1::Deployment>(generator),
        ("apps", "v1", "ReplicaSet") => add::<apps::v1::ReplicaSet>(generator),
        ("apps", "v1", "StatefulSet") => add::<apps::v1::StatefulSet>(generator),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            add::<autoscaling::v2::HorizontalPodAutoscaler>(generator);
        }
        ("autoscaling", "v1", "Scale") => add::<autoscaling::v1::Scale>(generator),
        ("meta", "v1", "Status") => add::<meta::Status>(generator),
        ("meta", "v1", "DeleteOptions") => add::<meta::DeleteOptions>(generator),
        ("meta", "v1", "ObjectMeta") => add::<meta::ObjectMeta>(generator),
        _ => return false,
    }
    true
}

/// The open schema of a custom resource version.
pub(crate) fn custom_resource(rt: &ResourceType, version: &str) -> Value {
    json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        },
        "x-kubernetes-group-version-kind": gvk(&rt.group, version, &rt.kind),
    })
}

/// Completes the generated definitions: group-version-kind of every served built-in kind (and of
/// Scale, Status and DeleteOptions) and the patch metadata of [`PATCH_METADATA`].
pub(crate) fn complete(definitions: &mut Map<String, Value>, kinds: &[(String, String, String)]) {
    let mut extra = vec![
        (
            "autoscaling".to_string(),
            "v1".to_string(),
            "Scale".to_string(),
        ),
        (String::new(), "v1".to_string(), "Status".to_string()),
        (String::new(), "v1".to_string(), "DeleteOptions".to_string()),
    ];
    extra.extend(kinds.iter().cloned());
    for (group, version, kind) in &extra {
        let name = match (group.as_str(), kind.as_str()) {
            ("", "Status" | "DeleteOptions") => {
                format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}")
            }
            ("", _) => format!("io.k8s.api.core.{version}.{kind}"),
            (g, _) => format!("io.k8s.api.{g}.{version}.{kind}"),
        };
        if let Some(Value::Object(def)) = definitions.get_mut(&name) {
            def.insert(
                "x-kubernetes-group-version-kind".into(),
                gvk(group, version, kind),
            );
        }
    }
    for (def, prop, strategy, key) in PATCH_METADATA {
        let Some(p) = definitions
            .get_mut(*def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*prop))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        p.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        if let Some(k) = key {
            p.insert("x-kubernetes-patch-merge-key".into(), json!(k));
            p.insert("x-kubernetes-list-type".into(), json!("map"));
            p.insert("x-kubernetes-list-map-keys".into(), json!([k]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_schema_carries_gvk_and_patch_metadata() {
        let mut generator = generator();
        assert!(add_builtin(&mut generator, "apps", "v1", "Deployment"));
        let mut defs = generator.take_definitions(true);
        complete(
            &mut defs,
            &[("apps".into(), "v1".into(), "Deployment".into())],
        );
        let d = &defs["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            d["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let containers = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        let ports = &defs["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        // Every entry of the table names a property that exists once its kind is generated.
        for kind in ["Pod", "Service", "ServiceAccount", "Namespace"] {
            assert!(add_builtin(&mut generator, "", "v1", kind));
        }
        for (g, v, k) in [
            ("apps", "v1", "ReplicaSet"),
            ("apps", "v1", "StatefulSet"),
            ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        ] {
            assert!(add_builtin(&mut generator, g, v, k));
        }
        let defs: Map<String, Value> = defs
            .into_iter()
            .chain(generator.take_definitions(true))
            .collect();
        for (def, prop, _, _) in PATCH_METADATA {
            assert!(
                defs.get(*def)
                    .and_then(|d| d["properties"].get(*prop))
                    .is_some(),
                "{def}.{prop} is not in the published schema"
            );
        }
    }

    #[test]
    fn strategic_merge_uses_the_published_merge_keys() {
        // patch.rs merges lists by field name; it must agree with the metadata served to kubectl.
        for (_, prop, _, key) in PATCH_METADATA {
            let Some(key) = key else { continue };
            let item = json!({ *key: 1 });
            assert_eq!(
                crate::patch::merge_key(prop, std::slice::from_ref(&item), true),
                Some(*key),
                "{prop}"
            );
        }
    }
}
