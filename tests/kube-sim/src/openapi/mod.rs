//! OpenAPI documents for the served resources, generated from the resource registry:
//! `/openapi/v3` (the index of group versions, each with a content hash) and
//! `/openapi/v3/{api/v1 | apis/{group}/{version}}` (paths with their operations and
//! query parameters, and `components.schemas`), and `/openapi/v2` (one Swagger 2.0 document, in
//! JSON only). kubectl reads them to decide whether the server validates fields itself
//! (the `fieldValidation` parameter on an operation tagged with the kind's
//! `x-kubernetes-group-version-kind`) and to compute strategic merge patches for `kubectl apply`
//! (`x-kubernetes-patch-merge-key`/`-strategy`); the same schemas drive the simulator's own
//! `fieldValidation` (see [`validate`]).

mod paths;
pub(crate) mod schemas;
pub(crate) mod validate;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::resources::Registry;

/// Every document, built once from the registry.
#[derive(Debug)]
pub(crate) struct Documents {
    /// `/openapi/v3/{key}` by key (`api/v1`, `apis/apps/v1`), with its hash.
    pub v3: BTreeMap<String, (String, Value)>,
    /// `/openapi/v2`.
    pub v2: Value,
    /// All definitions (OpenAPI 3 references), for validation.
    pub definitions: Map<String, Value>,
}

fn hash_of(v: &Value) -> String {
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// The group versions served, as `(group, version)`, core first.
fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    let mut out = vec![(String::new(), "v1".to_string())];
    for (g, versions) in registry.groups() {
        out.extend(versions.into_iter().map(|v| (g.clone(), v)));
    }
    out
}

/// Builds the definitions of everything served in one group version.
fn definitions_for(registry: &Registry, group: &str, version: &str) -> Map<String, Value> {
    let mut generator = schemas::generator();
    for (g, v, k) in [
        ("autoscaling", "v1", "Scale"),
        ("meta", "v1", "Status"),
        ("meta", "v1", "DeleteOptions"),
        ("meta", "v1", "ObjectMeta"),
    ] {
        schemas::add_builtin(&mut generator, g, v, k);
    }
    let mut kinds = Vec::new();
    let mut custom = Vec::new();
    for rt in registry.in_group_version(group, version) {
        if rt.builtin && schemas::add_builtin(&mut generator, group, version, &rt.kind) {
            kinds.push((group.to_string(), version.to_string(), rt.kind.clone()));
        } else {
            custom.push((
                schemas::definition_name(rt, version),
                schemas::custom_resource(rt, version),
            ));
        }
    }
    let mut defs = generator.take_definitions(true);
    schemas::complete(&mut defs, &kinds);
    defs.extend(custom);
    defs
}

/// The URL key of a group version (`api/v1`, `apis/apps/v1`).
pub(crate) fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

impl Documents {
    /// Builds every document from the registry.
    pub(crate) fn build(registry: &Registry) -> Documents {
        let mut v3 = BTreeMap::new();
        let mut all_defs = Map::new();
        let mut all_paths = Map::new();
        for (group, version) in group_versions(registry) {
            let defs = definitions_for(registry, &group, &version);
            let doc_paths =
                paths::for_group_version(registry, &group, &version, paths::Flavour::V3);
            all_paths.extend(paths::for_group_version(
                registry,
                &group,
                &version,
                paths::Flavour::V2,
            ));
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes (kube-sim, a Kubernetes API simulator)", "version": "v1.33.0"},
                "paths": doc_paths,
                "components": {"schemas": defs},
            });
            all_defs.extend(defs);
            v3.insert(gv_key(&group, &version), (hash_of(&doc), doc));
        }
        let v2_text = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes (kube-sim, a Kubernetes API simulator)", "version": "v1.33.0"},
            "paths": all_paths,
            "definitions": all_defs,
        })
        .to_string()
        .replace("#/components/schemas/", "#/definitions/");
        let v2 = serde_json::from_str(&v2_text).expect("re-parsing our own JSON");
        Documents {
            v3,
            v2,
            definitions: all_defs,
        }
    }

    /// `/openapi/v3`: the group versions with their documents' URLs.
    pub(crate) fn v3_root(&self) -> Value {
        let paths: Map<String, Value> = self
            .v3
            .iter()
            .map(|(k, (hash, _))| {
                (
                    k.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{k}?hash={hash}")}),
                )
            })
            .collect();
        json!({"paths": paths})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::CustomResource;

    #[test]
    fn documents_cover_every_served_group_version() {
        let registry = Registry::new(&CustomResource::ferry_defaults());
        let docs = Documents::build(&registry);
        let root = docs.v3_root();
        for key in [
            "api/v1",
            "apis/apps/v1",
            "apis/autoscaling/v2",
            "apis/networking.istio.io/v1beta1",
        ] {
            let url = root["paths"][key]["serverRelativeURL"].as_str().unwrap();
            assert!(
                url.starts_with(&format!("/openapi/v3/{key}?hash=")),
                "{url}"
            );
        }
        let apps = &docs.v3["apis/apps/v1"].1;
        let patch =
            &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
        let vs = &docs.v3["apis/networking.istio.io/v1"].1["components"]["schemas"]["io.istio.networking.v1.VirtualService"];
        assert_eq!(vs["x-kubernetes-preserve-unknown-fields"], true);
        let text = docs.v2.to_string();
        assert!(!text.contains("#/components/"));
        assert!(docs.v2["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"].is_object());
    }
}
