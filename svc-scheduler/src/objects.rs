//! The ordinary objects a deployment applies (everything but the managed ReplicaSets), which of
//! them it created, so a rollback removes them again, and what the others held before it
//! changed them ([`crate::previous`]), so a rollback puts that back: a failed deployment leaves
//! the target as it found it.
//!
//! An object Ferry creates carries the annotation [`ANNOTATION_CREATED_BY`] with the
//! deployment id. Applying again after a crash finds the object with this deployment's mark and
//! still counts it as created here; the next deployment applies the object without the mark, so
//! server-side apply drops it and that deployment does not count it as its own.

use crate::cluster::{self, FIELD_MANAGER, KubeOpError};
use crate::previous::{NotKept, Previous};
use kube::api::{DeleteParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Annotation: the deployment that created the object.
pub const ANNOTATION_CREATED_BY: &str = "ferry.dev/created-by-deployment";

/// An object a deployment created, to delete on rollback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
}

impl ObjectRef {
    pub(crate) fn of(object: &Value) -> ObjectRef {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        ObjectRef {
            api_version: text(&object["apiVersion"]),
            kind: text(&object["kind"]),
            name: text(&object["metadata"]["name"]),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
        }
    }

    /// A minimal object naming this one, to find its API.
    fn stub(&self) -> Value {
        json!({"apiVersion": self.api_version, "kind": self.kind,
               "metadata": {"name": self.name, "namespace": self.namespace}})
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} in {ns}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Server-side applies `object` (namespace forced already) for `deployment`; returns the object
/// when this deployment created it.
pub async fn apply(
    client: &kube::Client,
    object: &Value,
    deployment: &str,
) -> Result<Option<ObjectRef>, KubeOpError> {
    Ok(apply_keeping(client, object, deployment).await?.created)
}

/// What [`apply_keeping`] did to an object.
#[derive(Debug)]
pub struct Applied {
    /// The object, when this deployment created it.
    pub created: Option<ObjectRef>,
    /// The object existed and another deployment (or a person) made it: its contents before
    /// this apply, or why they were not kept.
    pub previous: Option<Result<Previous, NotKept>>,
}

/// As [`apply`], also returning the contents an existing object had before.
pub async fn apply_keeping(
    client: &kube::Client,
    object: &Value,
    deployment: &str,
) -> Result<Applied, KubeOpError> {
    let (api, name) = cluster::dynamic_api(client, object).await?;
    let existing = api.get_opt(&name).await?;
    let previous = match &existing {
        Some(o) if !created_by(o, deployment) => {
            let contents = serde_json::to_value(o).map_err(|e| {
                KubeOpError::Invalid(format!("{} as read back: {e}", ObjectRef::of(object)))
            })?;
            Some(Previous::of(ObjectRef::of(object), &contents))
        }
        _ => None,
    };
    let ours = existing.as_ref().is_none_or(|o| created_by(o, deployment));
    let mut object = object.clone();
    if ours {
        let meta = &mut object["metadata"];
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"][ANNOTATION_CREATED_BY] = json!(deployment);
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(&object)).await?;
    Ok(Applied {
        created: ours.then(|| ObjectRef::of(&object)),
        previous,
    })
}

/// Whether `deployment` created the object (it carries the deployment's mark).
fn created_by(object: &kube::api::DynamicObject, deployment: &str) -> bool {
    object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CREATED_BY))
        .is_some_and(|d| d == deployment)
}

/// Deletes what a deployment created, newest first (namespaces and definitions, applied first,
/// go last); objects already gone are fine.
pub async fn delete_created(
    client: &kube::Client,
    created: &[ObjectRef],
) -> Result<(), KubeOpError> {
    for object in created.iter().rev() {
        let (api, name) = cluster::dynamic_api(client, &object.stub()).await?;
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if cluster::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_name_the_object_and_find_its_api_again() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "c", "namespace": "web"}, "data": {}});
        let r = ObjectRef::of(&cm);
        assert_eq!(r.to_string(), "ConfigMap/c in web");
        assert_eq!(r.stub()["metadata"]["namespace"], "web");
        let ns = ObjectRef::of(&json!({"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": "web"}}));
        assert_eq!(
            (ns.namespace.clone(), ns.to_string()),
            (None, "Namespace/web".into())
        );
        let back: ObjectRef = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
