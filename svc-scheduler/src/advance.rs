//! Moving a target's new version forward, decided from what the cluster reports once the new
//! ReplicaSets are sized for the move: a canary weight (the old version shrinks only once the
//! canary's pods serve), a weight on the service mesh (the new version at full size first, then
//! the split) and the promotion (every new pod ready; then traffic and autoscalers on the new
//! version, the baselines gone, the old version removed, the rollout's routing objects cleaned
//! up, in that order). Each answer is a wait for pods or the [`Effect`]s to carry out with the
//! step's words; `target` observes, asks, and carries out (rolling back if the cluster refuses).

use crate::capacity::{self, Pods, Promotion, WeightStep};
use crate::cluster::RsState;
use crate::effect::Effect;
use crate::mesh::Split;
use crate::progress::Workload;

/// What a move forward does now.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Advance {
    /// Not every pod the move needs is ready: wait, with these words (the pods' deadline
    /// decides when waiting ends in a rollback).
    AwaitPods(String),
    /// Carry out `effects` in order; then the target stands at `weight`% and the step is done
    /// with `reason`. `announce`: tell watchers the target reached the weight.
    Go {
        effects: Vec<Effect>,
        weight: u8,
        reason: String,
        announce: bool,
    },
}

/// A canary step at `weight`% once the new ReplicaSets are sized `sizes` (per workload) and
/// reported `states`.
pub(crate) fn canary_weight(
    workloads: &[Workload],
    weight: u8,
    sizes: &[i32],
    states: &[RsState],
) -> Advance {
    match capacity::weight_step(workloads, sizes, states) {
        WeightStep::Wait(Pods { ready, want }) => Advance::AwaitPods(format!(
            "canary at {weight}%: waiting for pods ({ready}/{want} ready)"
        )),
        WeightStep::Shift { pods, effects } => {
            let total: i32 = capacity::full_sizes(workloads).iter().sum();
            Advance::Go {
                effects: vec![Effect::Capacity(effects)],
                weight,
                reason: format!("canary at {weight}% ({}/{total} pods ready)", pods.ready),
                announce: true,
            }
        }
    }
}

/// A canary step at `weight`% of the traffic through the mesh objects `through` (their names,
/// for people), once the new ReplicaSets are at full size and reported `states`.
pub(crate) fn mesh_weight(
    workloads: &[Workload],
    weight: u8,
    states: &[RsState],
    through: &str,
) -> Advance {
    let Pods { ready, want } = Pods::of(&capacity::full_sizes(workloads), states);
    if ready < want {
        return Advance::AwaitPods(format!(
            "canary at {weight}% on the mesh: waiting for the new version's pods \
             ({ready}/{want} ready)"
        ));
    }
    Advance::Go {
        effects: vec![Effect::SetMesh(Split::Canary(weight))],
        weight,
        reason: format!(
            "canary at {weight}% of traffic through {through} (new version {ready}/{want} pods ready)"
        ),
        announce: true,
    }
}

/// The promotion to 100% once the new ReplicaSets are at full size and reported `states`;
/// `first` when nothing of the application ran on the target before, `meshed` when a service
/// mesh carries the weights.
pub(crate) fn promotion(
    workloads: &[Workload],
    states: &[RsState],
    first: bool,
    meshed: bool,
) -> Advance {
    let (Pods { ready, want }, remove_old) = match capacity::promotion(workloads, states) {
        Promotion::Wait(Pods { ready, want }) => {
            let what = if first {
                "first deployment at 100%"
            } else {
                "promoting to 100%"
            };
            return Advance::AwaitPods(format!("{what}: waiting for pods ({ready}/{want} ready)"));
        }
        Promotion::RemoveOld { pods, effects } => (pods, effects),
    };
    let mut effects = Vec::new();
    if meshed {
        effects.push(Effect::SetMesh(Split::Promoted));
    }
    effects.extend([
        Effect::PromoteAutoscalers,
        Effect::RemoveBaselines,
        Effect::Capacity(remove_old),
        Effect::FinishRouting,
    ]);
    let reason = if workloads.is_empty() {
        "applied".to_string()
    } else if first {
        format!("first deployment at 100% ({ready}/{want} pods ready)")
    } else {
        format!("at 100% ({ready}/{want} pods ready); old version removed")
    };
    Advance::Go {
        effects,
        weight: 100,
        reason,
        announce: !workloads.is_empty(),
    }
}

#[cfg(test)]
mod tests;
