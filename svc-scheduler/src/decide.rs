//! The target's state machine as pure decisions: what a message means for a target in a phase,
//! whether dependsOn lets it start, where it goes once its new version is applied, what the
//! step at its index asks for, and what a waiting step's answer means for it. Nothing here
//! touches a cluster, the database or a clock; `target` observes, asks these, and carries out
//! what they say (with [`crate::capacity`] deciding sizes the same way).

use crate::outcome::Input;
use crate::progress::Phase;
use crate::waits::Poll;
use ferry_deploy::{Step, Strategy};
use ferry_store::targets::TargetStatus;

/// What a message does to a target before its phase runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InputMove {
    /// Nothing special: the phase runs.
    Run,
    /// Abort: roll back first if anything of the new version runs, then end with `status`.
    Abort {
        roll_back: bool,
        status: TargetStatus,
    },
    /// Roll this target back and end.
    RollBack,
}

/// What `input` asks of the target named `target` in `phase`.
pub(crate) fn input_move(input: &Input, phase: Phase, target: &str) -> InputMove {
    match input {
        Input::Abort { .. } => InputMove::Abort {
            roll_back: phase.has_deployed() || phase == Phase::Deploying,
            // A target that never started is skipped, not aborted.
            status: if phase == Phase::Pending {
                TargetStatus::Skipped
            } else {
                TargetStatus::Aborted
            },
        },
        Input::Rollback { target: named, .. }
            if named.as_deref().is_none_or(|t| t == target) && phase.has_deployed() =>
        {
            InputMove::RollBack
        }
        _ => InputMove::Run,
    }
}

/// What dependsOn allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// A dependency is still on its way.
    Wait,
    /// A dependency ended without succeeding: the target never starts.
    Skip {
        dependency: String,
        status: TargetStatus,
    },
    /// Every dependency succeeded (or there are none).
    Go,
}

/// Whether a target depending on `depends_on` may start, given each target's status (`None`
/// for a name that is not a target of the deployment, which waits: validation refuses it).
pub(crate) fn start(
    depends_on: &[String],
    status_of: impl Fn(&str) -> Option<TargetStatus>,
) -> Start {
    for dependency in depends_on {
        match status_of(dependency) {
            Some(TargetStatus::Succeeded) => {}
            Some(status) if status.is_terminal() => {
                return Start::Skip {
                    dependency: dependency.clone(),
                    status,
                };
            }
            _ => return Start::Wait,
        }
    }
    Start::Go
}

/// How a rollout proceeds once its manifests are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The new ReplicaSets start at zero pods and grow with the canary's weights (otherwise
    /// they start at full size: a first deployment, blue/green, a mesh that shifts traffic).
    pub grow: bool,
    /// The phase after deploying: the strategy's steps, or straight to promotion.
    pub next: Phase,
}

/// The shape of a rollout with `strategy`; `first` when nothing of the application ran on the
/// target before (then there is nothing to be careful about: straight to 100%); `meshed` when
/// a service mesh carries the weights.
pub(crate) fn shape(strategy: &Strategy, first: bool, meshed: bool) -> Shape {
    let canary = matches!(strategy, Strategy::Canary { .. }) && !first;
    let blue_green = matches!(strategy, Strategy::BlueGreen { .. }) && !first;
    Shape {
        grow: canary && !meshed,
        next: if canary || blue_green {
            Phase::Steps
        } else {
            Phase::Promoting
        },
    }
}

/// What the steps phase does at a step index.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StepMove<'p> {
    /// Blue/green runs its own conditions.
    BlueGreen,
    /// Past the last step (or no steps): promote to 100%.
    Promote,
    /// Sizes the canary's ReplicaSets for `weight`%.
    Weight(u8),
    /// Sets `weight`% on the mesh (the ReplicaSets run at full size).
    MeshWeight(u8),
    /// Publishes preview addresses.
    Expose {
        services: &'p [String],
        ttl_secs: u64,
    },
    /// A step that waits: a pause, an approval, an analysis or a webhook.
    Wait(&'p Step),
}

