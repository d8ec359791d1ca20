//! The capacity core against a model cluster: examples of each decision, then properties over
//! any workloads, sizes, weight lists and rollback points.

use super::*;
use crate::fixtures::workload;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn ready(ready: &[i32]) -> Vec<RsState> {
    ready
        .iter()
        .map(|r| RsState {
            desired: *r,
            ready: *r,
        })
        .collect()
}

fn scale(name: &str, replicas: i32) -> RsEffect {
    RsEffect::scale("shop", name, replicas)
}

#[test]
fn a_weight_step_waits_for_every_canary_pod_before_the_old_version_shrinks() {
    let web = [workload("web", 4, &[4], 0)];
    let sizes = canary_sizes(&web, 25);
    assert_eq!(sizes, [1]);
    assert_eq!(size_new(&web, &sizes), [scale("web-new", 1)]);
    assert_eq!(
        weight_step(&web, &sizes, &ready(&[0])),
        WeightStep::Wait(Pods { ready: 0, want: 1 })
    );
    // No state yet (the ReplicaSet is not there): nothing ready.
    assert_eq!(
        weight_step(&web, &sizes, &[]),
        WeightStep::Wait(Pods { ready: 0, want: 1 })
    );
    assert_eq!(
        weight_step(&web, &sizes, &ready(&[1])),
        WeightStep::Shift {
            pods: Pods { ready: 1, want: 1 },
            effects: vec![scale("web-old0", 3)],
        }
    );
}

#[test]
fn weight_steps_by_example() {
    // (replicas, stable sizes, weight, ready new pods) -> stable sizes kept, or None: wait.
    type Case<'a> = (i32, &'a [i32], u8, i32, Option<&'a [(&'a str, i32)]>);
    let table: &[Case<'_>] = &[
        (10, &[10], 50, 5, Some(&[("web-old0", 5)])),
        (10, &[10], 50, 4, None),
        // More ready than wanted counts as wanted (a scale-down in progress).
        (10, &[10], 10, 3, Some(&[("web-old0", 9)])),
        // The new version wants more pods than the old ran: the old keeps what it had.
        (10, &[4], 50, 5, Some(&[("web-old0", 4)])),
        // Only the first running version shrinks; the others go at promotion.
        (6, &[6, 2], 50, 3, Some(&[("web-old0", 3)])),
        // A first deployment has no old version to shrink.
        (3, &[], 100, 3, Some(&[])),
        // 1% of one pod is one pod; 100% keeps nothing of the old version.
        (1, &[1], 1, 1, Some(&[("web-old0", 0)])),
        (5, &[5], 100, 5, Some(&[("web-old0", 0)])),
    ];
    for (replicas, stable, weight, up, kept) in table {
        let web = [workload("web", *replicas, stable, 0)];
        let sizes = canary_sizes(&web, *weight);
        let got = weight_step(&web, &sizes, &ready(&[*up]));
        let case = format!("{replicas} replicas, stable {stable:?}, {weight}%, {up} ready");
        match kept {
            None => assert!(matches!(got, WeightStep::Wait(_)), "{case}: {got:?}"),
            Some(kept) => {
                let effects: Vec<_> = kept.iter().map(|(n, r)| scale(n, *r)).collect();
                match got {
                    WeightStep::Shift { effects: e, .. } => assert_eq!(e, effects, "{case}"),
                    WeightStep::Wait(p) => panic!("{case}: waits with {p:?}"),
                }
            }
        }
    }
}

#[test]
fn promotion_removes_every_old_version_only_when_every_new_pod_is_ready() {
    let w = [workload("web", 3, &[3, 1], 0), workload("api", 2, &[2], 0)];
    assert_eq!(
        promotion(&w, &ready(&[3, 1])),
        Promotion::Wait(Pods { ready: 4, want: 5 })
    );
    let removed = |n: &str| RsEffect::delete("shop", n);
    assert_eq!(
        promotion(&w, &ready(&[3, 2])),
        Promotion::RemoveOld {
            pods: Pods { ready: 5, want: 5 },
            effects: vec![
                removed("web-old0"),
                removed("web-old1"),
                removed("api-old0")
            ],
        }
    );
}

#[test]
fn a_rollback_restores_the_old_sizes_before_the_new_version_goes() {
    let w = [workload("web", 4, &[4, 1], 0), workload("api", 2, &[2], 2)];
    assert_eq!(
        roll_back(&w),
        [
            scale("web-old0", 4),
            scale("web-old1", 1),
            RsEffect::delete("shop", "web-new"),
            scale("api-old0", 2),
            // It ran at 2 before this deployment: back to 2, not deleted.
            scale("api-new", 2),
        ]
    );
    assert_eq!(roll_back(&[]), []);
}

