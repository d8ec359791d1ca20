//! Where a target's traffic goes while its rollout runs: the label that tells one version's pods
//! from another's ([`VersionLabel`]), the durable record of the routed objects ([`Routing`]), and
//! the Service helpers blue/green, the service mesh and preview addresses share (finding a Service
//! in the target's manifests or its cluster, matching it to a workload, pointing its selector at a
//! version).

use crate::cluster::{self, FIELD_MANAGER, KubeOpError};
use crate::objects::ObjectRef;
use crate::progress::Workload;
use crate::render::{self, LABEL_HASH};
use ferry_deploy::TargetPlan;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The label Kubernetes' own Deployment controller puts on its pods (adopted versions carry it).
pub const LABEL_K8S_HASH: &str = "pod-template-hash";

/// One label that selects exactly one version's pods: Ferry's pod-template hash, or the
/// Kubernetes one on a version adopted from a user `Deployment`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionLabel {
    /// The label key.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl VersionLabel {
    /// The label of the new version of `workload` (its ReplicaSet is `<workload>-<hash>`).
    pub fn of_new(workload: &Workload) -> VersionLabel {
        let hash = workload
            .new_rs
            .strip_prefix(&format!("{}-", workload.name))
            .unwrap_or(&workload.new_rs);
        VersionLabel {
            key: LABEL_HASH.into(),
            value: hash.into(),
        }
    }

    /// The label found in a ReplicaSet selector's `matchLabels`, Ferry's first.
    pub fn in_selector(match_labels: &Map<String, Value>) -> Option<VersionLabel> {
        [LABEL_HASH, LABEL_K8S_HASH].iter().find_map(|key| {
            match_labels
                .get(*key)
                .and_then(Value::as_str)
                .map(|value| VersionLabel {
                    key: (*key).into(),
                    value: value.into(),
                })
        })
    }

    /// `key=value`, for reasons.
    pub fn text(&self) -> String {
        format!("{}={}", self.key, self.value)
    }
}

/// How the target's traffic is routed during its rollout, kept in its progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    /// The namespace of the routed objects.
    pub namespace: String,
    /// The running version traffic comes from (`None` on a first deployment).
    pub old: Option<VersionLabel>,
    /// The new version.
    pub new: VersionLabel,
    /// Blue/green only: how far the switch is.
    #[serde(default)]
    pub stage: Stage,
    /// Blue/green only: new pods ready when the version came up, for reasons.
    #[serde(default)]
    pub ready: i32,
    /// Objects Ferry created for the rollout (`Kind/name`), removed when it ends.
    #[serde(default)]
    pub created: Vec<String>,
}

/// The stages of a blue/green switch, within the `steps` phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// The new version comes up at full size.
    #[default]
    Starting,
    /// `redirectTrafficAfter` runs; the preview Service selects the new version.
    Redirecting,
    /// The active Service selects the new version; `shutDownOldVersionAfter` runs.
    ShuttingDown,
}

/// A user selector without version labels.
pub fn base_selector(selector: &Map<String, Value>) -> Map<String, Value> {
    let mut out = selector.clone();
    out.remove(LABEL_HASH);
    out.remove(LABEL_K8S_HASH);
    out
}

/// Whether every label of `selector` is among `labels` (an empty selector selects nothing here).
pub fn selects(selector: &Map<String, Value>, labels: &Map<String, Value>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pod-template labels of the target's `Deployment` named `workload`.
pub fn pod_labels(plan: &TargetPlan, workload: &str) -> Map<String, Value> {
    plan.manifests
        .iter()
        .find(|m| m.kind == "Deployment" && m.name == workload)
        .and_then(|m| m.object["spec"]["template"]["metadata"]["labels"].as_object())
        .cloned()
        .unwrap_or_default()
}

/// The index of the workload whose pods `selector` selects (version labels ignored).
pub fn workload_for(
    plan: &TargetPlan,
    workloads: &[Workload],
    selector: &Map<String, Value>,
) -> Option<usize> {
    let base = base_selector(selector);
    workloads
        .iter()
        .position(|w| selects(&base, &pod_labels(plan, &w.name)))
}

/// The namespace the target's routed objects live in: the target's, else its first
/// `Deployment`'s, else `default`.
pub fn namespace(plan: &TargetPlan) -> String {
    plan.namespace
        .clone()
        .or_else(|| {
            plan.manifests
                .iter()
                .find(|m| m.kind == "Deployment")
                .and_then(|m| m.namespace.clone())
        })
        .unwrap_or_else(|| "default".into())
}

/// The manifest of kind `kind` named `name`, if the target deploys one.
pub fn manifest<'p>(plan: &'p TargetPlan, kind: &str, name: &str) -> Option<&'p Value> {
    plan.manifests
        .iter()
        .find(|m| m.kind == kind && m.name == name)
        .map(|m| &m.object)
}

/// A Service the rollout routes through, from the target's manifests or else the cluster.
#[derive(Clone, Debug)]
pub struct FoundService {
    /// The object (a manifest with its namespace forced, or what the cluster holds).
    pub object: Value,
    /// It comes from the target's manifests (applied by Ferry) rather than the cluster.
    pub in_manifests: bool,
}

