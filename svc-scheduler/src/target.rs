//! Reconciling one target: from its stored status, phase, step and [`Progress`], do the
//! idempotent cluster work the plan asks for next and decide the new state and its effects
//! ([`Outcome`]). Nothing here writes to the database; the engine commits the outcome. The
//! decisions are pure ([`crate::decide`], [`crate::advance`], [`crate::capacity`],
//! [`crate::undo`]); this file and the phase files around it observe the cluster, ask them, and
//! carry out their answers ([`crate::apply`], [`crate::moves`]).
//!
//! Phases: `pending` (dependsOn) → `before_deployment` (gates) → `deploying` (apply, managed
//! ReplicaSets) → `steps` (canary) → `promoting` (100%, old version removed) →
//! `after_deployment` (gates) → done. A failure while the new version runs rolls back.

use crate::cluster;
use crate::clusters::Clusters;
use crate::decide::{self, Conditions, InputMove, Start, StepMove, Tally, Verdict};
use crate::deployed::Found;
use crate::outcome::{Input, Outcome, Report, Slot};
use crate::progress::{Phase, Progress, StateError, WaitState};
use crate::render::{self, RenderContext};
use crate::{EngineConfig, EngineError};
use chrono::{DateTime, Utc};
use ferry_bus::messages::Status;
use ferry_bus::{DeploymentEvent, StepKey};
use ferry_deploy::{Plan, Step, Strategy, TargetPlan};
use ferry_store::deployments::Deployment;
use ferry_store::events::{StepChange, StepStatus};
use ferry_store::targets::{Target, TargetState, TargetStatus};
use ferry_store::{Store, TenantId};

/// What every target of one reconcile pass shares.
pub(crate) struct Ctx<'a> {
    pub tenant: TenantId,
    pub deployment: &'a Deployment,
    pub plan: &'a Plan,
    /// Every target as read at the start of the pass (for dependsOn).
    pub targets: &'a [Target],
    pub now: DateTime<Utc>,
    pub input: &'a Input,
    pub store: &'a Store,
    pub clusters: &'a dyn Clusters,
    pub config: &'a EngineConfig,
    /// Wakes targets waiting for pods as soon as a watch sees them ready.
    pub readiness: Option<&'a crate::readiness::Readiness>,
}

/// One target being reconciled.
pub(crate) struct Run<'a> {
    pub ctx: &'a Ctx<'a>,
    pub target: &'a Target,
    pub plan: &'a TargetPlan,
    pub progress: Progress,
    /// The progress as stored, to tell whether anything changed.
    stored: Progress,
    pub status: TargetStatus,
    pub phase: Phase,
    pub step_index: i32,
    reason: Option<String>,
    pub out: Outcome,
}

/// Whether a phase handler moved on or must wait for the next wake-up.
pub(crate) enum Flow {
    Continue,
    Wait,
}

/// The bus's status for a target status.
fn bus_status(status: TargetStatus) -> Status {
    match status {
        TargetStatus::Pending => Status::Pending,
        TargetStatus::Running | TargetStatus::RollingBack => Status::Running,
        TargetStatus::Paused => Status::Paused,
        TargetStatus::Succeeded => Status::Succeeded,
        TargetStatus::Failed => Status::Failed,
        TargetStatus::RolledBack => Status::RolledBack,
        TargetStatus::Aborted | TargetStatus::Skipped => Status::Aborted,
    }
}

/// Reconciles `target` against its plan; `None` when nothing changed.
pub(crate) async fn reconcile(
    ctx: &Ctx<'_>,
    target: &Target,
    plan: &TargetPlan,
) -> Result<Option<Outcome>, EngineError> {
    if target.status.is_terminal() {
        return Ok(None);
    }
    // The phase column is typed (no phase yet: pending); the progress is decoded here.
    let phase = target.phase.unwrap_or(Phase::Pending);
    let progress = match Progress::decode(&target.observed) {
        Ok(progress) => progress,
        Err(e) => return Ok(Some(park_undecodable(ctx, target, &e))),
    };
    let mut run = Run {
        ctx,
        target,
        plan,
        stored: progress.clone(),
        progress,
        status: target.status,
        phase,
        step_index: target.step_index,
        reason: target.reason.clone(),
        out: Outcome {
            target: target.name.clone(),
            version: target.version,
            state: TargetState {
                status: target.status,
                phase: target.phase,
                desired: target.desired.clone(),
                observed: target.observed.clone(),
                step_index: target.step_index,
                reason: target.reason.clone(),
            },
            progress: None,
            steps: Vec::new(),
            timers: Vec::new(),
            approvals: Vec::new(),
            requests: Vec::new(),
            events: Vec::new(),
            reports: Vec::new(),
        },
    };
    run.drive().await?;
    Ok(run.finish())
}