#[test]
fn waiting_for_pods_sets_a_deadline_once_ticks_once_and_expires_at_it() {
    let t0 = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let secs = |s: i64| chrono::Duration::seconds(s);
    let tick = std::time::Duration::from_secs(2);
    let first = pods_wait(t0, None, None, 60, tick);
    assert_eq!(
        first,
        PodsWait::Waiting {
            deadline: t0 + secs(60),
            tick: Some(t0 + secs(2)),
        }
    );
    // Woken early by something else: the deadline holds and the pending tick is not written
    // again.
    assert_eq!(
        pods_wait(
            t0 + secs(1),
            Some(t0 + secs(60)),
            Some(t0 + secs(2)),
            60,
            tick
        ),
        PodsWait::Waiting {
            deadline: t0 + secs(60),
            tick: None,
        }
    );
    // The tick fired: the next one is written.
    assert_eq!(
        pods_wait(
            t0 + secs(2),
            Some(t0 + secs(60)),
            Some(t0 + secs(2)),
            60,
            tick
        ),
        PodsWait::Waiting {
            deadline: t0 + secs(60),
            tick: Some(t0 + secs(4)),
        }
    );
    assert_eq!(
        pods_wait(t0 + secs(60), Some(t0 + secs(60)), None, 60, tick),
        PodsWait::Expired
    );
    // A changed timeout does not move a deadline already set.
    assert_eq!(
        pods_wait(t0 + secs(61), Some(t0 + secs(60)), None, 3600, tick),
        PodsWait::Expired
    );
}

/// A cluster's managed ReplicaSets: desired and ready pods by name.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    sets: BTreeMap<String, (i32, i32)>,
}

impl Model {
    /// The cluster before the rollout: every old version at its size and ready, the new
    /// ReplicaSet at its earlier size (absent at 0).
    fn before(workloads: &[Workload]) -> Model {
        let mut sets = BTreeMap::new();
        for w in workloads {
            for s in &w.stable {
                sets.insert(s.name.clone(), (s.replicas, s.replicas));
            }
            if w.new_initial > 0 {
                sets.insert(w.new_rs.clone(), (w.new_initial, w.new_initial));
            }
        }
        Model { sets }
    }

    fn apply(&mut self, effect: &RsEffect) {
        match effect {
            RsEffect::Scale { name, replicas, .. } => {
                let (desired, ready) = self.sets.entry(name.clone()).or_default();
                *desired = *replicas;
                // Scaling down takes ready pods away at once; new pods start unready.
                *ready = (*ready).min(*replicas);
            }
            RsEffect::Delete { name, .. } => {
                self.sets.remove(name);
            }
        }
    }

    /// `fraction` of each new ReplicaSet's missing pods become ready.
    fn pods_start(&mut self, workloads: &[Workload], fraction: f64) {
        for w in workloads {
            if let Some((desired, ready)) = self.sets.get_mut(&w.new_rs) {
                let missing = f64::from(*desired - *ready);
                *ready += (missing * fraction).floor() as i32;
            }
        }
    }

    fn states(&self, workloads: &[Workload]) -> Vec<RsState> {
        workloads
            .iter()
            .map(|w| {
                let (desired, ready) = self.sets.get(&w.new_rs).copied().unwrap_or_default();
                RsState { desired, ready }
            })
            .collect()
    }

    /// Ready pods of every version of `w`.
    fn serving(&self, w: &Workload) -> i32 {
        let names = w.stable.iter().map(|s| &s.name).chain([&w.new_rs]);
        names.filter_map(|n| self.sets.get(n)).map(|(_, r)| r).sum()
    }

    fn desired(&self) -> BTreeMap<String, i32> {
        self.sets
            .iter()
            .map(|(n, (d, _))| (n.clone(), *d))
            .collect()
    }
}

fn workloads() -> impl Strategy<Value = Vec<Workload>> {
    let one = (1..=30i32, prop::collection::vec(0..=30i32, 0..=2), 0..=3i32);
    prop::collection::vec(one, 1..=3).prop_map(|ws| {
        ws.into_iter()
            .enumerate()
            .map(|(i, (replicas, stable, new_initial))| {
                // A first deployment (no old version) has nothing to keep serving; a new
                // ReplicaSet that already ran is a redeploy of a running version.
                workload(&format!("w{i}"), replicas, &stable, new_initial)
            })
            .collect()
    })
}

/// A canary's weights as a step list has them: growing.
fn weights() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1..=100u8, 1..=6).prop_map(|mut w| {
        w.sort_unstable();
        w
    })
}

/// Pods wanted per workload never shrink from one weight to a larger one, and never pass the
/// desired count.
fn check_sizes(workloads: &[Workload], weights: &[u8]) -> Result<(), TestCaseError> {
    let mut last = vec![0; workloads.len()];
    for weight in weights {
        let sizes = canary_sizes(workloads, *weight);
        for ((w, size), before) in workloads.iter().zip(&sizes).zip(&last) {
            prop_assert!(size >= before, "{} shrank at {weight}%", w.name);
            prop_assert!(*size <= w.replicas && *size >= 1);
        }
        last = sizes;
    }
    prop_assert_eq!(canary_sizes(workloads, 100), full_sizes(workloads));
    prop_assert!(canary_sizes(workloads, 0).iter().all(|s| *s == 0));
    Ok(())
}

