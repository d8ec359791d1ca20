//! Traffic management of a target, as the rollout phases see it: which manifests Ferry applies
//! itself (Services, VirtualServices and DestinationRules it points at a version), the checks
//! before anything is deployed, the set-up once the new ReplicaSets exist, canary weights set on
//! the mesh (Istio, SMI or a Gateway API HTTPRoute; [`crate::advance`] decides when), the promotion
//! to 100% and the rollback to the old version. Blue/green's own flow is in [`crate::bluegreen`].

use crate::EngineError;
use crate::bluegreen;
use crate::gateway;
use crate::mesh::{self, Split, Versions};
use crate::routing::{self, Routing, VersionLabel};
use crate::target::Run;
use ferry_deploy::{Manifest, Strategy, TargetPlan};

/// Whether the target's canary weights are set on a service mesh.
pub(crate) fn meshed(plan: &TargetPlan) -> bool {
    matches!(plan.strategy, Strategy::Canary { .. })
        && !(plan.traffic_management.istio.is_empty()
            && plan.traffic_management.smi.is_empty()
            && plan.traffic_management.gateway_api.is_empty())
}

/// The mesh objects carrying the target's weights, for people ("VirtualService web, HTTPRoute
/// shop").
pub(crate) fn mesh_names(plan: &TargetPlan) -> String {
    let tm = &plan.traffic_management;
    let istio = (tm.istio.iter()).map(|i| format!("VirtualService {}", i.virtual_service));
    let smi = (tm.smi.iter()).map(|s| format!("TrafficSplit {}", s.traffic_split_name));
    let routes = (tm.gateway_api.iter()).map(|g| format!("HTTPRoute {}", g.http_route_name));
    let names: Vec<String> = istio.chain(smi).chain(routes).collect();
    names.join(", ")
}

/// Whether Ferry applies `m` itself, pointed at a version, instead of applying it as written.
pub(crate) fn is_routed(plan: &TargetPlan, m: &Manifest) -> bool {
    if bluegreen::services(plan).is_some() {
        return m.kind == "Service"
            && bluegreen::named_services(plan)
                .iter()
                .any(|(_, name)| m.name == *name);
    }
    let tm = &plan.traffic_management;
    meshed(plan)
        && (tm.istio.iter().any(|i| {
            (m.kind == "VirtualService" && m.name == i.virtual_service)
                || (m.kind == "DestinationRule"
                    && i.destination_rule
                        .as_ref()
                        .is_some_and(|d| d.name == m.name))
        }) || tm
            .gateway_api
            .iter()
            .any(|g| m.kind == gateway::KIND && m.name == g.http_route_name))
}

