//! The I/O half of moving a target's new version forward: sizing its ReplicaSets, reading back
//! their pods, waiting for them (a readiness watch wakes the target, a tick is the safety net,
//! the deadline rolls back), and carrying out what [`crate::advance`] decides for a canary
//! weight, a weight on the mesh and the promotion.

use crate::EngineError;
use crate::advance::{self, Advance};
use crate::capacity::{self, Pods, PodsWait};
use crate::cluster::{self, RsState};
use crate::progress::{Phase, PodCount};
use crate::render::human_duration;
use crate::target::{Flow, Run};
use chrono::Utc;
use ferry_store::events::StepStatus;
use ferry_store::targets::TargetStatus;

impl Run<'_> {
    /// Scales every new ReplicaSet to its full size; returns `(ready, total)` pods of the new
    /// version.
    pub(crate) async fn scale_new_to_full(&mut self) -> Result<(i32, i32), EngineError> {
        let client = self.client().await?;
        let full = capacity::full_sizes(&self.progress.workloads);
        let states = self.size_new(&client, &full).await?;
        let pods = Pods::of(&full, &states);
        Ok((pods.ready, pods.want))
    }

    /// Sizes the new ReplicaSets to `sizes` (per workload) and reads back their states, which
    /// the record keeps for people watching (`Workload::now`).
    pub(crate) async fn size_new(
        &mut self,
        client: &kube::Client,
        sizes: &[i32],
    ) -> Result<Vec<RsState>, EngineError> {
        let workloads = &self.progress.workloads;
        cluster::carry_out(client, &capacity::size_new(workloads, sizes)).await?;
        let states = cluster::new_states(client, workloads).await?;
        let observed = self.progress.workloads.iter_mut().zip(&states).zip(sizes);
        for ((workload, state), &size) in observed {
            workload.now = Some(PodCount {
                size,
                ready: state.ready.clamp(0, size),
            });
        }
        Ok(states)
    }

    pub(crate) async fn set_weight(&mut self, weight: u8) -> Result<Flow, EngineError> {
        let client = self.client().await?;
        let sizes = capacity::canary_sizes(&self.progress.workloads, weight);
        let states = self.size_new(&client, &sizes).await?;
        self.size_baselines(&client, &sizes).await?;
        let next = advance::canary_weight(&self.progress.workloads, weight, &sizes, &states);
        self.next_step(&client, next).await
    }

    /// A canary step on the mesh: the new version runs at full size, then `weight` percent of
    /// the traffic goes to it.
    pub(crate) async fn mesh_weight(&mut self, weight: u8) -> Result<Flow, EngineError> {
        let client = self.client().await?;
        let full = capacity::full_sizes(&self.progress.workloads);
        let states = self.size_new(&client, &full).await?;
        let through = crate::traffic::mesh_names(self.plan);
        let next = advance::mesh_weight(&self.progress.workloads, weight, &states, &through);
        self.next_step(&client, next).await
    }

    pub(crate) async fn promote(&mut self) -> Result<Flow, EngineError> {
        let client = self.client().await?;
        let full = capacity::full_sizes(&self.progress.workloads);
        let states = self.size_new(&client, &full).await?;
        let meshed = crate::traffic::meshed(self.plan);
        let next = advance::promotion(
            &self.progress.workloads,
            &states,
            self.progress.first,
            meshed,
        );
        if self.advance(&client, next).await? {
            self.phase = Phase::AfterDeployment;
            return Ok(Flow::Continue);
        }
        Ok(Flow::Wait)
    }

    /// A canary step's move: on to the next step once it went.
    async fn next_step(
        &mut self,
        client: &kube::Client,
        next: Advance,
    ) -> Result<Flow, EngineError> {
        if self.advance(client, next).await? {
            self.step_index += 1;
            return Ok(Flow::Continue);
        }
        Ok(Flow::Wait)
    }

    /// Carries out a move forward ([`crate::advance`]): waits for pods, or carries out its
    /// effects (rolling back if the cluster refuses one) and records the step. `true` when the
    /// target moved.
    async fn advance(&mut self, client: &kube::Client, next: Advance) -> Result<bool, EngineError> {
        let (effects, weight, reason, announce) = match next {
            Advance::AwaitPods(reason) => {
                self.await_pods(reason).await?;
                return Ok(false);
            }
            Advance::Go {
                effects,
                weight,
                reason,
                announce,
            } => (effects, weight, reason, announce),
        };
        if let Some(refused) = self.apply(client, effects).await? {
            self.roll_back(format!("rolled back: {refused}")).await?;
            return Ok(false);
        }
        self.progress.deadline = None;
        self.progress.weight = Some(weight);
        self.status = TargetStatus::Running;
        self.record(StepStatus::Succeeded, reason);
        if announce {
            self.announce_step(self.step_index.max(0) as u32, weight);
        }
        Ok(true)
    }

    /// Pods are not ready yet: roll back past the deadline, else look again after a tick.
    pub(crate) async fn await_pods(&mut self, reason: String) -> Result<Flow, EngineError> {
        let timeout = self.ctx.plan.deployment_config.timeout_secs;
        let wait = capacity::pods_wait(
            self.ctx.now,
            self.progress.deadline,
            self.progress.next_tick,
            timeout,
            self.ctx.config.tick,
        );
        match wait {
            PodsWait::Expired => {
                let why = format!(
                    "rolled back: pods not ready after {}",
                    human_duration(timeout)
                );
                self.roll_back(why).await?;
                Ok(Flow::Wait)
            }
            PodsWait::Waiting { deadline, tick } => {
                self.wake_when_ready(deadline);
                self.progress.deadline = Some(deadline);
                if let Some(at) = tick {
                    self.progress.next_tick = Some(at);
                    self.tick(at);
                }
                Ok(self.wait_with(TargetStatus::Running, reason))
            }
        }
    }

    /// Asks the readiness watches to wake the deployment once every new ReplicaSet has its
    /// pods ready (one wait per namespace), well before the tick.
    fn wake_when_ready(&self, until: chrono::DateTime<Utc>) {
        let Some(readiness) = self.ctx.readiness else {
            return;
        };
        let mut by_namespace: std::collections::BTreeMap<&str, Vec<String>> =
            std::collections::BTreeMap::new();
        for w in &self.progress.workloads {
            by_namespace
                .entry(&w.namespace)
                .or_default()
                .push(w.new_rs.clone());
        }
        for (namespace, replica_sets) in by_namespace {
            readiness.wake_when_ready(
                self.ctx.tenant,
                &self.target.account,
                namespace,
                self.ctx.deployment.id,
                replica_sets,
                until,
            );
        }
    }
}
