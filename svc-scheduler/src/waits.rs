//! Waiting steps shared by strategies and gates: timed pauses (a durable timer), approvals (an
//! approval row, optionally expiring), analyses and webhooks (a request through the outbox and
//! its completion message). Polling one is idempotent: it starts the step once, then only looks.

use crate::outcome::{Report, Slot};
use crate::progress::WaitState;
use crate::render::human_duration;
use crate::requests::judged;
use crate::target::Run;
use chrono::{DateTime, Utc};
use ferry_bus::StepKey;
use ferry_deploy::{Mode, Pause, Step};
use ferry_store::approvals::{self, Decision, NewApproval};
use ferry_store::timers::NewTimer;

/// `now` plus `secs` seconds, the duration capped at twice the deploy file's longest
/// ([`ferry_deploy::limits::MAX_DURATION_SECS`], a year; twice leaves room for an analysis's
/// grace). Validation refuses longer durations; the cap keeps a plan stored before that rule
/// (a pause of millions of hours) from overflowing the date arithmetic, which would panic on
/// every redelivery.
pub(crate) fn after(now: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    let capped = secs.min(2 * ferry_deploy::limits::MAX_DURATION_SECS);
    let delta = chrono::TimeDelta::try_seconds(i64::try_from(capped).unwrap_or(i64::MAX))
        .unwrap_or(chrono::TimeDelta::MAX);
    now.checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Where a waiting step is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    /// Still waiting; why, for humans.
    Waiting(String),
    /// Finished; what happened.
    Done(String),
    /// Failed; why.
    Failed(String),
}

