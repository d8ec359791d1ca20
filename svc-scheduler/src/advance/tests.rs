//! Moving forward: the words and effects of each move, then properties over any workloads and
//! ready counts (nothing moves before its pods serve; a promotion puts traffic and autoscalers
//! on the new version before any old ReplicaSet goes).

use super::*;
use crate::capacity::RsEffect;
use crate::fixtures::workload;
use proptest::prelude::*;

fn ready(counts: &[i32]) -> Vec<RsState> {
    counts
        .iter()
        .map(|&ready| RsState {
            desired: ready,
            ready,
        })
        .collect()
}

fn scale(name: &str, replicas: i32) -> RsEffect {
    RsEffect::Scale {
        namespace: "shop".into(),
        name: name.into(),
        replicas,
    }
}

fn delete(name: &str) -> RsEffect {
    RsEffect::Delete {
        namespace: "shop".into(),
        name: name.into(),
    }
}

#[test]
fn a_canary_weight_waits_for_its_pods_then_shrinks_the_old_version_by_as_many() {
    let web = [workload("web", 4, &[4], 0)];
    assert_eq!(
        canary_weight(&web, 25, &[1], &ready(&[0])),
        Advance::AwaitPods("canary at 25%: waiting for pods (0/1 ready)".into())
    );
    assert_eq!(
        canary_weight(&web, 25, &[1], &ready(&[1])),
        Advance::Go {
            effects: vec![Effect::Capacity(vec![scale("web-old0", 3)])],
            weight: 25,
            reason: "canary at 25% (1/4 pods ready)".into(),
            announce: true,
        }
    );
}

#[test]
fn a_mesh_weight_needs_the_whole_new_version_and_leaves_the_old_one_its_pods() {
    let web = [workload("web", 4, &[4], 0)];
    assert_eq!(
        mesh_weight(&web, 10, &ready(&[3]), "VirtualService web"),
        Advance::AwaitPods(
            "canary at 10% on the mesh: waiting for the new version's pods (3/4 ready)".into()
        )
    );
    assert_eq!(
        mesh_weight(&web, 10, &ready(&[4]), "VirtualService web"),
        Advance::Go {
            effects: vec![Effect::SetMesh(Split::Canary(10))],
            weight: 10,
            reason: "canary at 10% of traffic through VirtualService web \
                     (new version 4/4 pods ready)"
                .into(),
            announce: true,
        }
    );
}

#[test]
fn a_promotion_moves_traffic_then_removes_the_old_version() {
    let web = [workload("web", 2, &[2, 1], 0)];
    assert_eq!(
        promotion(&web, &ready(&[1]), false, false),
        Advance::AwaitPods("promoting to 100%: waiting for pods (1/2 ready)".into())
    );
    assert_eq!(
        promotion(&web, &ready(&[0]), true, false),
        Advance::AwaitPods("first deployment at 100%: waiting for pods (0/2 ready)".into())
    );
    assert_eq!(
        promotion(&web, &ready(&[2]), false, true),
        Advance::Go {
            effects: vec![
                Effect::SetMesh(Split::Promoted),
                Effect::PromoteAutoscalers,
                Effect::RemoveBaselines,
                Effect::Capacity(vec![delete("web-old0"), delete("web-old1")]),
                Effect::FinishRouting,
            ],
            weight: 100,
            reason: "at 100% (2/2 pods ready); old version removed".into(),
            announce: true,
        }
    );
    let Advance::Go {
        effects, reason, ..
    } = promotion(&web, &ready(&[2]), true, false)
    else {
        panic!("a ready first deployment promotes");
    };
    assert_eq!(reason, "first deployment at 100% (2/2 pods ready)");
    assert!(!effects.contains(&Effect::SetMesh(Split::Promoted)));
}

#[test]
fn a_target_without_workloads_is_applied_at_once_and_announces_nothing() {
    assert_eq!(
        promotion(&[], &[], false, false),
        Advance::Go {
            effects: vec![
                Effect::PromoteAutoscalers,
                Effect::RemoveBaselines,
                Effect::Capacity(vec![]),
                Effect::FinishRouting,
            ],
            weight: 100,
            reason: "applied".into(),
            announce: false,
        }
    );
}

