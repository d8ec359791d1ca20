//! Idempotent cluster work through kube-rs: server-side apply of ordinary objects, managed
//! ReplicaSets (create once, scale, read readiness, delete) and adoption of the user's
//! `Deployment`. Every function may run again after a crash or a redelivery with the same result.

use crate::clusters::ClusterError;
use crate::render::{self, ANNOTATION_MANAGED, ManagedReplicaSet};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::{Value, json};

/// The field manager of everything Ferry applies.
pub const FIELD_MANAGER: &str = "ferry";

/// Why cluster work failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeOpError {
    /// No client for the target's account.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The Kubernetes API refused or could not be reached.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A manifest lacks what applying it needs.
    #[error("manifest {0}")]
    Invalid(String),
}

/// What a managed ReplicaSet looks like now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsState {
    /// `spec.replicas`.
    pub desired: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Server-side applies `object` (namespace already forced), force-owning conflicting fields.
pub async fn apply(client: &kube::Client, object: &Value) -> Result<(), KubeOpError> {
    let (api, name) = dynamic_api(client, object).await?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object)).await?;
    Ok(())
}

/// The API of `object`'s kind (found by discovery) in its namespace, and its name.
pub(crate) async fn dynamic_api(
    client: &kube::Client,
    object: &Value,
) -> Result<(Api<DynamicObject>, String), KubeOpError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() || name.is_empty() {
        return Err(KubeOpError::Invalid(format!(
            "{kind}/{name} lacks apiVersion, kind or metadata.name"
        )));
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = match (caps.scope, object["metadata"]["namespace"].as_str()) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (Scope::Namespaced, None) => {
            return Err(KubeOpError::Invalid(format!(
                "{kind}/{name} is namespaced but has no namespace"
            )));
        }
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    };
    Ok((api, name.to_string()))
}

fn replica_sets(client: &kube::Client, namespace: &str) -> Api<ReplicaSet> {
    Api::namespaced(client.clone(), namespace)
}

