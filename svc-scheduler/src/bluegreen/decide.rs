//! Blue/green's stages as pure decisions: what the stage the target is in has seen (the new
//! version's pods while it starts, the conditions' answers while traffic waits to switch and
//! while the old version waits to go) decides the move and its words. The I/O half in
//! [`super`] observes, asks and carries the move out.

use crate::capacity::Pods;
use crate::decide::Conditions;
use ferry_store::targets::TargetStatus;

/// What the current stage has seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Starting: the new version's pods at full size.
    Starting(Pods),
    /// Waiting to switch traffic: the `redirectTrafficAfter` conditions.
    Redirecting(Conditions),
    /// Traffic switched, waiting to remove the old version: `shutDownOldVersionAfter`.
    ShuttingDown(Conditions),
}

/// What the strategy names, for the words.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Names<'a> {
    /// The active Service.
    pub active: &'a str,
    /// The preview Service, if any.
    pub preview: Option<&'a str>,
    /// Ready pods of the new version when it finished starting.
    pub ready: i32,
}

/// Blue/green's move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Move {
    /// The new version is still starting: wait for its pods.
    AwaitPods(String),
    /// The new version is up with `ready` pods: on to the redirect conditions.
    Ready { ready: i32, reason: String },
    /// Conditions still wait, in this status.
    Hold(TargetStatus, String),
    /// A condition failed: roll back.
    RollBack(String),
    /// The redirect conditions passed: the active Service switches to the new version.
    Switch,
    /// The shut-down conditions passed: promotion removes the old version.
    Promote,
}

/// `, preview at service NAME`, or nothing without a preview Service.
fn preview_note(preview: Option<&str>) -> String {
    preview.map_or_else(String::new, |p| format!(", preview at service {p}"))
}

/// The move of a blue/green target that has seen `seen`.
pub(crate) fn next(seen: Seen, names: Names<'_>) -> Move {
    let preview = preview_note(names.preview);
    match seen {
        Seen::Starting(Pods { ready, want }) if ready < want => Move::AwaitPods(format!(
            "blue/green: new version starting ({ready}/{want} pods ready), no production traffic"
        )),
        Seen::Starting(Pods { ready, want }) => Move::Ready {
            ready,
            reason: format!("blue/green: new version ready ({ready}/{want}){preview}"),
        },
        // One phrasing whatever the wait says ("waiting for approval", "paused for 5m", a
        // verdict waiting for a person): nothing branches on its words.
        Seen::Redirecting(Conditions::Waiting(r, paused)) => Move::Hold(
            held(paused),
            format!(
                "blue/green: new version ready ({0}/{0}){preview}, {r} before switching traffic",
                names.ready
            ),
        ),
        Seen::Redirecting(Conditions::Failed(r)) => {
            Move::RollBack(format!("rolled back before the switch: {r}"))
        }
        Seen::Redirecting(Conditions::Done) => Move::Switch,
        Seen::ShuttingDown(Conditions::Waiting(r, paused)) => Move::Hold(
            held(paused),
            format!(
                "blue/green: traffic on the new version (service {}), {r} before the old \
                 version is removed",
                names.active
            ),
        ),
        Seen::ShuttingDown(Conditions::Failed(r)) => {
            Move::RollBack(format!("rolled back after the switch: {r}"))
        }
        Seen::ShuttingDown(Conditions::Done) => Move::Promote,
    }
}

/// A pause or a person's decision holds the target paused; a machine's work holds it running.
fn held(paused: bool) -> TargetStatus {
    if paused {
        TargetStatus::Paused
    } else {
        TargetStatus::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: Names<'static> = Names {
        active: "web",
        preview: Some("web-preview"),
        ready: 4,
    };

    fn waiting(r: &str, paused: bool) -> Conditions {
        Conditions::Waiting(r.into(), paused)
    }

    #[test]
    fn the_new_version_starts_without_traffic_then_waits_for_the_switch() {
        assert_eq!(
            next(Seen::Starting(Pods { ready: 1, want: 4 }), NAMES),
            Move::AwaitPods(
                "blue/green: new version starting (1/4 pods ready), no production traffic".into()
            )
        );
        assert_eq!(
            next(Seen::Starting(Pods { ready: 4, want: 4 }), NAMES),
            Move::Ready {
                ready: 4,
                reason: "blue/green: new version ready (4/4), preview at service web-preview"
                    .into()
            }
        );
        let no_preview = Names {
            preview: None,
            ..NAMES
        };
        assert_eq!(
            next(Seen::Starting(Pods { ready: 2, want: 2 }), no_preview),
            Move::Ready {
                ready: 2,
                reason: "blue/green: new version ready (2/2)".into()
            }
        );
    }

    #[test]
    fn every_stage_holds_rolls_back_or_moves_on_by_its_conditions() {
        let cases = [
            (
                Seen::Redirecting(waiting("waiting for approval", true)),
                Move::Hold(
                    TargetStatus::Paused,
                    "blue/green: new version ready (4/4), preview at service web-preview, \
                     waiting for approval before switching traffic"
                        .into(),
                ),
            ),
            (
                Seen::Redirecting(waiting("waiting for analysis", false)),
                Move::Hold(
                    TargetStatus::Running,
                    "blue/green: new version ready (4/4), preview at service web-preview, \
                     waiting for analysis before switching traffic"
                        .into(),
                ),
            ),
            (
                Seen::Redirecting(Conditions::Failed("approval rejected".into())),
                Move::RollBack("rolled back before the switch: approval rejected".into()),
            ),
            (Seen::Redirecting(Conditions::Done), Move::Switch),
            (
                Seen::ShuttingDown(waiting("paused for 5m", true)),
                Move::Hold(
                    TargetStatus::Paused,
                    "blue/green: traffic on the new version (service web), paused for 5m \
                     before the old version is removed"
                        .into(),
                ),
            ),
            (
                Seen::ShuttingDown(Conditions::Failed("webhook failed".into())),
                Move::RollBack("rolled back after the switch: webhook failed".into()),
            ),
            (Seen::ShuttingDown(Conditions::Done), Move::Promote),
        ];
        for (seen, expected) in cases {
            assert_eq!(next(seen.clone(), NAMES), expected, "{seen:?}");
        }
    }
}
