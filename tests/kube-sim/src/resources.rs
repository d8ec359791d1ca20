//! The resource registry: which kinds the simulator serves, under which group, versions and
//! plural names, whether they are namespaced and which subresources they have. Built-in kinds
//! are fixed; custom resources are registered at start from `SimConfig::custom_resources`.

use std::collections::BTreeMap;

/// A custom resource definition registered at start (served with generic storage, no schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomResource {
    /// API group, e.g. `networking.istio.io`.
    pub group: String,
    /// Served versions, preferred first; all versions share one storage (no conversion).
    pub versions: Vec<String>,
    /// Kind, e.g. `VirtualService`.
    pub kind: String,
    /// Plural resource name, e.g. `virtualservices`.
    pub plural: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names for kubectl, e.g. `vs`.
    pub short_names: Vec<String>,
}

impl CustomResource {
    /// A namespaced custom resource with the plural taken as the lower-case kind plus `s`.
    pub fn namespaced(group: &str, versions: &[&str], kind: &str, short_names: &[&str]) -> Self {
        CustomResource {
            group: group.to_string(),
            versions: versions
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            kind: kind.to_string(),
            plural: format!("{}s", kind.to_lowercase()),
            namespaced: true,
            short_names: short_names
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
        }
    }

    /// The custom resources Ferry drives: Istio VirtualService and DestinationRule, SMI
    /// TrafficSplit and Gateway API HTTPRoute.
    pub fn ferry_defaults() -> Vec<CustomResource> {
        vec![
            Self::namespaced(
                "networking.istio.io",
                &["v1", "v1beta1", "v1alpha3"],
                "VirtualService",
                &["vs"],
            ),
            Self::namespaced(
                "networking.istio.io",
                &["v1", "v1beta1", "v1alpha3"],
                "DestinationRule",
                &["dr"],
            ),
            Self::namespaced(
                "split.smi-spec.io",
                &["v1alpha4", "v1alpha3", "v1alpha2"],
                "TrafficSplit",
                &["ts"],
            ),
            Self::namespaced(
                "gateway.networking.k8s.io",
                &["v1", "v1beta1"],
                "HTTPRoute",
                &[],
            ),
        ]
    }
}

/// One served resource (all its versions share storage).
#[derive(Debug, Clone)]
pub(crate) struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
    /// Kind of the objects.
    pub kind: String,
    /// Plural name used in paths.
    pub plural: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Has a `status` subresource (status is only written through it).
    pub status: bool,
    /// Has a `scale` subresource (`.spec.replicas`).
    pub scale: bool,
    /// A built-in kind: strategic merge patch and list merge keys apply.
    pub builtin: bool,
}

impl ResourceType {
    /// The storage key, `group/plural`.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `apiVersion` for a served version.
    pub(crate) fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The lower-case singular name.
    pub(crate) fn singular(&self) -> String {
        self.kind.to_lowercase()
    }
}

// A table row: positional arguments read best in the table below.
#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    scale: bool,
) -> ResourceType {
    ResourceType {
        group: group.to_string(),
        versions: vec![version.to_string()],
        kind: kind.to_string(),
        plural: plural.to_string(),
        namespaced,
        short_names: short.iter().map(std::string::ToString::to_string).collect(),
        status,
        scale,
        builtin: true,
    }
}

/// All served resources, looked up by group and plural.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    types: Vec<ResourceType>,
    by_key: BTreeMap<(String, String), usize>,
}

impl Registry {
    /// The built-in kinds plus the given custom resources.
    pub(crate) fn new(custom: &[CustomResource]) -> Registry {
        let mut types = vec![
            builtin(
                "",
                "v1",
                "Namespace",
                "namespaces",
                false,
                &["ns"],
                true,
                false,
            ),
            builtin("", "v1", "Pod", "pods", true, &["po"], true, false),
            builtin("", "v1", "Service", "services", true, &["svc"], true, false),
            builtin(
                "",
                "v1",
                "Endpoints",
                "endpoints",
                true,
                &["ep"],
                false,
                false,
            ),
            builtin(
                "",
                "v1",
                "ConfigMap",
                "configmaps",
                true,
                &["cm"],
                false,
                false,
            ),
            builtin("", "v1", "Secret", "secrets", true, &[], false, false),
            builtin(
                "",
                "v1",
                "ServiceAccount",
                "serviceaccounts",
                true,
                &["sa"],
                false,
                false,
            ),
            builtin(
                "apps",
                "v1",
                "Deployment",
                "deployments",
                true,
                &["deploy"],
                true,
                true,
            ),
            builtin(
                "apps",
                "v1",
                "ReplicaSet",
                "replicasets",
                true,
                &["rs"],
                true,
                true,
            ),
            builtin(
                "apps",
                "v1",
                "StatefulSet",
                "statefulsets",
                true,
                &["sts"],
                true,
                true,
            ),
            builtin(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
                &["hpa"],
                true,
                false,
            ),
        ];
        for c in custom {
            types.push(ResourceType {
                group: c.group.clone(),
                versions: c.versions.clone(),
                kind: c.kind.clone(),
                plural: c.plural.clone(),
                namespaced: c.namespaced,
                short_names: c.short_names.clone(),
                status: false,
                scale: false,
                builtin: false,
            });
        }
        let by_key = types
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.group.clone(), t.plural.clone()), i))
            .collect();
        Registry { types, by_key }
    }

    /// The resource `plural` in `group` if it serves `version`.
    pub(crate) fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        let t = &self.types[*self.by_key.get(&(group.to_string(), plural.to_string()))?];
        t.versions.iter().any(|v| v == version).then_some(t)
    }

    /// The resource by group and plural, any version.
    pub(crate) fn by_plural(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        Some(&self.types[*self.by_key.get(&(group.to_string(), plural.to_string()))?])
    }

    /// Served groups with their versions (preferred first), core group excluded, in a stable order.
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    for v in &t.versions {
                        if !versions.contains(v) {
                            versions.push(v.clone());
                        }
                    }
                }
                None => out.push((t.group.clone(), t.versions.clone())),
            }
        }
        out
    }

    /// Resources served in a group version.
    pub(crate) fn in_group_version(&self, group: &str, version: &str) -> Vec<&ResourceType> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_resources_share_storage_across_versions() {
        let r = Registry::new(&CustomResource::ferry_defaults());
        let v1 = r
            .find("networking.istio.io", "v1", "virtualservices")
            .unwrap();
        let beta = r
            .find("networking.istio.io", "v1beta1", "virtualservices")
            .unwrap();
        assert_eq!(v1.key(), beta.key());
        assert!(
            r.find("networking.istio.io", "v2", "virtualservices")
                .is_none()
        );
        assert!(r.find("apps", "v1", "deployments").unwrap().scale);
        let groups = r.groups();
        assert_eq!(groups[0].0, "apps");
        assert!(
            groups
                .iter()
                .any(|(g, v)| g == "networking.istio.io" && v[0] == "v1")
        );
    }
}