/// Workloads with 1 to 5 desired pods and up to two running versions, and a ready count for
/// each new ReplicaSet (possibly more than asked for, or none reported).
fn any_rollout() -> impl Strategy<Value = (Vec<Workload>, Vec<RsState>)> {
    prop::collection::vec(
        (1i32..6, prop::collection::vec(0i32..6, 0..3), 0i32..7),
        0..4,
    )
    .prop_map(|specs| {
        let workloads = (specs.iter().enumerate())
            .map(|(i, (replicas, stable, _))| workload(&format!("w{i}"), *replicas, stable, 0))
            .collect();
        (
            workloads,
            ready(&specs.iter().map(|s| s.2).collect::<Vec<_>>()),
        )
    })
}

fn all_ready(workloads: &[Workload], sizes: &[i32], states: &[RsState]) -> bool {
    (workloads.iter().zip(sizes).enumerate()).all(|(i, (_, size))| states[i].ready >= *size)
}

proptest! {
    /// A promotion goes only once every new pod is ready; then, in order: the mesh on the new
    /// version (only when meshed), its autoscalers and the baselines gone before any old
    /// ReplicaSet is deleted, every old ReplicaSet deleted, and the routing cleaned up last.
    #[test]
    fn a_promotion_keeps_the_old_version_until_the_new_one_takes_everything(
        (workloads, states) in any_rollout(),
        first in any::<bool>(),
        meshed in any::<bool>(),
    ) {
        let full = capacity::full_sizes(&workloads);
        match promotion(&workloads, &states, first, meshed) {
            Advance::AwaitPods(_) => prop_assert!(!all_ready(&workloads, &full, &states)),
            Advance::Go { effects, weight, announce, .. } => {
                prop_assert!(all_ready(&workloads, &full, &states));
                prop_assert_eq!(weight, 100);
                prop_assert_eq!(announce, !workloads.is_empty());
                let at = |wanted: &Effect| effects.iter().position(|e| e == wanted);
                let capacity = effects
                    .iter()
                    .position(|e| matches!(e, Effect::Capacity(_)))
                    .expect("the old version goes");
                prop_assert_eq!(at(&Effect::SetMesh(Split::Promoted)).is_some(), meshed);
                if let Some(mesh) = at(&Effect::SetMesh(Split::Promoted)) {
                    prop_assert!(mesh < capacity);
                }
                prop_assert!(at(&Effect::PromoteAutoscalers).expect("autoscalers") < capacity);
                prop_assert!(at(&Effect::RemoveBaselines).expect("baselines") < capacity);
                prop_assert_eq!(at(&Effect::FinishRouting), Some(effects.len() - 1));
                let Effect::Capacity(removed) = &effects[capacity] else { unreachable!() };
                let old: Vec<RsEffect> = workloads
                    .iter()
                    .flat_map(|w| w.stable.iter().map(|s| delete(&s.name)))
                    .collect();
                prop_assert_eq!(removed, &old);
            }
        }
    }

    /// A weight on the mesh never resizes anything (both versions keep their pods while the
    /// traffic moves) and goes only with the whole new version ready; a canary weight goes
    /// only with its canary pods ready and then only shrinks old versions.
    #[test]
    fn weights_move_only_on_ready_pods(
        (workloads, states) in any_rollout(),
        weight in 0u8..=100,
    ) {
        let full = capacity::full_sizes(&workloads);
        match mesh_weight(&workloads, weight, &states, "m") {
            Advance::AwaitPods(_) => prop_assert!(!all_ready(&workloads, &full, &states)),
            Advance::Go { effects, .. } => {
                prop_assert!(all_ready(&workloads, &full, &states));
                prop_assert_eq!(effects, vec![Effect::SetMesh(Split::Canary(weight))]);
            }
        }
        let sizes = capacity::canary_sizes(&workloads, weight);
        match canary_weight(&workloads, weight, &sizes, &states) {
            Advance::AwaitPods(_) => prop_assert!(!all_ready(&workloads, &sizes, &states)),
            Advance::Go { effects, .. } => {
                prop_assert!(all_ready(&workloads, &sizes, &states));
                let [Effect::Capacity(shift)] = effects.as_slice() else {
                    panic!("a canary weight only resizes: {effects:?}");
                };
                for effect in shift {
                    let RsEffect::Scale { name, replicas, .. } = effect else {
                        panic!("a canary weight deletes nothing: {effect:?}");
                    };
                    let (w, s) = workloads
                        .iter()
                        .find_map(|w| w.stable.iter().find(|s| s.name == *name).map(|s| (w, s)))
                        .expect("only old versions shrink");
                    prop_assert!(*replicas <= s.replicas);
                    prop_assert!(*replicas >= 0 && *replicas <= w.replicas);
                }
            }
        }
    }
}
