//! The blue/green strategy: the new version comes up at full size beside the old one with the
//! preview Service selecting it and the active Service still on the old version; the
//! `redirectTrafficAfter` conditions run in parallel; the active Service switches; the
//! `shutDownOldVersionAfter` conditions run in parallel; then the promotion removes the old
//! version. Until then a rollback points both Services back at the old version.
//!
//! Versions are told apart by the pod-template-hash label, added to each Service's own selector.
//! The stages' decisions are pure ([`decide`]); this file observes and carries them out.

mod decide;

use crate::EngineError;
use crate::capacity::Pods;
use crate::decide::{Conditions, Tally};
use crate::outcome::Slot;
use crate::progress::WaitState;
use crate::routing::{self, FoundService, Routing, Stage, VersionLabel};
use crate::target::{Flow, Run};
use crate::waits::Poll;
use decide::{Move, Names, Seen};
use ferry_bus::StepKey;
use ferry_deploy::{Step, Strategy, TargetPlan};
use ferry_store::events::StepStatus;
use ferry_store::targets::TargetStatus;

/// The active and (optional) preview Service names of a blue/green strategy.
pub(crate) fn services(plan: &TargetPlan) -> Option<(&str, Option<&str>)> {
    match &plan.strategy {
        Strategy::BlueGreen {
            active_service,
            preview_service,
            ..
        } => Some((active_service, preview_service.as_deref())),
        _ => None,
    }
}

/// The blue/green Services a strategy names, with their roles: the active one, then the
/// preview one when there is one.
pub(crate) fn named_services(plan: &TargetPlan) -> Vec<(&'static str, &str)> {
    match services(plan) {
        Some((active, preview)) => std::iter::once(("activeService", active))
            .chain(preview.map(|p| ("previewService", p)))
            .collect(),
        None => Vec::new(),
    }
}

