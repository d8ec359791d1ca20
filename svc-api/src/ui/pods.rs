//! A target's pods as a person needs them during a rollout: how many of the new version's pods
//! are ready of how many it should have now (the canary's size, not the whole Deployment's),
//! and what happened to the old version.
//!
//! The scheduler's `observed` record holds the Deployment's desired size and the old
//! ReplicaSets' sizes *before* the rollout, not their current size or readiness; the current
//! ready/desired count of the new ReplicaSet is in the target's reason
//! (`waiting for pods (0/1 ready)`, `canary at 25% (1/4 pods ready)`). So the new version shows
//! ready/desired when the reason carries it, and the old version its size before the rollout,
//! labelled so, until the scheduler records more.

use ferry_store::events::StepRecord;
use ferry_store::targets::{Target, TargetStatus};

/// What the page knows about a target's pods.
#[derive(Debug, PartialEq, Eq)]
pub struct Pods {
    /// The new version: ready of desired now.
    pub new: Option<(i64, i64)>,
    /// The Deployment's desired size (every workload).
    pub desired: i64,
    /// The old version's size before the rollout.
    pub old_before: i64,
    /// The old version was removed (the rollout finished).
    pub old_removed: bool,
    /// The target rolled back: the old version is back at its size before the rollout.
    pub rolled_back: bool,
}

impl Pods {
    /// The pods of `t`, or `None` when it manages no workload yet. When its reason carries no
    /// count (a pause, an approval, "deployed"), the newest count in its `history` stands: the
    /// scheduler scales the new version only in steps that record one.
    pub fn of(t: &Target, history: &[StepRecord]) -> Option<Pods> {
        let workloads = t.observed["workloads"].as_array()?;
        if workloads.is_empty() {
            return None;
        }
        let desired = workloads
            .iter()
            .filter_map(|w| w["replicas"].as_i64())
            .sum();
        let old_before = workloads
            .iter()
            .filter_map(|w| w["stable"].as_array())
            .flatten()
            .filter_map(|s| s["replicas"].as_i64())
            .sum();
        // The reason that counts the pods: the target's own, else (unless the rollout was
        // undone: its counts no longer hold) the newest one in its history.
        let own = t.reason.as_deref().unwrap_or_default();
        let undone = matches!(
            t.status,
            TargetStatus::RolledBack | TargetStatus::Failed | TargetStatus::Aborted
        );
        let counted = if ready_count(own).is_some() || undone {
            own
        } else {
            history
                .iter()
                .filter(|s| s.target_name == t.name && ready_count(&s.reason).is_some())
                .max_by_key(|s| (s.created_at, s.id))
                .map_or(own, |s| s.reason.as_str())
        };
        Some(Pods {
            new: ready_count(counted),
            desired,
            old_before,
            old_removed: counted.contains("old version removed"),
            rolled_back: t.status == TargetStatus::RolledBack,
        })
    }

    /// One short line for the graph node: the new version's readiness, when known.
    pub fn short(&self) -> Option<String> {
        let (ready, want) = self.new?;
        Some(format!("new {ready}/{want} ready"))
    }

    /// The line of the target card.
    pub fn line(&self) -> String {
        if self.rolled_back {
            return format!("rolled back: old version back at {}", self.old_before);
        }
        let new = match self.new {
            Some((ready, want)) => format!("new {ready}/{want} ready"),
            None => format!("{} desired", self.desired),
        };
        if self.old_removed {
            format!("{new} · old version removed")
        } else if self.old_before > 0 {
            format!(
                "{new} · old version: {} before the rollout",
                self.old_before
            )
        } else {
            format!("{new} · no old version")
        }
    }
}

/// The new version's `(ready, desired)` from a scheduler reason: `(R/D ready)` while it waits
/// for pods, `(R/T pods ready)` when the new version runs at full size `T` (promotion, blue/green,
/// a mesh canary's `new version R/T`), and `R/R` for a pod-based canary step that reached its
/// size (its `T` is the whole Deployment's).
fn ready_count(reason: &str) -> Option<(i64, i64)> {
    let mut rest = reason;
    while let Some(open) = rest.find('(') {
        let inner = &rest[open + 1..];
        let close = inner.find(')')?;
        let whole = &inner[..close];
        let group = whole.trim_start_matches("new version ");
        if let Some((count, tail)) = group.split_once(' ')
            && let Some((ready, want)) = count.split_once('/')
            && let (Ok(ready), Ok(want)) = (ready.parse::<i64>(), want.parse::<i64>())
        {
            // A pod-based canary step that reached its size counts against the whole
            // Deployment: the canary's `ready` pods are all it wanted.
            let canary_step = group == whole && reason.starts_with("canary at ");
            match tail {
                "ready" => return Some((ready, want)),
                "pods ready" if canary_step => return Some((ready, ready)),
                "pods ready" => return Some((ready, want)),
                _ => {}
            }
        }
        rest = &inner[close..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_version_counts_come_from_the_reason() {
        assert_eq!(
            ready_count("canary at 25%: waiting for pods (0/1 ready)"),
            Some((0, 1))
        );
        assert_eq!(ready_count("canary at 25% (1/4 pods ready)"), Some((1, 1)));
        assert_eq!(
            ready_count("at 100% (4/4 pods ready); old version removed"),
            Some((4, 4))
        );
        assert_eq!(
            ready_count("canary at 50% of traffic through mesh (new version 2/4 pods ready)"),
            Some((2, 4))
        );
        assert_eq!(
            ready_count("blue/green: new version starting (1/4 pods ready), no production traffic"),
            Some((1, 4))
        );
        assert_eq!(
            ready_count("first deployment at 100% (3/3 pods ready)"),
            Some((3, 3))
        );
        assert_eq!(ready_count("paused (manual judgement)"), None);
        assert_eq!(ready_count("broken (x/1 ready"), None);
    }

    #[test]
    fn lines_say_new_ready_of_desired_and_the_old_version() {
        let waiting = Pods {
            new: Some((0, 1)),
            desired: 4,
            old_before: 4,
            old_removed: false,
            rolled_back: false,
        };
        assert_eq!(waiting.short().as_deref(), Some("new 0/1 ready"));
        assert_eq!(
            waiting.line(),
            "new 0/1 ready · old version: 4 before the rollout"
        );
        let done = Pods {
            new: Some((4, 4)),
            desired: 4,
            old_before: 4,
            old_removed: true,
            rolled_back: false,
        };
        assert_eq!(done.line(), "new 4/4 ready · old version removed");
        let unknown = Pods {
            new: None,
            desired: 4,
            old_before: 0,
            old_removed: false,
            rolled_back: false,
        };
        assert_eq!(unknown.short(), None);
        assert_eq!(unknown.line(), "4 desired · no old version");
        let undone = Pods {
            new: None,
            desired: 4,
            old_before: 4,
            old_removed: false,
            rolled_back: true,
        };
        assert_eq!(undone.line(), "rolled back: old version back at 4");
    }
}