impl FoundService {
    /// Its `spec.selector`.
    pub fn selector(&self) -> Map<String, Value> {
        self.object["spec"]["selector"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }
}

fn services(client: &kube::Client, namespace: &str) -> Api<Service> {
    Api::namespaced(client.clone(), namespace)
}

/// The Service `name` from the target's manifests, else from `namespace` in the cluster.
pub async fn find_service(
    client: &kube::Client,
    plan: &TargetPlan,
    namespace: &str,
    name: &str,
) -> Result<Option<FoundService>, KubeOpError> {
    if let Some(m) = plan
        .manifests
        .iter()
        .find(|m| m.kind == "Service" && m.name == name)
    {
        let ns = m.namespace.as_deref().unwrap_or(namespace);
        return Ok(Some(FoundService {
            object: render::with_namespace(&m.object, Some(ns)),
            in_manifests: true,
        }));
    }
    let found = services(client, namespace).get_opt(name).await?;
    Ok(found.map(|s| FoundService {
        object: serde_json::to_value(s).unwrap_or_default(),
        in_manifests: false,
    }))
}

/// Points the Service at one version: its user selector plus `version`. A manifest Service is
/// applied whole for `deployment` (so the user's selector never reaches the cluster without the
/// version label), returned when this deployment created it; a cluster Service gets its
/// selector patched, the other version label removed.
pub async fn point_service(
    client: &kube::Client,
    service: &FoundService,
    version: &VersionLabel,
    deployment: &str,
) -> Result<Option<ObjectRef>, KubeOpError> {
    let mut selector = base_selector(&service.selector());
    selector.insert(version.key.clone(), json!(version.value));
    let name = service.object["metadata"]["name"]
        .as_str()
        .unwrap_or_default();
    let namespace = service.object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    if service.in_manifests {
        let mut object = service.object.clone();
        object["spec"]["selector"] = Value::Object(selector);
        return crate::objects::apply(client, &object, deployment).await;
    }
    let mut patch_selector = selector;
    for key in [LABEL_HASH, LABEL_K8S_HASH] {
        if key != version.key {
            patch_selector.insert(key.into(), Value::Null);
        }
    }
    let patch = json!({"spec": {"selector": patch_selector}});
    services(client, namespace)
        .patch(name, &merge_params(), &Patch::Merge(&patch))
        .await?;
    Ok(None)
}

fn merge_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Creates or updates a Service Ferry owns: a copy of `like`'s ports selecting `version`
/// within `like`'s selector, labelled with the application. Returns whether it was created.
pub async fn ensure_copy(
    client: &kube::Client,
    like: &FoundService,
    name: &str,
    version: &VersionLabel,
    labels: &Map<String, Value>,
) -> Result<bool, KubeOpError> {
    let namespace = like.object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let existed = services(client, &namespace).get_opt(name).await?.is_some();
    let ports: Vec<Value> = like.object["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut p| {
            if let Some(p) = p.as_object_mut() {
                p.remove("nodePort");
            }
            p
        })
        .collect();
    let mut selector = base_selector(&like.selector());
    selector.insert(version.key.clone(), json!(version.value));
    let object = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"type": "ClusterIP", "ports": ports, "selector": selector},
    });
    cluster::apply(client, &object).await?;
    Ok(!existed)
}

/// Deletes the Service (no-op when it is gone).
pub async fn delete_service(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), KubeOpError> {
    match services(client, namespace)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The version label of a running ReplicaSet, read from its selector.
pub async fn label_of_replica_set(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<VersionLabel>, KubeOpError> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let Some(rs) = api.get_opt(name).await? else {
        return Ok(None);
    };
    let labels: Map<String, Value> = rs
        .spec
        .and_then(|s| s.selector.match_labels)
        .map(|m| m.into_iter().map(|(k, v)| (k, json!(v))).collect())
        .unwrap_or_default();
    Ok(VersionLabel::in_selector(&labels))
}

/// The labels Ferry puts on objects it creates for a target's rollout.
pub fn owned_labels(application: &str, target: &str, deployment_id: &str) -> Map<String, Value> {
    let mut labels = Map::new();
    labels.insert(
        render::LABEL_APPLICATION.into(),
        json!(ferry_deploy::application_slug(application)),
    );
    labels.insert(
        render::LABEL_TARGET.into(),
        json!(render::label_value(target)),
    );
    labels.insert(render::LABEL_DEPLOYMENT_ID.into(), json!(deployment_id));
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn version_labels_come_from_names_and_selectors() {
        let w = Workload {
            name: "hello-ferry".into(),
            new_rs: "hello-ferry-0a1b2c3d4e".into(),
            ..Workload::default()
        };
        assert_eq!(
            VersionLabel::of_new(&w).text(),
            format!("{LABEL_HASH}=0a1b2c3d4e")
        );
        let adopted = map(json!({"app": "x", "pod-template-hash": "abc"}));
        assert_eq!(
            VersionLabel::in_selector(&adopted).unwrap().text(),
            "pod-template-hash=abc"
        );
        let ours = map(json!({"app": "x", "pod-template-hash": "abc", LABEL_HASH: "f"}));
        assert_eq!(VersionLabel::in_selector(&ours).unwrap().key, LABEL_HASH);
        assert!(VersionLabel::in_selector(&map(json!({"app": "x"}))).is_none());
    }

    #[test]
    fn selectors_match_without_their_version_labels() {
        let labels = map(json!({"app": "hello", "tier": "web"}));
        assert!(selects(&map(json!({"app": "hello"})), &labels));
        assert!(!selects(&map(json!({"app": "other"})), &labels));
        assert!(!selects(&Map::new(), &labels));
        let pinned = map(json!({"app": "hello", LABEL_HASH: "1", "pod-template-hash": "2"}));
        assert_eq!(base_selector(&pinned), map(json!({"app": "hello"})));
    }
}
