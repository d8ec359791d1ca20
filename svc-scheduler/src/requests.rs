//! Steps another service carries out: an analysis (svc-canary) or a webhook (svc-webhook).
//! Starting one builds the request with everything the worker needs (target, account, the
//! rendered call or the variables and context, and for a webhook its single-use callback);
//! the request goes through the outbox with the state change. The completion's verdict is then
//! judged here, including the manual rollout modes where a person decides.

use crate::outcome::{Callback, Input, Request, Slot};
use crate::progress::{Phase, WaitState};
use crate::target::Run;
use crate::template;
use crate::waits::Poll;
use ferry_bus::StepKey;
use ferry_bus::messages::{AnalysisRequested, WebhookRequested};
use ferry_deploy::{AnalysisStep, Mode, Webhook};
use ferry_store::callbacks::NewCallback;
use ferry_store::secrets;
use indexmap::IndexMap;
use rand::RngCore;
use uuid::Uuid;

/// Random bytes in a callback token.
const TOKEN_BYTES: usize = 32;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random callback token (hex, 256 bits).
fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// Where a step waiting on another service's verdict is. A verdict the step's mode leaves to
/// a person waits for the roll-forward or roll-back decision.
pub(crate) fn judged(wait: &WaitState, what: &str, forward: Mode, back: Mode) -> Poll {
    let why = wait
        .outcome_reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let Some(passed) = wait.outcome else {
        return Poll::Waiting(format!("waiting for {what}"));
    };
    let verdict = match (passed, wait.inconclusive) {
        (_, true) => "was inconclusive",
        (true, false) => "passed",
        (false, false) => "failed",
    };
    let mode = match (passed, wait.inconclusive) {
        (_, true) => Mode::Manual,
        (true, false) => forward,
        (false, false) => back,
    };
    let who = wait.decided_by.as_deref().unwrap_or("someone");
    match (mode, wait.decision) {
        (Mode::Automatic, _) if passed => Poll::Done(format!("{what} passed{why}")),
        (Mode::Automatic, _) => Poll::Failed(format!("{what} failed{why}")),
        (Mode::Manual, None) => Poll::Waiting(format!(
            "{what} {verdict}{why}; waiting for a person to roll forward or back"
        )),
        (Mode::Manual, Some(true)) => {
            Poll::Done(format!("{what} {verdict}{why}; {who} rolled forward"))
        }
        (Mode::Manual, Some(false)) => {
            Poll::Failed(format!("{what} {verdict}{why}; {who} decided to roll back"))
        }
    }
}