impl Run<'_> {
    /// Starts (once) and checks the waiting `step` whose state is `wait`. `key` names the step
    /// within the target ([`StepKey`]: `step:2`, `before:0`) for timers and approvals; `index` is the number
    /// sent with requests.
    pub(crate) async fn poll_wait(
        &mut self,
        step: &Step,
        mut wait: WaitState,
        slot: Slot,
        key: StepKey,
        index: u32,
    ) -> Result<(WaitState, Poll), crate::EngineError> {
        if wait.done {
            return Ok((wait, Poll::Done("already done".into())));
        }
        let now = self.ctx.now;
        let target = self.target.name.clone();
        let poll = match step {
            Step::Pause {
                pause: Pause::Duration(secs),
            } => {
                let until = *wait.wait_until.get_or_insert(after(now, *secs));
                if !wait.started {
                    wait.started = true;
                    self.timer(format!("pause:{key}"), until);
                }
                if self.skip_requested(slot, index) {
                    Poll::Done(format!("pause of {} skipped", human_duration(*secs)))
                } else if now >= until {
                    Poll::Done(format!("pause of {} ended", human_duration(*secs)))
                } else {
                    Poll::Waiting(format!("paused for {}", human_duration(*secs)))
                }
            }
            Step::Pause {
                pause:
                    Pause::UntilApproved {
                        requires_roles,
                        expiration_secs,
                    },
            } => {
                let roles = if requires_roles.is_empty() {
                    String::new()
                } else {
                    format!(" (roles: {})", requires_roles.join(", "))
                };
                if !wait.started {
                    wait.started = true;
                    wait.expires_at = expiration_secs.map(|s| after(now, s));
                    if let Some(at) = wait.expires_at {
                        self.timer(format!("expire:{key}"), at);
                    }
                    self.out.approvals.push((
                        slot,
                        NewApproval {
                            target: target.clone(),
                            step_key: key.to_string(),
                            requires_roles: requires_roles.clone(),
                            expires_at: wait.expires_at,
                        },
                    ));
                }
                let approval = match wait.approval_id {
                    Some(id) => Some(approvals::get(self.ctx.store, self.ctx.tenant, id).await?),
                    None => None,
                };
                let decided = approval.as_ref().and_then(|a| a.decision.map(|d| (d, a)));
                match decided {
                    _ if self.skip_requested(slot, index) => {
                        Poll::Done("approval skipped on request".into())
                    }
                    Some((decision, approval)) => {
                        let approved = decision == Decision::Approve;
                        let waited = approval.decided_at.unwrap_or(now) - approval.created_at;
                        self.out.reports.push(Report::ApprovalDecided {
                            approved,
                            waited: waited.to_std().unwrap_or_default(),
                        });
                        let who = approval.decided_by.as_deref().unwrap_or("someone");
                        if approved {
                            Poll::Done(format!("approved by {who}"))
                        } else {
                            Poll::Failed(format!("approval rejected by {who}"))
                        }
                    }
                    None if wait.expires_at.is_some_and(|at| now >= at) => {
                        if let Some(approval) = &approval {
                            self.out.reports.push(Report::ApprovalExpired {
                                approval_id: approval.id,
                                step_key: approval.step_key.clone(),
                                waited: (now - approval.created_at).to_std().unwrap_or_default(),
                            });
                        }
                        Poll::Failed(format!(
                            "approval expired after {}",
                            human_duration(expiration_secs.unwrap_or_default())
                        ))
                    }
                    None => Poll::Waiting(format!("waiting for approval{roles}")),
                }
            }
            Step::Analysis(analysis) => {
                if !wait.started {
                    wait.started = true;
                    self.start_analysis(analysis, &mut wait, key, index);
                }
                match wait.expires_at {
                    Some(at) if wait.outcome.is_none() && now >= at => Poll::Failed(format!(
                        "analysis failed: no verdict by its deadline {}",
                        at.format("%Y-%m-%d %H:%M:%S UTC")
                    )),
                    _ => judged(
                        &wait,
                        "analysis",
                        analysis.roll_forward_mode,
                        analysis.roll_back_mode,
                    ),
                }
            }
            Step::RunWebhook { webhook, context } => {
                let what = format!("webhook {:?}", webhook.name);
                if !wait.started {
                    wait.started = true;
                    if let Err(reason) = self
                        .start_webhook(webhook, context, &mut wait, slot, key, index)
                        .await?
                    {
                        return Ok((wait, Poll::Failed(reason)));
                    }
                }
                match wait.expires_at {
                    Some(at) if wait.outcome.is_none() && now >= at => {
                        Poll::Failed(if webhook.disable_callback {
                            format!(
                                "{what} failed: no answer within {}",
                                human_duration(self.ctx.config.webhook_deadline.as_secs())
                            )
                        } else {
                            format!(
                                "{what} failed: no callback within {}",
                                human_duration(self.ctx.config.callback_timeout.as_secs())
                            )
                        })
                    }
                    _ => judged(&wait, &what, Mode::Automatic, Mode::Automatic),
                }
            }
            Step::SetWeight { .. } | Step::ExposeServices { .. } => {
                Poll::Failed(format!("{step:?} is not a waiting step"))
            }
        };
        if matches!(poll, Poll::Done(_)) {
            wait.done = true;
        }
        Ok((wait, poll))
    }

    fn skip_requested(&self, slot: Slot, index: u32) -> bool {
        matches!(
            (&self.ctx.input, slot),
            (crate::outcome::Input::SkipPause { target, step_index }, Slot::Step)
                if *target == self.target.name && *step_index == index
        )
    }

    /// Writes a timer that wakes this deployment at `at`.
    pub(crate) fn timer(&mut self, key: String, at: chrono::DateTime<chrono::Utc>) {
        self.timer_of_kind("reconcile", key, at);
    }

    /// Writes the readiness tick that wakes this deployment at `at` while it waits for pods.
    pub(crate) fn tick(&mut self, at: chrono::DateTime<chrono::Utc>) {
        let key = format!("tick:{}", at.timestamp_millis());
        self.timer_of_kind(ferry_store::timers::KIND_TICK, key, at);
    }

    fn timer_of_kind(&mut self, kind: &str, key: String, at: chrono::DateTime<chrono::Utc>) {
        self.out.timers.push(NewTimer {
            target: Some(self.target.name.clone()),
            kind: kind.into(),
            key: format!("{}:{key}", self.target.name),
            fire_at: at,
            payload: serde_json::json!({}),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored plan from before durations were capped may hold a pause of u32::MAX hours:
    /// `now + that` overflows chrono (it panicked); capped, it is two years from now.
    #[test]
    fn deadlines_of_huge_durations_are_capped_not_overflowed() {
        let now = Utc::now();
        let huge = u64::from(u32::MAX) * 3600;
        let years = chrono::TimeDelta::seconds(2 * 365 * 24 * 3600);
        assert_eq!(after(now, huge), now + years);
        assert_eq!(after(now, u64::MAX), now + years);
        assert_eq!(after(now, 90), now + chrono::TimeDelta::seconds(90));
        assert_eq!(
            after(DateTime::<Utc>::MAX_UTC, 90),
            DateTime::<Utc>::MAX_UTC
        );
    }
}