/// The move at `index` of `strategy`'s steps.
pub(crate) fn step_move(strategy: &Strategy, index: usize, meshed: bool) -> StepMove<'_> {
    let steps = match strategy {
        Strategy::BlueGreen { .. } => return StepMove::BlueGreen,
        Strategy::Direct => return StepMove::Promote,
        Strategy::Canary { steps } => steps,
    };
    match steps.get(index) {
        None => StepMove::Promote,
        Some(Step::SetWeight { weight }) if meshed => StepMove::MeshWeight(*weight),
        Some(Step::SetWeight { weight }) => StepMove::Weight(*weight),
        Some(Step::ExposeServices { services, ttl_secs }) => StepMove::Expose {
            services,
            ttl_secs: *ttl_secs,
        },
        Some(step) => StepMove::Wait(step),
    }
}

/// What a waiting step's answer means for the target, with the answer's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Still waiting, in this status.
    Hold(TargetStatus, String),
    /// Done: the next step.
    Advance(String),
    /// Failed: roll back.
    RollBack(String),
}

/// The verdict on `poll` of the waiting `step`; `judged` when an automated result is waiting
/// for a person's decision (a manual roll-forward or roll-back mode).
pub(crate) fn verdict(step: &Step, poll: Poll, judged: bool) -> Verdict {
    match poll {
        // A timed pause, an approval or a judged result waits for time or a person: paused.
        // An analysis or a webhook still working is running.
        Poll::Waiting(r) if matches!(step, Step::Pause { .. }) || judged => {
            Verdict::Hold(TargetStatus::Paused, r)
        }
        Poll::Waiting(r) => Verdict::Hold(TargetStatus::Running, r),
        Poll::Done(r) => Verdict::Advance(r),
        Poll::Failed(r) => Verdict::RollBack(r),
    }
}

/// Where a list of conditions that run in parallel is (before/after-deployment gates,
/// blue/green's conditions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Conditions {
    /// At least one still waits: the first one's reason, and whether it is a pause.
    Waiting(String, bool),
    /// One failed: the first failure's reason.
    Failed(String),
    /// All passed.
    Done,
}

/// Collects the answers of parallel conditions: a failure wins over waiting, the first of
/// each is reported.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    waiting: Option<(String, bool)>,
    failed: Option<String>,
}

impl Tally {
    /// Counts one condition's answer (`paused`: it waits for time or a person); returns its
    /// words when it is done.
    pub(crate) fn add(&mut self, poll: Poll, paused: bool) -> Option<String> {
        match poll {
            Poll::Waiting(r) => {
                self.waiting.get_or_insert((r, paused));
                None
            }
            Poll::Failed(r) => {
                self.failed.get_or_insert(r);
                None
            }
            Poll::Done(r) => Some(r),
        }
    }

