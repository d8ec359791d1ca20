//! The baseline of Ferry's comparison judge (ANALYSIS.md): when a canary's analysis has a query
//! with a `judge` block, a fresh ReplicaSet of the old version runs next to the canary, sized
//! like it, so both sides have the same age and warm-up. Queries name it
//! `{{ferry.baselineReplicaSetName}}`. It goes when the target promotes or rolls back.
//!
//! The baseline carries the application and target labels but not the workload label, so it is
//! never taken for a running version of the workload, and its own pod-template-hash value, so its
//! pods are its own.

use crate::EngineError;
use crate::cluster::{self, KubeOpError};
use crate::progress::Workload;
use crate::render::{LABEL_HASH, LABEL_WORKLOAD};
use crate::target::Run;
use ferry_deploy::{Step, Strategy, TargetPlan};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// Label: marks a comparison baseline.
pub const LABEL_ROLE: &str = "ferry.dev/role";

/// Whether the target's canary compares against a baseline (a query with a `judge` block).
pub fn needed(plan: &TargetPlan) -> bool {
    let Strategy::Canary { steps } = &plan.strategy else {
        return false;
    };
    steps.iter().any(|s| match s {
        Step::Analysis(a) => a.queries.iter().any(|q| q.judge.is_some()),
        _ => false,
    })
}

/// The baseline's name for a workload: its stable version's name with `-baseline`.
pub fn name(workload: &Workload) -> Option<String> {
    workload
        .stable
        .first()
        .map(|s| format!("{}-baseline", s.name))
}

/// The baseline ReplicaSet made from the stable one: same pod template, its own name and hash
/// label, no workload label, zero replicas (it is scaled like the canary).
pub fn from_stable(stable: &Value, name: &str) -> Value {
    let mut object = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": stable["metadata"]["namespace"],
            "labels": stable["metadata"]["labels"],
            "annotations": {"ferry.dev/replica-set-name": name},
        },
        "spec": {
            "replicas": 0,
            "selector": stable["spec"]["selector"],
            "template": stable["spec"]["template"],
        },
    });
    let hash = format!(
        "baseline-{}",
        stable["spec"]["selector"]["matchLabels"][LABEL_HASH]
            .as_str()
            .unwrap_or_default()
    );
    if let Some(labels) = object["metadata"]["labels"].as_object_mut() {
        labels.remove(LABEL_WORKLOAD);
        labels.insert(LABEL_HASH.into(), json!(hash));
        labels.insert(LABEL_ROLE.into(), json!("baseline"));
    }
    object["spec"]["selector"]["matchLabels"][LABEL_HASH] = json!(hash);
    let pod = &mut object["spec"]["template"]["metadata"];
    pod["labels"][LABEL_HASH] = json!(hash);
    pod["labels"][LABEL_ROLE] = json!("baseline");
    pod["annotations"]["ferry.dev/replica-set-name"] = json!(name);
    pod["annotations"]["deploy.armory.io/replica-set-name"] = json!(name);
    object
}

impl Run<'_> {
    /// Sizes each workload's baseline like its canary (`sizes`), creating it the first time.
    pub(crate) async fn size_baselines(
        &self,
        client: &kube::Client,
        sizes: &[i32],
    ) -> Result<(), EngineError> {
        if !needed(self.plan) {
            return Ok(());
        }
        for (w, size) in self.progress.workloads.iter().zip(sizes) {
            let (Some(name), Some(stable)) = (name(w), w.stable.first()) else {
                continue;
            };
            let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &w.namespace);
            if api
                .get_opt(&name)
                .await
                .map_err(KubeOpError::from)?
                .is_none()
            {
                let Some(old) = api.get_opt(&stable.name).await.map_err(KubeOpError::from)? else {
                    continue;
                };
                let invalid = |e: serde_json::Error| KubeOpError::Invalid(format!("{name}: {e}"));
                let old = serde_json::to_value(old).map_err(invalid)?;
                let typed: ReplicaSet =
                    serde_json::from_value(from_stable(&old, &name)).map_err(invalid)?;
                match api.create(&PostParams::default(), &typed).await {
                    Ok(_) => {}
                    // Created meanwhile by another pass: same object.
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(KubeOpError::from(e).into()),
                }
            }
            cluster::scale(client, &w.namespace, &name, *size).await?;
        }
        Ok(())
    }

    /// Deletes the baselines (promotion or rollback); gone ones are fine.
    pub(crate) async fn remove_baselines(&self, client: &kube::Client) -> Result<(), EngineError> {
        if !needed(self.plan) {
            return Ok(());
        }
        for w in &self.progress.workloads {
            if let Some(name) = name(w) {
                cluster::delete_replica_set(client, &w.namespace, &name).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_copies_the_stable_pods_under_its_own_hash_without_the_workload_label() {
        let stable = json!({
            "metadata": {"name": "web-aaa", "namespace": "shop",
                "labels": {LABEL_WORKLOAD: "web", LABEL_HASH: "aaa", "ferry.dev/target": "prod"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web", LABEL_HASH: "aaa"}},
                "template": {"metadata": {"labels": {"app": "web", LABEL_HASH: "aaa"}},
                             "spec": {"containers": [{"name": "c", "image": "web:1"}]}},
            },
        });
        let b = from_stable(&stable, "web-aaa-baseline");
        assert_eq!(b["metadata"]["name"], "web-aaa-baseline");
        assert_eq!(b["metadata"]["namespace"], "shop");
        assert_eq!(b["spec"]["replicas"], 0);
        assert!(b["metadata"]["labels"].get(LABEL_WORKLOAD).is_none());
        assert_eq!(b["metadata"]["labels"]["ferry.dev/target"], "prod");
        assert_eq!(b["metadata"]["labels"][LABEL_ROLE], "baseline");
        assert_eq!(
            b["spec"]["selector"]["matchLabels"][LABEL_HASH],
            "baseline-aaa"
        );
        assert_eq!(b["spec"]["selector"]["matchLabels"]["app"], "web");
        let pod = &b["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"][LABEL_HASH], "baseline-aaa");
        assert_eq!(pod["spec"]["containers"][0]["image"], "web:1");
        assert_eq!(
            pod["metadata"]["annotations"]["ferry.dev/replica-set-name"],
            "web-aaa-baseline"
        );
    }
}