impl Run<'_> {
    /// Why the blue/green Services cannot be used (missing, or selecting none of the target's
    /// Deployments), before anything is deployed.
    pub(crate) async fn check_blue_green(
        &self,
        client: &kube::Client,
    ) -> Result<Option<String>, EngineError> {
        let named = named_services(self.plan);
        if named.is_empty() {
            return Ok(None);
        }
        let namespace = routing::namespace(self.plan);
        for (role, name) in named {
            let Some(found) = routing::find_service(client, self.plan, &namespace, name).await?
            else {
                return Ok(Some(format!(
                    "blue/green: {role} {name:?} is neither among the target's manifests nor a \
                     Service in namespace {namespace:?} of the cluster"
                )));
            };
            let base = routing::base_selector(&found.selector());
            let matched = self.plan.manifests.iter().any(|m| {
                m.kind == "Deployment"
                    && routing::selects(&base, &routing::pod_labels(self.plan, &m.name))
            });
            if !matched {
                return Ok(Some(format!(
                    "blue/green: {role} {name:?} selects none of the target's Deployments \
                     (its selector is {})",
                    serde_json::Value::Object(base)
                )));
            }
        }
        Ok(None)
    }

    /// Once the new ReplicaSets exist: records the versions and points the Services (the
    /// active one at the old version, or at the new one on a first deployment; the preview one
    /// at the new version). `Some(reason)` when the running version cannot be selected.
    pub(crate) async fn start_blue_green(
        &mut self,
        client: &kube::Client,
    ) -> Result<Option<String>, EngineError> {
        let Some((active, preview)) = services(self.plan) else {
            return Ok(None);
        };
        let namespace = routing::namespace(self.plan);
        let active = self.service(client, &namespace, active).await?;
        let preview = match preview {
            Some(name) => Some(self.service(client, &namespace, name).await?),
            None => None,
        };
        let Some(index) =
            routing::workload_for(self.plan, &self.progress.workloads, &active.selector())
        else {
            return Ok(Some(
                "blue/green: the active Service selects no workload".into(),
            ));
        };
        let workload = &self.progress.workloads[index];
        let new = VersionLabel::of_new(workload);
        let old = match workload.stable.first() {
            None => None,
            Some(stable) => {
                match routing::label_of_replica_set(client, &workload.namespace, &stable.name)
                    .await?
                {
                    Some(label) => Some(label),
                    None => {
                        return Ok(Some(format!(
                            "blue/green: the running ReplicaSet {} has no pod-template-hash \
                             label to select its pods by",
                            stable.name
                        )));
                    }
                }
            }
        };
        // The Services this deployment creates go again if it rolls back.
        let deployment = self.ctx.deployment.id.to_string();
        let pointed = std::iter::once((&active, old.as_ref().unwrap_or(&new)))
            .chain(preview.as_ref().map(|preview| (preview, &new)));
        for (service, version) in pointed {
            let created = routing::point_service(client, service, version, &deployment).await?;
            self.note_created(created);
        }
        self.progress.routing = Some(Routing {
            namespace,
            old,
            new,
            ..Routing::default()
        });
        Ok(None)
    }

    async fn service(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<FoundService, EngineError> {
        routing::find_service(client, self.plan, namespace, name)
            .await?
            .ok_or_else(|| {
                crate::cluster::KubeOpError::Invalid(format!(
                    "Service {name:?} disappeared from namespace {namespace:?}"
                ))
                .into()
            })
    }

    /// The `steps` phase of a blue/green target: observe what its stage waits on, ask
    /// [`decide::next`], carry the move out.
    pub(crate) async fn blue_green(&mut self) -> Result<Flow, EngineError> {
        let Strategy::BlueGreen {
            active_service,
            preview_service,
            redirect_traffic_after,
            shut_down_old_version_after,
        } = &self.plan.strategy
        else {
            return Ok(Flow::Continue);
        };
        let mut routing = self.progress.routing.clone().unwrap_or_default();
        let seen = match routing.stage {
            Stage::Starting => {
                let (ready, want) = self.scale_new_to_full().await?;
                Seen::Starting(Pods { ready, want })
            }
            Stage::Redirecting => Seen::Redirecting(
                self.conditions(redirect_traffic_after, StepKey::Redirect)
                    .await?,
            ),
            Stage::ShuttingDown => Seen::ShuttingDown(
                self.conditions(shut_down_old_version_after, StepKey::ShutDown)
                    .await?,
            ),
        };
        let names = Names {
            active: active_service,
            preview: preview_service.as_deref(),
            ready: routing.ready,
        };
        match decide::next(seen, names) {
            Move::AwaitPods(reason) => self.await_pods(reason).await,
            Move::Hold(status, reason) => Ok(self.wait_with(status, reason)),
            Move::RollBack(reason) => {
                self.roll_back(reason).await?;
                Ok(Flow::Wait)
            }
            Move::Ready { ready, reason } => {
                self.progress.deadline = None;
                routing.ready = ready;
                routing.stage = Stage::Redirecting;
                self.progress.routing = Some(routing);
                self.progress.gates.clear();
                self.status = TargetStatus::Running;
                self.record(StepStatus::Progressing, reason);
                Ok(Flow::Continue)
            }
            Move::Switch => {
                let client = self.client().await?;
                let namespace = routing.namespace.clone();
                let active = self.service(&client, &namespace, active_service).await?;
                let deployment = self.ctx.deployment.id.to_string();
                routing::point_service(&client, &active, &routing.new, &deployment).await?;
                routing.stage = Stage::ShuttingDown;
                self.progress.routing = Some(routing);
                self.progress.gates.clear();
                self.progress.weight = Some(100);
                self.status = TargetStatus::Running;
                let names: Vec<&str> = (self.progress.workloads.iter())
                    .map(|w| w.new_rs.as_str())
                    .collect();
                self.record(
                    StepStatus::Succeeded,
                    format!(
                        "blue/green: traffic switched: service {active_service} selects the new \
                         version ({})",
                        names.join(", ")
                    ),
                );
                self.announce_step(0, 100);
                Ok(Flow::Continue)
            }
            Move::Promote => {
                self.progress.gates.clear();
                self.status = TargetStatus::Running;
                self.phase = crate::progress::Phase::Promoting;
                Ok(Flow::Continue)
            }
        }
    }

    /// Runs `steps` in parallel, their states kept in the progress' gate slots; `key` makes
    /// each one's [`StepKey`] for timers and approvals.
    pub(crate) async fn conditions(
        &mut self,
        steps: &[Step],
        key: fn(u32) -> StepKey,
    ) -> Result<Conditions, EngineError> {
        self.progress
            .gates
            .resize(steps.len(), WaitState::default());
        let mut tally = Tally::default();
        for (i, step) in steps.iter().enumerate() {
            let state = std::mem::take(&mut self.progress.gates[i]);
            let was_done = state.done;
            let (state, poll) = match step {
                Step::ExposeServices { services, ttl_secs } => {
                    let mut state = state;
                    let poll = if state.done {
                        Poll::Done("already done".into())
                    } else {
                        self.expose(services, *ttl_secs).await?
                    };
                    state.started = true;
                    state.done = matches!(poll, Poll::Done(_));
                    (state, poll)
                }
                _ => {
                    self.poll_wait(step, state, Slot::Gate(i), key(i as u32), i as u32)
                        .await?
                }
            };
            self.progress.gates[i] = state;
            if let Some(r) = tally.add(poll, matches!(step, Step::Pause { .. }))
                && !was_done
            {
                self.record(StepStatus::Succeeded, format!("blue/green: {r}"));
            }
        }
        Ok(tally.conditions())
    }

    /// Rollback: both Services back on the old version (nothing to do on a first deployment).
    pub(crate) async fn blue_green_back(&self, client: &kube::Client) -> Result<(), EngineError> {
        let Some(routing) = &self.progress.routing else {
            return Ok(());
        };
        let Some(old) = &routing.old else {
            return Ok(());
        };
        for (_, name) in named_services(self.plan) {
            if let Some(found) =
                routing::find_service(client, self.plan, &routing.namespace, name).await?
            {
                let deployment = self.ctx.deployment.id.to_string();
                routing::point_service(client, &found, old, &deployment).await?;
            }
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Records an object this deployment created, for the rollback to delete.
    pub(crate) fn note_created(&mut self, created: Option<crate::objects::ObjectRef>) {
        if let Some(c) = created.filter(|c| !self.progress.created.contains(c)) {
            self.progress.created.push(c);
        }
    }
}
