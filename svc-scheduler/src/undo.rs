//! What rolling a target back does, in order, as a pure function of the engine's record: traffic
//! back on the old version before any capacity moves, the old version back to its size before
//! the new one goes, then what this deployment created removed and what it changed given its
//! previous contents back, newest change first, as [`Effect`]s that `target::roll_back` carries
//! out; each is idempotent, so a rollback cut short by a crash is carried out again from the start.

use crate::capacity;
use crate::effect::Effect;
use crate::progress::Progress;

/// The rollback of a target whose record is `progress`: nothing for a target that changed
/// nothing.
pub(crate) fn roll_back(progress: &Progress) -> Vec<Effect> {
    let mut out = Vec::new();
    if !progress.workloads.is_empty() {
        out.extend([
            Effect::RestoreRouting,
            Effect::RestoreAutoscalers,
            Effect::RemoveBaselines,
            Effect::Capacity(capacity::roll_back(&progress.workloads)),
            Effect::CleanUpRouting,
        ]);
    }
    if !progress.created.is_empty() {
        out.push(Effect::DeleteCreated(progress.created.clone()));
    }
    if !progress.previous.is_empty() {
        out.push(Effect::RestorePrevious(
            progress.previous.iter().rev().cloned().collect(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::RsEffect;
    use crate::fixtures::workload;
    use crate::objects::ObjectRef;
    use crate::previous::Previous;
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

    #[test]
    fn a_target_that_changed_nothing_has_nothing_to_undo() {
        assert_eq!(roll_back(&Progress::default()), []);
    }

    #[test]
    fn traffic_goes_back_before_capacity_and_changed_objects_newest_first() {
        let progress = Progress {
            workloads: vec![workload("web", 4, &[4], 0)],
            created: vec![object("made")],
            previous: vec![previous("settings", 1), previous("flags", 2)],
            ..Progress::default()
        };
        assert_eq!(
            roll_back(&progress),
            [
                Effect::RestoreRouting,
                Effect::RestoreAutoscalers,
                Effect::RemoveBaselines,
                Effect::Capacity(vec![
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
                Effect::CleanUpRouting,
                Effect::DeleteCreated(vec![object("made")]),
                Effect::RestorePrevious(vec![previous("flags", 2), previous("settings", 1)]),
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
            [Effect::RestorePrevious(vec![previous("settings", 1)])]
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
                    .map(|(i, (stable, initial))| workload(&format!("w{i}"), 4, stable, *initial))
                    .collect(),
                created: (0..created).map(|i| object(&format!("c{i}"))).collect(),
                previous: (0..changed).map(|i| previous(&format!("p{i}"), i as u32)).collect(),
                ..Progress::default()
            };
            let plan = roll_back(&progress);
            let at = |wanted: &Effect| plan.iter().position(|u| u == wanted);
            if progress.workloads.is_empty() {
                prop_assert!(at(&Effect::RestoreRouting).is_none());
            } else {
                let capacity = plan
                    .iter()
                    .position(|u| matches!(u, Effect::Capacity(_)))
                    .expect("capacity is restored");
                prop_assert!(at(&Effect::RestoreRouting).expect("routing") < capacity);
                let Effect::Capacity(effects) = &plan[capacity] else { unreachable!() };
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
                Effect::DeleteCreated(all) => all.iter().collect(),
                _ => Vec::new(),
            }).collect();
            prop_assert_eq!(deleted, progress.created.iter().collect::<Vec<_>>());
            let restored: Vec<&Previous> = plan.iter().flat_map(|u| match u {
                Effect::RestorePrevious(all) => all.iter().collect(),
                _ => Vec::new(),
            }).collect();
            prop_assert_eq!(restored, progress.previous.iter().rev().collect::<Vec<_>>());
        }
    }
}