    /// Where the conditions are.
    pub(crate) fn conditions(self) -> Conditions {
        match (self.failed, self.waiting) {
            (Some(r), _) => Conditions::Failed(r),
            (None, Some((r, paused))) => Conditions::Waiting(r, paused),
            (None, None) => Conditions::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_deploy::Pause;
    use proptest::prelude::{Strategy as _, any, prop_assert_eq, prop_oneof, proptest};

    fn canary(steps: Vec<Step>) -> Strategy {
        Strategy::Canary { steps }
    }

    fn blue_green() -> Strategy {
        Strategy::BlueGreen {
            active_service: "web".into(),
            preview_service: None,
            redirect_traffic_after: vec![],
            shut_down_old_version_after: vec![],
        }
    }

    fn pause(secs: u64) -> Step {
        Step::Pause {
            pause: Pause::Duration(secs),
        }
    }

    #[test]
    fn an_abort_rolls_back_only_what_was_deployed_and_skips_what_never_started() {
        let abort = Input::Abort { reason: "r".into() };
        let expected = [
            (Phase::Pending, false, TargetStatus::Skipped),
            (Phase::BeforeDeployment, false, TargetStatus::Aborted),
            (Phase::Deploying, true, TargetStatus::Aborted),
            (Phase::Steps, true, TargetStatus::Aborted),
            (Phase::Promoting, true, TargetStatus::Aborted),
            (Phase::AfterDeployment, false, TargetStatus::Aborted),
        ];
        for (phase, roll_back, status) in expected {
            assert_eq!(
                input_move(&abort, phase, "prod"),
                InputMove::Abort { roll_back, status },
                "{phase}"
            );
        }
    }

    #[test]
    fn a_rollback_request_moves_only_its_target_and_only_while_the_new_version_runs() {
        let all = Input::Rollback {
            target: None,
            reason: "r".into(),
        };
        let other = Input::Rollback {
            target: Some("staging".into()),
            reason: "r".into(),
        };
        let mine = Input::Rollback {
            target: Some("prod".into()),
            reason: "r".into(),
        };
        for &phase in Phase::ALL {
            let expected = if phase.has_deployed() {
                InputMove::RollBack
            } else {
                InputMove::Run
            };
            assert_eq!(input_move(&all, phase, "prod"), expected, "{phase}");
            assert_eq!(input_move(&mine, phase, "prod"), expected, "{phase}");
            assert_eq!(input_move(&other, phase, "prod"), InputMove::Run, "{phase}");
            assert_eq!(input_move(&Input::Wake, phase, "prod"), InputMove::Run);
        }
    }

    #[test]
    fn depends_on_waits_for_success_and_skips_after_any_other_end() {
        let deps = vec!["a".to_string(), "b".to_string()];
        let with = |a: Option<TargetStatus>, b: Option<TargetStatus>| {
            start(&deps, |name| if name == "a" { a } else { b })
        };
        use TargetStatus::*;
        assert_eq!(start(&[], |_| None), Start::Go);
        assert_eq!(with(Some(Succeeded), Some(Succeeded)), Start::Go);
        assert_eq!(with(Some(Running), Some(Succeeded)), Start::Wait);
        assert_eq!(with(Some(Succeeded), Some(Paused)), Start::Wait);
        assert_eq!(with(None, Some(Succeeded)), Start::Wait);
        for ended in [Failed, RolledBack, Aborted, Skipped] {
            assert_eq!(
                with(Some(Succeeded), Some(ended)),
                Start::Skip {
                    dependency: "b".into(),
                    status: ended
                }
            );
        }
        // The first dependency in the file decides first.
        assert_eq!(with(Some(Running), Some(Failed)), Start::Wait);
    }

    #[test]
    fn shapes_by_strategy_first_deployment_and_mesh() {
        let c = canary(vec![Step::SetWeight { weight: 50 }]);
        let cases = [
            (&c, false, false, true, Phase::Steps),
            (&c, false, true, false, Phase::Steps),
            (&c, true, false, false, Phase::Promoting),
            (&c, true, true, false, Phase::Promoting),
        ];
        for (strategy, first, meshed, grow, next) in cases {
            assert_eq!(shape(strategy, first, meshed), Shape { grow, next });
        }
        let bg = blue_green();
        assert_eq!(
            shape(&bg, false, false),
            Shape {
                grow: false,
                next: Phase::Steps
            }
        );
        assert_eq!(shape(&bg, true, false).next, Phase::Promoting);
        assert_eq!(
            shape(&Strategy::Direct, false, false),
            Shape {
                grow: false,
                next: Phase::Promoting
            }
        );
    }

    #[test]
    fn waiting_steps_are_paused_for_people_and_time_running_for_machines() {
        let approval = Step::Pause {
            pause: Pause::UntilApproved {
                requires_roles: vec![],
                expiration_secs: None,
            },
        };
        let waiting = || Poll::Waiting("w".into());
        let held = |status| Verdict::Hold(status, "w".into());
        assert_eq!(
            verdict(&pause(60), waiting(), false),
            held(TargetStatus::Paused)
        );
        assert_eq!(
            verdict(&approval, waiting(), false),
            held(TargetStatus::Paused)
        );
        let webhook_like = Step::SetWeight { weight: 1 };
        assert_eq!(
            verdict(&webhook_like, waiting(), false),
            held(TargetStatus::Running)
        );
        assert_eq!(
            verdict(&webhook_like, waiting(), true),
            held(TargetStatus::Paused)
        );
        assert_eq!(
            verdict(&pause(1), Poll::Done("d".into()), false),
            Verdict::Advance("d".into())
        );
        assert_eq!(
            verdict(&pause(1), Poll::Failed("f".into()), true),
            Verdict::RollBack("f".into())
        );
    }

    #[test]
    fn parallel_conditions_fail_on_any_failure_else_wait_for_the_first_waiting() {
        let tally = |polls: Vec<(Poll, bool)>| {
            let mut tally = Tally::default();
            let done: Vec<_> = polls
                .into_iter()
                .filter_map(|(poll, paused)| tally.add(poll, paused))
                .collect();
            (tally.conditions(), done)
        };
        assert_eq!(tally(vec![]), (Conditions::Done, vec![]));
        assert_eq!(
            tally(vec![
                (Poll::Done("a".into()), false),
                (Poll::Done("b".into()), true)
            ]),
            (Conditions::Done, vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            tally(vec![
                (Poll::Waiting("w1".into()), true),
                (Poll::Done("d".into()), false),
                (Poll::Waiting("w2".into()), false),
            ]),
            (
                Conditions::Waiting("w1".into(), true),
                vec!["d".to_string()]
            )
        );
        assert_eq!(
            tally(vec![
                (Poll::Waiting("w".into()), false),
                (Poll::Failed("f1".into()), false),
                (Poll::Failed("f2".into()), false),
            ])
            .0,
            Conditions::Failed("f1".into())
        );
    }

    fn any_step() -> impl proptest::strategy::Strategy<Value = Step> {
        prop_oneof![
            (0u8..=100).prop_map(|weight| Step::SetWeight { weight }),
            (1u64..3600).prop_map(pause),
            (60u64..600).prop_map(|ttl_secs| Step::ExposeServices {
                services: vec!["web".into()],
                ttl_secs
            }),
        ]
    }

    proptest! {
        /// Walking a step list visits every step once, in order, each as what it is, and then
        /// promotes; a mesh only changes where a weight is set, never which.
        #[test]
        fn a_step_list_is_walked_in_order_then_promoted(
            steps in proptest::collection::vec(any_step(), 0..12),
            meshed in any::<bool>(),
        ) {
            let strategy = canary(steps.clone());
            for (i, step) in steps.iter().enumerate() {
                let expected = match step {
                    Step::SetWeight { weight } if meshed => StepMove::MeshWeight(*weight),
                    Step::SetWeight { weight } => StepMove::Weight(*weight),
                    Step::ExposeServices { services, ttl_secs } => StepMove::Expose {
                        services,
                        ttl_secs: *ttl_secs,
                    },
                    other => StepMove::Wait(other),
                };
                prop_assert_eq!(step_move(&strategy, i, meshed), expected);
            }
            for past in steps.len()..steps.len() + 3 {
                prop_assert_eq!(step_move(&strategy, past, meshed), StepMove::Promote);
            }
            let bg = blue_green();
            prop_assert_eq!(step_move(&bg, 0, meshed), StepMove::BlueGreen);
            prop_assert_eq!(step_move(&Strategy::Direct, 0, meshed), StepMove::Promote);
        }
    }
}
