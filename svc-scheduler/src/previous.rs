//! The contents objects had before a deployment first changed them, kept in the target's
//! progress and put back when the target rolls back, so a rollback restores what it overwrote
//! and not only removes what it created. Bounded: an object larger than
//! [`MAX_PREVIOUS_BYTES`] is not kept (a warning says so, and its rollback leaves it changed).

use crate::cluster::{self, KubeOpError};
use crate::objects::ObjectRef;
use kube::api::{DynamicObject, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest object (as JSON) whose contents are kept for a rollback; the API server's own
/// limit for a ConfigMap or Secret is 1 MiB, and most objects are a few KiB.
pub const MAX_PREVIOUS_BYTES: usize = 256 * 1024;

/// An object as it was before this deployment first changed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Previous {
    /// Which object.
    pub object: ObjectRef,
    /// Its contents then, without what the server manages (`resourceVersion`, `uid`,
    /// `managedFields`, `status`, ...).
    pub contents: Value,
}

/// Why an existing object's contents were not kept.
#[derive(Debug, PartialEq, Eq)]
pub enum NotKept {
    /// Larger than [`MAX_PREVIOUS_BYTES`] (its size in bytes).
    TooLarge(usize),
}

impl Previous {
    /// The contents of `existing` (as the server returned it) worth restoring.
    pub fn of(object: ObjectRef, existing: &Value) -> Result<Previous, NotKept> {
        let mut contents = existing.clone();
        if let Some(fields) = contents.as_object_mut() {
            fields.remove("status");
        }
        if let Some(meta) = contents["metadata"].as_object_mut() {
            for server_managed in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "managedFields",
                "selfLink",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                meta.remove(server_managed);
            }
        }
        let size = serde_json::to_vec(&contents).map_or(usize::MAX, |b| b.len());
        if size > MAX_PREVIOUS_BYTES {
            return Err(NotKept::TooLarge(size));
        }
        Ok(Previous { object, contents })
    }

    /// Puts the object back as it was: replaced at its current version, or created again if it
    /// is gone. Running it again changes nothing more.
    pub async fn restore(&self, client: &kube::Client) -> Result<(), KubeOpError> {
        let (api, name) = cluster::dynamic_api(client, &self.contents).await?;
        let mut wanted: DynamicObject = serde_json::from_value(self.contents.clone())
            .map_err(|e| KubeOpError::Invalid(format!("{} kept for rollback: {e}", self.object)))?;
        match api.get_opt(&name).await? {
            Some(now) => {
                wanted.metadata.resource_version = now.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &wanted).await?;
            }
            None => {
                api.create(&PostParams::default(), &wanted).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm_ref() -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "c".into(),
            namespace: Some("web".into()),
        }
    }

    #[test]
    fn keeps_the_contents_without_what_the_server_manages() {
        let existing = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "web", "resourceVersion": "7", "uid": "u",
                         "managedFields": [{}], "labels": {"team": "a"}},
            "data": {"mode": "blue"}, "status": {}});
        let kept = Previous::of(cm_ref(), &existing).unwrap();
        assert_eq!(
            kept.contents,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c", "namespace": "web", "labels": {"team": "a"}},
                   "data": {"mode": "blue"}})
        );
        let back: Previous = serde_json::from_value(serde_json::to_value(&kept).unwrap()).unwrap();
        assert_eq!(back, kept);
    }

    #[test]
    fn objects_beyond_the_bound_are_not_kept() {
        let big = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "web"},
            "data": {"blob": "x".repeat(MAX_PREVIOUS_BYTES)}});
        assert!(matches!(
            Previous::of(cm_ref(), &big),
            Err(NotKept::TooLarge(n)) if n > MAX_PREVIOUS_BYTES
        ));
    }
}