/// Creates the managed ReplicaSet at `initial` replicas unless it exists (an existing one keeps
/// its scale: it is the engine's progress).
pub async fn ensure_replica_set(
    client: &kube::Client,
    rs: &ManagedReplicaSet,
    initial: i32,
) -> Result<(), KubeOpError> {
    let api = replica_sets(client, &rs.namespace);
    if api.get_opt(&rs.name).await?.is_some() {
        return Ok(());
    }
    let mut object = rs.object.clone();
    object["spec"]["replicas"] = json!(initial);
    let typed: ReplicaSet = serde_json::from_value(object)
        .map_err(|e| KubeOpError::Invalid(format!("ReplicaSet {}: {e}", rs.name)))?;
    match api.create(&PostParams::default(), &typed).await {
        Ok(_) => Ok(()),
        // Another replica created it meanwhile: same object, same result.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The ReplicaSet's desired and ready pods, `None` when it does not exist.
pub async fn replica_set_state(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<RsState>, KubeOpError> {
    let rs = replica_sets(client, namespace).get_opt(name).await?;
    Ok(rs.map(|rs| RsState {
        desired: rs.spec.and_then(|s| s.replicas).unwrap_or(1),
        ready: rs.status.and_then(|s| s.ready_replicas).unwrap_or(0),
    }))
}

/// Sets the ReplicaSet's `spec.replicas` (no-op when it is gone).
pub async fn scale(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    replicas: i32,
) -> Result<(), KubeOpError> {
    let patch = json!({"spec": {"replicas": replicas}});
    match replica_sets(client, namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the ReplicaSet and its pods (no-op when it is gone).
pub async fn delete_replica_set(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), KubeOpError> {
    match replica_sets(client, namespace)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Carries out a capacity decision's ReplicaSet changes in order ([`crate::capacity`]).
pub async fn carry_out(
    client: &kube::Client,
    effects: &[crate::capacity::RsEffect],
) -> Result<(), KubeOpError> {
    for effect in effects {
        match effect {
            crate::capacity::RsEffect::Scale {
                namespace,
                name,
                replicas,
            } => scale(client, namespace, name, *replicas).await?,
            crate::capacity::RsEffect::Delete { namespace, name } => {
                delete_replica_set(client, namespace, name).await?;
            }
        }
    }
    Ok(())
}

/// The current state of each new ReplicaSet of `workloads`, in order (a missing one reads as
/// no pods).
pub async fn new_states(
    client: &kube::Client,
    workloads: &[crate::progress::Workload],
) -> Result<Vec<RsState>, KubeOpError> {
    let mut states = Vec::with_capacity(workloads.len());
    for w in workloads {
        let state = replica_set_state(client, &w.namespace, &w.new_rs).await?;
        states.push(state.unwrap_or(RsState {
            desired: 0,
            ready: 0,
        }));
    }
    Ok(states)
}

/// The target's other managed ReplicaSets of this workload that still run pods, largest first:
/// the stable version(s) the new one replaces, with their sizes and images.
pub async fn running_versions(
    client: &kube::Client,
    application: &str,
    target: &str,
    rs: &ManagedReplicaSet,
) -> Result<Vec<crate::progress::Stable>, KubeOpError> {
    let selector = render::workload_selector(application, target, &rs.workload);
    let list = replica_sets(client, &rs.namespace)
        .list(&ListParams::default().labels(&selector))
        .await?;
    let mut out: Vec<crate::progress::Stable> = list
        .items
        .into_iter()
        .filter_map(|item| {
            let name = item.metadata.name?;
            let spec = item.spec?;
            let replicas = spec.replicas.unwrap_or(1);
            let images = (spec.template.and_then(|t| t.spec).into_iter())
                .flat_map(|pod| pod.containers)
                .filter_map(|c| c.image)
                .collect();
            (name != rs.name && replicas > 0).then_some(crate::progress::Stable {
                name,
                replicas,
                images,
            })
        })
        .collect();
    out.sort_by(|a, b| b.replicas.cmp(&a.replicas).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// Takes over the user's `Deployment` of the same name, if one exists: its ReplicaSets are
/// labelled as this workload's running version (the stable version a canary or blue/green
/// replaces, whose pods keep serving until the new version is ready), then the Deployment lets
/// go of them. Without `keep`, it is deleted with orphan propagation. With `keep`, it stays:
/// paused (so it makes no new ReplicaSet once it owns none), its ReplicaSets taken out of its
/// selector and ownership, then scaled to zero and marked as Ferry's (see
/// [`retire_user_deployment`]). Running again finds nothing left to take over.
pub async fn adopt_user_deployment(
    client: &kube::Client,
    application: &str,
    target: &str,
    rs: &ManagedReplicaSet,
    keep: bool,
) -> Result<(), KubeOpError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &rs.namespace);
    let Some(user) = deployments.get_opt(&rs.workload).await? else {
        return Ok(());
    };
    if keep {
        let pause = json!({"spec": {"paused": true}});
        deployments
            .patch(&rs.workload, &PatchParams::default(), &Patch::Merge(&pause))
            .await?;
    }
    let uid = user.metadata.uid.clone().unwrap_or_default();
    let mut labels = serde_json::Map::new();
    if keep {
        // A kept Deployment would claim a ReplicaSet its selector still matches again.
        for key in selector_keys(&user) {
            labels.insert(key, Value::Null);
        }
    }
    let application = ferry_deploy::application_slug(application);
    for (key, value) in [
        (render::LABEL_APPLICATION, application.as_str()),
        (render::LABEL_TARGET, target),
        (render::LABEL_WORKLOAD, rs.workload.as_str()),
    ] {
        labels.insert(key.to_string(), json!(render::label_value(value)));
    }
    let mut patch = json!({"metadata": {"labels": labels}});
    if keep {
        patch["metadata"]["ownerReferences"] = Value::Null;
    }
    let api = replica_sets(client, &rs.namespace);
    for owned in api.list(&ListParams::default()).await?.items {
        let owned_by_user = owned
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid);
        if let (true, Some(name)) = (owned_by_user, owned.metadata.name.as_deref()) {
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    if keep {
        return retire_user_deployment(client, &rs.namespace, &rs.workload).await;
    }
    match deployments
        .delete(&rs.workload, &DeleteParams::orphan())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The label keys whose presence makes an object match the Deployment's selector.
fn selector_keys(deployment: &Deployment) -> Vec<String> {
    let Some(selector) = deployment.spec.as_ref().map(|s| &s.selector) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(
        selector
            .match_expressions
            .iter()
            .flatten()
            .filter(|e| e.operator == "In" || e.operator == "Exists")
            .map(|e| e.key.clone()),
    );
    keys
}

/// With `keepDeploymentObject`: scales the user's Deployment to zero and marks it as managed by
/// Ferry (it owns no ReplicaSet any more, so no pod goes with it).
pub async fn retire_user_deployment(
    client: &kube::Client,
    namespace: &str,
    workload: &str,
) -> Result<(), KubeOpError> {
    let patch = json!({
        "metadata": {"annotations": {ANNOTATION_MANAGED: "ferry"}},
        "spec": {"replicas": 0},
    });
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    match deployments
        .patch(workload, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_keys_are_those_whose_removal_stops_a_match() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "hello"},
            "spec": {
                "selector": {
                    "matchLabels": {"app": "hello"},
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["web"]},
                        {"key": "canary", "operator": "DoesNotExist"},
                        {"key": "team", "operator": "Exists"},
                    ],
                },
                "template": {"metadata": {"labels": {"app": "hello"}}},
            }
        }))
        .unwrap();
        assert_eq!(selector_keys(&deployment), ["app", "tier", "team"]);
    }
}
