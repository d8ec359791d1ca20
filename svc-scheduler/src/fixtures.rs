//! Records the pure decisions' unit tests share: a workload of namespace `shop` whose new
//! ReplicaSet is `<name>-new` and whose running versions are `<name>-old0`, `<name>-old1`, ...

use crate::progress::{Stable, Workload};

/// Running versions of `name` with these sizes, largest first as the engine records them.
pub(crate) fn running(name: &str, sizes: &[i32]) -> Vec<Stable> {
    (sizes.iter().enumerate())
        .map(|(i, &replicas)| Stable {
            name: format!("{name}-old{i}"),
            replicas,
            images: vec![],
        })
        .collect()
}

/// A workload wanting `replicas` pods over running versions of sizes `stable`, its new
/// ReplicaSet having had `new_initial` pods before the rollout.
pub(crate) fn workload(name: &str, replicas: i32, stable: &[i32], new_initial: i32) -> Workload {
    Workload {
        name: name.into(),
        namespace: "shop".into(),
        new_rs: format!("{name}-new"),
        new_initial,
        replicas,
        stable: running(name, stable),
        now: None,
    }
}