/// A target whose stored progress this code cannot decode: it is failed where it stands
/// (nothing is done on its cluster, which cannot be known from the record) with a reason naming
/// what did not decode, and its stored record is kept as it is for people to inspect. The
/// deployment then ends as failed, so the message that woke it is handled, not lost.
fn park_undecodable(ctx: &Ctx<'_>, target: &Target, error: &StateError) -> Outcome {
    let reason = format!(
        "the target's stored state does not decode ({error}); it was failed where it stands, \
         its cluster left as it is"
    );
    tracing::error!(
        deployment = %ctx.deployment.id,
        target = %target.name,
        error = %ferry_runtime::error_chain(error),
        "a target's stored state does not decode; failing the target"
    );
    Outcome {
        target: target.name.clone(),
        version: target.version,
        state: TargetState {
            status: TargetStatus::Failed,
            phase: Some(Phase::Done),
            desired: target.desired.clone(),
            observed: target.observed.clone(),
            step_index: target.step_index,
            reason: Some(reason.clone()),
        },
        progress: None,
        steps: vec![StepChange {
            target: target.name.clone(),
            step_index: None,
            status: StepStatus::Failed,
            reason: reason.clone(),
            details: serde_json::json!({"phase": target.phase, "undecodable": true}),
        }],
        timers: Vec::new(),
        approvals: Vec::new(),
        requests: Vec::new(),
        events: vec![DeploymentEvent::TargetStatus {
            deployment_id: ctx.deployment.id.as_uuid(),
            target: target.name.clone(),
            status: Status::Failed,
            reason: Some(reason),
        }],
        reports: Vec::new(),
    }
}

impl<'a> Run<'a> {
    async fn drive(&mut self) -> Result<(), EngineError> {
        match self.ctx.input.clone() {
            Input::Completed {
                id,
                success,
                reason,
                inconclusive,
            } => {
                if let Some(wait) = self.progress.wait_for_request(id) {
                    wait.outcome = Some(success);
                    wait.outcome_reason = reason;
                    wait.inconclusive = inconclusive;
                }
            }
            Input::Rollout { .. } => self.take_rollout_decision(),
            Input::Abort { .. }
            | Input::Rollback { .. }
            | Input::Wake
            | Input::SkipPause { .. } => {}
        }
        match (
            decide::input_move(self.ctx.input, self.phase, &self.target.name),
            self.ctx.input,
        ) {
            (InputMove::Abort { roll_back, status }, Input::Abort { reason }) => {
                if roll_back {
                    self.roll_back(format!("aborted and rolled back: {reason}"))
                        .await?;
                }
                self.end(status, StepStatus::Aborted, format!("aborted: {reason}"));
                return Ok(());
            }
            (InputMove::RollBack, Input::Rollback { reason, .. }) => {
                self.roll_back(format!("rolled back on request: {reason}"))
                    .await?;
                return Ok(());
            }
            _ => {}
        }
        self.expire_previews().await?;
        loop {
            let flow = match self.phase {
                Phase::Pending => self.pending(),
                Phase::BeforeDeployment => self.gates(true).await?,
                Phase::Deploying => self.deploy().await?,
                Phase::Steps => self.steps().await?,
                Phase::Promoting => self.promote().await?,
                Phase::AfterDeployment => self.gates(false).await?,
                Phase::Done => Flow::Wait,
            };
            if matches!(flow, Flow::Wait) {
                return Ok(());
            }
        }
    }

