//! HorizontalPodAutoscalers of the Deployments Ferry adopts, as Armory does. An HPA that targets
//! a workload's Deployment (or the ReplicaSet of its running version) is pointed at the running
//! version's ReplicaSet while the rollout runs, so it never scales the new version, which grows
//! only by the strategy's steps; when the rollout finishes it is pointed at the new ReplicaSet;
//! a rollback points it back at the running version. An HPA among the deployment's own
//! manifests is applied only when the rollout finishes, already pointed at the new ReplicaSet.

use crate::progress::Workload;
use crate::target::Run;
use crate::{EngineError, cluster::KubeOpError, render};
use ferry_deploy::{Manifest, TargetPlan};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

/// The kind this module handles.
const KIND: &str = "HorizontalPodAutoscaler";

/// Whether `m` is an HPA of one of the target's Deployments (applied by this module, not as
/// written).
pub(crate) fn is_workload_autoscaler(plan: &TargetPlan, m: &Manifest) -> bool {
    m.kind == KIND
        && workload_of(&m.object).is_some_and(|name| {
            plan.manifests
                .iter()
                .any(|d| d.kind == "Deployment" && d.name == name)
        })
}

/// The Deployment an HPA object's `scaleTargetRef` names, if it names one.
fn workload_of(hpa: &Value) -> Option<&str> {
    let target = &hpa["spec"]["scaleTargetRef"];
    (target["kind"] == "Deployment")
        .then(|| target["name"].as_str())
        .flatten()
}

/// `spec.scaleTargetRef` naming ReplicaSet `name`.
fn replica_set_ref(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name})
}

/// Whether the HPA targets one of `names` of `kind`.
fn targets(hpa: &HorizontalPodAutoscaler, kind: &str, names: &[&str]) -> bool {
    let target = &hpa.spec.as_ref().map(|s| &s.scale_target_ref);
    target.is_some_and(|t| t.kind == kind && names.contains(&t.name.as_str()))
}

/// The cluster's HPAs of `workload`: those targeting its Deployment or one of its ReplicaSets.
async fn of_workload(
    api: &Api<HorizontalPodAutoscaler>,
    workload: &Workload,
) -> Result<Vec<HorizontalPodAutoscaler>, KubeOpError> {
    let mut sets: Vec<&str> = workload.stable.iter().map(|s| s.name.as_str()).collect();
    sets.push(&workload.new_rs);
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|hpa| {
            targets(hpa, "Deployment", &[&workload.name]) || targets(hpa, "ReplicaSet", &sets)
        })
        .collect())
}

/// Points every HPA of `workload` in the cluster at ReplicaSet `rs`.
async fn point_all(
    client: &kube::Client,
    workload: &Workload,
    rs: &str,
) -> Result<usize, KubeOpError> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &workload.namespace);
    let mut pointed = 0;
    for hpa in of_workload(&api, workload).await? {
        if targets(&hpa, "ReplicaSet", &[rs]) {
            continue;
        }
        let Some(name) = hpa.metadata.name.as_deref() else {
            continue;
        };
        let patch = json!({"spec": {"scaleTargetRef": replica_set_ref(rs)}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        pointed += 1;
    }
    Ok(pointed)
}

impl Run<'_> {
    /// While the rollout runs: the workloads' HPAs scale the running version only.
    pub(crate) async fn hold_autoscalers(&self, client: &kube::Client) -> Result<(), EngineError> {
        for w in &self.progress.workloads {
            if let Some(stable) = w.stable.first() {
                point_all(client, w, &stable.name).await?;
            }
        }
        Ok(())
    }

    /// The rollout finished: the workloads' HPAs (and the deployment's own, applied now) scale
    /// the new version.
    pub(crate) async fn promote_autoscalers(
        &mut self,
        client: &kube::Client,
    ) -> Result<(), EngineError> {
        let manifests = crate::template::render_manifests(self).map_err(|reason| {
            EngineError::Kube(KubeOpError::Invalid(format!(
                "rendering the autoscalers: {reason}"
            )))
        })?;
        let deployment = self.ctx.deployment.id.to_string();
        for m in manifests
            .iter()
            .filter(|m| is_workload_autoscaler(self.plan, m))
        {
            let Some(workload) = workload_of(&m.object) else {
                continue;
            };
            let Some(w) = self.progress.workloads.iter().find(|w| w.name == workload) else {
                continue;
            };
            let mut object = render::with_namespace(&m.object, m.namespace.as_deref());
            object["spec"]["scaleTargetRef"] = replica_set_ref(&w.new_rs);
            let created = crate::objects::apply(client, &object, &deployment).await?;
            self.note_created(created);
        }
        for w in &self.progress.workloads {
            point_all(client, w, &w.new_rs).await?;
        }
        Ok(())
    }

    /// Rolling back: the workloads' HPAs scale the running version again.
    pub(crate) async fn restore_autoscalers(
        &self,
        client: &kube::Client,
    ) -> Result<(), EngineError> {
        self.hold_autoscalers(client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(kind: &str, name: &str, object: Value) -> Manifest {
        Manifest {
            source: "m.yaml".into(),
            kind: kind.into(),
            name: name.into(),
            namespace: Some("web".into()),
            object,
        }
    }

    #[test]
    fn only_hpas_of_the_targets_deployments_are_handled_here() {
        let hpa = |kind: &str, name: &str| {
            manifest(
                KIND,
                "hpa",
                json!({"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name}}}),
            )
        };
        let plan: TargetPlan = serde_json::from_value(json!({
            "name": "prod", "account": "c", "namespace": "web", "dependsOn": [],
            "beforeDeployment": [], "afterDeployment": [], "strategyName": null,
            "strategy": {"kind": "canary", "steps": []},
            "trafficManagement": {"istio": [], "smi": [], "kubernetes": []},
            "manifests": [{"source": "m.yaml", "kind": "Deployment", "name": "hello",
                           "namespace": "web", "object": {}}],
            "remoteManifests": []
        }))
        .unwrap();
        assert!(is_workload_autoscaler(&plan, &hpa("Deployment", "hello")));
        assert!(!is_workload_autoscaler(&plan, &hpa("Deployment", "other")));
        assert!(!is_workload_autoscaler(&plan, &hpa("StatefulSet", "hello")));
        assert!(!is_workload_autoscaler(
            &plan,
            &manifest("Service", "hello", json!({}))
        ));
    }
}
