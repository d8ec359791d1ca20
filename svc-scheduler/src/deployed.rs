//! What the deploying phase leads to, decided from what the cluster showed before the rollout:
//! each new ReplicaSet's starting size, the record of every workload (new and running versions
//! with their sizes, for the steps and any rollback), whether this is the first deployment to
//! the target, the phase that follows and the words for people. The deploying phase in
//! `target` applies the manifests, observes each workload, asks this, and carries it out.

use crate::cluster::RsState;
use crate::decide;
use crate::progress::{Phase, Stable, Workload};
use crate::render::ManagedReplicaSet;
use ferry_deploy::Strategy;

/// One workload of the target's manifests as the cluster showed it.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// Its new ReplicaSet, as rendered.
    pub rs: ManagedReplicaSet,
    /// That ReplicaSet's state if it exists already (a retried pass, or a re-deployed version).
    pub existing: Option<RsState>,
    /// The versions of the workload running now, largest first.
    pub stable: Vec<Stable>,
}

/// The outcome of deploying.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Deployed {
    /// The size to create (or keep) each new ReplicaSet at, in the order found.
    pub sizes: Vec<i32>,
    /// The record of each workload.
    pub workloads: Vec<Workload>,
    /// Nothing of the application ran on the target before.
    pub first: bool,
    /// The phase that follows.
    pub next: Phase,
    /// What happened, for people.
    pub reason: String,
}

/// Deploying `found` workloads (after `applied` other objects) with `strategy`; `meshed` when
/// a service mesh carries the weights.
pub(crate) fn deployed(
    found: &[Found],
    applied: usize,
    strategy: &Strategy,
    meshed: bool,
) -> Deployed {
    let first = found.iter().all(|f| f.stable.is_empty());
    let shape = decide::shape(strategy, first, meshed);
    let sizes = (found.iter())
        .map(|f| if shape.grow { 0 } else { f.rs.replicas })
        .collect();
    let workloads = (found.iter())
        .map(|f| Workload {
            name: f.rs.workload.clone(),
            namespace: f.rs.namespace.clone(),
            new_rs: f.rs.name.clone(),
            new_initial: f.existing.map_or(0, |e| e.desired),
            replicas: f.rs.replicas,
            stable: f.stable.clone(),
            now: None,
        })
        .collect();
    let mut reason = format!("applied {applied} objects");
    if !found.is_empty() {
        let names: Vec<&str> = found.iter().map(|f| f.rs.name.as_str()).collect();
        reason.push_str(&format!("; new ReplicaSet {}", names.join(", ")));
        if first {
            reason.push_str("; first deployment to this target: straight to 100%");
        }
    }
    Deployed {
        sizes,
        workloads,
        first,
        next: shape.next,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_deploy::Step;

    fn found(name: &str, replicas: i32, running: &[i32], existing: Option<i32>) -> Found {
        Found {
            rs: ManagedReplicaSet {
                workload: name.into(),
                namespace: "shop".into(),
                name: format!("{name}-abc"),
                hash: "abc".into(),
                replicas,
                object: serde_json::json!({}),
            },
            existing: existing.map(|desired| RsState { desired, ready: 0 }),
            stable: crate::fixtures::running(name, running),
        }
    }

    fn canary() -> Strategy {
        Strategy::Canary {
            steps: vec![Step::SetWeight { weight: 25 }],
        }
    }

    #[test]
    fn a_canary_over_a_running_version_starts_empty_and_walks_its_steps() {
        let out = deployed(&[found("web", 4, &[4], None)], 2, &canary(), false);
        assert_eq!(out.sizes, [0]);
        assert!(!out.first);
        assert_eq!(out.next, Phase::Steps);
        assert_eq!(out.reason, "applied 2 objects; new ReplicaSet web-abc");
        let w = &out.workloads[0];
        assert_eq!(
            (w.new_rs.as_str(), w.new_initial, w.replicas),
            ("web-abc", 0, 4)
        );
        assert_eq!(w.stable[0].replicas, 4);
    }

    #[test]
    fn a_first_deployment_goes_straight_to_full_size_and_promotion() {
        let out = deployed(&[found("web", 3, &[], None)], 0, &canary(), false);
        assert_eq!(out.sizes, [3]);
        assert!(out.first);
        assert_eq!(out.next, Phase::Promoting);
        assert_eq!(
            out.reason,
            "applied 0 objects; new ReplicaSet web-abc; first deployment to this target: \
             straight to 100%"
        );
    }

    #[test]
    fn a_mesh_runs_the_new_version_at_full_size_from_the_start() {
        let out = deployed(
            &[found("web", 4, &[4], None), found("api", 2, &[2], Some(1))],
            0,
            &canary(),
            true,
        );
        assert_eq!(out.sizes, [4, 2]);
        assert_eq!(out.next, Phase::Steps);
        // A ReplicaSet that existed keeps its size to go back to.
        assert_eq!(out.workloads[1].new_initial, 1);
        assert_eq!(
            out.reason,
            "applied 0 objects; new ReplicaSet web-abc, api-abc"
        );
    }

    #[test]
    fn objects_alone_are_applied_and_promoted_without_workloads() {
        let out = deployed(&[], 5, &canary(), false);
        assert!(out.sizes.is_empty() && out.workloads.is_empty());
        assert_eq!(out.next, Phase::Promoting);
        assert_eq!(out.reason, "applied 5 objects");
    }
}
