//! A rollout's cluster work as data. Each [`Effect`] is one idempotent piece of it; the pure
//! planners return lists of them ([`crate::advance`] moving a target forward, [`crate::undo`]
//! rolling it back) and the I/O shell ([`crate::apply`]) carries a list out in order, so the
//! order that keeps a target serving is decided, and tested, without a cluster.

use crate::capacity::RsEffect;
use crate::mesh::Split;
use crate::objects::ObjectRef;
use crate::previous::Previous;

/// One part of a rollout's cluster work. Carrying one out twice has the same result as once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    /// ReplicaSet sizes, in order (the capacity core's decisions).
    Capacity(Vec<RsEffect>),
    /// The mesh's weights (Istio, SMI, Gateway API) set to a split. The cluster can refuse it
    /// (an object is not as the deploy file describes it), which stops the list.
    SetMesh(Split),
    /// The workloads' autoscalers (and the deployment's own, applied now) scale the new version.
    PromoteAutoscalers,
    /// The workloads' autoscalers scale the old version again.
    RestoreAutoscalers,
    /// The comparison judge's baseline ReplicaSets removed.
    RemoveBaselines,
    /// Traffic back on the old version (mesh weights, blue/green Services, routes).
    RestoreRouting,
    /// One version runs: the routing objects the rollout made for itself removed.
    FinishRouting,
    /// After a rollback: those routing objects and the preview addresses removed.
    CleanUpRouting,
    /// Objects this deployment created on the target deleted.
    DeleteCreated(Vec<ObjectRef>),
    /// Objects it changed given their previous contents back, in this order.
    RestorePrevious(Vec<Previous>),
}