/// Serving pods of each workload never fall below what it served before the rollout (up to
/// its desired count), checked after every single effect.
fn check_capacity(
    model: &Model,
    workloads: &[Workload],
    floor: &[i32],
) -> Result<(), TestCaseError> {
    for (w, floor) in workloads.iter().zip(floor) {
        if w.new_initial == 0 {
            prop_assert!(
                model.serving(w) >= *floor,
                "{} serves {} pods, below {floor}: {model:?}",
                w.name,
                model.serving(w)
            );
        }
    }
    Ok(())
}

/// The rollback's effects of each workload in order: old versions' sizes back before the new
/// version changes.
fn check_rollback_order(workloads: &[Workload], effects: &[RsEffect]) -> Result<(), TestCaseError> {
    for w in workloads {
        let at = |name: &str| {
            effects.iter().position(|e| match e {
                RsEffect::Scale { name: n, .. } | RsEffect::Delete { name: n, .. } => n == name,
            })
        };
        let new = at(&w.new_rs).expect("the new version is always changed back");
        for s in &w.stable {
            prop_assert!(
                at(&s.name).is_some_and(|i| i < new),
                "{} restored late",
                s.name
            );
        }
    }
    Ok(())
}

/// Every new ReplicaSet runs `sizes` ready pods in `model`.
fn all_ready(model: &Model, workloads: &[Workload], sizes: &[i32]) -> bool {
    workloads
        .iter()
        .zip(sizes)
        .all(|(w, size)| model.sets.get(&w.new_rs).is_some_and(|(_, r)| r >= size))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A rollout walked step by step with pods starting slowly, then promoted, or rolled back
    /// before step `cut`.
    #[test]
    fn a_rollout_keeps_capacity_promotes_cleanly_and_rolls_back_to_what_it_found(
        workloads in workloads(),
        weights in weights(),
        slow in 0.0..0.99f64,
        cut in 0..8usize,
    ) {
        check_sizes(&workloads, &weights)?;
        let before = Model::before(&workloads);
        let floor: Vec<i32> = workloads
            .iter()
            .map(|w| before.serving(w).min(w.replicas))
            .collect();
        let mut model = before.clone();
        let apply = |model: &mut Model, effects: &[RsEffect]| {
            for e in effects {
                model.apply(e);
                check_capacity(model, &workloads, &floor)?;
            }
            Ok::<(), TestCaseError>(())
        };
        for weight in weights.iter().take(cut) {
            let sizes = canary_sizes(&workloads, *weight);
            apply(&mut model, &size_new(&workloads, &sizes))?;
            model.pods_start(&workloads, slow);
            match weight_step(&workloads, &sizes, &model.states(&workloads)) {
                WeightStep::Wait(_) => prop_assert!(!all_ready(&model, &workloads, &sizes)),
                WeightStep::Shift { effects, .. } => {
                    prop_assert!(all_ready(&model, &workloads, &sizes), "shrank early");
                    apply(&mut model, &effects)?;
                }
            }
            model.pods_start(&workloads, 1.0);
            match weight_step(&workloads, &sizes, &model.states(&workloads)) {
                // Again after a redelivery: the same sizes.
                WeightStep::Shift { effects, .. } => apply(&mut model, &effects)?,
                WeightStep::Wait(p) => prop_assert!(false, "all pods ready, still waits: {p:?}"),
            }
        }
        if cut < weights.len() {
            // A rollback does not wait for the old version's pods: the failing version goes at
            // once, after the old one was given back its size.
            let effects = roll_back(&workloads);
            check_rollback_order(&workloads, &effects)?;
            for e in &effects {
                model.apply(e);
            }
            prop_assert_eq!(model.desired(), before.desired());
            return Ok(());
        }
        let full = full_sizes(&workloads);
        apply(&mut model, &size_new(&workloads, &full))?;
        model.pods_start(&workloads, slow);
        let removal = match promotion(&workloads, &model.states(&workloads)) {
            Promotion::RemoveOld { effects, .. } => {
                prop_assert!(all_ready(&model, &workloads, &full), "removed the old version early");
                effects
            }
            Promotion::Wait(_) => {
                prop_assert!(!all_ready(&model, &workloads, &full));
                model.pods_start(&workloads, 1.0);
                match promotion(&workloads, &model.states(&workloads)) {
                    Promotion::RemoveOld { effects, .. } => effects,
                    Promotion::Wait(p) => {
                        return Err(TestCaseError::fail(format!("all ready, still waits: {p:?}")));
                    }
                }
            }
        };
        apply(&mut model, &removal)?;
        // Only the new version runs, at its desired size, every pod ready.
        let expected: BTreeMap<String, (i32, i32)> = workloads
            .iter()
            .map(|w| (w.new_rs.clone(), (w.replicas, w.replicas)))
            .collect();
        prop_assert_eq!(model.sets, expected);
    }
}