    /// The outcome, or `None` when nothing changed.
    fn finish(mut self) -> Option<Outcome> {
        let before = &self.out.state;
        let unchanged = before.status == self.status
            && before.phase == Some(self.phase)
            && before.step_index == self.step_index
            && before.reason == self.reason
            && self.stored == self.progress
            && self.out.steps.is_empty()
            && self.out.timers.is_empty()
            && self.out.approvals.is_empty()
            && self.out.requests.is_empty();
        if unchanged {
            return None;
        }
        if before.status != self.status {
            self.out.events.push(DeploymentEvent::TargetStatus {
                deployment_id: self.ctx.deployment.id.as_uuid(),
                target: self.target.name.clone(),
                status: bus_status(self.status),
                reason: self.reason.clone(),
            });
        }
        self.out.state = TargetState {
            status: self.status,
            phase: Some(self.phase),
            desired: self.target.desired.clone(),
            observed: self.progress.to_json(),
            step_index: self.step_index,
            reason: self.reason.clone(),
        };
        self.out.progress = Some(self.progress);
        Some(self.out)
    }

    pub(crate) fn record(&mut self, status: StepStatus, reason: String) {
        let step_index = (self.phase == Phase::Steps).then_some(self.step_index);
        if let Some(kind) = step_index.and_then(|i| self.step_kind(i))
            && !matches!(
                status,
                StepStatus::Started | StepStatus::Progressing | StepStatus::Waiting
            )
        {
            self.out.reports.push(Report::StepEnded {
                step_index: self.step_index,
                kind,
                result: status,
            });
        }
        self.out.steps.push(StepChange {
            target: self.target.name.clone(),
            step_index,
            status,
            reason: reason.clone(),
            details: serde_json::json!({"phase": self.phase.as_str()}),
        });
        self.reason = Some(reason);
    }

