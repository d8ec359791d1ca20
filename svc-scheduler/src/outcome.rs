//! What reconciling a target decides, to be committed in one transaction: the new target state
//! and the step history rows, timers, approvals and outbox messages that go with it; and the
//! input a message brings to a reconcile.

use crate::progress::Progress;
use ferry_bus::DeploymentEvent;
use ferry_bus::messages::{AnalysisRequested, WebhookRequested};
use ferry_store::approvals::NewApproval;
use ferry_store::callbacks::NewCallback;
use ferry_store::events::{StepChange, StepStatus};
use ferry_store::targets::TargetState;
use ferry_store::timers::NewTimer;
use uuid::Uuid;

/// What caused a reconcile, beyond "look again".
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Re-read and move every target on (start, timer, approval decided).
    Wake,
    /// An analysis or webhook finished.
    Completed {
        /// The request id.
        id: Uuid,
        /// Whether it passed.
        success: bool,
        /// Why, for humans.
        reason: Option<String>,
        /// Undecided: a person decides whatever the rollout modes say.
        inconclusive: bool,
    },
    /// End a pause of a target's strategy step now.
    SkipPause {
        /// The target.
        target: String,
        /// The step index.
        step_index: u32,
    },
    /// Stop the deployment: roll back what is in progress, start nothing more.
    Abort {
        /// Why.
        reason: String,
    },
    /// A person decided whether a target waiting on a manual judgement (an analysis with
    /// `rollForwardMode`/`rollBackMode: manual`) goes on or rolls back.
    Rollout {
        /// The target.
        target: String,
        /// The strategy step the person saw the target wait at (gates have none of their own).
        step_index: u32,
        /// Roll forward (`true`) or back.
        forward: bool,
        /// Who decided, for the step history.
        decided_by: String,
    },
    /// Roll back one target (or every target in progress).
    Rollback {
        /// The target, or all.
        target: Option<String>,
        /// Why.
        reason: String,
    },
}

/// Where an approval's id is kept once its row exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The current strategy step.
    Step,
    /// A gate by index.
    Gate(usize),
}

/// A request to another service, sent through the outbox.
#[derive(Clone, Debug)]
pub enum Request {
    /// To svc-canary.
    Analysis(AnalysisRequested),
    /// To svc-webhook, with the callback to create first when the step waits for one.
    Webhook(Box<WebhookRequested>, Option<Callback>),
}

/// A webhook's single-use callback, created in the commit's transaction. Its row id becomes the
/// webhook run's id, because the API reports a callback with the row id.
#[derive(Clone, Debug)]
pub struct Callback {
    /// Where the wait that keeps the run id is.
    pub slot: Slot,
    /// The row to store (only the token's hash).
    pub row: NewCallback,
}

/// The decided change of one target.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The target's name.
    pub target: String,
    /// The version it was read at.
    pub version: i64,
    /// Its new state (`observed` is filled from `progress` at commit).
    pub state: TargetState,
    /// The engine's record; `None` keeps the stored `observed` as it is (a record that did not
    /// decode stays for people to inspect).
    pub progress: Option<Progress>,
    /// Step history rows (each also an event).
    pub steps: Vec<StepChange>,
    /// Timers to write.
    pub timers: Vec<NewTimer>,
    /// Approvals to create, and where their id goes.
    pub approvals: Vec<(Slot, NewApproval)>,
    /// Requests to other services.
    pub requests: Vec<Request>,
    /// Events for `ferry.events`.
    pub events: Vec<DeploymentEvent>,
    /// What operators count or audit, reported once the commit lands.
    pub reports: Vec<Report>,
}

/// Something the engine did that operators count (metrics) or that the audit log records (the
/// scheduler's automatic actions). Written or counted only once the outcome's commit lands.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    /// A strategy step ended; its duration is measured from the step's first history row (or,
    /// for a step that ended in the pass it began, from the target's previous row).
    StepEnded {
        /// The step's index.
        step_index: i32,
        /// [`ferry_deploy::Step::kind_name`].
        kind: &'static str,
        /// How it ended.
        result: StepStatus,
    },
    /// A person decided an approval after it waited this long.
    ApprovalDecided {
        /// Approved (`true`) or rejected.
        approved: bool,
        /// From the approval's creation to its decision.
        waited: std::time::Duration,
    },
    /// An approval expired undecided (an automatic action: audited).
    ApprovalExpired {
        /// The approval row.
        approval_id: Uuid,
        /// Where it waited.
        step_key: String,
        /// How long it was open.
        waited: std::time::Duration,
    },
    /// The target rolled back without a person asking (a failed step, analysis or webhook,
    /// pods not ready in time, an expired approval): an automatic action, audited.
    RolledBack {
        /// Why.
        reason: String,
    },
}
