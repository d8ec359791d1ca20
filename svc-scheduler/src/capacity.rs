//! The capacity core of a rollout: how large each managed ReplicaSet is at each canary weight, at
//! promotion and on rollback, and when pods that are not ready send the target back, decided
//! from what the cluster reports and returned as [`RsEffect`]s the engine carries out in order.
//!
//! Pure: nothing here touches a cluster or a clock, so the rules that keep a target serving are
//! tested alone, with properties over any sizes and weights:
//! - the old version gives up pods only once as many new ones are ready (a canary step never
//!   takes serving capacity below what the target had);
//! - the new version's size only grows along a step list whose weights grow, and never passes
//!   the desired count;
//! - the old version is removed only when every new pod is ready;
//! - a rollback first gives the old version back its size, then removes (or resizes) the new
//!   one, and leaves every ReplicaSet as the rollout found it.

use crate::cluster::RsState;
use crate::progress::Workload;
use crate::render::canary_pods;
use chrono::{DateTime, Utc};

/// One change to a managed ReplicaSet. Carrying one out twice has the same result as once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RsEffect {
    /// Sets `spec.replicas`.
    Scale {
        namespace: String,
        name: String,
        replicas: i32,
    },
    /// Deletes the ReplicaSet (gone already is fine).
    Delete { namespace: String, name: String },
}

impl RsEffect {
    fn scale(namespace: &str, name: &str, replicas: i32) -> RsEffect {
        RsEffect::Scale {
            namespace: namespace.to_string(),
            name: name.to_string(),
            replicas,
        }
    }

    fn delete(namespace: &str, name: &str) -> RsEffect {
        RsEffect::Delete {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// Ready pods of the new version against the pods wanted, over every workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pods {
    /// Ready pods, each workload's counted up to its wanted size.
    pub ready: i32,
    /// Pods wanted.
    pub want: i32,
}

impl Pods {
    /// Ready pods of ReplicaSets sized `sizes`, as `states` report them (a missing state, a
    /// ReplicaSet not there yet, has none ready).
    pub fn of(sizes: &[i32], states: &[RsState]) -> Pods {
        let ready = sizes
            .iter()
            .enumerate()
            .map(|(i, want)| states.get(i).map_or(0, |s| s.ready.clamp(0, *want)))
            .sum();
        Pods {
            ready,
            want: sizes.iter().sum(),
        }
    }

    /// Every wanted pod is ready.
    pub fn all_ready(self) -> bool {
        self.ready >= self.want
    }
}

/// The new version's size per workload at a canary `weight` (percent of its desired count,
/// at least one pod above 0%).
pub fn canary_sizes(workloads: &[Workload], weight: u8) -> Vec<i32> {
    workloads
        .iter()
        .map(|w| canary_pods(w.replicas, weight))
        .collect()
}

/// The new version's size per workload at 100%.
pub fn full_sizes(workloads: &[Workload]) -> Vec<i32> {
    workloads.iter().map(|w| w.replicas).collect()
}

/// Sizes every new ReplicaSet to `sizes` (a weight's or the full size); carried out before the
/// cluster is asked how many of their pods are ready.
pub fn size_new(workloads: &[Workload], sizes: &[i32]) -> Vec<RsEffect> {
    workloads
        .iter()
        .zip(sizes)
        .map(|(w, size)| RsEffect::scale(&w.namespace, &w.new_rs, *size))
        .collect()
}

/// What a canary weight step does once its new ReplicaSets are sized `sizes` and the cluster
/// reported `states` for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightStep {
    /// Not every canary pod is ready: nothing of the old version goes yet.
    Wait(Pods),
    /// The canary serves: the old version gives up as many pods (`effects`), and the step is
    /// done.
    Shift { pods: Pods, effects: Vec<RsEffect> },
}

/// Decides a canary weight step (see [`WeightStep`]). Only the first running version of each
/// workload shrinks; it keeps `desired - canary` pods, never more than it had.
pub fn weight_step(workloads: &[Workload], sizes: &[i32], states: &[RsState]) -> WeightStep {
    let pods = Pods::of(sizes, states);
    if !pods.all_ready() {
        return WeightStep::Wait(pods);
    }
    let effects = workloads
        .iter()
        .zip(sizes)
        .filter_map(|(w, canary)| {
            let stable = w.stable.first()?;
            let keep = (w.replicas - canary).max(0).min(stable.replicas);
            Some(RsEffect::scale(&w.namespace, &stable.name, keep))
        })
        .collect();
    WeightStep::Shift { pods, effects }
}

/// What a promotion does once the new ReplicaSets are at full size and reported `states`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Promotion {
    /// Not every new pod is ready: the old version stays.
    Wait(Pods),
    /// Every new pod is ready: the old version goes (`effects`).
    RemoveOld { pods: Pods, effects: Vec<RsEffect> },
}

/// Decides a promotion (see [`Promotion`]).
pub fn promotion(workloads: &[Workload], states: &[RsState]) -> Promotion {
    let pods = Pods::of(&full_sizes(workloads), states);
    if !pods.all_ready() {
        return Promotion::Wait(pods);
    }
    let effects = workloads
        .iter()
        .flat_map(|w| {
            w.stable
                .iter()
                .map(|s| RsEffect::delete(&w.namespace, &s.name))
        })
        .collect();
    Promotion::RemoveOld { pods, effects }
}

/// A rollback's ReplicaSet changes, in order: for each workload the old versions back to their
/// sizes before the rollout first (capacity before anything goes), then the new version deleted
/// when this rollout created it, or back to the size it had.
pub fn roll_back(workloads: &[Workload]) -> Vec<RsEffect> {
    let mut effects = Vec::new();
    for w in workloads {
        effects.extend(
            w.stable
                .iter()
                .map(|s| RsEffect::scale(&w.namespace, &s.name, s.replicas)),
        );
        effects.push(if w.new_initial == 0 {
            RsEffect::delete(&w.namespace, &w.new_rs)
        } else {
            RsEffect::scale(&w.namespace, &w.new_rs, w.new_initial)
        });
    }
    effects
}

/// Where a target waiting for pods stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodsWait {
    /// The deadline passed: the target rolls back.
    Expired,
    /// Keep waiting until `deadline`; `tick` is a new wake-up to write (none when one is
    /// already due later).
    Waiting {
        deadline: DateTime<Utc>,
        tick: Option<DateTime<Utc>>,
    },
}

/// Decides a wait for pods at `now`: its deadline is set on the first wait (`timeout` after it)
/// and kept after; one wake-up `tick` later is written unless one is still due.
pub fn pods_wait(
    now: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    next_tick: Option<DateTime<Utc>>,
    timeout_secs: u64,
    tick: std::time::Duration,
) -> PodsWait {
    let deadline = deadline.unwrap_or_else(|| crate::waits::after(now, timeout_secs));
    if now >= deadline {
        return PodsWait::Expired;
    }
    let tick = next_tick
        .is_none_or(|t| t <= now)
        .then(|| now + chrono::Duration::from_std(tick).unwrap_or_default());
    PodsWait::Waiting { deadline, tick }
}

#[cfg(test)]
mod tests;