    /// The kind of the canary step at `index` (blue/green has no indexed steps).
    fn step_kind(&self, index: i32) -> Option<&'static str> {
        match &self.plan.strategy {
            Strategy::Canary { steps } => {
                let index = usize::try_from(index).ok()?;
                steps.get(index).map(Step::kind_name)
            }
            _ => None,
        }
    }

    /// Whether a rollback now is the engine's own decision rather than a person's (an abort,
    /// a rollback request, or a manual roll-back verdict for this target).
    fn rollback_is_automatic(&self) -> bool {
        match self.ctx.input {
            Input::Abort { .. } => false,
            Input::Rollback { target, .. } => {
                target.as_deref().is_some_and(|t| t != self.target.name)
            }
            Input::Rollout {
                target, forward, ..
            } => *forward || *target != self.target.name,
            Input::Wake | Input::Completed { .. } | Input::SkipPause { .. } => true,
        }
    }

    /// Announces that the target reached step `step_index` at `weight`% of the new version.
    pub(crate) fn announce_step(&mut self, step_index: u32, weight: u8) {
        self.out.events.push(DeploymentEvent::Step {
            deployment_id: self.ctx.deployment.id.as_uuid(),
            target: self.target.name.clone(),
            step_index,
            weight: Some(weight),
        });
    }

    /// Waits with `reason`, recording it once (not again on every tick).
    pub(crate) fn wait_with(&mut self, status: TargetStatus, reason: String) -> Flow {
        self.status = status;
        if self.reason.as_deref() != Some(reason.as_str()) {
            self.record(StepStatus::Waiting, reason);
        }
        Flow::Wait
    }

    fn end(&mut self, status: TargetStatus, step: StepStatus, reason: String) {
        self.status = status;
        self.record(step, reason);
        self.phase = Phase::Done;
        self.progress.deadline = None;
    }

    pub(crate) async fn client(&self) -> Result<kube::Client, EngineError> {
        Ok(self
            .ctx
            .clusters
            .client(self.ctx.tenant, &self.target.account)
            .await
            .map_err(cluster::KubeOpError::from)?)
    }

    fn pending(&mut self) -> Flow {
        let targets = self.ctx.targets;
        let status_of = |name: &str| targets.iter().find(|t| t.name == name).map(|t| t.status);
        match decide::start(&self.plan.depends_on, status_of) {
            Start::Wait => return Flow::Wait,
            Start::Skip { dependency, status } => {
                self.end(
                    TargetStatus::Skipped,
                    StepStatus::Skipped,
                    format!("not started: {dependency} {status}"),
                );
                return Flow::Wait;
            }
            Start::Go => {}
        }
        self.status = TargetStatus::Running;
        self.phase = Phase::BeforeDeployment;
        self.record(StepStatus::Started, "started".into());
        Flow::Continue
    }

    async fn gates(&mut self, before: bool) -> Result<Flow, EngineError> {
        let (steps, prefix) = if before {
            (&self.plan.before_deployment, "before")
        } else {
            (&self.plan.after_deployment, "after")
        };
        self.progress
            .gates
            .resize(steps.len(), WaitState::default());
        let mut tally = Tally::default();
        for (i, step) in steps.iter().enumerate() {
            let gate = std::mem::take(&mut self.progress.gates[i]);
            let was_done = gate.done;
            let (gate, poll) = self
                .poll_wait(
                    step,
                    gate,
                    Slot::Gate(i),
                    StepKey::gate(before, i as u32),
                    i as u32,
                )
                .await?;
            self.progress.gates[i] = gate;
            if let Some(r) = tally.add(poll, true)
                && !was_done
            {
                self.record(StepStatus::Succeeded, format!("{prefix} deployment: {r}"));
            }
        }
        match tally.conditions() {
            // Before: nothing was deployed. After: the target stays deployed, its dependents
            // never start.
            Conditions::Failed(r) => {
                self.end(
                    TargetStatus::Failed,
                    StepStatus::Failed,
                    format!("{prefix} deployment: {r}"),
                );
                return Ok(Flow::Wait);
            }
            Conditions::Waiting(r, _) => {
                return Ok(
                    self.wait_with(TargetStatus::Paused, format!("{prefix} deployment: {r}"))
                );
            }
            Conditions::Done => {}
        }
        self.progress.gates.clear();
        self.status = TargetStatus::Running;
        if before {
            self.phase = Phase::Deploying;
        } else {
            self.end(
                TargetStatus::Succeeded,
                StepStatus::Succeeded,
                "deployed".into(),
            );
        }
        Ok(Flow::Continue)
    }

    async fn deploy(&mut self) -> Result<Flow, EngineError> {
        let client = self.client().await?;
        if let Some(reason) = self.check_routing(&client).await? {
            self.end(TargetStatus::Failed, StepStatus::Failed, reason);
            return Ok(Flow::Wait);
        }
        let rctx = RenderContext {
            application: self.ctx.plan.application.clone(),
            deployment_id: self.ctx.deployment.id.to_string(),
            target: self.target.name.clone(),
        };
        let manifests = match crate::template::render_manifests(self) {
            Ok(manifests) => manifests,
            Err(reason) => {
                // Nothing is applied before every manifest rendered.
                self.end(TargetStatus::Failed, StepStatus::Failed, reason);
                return Ok(Flow::Wait);
            }
        };
        let keep = self.ctx.plan.deployment_config.keep_deployment_object;
        let mut found = Vec::new();
        let mut applied = 0;
        for m in &manifests {
            let is_workload =
                m.kind == "Deployment" && m.object["apiVersion"].as_str() == Some("apps/v1");
            if !is_workload {
                if crate::traffic::is_routed(self.plan, m)
                    || crate::autoscalers::is_workload_autoscaler(self.plan, m)
                {
                    // Applied pointed at a version once the ReplicaSets exist.
                    continue;
                }
                let object = render::with_namespace(&m.object, m.namespace.as_deref());
                let done =
                    crate::objects::apply_keeping(&client, &object, &rctx.deployment_id).await?;
                self.keep_previous(done.previous);
                if let Some(created) = done.created.filter(|c| !self.progress.created.contains(c)) {
                    self.progress.created.push(created);
                }
                applied += 1;
                continue;
            }
            let namespace = m.namespace.clone().unwrap_or_else(|| "default".into());
            let rs = render::managed_replica_set(&m.object, &namespace, &rctx);
            cluster::adopt_user_deployment(&client, &rctx.application, &rctx.target, &rs, keep)
                .await?;
            let existing = cluster::replica_set_state(&client, &namespace, &rs.name).await?;
            let stable =
                cluster::running_versions(&client, &rctx.application, &rctx.target, &rs).await?;
            found.push(Found {
                rs,
                existing,
                stable,
            });
        }
        let meshed = crate::traffic::meshed(self.plan);
        let out = crate::deployed::deployed(&found, applied, &self.plan.strategy, meshed);
        for (f, size) in found.iter().zip(&out.sizes) {
            cluster::ensure_replica_set(&client, &f.rs, *size).await?;
        }
        self.progress.workloads = out.workloads;
        self.progress.first = out.first;
        if let Some(reason) = self.set_up_routing(&client).await? {
            self.roll_back(format!("rolled back: {reason}")).await?;
            return Ok(Flow::Wait);
        }
        self.hold_autoscalers(&client).await?;
        self.record(StepStatus::Progressing, out.reason);
        self.phase = out.next;
        if out.next == Phase::Steps {
            self.step_index = 0;
        }
        Ok(Flow::Continue)
    }

    async fn steps(&mut self) -> Result<Flow, EngineError> {
        let index = self.step_index.max(0) as usize;
        let meshed = crate::traffic::meshed(self.plan);
        match decide::step_move(&self.plan.strategy, index, meshed) {
            StepMove::BlueGreen => self.blue_green().await,
            StepMove::Promote => {
                self.phase = Phase::Promoting;
                Ok(Flow::Continue)
            }
            StepMove::MeshWeight(weight) => self.mesh_weight(weight).await,
            StepMove::Weight(weight) => self.set_weight(weight).await,
            StepMove::Expose { services, ttl_secs } => {
                match self.expose(services, ttl_secs).await? {
                    crate::waits::Poll::Failed(r) => {
                        self.roll_back(format!("rolled back: {r}")).await?;
                        Ok(Flow::Wait)
                    }
                    crate::waits::Poll::Done(r) | crate::waits::Poll::Waiting(r) => {
                        self.record(StepStatus::Succeeded, r);
                        self.step_index += 1;
                        Ok(Flow::Continue)
                    }
                }
            }
            StepMove::Wait(wait_step) => {
                let wait = std::mem::take(&mut self.progress.wait);
                let key = StepKey::Step(index as u32);
                let (wait, poll) = self
                    .poll_wait(wait_step, wait, Slot::Step, key, index as u32)
                    .await?;
                self.progress.wait = wait;
                let judged = self.progress.wait.outcome.is_some();
                match decide::verdict(wait_step, poll, judged) {
                    Verdict::Hold(status, r) => Ok(self.wait_with(status, r)),
                    Verdict::Advance(r) => {
                        self.record(StepStatus::Succeeded, r);
                        self.progress.wait = WaitState::default();
                        self.status = TargetStatus::Running;
                        self.step_index += 1;
                        Ok(Flow::Continue)
                    }
                    Verdict::RollBack(r) => {
                        self.roll_back(format!("rolled back: {r}")).await?;
                        Ok(Flow::Wait)
                    }
                }
            }
        }
    }

    /// Keeps an existing object's contents from before this deployment first changed it (a
    /// later apply, after a retry, must not replace them with this deployment's own).
    fn keep_previous(
        &mut self,
        previous: Option<Result<crate::previous::Previous, crate::previous::NotKept>>,
    ) {
        match previous {
            None => {}
            Some(Ok(p)) if !self.progress.previous.iter().any(|k| k.object == p.object) => {
                self.progress.previous.push(p);
            }
            Some(Ok(_)) => {}
            Some(Err(crate::previous::NotKept::TooLarge(size))) => {
                tracing::warn!(
                    target = %self.target.name,
                    size,
                    limit = crate::previous::MAX_PREVIOUS_BYTES,
                    "an existing object is too large to keep for a rollback; a rollback leaves it changed"
                );
            }
        }
    }

    /// Restores the running versions, removes what this deployment added and puts back the
    /// previous contents of what it changed.
    pub(crate) async fn roll_back(&mut self, reason: String) -> Result<(), EngineError> {
        // What to undo, decided from the record alone (crate::undo), then carried out in order.
        let plan = crate::undo::roll_back(&self.progress);
        if !plan.is_empty() {
            let client = self.client().await?;
            // A rollback has nothing the cluster can refuse (its mesh restore only warns).
            self.apply(&client, plan).await?;
        }
        self.progress.next_tick = None;
        if self.rollback_is_automatic() {
            self.out.reports.push(Report::RolledBack {
                reason: reason.clone(),
            });
        }
        self.end(TargetStatus::RolledBack, StepStatus::RolledBack, reason);
        Ok(())
    }
}