impl Run<'_> {
    /// Sends the analysis of a step (`key`, `index`) to svc-canary.
    pub(crate) fn start_analysis(
        &mut self,
        analysis: &AnalysisStep,
        wait: &mut WaitState,
        key: StepKey,
        index: u32,
    ) {
        let id = Uuid::now_v7();
        wait.request_id = Some(id);
        // A deadline, so a lost analysis never leaves the target waiting forever: the runs'
        // own time, half as much again, and the grace.
        let runs = analysis
            .interval_secs
            .saturating_mul(u64::from(analysis.number_of_judgment_runs.max(1)));
        let grace = self.ctx.config.analysis_grace.as_secs();
        let deadline = crate::waits::after(
            self.ctx.now,
            runs.saturating_add(runs / 2).saturating_add(grace),
        );
        wait.expires_at = Some(deadline);
        self.timer(format!("analysis:{key}"), deadline);
        let request = AnalysisRequested {
            deployment_id: self.ctx.deployment.id.as_uuid(),
            target: self.target.name.clone(),
            step_index: index,
            analysis_id: id,
            step_key: key.to_string(),
            account: self.target.account.clone(),
            variables: template::analysis_variables(self),
            context: template::context_map(&analysis.context),
        };
        self.out.requests.push(Request::Analysis(request));
    }

    /// Sends a webhook call to svc-webhook and, unless callbacks are disabled, creates its
    /// single-use callback and a timer that fails the step when none came in time. `Err` is
    /// why the call cannot be made (an unknown variable, a missing secret): the step fails.
    pub(crate) async fn start_webhook(
        &mut self,
        webhook: &Webhook,
        context: &IndexMap<String, String>,
        wait: &mut WaitState,
        slot: Slot,
        key: StepKey,
        index: u32,
    ) -> Result<Result<(), String>, crate::EngineError> {
        let deployment_id = self.ctx.deployment.id.as_uuid();
        let token = (!webhook.disable_callback).then(new_token);
        let callback_uri = token.as_ref().map(|t| {
            format!(
                "{}/v1/deployments/{deployment_id}/webhooks/{t}",
                self.ctx.config.api_url
            )
        });
        let call = match template::webhook_call(self, webhook, context, callback_uri.as_deref()) {
            Ok(call) => call,
            Err(reason) => return Ok(Err(reason)),
        };
        for name in template::secrets_of(&call) {
            match secrets::get(self.ctx.store, self.ctx.tenant, &name).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    return Ok(Err(format!(
                        "webhook {:?}: secret {name:?} does not exist in this tenant",
                        webhook.name
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let id = Uuid::now_v7();
        wait.request_id = Some(id);
        // Every webhook has a deadline held by a durable timer: the callback's, or (without
        // one) the time its answer may take, retries included.
        let timeout = match token {
            Some(_) => self.ctx.config.callback_timeout,
            None => self.ctx.config.webhook_deadline,
        };
        let expires_at = self.ctx.now
            + chrono::Duration::from_std(timeout).unwrap_or_else(|_| chrono::Duration::days(1));
        wait.expires_at = Some(expires_at);
        self.timer(format!("callback:{key}"), expires_at);
        let callback = match token {
            Some(token) => Some(Callback {
                slot,
                row: NewCallback {
                    target: Some(self.target.name.clone()),
                    webhook_name: webhook.name.clone(),
                    token_hash: ferry_store::callbacks::token_hash(&token),
                    expires_at,
                },
            }),
            None => None,
        };
        let request = WebhookRequested {
            deployment_id,
            target: Some(self.target.name.clone()),
            step_index: Some(index),
            webhook_id: id,
            webhook_name: webhook.name.clone(),
            step_key: key.to_string(),
            account: self.target.account.clone(),
            call,
            context: template::context_map(context),
            deadline: Some(expires_at),
        };
        self.out
            .requests
            .push(Request::Webhook(Box::new(request), callback));
        Ok(Ok(()))
    }

    /// Records a person's roll-forward or roll-back decision on the wait that asks for one.
    pub(crate) fn take_rollout_decision(&mut self) {
        let Input::Rollout {
            target,
            step_index,
            forward,
            decided_by,
        } = self.ctx.input
        else {
            return;
        };
        if *target != self.target.name {
            return;
        }
        let in_steps = self.phase == Phase::Steps;
        if in_steps && i64::from(*step_index) != i64::from(self.step_index) {
            // A decision about an earlier step, delivered late: the state decides.
            return;
        }
        let waits: Vec<&mut WaitState> = if in_steps {
            vec![&mut self.progress.wait]
        } else {
            self.progress.gates.iter_mut().collect()
        };
        for wait in waits {
            if wait.outcome.is_some() && !wait.done && wait.decision.is_none() {
                wait.decision = Some(*forward);
                wait.decided_by = Some(decided_by.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(outcome: Option<bool>, decision: Option<bool>) -> WaitState {
        WaitState {
            started: true,
            outcome,
            outcome_reason: outcome.map(|_| "error rate 0.4".into()),
            decision,
            decided_by: decision.map(|_| "rita".into()),
            ..WaitState::default()
        }
    }

    #[test]
    fn automatic_modes_act_on_the_verdict_and_manual_ones_wait_for_a_person() {
        let (auto, manual) = (Mode::Automatic, Mode::Manual);
        assert_eq!(
            judged(&wait(None, None), "analysis", manual, manual),
            Poll::Waiting("waiting for analysis".into())
        );
        assert_eq!(
            judged(&wait(Some(true), None), "analysis", auto, manual),
            Poll::Done("analysis passed: error rate 0.4".into())
        );
        assert_eq!(
            judged(&wait(Some(false), None), "analysis", manual, auto),
            Poll::Failed("analysis failed: error rate 0.4".into())
        );
        assert_eq!(
            judged(&wait(Some(false), None), "analysis", auto, manual),
            Poll::Waiting(
                "analysis failed: error rate 0.4; waiting for a person to roll forward or back"
                    .into()
            )
        );
        assert_eq!(
            judged(&wait(Some(false), Some(true)), "analysis", auto, manual),
            Poll::Done("analysis failed: error rate 0.4; rita rolled forward".into())
        );
        assert_eq!(
            judged(&wait(Some(true), Some(false)), "analysis", manual, auto),
            Poll::Failed("analysis passed: error rate 0.4; rita decided to roll back".into())
        );
    }

    #[test]
    fn an_inconclusive_analysis_waits_for_a_person_whatever_the_modes() {
        let auto = Mode::Automatic;
        let inconclusive = WaitState {
            inconclusive: true,
            ..wait(Some(false), None)
        };
        assert_eq!(
            judged(&inconclusive, "analysis", auto, auto),
            Poll::Waiting(
                "analysis was inconclusive: error rate 0.4; waiting for a person to roll forward or back"
                    .into()
            )
        );
        let decided = WaitState {
            inconclusive: true,
            ..wait(Some(false), Some(true))
        };
        assert_eq!(
            judged(&decided, "analysis", auto, auto),
            Poll::Done("analysis was inconclusive: error rate 0.4; rita rolled forward".into())
        );
    }

    #[test]
    fn callback_tokens_are_long_and_random() {
        // How they are stored is tested with `ferry_store::callbacks::token_hash`.
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