impl Run<'_> {
    /// Why the target's routing cannot work (a named Service or mesh object missing), checked
    /// before anything is deployed.
    pub(crate) async fn check_routing(
        &self,
        client: &kube::Client,
    ) -> Result<Option<String>, EngineError> {
        if let Some(reason) = self.check_blue_green(client).await? {
            return Ok(Some(reason));
        }
        if !meshed(self.plan) {
            return Ok(None);
        }
        let namespace = routing::namespace(self.plan);
        let tm = &self.plan.traffic_management;
        for istio in &tm.istio {
            let Some(rule) = &istio.destination_rule else {
                return Ok(Some(format!(
                    "trafficManagement.istio: VirtualService {:?} needs a destinationRule so the \
                     versions can be told apart",
                    istio.virtual_service
                )));
            };
            for (kind, name) in [
                ("VirtualService", &istio.virtual_service),
                ("DestinationRule", &rule.name),
            ] {
                if mesh::load(client, self.plan, &namespace, kind, name, true)
                    .await?
                    .is_none()
                {
                    return Ok(Some(format!(
                        "trafficManagement.istio: {kind} {name:?} is neither among the target's \
                         manifests nor in namespace {namespace:?} of the cluster"
                    )));
                }
            }
        }
        for smi in &tm.smi {
            let root = &smi.root_service_name;
            if routing::find_service(client, self.plan, &namespace, root)
                .await?
                .is_none()
            {
                return Ok(Some(format!(
                    "trafficManagement.smi: rootServiceName {root:?} is neither among the \
                     target's manifests nor a Service in namespace {namespace:?} of the cluster"
                )));
            }
        }
        for g in &tm.gateway_api {
            if let Some(reason) = gateway::check(client, self.plan, &namespace, g).await? {
                return Ok(Some(format!("trafficManagement.gatewayApi: {reason}")));
            }
        }
        Ok(None)
    }

    /// Once the new ReplicaSets exist: points blue/green Services or the mesh at the running
    /// version (on a first deployment, at the new one). `Some(reason)` when that cannot be done.
    pub(crate) async fn set_up_routing(
        &mut self,
        client: &kube::Client,
    ) -> Result<Option<String>, EngineError> {
        if bluegreen::services(self.plan).is_some() {
            return self.start_blue_green(client).await;
        }
        if !meshed(self.plan) || self.progress.workloads.is_empty() {
            return Ok(None);
        }
        let workload = &self.progress.workloads[0];
        let new = VersionLabel::of_new(workload);
        let old = match workload.stable.first() {
            None => None,
            Some(stable) => {
                let label =
                    routing::label_of_replica_set(client, &workload.namespace, &stable.name)
                        .await?;
                if label.is_none() {
                    return Ok(Some(format!(
                        "the running ReplicaSet {} has no pod-template-hash label to route by",
                        stable.name
                    )));
                }
                label
            }
        };
        self.progress.routing = Some(Routing {
            namespace: routing::namespace(self.plan),
            old,
            new,
            ..Routing::default()
        });
        let split = if self.progress.first {
            Split::Promoted
        } else {
            Split::Canary(0)
        };
        self.set_mesh(client, split, true).await
    }

    /// Sets every mesh entry of the target to `split`; `Some(reason)` when an object is not as
    /// the deploy file describes it.
    pub(crate) async fn set_mesh(
        &mut self,
        client: &kube::Client,
        split: Split,
        from_manifest: bool,
    ) -> Result<Option<String>, EngineError> {
        let Some(routing) = self.progress.routing.clone() else {
            return Ok(None);
        };
        let labels = routing::owned_labels(
            &self.ctx.plan.application,
            &self.target.name,
            &self.ctx.deployment.id.to_string(),
        );
        let deployment = self.ctx.deployment.id.to_string();
        let at = Versions {
            deployment: &deployment,
            client,
            plan: self.plan,
            namespace: &routing.namespace,
            old: routing.old.as_ref(),
            new: &routing.new,
            labels: &labels,
        };
        let tm = &self.plan.traffic_management;
        for istio in &tm.istio {
            match mesh::set_istio(&at, istio, split, from_manifest).await? {
                Ok(objects) => objects.into_iter().for_each(|o| self.note_created(Some(o))),
                Err(reason) => return Ok(Some(format!("trafficManagement.istio: {reason}"))),
            }
        }
        let mut created = Vec::new();
        // A first deployment needs no split: the root Service reaches the only version.
        if !self.progress.first || split != Split::Promoted {
            for smi in &tm.smi {
                let root = &smi.root_service_name;
                let Some(root) =
                    routing::find_service(client, self.plan, &routing.namespace, root).await?
                else {
                    return Ok(Some(format!(
                        "trafficManagement.smi: Service {root:?} disappeared"
                    )));
                };
                created.extend(mesh::set_smi(&at, &root, smi, split).await?);
            }
        }
        for g in &tm.gateway_api {
            let root = &g.root_service_name;
            let Some(root) =
                routing::find_service(client, self.plan, &routing.namespace, root).await?
            else {
                return Ok(Some(format!(
                    "trafficManagement.gatewayApi: Service {root:?} disappeared"
                )));
            };
            let first = self.progress.first;
            match gateway::set_route(&at, &root, g, split, first, from_manifest).await? {
                Ok((services, route)) => {
                    created.extend(services);
                    self.note_created(route);
                }
                Err(reason) => return Ok(Some(format!("trafficManagement.gatewayApi: {reason}"))),
            }
        }
        if let Some(r) = self.progress.routing.as_mut() {
            for c in created {
                if !r.created.contains(&c) {
                    r.created.push(c);
                }
            }
        }
        Ok(None)
    }

    /// Removes what Ferry created for the rollout (SMI TrafficSplits and backend Services).
    async fn remove_created(&mut self, client: &kube::Client) -> Result<(), EngineError> {
        let Some(routing) = self.progress.routing.as_mut() else {
            return Ok(());
        };
        // One version runs now: routes back on the root Service before its copies go.
        let deployment = self.ctx.deployment.id.to_string();
        for g in &self.plan.traffic_management.gateway_api {
            gateway::restore_root(client, self.plan, &routing.namespace, g, &deployment).await?;
        }
        // The split first: the root Service then reaches its pods directly.
        routing
            .created
            .sort_by_key(|c| !c.starts_with("TrafficSplit/"));
        for object in std::mem::take(&mut routing.created) {
            let (kind, name) = object.split_once('/').unwrap_or(("", &object));
            if kind == "Service" {
                routing::delete_service(client, &routing.namespace, name).await?;
            } else {
                mesh::delete(client, &routing.namespace, kind, name).await?;
            }
        }
        Ok(())
    }

    /// Promotion, after the old version is deleted: the rollout's own objects go.
    pub(crate) async fn finish_routing(
        &mut self,
        client: &kube::Client,
    ) -> Result<(), EngineError> {
        self.remove_created(client).await
    }

    /// Rollback, before the new version is removed: traffic back to the old version.
    pub(crate) async fn restore_routing(
        &mut self,
        client: &kube::Client,
    ) -> Result<(), EngineError> {
        self.blue_green_back(client).await?;
        if meshed(self.plan)
            && self.progress.routing.is_some()
            && !self.progress.first
            && let Some(reason) = self.set_mesh(client, Split::RolledBack, false).await?
        {
            tracing::warn!(target = %self.target.name, %reason, "mesh not restored");
        }
        Ok(())
    }

    /// Rollback, after the new version is removed: the rollout's own objects and preview
    /// addresses go.
    pub(crate) async fn clean_up_routing(
        &mut self,
        client: &kube::Client,
    ) -> Result<(), EngineError> {
        self.remove_created(client).await?;
        self.remove_previews(client, true).await
    }
}
