//! What rolling a target back does, in order, as a pure function of the engine's record: traffic
//! back on the old version before any capacity moves, the old version back to its size before
//! the new one goes, then what this deployment created removed and what it changed given its
//! previous contents back, newest change first. `target::roll_back` carries the list out; each
//! item is idempotent, so a rollback cut short by a crash is carried out again from the start.

use crate::capacity::{self, RsEffect};
use crate::objects::ObjectRef;
use crate::previous::Previous;
use crate::progress::Progress;

/// One part of a rollback.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Undo {
    /// Traffic back on the old version (mesh weights, blue/green Services, routes).
    RestoreRouting,
    /// Autoscalers the rollout held pointed back at the old version.
    RestoreAutoscalers,
    /// The baseline ReplicaSets of a canary analysis removed.
    RemoveBaselines,
    /// The ReplicaSets' sizes: old versions back first, then the new version removed or resized.
    Capacity(Vec<RsEffect>),
    /// Routing objects the rollout made for itself removed.
    CleanUpRouting,
    /// Objects this deployment created on the target deleted.
    DeleteCreated(Vec<ObjectRef>),
    /// Objects it changed given their previous contents back, newest change first.
    RestorePrevious(Vec<Previous>),
}

/// The rollback of a target whose record is `progress`: nothing for a target that changed
/// nothing.
pub(crate) fn roll_back(progress: &Progress) -> Vec<Undo> {
    let mut out = Vec::new();
    if !progress.workloads.is_empty() {
        out.extend([
            Undo::RestoreRouting,
            Undo::RestoreAutoscalers,
            Undo::RemoveBaselines,
            Undo::Capacity(capacity::roll_back(&progress.workloads)),
            Undo::CleanUpRouting,
        ]);
    }
    if !progress.created.is_empty() {
        out.push(Undo::DeleteCreated(progress.created.clone()));
    }
    if !progress.previous.is_empty() {
        out.push(Undo::RestorePrevious(
            progress.previous.iter().rev().cloned().collect(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{Stable, Workload};
    use proptest::prelude::*;
    use serde_json::json;

    fn object(name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: name.into(),
            namespace: Some("shop".into()),
        }
    }

    fn previous(name: &str, version: u32) -> Previous {
        Previous {
            object: object(name),
            contents: json!({"data": {"version": version}}),
        }
    }

    fn workload(name: &str, stable: &[i32], new_initial: i32) -> Workload {
        Workload {
            name: name.into(),
            namespace: "shop".into(),
            new_rs: format!("{name}-new"),
            new_initial,
            replicas: 4,
            stable: (stable.iter().enumerate())
                .map(|(i, &replicas)| Stable {
                    name: format!("{name}-old{i}"),
                    replicas,
                    images: vec![],
                })
                .collect(),
            now: None,
        }
    }

    #[test]
    fn a_target_that_changed_nothing_has_nothing_to_undo() {
        assert_eq!(roll_back(&Progress::default()), []);
    }

    #[test]
    fn traffic_goes_back_before_capacity_and_changed_objects_newest_first() {
        let progress = Progress {
            workloads: vec![workload("web", &[4], 0)],
            created: vec![object("made")],
            previous: vec![previous("settings", 1), previous("flags", 2)],
            ..Progress::default()
        };
        assert_eq!(
            roll_back(&progress),
            [
                Undo::RestoreRouting,
                Undo::RestoreAutoscalers,
                Undo::RemoveBaselines,
                Undo::Capacity(vec![
                    RsEffect::Scale {
                        namespace: "shop".into(),
                        name: "web-old0".into(),
                        replicas: 4
                    },
                    RsEffect::Delete {
                        namespace: "shop".into(),
                        name: "web-new".into()
                    },
                ]),
                Undo::CleanUpRouting,
                Undo::DeleteCreated(vec![object("made")]),
                Undo::RestorePrevious(vec![previous("flags", 2), previous("settings", 1)]),
            ]
        );
    }

    #[test]
    fn objects_alone_are_undone_without_touching_workloads() {
        let progress = Progress {
            previous: vec![previous("settings", 1)],
            ..Progress::default()
        };
        assert_eq!(
            roll_back(&progress),
            [Undo::RestorePrevious(vec![previous("settings", 1)])]
        );
    }

    proptest! {
        /// Any record: routing is restored before any ReplicaSet changes; every old version is
        /// scaled back to its size before the rollout, and before its workload's new version is
        /// removed or resized; every created object is deleted once and every changed object
        /// restored once, in the reverse order of the changes.
        #[test]
        fn every_rollback_restores_what_it_must(
            workloads in prop::collection::vec(
                (prop::collection::vec(0i32..6, 0..3), 0i32..4), 0..4),
            created in 0usize..4,
            changed in 0usize..5,
        ) {
            let progress = Progress {
                workloads: (workloads.iter().enumerate())
                    .map(|(i, (stable, initial))| workload(&format!("w{i}"), stable, *initial))
                    .collect(),
                created: (0..created).map(|i| object(&format!("c{i}"))).collect(),
                previous: (0..changed).map(|i| previous(&format!("p{i}"), i as u32)).collect(),
                ..Progress::default()
            };
            let plan = roll_back(&progress);
            let at = |wanted: &Undo| plan.iter().position(|u| u == wanted);
            if progress.workloads.is_empty() {
                prop_assert!(at(&Undo::RestoreRouting).is_none());
            } else {
                let capacity = plan
                    .iter()
                    .position(|u| matches!(u, Undo::Capacity(_)))
                    .expect("capacity is restored");
                prop_assert!(at(&Undo::RestoreRouting).expect("routing") < capacity);
                let Undo::Capacity(effects) = &plan[capacity] else { unreachable!() };
                for w in &progress.workloads {
                    let new_at = effects.iter().position(|e| match e {
                        RsEffect::Scale { name, .. } | RsEffect::Delete { name, .. } => {
                            *name == w.new_rs
                        }
                    }).expect("the new version is removed or resized");
                    for s in &w.stable {
                        let old = RsEffect::Scale {
                            namespace: w.namespace.clone(),
                            name: s.name.clone(),
                            replicas: s.replicas,
                        };
                        let old_at = effects.iter().position(|e| *e == old)
                            .expect("every old version is back at its size");
                        prop_assert!(old_at < new_at);
                    }
                }
            }
            let deleted: Vec<&ObjectRef> = plan.iter().flat_map(|u| match u {
                Undo::DeleteCreated(all) => all.iter().collect(),
                _ => Vec::new(),
            }).collect();
            prop_assert_eq!(deleted, progress.created.iter().collect::<Vec<_>>());
            let restored: Vec<&Previous> = plan.iter().flat_map(|u| match u {
                Undo::RestorePrevious(all) => all.iter().collect(),
                _ => Vec::new(),
            }).collect();
            prop_assert_eq!(restored, progress.previous.iter().rev().collect::<Vec<_>>());
        }
    }
}
